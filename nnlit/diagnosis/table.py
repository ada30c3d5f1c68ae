"""Rules over the table, before any training: plain arrays in, findings out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nnlit.diagnosis import thresholds as T
from nnlit.diagnosis.finding import Finding, finding

FEATURES_KEY = "data.init_args.features"


def constant_columns(x: np.ndarray, names: Sequence[str]) -> list[Finding]:
    """Columns with a single value (NaN aside): harmless to the net (its weights get no gradient), but noise to a
    reader.

    Example::

        >>> x = np.array([[1.0, 3.0], [2.0, 3.0], [4.0, 3.0]])
        >>> [f.where for f in constant_columns(x, ["a", "b"])]
        ['b']
    """
    found = []
    for j, name in enumerate(names):
        column = x[:, j][~np.isnan(x[:, j])]
        distinct = len(np.unique(column))
        if distinct <= 1:
            found.append(
                finding(
                    "constant_column",
                    "info",
                    f"Column {name!r} has a single value: it carries nothing",
                    where=name,
                    measured={"distinct values": (distinct, 1, "<=")},
                )
            )
    return found


def id_columns(x: np.ndarray, names: Sequence[str], features_fix: bool = False) -> list[Finding]:
    """ID-like columns: (almost) unique per row and integer-valued, or following the row order.

    Example::

        >>> rng = np.random.default_rng(0)
        >>> x = np.stack([np.arange(200.0), rng.normal(size=200)], axis=1)
        >>> [f.where for f in id_columns(x, ["row_id", "height"])]
        ['row_id']
    """
    found: list[Finding] = []
    rows = len(x)
    if rows < 20:
        return found
    order = np.arange(rows)
    for j, name in enumerate(names):
        column = x[:, j]
        if np.isnan(column).any():
            continue
        unique = len(np.unique(column)) / rows
        integer = bool(np.all(np.floor(column) == column))
        correlation = abs(_spearman(column, order))
        if unique >= T.ID_UNIQUE_FRACTION and (integer or correlation >= T.ID_ORDER_CORRELATION):
            keep = [n for n in names if n != name]
            found.append(
                finding(
                    "id_column",
                    "warning",
                    f"Column {name!r} looks like a row identifier ({unique:.0%} distinct values"
                    f"{', integers' if integer else ''}, order correlation {correlation:.2f}): a net can memorise it "
                    f"and learn nothing that carries over",
                    where=name,
                    measured={
                        "distinct share": (unique, T.ID_UNIQUE_FRACTION, ">="),
                        "row-order correlation": (correlation, T.ID_ORDER_CORRELATION, ">="),
                    },
                    candidates=[{FEATURES_KEY: keep}] if features_fix else [],
                    effect=unique,
                )
            )
    return found


def duplicate_rows(x: np.ndarray, y: np.ndarray) -> list[Finding]:
    """Rows repeated exactly (features and label).

    Example::

        >>> x = np.array([[1.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
        >>> duplicate_rows(x, y)[0].evidence["duplicate share"]["value"]
        0.25
    """
    share = 1.0 - len(np.unique(np.concatenate([x, y.reshape(len(y), -1)], axis=1), axis=0)) / max(len(x), 1)
    if share <= T.DUPLICATE_FRACTION:
        return []
    return [
        finding(
            "duplicate_rows",
            "warning",
            f"{share:.0%} of the rows are exact repeats: a repeat in the validation split was seen in training, so the "
            f"validation score is too good",
            measured={"duplicate share": (share, T.DUPLICATE_FRACTION, ">")},
            effect=share,
        )
    ]


def conflicting_labels(x: np.ndarray, y: np.ndarray) -> list[Finding]:
    """Rows whose features appear elsewhere with another label (classification).

    Example::

        >>> x = np.array([[1.0], [1.0], [2.0], [3.0]]); y = np.array([0, 1, 1, 1])
        >>> conflicting_labels(x, y)[0].evidence["conflicting share"]["value"]
        0.5
    """
    if y.ndim != 1:
        return []
    _, inverse = np.unique(x, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    groups = np.unique(np.stack([inverse, y.astype(np.int64)], axis=1), axis=0)
    labels_per_group = np.bincount(groups[:, 0], minlength=inverse.max() + 1 if len(inverse) else 0)
    share = float(np.mean(labels_per_group[inverse] > 1)) if len(inverse) else 0.0
    if share <= T.CONFLICT_FRACTION:
        return []
    return [
        finding(
            "conflicting_labels",
            "warning",
            f"{share:.0%} of the rows share their features with a row of another label: no model can get them all "
            f"right",
            measured={"conflicting share": (share, T.CONFLICT_FRACTION, ">")},
            effect=share,
        )
    ]


def class_imbalance(y: np.ndarray, classes: Sequence[Any] | None = None) -> list[Finding]:
    """Largest / smallest class ratio above :data:`~nnlit.diagnosis.thresholds.CLASS_RATIO`.

    Example::

        >>> class_imbalance(np.array([0] * 95 + [1] * 5))[0].evidence["class ratio"]["value"]
        19.0
    """
    if y.ndim != 1 or len(y) == 0:
        return []
    counts = np.bincount(y.astype(np.int64))
    counts = counts[counts > 0]
    if len(counts) < 2:
        return []
    ratio = float(counts.max() / counts.min())
    if ratio <= T.CLASS_RATIO:
        return []
    return [
        finding(
            "class_imbalance",
            "info",
            f"The largest class has {ratio:.0f}× the rows of the smallest: accuracy can look good while the rare class "
            f"is ignored; watch its F1",
            measured={"class ratio": (ratio, T.CLASS_RATIO, ">")},
            effect=ratio,
        )
    ]


def missing_values(x: np.ndarray, names: Sequence[str]) -> list[Finding]:
    """Columns missing more than :data:`~nnlit.diagnosis.thresholds.MISSING_FRACTION` of their values."""
    found = []
    for j, name in enumerate(names):
        share = float(np.isnan(x[:, j]).mean()) if len(x) else 0.0
        if share > T.MISSING_FRACTION:
            found.append(
                finding(
                    "missing_values",
                    "info",
                    f"Column {name!r} is missing {share:.0%} of its values",
                    where=name,
                    measured={"missing share": (share, T.MISSING_FRACTION, ">")},
                    effect=share,
                )
            )
    return found


def unscaled_inputs(x: np.ndarray, names: Sequence[str], standardize: bool) -> list[Finding]:
    """With standardisation off, features far from the standardised range (judged per feature).

    Example::

        >>> x = np.stack([np.linspace(0, 1, 50), np.linspace(0, 5000, 50)], axis=1)
        >>> [f.where for f in unscaled_inputs(x, ["a", "income"], standardize=False)]
        ['income']
        >>> unscaled_inputs(x, ["a", "income"], standardize=True)
        []
    """
    if standardize or len(x) == 0:
        return []
    scale = np.maximum(np.abs(np.nanmean(x, axis=0)), np.nanstd(x, axis=0))
    worst = [(float(s), n) for s, n in zip(scale, names) if s > T.UNSCALED_LIMIT]
    if not worst:
        return []
    size, name = max(worst)
    return [
        finding(
            "unscaled_inputs",
            "warning",
            f"Standardisation is off and {len(worst)} feature(s) are far from unit scale ({name!r}: {size:.3g}): large "
            f"inputs saturate units and need a tiny learning rate",
            where=name,
            measured={"largest |mean| or std": (size, T.UNSCALED_LIMIT, ">")},
            candidates=[{"data.init_args.standardize": True}],
            effect=size,
        )
    ]


def leakage(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, names: Sequence[str]
) -> list[Finding]:
    """A single feature predicting the target almost perfectly: each feature's 20 quantile bins, fitted on the training
    rows (majority class, or mean target), scored on the training and validation rows together (a validation split of
    30 rows alone lets an honest feature score 1.0 by luck: iris's petal width) and normalised ((score - chance) /
    (1 - chance) for accuracy, R² for regression).

    Example::

        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 2, 400); x = np.stack([y + 0.01 * rng.normal(size=400), rng.normal(size=400)], 1)
        >>> [f.where for f in leakage(x[:300], y[:300], x[300:], y[300:], ["leak", "noise"])]
        ['leak']
    """
    if len(x_val) < 10 or y_train.ndim != 1:
        return []
    classification = np.issubdtype(y_train.dtype, np.integer)
    found = []
    x_all, y_all = np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val])
    for j, name in enumerate(names):
        score = single_feature_score(x_train[:, j], y_train, x_all[:, j], y_all, classification)
        if score >= T.LEAKAGE_SCORE:
            found.append(
                finding(
                    "leakage",
                    "warning",
                    f"Column {name!r} alone predicts the target (normalised score {score:.3f}): it probably holds the "
                    f"answer, which new rows will not",
                    where=name,
                    measured={"single-feature score": (score, T.LEAKAGE_SCORE, ">=")},
                    effect=score,
                )
            )
    return found


def single_feature_score(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, classification: bool
) -> float:
    """How well one feature's 20 quantile bins predict the target, normalised so 0 is chance and 1 perfect."""
    ok_train, ok_val = ~np.isnan(x_train), ~np.isnan(x_val)
    x_train, y_train, x_val, y_val = x_train[ok_train], y_train[ok_train], x_val[ok_val], y_val[ok_val]
    if len(x_train) == 0 or len(x_val) == 0:
        return 0.0
    edges = np.unique(np.quantile(x_train, np.linspace(0, 1, 21)[1:-1]))
    bins_train, bins_val = np.searchsorted(edges, x_train), np.searchsorted(edges, x_val)
    if classification:
        labels = y_train.astype(np.int64)
        table = np.zeros((len(edges) + 1, labels.max() + 1))
        np.add.at(table, (bins_train, labels), 1)
        majority = int(np.bincount(labels).argmax())
        guess = np.where(table.sum(1) > 0, table.argmax(1), majority)
        accuracy = float(np.mean(guess[bins_val] == y_val))
        chance = float(np.mean(y_val == majority))
        return (accuracy - chance) / (1 - chance) if chance < 1 else 0.0
    sums = np.bincount(bins_train, weights=y_train, minlength=len(edges) + 1)
    counts = np.bincount(bins_train, minlength=len(edges) + 1)
    means = np.where(counts > 0, sums / np.maximum(counts, 1), y_train.mean())
    residual = float(np.sum((y_val - means[bins_val]) ** 2))
    total = float(np.sum((y_val - y_val.mean()) ** 2))
    return 1.0 - residual / total if total > 0 else 0.0


def too_few_rows(rows: int, parameters: int) -> list[Finding]:
    """Fewer training rows than :data:`~nnlit.diagnosis.thresholds.MIN_ROWS`, or than one per
    :data:`~nnlit.diagnosis.thresholds.PARAMETERS_PER_ROW` parameters.

    Example::

        >>> too_few_rows(rows=30, parameters=500)[0].kind
        'too_few_rows'
        >>> too_few_rows(rows=2400, parameters=4500)
        []
    """
    needed = max(T.MIN_ROWS, parameters / T.PARAMETERS_PER_ROW)
    if rows >= needed:
        return []
    return [
        finding(
            "too_few_rows",
            "warning",
            f"{rows} training rows for {parameters:,} parameters: the net can memorise them and its validation score "
            f"will vary a lot from split to split",
            measured={"training rows": (rows, needed, "<")},
            effect=needed / max(rows, 1),
        )
    ]


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])
