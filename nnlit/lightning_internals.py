"""The parts of Lightning that nnlit reaches that are not public API, in one place.

Each has no public route in Lightning 2.6, says why nnlit needs it, and has a test in
``tests/test_lightning_internals.py`` that fails with a message naming the Lightning change when a release moves it.
Two overrides of private methods live with their classes and are checked by the same tests:
``Precision._after_closure`` / ``_clip_gradients`` (:class:`~nnlit.StepHooksPrecision`, which runs only the
step hooks someone overrides), and ``LightningCLI._parse_ckpt_path`` (made a no-op by
:class:`~nnlit.lightning_cli.NNLitCLI`: LightningCLI would merge a checkpoint's hyperparameters into the config,
class path included, so a file would choose the class the command builds).
:class:`~nnlit.callbacks.TimedProgressBar` overrides ``TQDMProgressBar._should_update`` (the one place that decides
when the bar redraws); ``tests/callbacks/test_progress_bar.py`` fails if Lightning stops asking it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import lightning as L


@contextlib.contextmanager
def jit_is_scripting() -> Iterator[None]:
    """Lightning's flag that lets ``torch.jit.trace`` read a LightningModule without a Trainer (its ``trainer``
    property raises otherwise), for :func:`nnlit.export.export`'s trace of a subclass's own ``forward``."""
    from lightning.pytorch.core.module import _jit_is_scripting

    with _jit_is_scripting():
        yield


def attached_trainer(module: L.LightningModule) -> L.Trainer | None:
    """The Trainer ``module`` is attached to, or ``None``: the module's ``trainer`` property raises instead of
    answering ``None`` (a module is built, checked and called without a Trainer too)."""
    return module._trainer


def given_hyperparameters() -> dict[str, Any] | None:
    """The arguments LightningCLI is building a LightningModule with, read inside that module's ``__init__`` (its
    config's ``init_args`` with the linked values, ``_class_path`` and ``_instantiator``); ``None`` outside.
    ``save_hyperparameters()`` saves exactly these; nnlit's modules save them filtered to their own arguments."""
    from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters

    given = _given_hyperparameters.get()
    return None if given is None else dict(given)


def hook_name(module: L.LightningModule) -> Any:
    """The name of the hook Lightning is running on ``module`` (which ``self.log`` checks)."""
    return module._current_fx_name


def set_hook_name(module: L.LightningModule, name: Any) -> None:
    """Sets what :func:`hook_name` reads, as Lightning does around each hook it calls."""
    module._current_fx_name = name


def publish_epoch_values(trainer: L.Trainer, values: Mapping[str, Any], shown: Collection[str] = ()) -> None:
    """Puts a fit's epoch values where ``self.log(name, value, logger=False)`` leaves them for callbacks (checkpoints'
    and early stopping's monitors, schedulers, reports): in ``trainer.callback_metrics``, and those named in ``shown``
    in ``trainer.progress_bar_metrics`` (as tensors: a bar that takes them reads them when it draws), without
    Lightning's result collection, which costs about 0.3 ms a call (it moves each stored entry to the value's device).
    Both properties return the dict the Trainer keeps and merges its own results into; it is replaced only when the
    Trainer resets its metrics (at a fit's start and after the sanity check), so the values stay for the fit."""
    trainer.callback_metrics.update(values)
    trainer.progress_bar_metrics.update({name: values[name] for name in shown if name in values})


__all__ = [
    "attached_trainer",
    "given_hyperparameters",
    "hook_name",
    "jit_is_scripting",
    "publish_epoch_values",
    "set_hook_name",
]
