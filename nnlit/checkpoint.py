"""Loading an nnlit checkpoint without naming its class: :func:`load`."""

from __future__ import annotations

import importlib
import inspect
import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from nnlit.models.base import MLPModule

#: The checkpoint key where :meth:`MLPModule.on_save_checkpoint` records the class that saved it.
CHECKPOINT_KEY = "nnlit"

MapLocation = (
    str
    | torch.device
    | dict[torch.device | str | int, torch.device | str | int]
    | Callable[[torch.UntypedStorage, str], torch.UntypedStorage | None]
    | None
)


def load(path: str | os.PathLike[str], map_location: MapLocation = "cpu", weights_only: bool = True) -> MLPModule:
    """Loads an nnlit checkpoint as the LightningModule that saved it, in eval mode.

    The class (a head such as :class:`~nnlit.BinaryMLP`, or your own subclass) is the one recorded in the checkpoint
    by :meth:`MLPModule.on_save_checkpoint <nnlit.models.base.MLPModule.on_save_checkpoint>`; its module is imported
    if needed, and it must be a subclass of :class:`~nnlit.MLPModule`. The tensors go to ``map_location``: the CPU by
    default, so a model trained on a GPU loads on a machine without one.

    Args:
        path: the ``.ckpt`` file.
        map_location: where the tensors go, as in ``torch.load`` (``"cpu"``, ``"cuda:0"``, a ``torch.device``, a
            ``{"cuda:1": "cuda:0"}`` remapping, a function of ``(storage, location)``, or ``None`` for the devices
            they were saved from).
        weights_only: read the file with ``torch.load(weights_only=True)``, which builds no arbitrary Python objects;
            ``False`` only for a checkpoint you trust whose hyperparameters hold objects beyond plain data.

    Raises:
        FileNotFoundError: naming the path.
        ValueError: when the file is not an nnlit checkpoint, saying what it is instead (and which class to call
            ``load_from_checkpoint`` on for a checkpoint saved before nnlit recorded its class).
        ImportError: when the recorded class cannot be imported any more, naming it.
        TypeError: when the recorded class is not an :class:`~nnlit.MLPModule`.

    Example::

        >>> import lightning as L
        >>> from nnlit import BinaryMLP, TabularDataModule
        >>> trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        ...                     enable_model_summary=False, default_root_dir=getfixture("tmp_path"))
        >>> trainer.fit(BinaryMLP(in_features=2, hidden=[4]), datamodule=TabularDataModule(dataset="xor", n_samples=40))
        >>> trainer.save_checkpoint(getfixture("tmp_path") / "xor.ckpt")
        >>> model = load(getfixture("tmp_path") / "xor.ckpt")
        >>> type(model).__name__, model.training, model.network.output
        ('BinaryMLP', False, Linear(in_features=4, out_features=1, bias=True))
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint not found: {str(path)!r}")
    checkpoint = _read(path, weights_only)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{str(path)!r} is not an nnlit checkpoint: it is {_describe_object(checkpoint)}")
    record = checkpoint.get(CHECKPOINT_KEY)
    if not isinstance(record, dict) or not isinstance(record.get("class_path"), str):
        raise ValueError(
            f"{str(path)!r} is a Lightning checkpoint without the class that saved it (an nnlit older than "
            f"nnlit.load, or another LightningModule, saved it): {_which_class(checkpoint, path)}"
        )
    cls = _import_class(record["class_path"], record.get("version"), path)
    model = cls.load_from_checkpoint(path, map_location=map_location, weights_only=weights_only)
    return model.eval()


def _read(path: Path, weights_only: bool) -> Any:
    """``torch.load`` of the file's structure (its tensors on the meta device: no data is read), or a ``ValueError``
    saying what the file is when torch cannot read it."""
    if _is_torchscript(path):  # torch.load would hand it to torch.jit.load, with a warning, then fail
        raise ValueError(f"{str(path)!r} is not an nnlit checkpoint: it is {_describe_file(path)}")
    try:
        return torch.load(path, map_location="meta", weights_only=weights_only)
    except pickle.UnpicklingError as err:
        if weights_only and "Unsupported global" in str(err):
            raise ValueError(
                f"{str(path)!r} holds Python objects that torch.load(weights_only=True) does not build; if you trust "
                f"the file, call nnlit.load(..., weights_only=False). torch.load said: {_first_line(err)}"
            ) from err
        raise ValueError(f"{str(path)!r} is not an nnlit checkpoint: it is {_describe_file(path)}") from err
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(f"{str(path)!r} is not an nnlit checkpoint: it is {_describe_file(path)}") from err


def _describe_file(path: Path) -> str:
    """What a file that ``torch.load`` cannot read looks like: a TorchScript archive, text, or something else."""
    if _is_torchscript(path):
        return "a TorchScript archive (open it with torch.jit.load)"
    if zipfile.is_zipfile(path):
        return "a zip archive that torch.load does not read"
    with path.open("rb") as file:
        head = file.read(512)
    if not head:
        return "an empty file"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        kind = "an ONNX model (run it with onnxruntime)" if path.suffix == ".onnx" else "a binary file"
        return f"{kind}, not a file torch.load reads"
    return f"a text file beginning {text.splitlines()[0][:60]!r}"


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def _describe_object(obj: Any) -> str:
    """What ``torch.load`` returned, when it is not a Lightning checkpoint."""
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        keys = list(obj)
        shown = ", ".join(map(str, keys[:3])) + (", …" if len(keys) > 3 else "")
        return (
            f"a plain state_dict of {len(keys)} tensors ({shown}): build the model and call load_state_dict, or pass "
            "the file as the model's `pretrained` argument"
        )
    if isinstance(obj, dict):
        return f"a dict without a 'state_dict' entry (keys: {', '.join(map(str, list(obj)[:8]))})"
    return f"a saved {type(obj).__name__}"


def _which_class(checkpoint: dict[str, Any], path: Path) -> str:
    """Advice naming the class to call ``load_from_checkpoint`` on, as precisely as the checkpoint tells."""
    hparams = checkpoint.get("hyper_parameters") or {}
    class_path = hparams.get("_class_path")  # LightningCLI records it in subclass mode
    if not isinstance(class_path, str):
        from nnlit import BinaryMLP, MulticlassMLP, RegressionMLP

        keys = {k for k in hparams if not k.startswith("_")}
        fits = [c for c in (BinaryMLP, MulticlassMLP, RegressionMLP) if keys and keys <= _init_arguments(c)]
        class_path = f"nnlit.{fits[0].__name__}" if len(fits) == 1 else None
    if class_path is None:
        return (
            "call load_from_checkpoint on the class that saved it, e.g. "
            f"nnlit.BinaryMLP.load_from_checkpoint({str(path)!r}) (or MulticlassMLP, RegressionMLP, your subclass)"
        )
    module, _, name = class_path.rpartition(".")
    return f"it was saved by {class_path}: `from {module} import {name}; {name}.load_from_checkpoint({str(path)!r})`"


def _init_arguments(cls: type) -> set[str]:
    return set(inspect.signature(cls).parameters)


def _import_class(class_path: str, version: Any, path: Path) -> type[MLPModule]:
    """The class a checkpoint names, imported; an ``ImportError`` naming it when it is gone."""
    try:
        obj = _resolve(class_path)
    except (ImportError, AttributeError, ValueError) as err:
        hint = ""
        if class_path.startswith("__main__.") or "<locals>" in class_path:
            hint = " A class defined in a script or inside a function cannot be found again: define it in a module."
        raise ImportError(
            f"{str(path)!r} was saved by {class_path!r} (nnlit {version}), which cannot be imported now: {err}.{hint} "
            "If the class moved, import it and call its load_from_checkpoint"
        ) from err
    if not (isinstance(obj, type) and issubclass(obj, MLPModule)):
        raise TypeError(f"{str(path)!r} names {class_path!r}, which is not a subclass of nnlit.MLPModule")
    return obj


def _resolve(class_path: str) -> Any:
    """The object at a dotted path whose module part is not marked: ``pkg.mod.Class`` or ``pkg.mod.Outer.Inner``."""
    parts = class_path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name is None or not module_name.startswith(err.name):
                raise  # the module exists but fails on an import of its own
            continue
        for part in parts[split:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(f"no module of {class_path!r} can be imported")


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
