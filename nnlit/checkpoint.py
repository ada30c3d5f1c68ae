"""Loading an nnlit checkpoint without naming its class: :func:`load`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nnlit.arguments import init_arguments
from nnlit.checkpoint_io import MapLocation, describe_object, read_checkpoint
from nnlit.models.base import MLPModule
from nnlit.models.binary import BinaryMLP
from nnlit.models.multiclass import MulticlassMLP
from nnlit.models.regression import RegressionMLP
from nnlit.trust import UntrustedCheckpointError, find_class

#: The checkpoint key where :meth:`MLPModule.on_save_checkpoint` records the class that saved it.
CHECKPOINT_KEY = "nnlit"


def load(
    path: str | os.PathLike[str],
    map_location: MapLocation = "cpu",
    *,
    cls: type[MLPModule] | None = None,
    trusted: bool = False,
) -> MLPModule:
    """Loads an nnlit checkpoint as the LightningModule that saved it, in eval mode.

    The file is read as plain data and checked against nnlit's allowlist (see :mod:`nnlit.trust`): it never runs
    code nor imports a module because it names one. The class is the one recorded in the checkpoint by
    :meth:`MLPModule.on_save_checkpoint <nnlit.models.base.MLPModule.on_save_checkpoint>`: one of nnlit's heads, or a
    subclass whose module your program has already imported. Name it with ``cls`` otherwise (a class defined in a
    script, say). The tensors go to ``map_location``: the CPU by default, so a model trained on a GPU loads on a
    machine without one.

    Args:
        path: the ``.ckpt`` file.
        map_location: where the tensors go, as in ``torch.load`` (``"cpu"``, ``"cuda:0"``, a ``torch.device``, a
            ``{"cuda:1": "cuda:0"}`` remapping, a function of ``(storage, location)``, or ``None`` for the devices
            they were saved from).
        cls: the class to build (an :class:`~nnlit.MLPModule` subclass), instead of the one the file records.
        trusted: for a file you made yourself: read it as Lightning does (pickled objects are built, which runs
            their code) and import the modules it names.

    Raises:
        FileNotFoundError: naming the path.
        ValueError: when the file is not an nnlit checkpoint, saying what it is instead (and which class to call
            ``load_from_checkpoint`` on for a checkpoint saved before nnlit recorded its class).
        UntrustedCheckpointError: (a ``ValueError``) when the file holds what nnlit does not build from an untrusted
            file, naming the key; or names a class whose module is not imported.
        TypeError: when ``cls`` or the recorded class is not an :class:`~nnlit.MLPModule`.

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
    if cls is not None and not (isinstance(cls, type) and issubclass(cls, MLPModule)):
        raise TypeError(f"`cls` must be a subclass of nnlit.MLPModule, got {cls!r}")
    checkpoint = read_checkpoint(path, trusted=trusted)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{str(path)!r} is not an nnlit checkpoint: it is {describe_object(checkpoint)}")
    if cls is None:
        record = checkpoint.get(CHECKPOINT_KEY)
        if not isinstance(record, dict) or not isinstance(record.get("class_path"), str):
            raise ValueError(
                f"{str(path)!r} is a Lightning checkpoint without the class that saved it (an nnlit older than "
                f"nnlit.load, or another LightningModule, saved it): {_which_class(checkpoint, path)}"
            )
        cls = _recorded_class(record["class_path"], record.get("version"), path, trusted)
    model = cls.load_from_checkpoint(path, map_location=map_location, trusted=trusted)
    return model.eval()


def _which_class(checkpoint: dict[str, Any], path: Path) -> str:
    """Advice naming the class to call ``load_from_checkpoint`` on, as precisely as the checkpoint tells."""
    hparams = checkpoint.get("hyper_parameters") or {}
    class_path = hparams.get("_class_path")  # LightningCLI records it in subclass mode
    if not isinstance(class_path, str):
        keys = {k for k in hparams if not k.startswith("_")}
        fits = [c for c in (BinaryMLP, MulticlassMLP, RegressionMLP) if keys and keys <= set(init_arguments(c))]
        class_path = f"nnlit.{fits[0].__name__}" if len(fits) == 1 else None
    if class_path is None:
        return (
            "call load_from_checkpoint on the class that saved it, e.g. "
            f"nnlit.BinaryMLP.load_from_checkpoint({str(path)!r}) (or MulticlassMLP, RegressionMLP, your subclass)"
        )
    module, _, name = class_path.rpartition(".")
    return f"it was saved by {class_path}: `from {module} import {name}; {name}.load_from_checkpoint({str(path)!r})`"


def _recorded_class(class_path: str, version: Any, path: Path, trusted: bool) -> type[MLPModule]:
    """The class a checkpoint records, found without importing a module the program has not imported (nnlit's own
    excepted, or any when ``trusted``)."""
    try:
        found = find_class(class_path, importing=trusted)
    except ImportError as err:  # `trusted`: the module is there but fails to import
        found = f"which cannot be imported: {err}"
    if isinstance(found, str):
        hint = ""
        if class_path.startswith("__main__."):
            hint = " A class defined in a script is found again only in that script."
        raise UntrustedCheckpointError(
            f"{str(path)!r} was saved by {class_path!r} (nnlit {version}), {found}.{hint} Pass the class: "
            f"nnlit.load({str(path)!r}, cls=YourClass)"
        )
    if not (isinstance(found, type) and issubclass(found, MLPModule)):
        raise TypeError(f"{str(path)!r} names {class_path!r}, which is not a subclass of nnlit.MLPModule")
    return found
