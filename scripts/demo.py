"""The main job of a clone, ``make demo``: the quick start's three ``nnlit`` commands, run in one Python process.

    python scripts/demo.py [--config FILE] [--root DIR] [OVERRIDE ...]

Trains ``configs/quickstart.yaml``, validates its best checkpoint, writes its predictions and shows their first rows.
Each step prints the ``nnlit`` command that does the same, before it runs:

    nnlit fit --config configs/quickstart.yaml
    nnlit validate --config configs/quickstart.yaml --ckpt_path best --trainer.enable_progress_bar=false
    nnlit predict --config configs/quickstart.yaml --ckpt_path best --trainer.enable_progress_bar=false \
      --prediction_writer.output_path runs/quickstart/predictions.csv

Each runs through the command's own entry point (``nnlit.cli.main``), so output, errors and exit status are the
command's; one process pays Lightning's import and start-up once instead of three times. ``--root`` puts the runs and
``predictions.csv`` in another folder than ``runs/quickstart``; an ``OVERRIDE`` (``--trainer.max_epochs=5``) is added
to each command. Run from the repository's root (``make demo`` does).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

#: the rows of the predictions file shown at the end: the header and five rows
PREDICTION_LINES = 6

#: what ``validate`` and ``predict`` add: a bar for a single pass over 600 rows says nothing
NO_BAR = "--trainer.enable_progress_bar=false"


def commands(config: str, root: str | None, overrides: list[str]) -> tuple[list[list[str]], Path]:
    """The arguments of the three ``nnlit`` commands (``fit``, ``validate``, ``predict``), and the predictions file."""
    common = ["--config", config, *([f"--trainer.default_root_dir={root}"] if root is not None else []), *overrides]
    predictions = Path(root if root is not None else "runs/quickstart") / "predictions.csv"
    best = ["--ckpt_path", "best", NO_BAR]
    return [
        ["fit", *common],
        ["validate", *common, *best],
        ["predict", *common, *best, "--prediction_writer.output_path", str(predictions)],
    ], predictions


def main(argv: list[str] | None = None) -> None:
    # no abbreviations: an override (`--trainer.…`) must never be taken for a shortened `--root` or `--config`
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0], allow_abbrev=False)
    parser.add_argument("--config", default="configs/quickstart.yaml", help="the config (default: %(default)s)")
    parser.add_argument("--root", help="the folder of the runs and predictions.csv (default: runs/quickstart)")
    args, overrides = parser.parse_known_args(argv)
    # nnlit (and Lightning) is imported once the arguments are known: `--help` answers at once
    from nnlit.cli import main as nnlit

    steps, predictions = commands(args.config, args.root, overrides)
    own = sys.argv
    try:
        for step in steps:
            print(f"\n$ {shlex.join(['nnlit', *step])}", flush=True)
            sys.argv = ["nnlit", *step]  # read as the command reads its own (LightningCLI warns of args beside argv)
            nnlit()  # an error ends the demo as it ends the command: a message and exit status 2
    finally:
        sys.argv = own
    print(f"\nFirst predictions ({predictions}):")
    with predictions.open() as rows:
        for _, line in zip(range(PREDICTION_LINES), rows):
            print(line, end="")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
