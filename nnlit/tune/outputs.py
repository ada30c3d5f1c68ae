"""What a sweep leaves in its folder: ``best.yaml`` (a config ``nnlit fit`` trains), ``trials.csv``, the pictures
(with matplotlib), and the report it prints.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from nnlit import safe_write
from nnlit.optuna_internals import load_optuna
from nnlit.tune import storage as tune_storage
from nnlit.tune.settings import best_config, study_source
from nnlit.tune.space import check_space, decoded, read_search


def write_outputs(study: Any, options: argparse.Namespace, overrides: Sequence[str]) -> list[Path]:
    """``best.yaml``, ``trials.csv`` and the pictures in ``--out``; prints the report."""
    optuna = load_optuna()
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
    params = {key: value for key, value in decoded(best).items() if key in space}
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
