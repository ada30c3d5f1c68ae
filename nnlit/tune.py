"""``nnlit tune``: hyperparameter search and cross-validation with Optuna, over any key of a config.

    nnlit tune --config base.yaml --search search.yaml [--trials 20] [--folds K] [--workers N] [--key=value …]

The search space is YAML over config keys, each a list of ``choices`` or a range::

    model.init_args.hidden: {choices: [[32], [64, 64]]}
    model.init_args.optimizer.init_args.lr: {low: 1.0e-4, high: 0.1, log: true}
    data.init_args.batch_size: {low: 32, high: 256, step: 32}

Each trial fits the config with the trial's values (and every other ``--key=value`` given to ``nnlit tune``) in this
process, reports the metric each epoch to Optuna's pruner (``MedianPruner``: an unpromising trial stops early), and
scores the best epoch's value; with ``--folds K`` it fits each of the K folds (``TabularDataModule(folds, fold)``) and
scores their mean (the standard deviation is kept with the trial). The study lives in the sweep's folder (``--out``,
default ``<default_root_dir>/tune``): a SQLite file, so rerunning the command continues it, and ``--workers N``
processes share it, running ``--trials`` between them. ``--storage journal:PATH`` keeps it in a journal file on a
shared filesystem (a SLURM array, ``configs/cluster/tune.sbatch``, needs no database server), ``--storage URL`` in a
database (see :mod:`nnlit.tune_storage`). A worker killed mid-trial stops sending heartbeats, and a trial stopped by a
signal is given up: either is marked failed and run again with its values. At the end (or in a ``--finish`` step after
an array): ``best.yaml`` (a complete config for ``nnlit fit --config best.yaml``), ``trials.csv``, pictures (with
matplotlib) and a report.

Needs the ``tune`` extra (optuna).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import lightning as L
import yaml

from nnlit import quiet, safe_write, tune_storage

#: how many epochs apart two folds' reports are, so that the pruner compares the same fold and epoch across trials
FOLD_STEPS = 100_000
#: seconds between a running trial's heartbeats; a trial silent for twice as long is failed and retried
HEARTBEAT_SECONDS = 30
#: failed trials in a row after which a worker stops (a search space every value of which fails)
MAX_FAILURES_IN_A_ROW = 3


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as err:
        raise ImportError("nnlit tune searches with Optuna, which is not installed: pip install 'nnlit[tune]'") from err
    # heartbeats and stale-trial retries are marked experimental by Optuna; nnlit relies on them knowingly, and beats
    # its trials itself (it asks and tells rather than calling Study.optimize)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # nnlit prints a line per trial and a report
    return optuna


# ---------------------------------------------------------------------------------------------------- the space
def read_search(path: str | Path) -> dict[str, dict[str, Any]]:
    """The search space of a YAML file: ``{config key: {choices: […]} | {low, high[, log | step]}}``, checked.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a key whose range is not one of the two forms, naming the key and what is accepted.
    """
    text = Path(path).read_text()
    space = yaml.safe_load(text) or {}
    if not isinstance(space, dict) or not space:
        raise ValueError(
            f"The search space {str(path)!r} must map config keys to ranges, e.g. 'model.init_args.lr: "
            "{low: 1.0e-4, high: 0.1, log: true}'"
        )
    for key, spec in space.items():
        form = "{choices: [...]} or {low: ..., high: ...[, log: true | step: ...]}"
        if not isinstance(spec, dict):
            raise ValueError(f"Search key {key!r}: expected {form}, got {spec!r}")
        if "choices" in spec:
            if set(spec) != {"choices"} or not isinstance(spec["choices"], list) or not spec["choices"]:
                raise ValueError(f"Search key {key!r}: `choices` must be a non-empty list alone, got {spec!r}")
            continue
        if not {"low", "high"} <= set(spec) or set(spec) - {"low", "high", "log", "step"}:
            raise ValueError(f"Search key {key!r}: expected {form}, got {spec!r}")
        low, high = spec["low"], spec["high"]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)) or not low < high:
            raise ValueError(f"Search key {key!r}: `low` and `high` must be numbers with low < high, got {spec!r}")
        if spec.get("log") and low <= 0:
            raise ValueError(f"Search key {key!r}: a log range needs low > 0, got {low!r}")
        if spec.get("log") and spec.get("step") not in (None, 1):
            raise ValueError(f"Search key {key!r}: give `log: true` or a `step`, not both (Optuna takes one)")
    return space


def suggest(trial: Any, key: str, spec: dict[str, Any]) -> Any:
    """The trial's value for ``key``: an int range when ``low``, ``high`` (and ``step``) are ints, else a float one."""
    if "choices" in spec:
        # Optuna's choices must be plain values: lists are chosen by their index, as JSON
        labels = [json.dumps(choice) for choice in spec["choices"]]
        return json.loads(trial.suggest_categorical(key, labels))
    low, high, log, step = spec["low"], spec["high"], bool(spec.get("log", False)), spec.get("step")
    if all(isinstance(v, int) for v in (low, high)) and (step is None or isinstance(step, int)):
        return trial.suggest_int(key, low, high, step=step or 1, log=log)
    return trial.suggest_float(key, float(low), float(high), log=log, step=step)


