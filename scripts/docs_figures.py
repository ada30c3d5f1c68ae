"""Writes the figures the documentation quotes from the quick start: `python scripts/docs_figures.py`.

Runs what `make demo` runs (scripts/demo.py: `nnlit fit`, `validate` and `predict` with configs/quickstart.yaml), in a
temporary folder, and writes docs/figures/quickstart.md: the validation metrics and the first rows of the predictions
file, with the date, the machine and the versions. The pages include that file (`--8<-- "docs/figures/quickstart.md"`)
instead of copying its numbers, and tests/test_docs.py reruns this script and checks that the numbers still hold.
The run is seeded; on a CPU it is repeatable. About 10 s on two CPU cores.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "quickstart.yaml"
OUT = ROOT / "docs" / "figures" / "quickstart.md"
DEMO = ROOT / "scripts" / "demo.py"
#: the rows of predictions.csv that `make demo` shows: the header and five rows
PREDICTION_LINES = 6
METRIC = re.compile(r"(val/\w+)\W+?([-+]?\d+\.\d+(?:[eE][-+]?\d+)?)")


def run_quickstart(workdir: Path) -> tuple[dict[str, str], list[str]]:
    """The quick start's validation metrics as `make demo` prints them, and the first lines of its predictions file."""
    root = workdir / "runs" / "quickstart"
    command = [
        sys.executable,
        str(DEMO),
        "--config",
        str(CONFIG),
        "--root",
        str(root),
        "--trainer.enable_progress_bar=false",
    ]
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    # the validation table is printed on stdout, after the demo's line for `nnlit validate`
    validated = done.stdout.split("$ nnlit validate", 1)[-1].split("$ nnlit predict", 1)[0]
    metrics = dict(METRIC.findall(validated))
    if set(metrics) != {"val/acc", "val/f1", "val/loss"}:
        raise SystemExit(f"expected val/acc, val/f1 and val/loss in the output of `nnlit validate`:\n{validated}")
    return metrics, (root / "predictions.csv").read_text().splitlines()[:PREDICTION_LINES]


def versions() -> str:
    import lightning
    import torch

    import nnlit as package

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.machine()})"
    return (
        f"nnlit {package.__version__}, torch {torch.__version__}, lightning {lightning.__version__}, "
        f"Python {platform.python_version()}, {device}"
    )


def render(metrics: dict[str, str], predictions: list[str]) -> str:
    width = max(len(name) for name in metrics) + 2
    lines = [
        "<!-- Written by scripts/docs_figures.py; rerun it rather than editing this file. -->",
        f"Measured on {datetime.date.today().isoformat()} with {versions()}:",
        "",
        "```text",
        *(f"{name:<{width}}{value}" for name, value in sorted(metrics.items())),
        "",
        "First predictions (runs/quickstart/predictions.csv):",
        *predictions,
        "```",
    ]
    return "\n".join(lines) + "\n"


def figures(text: str) -> list[float]:
    """The numbers of a written figures file, in order (the fenced block's, not the date's or versions')."""
    block = text.split("```text", 1)[1].split("```", 1)[0]
    return [float(x) for x in re.findall(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])", block)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"the file to write (default: {OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nnlit-docs-") as workdir:
        metrics, predictions = run_quickstart(Path(workdir))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(metrics, predictions))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
