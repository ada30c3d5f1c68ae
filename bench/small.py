"""Many small fits: nnlit against a plain torch loop and a bare LightningModule on a 150-row and a 10,000-row table.

    python bench/small.py [--repeats 3] [--epochs-small 100] [--epochs-large 20]

The tables: iris (150 rows, 120 for training, batch 16, 100 epochs) and a 4-class Gaussian table of 12,500 rows
(10,000 for training, batch 64, 20 epochs). The network is nnlit's default head (features → 64 → 64 → classes, ReLU,
Adam) on one CPU thread. The baseline is the plain torch loop a user would write: shuffled minibatches, one optimizer
step each, and a validation forward per epoch (the accuracy read back to the host, as a loop that prints it does).

The second baseline is the floor Lightning sets: a bare ``LightningModule`` (the same network, optimizer and
minibatches, the loss logged per training epoch and the validation loss and accuracy per validation epoch) under a
plain ``L.Trainer`` validating every epoch, first with every optional piece off (bar, summary, checkpoint, logger),
then with the Trainer's defaults. nnlit's rows remove one piece of Lightning's per-epoch work at a time, so that the
differences between rows are the pieces' costs. The last two rows are the ``nnlit fit`` command run in this process
(LightningCLI's parsing included, interpreter start and import excluded): with the table alone, and with the shipped
quick-start config (``--config quickstart``: best and last checkpoints, the CSV logger, the end-of-fit report and
pictures, the bar drawn as on a terminal) on the bench's table. Each row is the fastest of ``--repeats`` fits, timed
around ``Trainer.fit`` (or the loop, or the command) with the data already loaded; the ratios are against the torch loop
and the bare LightningModule (optional pieces off) measured in the same run.
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
from collections.abc import Callable, Iterator
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
BARE = {**QUIET, "enable_checkpointing": False, "logger": False}
ROWS: dict[str, dict[str, Any]] = {
    "nnlit, Trainer defaults": {},
    "  without bar and summary": QUIET,
    "  and without checkpoints": {**QUIET, "enable_checkpointing": False},
    "  and without logger": BARE,
    "  and without validation": {**BARE, "limit_val_batches": 0},
}


def network(in_features: int, classes: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(in_features, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, classes),
    )


def torch_loop(data: TabularDataModule, epochs: int) -> float:
    """Seconds of the plain loop's ``epochs``."""
    x, y = data.split_tensors("train")
    xv, yv = data.split_tensors("val")
    net = network(x.shape[1], data.num_classes)
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


class Minibatches:
    """The torch loop's batching as a loader: shuffled minibatches of tensors already in memory (``shuffle``), or the
    whole split as one batch; no ``DataLoader``, whose per-batch collation would be counted as Lightning's cost."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool) -> None:
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.x)) if self.shuffle else torch.arange(len(self.x))
        for first in range(0, len(self.x), self.batch_size):
            rows = order[first : first + self.batch_size]
            yield self.x[rows], self.y[rows]


class BareModule(L.LightningModule):
    """What a user writes without nnlit: the network, its loss, Adam, and ``self.log`` of the epoch's metrics."""

    def __init__(self, in_features: int, classes: int) -> None:
        super().__init__()
        self.net = network(in_features, classes)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], index: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train/loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], index: int) -> None:
        x, y = batch
        logits = self.net(x)
        self.log("val/loss", torch.nn.functional.cross_entropy(logits, y))
        self.log("val/acc", (logits.argmax(dim=1) == y).float().mean(), prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def bare_lightning(data: TabularDataModule, epochs: int, options: dict[str, Any]) -> float:
    """Seconds of ``Trainer.fit`` of :class:`BareModule` with ``options``."""
    x, y = data.split_tensors("train")
    xv, yv = data.split_tensors("val")
    model = BareModule(x.shape[1], data.num_classes)
    train, val = Minibatches(x, y, data.batch_size, shuffle=True), Minibatches(xv, yv, len(xv), shuffle=False)
    with tempfile.TemporaryDirectory() as folder:
        trainer = L.Trainer(max_epochs=epochs, default_root_dir=folder, num_sanity_val_steps=0, **options)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            trainer.fit(model, train_dataloaders=train, val_dataloaders=val)  # type: ignore[arg-type]
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


class Terminal(io.StringIO):
    """Output that says it is a terminal, so that the bar draws as it does for a user at one."""

    def isatty(self) -> bool:
        return True


def command(table: dict[str, Any], epochs: int, config: str | None) -> float:
    """Seconds of ``nnlit fit`` in this process: parsing, building and fitting, its report included."""
    with tempfile.TemporaryDirectory() as folder:
        args = [
            "fit",
            *((f"--config={config}",) if config else ("--model=MulticlassMLP", "--data=TabularDataModule")),
            *(f"--data.init_args.{key}={value}" for key, value in table.items()),
            f"--trainer.max_epochs={epochs}",
            f"--trainer.default_root_dir={folder}",
            "--threads=1",
        ]
        start = time.perf_counter()
        with contextlib.redirect_stdout(Terminal()), contextlib.redirect_stderr(io.StringIO()):
            make(args, run=True)
        return time.perf_counter() - start


def best(run: Callable[[], float], repeats: int) -> float:
    return min(run() for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="fits of each kind; the fastest counts")
    parser.add_argument("--epochs-small", type=int, default=100, help="epochs on iris")
    parser.add_argument("--epochs-large", type=int, default=20, help="epochs on the 10,000-row table")
    parser.add_argument("--only", nargs="*", default=None, help="rows whose name contains one of these words")
    options = parser.parse_args()
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.fabric", "nnlit"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(1)
    print(f"1 CPU thread, torch {torch.__version__}, lightning {L.__version__}, fastest of {options.repeats}\n")
    print("| table | fit | seconds | per epoch (ms) | / torch loop | / bare Lightning |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for (label, table), epochs in zip(TABLES.items(), (options.epochs_small, options.epochs_large), strict=True):
        data = TabularDataModule(**table, seed=0)
        data.setup("fit")
        runs: dict[str, Callable[[], float]] = {
            "plain torch loop": functools.partial(torch_loop, data, epochs),
            "bare LightningModule, optional pieces off": functools.partial(bare_lightning, data, epochs, BARE),
            "bare LightningModule, Trainer defaults": functools.partial(bare_lightning, data, epochs, {}),
            **{row: functools.partial(nnlit_fit, data, epochs, trainer) for row, trainer in ROWS.items()},
            "`nnlit fit` in-process": functools.partial(command, table, epochs, None),
            "`nnlit fit --config quickstart` (shipped defaults)": functools.partial(
                command, table, epochs, "quickstart"
            ),
        }
        base = best(runs.pop("plain torch loop"), options.repeats)
        floor = best(runs.pop("bare LightningModule, optional pieces off"), options.repeats)
        measured = {"plain torch loop": base, "bare LightningModule, optional pieces off": floor}
        for row, run in {**measured, **runs}.items():
            if row not in measured and options.only is not None and not any(word in row for word in options.only):
                continue
            seconds = measured[row] if row in measured else best(run, options.repeats)  # type: ignore[arg-type]
            print(
                f"| {label}, {epochs} epochs | {row} | {seconds:.2f} | {1e3 * seconds / epochs:.1f} "
                f"| {seconds / base:.2f} | {seconds / floor:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
