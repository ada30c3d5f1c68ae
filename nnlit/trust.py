"""What nnlit builds from a checkpoint: plain data, and objects from an allowlist only.

A checkpoint is data from an unknown source. ``torch.load(weights_only=True)`` stops pickle payloads, but a file that
passes it can still name classes: ``{"class_path": "subprocess.Popen", "init_args": {...}}`` among the
hyperparameters, which Lightning's saved ``_instantiator`` would hand to jsonargparse, and jsonargparse would build.
nnlit therefore checks every checkpoint it reads (:func:`check_checkpoint`) and builds objects only from this
allowlist:

- nnlit's own classes;
- ``torch.optim`` optimizers and learning-rate schedulers (the ``optimizer`` / ``lr_scheduler`` hyperparameters);
- other optimizer, scheduler or model classes only when their module is already imported by the caller (nothing
  new is ever imported because a file names it), when the caller names the class (``nnlit.load(path, cls=MyHead)``),
  or when the caller trusts the file (``trusted=True``).

Any other ``class_path`` in a checkpoint is refused with an error naming its key. With ``trusted=True`` nnlit reads
the file as Lightning does (pickled objects included), for a file you made yourself.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

import torch

#: the hyperparameters whose ``{"class_path", "init_args"}`` value nnlit builds, with the base class it must have
CALLABLE_KINDS: dict[str, tuple[type, ...]] = {
    "optimizer": (torch.optim.Optimizer,),
    "lr_scheduler": (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau),
}
#: modules whose classes nnlit may import to rebuild an object: nnlit's own and torch's optimizers
IMPORTABLE = ("nnlit", "torch.optim")
#: hyperparameter keys of older Lightning releases, which Lightning still merges under the current ones
LEGACY_HPARAMS_KEYS = ("hparams", "module_arguments")
#: the keys of a callback's state (ModelCheckpoint's) that name files it may delete
_CALLBACK_PATH_KEYS = ("best_model_path", "kth_best_model_path", "last_model_path", "dirpath")
#: the only instantiator a checkpoint may name (LightningCLI's); nnlit never calls it unless the file is trusted
LIGHTNING_INSTANTIATORS = ("lightning.pytorch.cli.instantiate_module", "pytorch_lightning.cli.instantiate_module")

_PLAIN = (type(None), bool, int, float, str)
_TRUST_HINT = (
    "nnlit builds no object a checkpoint names beyond its allowlist (see the threat model in the docs). If you made "
    "this file yourself, load it with trusted=True"
)


class UntrustedCheckpointError(ValueError):
    """A checkpoint holds something nnlit does not build from an untrusted file; the message names its key."""


def check_plain_data(
    value: Any,
    key: str,
    source: str | None,
    callables: Mapping[str, tuple[type, ...]] | None = None,
    seen: set[int] | None = None,
) -> None:
    """Checks that ``value`` is plain data: ``None``, bools, numbers, strings, and lists, tuples and string-keyed
    dicts of them, with no ``class_path`` anywhere except in the top-level keys of ``callables`` (for example
    ``{"optimizer": (torch.optim.Optimizer,)}``), whose class must resolve through the allowlist to that base.

    Each list and dict is checked once (``seen`` holds their ids): a pickle can share one list at every level of a
    small file, whose tree would have billions of leaves.

    Raises:
        UntrustedCheckpointError: naming the first key that breaks the rule (``hyper_parameters.activation_kwargs``).

    Example::

        >>> check_plain_data({"hidden": [4, 4], "optimizer": {"class_path": "torch.optim.SGD", "init_args": {}}},
        ...                  "hyper_parameters", "m.ckpt", CALLABLE_KINDS)
        >>> evil = {"act": {"class_path": "subprocess.Popen"}}
        >>> check_plain_data(evil, "hyper_parameters", "m.ckpt")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        nnlit.trust.UntrustedCheckpointError: 'm.ckpt': hyper_parameters.act holds a class_path ('subprocess.Popen')...
    """
    callables = callables or {}
    seen = set() if seen is None else seen
    if isinstance(value, (Mapping, list, tuple)):
        if id(value) in seen:
            return
        seen.add(id(value))
    if isinstance(value, Mapping):
        if "class_path" in value:
            raise UntrustedCheckpointError(
                f"{_at(source)}{key} holds a class_path ({value['class_path']!r}), which nnlit does not build from a "
                f"checkpoint. {_TRUST_HINT}"
            )
        for name, item in value.items():
            if not isinstance(name, str):
                raise UntrustedCheckpointError(f"{_at(source)}{key} has a key that is not a string: {name!r}")
            if name in callables and isinstance(item, Mapping) and "class_path" in item:
                resolve_spec(item, f"{key}.{name}", source, callables[name])
                continue
            check_plain_data(item, f"{key}.{name}", source, seen=seen)
    elif isinstance(value, (list, tuple)):
        for j, item in enumerate(value):
            check_plain_data(item, f"{key}[{j}]", source, seen=seen)
    elif not isinstance(value, _PLAIN):
        raise UntrustedCheckpointError(
            f"{_at(source)}{key} holds a {type(value).__name__}, not plain data (numbers, strings, lists, dicts)"
        )


def resolve_spec(
    spec: Mapping[str, Any], key: str, source: str | None, kinds: tuple[type, ...], trusted: bool = False
) -> Callable[..., Any]:
    """The ``functools.partial(cls, **init_args)`` of a ``{"class_path", "init_args"}`` spec, with ``cls`` from the
    allowlist and a subclass of one of ``kinds``; ``init_args`` must be plain data.

    Raises:
        UntrustedCheckpointError: naming ``key`` when the class is not allowed, not of the kind, or not found.
    """
    unknown = sorted(set(spec) - {"class_path", "init_args"})
    if unknown or not isinstance(spec.get("class_path"), str):
        raise UntrustedCheckpointError(
            f"{_at(source)}{key} must be {{'class_path': str, 'init_args': dict}}, got keys {sorted(spec)}"
        )
    init_args = spec.get("init_args") or {}
    if not isinstance(init_args, Mapping):
        raise UntrustedCheckpointError(f"{_at(source)}{key}.init_args must be a dict, got {type(init_args).__name__}")
    if not trusted:
        check_plain_data(init_args, f"{key}.init_args", source)
    cls = resolve_class(spec["class_path"], f"{key}.class_path", source, None if trusted else kinds, trusted)
    return functools.partial(cls, **init_args)


def resolve_class(
    class_path: str, key: str, source: str | None, kinds: tuple[type, ...] | None, trusted: bool = False
) -> type:
    """The class at ``class_path``, found without importing anything new (except nnlit's own modules and
    ``torch.optim``; anything when ``trusted``), checked to subclass one of ``kinds`` (``None``: any class).

    Raises:
        UntrustedCheckpointError: naming ``key``: the path is malformed, its module is not imported (and may not be
            imported), it names no class, or a class of another kind.
    """
    found = find_class(class_path, importing=trusted)
    if isinstance(found, str):
        raise UntrustedCheckpointError(f"{_at(source)}{key} names {class_path!r}, {found}")
    if kinds is not None and not (isinstance(found, type) and issubclass(found, kinds)):
        what = " or ".join(f"{k.__module__}.{k.__qualname__}" for k in kinds)
        raise UntrustedCheckpointError(
            f"{_at(source)}{key} names {class_path!r}, which is not a subclass of {what}; nnlit refuses to build it"
        )
    if not isinstance(found, type):
        raise UntrustedCheckpointError(f"{_at(source)}{key} names {class_path!r}, which is not a class")
    return found


def find_class(class_path: str, importing: bool = False) -> Any:
    """The object at a dotted path, or a string saying why it cannot be had without importing.

    The module part is looked up in ``sys.modules``: a module the program has not imported is never imported because
    a file names it, except nnlit's own modules and ``torch.optim`` (and anything when ``importing``).

    Example::

        >>> find_class("torch.optim.SGD").__name__
        'SGD'
        >>> print(find_class("this.Zen"))
        whose module is not imported, and nnlit imports no module a file names: import it first, or name the class
    """
    parts = class_path.split(".")
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        return "which is not a dotted path of Python names (a class defined inside a function cannot be found again)"
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        module = sys.modules.get(module_name)
        if module is None and (importing or _importable(module_name)):
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as err:
                if err.name is None or not module_name.startswith(err.name):
                    raise  # the module exists but fails on an import of its own
                continue
        if module is None:
            continue
        obj: Any = module
        for part in parts[split:]:
            try:  # static: a module's __getattr__ may import (scipy's, unittest's), a property may run code
                obj = inspect.getattr_static(obj, part)
            except AttributeError:
                return f"which does not exist (no {part!r} in {module_name!r})"
        return obj
    return "whose module is not imported, and nnlit imports no module a file names: import it first, or name the class"


def _at(source: str | None) -> str:
    return "" if source is None else f"{source!r}: "


def _importable(module_name: str) -> bool:
    return any(module_name == top or module_name.startswith(f"{top}.") for top in IMPORTABLE)


def check_checkpoint(checkpoint: Any, source: str) -> None:
    """Checks a checkpoint read with ``weights_only=True`` before anything is built from it: the model's
    hyperparameters are plain data, with a ``class_path`` only in ``optimizer`` / ``lr_scheduler`` and then one from
    the allowlist; the class nnlit records (``checkpoint["nnlit"]``), and LightningCLI's ``_class_path``, name a
    LightningModule when they name anything imported; an ``_instantiator`` is LightningCLI's own; ``pretrained`` is
    empty (nnlit saves the weights themselves); the data module's state is plain data; there are no data module
    hyperparameters nor hyperparameters under Lightning's legacy keys (nnlit writes neither); the files a callback's
    state names stay in its folder.

    Raises:
        UntrustedCheckpointError: naming the first key that breaks a rule.
    """
    if not isinstance(checkpoint, dict):
        return
    for key in LEGACY_HPARAMS_KEYS:
        if key in checkpoint:
            raise UntrustedCheckpointError(
                f"{_at(source)}{key} holds hyperparameters in a form Lightning merges into the checked ones, which "
                "nnlit never writes"
            )
    if checkpoint.get("datamodule_hyper_parameters"):
        raise UntrustedCheckpointError(
            f"{_at(source)}datamodule_hyper_parameters is set, which nnlit never writes (the data module's source is "
            "the caller's, its fitted preprocessing is under 'TabularDataModule')"
        )
    for key in ("hparams_name", "hparams_type"):
        if not isinstance(checkpoint.get(key), (str, type(None))):
            raise UntrustedCheckpointError(f"{_at(source)}{key} must be a string, got {type(checkpoint[key]).__name__}")
    check_callback_paths(checkpoint.get("callbacks"), source)
    for key in ("hyper_parameters",):
        hparams = checkpoint.get(key)
        if hparams is None:
            continue
        if not isinstance(hparams, Mapping):
            raise UntrustedCheckpointError(f"{_at(source)}{key} must be a dict, got {type(hparams).__name__}")
        instantiator = hparams.get("_instantiator")
        if instantiator is not None and instantiator not in LIGHTNING_INSTANTIATORS:
            raise UntrustedCheckpointError(
                f"{_at(source)}{key}._instantiator names {instantiator!r}; only LightningCLI's is accepted"
            )
        if hparams.get("pretrained") is not None:
            raise UntrustedCheckpointError(
                f"{_at(source)}{key}.pretrained names a file ({hparams['pretrained']!r}); nnlit saves None there, "
                "with the weights in the checkpoint itself"
            )
        check_plain_data(hparams, key, source, CALLABLE_KINDS)
        if "_class_path" in hparams:
            check_module_class(hparams["_class_path"], f"{key}._class_path", source)
    record = checkpoint.get("nnlit")
    if isinstance(record, Mapping):
        for name, value in record.items():
            if name == "class_path":
                check_module_class(value, "nnlit.class_path", source)
            else:
                check_plain_data(value, f"nnlit.{name}", source)
    elif record is not None:
        raise UntrustedCheckpointError(f"{_at(source)}nnlit must be a dict, got {type(record).__name__}")
    for key, value in checkpoint.items():
        if isinstance(value, Mapping) and {"mean", "std", "classes", "feature_names"} <= set(value):
            check_plain_data(value, str(key), source)  # the data module's fitted preprocessing


def check_callback_paths(callbacks: Any, source: str) -> None:
    """The file paths a callback's state names (``ModelCheckpoint``'s best, last and top-k models, which it removes when
    a better one comes, recursively and, for a path with a protocol, wherever it is) stay in its folder: no ``..``
    part, and no protocol (``local:///home``, ``s3://bucket/…``) except inside the state's own ``dirpath`` when that
    is remote storage of the same protocol (a run that saved there). Tensors elsewhere in a callback's state are fine.

    Raises:
        UntrustedCheckpointError: naming the callback's key, the state's key and the path.
    """
    if callbacks is None:
        return
    if not isinstance(callbacks, Mapping):
        raise UntrustedCheckpointError(f"{_at(source)}callbacks must be a dict, got {type(callbacks).__name__}")
    for name, state in callbacks.items():
        if not isinstance(name, str) or not isinstance(state, Mapping):
            raise UntrustedCheckpointError(f"{_at(source)}callbacks[{name!r}] must be a dict under a string key")
        best_k = state.get("best_k_models") or {}
        if not isinstance(best_k, Mapping):
            raise UntrustedCheckpointError(
                f"{_at(source)}callbacks[{name!r}].best_k_models must be a dict, got {type(best_k).__name__}"
            )
        dirpath = state.get("dirpath")
        named = [(key, state.get(key)) for key in _CALLBACK_PATH_KEYS] + [("best_k_models", p) for p in best_k]
        for key, path in named:
            if path is None or path == "":
                continue
            where = f"{_at(source)}callbacks[{name!r}].{key}"
            if not isinstance(path, str):
                raise UntrustedCheckpointError(f"{where} must be a string, got {type(path).__name__}")
            if ".." in PurePath(path).parts or ".." in path.split("/"):
                raise UntrustedCheckpointError(
                    f"{where} names {path!r}, outside its own folder: a ModelCheckpoint would remove it"
                )
            protocol = _protocol(path)
            if protocol is None or (key == "dirpath" and protocol not in _LOCAL_PROTOCOLS):
                continue
            inside = isinstance(dirpath, str) and _protocol(dirpath) == protocol and path.startswith(f"{dirpath}/")
            if protocol in _LOCAL_PROTOCOLS or not inside:
                raise UntrustedCheckpointError(
                    f"{where} names {path!r}, a path with a protocol ({protocol}) outside the checkpoint folder "
                    f"({dirpath!r}): a ModelCheckpoint would remove it, recursively, wherever it is"
                )


#: protocols refused wherever they point: the local file system's (a plain path says the same, so a checkpoint never
#: needs them) and chained URLs (``simplecache::s3://…``)
_LOCAL_PROTOCOLS = ("file", "local", "chained")


def _protocol(path: str) -> str | None:
    """The protocol of an fsspec URL (``s3`` for ``s3://b/k``; ``chained`` for ``a::b``), else ``None``."""
    if "::" in path:
        return "chained"
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*)://", path)
    return match.group(1).lower() if match else None


#: a module built from an untrusted checkpoint may hold at most this many times the bytes of the tensors the file
#: stores (a checkpoint saved in half precision loads into a float32 module: 2x), plus :data:`ALLOCATION_SLACK_BYTES`
ALLOCATION_FACTOR = 4
#: what a module may hold beyond :data:`ALLOCATION_FACTOR` times the file's tensors (buffers the file does not store)
ALLOCATION_SLACK_BYTES = 64 * 2**20


def check_declared_sizes(build: Callable[[], torch.nn.Module], state_dict: Any, source: str) -> None:
    """Checks the sizes a checkpoint's hyperparameters declare before the module is built: ``build`` runs on the meta
    device (no memory), then each tensor it declares must have the shape the checkpoint's ``state_dict`` holds, and the
    whole module at most :data:`ALLOCATION_FACTOR` times the bytes of the tensors the file stores, plus
    :data:`ALLOCATION_SLACK_BYTES`. A small file declaring ``hidden: [60000, 60000]`` (14 GB), with no weights or with
    weights that are views of one number, is refused here rather than allocated.

    Raises:
        UntrustedCheckpointError: naming the file and the first tensor whose shape differs, or the sizes.
    """
    if not isinstance(state_dict, Mapping):
        raise UntrustedCheckpointError(f"{_at(source)}state_dict must be a dict, got {type(state_dict).__name__}")
    with torch.device("meta"):
        module = build()
    declared = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    for name, tensor in module.state_dict().items():
        stored = state_dict.get(name)
        if isinstance(stored, torch.Tensor) and tuple(stored.shape) != tuple(tensor.shape):
            raise UntrustedCheckpointError(
                f"{_at(source)}the hyperparameters declare {name} of shape {tuple(tensor.shape)}, but "
                f"state_dict.{name} holds {tuple(stored.shape)}: the hyperparameters and the weights disagree"
            )
    needed = sum(t.numel() * t.element_size() for t in declared.values())
    storages = {}
    for tensor in state_dict.values():
        if isinstance(tensor, torch.Tensor):
            storage = tensor.untyped_storage()
            storages[storage._cdata] = storage.nbytes()
    stored_bytes = sum(storages.values())
    allowed = ALLOCATION_FACTOR * stored_bytes + ALLOCATION_SLACK_BYTES
    if needed > allowed:
        raise UntrustedCheckpointError(
            f"{_at(source)}the network its hyperparameters declare holds {needed / 2**20:,.0f} MiB, but the file "
            f"stores {stored_bytes / 2**20:,.1f} MiB of weights: nnlit allocates at most {ALLOCATION_FACTOR}x a "
            f"checkpoint's weights plus {ALLOCATION_SLACK_BYTES // 2**20} MiB for an untrusted file (trusted=True "
            "for a file you made yourself)"
        )


def check_module_class(class_path: Any, key: str, source: str) -> None:
    """A class path recorded for the model is a string; when it names something already imported, that is a
    LightningModule class (an unimported module is not imported here: loading decides what to do with it)."""
    import lightning as L

    if not isinstance(class_path, str):
        raise UntrustedCheckpointError(f"{_at(source)}{key} must be a string, got {type(class_path).__name__}")
    found = find_class(class_path)
    if not isinstance(found, str) and not (isinstance(found, type) and issubclass(found, L.LightningModule)):
        raise UntrustedCheckpointError(
            f"{_at(source)}{key} names {class_path!r}, which is not a LightningModule class; nnlit refuses to build it"
        )


def plain_hyperparameters(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameters to build a module with from a checked checkpoint: without LightningCLI's
    ``_class_path`` and ``_instantiator`` (which would hand them to jsonargparse)."""
    return {key: value for key, value in hparams.items() if key not in ("_class_path", "_instantiator")}


__all__ = [
    "CALLABLE_KINDS",
    "UntrustedCheckpointError",
    "check_checkpoint",
    "check_declared_sizes",
    "check_plain_data",
    "find_class",
    "resolve_class",
    "resolve_spec",
]