# ---------------------------------------------------------------------------------------------------- a trial
class TrialReport(L.Callback):
    """Reports the metric to an Optuna trial after each validation, and stops the fit when the pruner says so; keeps
    the best value seen."""

    def __init__(self, trial: Any, metric: str, maximize: bool, step_offset: int = 0) -> None:
        self.trial, self.metric, self.maximize, self.step_offset = trial, metric, maximize, step_offset
        self.best: float | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        logged = trainer.callback_metrics.get(self.metric)
        if logged is None:
            names = ", ".join(sorted(trainer.callback_metrics)) or "none"
            raise ValueError(f"--metric {self.metric!r} was not logged; the metrics are: {names}")
        value = float(logged)
        if self.best is None or (value > self.best if self.maximize else value < self.best):
            self.best = value
        self.trial.report(value, self.step_offset + trainer.current_epoch)
        if self.trial.should_prune():
            raise _optuna().TrialPruned(f"epoch {trainer.current_epoch}: {self.metric} {value:.4g}")


def fit_trial(
    trial: Any, config: str, space: dict[str, dict[str, Any]], overrides: Sequence[str], options: argparse.Namespace
) -> float:
    """Fits the config with the trial's values (each fold with ``--folds``) and returns its score."""
    from nnlit.cli import build

    params = {key: suggest(trial, key, spec) for key, spec in space.items()}
    maximize = options.direction == "maximize"
    root = Path(options.out) / "trials" / f"trial_{trial.number}"
    trial.set_user_attr("folder", str(root.resolve()))  # where its runs are, on the machine named with it
    trial.set_user_attr("host", socket.gethostname())
    scores = []
    for fold in range(options.folds or 1):
        values = (f"--{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in params.items())
        args = ["--config", config, *overrides, *values]
        args += [f"--trainer.default_root_dir={root / f'fold_{fold}' if options.folds else root}", "--report=false"]
        args += ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
        if options.folds:
            args += [f"--data.init_args.folds={options.folds}", f"--data.init_args.fold={fold}"]
        cli = build(args)
        report = TrialReport(trial, options.metric, maximize, step_offset=fold * FOLD_STEPS)
        cli.trainer.callbacks.append(report)  # type: ignore[attr-defined]
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        if report.best is None:
            raise ValueError(f"No validation ran in trial {trial.number}, so {options.metric!r} has no value")
        scores.append(report.best)
    mean = sum(scores) / len(scores)
    trial.set_user_attr("folds", scores)
    trial.set_user_attr("std", math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores)))
    return mean


# ---------------------------------------------------------------------------------------------------- the study
def default_metric(config: str) -> tuple[str, str]:
    """``val/loss`` minimised for a regression head (a ``class_path`` ending in ``RegressionMLP``), else ``val/acc``
    maximised; read from the config's text, importing nothing."""
    model = (yaml.safe_load(Path(config).read_text()) or {}).get("model") or {}
    name = str(model.get("class_path", "") if isinstance(model, dict) else model)
    return ("val/loss", "minimize") if name.endswith("RegressionMLP") else ("val/acc", "maximize")


#: the metrics whose direction is known: the last part of the name (``val/mae`` → ``mae``)
MINIMIZED = ("loss", "mae", "mse", "rmse", "error")
MAXIMIZED = ("acc", "accuracy", "f1", "r2", "auroc", "precision", "recall")


def metric_direction(metric: str) -> str:
    """``minimize`` or ``maximize`` for a metric nnlit's heads log.

    Raises:
        ValueError: another metric, asking for ``--direction``.
    """
    name = metric.rsplit("/", 1)[-1]
    if name in MINIMIZED:
        return "minimize"
    if name in MAXIMIZED:
        return "maximize"
    raise ValueError(f"--metric {metric!r}: say whether to maximize or minimize it with --direction")


