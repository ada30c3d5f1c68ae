"""The callback through which an :class:`~nnlit.MLPModule` computes and logs its epoch metrics, so that a subclass's
own epoch hooks need no ``super()``: the one place epoch metrics are logged."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from nnlit.callbacks.progress_bar import TimedProgressBar
from nnlit.lightning_internals import publish_epoch_values
from nnlit.speed.batch_groups import step_schedulers

#: seconds between the loggers' ``save()`` in a fit (the first epoch's metrics are saved at once, the rest when the fit
#: ends): a CSV logger writes its file and TensorBoard's flushes to disk (``fsync``) at each save
LOGGER_SAVE_SECONDS = 2.0


class EpochMetrics(Callback):
    """Starts, computes, logs and resets an :class:`~nnlit.MLPModule`'s loss and metrics once per epoch and stage,
    and steps its epoch schedulers under nnlit's batch-group loop (see :mod:`nnlit.speed.batch_groups`).

    An nnlit module adds it to its Trainer (:func:`~nnlit.models.base.add_default_callbacks`), so
    ``on_train_epoch_end`` and the other epoch hooks are free for a subclass: overriding them without ``super()`` loses
    nothing. Lightning calls it before the module's own epoch hooks, so those already see this epoch's values in
    ``trainer.callback_metrics``. The epoch metrics are logged with ``step`` set to ``trainer.global_step``, the number
    of optimizer steps, so that the logs count minibatches under the batch-group loop as in Lightning's own.
    """

    def __init__(self) -> None:
        self._loggers_saved_at = float("-inf")  # time.monotonic() of the loggers' last save() in a fit

    @override
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        _start_epoch(pl_module, "train")

    @override
    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        _start_epoch(pl_module, "val")

    @override
    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        _start_epoch(pl_module, "test")

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.log_epoch(trainer, pl_module, "train")
        if _is_nnlit(pl_module) and not pl_module.automatic_optimization:  # Lightning's own loop steps them itself
            step_schedulers(pl_module, "epoch")  # type: ignore[arg-type]

    @override
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.log_epoch(trainer, pl_module, "val")

    @override
    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.log_epoch(trainer, pl_module, "test")

    def log_epoch(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        """Computes, logs and resets a stage's loss and metrics: once per epoch, not per step.

        ``self.log`` of a metric in every step costs more Python than a small MLP's forward and backward pass; here it
        runs once per epoch. ``compute`` reduces across DDP ranks (torchmetrics' own sync), so every rank logs the same
        value and ``sync_dist`` is not needed. The values go to ``trainer.callback_metrics`` (monitors, the progress
        bar) through the module's ``log``. During ``fit`` they go to the loggers directly, at ``step =
        trainer.global_step`` (optimizer steps: Lightning's own step counts batch groups under nnlit's loop), saved
        every :data:`LOGGER_SAVE_SECONDS`; ``validate`` and ``test`` leave that to Lightning (it returns and prints
        only what it writes to the loggers itself).
        """
        if not _is_nnlit(module):
            return
        buffer = module._step_buffer(stage)  # type: ignore[operator]
        buffer.flush()
        metrics, loss_metric = buffer.metrics, buffer.loss_metric
        if loss_metric.update_count == 0:  # no batch this epoch (e.g. resumed at the end of an epoch)
            return
        if stage == "val" and not trainer.sanity_checking:
            module.validated_epoch = trainer.current_epoch  # type: ignore[assignment]
        values = {f"{stage}/loss": loss_metric.compute()}
        for name, value in metrics.compute().items():
            if value.numel() > 1:  # one value per output (a regression of several targets): each, and their mean
                values.update({f"{name}_{j}": part for j, part in enumerate(value.flatten())})
                value = value.mean()
            values[name] = value
        fitting = trainer.state.fn == "fit"
        shown = {f"{stage}/loss"} if stage != "test" else set()
        shown.add(f"val/{module.progress_bar_metric}" if stage == "val" else "")
        direct = fitting and not trainer.sanity_checking  # validate / test return what `log` collects
        if direct:  # `log` costs ~0.3 ms a call: only another bar's values go through it
            bar = trainer.progress_bar_callback
            publish_epoch_values(trainer, values, shown if isinstance(bar, TimedProgressBar) else ())
            shown = shown if bar is not None and not isinstance(bar, TimedProgressBar) else set()
        for name, value in values.items():
            if not direct or name in shown:
                module.log(name, value, prog_bar=name in shown, logger=not fitting)
        if fitting and not trainer.sanity_checking and trainer.loggers:
            self._write(trainer, {name: float(value) for name, value in values.items()})
        loss_metric.reset()
        metrics.reset()

    def _write(self, trainer: L.Trainer, scalars: dict[str, float]) -> None:
        """Hands a fit's epoch metrics to every logger; saves them when :data:`LOGGER_SAVE_SECONDS` have passed."""
        now = time.monotonic()
        save = now - self._loggers_saved_at >= LOGGER_SAVE_SECONDS
        for logger in trainer.loggers:
            logger.log_metrics({**scalars, "epoch": trainer.current_epoch}, step=trainer.global_step)
            if save:  # a CSV file rewritten, TensorBoard's events flushed to disk: not every epoch of a small fit
                logger.save()
        if save:
            self._loggers_saved_at = now

    @override
    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        # The loggers save by the clock; a run killed after this checkpoint and resumed from it would never log again
        # the epochs the checkpoint holds: they are written now, so the loggers hold every epoch a resume starts after.
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            for logger in trainer.loggers:
                logger.save()


def _is_nnlit(module: Any) -> bool:
    """Whether ``module`` is an nnlit module: a Trainer kept from an nnlit fit and used again with another module
    keeps this callback, which then leaves that module alone."""
    return hasattr(module, "_step_buffer")


def _start_epoch(module: Any, stage: str) -> None:
    """Forgets what an interrupted epoch of the stage left behind (after a finished one, :meth:`EpochMetrics.log_epoch`
    left nothing: the metrics' resets, ~0.1 ms a stage and epoch, are skipped)."""
    if _is_nnlit(module):
        buffer = module._step_buffer(stage)
        if buffer.untouched():
            return
        buffer.clear()
        buffer.metrics.reset()
        buffer.loss_metric.reset()


__all__ = ["LOGGER_SAVE_SECONDS", "EpochMetrics"]
