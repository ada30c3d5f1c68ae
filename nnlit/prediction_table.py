"""The columns of a table of predictions, the same for :class:`~nnlit.Predictor` and
:class:`~nnlit.callbacks.CSVPredictionWriter`: ``row``, ``prediction`` and ``prob_<class>`` per class, or the
regression's ``prediction`` (``prediction_<j>`` for several outputs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch


def prediction_columns(
    outputs: Mapping[str, np.ndarray], classes: Sequence[Any] | np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The table of a module's ``predict_outputs`` (as numpy arrays of one first dimension).

    Recognised keys: ``row`` (the input row of each prediction; default ``0 … n-1``), ``label`` (class indices,
    written as ``classes[label]``, or as the indices without ``classes``), ``probability`` (a binary classifier's
    probability of class 1: written as one column per class), ``probabilities`` (one per class), ``prediction``
    (regression: one column per output). ``classes`` may be given as :func:`label_array` made it once (a caller
    answering many requests).

    Example::

        >>> table = prediction_columns({"label": np.array([1, 0]), "probability": np.array([0.9, 0.2])}, ["n", "y"])
        >>> {name: column.tolist() for name, column in table.items()}
        {'row': [0, 1], 'prediction': ['y', 'n'], 'prob_n': [0.09999999999999998, 0.8], 'prob_y': [0.9, 0.2]}
    """
    num_rows = len(next(iter(outputs.values()))) if outputs else 0
    table: dict[str, np.ndarray] = {"row": outputs["row"] if "row" in outputs else np.arange(num_rows)}
    if "label" in outputs:
        labels = outputs["label"].reshape(num_rows)
        if classes is not None:
            labels = (classes if isinstance(classes, np.ndarray) else label_array(list(classes)))[labels]
        table["prediction"] = labels
        if "probability" in outputs:
            positive = outputs["probability"].reshape(num_rows)
            probabilities = [1 - positive, positive]
        else:
            probabilities = list(_as_matrix(outputs["probabilities"], num_rows).T)
        names = classes if classes is not None else range(len(probabilities))
        for name, column in zip(names, probabilities):
            table[f"prob_{name}"] = column
    if "prediction" in outputs:
        predictions = _as_matrix(outputs["prediction"], num_rows)
        if predictions.shape[1] == 1:
            table["prediction"] = predictions[:, 0]
        else:
            for j in range(predictions.shape[1]):
                table[f"prediction_{j}"] = predictions[:, j]
    return table


def outputs_to_numpy(outputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A module's predict outputs (tensors) as numpy arrays on the host; bfloat16 and float16 as float32, which numpy
    has no type for."""
    arrays = {}
    for name, value in outputs.items():
        if value.dtype in _NO_NUMPY_TYPE:
            value = value.float()
        arrays[name] = value.detach().cpu().numpy()
    return arrays


_NO_NUMPY_TYPE = frozenset({torch.bfloat16, torch.float16})  # float16 has one, but float32 costs nothing to the CSV


def label_array(classes: list[Any]) -> np.ndarray:
    """The class labels as an array that class indices select from: of their own dtype when it keeps them as they
    are (e.g. strings or integers), else of Python objects."""
    array = np.asarray(classes)
    if array.dtype == object or array.tolist() != classes:
        array = np.empty(len(classes), dtype=object)
        array[:] = classes
    return array


def _as_matrix(values: np.ndarray, num_rows: int) -> np.ndarray:
    """Outputs as rows × columns (one column for outputs of one value per row, even with no rows)."""
    return values if values.ndim == 2 else values.reshape(num_rows, 1)


__all__ = ["label_array", "outputs_to_numpy", "prediction_columns"]
