"""Cost per training row as the data, the batch and the width grow: nnlit against the hand-written loop.

    python bench/scaling.py [--rows 10000 100000 1000000] [--batch-sizes 64 256 4096] [--widths 128 512]

One epoch per cell, the network 32 → width → width/2 → 4 (ReLU), SGD with momentum, 2 threads. nnlit runs through the
Python API (``TabularDataModule.from_arrays``, a Trainer without logger, checkpoints or bar: what is measured is the
training loop). Prints µs per row for both and their ratio; the cost per row should stay flat as the rows grow.
"""

from __future__ import annotations

import argparse
import functools
import logging
import time
import warnings

import torch
from throughput import CLASSES, FEATURES, LR, MOMENTUM, EpochTimer
from torch import nn


def hand(x: torch.Tensor, y: torch.Tensor, batch_size: int, width: int) -> float:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(FEATURES, width), nn.ReLU(), nn.Linear(width, width // 2), nn.ReLU(), nn.Linear(width // 2, CLASSES)
    )
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    start = time.perf_counter()
    order = torch.randperm(len(x))
    for i in range(0, len(x), batch_size):
        idx = order[i : i + batch_size]
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def nnlit_fit(x: torch.Tensor, y: torch.Tensor, batch_size: int, width: int) -> float:
    import lightning as L

    from nnlit import MulticlassMLP, TabularDataModule

    data = TabularDataModule.from_arrays(x, y, batch_size=batch_size, val_fraction=0.01, standardize=False)
    model = MulticlassMLP(
        in_features=FEATURES,
        num_classes=CLASSES,
        hidden=[width, width // 2],
        optimizer=functools.partial(torch.optim.SGD, lr=LR, momentum=MOMENTUM),
    )
    timer = EpochTimer()
    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[timer],
    )
    trainer.fit(model, datamodule=data)
    return timer.train_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256, 4096])
    parser.add_argument("--widths", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--threads", type=int, default=2)
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    print(f"| {'rows':>9} | {'batch':>5} | {'width':>5} | {'hand µs/row':>11} | {'nnlit µs/row':>12} | {'ratio':>5} |")
    print(f"| {'-' * 8}: | {'-' * 4}: | {'-' * 4}: | {'-' * 10}: | {'-' * 11}: | {'-' * 4}: |")
    for rows in options.rows:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(rows, FEATURES, generator=g)
        y = torch.randint(0, CLASSES, (rows,), generator=g)
        train_rows = rows - max(1, round(rows * 0.01))
        for batch_size in options.batch_sizes:
            for width in options.widths:
                h = hand(x[:train_rows], y[:train_rows], batch_size, width) / train_rows * 1e6
                n = nnlit_fit(x, y, batch_size, width) / train_rows * 1e6
                print(f"| {rows:>9} | {batch_size:>5} | {width:>5} | {h:>11.2f} | {n:>12.2f} | {h / n:>5.2f} |")


if __name__ == "__main__":
    main()