def open_study(options: argparse.Namespace) -> Any:
    """The study in ``--storage`` (default: ``study.db`` in ``--out``; see :func:`nnlit.tune_storage.open_storage`),
    created or continued; workers creating it at once on a fresh storage all get the one study."""
    optuna = _optuna()
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
    from nnlit.cli import explain

    optuna = _optuna()
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
        values = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in _decoded(frozen, options).items())
        score = "" if frozen.value is None else f"{options.metric} {frozen.value:.4g} "
        echo(f"nnlit tune: trial {frozen.number} {frozen.state.name.lower()} {score}({values})", sys.stdout)
    return study


def _out_of_time(study: Any, left: float) -> bool:
    """Whether ``left`` seconds are too few for a trial as long as the study's longest so far (then says so)."""
    states = _optuna().trial.TrialState
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
    optuna = _optuna()
    study = open_study(options)
    running = (optuna.trial.TrialState.RUNNING,)
    while True:
        tune_storage.fail_stale_trials(study, grace=None if ended else 2 * options.heartbeat)
        if not study.get_trials(deepcopy=False, states=running):
            break
        time.sleep(min(options.heartbeat, 10))  # a live worker's trial: wait for it to end or to stop beating
    return run_worker(options, overrides, study)


class Progress:
    """The sweep on one line of a terminal, rewritten in place: trials done of ``--trials`` (the pruned among them),
    running, failed, the best value so far and the time since this worker started.

    Writes nothing when ``stream`` is not a terminal (a pipe, a log file, a SLURM job's output): the per-trial lines
    say it all there. Use it as a context manager around the worker, and print the worker's lines with the function
    :meth:`watch` returns, which clears the line, prints and draws it again.

    Args:
        options: the command's options (``--trials``, ``--metric``, ``--direction``).
        stream: where the line goes (the command gives ``sys.stderr``); ``None`` for none.
        every: seconds between two readings of the study, which other workers change.
    """

    def __init__(self, options: argparse.Namespace, stream: TextIO | None, every: float = 2.0) -> None:
        self.options, self.stream, self.every = options, stream, every
        self.live = stream is not None and stream.isatty()
        self.study: Any = None
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._text = ""

    def __repr__(self) -> str:
        return f"Progress(live={self.live}, every={self.every})"

    def __enter__(self) -> Progress:
        if self.live:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self._draw("")

    def watch(self, study: Any) -> Callable[[str, TextIO], None]:
        """Shows ``study`` from now on; returns the function printing a line above the progress line."""
        self.study = study
        self.refresh()
        return self.echo

    def line(self) -> str:
        """The progress line: ``nnlit tune: 7/20 done (1 pruned), 2 running, 0 failed, best val/acc 0.9667 (trial 4),
        1:23``."""
        states = [trial.state.name for trial in self.study.get_trials(deepcopy=False)]
        complete, pruned = states.count("COMPLETE"), states.count("PRUNED")
        text = (
            f"nnlit tune: {complete + pruned}/{self.options.trials} done ({pruned} pruned), "
            f"{states.count('RUNNING')} running, {states.count('FAIL')} failed"
        )
        if complete:
            best = self.study.best_trial  # the storage's own choice, by the study's direction
            text += f", best {self.options.metric} {best.value:.4g} (trial {best.number})"
        minutes, seconds = divmod(int(time.monotonic() - self.started), 60)
        hours, minutes = divmod(minutes, 60)
        return text + (f", {hours}:{minutes:02d}:{seconds:02d}" if hours else f", {minutes}:{seconds:02d}")

    def refresh(self) -> None:
        """Reads the study and draws the line again (nothing when not on a terminal)."""
        if not self.live or self.study is None:
            return
        text = self.line()
        with self._lock:
            self._draw(text)

    def echo(self, text: str, stream: TextIO) -> None:
        """Prints ``text`` to ``stream`` on a line of its own, above the progress line."""
        with self._lock:
            shown = self._text
            self._draw("")
            print(text, file=stream, flush=True)
            self._draw(shown)
        self.refresh()

    @staticmethod
    def plain(text: str, stream: TextIO) -> None:
        """Prints ``text`` to ``stream``, with no progress line to keep."""
        print(text, file=stream, flush=True)

    def _draw(self, text: str) -> None:
        """Replaces the line on the terminal with ``text``, cut to the terminal's width (a wrapped line could not be
        rewritten)."""
        if not self.live or self.stream is None or text == self._text:
            return
        width = shutil.get_terminal_size((100, 24)).columns - 1
        self.stream.write("\r\033[K" + text[:width])
        self.stream.flush()
        self._text = text

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.refresh()
            except Exception:  # a storage busy or gone for a moment: the next reading will do
                continue


