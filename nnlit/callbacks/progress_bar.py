"""A tqdm progress bar redrawn by the clock, not after every batch."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar


class TimedProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, redrawn at most every ``interval`` seconds (and at the end of each epoch), counting
    minibatches (optimizer steps) where the training loader hands out groups of them.

    Lightning's default bar redraws after every batch, reading every progress-bar metric back from the device each
    time; for a small MLP that costs more than the training step itself. This one redraws a few times a second
    whatever the batch rate, and shows the latest training batch's ``loss`` (read back only when drawn: one host sync
    per redraw, none per step). The ``nnlit`` command uses it unless the config names another progress bar or sets
    ``trainer.enable_progress_bar: false``.

    Args:
        interval: seconds between redraws.
        process_position: as in ``TQDMProgressBar``.
        leave: as in ``TQDMProgressBar``.
    """

    def __init__(self, interval: float = 0.5, process_position: int = 0, leave: bool = False) -> None:
        super().__init__(refresh_rate=1, process_position=process_position, leave=leave)
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval < 0:
            raise ValueError(f"`interval` must be a number of seconds >= 0, got {interval!r}")
        self.interval = float(interval)
        self.redraws = 0
        self._last_draw = float("-inf")
        self._step_loss: Any = None
        self._steps_from: int | None = None  # global_step at the epoch's start, when the bar counts minibatches

    def _should_update(self, current: int, total: int) -> bool:
        # Lightning asks this after every batch; answering by the clock is the whole point of this class
        # (tests/callbacks/test_progress_bar.py fails if Lightning stops asking).
        if not self.is_enabled:
            return False
        now = time.monotonic()
        if current == total or now - self._last_draw >= self.interval:
            self._last_draw = now
            self.redraws += 1
            return True
        return False

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        # a loader of batch groups (nnlit's data module with an nnlit head) says how many minibatches an epoch has:
        # the bar counts those (optimizer steps), not Lightning's steps
        loader = trainer.train_dataloader
        group, minibatches = getattr(loader, "group", 1), getattr(loader, "num_minibatches", None)
        self._steps_from = None
        if isinstance(group, int) and group > 1 and isinstance(minibatches, int) and self.train_progress_bar.total:
            self._steps_from = trainer.global_step
            self.train_progress_bar.reset(total=min(minibatches, int(self.train_progress_bar.total) * group))
            self.train_progress_bar.initial = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._step_loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if self._steps_from is None:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
            return
        bar = self.train_progress_bar
        done = trainer.global_step - self._steps_from
        if self._should_update(done, bar.total):
            bar.n = done
            bar.refresh()
            bar.set_postfix(self.get_metrics(trainer, pl_module))

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        if self._step_loss is not None and trainer.training:
            metrics = {"loss": f"{float(self._step_loss):.3g}", **metrics}
        return metrics
