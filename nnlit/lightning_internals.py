"""The parts of Lightning that nnlit reaches that are not public API, in one place.

Each has no public route in Lightning 2.6, says why nnlit needs it, and has a test in
``tests/test_lightning_internals.py`` that fails with a message naming the Lightning change when a release moves it.
The precision plugin's overrides (``Precision._after_closure`` and ``_clip_gradients``, which
:class:`~nnlit.precision.StepHooksPrecision` builds on) are checked by the same tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import lightning as L


@contextlib.contextmanager
def jit_is_scripting() -> Iterator[None]:
    """Lightning's flag that lets ``torch.jit.trace`` read a LightningModule without a Trainer (its ``trainer``
    property raises otherwise), for :func:`nnlit.export.export`'s trace of a subclass's own ``forward``."""
    from lightning.pytorch.core.module import _jit_is_scripting

    with _jit_is_scripting():
        yield


def batches_done_in_resumed_epoch(trainer: L.Trainer, num_batches: int) -> int:
    """Batches of the current epoch that a checkpoint taken mid-epoch had already trained on (0 when the fit is not
    resuming, or resumes at an epoch's start): the data module skips them, so a resumed epoch sees each batch once.

    Lightning restores its progress counters but does not hand them to a data module's loader."""
    if not trainer.fit_loop.restarting:
        return 0
    # checkpoints are written in on_train_batch_end, before `completed` counts the batch: `processed` has it
    done: int = getattr(trainer.fit_loop.epoch_loop.batch_progress.current, "processed", 0)
    return done if 0 < done < num_batches else 0


def hook_name(module: L.LightningModule) -> Any:
    """The name of the hook Lightning is running on ``module`` (which ``self.log`` checks)."""
    return module._current_fx_name


def set_hook_name(module: L.LightningModule, name: Any) -> None:
    """Sets what :func:`hook_name` reads, as Lightning does around each hook it calls."""
    module._current_fx_name = name


__all__ = ["batches_done_in_resumed_epoch", "hook_name", "jit_is_scripting", "set_hook_name"]
