"""The base of callbacks whose forward hooks count only what the model computes on training batches."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from typing_extensions import override


class CountsTrainingBatches(Callback):
    """Keeps :attr:`counting` true while the model runs a training batch (and, with ``count_validation``, the
    epoch's validation batches), so a forward hook needs one attribute read to know whether to count.

    Reading the trainer's state instead (``trainer.training``, ``trainer.sanity_checking``: enum comparisons) in every
    forward hook costs more than the count itself. The flags also keep out what is not a training batch: the sanity
    check, and other callbacks calling the model after validation (a plot, say). A run resumed from a mid-epoch
    checkpoint continues its epoch without ``on_train_epoch_start``; ``on_train_start`` starts it instead.

    Subclasses implement :meth:`start_epoch` (forget the last epoch's counts) and call ``super()`` first in
    ``on_train_epoch_end`` when they override it.
    """

    #: whether the forward hooks count now
    counting = False
    #: count the validation batches of a training epoch too
    count_validation = False
    _in_train_epoch = False

    def start_epoch(self) -> None:
        """Forgets what the previous epoch counted."""

    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.on_train_epoch_start(trainer, pl_module)

    @override
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._in_train_epoch = True
        self.start_epoch()

    @override
    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.counting = True

    @override
    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.counting = self.count_validation and self._in_train_epoch  # never the sanity check before epoch 0

    @override
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.counting = False  # counting resumes with the next training batch

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._in_train_epoch = self.counting = False
