"""A worker of ``nnlit tune``: trials reserved in the shared storage and run until the study holds ``--trials``, a
running trial's heartbeat beaten from a thread, the last step that runs what dead workers left.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from nnlit import quiet
from nnlit.command_errors import explain
from nnlit.optuna_internals import load_optuna, trial_id
from nnlit.tune import storage as tune_storage
from nnlit.tune.progress import Progress
from nnlit.tune.settings import check_settings, study_source
from nnlit.tune.space import check_space, decoded, read_search
from nnlit.tune.trial import fit_trial

#: seconds between a running trial's heartbeats; a trial silent for twice as long is failed and retried
HEARTBEAT_SECONDS = 30


#: failed trials in a row after which a worker stops (a search space every value of which fails)
MAX_FAILURES_IN_A_ROW = 3


def open_study(options: argparse.Namespace) -> Any:
    """The study in ``--storage`` (default: ``study.db`` in ``--out``; see :func:`nnlit.tune_storage.open_storage`),
    created or continued; workers creating it at once on a fresh storage all get the one study."""
    optuna = load_optuna()
    # constant_liar: a worker's sampler treats the other workers' running trials as poor results, so parallel
    # workers do not all propose values next to the same best trial
    sampler = optuna.samplers.TPESampler(seed=options.seed, constant_liar=True)
    pruner = optuna.pruners.MedianPruner(n_warmup_steps=2)
    return tune_storage.create_or_load_study(
        options.storage, options.out, options.study, options.direction, sampler, pruner
    )


def run_worker(
    options: argparse.Namespace, overrides: Sequence[str], study: Any = None, progress: Progress | None = None
) -> Any:
    """Runs trials of the study until it holds ``--trials`` finished, running or queued ones, or until the time left
    of ``--timeout`` is shorter than the longest trial so far.

    Each trial is reserved in the storage (:func:`nnlit.tune_storage.reserve`), so workers on any number of machines
    run exactly ``--trials`` between them. A running trial records a heartbeat every ``--heartbeat`` seconds; before
    each trial a worker fails the trials whose heartbeats stopped (a killed worker's) and queues each to run again with
    its values; a trial interrupted by a signal (SIGTERM at a time limit, Ctrl-C) is queued again the same way.
    ``progress`` shows the study on one line of a terminal and prints the worker's lines above it."""
    optuna = load_optuna()
    space = read_search(options.search)
    study = open_study(options) if study is None else study
    check_space(study, space, study_source(options))
    check_settings(study, options, overrides)
    echo = progress.watch(study) if progress is not None else Progress.plain
    states = optuna.trial.TrialState
    started, failures = time.monotonic(), 0
    while True:
        tune_storage.fail_stale_trials(study, grace=2 * options.heartbeat)
        if options.timeout is not None and _out_of_time(study, options.timeout - (time.monotonic() - started)):
            break
        trial = tune_storage.reserve(study, options.trials)
        if trial is None:
            break
        in_process = r"LightningCLI's args parameter is intended"  # the trials' fits are built in this process
        with _heartbeats(study, trial, options.heartbeat), quiet.inner_fit(in_process):
            try:
                value = fit_trial(trial, options.config, space, overrides, options)
            except optuna.TrialPruned:
                frozen = study.tell(trial, state=states.PRUNED, skip_if_finished=True)
            except Exception as err:  # a bad value, a fit that diverged: recorded, and the sweep goes on
                frozen = study.tell(trial, state=states.FAIL, skip_if_finished=True)
                failures += 1
                message = explain(err)[0]  # the command line's one-line wording
                echo(f"nnlit tune: trial {frozen.number} failed: {message}", sys.stderr)
                if failures >= MAX_FAILURES_IN_A_ROW:
                    raise RuntimeError(f"{failures} trials in a row failed; the last: {message}") from err
                continue
            except BaseException:  # Ctrl-C, SIGTERM at a time limit: run again with its values by another worker
                tune_storage.fail_and_rerun(study, trial)
                raise
            else:
                # skip_if_finished: a worker that took this one for dead (no heartbeat for a while) failed it and
                # queued it again; the value is kept in the log, and the rerun counts
                frozen = study.tell(trial, value, skip_if_finished=True)
            failures = 0
        values = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in decoded(frozen).items())
        score = "" if frozen.value is None else f"{options.metric} {frozen.value:.4g} "
        echo(f"nnlit tune: trial {frozen.number} {frozen.state.name.lower()} {score}({values})", sys.stdout)
    return study


def _out_of_time(study: Any, left: float) -> bool:
    """Whether ``left`` seconds are too few for a trial as long as the study's longest so far (then says so)."""
    states = load_optuna().trial.TrialState
    finished = study.get_trials(deepcopy=False, states=(states.COMPLETE, states.PRUNED))
    longest = max(
        ((t.datetime_complete - t.datetime_start).total_seconds() for t in finished if t.datetime_start), default=0.0
    )
    if left > longest:
        return False
    print(f"nnlit tune: {max(left, 0):.0f} s left of --timeout, the longest trial took {longest:.0f} s: stopping")
    return True


def finish(options: argparse.Namespace, overrides: Sequence[str], ended: bool) -> Any:
    """The sweep's last step: fails the trials of workers that died (every running trial when all workers have
    ``ended``, else those whose heartbeat stopped, waiting for the live ones), runs the trials missing from
    ``--trials`` (the failed ones again first, with their values) and returns the study for the outputs."""
    optuna = load_optuna()
    study = open_study(options)
    running = (optuna.trial.TrialState.RUNNING,)
    while True:
        tune_storage.fail_stale_trials(study, grace=None if ended else 2 * options.heartbeat)
        if not study.get_trials(deepcopy=False, states=running):
            break
        time.sleep(min(options.heartbeat, 10))  # a live worker's trial: wait for it to end or to stop beating
    return run_worker(options, overrides, study)


@contextmanager
def _heartbeats(study: Any, trial: Any, seconds: int) -> Iterator[None]:
    """Records the trial's heartbeat every ``seconds`` while the block runs."""
    done = threading.Event()

    def beat() -> None:
        while not done.is_set():
            try:
                tune_storage.record_heartbeat(study, trial_id(trial))
            except Exception as err:  # a busy storage: the next beat may pass; two missed ones make the trial stale
                print(f"nnlit tune: trial {trial.number}: heartbeat not recorded ({err})", file=sys.stderr)
            done.wait(seconds)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
