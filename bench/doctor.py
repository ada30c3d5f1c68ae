"""How well `nnlit doctor` diagnoses and fixes: faulty and healthy configs (bench/doctor_cases/), per-kind precision and
recall, top-1 / top-3, false alarms, fix success and time per case, against two baselines measured on the same cases.

    python bench/doctor.py [--split dev|held_out|all] [--only NAME ...] [--limit N] [--seeds 3] [--budget 60]
                           [--no-baselines] [--json results.json] [--cache bench_doctor_cache.json] [--rerun NAME ...]
                           [--jobs 2]

``--cache`` keeps every normal fit's score (by config, overrides and seed), every LR finder suggestion and every
finished case in a JSON file, written after each case: a rerun continues where a stopped one ended, and ``--rerun``
runs the doctor again on the named cases (``--rerun all``: on every case) while reusing the fits it already measured.
``--jobs 2`` runs two cases at a time, one thread each.

The cases: ``faulty.yaml`` (a shipped config plus the overrides or the table change that injects one fault, the kinds a
correct diagnosis may name, and its split) and ``healthy.yaml`` (configs with no fault, for false alarms). Development
cases are the ones the thresholds of nnlit.diagnosis were set on; held-out cases are reported apart.

For each faulty case, over ``--seeds`` seeds: the validation metric (val/acc, or val/r2 for regression) of the faulty
config against its healthy reference (the case's ``healthy`` entry, else the same config without the overrides and
the table change). A case counts as faulty only when the fault hurts by more than ``--margin``; table changes that
inflate the validation score (an ID column) are counted as injected. A faulty case that does not hurt counts as a
healthy config of its split: an error or warning on it is a false alarm. Then:

- the doctor (``nnlit.diagnose``, seed 0, ``--budget`` seconds): its errors and warnings, ranked;
- top-1 / top-3: a kind the case expects among the first 1 / 3 findings;
- per kind: precision (cases where the doctor named it and the case expects it, over cases where it named it, healthy
  configs included) and recall (cases whose first expected kind it is and where the doctor named it);
- fix success: every verified fix applied, the metric within 2 points of the healthy reference (R²: 90 % of it), over
  the seeds; counted over the hurt cases where the doctor offered a fix;
- time: the doctor's seconds against one normal fit of the same config, measured in the same run.

Baselines on the same cases: "stop on NaN only" (a NaN loss is the only finding, with no fix) and Lightning's LR finder
read as a doctor (``Tuner.lr_find``'s suggestion, when 3× away from the config's rate, is a learning-rate finding whose
fix is that rate).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import logging
import math
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
CASES = HERE / "doctor_cases"


def load(split: str, only: list[str] | None, limit: int | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    faulty = yaml.safe_load((CASES / "faulty.yaml").read_text())
    healthy = yaml.safe_load((CASES / "healthy.yaml").read_text())
    pick = [c for c in faulty + healthy if split == "all" or c["split"] == split]
    if only:
        pick = [c for c in pick if c["name"] in only]
    if limit:
        pick = pick[:limit]
    return [c for c in pick if "expect" in c], [c for c in pick if "expect" not in c]


def materialise(case: dict[str, Any], folder: Path) -> tuple[str, list[str]]:
    """The case's config and overrides; a table change is written as a CSV the overrides point the config at."""
    from nnlit import example_configs

    config = example_configs.resolve(case["config"])
    change = case.get("table")
    if not change:
        return config, list(case["overrides"])
    import pandas as pd

    from nnlit.cli import build

    with _quiet():
        cli = build(["--config", config, "--trainer.logger=false"])
    table = cli.datamodule.table
    frame = pd.DataFrame(table.x.numpy(), columns=table.numeric)
    y = table.y.numpy()
    rng = np.random.default_rng(0)
    if change == "shuffle_labels":
        y = rng.permutation(y)
    elif change == "add_id_column":
        order = np.argsort(y.reshape(len(y), -1)[:, 0], kind="stable")  # rows sorted by label: the ID encodes it
        frame, y = frame.iloc[order].reset_index(drop=True), y[order]
        frame.insert(0, "row_id", np.arange(len(frame)))
    else:
        raise ValueError(f"Unknown table change {change!r}: shuffle_labels or add_id_column")
    target = y if y.ndim == 1 else y[:, 0]
    frame["target"] = target
    path = folder / f"{case['name']}.csv"
    frame.to_csv(path, index=False)
    data = ["--data.init_args.dataset=null", f"--data.init_args.path={path}", "--data.init_args.target=target"]
    return config, [*data, *case["overrides"]]


