"""The latest epoch's checkpoint, written by the clock: at most every ``every_s`` seconds and at a fit's last epoch."""

from __future__ import annotations

import math
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from typing_extensions import override


class LastCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` for ``last.ckpt`` alone (no monitor), saved at the end of an epoch only when
    ``every_s`` seconds have passed since its last save, and always at the fit's last epoch (``max_epochs`` or
    ``max_steps`` reached, or a callback stopping the fit, as early stopping does).

    Lightning's ``ModelCheckpoint(filename="last")`` writes the file at every epoch's end: for a small table that costs
    more than the epoch itself (a few milliseconds of serialising and a safe write). A killed run resumes from
    ``last.ckpt`` (``--ckpt_path last``) and loses at most the work since its last save: ``every_s`` seconds and the
    epoch running when they ran out (saves happen at epochs' ends). ``every_s=0`` saves every epoch, as
    ``ModelCheckpoint`` does. A monitored checkpoint (the best epoch) must see every epoch: keep a ``ModelCheckpoint``
    with ``monitor`` for it.

    Args:
        dirpath: the folder; by default the run's own ``checkpoints`` folder, as for ``ModelCheckpoint``.
        filename: the file's name without ``.ckpt``.
        every_s: the least seconds between two saves (a float >= 0).
        save_weights_only: save the weights alone (such a file cannot resume a fit).

    Raises:
        ValueError: when ``every_s`` is negative or not a finite number.

    Example::

        >>> LastCheckpoint(every_s=5)
        LastCheckpoint(filename='last', every_s=5.0)
        >>> LastCheckpoint(every_s=-1)
        Traceback (most recent call last):
        ...
        ValueError: `every_s` must be a finite number of seconds >= 0, got -1
    """

    def __init__(
        self,
        dirpath: str | Path | None = None,
        filename: str = "last",
        every_s: float = 2.0,
        save_weights_only: bool = False,
    ) -> None:
        if (
            isinstance(every_s, bool)
            or not isinstance(every_s, int | float)
            or not math.isfinite(every_s)
            or every_s < 0
        ):
            raise ValueError(f"`every_s` must be a finite number of seconds >= 0, got {every_s!r}")
        super().__init__(
            dirpath=dirpath, filename=filename, save_weights_only=save_weights_only, enable_version_counter=False
        )
        self.every_s = float(every_s)
        self._saved_at = float("-inf")  # time.monotonic() of the last save
        self._decided: tuple[tuple[int, int], bool] | None = None  # ((epoch, step), whether it saves)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(filename={self.filename!r}, every_s={self.every_s})"

    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._saved_at = time.monotonic()  # a fit's first save waits `every_s` like the others
        self._decided = None

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._due(trainer):
            super().on_train_epoch_end(trainer, pl_module)

    @override
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._due(trainer):
            super().on_validation_end(trainer, pl_module)

    def _due(self, trainer: L.Trainer) -> bool:
        """Whether this point saves: one answer for the two hooks that may save at an epoch's end (``ModelCheckpoint``
        saves in one of them), unless a callback between them ends the fit (early stopping may)."""
        point = (trainer.current_epoch, trainer.global_step)
        if self._decided is not None and self._decided[0] == point:
            return self._decided[1] or _last_epoch(trainer)
        now = time.monotonic()
        # rank 0's clock decides for every rank, as ModelCheckpoint's `train_time_interval` does: a save is collective
        due = trainer.strategy.broadcast(now - self._saved_at >= self.every_s) or _last_epoch(trainer)
        if due:
            self._saved_at = now
        self._decided = (point, due)
        return due


def _last_epoch(trainer: L.Trainer) -> bool:
    """Whether the fit ends after this epoch: the conditions of Lightning's fit loop, read at the epoch's end."""
    max_epochs = trainer.max_epochs
    return (
        trainer.should_stop
        or (max_epochs is not None and max_epochs >= 0 and trainer.current_epoch + 1 >= max_epochs)
        or (trainer.max_steps >= 0 and trainer.global_step >= trainer.max_steps)
    )


__all__ = ["LastCheckpoint"]