@contextmanager
def _heartbeats(study: Any, trial: Any, seconds: int) -> Iterator[None]:
    """Records the trial's heartbeat every ``seconds`` while the block runs."""
    done = threading.Event()

    def beat() -> None:
        while not done.is_set():
            try:
                tune_storage.record_heartbeat(study, trial._trial_id)
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


# ---------------------------------------------------------------------------------------------------- the outputs
def best_config(config: str, overrides: Sequence[str], params: dict[str, Any]) -> dict[str, Any]:
    """The base config with the command's ``--key=value`` overrides and the best trial's values set."""
    tree = yaml.safe_load(Path(config).read_text()) or {}
    for key, value in [*_parse_overrides(overrides), *params.items()]:
        node = tree
        *parents, last = key.split(".")
        for part in parents:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ValueError(f"Cannot set {key!r} in {config!r}: {part!r} is not a mapping there")
            node = child
        node[last] = value
    return tree


def _parse_overrides(overrides: Sequence[str]) -> list[tuple[str, Any]]:
    pairs, items = [], list(overrides)
    while items:
        item = items.pop(0)
        if not item.startswith("--"):
            raise ValueError(f"Expected --key=value, got {item!r}")
        if "=" in item:
            key, value = item[2:].split("=", 1)
        else:
            key, value = item[2:], items.pop(0) if items else "true"
        pairs.append((key, yaml.safe_load(value)))
    return pairs


def write_outputs(study: Any, options: argparse.Namespace, overrides: Sequence[str]) -> list[Path]:
    """``best.yaml``, ``trials.csv`` and the pictures in ``--out``; prints the report."""
    optuna = _optuna()
    out = Path(options.out)
    space = read_search(options.search)
    check_space(study, space, study_source(options))  # before anything is written
    written = []
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    frame = study.trials_dataframe()
    with safe_write.opened(out / "trials.csv", "w", newline="") as file:  # a planted link is replaced, not followed
        frame.to_csv(file, index=False)
    written.append(out / "trials.csv")
    if not complete:
        print(f"nnlit tune: no trial completed in {len(study.trials)}; see {out / 'trials.csv'}")
        return written
    best = study.best_trial
    params = {key: value for key, value in _decoded(best, options).items() if key in space}
    running = [str(t.number) for t in study.trials if t.state.name == "RUNNING"]  # other workers', still going
    still = f"; trial(s) {', '.join(running)} still running, which may beat it" if running else ""
    tree = best_config(options.config, overrides, params)
    safe_write.write_text(
        out / "best.yaml",
        f"# nnlit tune: trial {best.number}, {options.metric} {best.value:.6g}{still}\n"
        + yaml.safe_dump(tree, sort_keys=False),
    )
    written.append(out / "best.yaml")
    written += _pictures(study, out)
    results = [t for t in study.trials if not tune_storage.surplus(t)]
    counts = {state: sum(t.state.name == state for t in results) for state in ("COMPLETE", "PRUNED", "FAIL")}
    std = best.user_attrs.get("std")
    spread = f" ± {std:.4g} over {options.folds} folds" if options.folds and isinstance(std, int | float) else ""
    counted = f"{counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed"
    print(f"nnlit tune report: {counted}" + (f", {len(running)} running ({', '.join(running)})" if running else ""))
    print(f"  best: trial {best.number}, {options.metric} {best.value:.4g}{spread}")
    for key, value in params.items():
        print(f"    {key}: {json.dumps(value)}")
    print(f"  nnlit fit --config {out / 'best.yaml'}")
    return written


def study_source(options: argparse.Namespace) -> str:
    """The study's file (``--out``'s ``study.db``), or ``--storage`` without the password a URL may hold."""
    if options.storage is None:
        return repr(str(Path(options.out) / "study.db"))
    return repr(re.sub(r"//[^/@]*@", "//", options.storage))


def _decoded(trial: Any, options: argparse.Namespace) -> dict[str, Any]:
    """The trial's values as the config takes them (choices are stored as JSON text)."""
    categorical = _optuna().distributions.CategoricalDistribution
    return {
        key: json.loads(value) if isinstance(trial.distributions.get(key), categorical) else value
        for key, value in trial.params.items()
    }


