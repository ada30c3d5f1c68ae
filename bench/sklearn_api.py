"""nnlit's scikit-learn estimator in a grid search, against scikit-learn's MLPClassifier and skorch's
NeuralNetClassifier with the same network, optimizer and epochs.

    python bench/sklearn_api.py [--tables breast_cancer synthetic] [--no-skorch] [--repeats 1]

The job: ``GridSearchCV`` of ``StandardScaler`` + classifier, 5 folds × 8 settings (hidden ``(32,)`` or ``(64, 64)``
ReLU layers × Adam learning rate 1e-3 or 1e-2 × L2 weight decay 0 or 1e-4), then the refit of the best setting, on
breast_cancer (569 rows: 426 to search on, 143 to test; batch 64, 50 epochs) and on a 25,000-row synthetic table
(``make_classification``, 20 features, 3 classes: 20,000 to search on, 5,000 to test; batch 256, 10 epochs). One
process (``n_jobs=1``); torch on one thread for skorch as for nnlit (nnlit's ``Threads`` chooses one for steps this
small). Each row: the search's wall time (the fastest of ``--repeats``, the rows taking turns), its ratios to
nnlit's and to scikit-learn's, and the refit model's test accuracy. skorch is
optional (``pip install skorch``; the row is left out without it). The targets: faster than skorch at the same
accuracy (±0.5 point), and within 3× scikit-learn's time on breast_cancer.

scikit-learn's MLP has no weight decay as such: its ``alpha`` (an L2 penalty on the loss) stands in for it, and it
runs exactly ``max_iter`` epochs here (``n_iter_no_change`` above it, no early stopping).
"""

from __future__ import annotations

import argparse
import functools
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from nnlit.sklearn import MLPClassifier

HIDDEN = [(32,), (64, 64)]
LEARNING_RATES = [1e-3, 1e-2]
DECAYS = [0.0, 1e-4]
TABLES = {"breast_cancer": {"batch_size": 64, "epochs": 50}, "synthetic": {"batch_size": 256, "epochs": 10}}


def table(name: str) -> tuple[np.ndarray, ...]:
    if name == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True)
        test_size: float | int = 0.25
    else:
        X, y = make_classification(
            n_samples=25_000, n_features=20, n_informative=10, n_classes=3, class_sep=0.8, random_state=0
        )
        test_size = 5_000
    return tuple(train_test_split(X.astype(np.float32), y, test_size=test_size, stratify=y, random_state=0))


def nnlit_search(batch_size: int, epochs: int) -> GridSearchCV:
    model = MLPClassifier(batch_size=batch_size, max_epochs=epochs, random_state=0)
    grid = {"mlpclassifier__hidden": HIDDEN, "mlpclassifier__lr": LEARNING_RATES}
    return GridSearchCV(make_pipeline(StandardScaler(), model), {**grid, "mlpclassifier__weight_decay": DECAYS}, cv=5)


def sklearn_search(batch_size: int, epochs: int) -> GridSearchCV:
    model = SklearnMLP(batch_size=batch_size, max_iter=epochs, n_iter_no_change=epochs + 1, random_state=0)
    grid = {"mlpclassifier__hidden_layer_sizes": HIDDEN, "mlpclassifier__learning_rate_init": LEARNING_RATES}
    return GridSearchCV(make_pipeline(StandardScaler(), model), {**grid, "mlpclassifier__alpha": DECAYS}, cv=5)


class _Network(torch.nn.Module):
    """The same MLP as nnlit's: Linear → ReLU per hidden width, then a Linear to the class logits."""

    def __init__(self, in_features: int = 30, hidden: tuple[int, ...] = (32,), classes: int = 2) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [torch.nn.Linear(width, size), torch.nn.ReLU()]
            width = size
        self.layers = torch.nn.Sequential(*layers, torch.nn.Linear(width, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _float32(X: np.ndarray) -> np.ndarray:
    return X.astype(np.float32)


def skorch_search(batch_size: int, epochs: int, in_features: int, classes: int) -> GridSearchCV | None:
    try:
        from skorch import NeuralNetClassifier
    except ImportError:
        return None
    model = NeuralNetClassifier(
        _Network,
        module__in_features=in_features,
        module__classes=classes,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        batch_size=batch_size,
        max_epochs=epochs,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
    )
    grid = {"neuralnetclassifier__module__hidden": HIDDEN, "neuralnetclassifier__lr": LEARNING_RATES}
    grid["neuralnetclassifier__optimizer__weight_decay"] = DECAYS
    pipeline = make_pipeline(StandardScaler(), FunctionTransformer(_float32), model)
    return GridSearchCV(pipeline, grid, cv=5)


def run(search: GridSearchCV, data: tuple[np.ndarray, ...]) -> tuple[float, float]:
    X_train, X_test, y_train, y_test = data
    torch.manual_seed(0)
    start = time.perf_counter()
    search.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    return seconds, float(search.score(X_test, y_test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--no-skorch", action="store_true", help="leave skorch out even when it is installed")
    parser.add_argument("--repeats", type=int, default=1, help="searches of each row, taking turns; the fastest counts")
    options = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    torch.set_num_threads(1)
    print(
        f"GridSearchCV, 5 folds x 8 settings + refit; torch {torch.__version__}, 1 thread, "
        f"fastest of {options.repeats}\n"
    )
    print("| table | estimator | search seconds | / nnlit | / sklearn | test accuracy |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name in options.tables:
        data = table(name)
        shape: dict[str, Any] = TABLES[name]
        searches: dict[str, Callable[[], GridSearchCV | None]] = {
            "nnlit.sklearn.MLPClassifier": functools.partial(nnlit_search, shape["batch_size"], shape["epochs"]),
            "sklearn MLPClassifier": functools.partial(sklearn_search, shape["batch_size"], shape["epochs"]),
        }
        if not options.no_skorch:
            searches["skorch NeuralNetClassifier"] = functools.partial(skorch_search, **shape_args(shape, data))
        results: dict[str, tuple[float, float]] = {}
        for _ in range(options.repeats):
            for label, build in searches.items():
                search = build()
                if search is None:  # skorch is not installed
                    continue
                seconds, accuracy = run(search, data)
                if label not in results or seconds < results[label][0]:
                    results[label] = (seconds, accuracy)
        base, sklearn = results["nnlit.sklearn.MLPClassifier"][0], results["sklearn MLPClassifier"][0]
        for label, (seconds, accuracy) in results.items():
            print(
                f"| {name} | {label} | {seconds:.1f} | {seconds / base:.2f} | {seconds / sklearn:.2f} "
                f"| {accuracy:.4f} |",
                flush=True,
            )


def shape_args(shape: dict[str, Any], data: tuple[np.ndarray, ...]) -> dict[str, Any]:
    X_train, _, y_train, _ = data
    return {
        "batch_size": shape["batch_size"],
        "epochs": shape["epochs"],
        "in_features": X_train.shape[1],
        "classes": len(np.unique(y_train)),
    }


if __name__ == "__main__":
    main()
