"""Pretrained weights loaded into a network: every tensor but the head's must match the checkpoint's."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch import nn

from nnlit.checkpoint_io import read_checkpoint


def load_network_weights(network: nn.Module, path: str) -> None:
    """Loads into ``network`` the weights of a pretrained checkpoint (see :meth:`nnlit.MLPModule.load_pretrained`).

    Raises:
        FileNotFoundError: naming the path.
        ValueError: when the body of the network does not match the checkpoint, naming each tensor and both shapes.
    """
    if Path(path).is_dir():
        from nnlit.runs import resolve_checkpoint  # here: nnlit.runs reads checkpoints, a layer above

        path = str(resolve_checkpoint(path))
    if not Path(path).is_file():
        raise FileNotFoundError(f"Pretrained checkpoint not found: {path!r}")
    loaded = read_checkpoint(path, map_location="cpu")
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else {}
    prefix = "network."
    source = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)} or dict(state)
    target = network.state_dict()
    head = [name for name, m in network.named_modules() if any(True for _ in m.parameters(recurse=False))][-1]
    skipped, problems = [], []
    for key in sorted(set(source) - set(target)):
        if not key.startswith(f"{head}."):
            problems.append(f"{prefix}{key}: in the checkpoint, not in the model")
    for key, tensor in target.items():
        if key not in source:
            problems.append(f"{prefix}{key}: missing from the checkpoint")
        elif source[key].shape != tensor.shape:
            if key.startswith(f"{head}."):
                skipped.append(key)
            else:
                shapes = f"{tuple(source[key].shape)} in the checkpoint, {tuple(tensor.shape)} in the model"
                problems.append(f"{prefix}{key}: {shapes}")
    if problems:
        raise ValueError(
            f"The pretrained checkpoint {path!r} does not fit this network (only its head, {prefix}{head}, may "
            "differ):\n  " + "\n  ".join(problems)
        )
    network.load_state_dict({k: v for k, v in source.items() if k in target and k not in skipped}, strict=False)
    note = f"; new head {prefix}{head} of another shape keeps its fresh weights" if skipped else ""
    rank_zero_info(f"Loaded pretrained weights from {path}{note}")


__all__ = ["load_network_weights"]