class Memo:
    """Results already measured: normal fits by (config, overrides, seed), LR finder suggestions, finished cases."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        data = data or {}
        self.fits: dict[str, list[Any]] = dict(data.get("fits", {}))
        self.finder: dict[str, float | None] = dict(data.get("finder", {}))
        self.cases: dict[str, dict[str, Any]] = dict(data.get("cases", {}))
        self.new_fits: dict[str, list[Any]] = {}
        self.new_finder: dict[str, float | None] = {}

    @staticmethod
    def key(*parts: Any) -> str:
        """The parts as JSON, the checkout's folder written ``<root>`` (a copy of it reads the same cache)."""
        return json.dumps(parts, default=str).replace(str(HERE.parent), "<root>")

    def as_dict(self) -> dict[str, Any]:
        return {"fits": self.fits, "finder": self.finder, "cases": self.cases}


MEMO = Memo()


def cached_fit(config: str, overrides: list[str], seed: int) -> tuple[float | None, float, bool]:
    key = Memo.key(config, overrides, seed)
    if key not in MEMO.fits:
        score, seconds, nan, _ = fit_score(config, overrides, seed)
        MEMO.fits[key] = MEMO.new_fits[key] = [score, seconds, nan]
    score, seconds, nan = MEMO.fits[key]
    return score, seconds, nan


def fit_score(config: str, overrides: list[str], seed: int) -> tuple[float | None, float, bool, Any]:
    """One normal fit: its last validation metric, its seconds, whether the loss became NaN, and its Trainer."""
    from nnlit.callbacks.non_finite_loss import NonFiniteLossError
    from nnlit.cli import build

    with tempfile.TemporaryDirectory() as root, _quiet():
        args = ["--config", config, *overrides, f"--seed_everything={seed}", f"--trainer.default_root_dir={root}"]
        args += ["--report=false", "--trainer.enable_progress_bar=false", "--trainer.logger=false"]
        args += ["--trainer.enable_model_summary=false"]
        cli = build(args)
        start = time.perf_counter()
        try:
            cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        except NonFiniteLossError:
            return None, time.perf_counter() - start, True, cli
        seconds = time.perf_counter() - start
        metrics = cli.trainer.callback_metrics
        name = "val/acc" if "val/acc" in metrics else "val/r2"
        return (float(metrics[name]) if name in metrics else None), seconds, False, cli


def mean_score(config: str, overrides: list[str], seeds: int) -> tuple[float, float, bool]:
    scores, seconds, nan = [], [], False
    for seed in range(seeds):
        score, took, broke = cached_fit(config, overrides, seed)
        scores.append(score if score is not None and math.isfinite(score) else -1.0)
        seconds.append(took)
        nan = nan or broke
    return statistics.mean(scores), seconds[0], nan


def close_to(score: float, healthy: float, regression: bool) -> bool:
    """Within 2 points of the healthy metric (R²: at least 90 % of it)."""
    return score >= 0.9 * healthy if regression else score >= healthy - 0.02


def lr_finder(config: str, overrides: list[str]) -> float | None:
    """Lightning's LR finder on the config's model and data (Lightning's own loop: automatic optimization)."""
    key = Memo.key(config, overrides)
    if key not in MEMO.finder:
        MEMO.finder[key] = MEMO.new_finder[key] = _lr_finder(config, overrides)
    return MEMO.finder[key]