def check_space(study: Any, space: dict[str, dict[str, Any]], source: str = "the storage") -> None:
    """Refuses a search space whose key changed kind (choices ↔ range) from the study's earlier trials: Optuna cannot
    compare them. Refuses a study whose trials hold a key outside the search space, or ``folds`` / ``std`` attributes
    that are not numbers: a study file is data another person may have written, and a trial's values become
    ``best.yaml``, a config (which is code). ``source``: the study's file or storage, for the message."""
    categorical = _optuna().distributions.CategoricalDistribution
    for trial in study.get_trials(deepcopy=False):
        for key, distribution in trial.distributions.items():
            if key in space and isinstance(distribution, categorical) != ("choices" in space[key]):
                was = "choices" if isinstance(distribution, categorical) else "a range"
                raise ValueError(
                    f"Search key {key!r} was {was} in the earlier trials of study {study.study_name!r}: a study "
                    "keeps each key's kind; give a new --study or --out for the new space"
                )
    for trial in study.get_trials(deepcopy=False):
        foreign = sorted(set(trial.params) - set(space))
        if foreign:
            raise ValueError(
                f"Trial {trial.number} of study {study.study_name!r} in {source} holds {foreign[0]!r}, which is not a "
                "key of the search space: nnlit tune sets only the search space's keys (a key removed from the space, "
                "or a trial written by something else); give a new --study or --out"
            )
        attrs = trial.user_attrs
        folds = attrs.get("folds", [])
        numbers = [attrs.get("std", 0.0), *(folds if isinstance(folds, list) else [folds])]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
            raise ValueError(
                f"Trial {trial.number} of study {study.study_name!r} in {source} holds a `folds` or `std` attribute "
                f"that is not a number ({attrs.get('std', attrs.get('folds'))!r}): something else wrote the study"
            )


def fixed_settings(options: argparse.Namespace, overrides: Sequence[str]) -> dict[str, Any]:
    """What every trial of a study trains and is scored with besides its searched values: the base config with the
    command's ``--key=value`` overrides set, ``--folds``, ``--metric`` and ``--direction`` (as JSON would give them
    back from the storage)."""
    settings = {
        "config": best_config(options.config, overrides, {}),
        "folds": options.folds,
        "metric": options.metric,
        "direction": options.direction,
    }
    return json.loads(json.dumps(settings))


def check_settings(study: Any, options: argparse.Namespace, overrides: Sequence[str]) -> None:
    """Stores the fixed settings with a new study (its user attribute ``settings``); refuses to continue a study
    with other ones, naming each difference: its trials would not be comparable, and ``best.yaml`` would not say how
    the best trial was trained.

    Raises:
        ValueError: the study was started with other settings; the message names each key, its value then and now.
    """
    settings = fixed_settings(options, overrides)
    if "settings" not in study.user_attrs:
        study.set_user_attr("settings", settings)
    stored = study.user_attrs["settings"]  # read back: another worker may have stored its own first
    then, now = _flat(stored), _flat(settings)
    unset = object()
    shown = {
        key: [json.dumps(v) if v is not unset else "unset" for v in (then.get(key, unset), now.get(key, unset))]
        for key in then.keys() | now.keys()
    }
    changed = [f"{_flag(key)}: {was} then, {is_} now" for key, (was, is_) in sorted(shown.items()) if was != is_]
    if changed:
        raise ValueError(
            f"Study {study.study_name!r} was started with other fixed settings than this command's: "
            f"{'; '.join(changed)}. Rerun with the study's settings to continue it, or give a new --study (or --out) "
            "to start a new study with these"
        )


def _flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one mapping of dotted keys (lists are values)."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _flag(key: str) -> str:
    """A settings key as the command line writes it: ``config.trainer.max_epochs`` → ``--trainer.max_epochs``."""
    return f"--{key.removeprefix('config.')}"


def _pictures(study: Any, out: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as draw
    except ImportError:
        return []
    written = []
    for name, plot in (
        ("history", draw.plot_optimization_history),
        ("importances", draw.plot_param_importances),
        ("slice", draw.plot_slice),
    ):
        try:
            with _no_experimental_warning():
                axes = plot(study)
        except (ValueError, RuntimeError, ZeroDivisionError):  # e.g. importances of a single trial
            continue
        figure: Any = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
        with safe_write.replacing(out / f"{name}.png") as new:
            figure.savefig(new, dpi=100, bbox_inches="tight")
        plt.close(figure)
        written.append(out / f"{name}.png")
    return written


@contextmanager
def _no_experimental_warning() -> Iterator[None]:
    with warnings.catch_warnings():  # Optuna's "is experimental", matplotlib's notes on a one-point axis
        warnings.simplefilter("ignore")
        yield


# ---------------------------------------------------------------------------------------------------- the command
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
    from nnlit import example_configs

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
