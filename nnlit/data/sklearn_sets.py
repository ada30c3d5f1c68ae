"""Real data sets that scikit-learn ships inside its wheel: nothing is downloaded (needs the ``sklearn`` extra)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RealSet:
    """A scikit-learn data set: its loader's name and the task it poses."""

    loader: str
    task: str


REAL: dict[str, RealSet] = {
    "breast_cancer": RealSet("load_breast_cancer", "classification"),
    "diabetes": RealSet("load_diabetes", "regression"),
    "iris": RealSet("load_iris", "classification"),
    "wine": RealSet("load_wine", "classification"),
}


def load_real(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Features, targets and feature names of a scikit-learn data set; class targets come as their names.

    Raises:
        ImportError: naming the extra to install, when scikit-learn is missing.

    Example::

        >>> x, y, names = load_real("iris")
        >>> x.shape, sorted(set(y.tolist())), names[0]
        ((150, 4), ['setosa', 'versicolor', 'virginica'], 'sepal length (cm)')
    """
    try:
        from sklearn import datasets
    except ImportError as err:
        raise ImportError(f"The {name!r} data set comes with scikit-learn: pip install 'nnlit[sklearn]'") from err
    bunch = getattr(datasets, REAL[name].loader)()
    x = np.asarray(bunch.data, dtype=np.float32)
    y = np.asarray(bunch.target)
    if REAL[name].task == "classification":
        y = np.asarray(bunch.target_names)[y]
    return x, y, [str(n) for n in bunch.feature_names]
