"""Pictures of a fit, written as PNG files when it ends (needs the ``plots`` extra, matplotlib)."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn
from typing_extensions import override

from nnlit.callbacks.dead_relu import DeadReLUCounter
from nnlit.callbacks.gradient_saturation import GradientSaturationMonitor
from nnlit.validation import check_int


class SavePlots(Callback):
    """Writes the pictures of :mod:`nnlit.plots` into the run's log directory when a fit ends.

    - ``curves.png``: ``loss`` and the main metric (``acc``, else ``r2``) per epoch, train against validation,
      recorded from the metrics the LightningModule logged at each epoch's end;
    - ``decision_boundary.png``: when the data module is an nnlit :class:`~nnlit.TabularDataModule` with 2 features
      and classes;
    - ``dead_units.png``: when a :class:`~nnlit.callbacks.DeadReLUCounter` is among the callbacks;
    - ``gradients.png``: when a :class:`~nnlit.callbacks.GradientSaturationMonitor` is among the callbacks.

    The files go to ``dirpath``, by default ``<trainer.log_dir>/plots`` (``lightning_logs/version_N/plots`` with the
    ``nnlit`` command). When a ``TensorBoardLogger`` is in use, each picture is also sent to it as an image
    (``plots/<name>``). Only the global rank 0 draws; nothing is drawn during the fit, so training speed is unchanged.
    The recorded metrics are saved in checkpoints: a resumed fit draws its whole history. ``nnlit plot RUN_DIR`` draws
    the same pictures from a finished run.

    Args:
        dirpath: where to write the PNG files.
        resolution: the decision boundary's grid points per axis.

    Without matplotlib (the ``plots`` extra) the fit runs as usual and draws nothing; a warning says so once.

    Example::

        >>> import lightning as L
        >>> trainer = L.Trainer(callbacks=[DeadReLUCounter(), SavePlots()])
    """

    def __init__(self, dirpath: str | None = None, resolution: int = 200) -> None:
        check_int("resolution", resolution, minimum=2)
        self.dirpath = dirpath
        self.resolution = resolution
        #: the epoch-level metrics seen so far, ``{name: {epoch: value}}``
        self.metrics: dict[str, dict[int, float]] = {}
        #: the files written by the last fit
        self.written: list[Path] = []
        self._train_epoch: int | None = None  # an ended training epoch whose metrics are not recorded yet
        #: whether matplotlib is there to draw with; without it the fit runs and draws nothing, saying so once
        self.can_draw = importlib.util.find_spec("matplotlib") is not None
        if not self.can_draw:
            rank_zero_warn("SavePlots draws no pictures: matplotlib is not installed (pip install 'nnlit[plots]')")

    # Lightning calls a callback's `on_train_epoch_end` before the LightningModule's, where nnlit's heads log their
    # training metrics; so they are read once the next epoch starts, or when the fit ends.
    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._train_epoch = trainer.current_epoch

    @override
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record_training(trainer)

    @override
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._record(trainer, "val/", trainer.current_epoch)

    @override
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record_training(trainer)
        if trainer.is_global_zero and self.can_draw:
            self.written = self.draw(trainer, pl_module)
            if self.written:
                rank_zero_info(f"SavePlots wrote {', '.join(str(p) for p in self.written)}")

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> list[Path]:
        """Draws every picture that applies to this fit, and returns the paths written."""
        from nnlit import plots

        folder = Path(self.dirpath) if self.dirpath else Path(trainer.log_dir or trainer.default_root_dir) / "plots"
        builders: dict[str, Callable[[], Any]] = {}
        if "train/loss" in self.metrics or "val/loss" in self.metrics:
            builders["curves"] = lambda: plots.curves_figure(self.metrics)
        datamodule = getattr(trainer, "datamodule", None)
        if plots.draws_boundary(datamodule):
            builders["decision_boundary"] = lambda: plots.decision_boundary_figure(
                pl_module, datamodule, self.resolution
            )
        for callback in trainer.callbacks:  # type: ignore[attr-defined]
            if isinstance(callback, DeadReLUCounter) and any(h.get("dead_units") for h in callback.history):
                builders["dead_units"] = functools.partial(plots.dead_units_figure, callback.history)
            if isinstance(callback, GradientSaturationMonitor) and any(h["grad_norm"] for h in callback.history):
                builders["gradients"] = functools.partial(plots.gradients_figure, callback.history)
        boards = [logger for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]
        written = []
        for name, build in builders.items():
            figure = build()
            for logger in boards:
                logger.experiment.add_image(
                    f"plots/{name}", plots.figure_rgb(figure), trainer.global_step, dataformats="HWC"
                )
            written.append(plots.save_figure(figure, folder / f"{name}.png"))
        return written

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"metrics": self.metrics}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.metrics = {name: dict(points) for name, points in state_dict["metrics"].items()}

    def _record_training(self, trainer: L.Trainer) -> None:
        if self._train_epoch is not None:
            self._record(trainer, "train/", self._train_epoch)
            self._train_epoch = None

    def _record(self, trainer: L.Trainer, prefix: str, epoch: int) -> None:
        for key, value in trainer.callback_metrics.items():
            if key.startswith(prefix) and not key.endswith("_step") and value.numel() == 1:
                self.metrics.setdefault(key.removesuffix("_epoch"), {})[epoch] = float(value)
