"""A tqdm progress bar redrawn by the clock, not after every batch."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from torch import Tensor


class TimedProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, redrawn at most every ``interval`` seconds (and at the end of the fit), counting
    minibatches (optimizer steps) where the training loader hands out groups of them.

    Lightning's default bar redraws after every batch, reading every progress-bar metric back from the device each
    time; for a small MLP that costs more than the training step itself. This one redraws a few times a second
    whatever the batch rate, and shows the latest training batch's ``loss`` (read back only when drawn: one host sync
    per redraw, none per step). Epochs shorter than ``interval`` are drawn by the clock too (the epoch's start, its
    end and its metrics), and a fit's validation of a single batch draws no bar of its own (its metrics join the
    training bar's). The ``nnlit`` command uses it unless the config names another progress bar or sets
    ``trainer.enable_progress_bar: false``.

    When the output is not a terminal (a log file, a pipe, a SLURM job's output), redraws would pile up in the file:
    the bar then draws nothing and prints one line per training epoch instead, at most every ``line_interval`` seconds
    (and always the first and the last epoch), e.g. ``Epoch 12/40: loss=0.291, val/loss=0.282, val/acc=0.912``.

    Args:
        interval: seconds between redraws.
        process_position: as in ``TQDMProgressBar``.
        leave: as in ``TQDMProgressBar``.
        plain: print epoch lines instead of drawing a bar; ``None``: when standard output is not a terminal.
        line_interval: the least seconds between two epoch lines (``plain``).
    """

    def __init__(
        self,
        interval: float = 0.5,
        process_position: int = 0,
        leave: bool = False,
        plain: bool | None = None,
        line_interval: float = 5.0,
    ) -> None:
        super().__init__(refresh_rate=1, process_position=process_position, leave=leave)
        for name, value in (("interval", interval), ("line_interval", line_interval)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"`{name}` must be a number of seconds >= 0, got {value!r}")
        if plain is not None and not isinstance(plain, bool):
            raise ValueError(f"`plain` must be True, False or None, got {plain!r}")
        self.interval = float(interval)
        self.plain = plain
        self.line_interval = float(line_interval)
        self._plain = False  # the choice for this run, made in setup
        self._epoch_line: str | None = None  # the last ended epoch's line, not printed yet
        self._line_printed_at = float("-inf")
        self._validated_epoch: int | None = None  # the last epoch that ran validation in a fit
        self._line_validated = False
        self.lines: list[str] = []  # the epoch lines printed
        self.redraws = 0
        self._last_draw = float("-inf")
        self._val_bar_shown = True  # whether this validation has a bar of its own
        self._step_loss: Any = None
        self._steps_from: int | None = None  # global_step at the epoch's start, when the bar counts minibatches

    @property
    def is_enabled(self) -> bool:
        return super().is_enabled and not self._plain

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self._plain = self.plain if self.plain is not None else not sys.stdout.isatty()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._plain or self._leave or self._draw_due():
            super().on_train_epoch_end(trainer, pl_module)
        if self._plain and self._enabled:
            # the module's epoch metrics are logged after this hook: the line is completed at the next epoch's start
            limit = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs > 0 else None
            self._epoch_line = f"Epoch {trainer.current_epoch + 1}" + (f"/{limit}" if limit else "")
            self._line_validated = self._validated_epoch == trainer.current_epoch

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        fitting = trainer.state.fn == "fit" and not trainer.sanity_checking
        self._val_bar_shown = self._plain or not fitting or self.total_val_batches > 1
        if self._val_bar_shown:
            super().on_validation_start(trainer, pl_module)

    def on_validation_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self._val_bar_shown:
            super().on_validation_batch_start(trainer, pl_module, *args)

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self._val_bar_shown:
            super().on_validation_batch_end(trainer, pl_module, *args)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._val_bar_shown:
            super().on_validation_end(trainer, pl_module)
        else:  # a fit's one-batch validation: its metrics shown on the training bar when the clock says so
            self.reset_dataloader_idx_tracker()
            if self._train_progress_bar is not None and self._draw_due():
                self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self._validated_epoch = trainer.current_epoch

    def _print_epoch_line(self, trainer: L.Trainer, pl_module: L.LightningModule, last: bool) -> None:
        if self._epoch_line is None:
            return
        now = time.monotonic()
        if last or not self.lines or now - self._line_printed_at >= self.line_interval:
            metrics = {k: v for k, v in self.get_metrics(trainer, pl_module).items() if k not in ("v_num", "loss")}
            if not self._line_validated:  # no validation this epoch: the last one's values would pass for its own
                metrics = {k: v for k, v in metrics.items() if not k.startswith("val")}
            values = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
            line = f"{self._epoch_line}: {values}" if values else self._epoch_line
            print(line, flush=True)
            self.lines.append(line)
            self._line_printed_at = now
        self._epoch_line = None

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:  # type: ignore[override]
        if self.is_enabled and self._train_progress_bar is not None:  # the fit's last state, whatever the clock said
            bar = self.train_progress_bar
            bar.n = bar.total if bar.total is not None else bar.n
            bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
        super().on_train_end(trainer, pl_module)
        self._print_epoch_line(trainer, pl_module, last=True)

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

    def _draw_due(self) -> bool:
        """Whether the clock allows a redraw now (and counts it)."""
        now = time.monotonic()
        if now - self._last_draw >= self.interval:
            self._last_draw = now
            self.redraws += 1
            return True
        return False

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if self._plain or self._leave or self._train_progress_bar is None or self._draw_due():
            super().on_train_epoch_start(trainer, *args)
        else:  # Lightning's reset and description, not drawn: the next redraw shows them
            bar = self.train_progress_bar
            bar.n, bar.initial, bar.total = 0, 0, _finite_or_none(self.total_train_batches)
            bar.set_description(f"Epoch {trainer.current_epoch}", refresh=False)
        self._print_epoch_line(trainer, trainer.lightning_module, last=False)
        # a loader of batch groups (nnlit's data module with an nnlit head) says how many minibatches an epoch has:
        # the bar counts those (optimizer steps), not Lightning's steps
        loader = trainer.train_dataloader
        group, minibatches = getattr(loader, "group", 1), getattr(loader, "num_minibatches", None)
        self._steps_from = None
        if isinstance(group, int) and group > 1 and isinstance(minibatches, int) and self.train_progress_bar.total:
            self._steps_from = trainer.global_step
            self.train_progress_bar.total = min(minibatches, int(self.train_progress_bar.total) * group)
            self.train_progress_bar.n = self.train_progress_bar.initial = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._step_loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if self._steps_from is None:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
            return
        bar = self.train_progress_bar
        bar.n = trainer.global_step - self._steps_from  # counted always, drawn by the clock
        if self.is_enabled and self._draw_due():
            bar.set_postfix(self.get_metrics(trainer, pl_module))  # draws

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        # an nnlit head's epoch values arrive as tensors (nnlit.lightning_internals.publish_epoch_values): read here,
        # when drawn, not at every epoch's end
        metrics = {
            k: float(v) if isinstance(v, Tensor) else v for k, v in super().get_metrics(trainer, pl_module).items()
        }
        if self._step_loss is not None and trainer.training:
            metrics = {"loss": f"{float(self._step_loss):.3g}", **metrics}
        return metrics


def _finite_or_none(total: float) -> int | None:
    """A batch count for tqdm: ``None`` for an unknown (infinite) one, as Lightning's ``convert_inf`` gives."""
    return None if total is None or math.isinf(total) or math.isnan(total) else int(total)