def _lr_finder(config: str, overrides: list[str]) -> float | None:
    from lightning.pytorch.tuner import Tuner

    from nnlit.cli import build

    with tempfile.TemporaryDirectory() as root, _quiet():
        cli = build(["--config", config, *overrides, f"--trainer.default_root_dir={root}", "--trainer.logger=false"])
        cli.model.automatic_optimization = True
        try:
            found = Tuner(cli.trainer).lr_find(cli.model, datamodule=cli.datamodule, update_attr=False)
        except Exception:  # the finder's own failure (a NaN loss at the first rate …): no suggestion
            return None
        return None if found is None else found.suggestion()


def run_case(case: dict[str, Any], options: argparse.Namespace, folder: Path) -> dict[str, Any]:
    import nnlit

    config, overrides = materialise(case, folder)
    result: dict[str, Any] = {"name": case["name"], "split": case["split"], "expect": case.get("expect", [])}
    faulty = "expect" in case
    score, fit_seconds, nan = mean_score(config, overrides, options.seeds)
    result.update(score=score, fit_seconds=fit_seconds, nan=nan)
    regression = False
    if faulty:
        reference = case.get("healthy") or {"config": case["config"], "overrides": []}
        healthy_config, _ = materialise({"name": "ref", "config": reference["config"], "overrides": []}, folder)
        healthy, _, _ = mean_score(healthy_config, list(reference["overrides"]), options.seeds)
        result["healthy_score"] = healthy
        if nan:  # the faulty fit stopped at its NaN: one normal fit is the healthy reference's
            result["fit_seconds"] = mean_score(healthy_config, list(reference["overrides"]), 1)[1]
        result["hurts"] = bool(case.get("table")) or score < healthy - options.margin
    with _quiet():
        diagnosis = nnlit.diagnose(config, overrides, budget=options.budget, seed=0)
    regression = diagnosis.metric == "val/r2"
    found = [f.kind for f in diagnosis.findings if f.severity in ("error", "warning")]
    result.update(found=found, doctor_seconds=diagnosis.seconds, fixes=diagnosis.fixes())
    result["findings"] = [f.to_dict() for f in diagnosis.findings]  # for reading a threshold's effect afterwards
    if faulty and result["hurts"] and diagnosis.fixes():
        extra = [f"--{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in diagnosis.fixes().items()]
        fixed, _, _ = mean_score(config, [*overrides, *extra], options.seeds)
        result["fixed_score"] = fixed
        result["fix_success"] = close_to(fixed, result["healthy_score"], regression)
    result["nan_only"] = ["nan_loss"] if nan else []
    if not options.no_baselines:
        suggestion = lr_finder(config, overrides)
        with tempfile.TemporaryDirectory() as root, _quiet():
            from nnlit.doctor.probes import build_config

            built = build_config(config, overrides, root)
            lr = built.config.get("model.init_args.optimizer.init_args.lr")
        kinds: list[str] = []
        if suggestion is not None and isinstance(lr, float | int) and lr > 0:
            if suggestion > 3 * lr:
                kinds = ["lr_too_low"]
            elif suggestion < lr / 3:
                kinds = ["lr_too_high"]
        result["lr_finder"] = kinds
        result["lr_finder_suggestion"] = suggestion
        if faulty and result["hurts"] and kinds:
            fix = ["--model.init_args.optimizer.init_args.lr=" + repr(float(suggestion))]
            fixed, _, _ = mean_score(config, [*overrides, *fix], options.seeds)
            result["lr_finder_fix_success"] = close_to(fixed, result["healthy_score"], regression)
    return result


def summarise(results: list[dict[str, Any]], found_key: str, title: str) -> list[str]:
    """The tables of one split for one diagnoser (``found_key``: the doctor's ``found`` or a baseline's)."""
    faulty = [r for r in results if r["expect"] and r.get("hurts")]
    moved = [{**r, "expect": []} for r in results if r["expect"] and not r.get("hurts")]  # a fault that does not hurt
    healthy = [r for r in results if not r["expect"]] + moved
    lines = [
        f"== {title}: {len(faulty)} faulty cases (that hurt), {len(healthy)} healthy configs "
        f"({len(moved)} of them faulty cases that do not hurt)"
    ]
    if faulty:
        top1 = sum(bool(set(r[found_key][:1]) & set(r["expect"])) for r in faulty) / len(faulty)
        top3 = sum(bool(set(r[found_key][:3]) & set(r["expect"])) for r in faulty) / len(faulty)
        lines.append(f"top-1 {top1:.0%}   top-3 {top3:.0%}")
    if healthy:
        alarms = sum(bool(r[found_key]) for r in healthy)
        lines.append(f"false alarms {alarms}/{len(healthy)} ({alarms / len(healthy):.0%})")
    fix_key = "fix_success" if found_key == "found" else f"{found_key}_fix_success"
    offered = [r for r in faulty if fix_key in r]
    if offered:
        lines.append(f"fix success {sum(r[fix_key] for r in offered)}/{len(offered)} of the cases given a fix")
    named: dict[str, list[bool]] = defaultdict(list)  # kind -> for each case naming it, whether it was expected
    wanted: dict[str, list[bool]] = defaultdict(list)  # kind -> for each case whose first kind it is, whether named
    for r in faulty + healthy:
        for kind in set(r[found_key]):
            named[kind].append(kind in r["expect"])
        if r["expect"]:
            wanted[r["expect"][0]].append(r["expect"][0] in r[found_key])
    lines.append(f"{'kind':<22}{'precision':>10}{'recall':>8}{'named':>7}{'cases':>7}")
    for kind in sorted(set(named) | set(wanted)):
        precision = f"{sum(named[kind]) / len(named[kind]):.2f}" if named[kind] else "-"
        recall = f"{sum(wanted[kind]) / len(wanted[kind]):.2f}" if wanted[kind] else "-"
        lines.append(f"{kind:<22}{precision:>10}{recall:>8}{len(named[kind]):>7}{len(wanted[kind]):>7}")
    return lines


@contextlib.contextmanager
def _quiet() -> Any:
    from nnlit import quiet

    loggers = [logging.getLogger(name) for name in ("lightning", "lightning.pytorch")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with quiet.inner_fit(), warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


Job = tuple[dict[str, Any], argparse.Namespace, str]


def _work(job: Job) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], float]:
    case, options, folder = job
    MEMO.new_fits, MEMO.new_finder = {}, {}
    start = time.perf_counter()
    try:
        result = run_case(case, options, Path(folder))
    except Exception as error:  # one broken case is reported, the others still run
        result = {"name": case["name"], "split": case["split"], "expect": case.get("expect", []), "error": repr(error)}
    return case, result, {"fits": MEMO.new_fits, "finder": MEMO.new_finder}, time.perf_counter() - start


