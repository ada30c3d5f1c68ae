"""Time per minibatch spent calling the three step hooks, under Lightning's ``Precision`` and nnlit's
``StepHooksPrecision``.

    python bench/hooks.py [--rows 20000] [--repeats 3] [--threads 1]

Each fit is ``bench/throughput.py``'s nnlit fit (the ``nnlit`` command's objects, batch 256), with the trainer's
precision plugin set to one or the other, with the default callbacks of ``nnlit.cli.build``'s Trainer alone
(checkpoint, model summary, config saving, prediction writer; the bar is left out to keep the output readable, and
``nnlit fit`` has a FitReport in the writer's place: none of these overrides a step hook) and with nnlit's four
callbacks added.
The plugin's ``pre_backward``, ``post_backward`` and ``_after_closure`` (which call ``on_before_backward``,
``on_after_backward`` and ``on_before_optimizer_step`` on the callbacks and the module) are timed at every minibatch.
The table shows the median and the fastest of those three calls' sum, each the lowest over the interleaved repeats.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch
from throughput import four_callbacks, nnlit_args, write_table

TIMED = ("pre_backward", "post_backward", "_after_closure")


def hook_seconds(args: list[str], plugin: str, callbacks: bool) -> list[float]:
    """The time spent in the three timed plugin calls at each minibatch of one fit."""
    from lightning.pytorch.plugins.precision import Precision

    from nnlit import StepHooksPrecision
    from nnlit.cli import build

    cli = build(args)
    cli.trainer.strategy.precision_plugin = StepHooksPrecision() if plugin == "nnlit" else Precision()
    if callbacks:
        cli.trainer.callbacks.extend(four_callbacks())
    spent: list[float] = []
    precision = cli.trainer.strategy.precision_plugin
    for name in TIMED:
        method = getattr(precision, name)

        def timed(*a, _method=method, **k):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            out = _method(*a, **k)
            spent.append(time.perf_counter() - start)
            return out

        setattr(precision, name, timed)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    # three calls per minibatch, in order: sum each consecutive triple
    return [sum(spent[i : i + 3]) for i in range(0, len(spent) - 2, 3)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("nnlit").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "table.parquet"
        write_table(options.rows, path)
        args = [*nnlit_args(path, 2, 256, Path(tmp) / "run"), "--trainer.enable_progress_bar=false"]
        cases = [(plugin, callbacks) for callbacks in (False, True) for plugin in ("lightning", "nnlit")]
        medians: dict[tuple[str, bool], list[float]] = {case: [] for case in cases}
        fastest: dict[tuple[str, bool], float] = {case: float("inf") for case in cases}
        for _ in range(options.repeats):
            for case in cases:
                times = hook_seconds(args, *case)
                medians[case].append(statistics.median(times))
                fastest[case] = min(fastest[case], min(times))
    print(f"| {'plugin':<26} | {'callbacks':<20} | {'median µs/minibatch':>19} | {'fastest':>7} |")
    print(f"| {'-' * 26} | {'-' * 20} | {'-' * 18}: | {'-' * 6}: |")
    for (plugin, callbacks), values in medians.items():
        name = "Lightning `Precision`" if plugin == "lightning" else "nnlit `StepHooksPrecision`"
        which = "defaults + four" if callbacks else "defaults"
        print(f"| {name:<26} | {which:<20} | {min(values) * 1e6:>19.1f} | {fastest[plugin, callbacks] * 1e6:>7.1f} |")


if __name__ == "__main__":
    main()
