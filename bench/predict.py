"""In-process prediction speed of :class:`nnlit.Predictor` against the bare network on a ready tensor.

    python bench/predict.py [--features 50] [--threads 1] [--repeats 5]

A binary MLP (50 → 128 → 64 → 1, ReLU) is fitted for one step on a table of 50 numeric columns and saved; the
predictor is loaded with ``Predictor.from_checkpoint``. Each row of the table times ``Predictor.predict`` on 1, 100
and 10,000 rows given as a pandas DataFrame (float64 columns, as ``read_csv`` gives them) and as a list of dicts
(``DataFrame.to_dict("records")``): column checks, float32 conversion, standardisation, the forward pass under
``torch.inference_mode()``, the sigmoid, decoded labels and the output table (a DataFrame, or a dict of lists).

The baseline (``× bare``) is the same rows as a ready, standardised float32 tensor through ``module.network``
under ``torch.inference_mode()``, measured in the same run: the ratio is what the predictor's preprocessing and
output table cost on top of the matrix multiplications. Times are the fastest of ``--repeats`` interleaved rounds,
each the mean of enough calls to last about 0.2 s.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

HIDDEN = [128, 64]
SIZES = (1, 100, 10_000)


def make_predictor(features: int, workdir: Path) -> Any:
    """A one-step fit of a binary MLP on ``features`` columns, saved and loaded back as a predictor."""
    import lightning as L

    from nnlit import BinaryMLP, TabularDataModule
    from nnlit.predictor import Predictor

    g = np.random.default_rng(0)
    x = g.normal(size=(2_000, features)) * 3 + 1
    y = np.where(x[:, 0] + x[:, 1] > 2, "yes", "no")
    dm = TabularDataModule.from_arrays(x, y, feature_names=[f"f{i}" for i in range(features)])
    trainer = L.Trainer(
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=workdir,
    )
    trainer.fit(BinaryMLP(in_features=features, hidden=HIDDEN), datamodule=dm)
    trainer.save_checkpoint(workdir / "binary.ckpt")
    return Predictor.from_checkpoint(workdir / "binary.ckpt")


def seconds_per_call(call: Callable[[], Any], budget: float = 0.2) -> float:
    """Mean seconds of one call, over as many calls as fill about ``budget`` seconds."""
    call()
    start = time.perf_counter()
    call()
    single = max(time.perf_counter() - start, 1e-7)
    calls = max(3, int(budget / single))
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=int, default=50, help="numeric columns of the table")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds; the fastest counts")
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        predictor = make_predictor(options.features, Path(tmp))
    names = predictor.feature_names
    network = predictor.module.network
    table = pd.DataFrame(np.random.default_rng(1).normal(size=(max(SIZES), len(names))) * 3 + 1, columns=names)

    cases: dict[tuple[int, str], Callable[[], Any]] = {}
    for rows in SIZES:
        frame = table.iloc[:rows].copy()
        records = frame.to_dict("records")
        ready = ((torch.tensor(frame.to_numpy(np.float32)) - predictor.mean) / predictor.std).contiguous()

        def bare(ready: torch.Tensor = ready) -> Any:
            with torch.inference_mode():
                return network(ready)

        cases[rows, "bare nn.Module"] = bare
        cases[rows, "DataFrame"] = lambda frame=frame: predictor.predict(frame)
        cases[rows, "list of dicts"] = lambda records=records: predictor.predict(records)
        # the same rows, the same answers
        expected = torch.sigmoid(bare().view(-1)).numpy()
        np.testing.assert_allclose(predictor.predict(frame)[f"prob_{predictor.classes[1]}"], expected, rtol=1e-6)

    best = dict.fromkeys(cases, float("inf"))
    for _ in range(options.repeats):
        for key, call in cases.items():
            best[key] = min(best[key], seconds_per_call(call))

    print(
        f"\nbinary MLP {len(names)} → {' → '.join(map(str, HIDDEN))} → 1, {options.threads} thread(s), "
        f"fastest of {options.repeats} interleaved rounds, torch {torch.__version__}, pandas {pd.__version__}"
    )
    print(f"| {'rows':>6} | {'input':<14} | {'rows/s':>11} | {'ms / call':>9} | {'µs / row':>8} | {'× bare':>7} |")
    print(f"| {'-' * 5}: | {'-' * 14} | {'-' * 10}: | {'-' * 8}: | {'-' * 7}: | {'-' * 6}: |")
    for (rows, name), seconds in best.items():
        ratio = seconds / best[rows, "bare nn.Module"]
        print(
            f"| {rows:>6,} | {name:<14} | {rows / seconds:>11,.0f} | {seconds * 1e3:>9.3f} | "
            f"{seconds * 1e6 / rows:>8.2f} | {ratio:>6.1f}x |"
        )


if __name__ == "__main__":
    main()
