"""Many small fits: nnlit against a plain torch loop on a 150-row and a 10,000-row table, 100 epochs each.

    python bench/small.py [--repeats 3] [--epochs 100]

The tables: iris (150 rows, 120 for training, batch 16) and a 4-class Gaussian table of 12,500 rows (10,000 for
training, batch 64). The network is nnlit's default head (features → 64 → 64 → classes, ReLU, Adam lr 1e-3) on one
CPU thread. The baseline is the plain torch loop a user would write: shuffled minibatches, one optimizer step each,
and a validation forward per epoch (the accuracy read back to the host, as a loop that prints it does).

nnlit's rows remove one piece of Lightning's per-epoch work at a time, so that the differences between rows are the
pieces' costs: the progress bar and model summary, the checkpoint saved every epoch, the logger (TensorBoard when it
is installed, else CSV), and the validation pass. The last row is the whole ``nnlit fit`` command run in this process
(LightningCLI's parsing included, interpreter start and import excluded). Each row is the fastest of ``--repeats``
fits, timed around ``Trainer.fit`` (or the loop) with the data already loaded; the ratio is against the torch loop
measured in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import logging
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import lightning as L
import torch

from nnlit import MulticlassMLP, TabularDataModule
from nnlit.callbacks import Threads
from nnlit.lightning_cli import make

TABLES: dict[str, dict[str, Any]] = {
    "150 rows (iris)": {"dataset": "iris", "batch_size": 16},
    "10,000 rows": {"dataset": "gauss", "n_classes": 4, "n_samples": 12_500, "batch_size": 64},
}

#: Trainer options of each nnlit row, each adding one to the row before
QUIET = {"enable_progress_bar": False, "enable_model_summary": False}
ROWS: dict[str, dict[str, Any]] = {
    "nnlit, Trainer defaults": {},
    "  without bar and summary": QUIET,
    "  and without checkpoints": {**QUIET, "enable_checkpointing": False},
    "  and without logger": {**QUIET, "enable_checkpointing": False, "logger": False},
    "  and without validation": {**QUIET, "enable_checkpointing": False, "logger": False, "limit_val_batches": 0},
}


def torch_loop(data: TabularDataModule, epochs: int) -> float:
    """Seconds of the plain loop's ``epochs``."""
    x, y = data.split_tensors("train")
    xv, yv = data.split_tensors("val")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, data.num_classes),
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for first in range(0, len(x), data.batch_size):
            rows = order[first : first + data.batch_size]
            loss = torch.nn.functional.cross_entropy(net(x[rows]), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            (net(xv).argmax(dim=1) == yv).float().mean().item()
    return time.perf_counter() - start


def nnlit_fit(data: TabularDataModule, epochs: int, options: dict[str, Any]) -> float:
    """Seconds of ``Trainer.fit`` with ``options``."""
    model = MulticlassMLP(in_features=data.num_features, num_classes=data.num_classes)
    with tempfile.TemporaryDirectory() as folder:
        trainer = L.Trainer(max_epochs=epochs, default_root_dir=folder, callbacks=[Threads(1)], **options)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the summary and bar, as the command's output below
            trainer.fit(model, datamodule=data)
        return time.perf_counter() - start


def command(table: dict[str, Any], epochs: int) -> float:
    """Seconds of ``nnlit fit`` in this process: parsing, building and fitting, its report included."""
    with tempfile.TemporaryDirectory() as folder:
        args = [
            "fit",
            "--model=MulticlassMLP",
            "--data=TabularDataModule",
            *(f"--data.init_args.{key}={value}" for key, value in table.items()),
            f"--trainer.max_epochs={epochs}",
            f"--trainer.default_root_dir={folder}",
            "--threads=1",
        ]
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            make(args, run=True)
        return time.perf_counter() - start


def best(run: Callable[[], float], repeats: int) -> float:
    return min(run() for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="fits of each kind; the fastest counts")
    parser.add_argument("--epochs", type=int, default=100)
    options = parser.parse_args()
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.fabric", "nnlit"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(1)
    print(f"{options.epochs} epochs, 1 CPU thread, torch {torch.__version__}, lightning {L.__version__}\n")
    print("| table | fit | seconds | per epoch (ms) | / torch loop |")
    print("| --- | --- | ---: | ---: | ---: |")
    for label, table in TABLES.items():
        data = TabularDataModule(**table, seed=0)
        data.setup("fit")
        base = best(functools.partial(torch_loop, data, options.epochs), options.repeats)
        print(f"| {label} | plain torch loop | {base:.2f} | {1e3 * base / options.epochs:.1f} | 1.00 |", flush=True)
        for row, trainer_options in ROWS.items():
            seconds = best(functools.partial(nnlit_fit, data, options.epochs, trainer_options), options.repeats)
            print(
                f"| {label} | {row} | {seconds:.2f} | {1e3 * seconds / options.epochs:.1f} | {seconds / base:.2f} |",
                flush=True,
            )
        seconds = best(functools.partial(command, table, options.epochs), options.repeats)
        print(
            f"| {label} | `nnlit fit` in-process | {seconds:.2f} | {1e3 * seconds / options.epochs:.1f} "
            f"| {seconds / base:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