def _start_worker(data: dict[str, Any]) -> None:
    import torch

    global MEMO
    MEMO = Memo(data)
    torch.set_num_threads(1)


def main(argv: list[str] | None = None) -> None:
    global MEMO
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("dev", "held_out", "all"), default="all")
    parser.add_argument("--only", nargs="*", help="case names")
    parser.add_argument("--limit", type=int, help="the first N cases (after --split and --only)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=float, default=60.0, help="the doctor's budget per case, seconds")
    parser.add_argument("--margin", type=float, default=0.02, help="how much a fault must hurt the metric")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--json", help="write every case's result to this file")
    parser.add_argument("--cache", help="a JSON file of fits and cases already measured, read and written after each")
    parser.add_argument("--rerun", nargs="*", default=[], help="cases to diagnose again despite the cache ('all')")
    parser.add_argument("--jobs", type=int, default=1, help="cases run at a time (each with one thread)")
    options = parser.parse_args(argv)
    faulty, healthy = load(options.split, options.only, options.limit)
    cache = Path(options.cache) if options.cache else None
    MEMO = Memo(json.loads(cache.read_text()) if cache and cache.exists() else None)
    tables = cache.with_suffix(".tables") if cache else None
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for case in faulty + healthy:
        done = MEMO.cases.get(case["name"])
        fresh = "all" not in options.rerun and case["name"] not in options.rerun
        if done is not None and fresh and done.get("case") == case and done.get("seeds") == options.seeds:
            results[case["name"]] = done["result"]
        else:
            todo.append(case)
    if results:
        print(f"{len(results)} cases from {cache}, {len(todo)} to run", flush=True)
    groups = [
        [c for c in todo if (c["split"], "expect" in c) == group]
        for group in sorted({(c["split"], "expect" in c) for c in todo})
    ]
    todo = [c for row in itertools.zip_longest(*groups) for c in row if c is not None]  # a stopped run covers them all

    failed: dict[str, str] = {}

    def record(case: dict[str, Any], result: dict[str, Any], new: dict[str, Any], seconds: float) -> None:
        MEMO.fits.update(new["fits"])
        MEMO.finder.update(new["finder"])
        if "error" in result:  # not cached: a rerun tries it again
            failed[case["name"]] = result["error"]
            print(f"{case['name']:<32} {case['split']:<9} failed: {result['error']}", flush=True)
            return
        results[case["name"]] = result
        MEMO.cases[case["name"]] = {"case": case, "seeds": options.seeds, "result": result}
        if cache:
            partial = cache.with_suffix(".partial")
            partial.write_text(json.dumps(MEMO.as_dict(), default=str))
            partial.replace(cache)
        print(
            f"{case['name']:<32} {case['split']:<9} hurts={result.get('hurts', '-')!s:<5} "
            f"found={result['found'][:3]} fix={result.get('fix_success', '-')} "
            f"doctor {result['doctor_seconds']:.1f} s / fit {result['fit_seconds']:.1f} s ({seconds:.0f} s in all)",
            flush=True,
        )

    with contextlib.ExitStack() as stack:
        folder = str(tables) if tables else stack.enter_context(tempfile.TemporaryDirectory())
        Path(folder).mkdir(parents=True, exist_ok=True)
        jobs = [(case, options, folder) for case in todo]
        if options.jobs > 1 and len(jobs) > 1:
            import multiprocessing

            context = multiprocessing.get_context("spawn")
            pool = stack.enter_context(
                context.Pool(options.jobs, initializer=_start_worker, initargs=(MEMO.as_dict(),), maxtasksperchild=4)
            )
            for done in pool.imap_unordered(_work, jobs):
                record(*done)
        else:
            for job in jobs:
                record(*_work(job))
    ordered = [results[c["name"]] for c in faulty + healthy if c["name"] in results]
    if failed:
        print(f"\n{len(failed)} cases failed and are left out of the tables: {', '.join(failed)}")
    if options.json:
        Path(options.json).write_text(json.dumps(ordered, indent=1, default=str))
    for split in ("dev", "held_out"):
        part = [r for r in ordered if r["split"] == split]
        if not part:
            continue
        print()
        print("\n".join(summarise(part, "found", f"nnlit doctor, {split}")))
        print("\n".join(summarise(part, "nan_only", f"baseline: stop on NaN only, {split}")))
        if not options.no_baselines:
            print("\n".join(summarise(part, "lr_finder", f"baseline: Lightning's LR finder, {split}")))
        times = [r["doctor_seconds"] for r in part]
        ratios = [r["doctor_seconds"] / r["fit_seconds"] for r in part if r["fit_seconds"] > 0]
        print(
            f"doctor time per case: median {statistics.median(times):.1f} s, {statistics.median(ratios):.1f}× one fit"
        )


if __name__ == "__main__":
    sys.exit(main())
