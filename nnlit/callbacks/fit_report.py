"""One compact table when a fit ends: capacity, final metrics, what the monitors saw, and their advice."""

from __future__ import annotations

import importlib.util
import io
import math
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from torch import nn
from typing_extensions import override

from nnlit import safe_write
from nnlit.callbacks.dead_relu import DeadReLUCounter
from nnlit.callbacks.gradient_saturation import GradientSaturationMonitor
from nnlit.callbacks.non_finite_loss import DOCTOR_HINT
from nnlit.diagnosis.config import learning_rate_range
from nnlit.diagnosis.finding import Finding, ranked
from nnlit.diagnosis.training import chance_level, loss_curve, overfitting

#: the columns of the layer table
COLUMNS = ("layer", "kind", "params", "grad norm", "dead", "saturated")


class FitReport(Callback):
    """Prints a report when a fit ends, and writes it to ``<trainer.log_dir>/report.txt`` when there is a logger.

    - the model: its class, parameter count (trainable and frozen), and epochs trained;
    - the final epoch's logged metrics, train against validation (every ``train/<name>`` and ``val/<name>``);
    - a row per ``nn.Linear`` and per monitored activation, in the model's order: shape and parameters, the mean
      gradient norm of the last epoch (with a :class:`~nnlit.callbacks.GradientSaturationMonitor`), dead units
      (with a :class:`~nnlit.callbacks.DeadReLUCounter`) and the saturated fraction of sigmoid / tanh outputs;
    - the first / last gradient-norm ratio, and every warning the monitors raised, with its advice;
    - the diagnosis rules that need nothing but the epoch metrics the fit logged (the same rules and words as
      ``nnlit doctor``): a diverging or stalled training loss, a validation loss that rises while the training loss
      falls, a validation score at chance. They read the ``train/loss``, ``val/loss`` and ``acc`` or ``r2`` values
      already logged, once per epoch: no extra work in the fit. When any rule or monitor finds something, the report
      names ``nnlit doctor``, which measures more, verifies a fix and weighs the finding by what the fix wins back
      (a warning whose fix gains nothing is an info there).

    Columns without a monitor are left blank. The table is drawn with ``rich`` when it is installed, in plain text
    otherwise. Only the global rank 0 prints. The ``nnlit fit`` command adds this callback unless the config names
    one or sets ``report: false``.

    Args:
        print_report: print the report (it is always kept in :attr:`text` and written next to the logs).

    Example::

        >>> import lightning as L
        >>> trainer = L.Trainer(callbacks=[DeadReLUCounter(), FitReport()])
    """

    def __init__(self, print_report: bool = True) -> None:
        self.print_report = print_report
        #: the last report, in plain text
        self.text = ""
        #: the epoch metrics of the fit, one mapping per finished epoch (for the diagnosis rules)
        self.epochs: list[dict[str, float]] = []
        #: what the diagnosis rules and the monitors found, ranked
        self.findings: list[Finding] = []
        self._ended: int | None = None

    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epochs, self._ended = [], None

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._ended = trainer.current_epoch

    @override
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer)  # an nnlit head logs its epoch metrics after the callbacks' epoch-end hooks

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer)

    def _record(self, trainer: L.Trainer) -> None:
        if self._ended is None:
            return
        wanted = ("train/loss", "val/loss", "train/acc", "val/acc", "train/r2", "val/r2")
        metrics = trainer.callback_metrics
        self.epochs.append({k: float(metrics[k]) for k in wanted if k in metrics and metrics[k].numel() == 1})
        self._ended = None

    @override
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        sections = report_sections(trainer, pl_module)
        self.findings = diagnose_epochs(self.epochs, getattr(getattr(trainer, "datamodule", None), "num_classes", None))
        self.findings += learning_rate_range(*optimizer_rate(trainer))
        monitors = [c for c in trainer.callbacks if isinstance(c, DeadReLUCounter | GradientSaturationMonitor)]  # type: ignore[attr-defined]
        measured = [f for m in monitors for f in m.findings]
        if measured:  # dead units or vanishing gradients explain a stalled loss better than a low learning rate
            self.findings = [f for f in self.findings if not (f.kind == "lr_too_low" and f.where == "train/loss")]
        self.findings = ranked([*self.findings, *measured])
        sections["notes"] += [
            f"diagnosis: {f.severity} {f.kind}: {f.message}" for f in self.findings if not _from(f, monitors)
        ]
        if self.findings:
            sections["notes"].append(f"Run {DOCTOR_HINT} for the evidence, a verified fix and what it wins back.")
        self.text = render_plain(sections)
        if trainer.loggers and trainer.log_dir:
            path = Path(trainer.log_dir) / "report.txt"
            safe_write.write_text(path, self.text)
        if self.print_report:
            if importlib.util.find_spec("rich") is not None:
                print_rich(sections)
            else:
                print(self.text)


