"""nnlit's choice of CPU threads (``Threads("auto")``) against the best fixed count, on an idle and a busy machine.

    python bench/threads.py [--steps-seconds 1.5] [--repeats 2]

The bench's MLP (32 → 128 → 64 → 4, ReLU, SGD) trains on 50,000 rows with batches of 64, 256 and 4,096 rows, with 0,
1 and 2 other busy processes on the machine: the bench starts them itself (Python loops spinning on one core each)
and stops them after their cells. In each cell nnlit fits with 1 thread, with as many threads as this process may
use, and with ``Threads("auto")``; each fit trains a fixed number of minibatches (about ``--steps-seconds`` of the
fastest), timed from the first training step to the last (samples/s), the best of ``--repeats``. The last column is
the automatic choice's rate over the best fixed count's: the target is at least 0.90 in every cell.
"""

from __future__ import annotations

import argparse
import functools
import logging
import multiprocessing
import tempfile
import time
import warnings
from typing import Any

import lightning as L
import torch

from nnlit import MulticlassMLP, TabularDataModule
from nnlit.callbacks.threads import Threads, cpus_available

ROWS, FEATURES, CLASSES = 50_000, 32, 4


def spin() -> None:
    while True:
        pass


class Clock(L.Callback):
    """The wall time from the first training batch to the end of training."""

    def __init__(self) -> None:
        self.start = self.end = 0.0

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if not self.start:
            self.start = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.end = time.perf_counter()


def table() -> TabularDataModule:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(ROWS, FEATURES, generator=generator)
    teacher = torch.nn.Sequential(torch.nn.Linear(FEATURES, 16), torch.nn.Tanh(), torch.nn.Linear(16, CLASSES))
    with torch.no_grad():
        y = teacher(x).argmax(dim=1)
    return TabularDataModule.from_arrays(x.numpy(), y.numpy(), val_fraction=0.02)


def fit(threads: int | str, batch_size: int, steps: int) -> tuple[float, int]:
    """Samples/s of a fit of ``steps`` minibatches with ``threads``, and the threads it ran with."""
    data = table()
    data.batch_size = batch_size
    model = MulticlassMLP(
        in_features=FEATURES,
        num_classes=CLASSES,
        hidden=[128, 64],
        optimizer=functools.partial(torch.optim.SGD, lr=0.05),
    )
    clock, policy = Clock(), Threads(threads)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as folder:
        trainer = L.Trainer(
            max_steps=steps,
            callbacks=[clock, policy],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
            default_root_dir=folder,
        )
        trainer.fit(model, datamodule=data)
    return steps * batch_size / (clock.end - clock.start), policy.chosen or 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps-seconds", type=float, default=1.5, help="the fastest fit's length, about")
    parser.add_argument("--repeats", type=int, default=2, help="fits of each kind; the fastest counts")
    options = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("nnlit").setLevel(logging.ERROR)
    most = int(cpus_available())
    fixed = sorted({1, most})
    print(
        f"{ROWS:,} rows, MLP {FEATURES} -> 128 -> 64 -> {CLASSES}, SGD; {most} CPUs for this process, torch "
        f"{torch.__version__}\n"
    )
    print(
        "| batch | busy processes | "
        + " | ".join(f"{n} thread{'s' * (n > 1)}" for n in fixed)
        + " | auto (threads) | auto / best |"
    )
    print("| ---: | ---: | " + " | ".join("---:" for _ in fixed) + " | ---: | ---: |")
    ratios = []
    for busy in (0, 1, 2):
        burners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(busy)]
        for burner in burners:
            burner.start()
        time.sleep(0.5)
        try:
            for batch_size in (64, 256, 4096):
                rate, _ = fit(1, batch_size, 20)  # a probe, to size the fits
                steps = max(20, int(options.steps_seconds * rate / batch_size))
                rates = {n: max(fit(n, batch_size, steps)[0] for _ in range(options.repeats)) for n in fixed}
                auto = [fit("auto", batch_size, steps) for _ in range(options.repeats)]
                best_auto, chosen = max(auto)
                ratio = best_auto / max(rates.values())
                ratios.append(ratio)
                cells = " | ".join(f"{rates[n]:,.0f}" for n in fixed)
                print(f"| {batch_size} | {busy} | {cells} | {best_auto:,.0f} ({chosen}) | {ratio:.2f} |", flush=True)
        finally:
            for burner in burners:
                burner.terminate()
                burner.join()
    print(
        f"\nauto / best fixed: lowest {min(ratios):.2f}, median {sorted(ratios)[len(ratios) // 2]:.2f} "
        "(samples/s, the best of each kind's fits)"
    )


if __name__ == "__main__":
    main()
