"""An nnlit module's hyperparameters: what is saved (exactly the constructor's arguments, as plain data), and the
injected optimizer and scheduler turned into plain data and back."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from lightning.pytorch.core.mixins import HyperparametersMixin
from lightning.pytorch.utilities.parsing import collect_init_args

from nnlit.arguments import init_arguments
from nnlit.lightning_internals import given_hyperparameters
from nnlit.nn.options import MLPOptions
from nnlit.trust import CALLABLE_KINDS, resolve_spec


def saved_hyperparameters(cls: type) -> dict[str, Any]:
    """What to save as the hyperparameters of the ``cls`` being built (call it from its ``__init__``): exactly the
    arguments ``cls(**hparams)`` takes, as plain data.

    The values are those LightningCLI builds it with, else the arguments of the constructor calls being run, the
    outermost last (Lightning's own collection, as ``save_hyperparameters()`` makes it), with the defaults of the
    network's options not given. Kept are only the arguments ``cls`` accepts (:func:`nnlit.arguments.init_arguments`):
    not one a subclass derives and passes on itself (``hidden=[width]``: loading would pass it twice), nor a value
    LightningCLI links from the data module for a head without that argument (``num_classes`` for ``RegressionMLP``),
    nor LightningCLI's ``_class_path`` (nnlit records the class itself). The injected optimizer and scheduler are
    saved as ``{"class_path", "init_args"}`` data, so that checkpoints load with ``weights_only=True``; ``pretrained``
    as ``None`` (the weights it gave are in the checkpoint).
    """
    given = given_hyperparameters()
    if given is None:
        given = {}
        frame = inspect.currentframe()
        for arguments in collect_init_args(frame, [], classes=(HyperparametersMixin,)) if frame else []:
            given.update(arguments)
    defaults = {name: getattr(MLPOptions, name) for name in MLPOptions.names()}  # an option not given
    hparams = {name: given.get(name, defaults.get(name)) for name in init_arguments(cls) if name in {*given, *defaults}}
    hparams.update((k, v) for k, v in given.items() if k.startswith("_") and k != "_class_path")
    for key in ("optimizer", "lr_scheduler"):
        if key in hparams:
            hparams[key] = describe_callable(hparams[key])
    if "pretrained" in hparams:
        hparams["pretrained"] = None
    return hparams


def describe_callable(obj: Any) -> Any:
    """A class or ``functools.partial`` of a class as ``{"class_path", "init_args"}``: plain data, so checkpoints load
    with ``weights_only=True``. Anything else is kept as it is."""
    func, kwargs = (obj.func, dict(obj.keywords)) if isinstance(obj, functools.partial) else (obj, {})
    if isinstance(obj, functools.partial) and obj.args:
        return obj
    if isinstance(func, type):
        return {"class_path": f"{func.__module__}.{func.__qualname__}", "init_args": kwargs}
    return obj


def as_callable(spec: Any, key: str) -> Callable[..., Any]:
    """The inverse of :func:`describe_callable`: a ``{"class_path", "init_args"}`` dict becomes a partial of a class
    of ``torch.optim`` or of an already-imported module, of the kind ``key`` takes (see :mod:`nnlit.trust`)."""
    if not isinstance(spec, Mapping):
        return spec
    if "class_path" not in spec:
        raise ValueError(f"An optimizer / scheduler given as a dict needs a 'class_path' key, got {sorted(spec)}")
    return resolve_spec(spec, key, None, CALLABLE_KINDS[key])


__all__ = ["as_callable", "describe_callable", "saved_hyperparameters"]
