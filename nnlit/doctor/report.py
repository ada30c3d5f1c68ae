"""The doctor's terminal report and pictures."""

from __future__ import annotations

import io
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nnlit import safe_write
from nnlit.doctor import Diagnosis


def render(diagnosis: Diagnosis, config: str, overrides: Sequence[str], written: Sequence[str] = ()) -> str:
    """The ranked report: one block per finding (errors first), with its evidence and its fix as ``--key=value``.

    Example::

        >>> from nnlit.diagnosis import Finding
        >>> d = Diagnosis([Finding("dead_relu", "warning", "16/16 units …", where="network.act2")], 4.2)
        >>> print(render(d, "demo.yaml", []))  # doctest: +NORMALIZE_WHITESPACE
        nnlit doctor: demo.yaml: 1 finding in 4.2 s
        <BLANKLINE>
        1. warning dead_relu at network.act2
           16/16 units …
           no verified fix
    """
    out = io.StringIO()
    count = len(diagnosis.findings)
    out.write(f"nnlit doctor: {config}: {count} finding{'s' * (count != 1)} in {diagnosis.seconds:.1f} s\n")
    if diagnosis.healthy:
        out.write("healthy: no error or warning.\n")
    for rank, finding in enumerate(diagnosis.findings, start=1):
        where = f" at {finding.where}" if finding.where else ""
        out.write(f"\n{rank}. {finding.severity} {finding.kind}{where}\n   {finding.message}\n")
        if finding.evidence:
            out.write(f"   evidence: {_evidence(finding.evidence)}\n")
        verified = finding.verified or {}
        if "needed" in verified:
            gain, needed = verified["gain"], verified["needed"]
            moved = f"the best fix tried moved {verified['metric']} by {gain:+.3f}"
            how = f" ({verified['measured']})" if verified.get("measured") else ""
            out.write(f"   info, not a warning: {moved}{how}; a warning needs {needed:+.3f}\n")
        if finding.fix:
            numbers = _before_after(verified)
            out.write(f"   fix{numbers}: {finding.fix_line()}\n")
        elif finding.kind == "no_signal":
            out.write("   no config change can fix this\n")
        elif verified.get("skipped"):
            out.write(f"   fix not verified ({verified['skipped']})\n")
        elif finding.severity != "info":
            tried = f" (tried: {_before_after(verified).strip(' ()')})" if verified.get("after") is not None else ""
            out.write(f"   no verified fix{tried}\n")
    fixes = diagnosis.fixes()
    if fixes:
        lines = [f"--{k}={_value(v)}" for k, v in fixes.items()]
        command = shlex.join(["nnlit", "fit", "--config", config, *overrides]) + " " + " ".join(lines)
        out.write(f"\nevery verified fix at once:\n  {command}\n")
    for path in written:
        out.write(f"wrote {path}\n")
    return out.getvalue().rstrip("\n")


def write_pictures(diagnosis: Diagnosis, folder: Path) -> list[str]:
    """``loss_curves.png`` (training and validation loss before and after the best fix) and ``layers.png``
    (gradient norm, dead and saturated shares per layer, before and after) in ``folder``; nothing without matplotlib
    (the ``plots`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    before, after = diagnosis.runs.get("before"), diagnosis.runs.get("after")
    if before is None:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    runs = [("before", before)] + ([("after the fix", after)] if after is not None else [])
    written = []
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    spans = []
    for label, run in runs:
        for ax, key in zip(axes, ("train/loss", "val/loss"), strict=True):
            values = [e.get(key) for e in run.epochs]
            ax.plot(range(len(values)), values, marker="o", label=label)
            ax.set_title(key)
            ax.set_xlabel("epoch")
            spans += [v for v in values if v is not None and v > 0]
    if spans and max(spans) > 20 * min(spans):  # a diverging curve: the healthy one stays readable
        for ax in axes:
            ax.set_yscale("log")
    axes[0].legend()
    figure.tight_layout()
    with safe_write.replacing(folder / "loss_curves.png") as new:  # a planted link is replaced, not followed
        figure.savefig(new, dpi=110)
    plt.close(figure)
    written.append(str(folder / "loss_curves.png"))
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for offset, (label, run) in enumerate(runs):
        _bars(axes[0], run.grad_norms, offset, label, log=True)
        _bars(axes[1], {n: c / u for n, (c, u) in run.dead.items() if u}, offset, label)
        _bars(axes[2], run.saturation, offset, label)
    for ax, title in zip(
        axes, ("gradient norm ‖∇W‖ per layer", "dead share per ReLU layer", "saturated share"), strict=True
    ):
        ax.set_title(title)
        ax.legend(fontsize=7)
    figure.tight_layout()
    with safe_write.replacing(folder / "layers.png") as new:  # a planted link is replaced, not followed
        figure.savefig(new, dpi=110)
    plt.close(figure)
    written.append(str(folder / "layers.png"))
    return written


def _bars(ax: Any, values: dict[str, float], offset: int, label: str, log: bool = False) -> None:
    if not values:
        return
    names = list(values)
    ax.bar([i + 0.4 * offset for i in range(len(names))], list(values.values()), width=0.4, label=label)
    ax.set_xticks(range(len(names)), [n.replace("network.", "") for n in names], rotation=45, fontsize=7)
    if log:
        ax.set_yscale("log")


def _evidence(evidence: dict[str, dict[str, Any]]) -> str:
    parts = []
    for name, e in evidence.items():
        threshold = "" if e.get("threshold") is None else f" (threshold {e['op']} {_number(e['threshold'])})"
        value = _number(e["value"])
        parts.append(f"{name} {value}{threshold}" if e.get("op") != "suggests" else f"{name} suggests {value}")
    return "; ".join(parts)


def _before_after(verified: dict[str, Any]) -> str:
    if verified.get("after") is None:
        return ""
    before = "NaN loss" if verified.get("before") is None else f"{verified['before']:.3f}"
    stacked = ""
    if verified.get("with"):  # the earlier fixes this one was judged on top of
        stacked = ", both runs with " + " ".join(f"--{k}={_value(v)}" for k, v in verified["with"].items())
    if verified.get("whole fit"):
        stacked += ", whole fits"

    return f" ({verified['metric']} {before} → {verified['after']:.3f}{stacked})"


def _number(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _value(value: Any) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value)
    return shlex.quote(text)
