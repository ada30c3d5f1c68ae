"""nnlit's shipped configs for the real data sets against scikit-learn, on the same seeded splits.

    python bench/quality.py [--seeds 5] [--datasets iris wine breast_cancer diabetes]

For each data set and seed: TabularDataModule(seed=seed) splits the rows 60 / 20 / 20. nnlit trains on the training
rows with configs/real/<name>.yaml, keeps the epoch with the best validation loss, and is scored on the test rows.
scikit-learn's MLPClassifier / MLPRegressor and LogisticRegression / Ridge train on the same training rows,
standardised with the training rows' statistics, and are scored on the same test rows. Prints mean ± std of test
accuracy (classification) or R² (regression), and nnlit's gap to the best baseline in points.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def nnlit_score(name: str, seed: int, workdir: Path) -> tuple[float, object]:
    from nnlit.cli import build

    args = [
        "--config",
        str(ROOT / "configs" / "real" / f"{name}.yaml"),
        f"--seed_everything={seed}",
        f"--data.init_args.seed={seed}",
        f"--trainer.default_root_dir={workdir}",
        "--trainer.logger=false",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
    ]
    cli = build(args)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    (result,) = cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path="best", verbose=False)
    key = "test/r2" if cli.datamodule.num_classes is None else "test/acc"
    return float(result[key]), cli.datamodule


def sklearn_scores(datamodule: object, seed: int) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.preprocessing import StandardScaler

    table = datamodule.table
    train, test = datamodule.split_indices("train").numpy(), datamodule.split_indices("test").numpy()
    x, y = table.x.numpy(), table.y.numpy()
    scaler = StandardScaler().fit(x[train])
    x_train, x_test = scaler.transform(x[train]), scaler.transform(x[test])
    if table.classes is None:
        y_train, y_test = y[train].ravel(), y[test].ravel()
        models = {
            "sklearn MLPRegressor": MLPRegressor(max_iter=2000, random_state=seed),
            "sklearn Ridge": Ridge(),
        }
        return {n: r2_score(y_test, m.fit(x_train, y_train).predict(x_test)) for n, m in models.items()}
    models = {
        "sklearn MLPClassifier": MLPClassifier(max_iter=2000, random_state=seed),
        "sklearn LogisticRegression": LogisticRegression(max_iter=2000),
    }
    return {n: accuracy_score(y[test], m.fit(x_train, y[train]).predict(x_test)) for n, m in models.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--datasets", nargs="+", default=["iris", "wine", "breast_cancer", "diabetes"])
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    print(f"{'data set':<14} {'metric':<8} {'model':<28} {'mean':>7} {'std':>7}")
    for name in args.datasets:
        scores: dict[str, list[float]] = {}
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory() as workdir:
                score, datamodule = nnlit_score(name, seed, Path(workdir))
            scores.setdefault("nnlit", []).append(score)
            for model, value in sklearn_scores(datamodule, seed).items():
                scores.setdefault(model, []).append(value)
        metric = "R²" if "sklearn Ridge" in scores else "accuracy"
        means = {model: statistics.mean(values) for model, values in scores.items()}
        for model, values in scores.items():
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            print(f"{name:<14} {metric:<8} {model:<28} {means[model]:>7.3f} {std:>7.3f}")
        best = max(v for m, v in means.items() if m != "nnlit")
        gap = 100 * (means["nnlit"] - best)
        verdict = "meets" if gap >= -1.0 else "MISSES"
        print(f"{name:<14} nnlit - best baseline: {gap:+.1f} points ({verdict} the 1-point target)\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
