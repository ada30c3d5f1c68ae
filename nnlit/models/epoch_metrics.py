"""The callback through which an :class:`~nnlit.MLPModule` logs its epoch metrics, so that a subclass's own epoch
hooks need no ``super()``."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from nnlit.speed.batch_groups import step_schedulers


class EpochMetrics(Callback):
    """Starts, computes, logs and resets an :class:`~nnlit.MLPModule`'s loss and metrics once per epoch and stage,
    and steps its epoch schedulers under nnlit's batch-group loop (see :mod:`nnlit.speed.batch_groups`).

    The module's ``configure_callbacks`` adds it, so ``on_train_epoch_end`` and the other epoch hooks are free for a
    subclass: overriding them without ``super()`` loses nothing. Lightning calls it before the module's own epoch
    hooks, so those already see this epoch's values in ``trainer.callback_metrics``. The epoch metrics are logged with
    ``step`` set to ``trainer.global_step``, the number of optimizer steps, so that the logs count minibatches under the
    batch-group loop as in Lightning's own.
    """

    @override
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        _module(pl_module)._start_epoch("train")

    @override
    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        _module(pl_module)._start_epoch("val")

    @override
    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        _module(pl_module)._start_epoch("test")

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        module = _module(pl_module)
        module._log_epoch("train")
        if not module.automatic_optimization:  # Lightning's own loop steps them itself
            step_schedulers(module, "epoch")

    @override
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        _module(pl_module)._log_epoch("val")

    @override
    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        _module(pl_module)._log_epoch("test")

    @override
    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        # The loggers save by the clock; a run killed after this checkpoint and resumed from it would never log again
        # the epochs the checkpoint holds: they are written now, so the loggers hold every epoch a resume starts after.
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            for logger in trainer.loggers:
                logger.save()


class _Nothing:
    """What the hooks act on for a LightningModule that is not an MLPModule (a Trainer kept from an nnlit fit and used
    again with another module keeps this callback): nothing."""

    automatic_optimization = True

    def _start_epoch(self, stage: str) -> None:
        pass

    def _log_epoch(self, stage: str) -> None:
        pass


def _module(pl_module: L.LightningModule) -> Any:
    return pl_module if hasattr(pl_module, "_log_epoch") else _Nothing()


__all__ = ["EpochMetrics"]
