"""How well `nnlit doctor` diagnoses and fixes: faulty and healthy configs (bench/doctor_cases/), per-kind precision and
recall, top-1 / top-3, false alarms, fix success and time per case, against two baselines measured on the same cases.

    python bench/doctor.py [--split dev|held_out|all] [--only NAME ...] [--limit N] [--seeds 3] [--budget 60]
                           [--no-baselines] [--json results.json]

The cases: ``faulty.yaml`` (a shipped config plus the overrides or the table change that injects one fault, the kinds a
correct diagnosis may name, and its split) and ``healthy.yaml`` (configs with no fault, for false alarms). Development
cases are the ones the thresholds of nnlit.diagnosis were set on; held-out cases are reported apart.

For each faulty case, over ``--seeds`` seeds: the validation metric (val/acc, or val/r2 for regression) of the faulty
config against its healthy reference (the case's ``healthy`` entry, else the same config without the overrides and
the table change). A case counts as faulty only when the fault hurts by more than ``--margin``; table changes that
inflate the validation score (an ID column) are counted as injected. Then:

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
    data += ["--data.init_args.n_samples=null"] if "n_samples" in Path(config).read_text() else []
    return config, [*data, *case["overrides"]]


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
        score, took, broke, _ = fit_score(config, overrides, seed)
        scores.append(score if score is not None and math.isfinite(score) else -1.0)
        seconds.append(took)
        nan = nan or broke
    return statistics.mean(scores), seconds[0], nan


def close_to(score: float, healthy: float, regression: bool) -> bool:
    """Within 2 points of the healthy metric (R²: at least 90 % of it)."""
    return score >= 0.9 * healthy if regression else score >= healthy - 0.02


def lr_finder(config: str, overrides: list[str]) -> float | None:
    """Lightning's LR finder on the config's model and data (Lightning's own loop: automatic optimization)."""
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
        result["hurts"] = bool(case.get("table")) or score < healthy - options.margin
    with _quiet():
        diagnosis = nnlit.diagnose(config, overrides, budget=options.budget, seed=0)
    regression = diagnosis.metric == "val/r2"
    found = [f.kind for f in diagnosis.findings if f.severity in ("error", "warning")]
    result.update(found=found, doctor_seconds=diagnosis.seconds, fixes=diagnosis.fixes())
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
    healthy = [r for r in results if not r["expect"]]
    lines = [f"== {title}: {len(faulty)} faulty cases (that hurt), {len(healthy)} healthy configs"]
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("dev", "held_out", "all"), default="all")
    parser.add_argument("--only", nargs="*", help="case names")
    parser.add_argument("--limit", type=int, help="the first N cases (after --split and --only)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=float, default=60.0, help="the doctor's budget per case, seconds")
    parser.add_argument("--margin", type=float, default=0.02, help="how much a fault must hurt the metric")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--json", help="write every case's result to this file")
    options = parser.parse_args(argv)
    faulty, healthy = load(options.split, options.only, options.limit)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for case in faulty + healthy:
            start = time.perf_counter()
            result = run_case(case, options, Path(folder))
            results.append(result)
            print(
                f"{case['name']:<32} {case['split']:<9} hurts={result.get('hurts', '-')!s:<5} "
                f"found={result['found'][:3]} fix={result.get('fix_success', '-')} "
                f"doctor {result['doctor_seconds']:.1f} s / fit {result['fit_seconds']:.1f} s "
                f"({time.perf_counter() - start:.0f} s in all)",
                flush=True,
            )
    if options.json:
        Path(options.json).write_text(json.dumps(results, indent=1, default=str))
    for split in ("dev", "held_out"):
        part = [r for r in results if r["split"] == split]
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
