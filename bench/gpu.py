"""nnlit on a GPU against a hand-written CUDA loop, the table resident on the device, and a count of host syncs.

    python bench/gpu.py [--rows 1000000] [--epochs 3] [--batch-size 4096] [--repeats 3] [--device cuda]

The data and network of ``bench/throughput.py`` (32 features, 4 classes, 32 → 128 → 64 → 4 ReLU, SGD with momentum),
with 1M training rows and batch 4096 by default. Rows of the table, each the fastest of ``--repeats`` interleaved runs:

- ``hand-written loop``: the standardised training rows on the device, a permutation made on the device each epoch,
  ``index_select`` batches (the 1.00× baseline);
- ``nnlit fit (defaults)``: the ``nnlit`` command's objects with the Trainer's default settings on one GPU;
  ``TabularDataModule(table_on_device="auto")`` copies the table to the device once;
- ``nnlit + 4 callbacks``: the same with ``UniformInit``, ``FreezeLayers``, ``GradientSaturationMonitor`` and
  ``DeadReLUCounter``.

Then one more fit with the four callbacks (and no progress bar, which reads its values at every redraw) runs under
``torch.cuda.set_sync_debug_mode("warn")`` (``nnlit.speed.host_syncs``): every operation it flags as making the
host wait for the device is put down to the innermost line of nnlit's code on the stack (else the innermost line
outside torch), with the line that synchronised and the Trainer's stage. The script prints each place's count,
whether that is once, per epoch or per step, and the syncs from nnlit's code per step, per epoch and once. Timings read
the clock after ``torch.cuda.synchronize()``; validation passes are timed apart.

``--device cpu`` runs the script on the CPU: a dry run on a machine without a GPU (its sync count is empty).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path

import torch
from throughput import (
    CLASSES,
    FEATURES,
    LR,
    MOMENTUM,
    accuracy,
    four_callbacks,
    network,
    nnlit_args,
    nnlit_fit,
    wait_for_device,
    write_table,
)
from torch import Tensor, nn

from nnlit.speed.host_syncs import HostSyncs


def hand_loop(x: Tensor, y: Tensor, epochs: int, batch_size: int) -> tuple[float, nn.Module]:
    """Training seconds and the trained network, with ``x`` and ``y`` on the device."""
    torch.manual_seed(0)
    model = network().to(x.device)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()
    wait_for_device(model)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(x), device=x.device)
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            loss = loss_fn(model(x.index_select(0, idx)), y.index_select(0, idx))
            opt.zero_grad()
            loss.backward()
            opt.step()
    wait_for_device(model)
    return time.perf_counter() - start, model


def count_syncs(args: list[str], epochs: int) -> None:
    """Prints where and how often a fit with the four callbacks made the host wait for the device."""
    from nnlit.cli import build

    cli = build([*args, "--trainer.enable_progress_bar=false"])  # the bar reads its values at every redraw
    cli.trainer.callbacks.extend(four_callbacks())
    with HostSyncs(cli.trainer) as syncs:
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    steps = cli.trainer.global_step
    print(f"\nhost syncs in a fit with the four callbacks ({steps} optimizer steps, {epochs} epochs):")
    rows = syncs.table()
    for count, how, stage, place in rows:
        print(f"{count:>8}  {how:<9}  {stage:<12}  {place}")
    ours = syncs.from_nnlit()
    for kind in ("per step", "per batch", "per epoch", "once"):
        print(f"from nnlit's code, {kind}: {ours[kind]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="training rows")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each row, interleaved; the fastest counts")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    options = parser.parse_args()
    if options.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "bench/gpu.py: no CUDA device here (torch.cuda.is_available() is False); --device cpu for a dry run"
        )
    device = torch.device(options.device)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}; {options.rows:,} training rows, batch {options.batch_size}")

    best: dict[str, tuple[float, float]] = {}

    def record(row: str, seconds: float, acc: float) -> None:
        if row not in best or seconds < best[row][0]:
            best[row] = (seconds, acc)

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path = workdir / "table.parquet"
        write_table(options.rows, path)
        on_device = [f"--trainer.accelerator={'gpu' if device.type == 'cuda' else 'cpu'}", "--trainer.devices=1"]
        warm = torch.randn(options.batch_size * 4, FEATURES, device=device)  # CUDA's and cuBLAS's set-up, not timed
        hand_loop(warm, torch.randint(0, CLASSES, (len(warm),), device=device), 1, options.batch_size)
        for repeat in range(options.repeats):
            args = [*nnlit_args(path, options.epochs, options.batch_size, workdir / f"run{repeat}"), *on_device]
            seconds, _, model, dm, _ = nnlit_fit(args)
            x, y = dm.split_tensors("train")
            x_val, y_val = dm.split_tensors("val")
            record("nnlit fit (defaults)", seconds, accuracy(model.cpu(), x_val, y_val))
            seconds, net = hand_loop(x.to(device), y.to(device), options.epochs, options.batch_size)
            record("hand-written loop", seconds, accuracy(net.cpu(), x_val, y_val))
            seconds, _, model, _, _ = nnlit_fit(args, four_callbacks())
            record("nnlit + 4 callbacks", seconds, accuracy(model.cpu(), x_val, y_val))

        base = best["hand-written loop"][0]
        print(f"\n{'row':<24} {'samples/s':>12} {'ratio':>7} {'val acc':>8}")
        for row in ("hand-written loop", "nnlit fit (defaults)", "nnlit + 4 callbacks"):
            seconds, acc = best[row]
            print(f"{row:<24} {options.rows * options.epochs / seconds:>12,.0f} {base / seconds:>6.2f}x {acc:>8.4f}")

        if device.type != "cuda":
            print("\nno sync count on the CPU (nothing waits there): the count below only shows that the code runs")
        args = [*nnlit_args(path, options.epochs, options.batch_size, workdir / "syncs"), *on_device]
        count_syncs(args, options.epochs)


if __name__ == "__main__":
    main()