def report_sections(trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
    """What the report shows, as plain data: ``title``, ``metrics`` (rows of name, train, val), ``layers`` (rows
    of :data:`COLUMNS`), ``notes`` (lines)."""
    params = sum(p.numel() for p in pl_module.parameters())
    trainable = sum(p.numel() for p in pl_module.parameters() if p.requires_grad)
    frozen = f", {params - trainable:,} frozen" if trainable < params else ""
    epochs = trainer.current_epoch  # epochs completed
    title = f"{type(pl_module).__name__}: {params:,} parameters{frozen}, {epochs} epoch{'s' * (epochs != 1)}"

    metrics: dict[str, dict[str, float]] = {}
    for key, value in trainer.callback_metrics.items():
        stage, _, name = key.partition("/")
        if stage in ("train", "val") and name and "/" not in name and value.numel() == 1:
            metrics.setdefault(name.removesuffix("_epoch"), {})[stage] = float(value)
    metric_rows = [[name, _number(v.get("train")), _number(v.get("val"))] for name, v in metrics.items()]

    counter = _find(trainer, DeadReLUCounter)
    monitor = _find(trainer, GradientSaturationMonitor)
    last_dead = counter.history[-1] if counter and counter.history else {}
    last_grad = monitor.history[-1] if monitor and monitor.history else {}
    layers = []
    for name, module in pl_module.named_modules():
        if isinstance(module, nn.Linear):
            norm = last_grad.get("grad_norm", {}).get(name)
            shape = f"Linear {module.in_features}→{module.out_features}"
            count = sum(p.numel() for p in module.parameters())
            frozen_mark = " (frozen)" if not any(p.requires_grad for p in module.parameters()) else ""
            layers.append([name, shape + frozen_mark, f"{count:,}", _number(norm), "", ""])
            continue
        dead = {**last_dead.get("dead", {}), **last_dead.get("never_positive", {})}.get(name)
        saturated = last_grad.get("saturation", {}).get(name)
        if dead is not None or saturated is not None:
            units = last_dead.get("units", {}).get(name)
            dead_text = f"{dead}/{units}" if dead is not None else ""
            if name in last_dead.get("never_positive", {}):
                dead_text += " never >0"
            layers.append([name, type(module).__name__, "", "", dead_text, _percent(saturated)])

    notes = []
    if last_grad.get("ratio") is not None:
        notes.append(f"gradient norm, first / last layer: {last_grad['ratio']:.3g}")
    for callback in (counter, monitor):
        notes.extend(f"advice: {message}" for message in (callback.advice if callback else []))
    return {"title": title, "metrics": metric_rows, "layers": layers, "notes": notes}


def render_plain(sections: dict[str, Any]) -> str:
    """The report as plain text, columns aligned."""
    out = io.StringIO()
    out.write(f"nnlit fit report: {sections['title']}\n")
    if sections["metrics"]:
        out.write("\n" + _table(["metric", "train", "val"], sections["metrics"]))
    if sections["layers"]:
        out.write("\n" + _table(*_layer_table(sections["layers"])))
    for note in sections["notes"]:
        out.write(f"\n{note}")
    return out.getvalue().rstrip("\n") + "\n"


def print_rich(sections: dict[str, Any]) -> None:
    """Prints the report with ``rich`` tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]nnlit fit report[/bold]: {sections['title']}")
    if sections["metrics"]:
        table = Table("metric", "train", "val")
        for row in sections["metrics"]:
            table.add_row(*row)
        console.print(table)
    if sections["layers"]:
        header, rows = _layer_table(sections["layers"])
        table = Table(*header)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    for note in sections["notes"]:
        console.print(note, markup=False)


def _layer_table(layers: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """The layer rows without the columns no monitor filled."""
    keep = [i for i in range(len(COLUMNS)) if i < 3 or any(row[i] for row in layers)]
    return [COLUMNS[i] for i in keep], [[row[i] for i in keep] for row in layers]


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = [header, ["-" * w for w in widths], *rows]
    return "".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() + "\n" for line in lines)


def _find(trainer: L.Trainer, cls: type) -> Any:
    return next((c for c in trainer.callbacks if isinstance(c, cls)), None)  # type: ignore[attr-defined]


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def optimizer_rate(trainer: L.Trainer) -> tuple[str, float | None]:
    """The first optimizer's class name and learning rate (``("", None)`` without one)."""
    optimizers = getattr(trainer, "optimizers", None) or []
    if not optimizers or not optimizers[0].param_groups:
        return "", None
    lr = optimizers[0].param_groups[0].get("lr")
    return type(optimizers[0]).__name__, float(lr) if isinstance(lr, float | int) else None


def diagnose_epochs(epochs: list[dict[str, float]], num_classes: int | None) -> list[Finding]:
    """The diagnosis rules over a fit's epoch metrics (``train/loss``, ``val/loss``, ``train/acc`` or ``train/r2``
    …): a diverging or stalled loss, overfitting, a validation score at chance (``1 / num_classes`` for accuracy, 0 for
    R²). The loss of predicting the prior is taken as ln C for C classes (the largest it can be), and 1 for regression
    (nnlit's regression head learns standardised targets).

    Example::

        >>> [f.kind for f in diagnose_epochs([{"train/loss": 1.1}, {"train/loss": 40.0}, {"train/loss": 6e6}], 3)]
        ['lr_too_high']
    """
    train = [e["train/loss"] for e in epochs if "train/loss" in e]
    val = [e["val/loss"] for e in epochs if "val/loss" in e]
    prior = math.log(num_classes) if num_classes else (1.0 if any("train/r2" in e for e in epochs) else None)
    findings = loss_curve(train, prior_loss=prior)
    if len(val) == len(train):
        findings += overfitting(train, val)
    last = epochs[-1] if epochs else {}
    if "val/acc" in last and num_classes:
        findings += chance_level(last.get("train/acc"), last["val/acc"], 1.0 / num_classes, "val/acc")
    elif "val/r2" in last:
        findings += chance_level(last.get("train/r2"), last["val/r2"], 0.0, "val/r2")
    return findings


def _from(finding: Finding, monitors: list[Any]) -> bool:
    """Whether a monitor gave ``finding`` (its advice is listed already)."""
    return any(finding in m.findings for m in monitors)
