"""Peak memory of a fit on 1M x 32 float32 rows (128 MB) against the data's size and the import baseline.

    python bench/memory.py [--rows 1000000] [--features 32]

Each measurement runs in a fresh process and reads its peak resident set size (``ru_maxrss``):

- ``baseline``: ``import torch, lightning, nnlit`` and a Trainer, no data;
- ``fit``: the same, then a numpy array of the rows (the data), ``TabularDataModule.from_arrays`` and one epoch of a
  MulticlassMLP (batch 4096, no logger or checkpoint).

Target: ``fit - baseline <= 1.5 x data``. Also checked: no copy of the data per epoch (a 3-epoch fit's peak exceeds
the 1-epoch peak by far less than the data's size).

The peak RSS counts memory the C allocator keeps after it is freed. glibc raises its mmap threshold each time a large
block is freed (up to 32 MB), after which batch-sized buffers come from the heap and their pages stay resident when
freed. The last row runs the same fit with ``MALLOC_MMAP_THRESHOLD_=131072``, which pins the threshold so freed large
blocks go back to the system: the difference between the two rows is memory the allocator kept, not memory nnlit held.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, resource, sys
import numpy as np, torch, lightning as L
import nnlit
rows, features, mode, epochs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
torch.set_num_threads(2)
trainer = L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu")
if mode == "fit":
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, features), dtype=np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    data = nnlit.TabularDataModule.from_arrays(x, y, batch_size=4096)
    model = nnlit.MulticlassMLP(in_features=features, num_classes=3, hidden=[128, 64])
    trainer.fit(model, datamodule=data)
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def peak(rows: int, features: int, mode: str, epochs: int = 1, env: dict[str, str] | None = None) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(rows), str(features), mode, str(epochs)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["peak_mb"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=32)
    options = parser.parse_args()
    data_mb = options.rows * options.features * 4 / 2**20
    baseline = peak(options.rows, options.features, "baseline")
    one = peak(options.rows, options.features, "fit", epochs=1)
    three = peak(options.rows, options.features, "fit", epochs=3)
    pinned = {"MALLOC_MMAP_THRESHOLD_": "131072"}
    live_baseline = peak(options.rows, options.features, "baseline", env=pinned)
    live = peak(options.rows, options.features, "fit", env=pinned)
    over = one - baseline
    print(f"data {data_mb:.0f} MB ({options.rows} x {options.features} float32)")
    print(f"| {'process':<22} | {'peak RSS MB':>11} |")
    print(f"| {'-' * 22} | {'-' * 10}: |")
    rows = [("baseline (imports)", baseline), ("fit, 1 epoch", one), ("fit, 3 epochs", three)]
    rows += [("baseline, pinned mmap", live_baseline), ("fit, 1 epoch, pinned", live)]
    for name, value in rows:
        print(f"| {name:<22} | {value:>11.0f} |")
    print(f"\nfit - baseline = {over:.0f} MB = {over / data_mb:.2f} x data (target <= 1.50 x)")
    held = live - live_baseline
    print(
        f"with MALLOC_MMAP_THRESHOLD_=131072: fit - baseline = {held:.0f} MB = {held / data_mb:.2f} x data "
        f"(memory nnlit holds; the other {over - held:.0f} MB are freed blocks glibc kept resident)"
    )
    growth = three - one
    print(f"3-epoch peak - 1-epoch peak = {growth:.0f} MB = {growth / data_mb:.2f} x data (a copy per epoch: >= 2 x)")


if __name__ == "__main__":
    main()
