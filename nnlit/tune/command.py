"""The ``nnlit tune`` command: its arguments, the workers it starts, the outputs at the end."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from nnlit import example_configs, quiet
from nnlit.optuna_internals import quiet_optuna
from nnlit.tune.outputs import write_outputs
from nnlit.tune.progress import Progress
from nnlit.tune.settings import check_settings, default_metric, metric_direction
from nnlit.tune.space import read_search
from nnlit.tune.worker import HEARTBEAT_SECONDS, finish, open_study, run_worker


def parser() -> argparse.ArgumentParser:
    p = quiet.CommandParser(
        prog="nnlit tune",
        description="Search hyperparameters of a config with Optuna; any other --key=value applies to every trial.",
    )
    p.add_argument("--config", required=True, help="the base config (a file or a shipped name)")
    p.add_argument("--search", required=True, help="the search space (a file or a shipped name)")
    p.add_argument("--trials", type=int, default=20, help="finished trials the study should hold (default 20)")
    p.add_argument("--timeout", type=float, default=None, help="seconds after which this worker starts no trial")
    p.add_argument("--metric", default=None, help="default: val/acc (classifiers) or val/loss (regression)")
    p.add_argument("--direction", choices=["minimize", "maximize"], default=None)
    p.add_argument("--folds", type=int, default=None, help="K-fold cross-validation per trial (K >= 2)")
    p.add_argument(
        "--storage",
        default=None,
        help="where the study lives: journal:PATH (a file on a shared filesystem, for a SLURM array), or a database "
        "URL (sqlite:///..., postgresql://...); default: study.db in --out",
    )
    p.add_argument("--study", default="nnlit", help="the study's name in the storage")
    p.add_argument("--out", default=None, help="the sweep's folder; default: <default_root_dir>/tune")
    p.add_argument("--workers", type=int, default=1, help="processes on this machine sharing the study")
    p.add_argument("--seed", type=int, default=None, help="the sampler's seed")
    p.add_argument("--heartbeat", type=int, default=HEARTBEAT_SECONDS, help="seconds between a trial's heartbeats")
    p.add_argument(
        "--no-outputs", action="store_true", help="a worker of several (a SLURM array task): no best.yaml, no report"
    )
    p.add_argument(
        "--finish",
        action="store_true",
        help="the last step of a sweep whose workers have ended: fail their stale trials, run the missing ones again, "
        "write best.yaml",
    )
    return p


def main(args: Sequence[str] | None = None) -> None:
    """``nnlit tune …``: see the module's docstring."""
    argv = list(sys.argv[1:] if args is None else args)
    options, overrides = parser().parse_known_args(argv)
    options.config = example_configs.resolve(options.config)
    options.search = example_configs.resolve_search(options.search)
    if options.trials < 1 or options.workers < 1 or (options.folds is not None and options.folds < 2):
        raise ValueError(
            f"--trials and --workers must be >= 1 and --folds >= 2, got {options.trials}, {options.workers}, "
            f"{options.folds}"
        )
    metric, direction = default_metric(options.config)
    if options.metric is None:
        options.metric, options.direction = metric, options.direction or direction
    elif options.direction is None:
        options.direction = metric_direction(options.metric)
    if options.out is None:
        root = ((yaml.safe_load(Path(options.config).read_text()) or {}).get("trainer") or {}).get("default_root_dir")
        options.out = str(Path(root or "runs") / "tune")
    read_search(options.search)  # errors before any process starts
    with quiet_optuna():  # Optuna's log and its experimental notes, for this command only
        _run(options, overrides, argv)


def _run(options: argparse.Namespace, overrides: list[str], argv: list[str]) -> None:
    """The sweep: ``--finish``'s last step, or this worker with ``--workers`` - 1 others, then the outputs."""
    if options.finish:
        write_outputs(finish(options, overrides, ended=False), options, overrides)
        return
    check_settings(open_study(options), options, overrides)  # created once, before the workers start
    workers = []
    for index in range(1, options.workers):
        command = [sys.executable, "-m", "nnlit.cli", "tune", *_without(argv, "--workers", "--seed")]
        command += ["--workers", "1", "--no-outputs"]
        if options.seed is not None:  # each worker's sampler its own seed, or they would propose the same values
            command += ["--seed", str(options.seed + index)]
        workers.append(subprocess.Popen(command))
    try:
        with Progress(options, None if options.no_outputs else sys.stderr) as progress:  # a worker's own: none
            run_worker(options, overrides, progress=progress)
    except BaseException:
        for worker in workers:  # none is left running after the command ends
            worker.terminate()
        raise
    finally:
        failed = [worker.wait() for worker in workers]
    if any(failed):
        print(f"nnlit tune: {sum(1 for code in failed if code)} worker(s) ended with an error", file=sys.stderr)
    if not options.no_outputs:
        # every worker this command started has ended. A study in the sweep's own folder is theirs alone: its running
        # trials are dead, and run again here. A --storage may be shared with workers on other machines: their live
        # trials (heartbeats still coming) are waited for, so every folder's best.yaml is the study's final best.
        write_outputs(finish(options, overrides, ended=options.storage is None), options, overrides)


def _without(argv: list[str], *flags: str) -> list[str]:
    """``argv`` without ``flags`` (``--flag value`` or ``--flag=value``)."""
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item in flags:
            skip = True
        elif not item.startswith(tuple(f"{flag}=" for flag in flags)):
            out.append(item)
    return out
