"""One trial of ``nnlit tune``: the config fitted with the trial's values (each fold with ``--folds``), the metric
reported to Optuna's pruner after each validation.
"""

from __future__ import annotations

import argparse
import json
import math
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L

from nnlit.optuna_internals import load_optuna
from nnlit.tune.space import suggest

#: how many epochs apart two folds' reports are, so that the pruner compares the same fold and epoch across trials
FOLD_STEPS = 100_000


class TrialReport(L.Callback):
    """Reports the metric to an Optuna trial after each validation, and stops the fit when the pruner says so; keeps
    the best value seen."""

    def __init__(self, trial: Any, metric: str, maximize: bool, step_offset: int = 0) -> None:
        self.trial, self.metric, self.maximize, self.step_offset = trial, metric, maximize, step_offset
        self.best: float | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        logged = trainer.callback_metrics.get(self.metric)
        if logged is None:
            names = ", ".join(sorted(trainer.callback_metrics)) or "none"
            raise ValueError(f"--metric {self.metric!r} was not logged; the metrics are: {names}")
        value = float(logged)
        if self.best is None or (value > self.best if self.maximize else value < self.best):
            self.best = value
        self.trial.report(value, self.step_offset + trainer.current_epoch)
        if self.trial.should_prune():
            raise load_optuna().TrialPruned(f"epoch {trainer.current_epoch}: {self.metric} {value:.4g}")


def fit_trial(
    trial: Any, config: str, space: dict[str, dict[str, Any]], overrides: Sequence[str], options: argparse.Namespace
) -> float:
    """Fits the config with the trial's values (each fold with ``--folds``) and returns its score."""
    from nnlit.lightning_cli import build

    params = {key: suggest(trial, key, spec) for key, spec in space.items()}
    maximize = options.direction == "maximize"
    root = Path(options.out) / "trials" / f"trial_{trial.number}"
    trial.set_user_attr("folder", str(root.resolve()))  # where its runs are, on the machine named with it
    trial.set_user_attr("host", socket.gethostname())
    scores = []
    for fold in range(options.folds or 1):
        values = (f"--{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in params.items())
        args = ["--config", config, *overrides, *values]
        args += [f"--trainer.default_root_dir={root / f'fold_{fold}' if options.folds else root}", "--report=false"]
        args += ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
        if options.folds:
            args += [f"--data.init_args.folds={options.folds}", f"--data.init_args.fold={fold}"]
        cli = build(args)
        report = TrialReport(trial, options.metric, maximize, step_offset=fold * FOLD_STEPS)
        cli.trainer.callbacks.append(report)  # type: ignore[attr-defined]
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        if report.best is None:
            raise ValueError(f"No validation ran in trial {trial.number}, so {options.metric!r} has no value")
        scores.append(report.best)
    mean = sum(scores) / len(scores)
    trial.set_user_attr("folds", scores)
    trial.set_user_attr("std", math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores)))
    return mean
