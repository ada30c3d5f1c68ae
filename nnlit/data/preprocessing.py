"""The raw-table steps shared by training and serving: category vocabularies, median imputation, was-missing columns.

:class:`~nnlit.TabularDataModule` fits them on the training split and saves them in checkpoints;
:class:`~nnlit.Predictor` repeats them on new rows. Both call the functions here, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

#: how missing numeric values are handled (the data module's ``missing`` argument)
MISSING = ("error", "median", "median_indicator")


def is_missing(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Which values are missing: ``None``, a float NaN, or pandas' ``NA`` / ``NaT``.

    Example::

        >>> is_missing(np.array(["a", None, float("nan"), 2], dtype=object)).tolist()
        [False, True, True, False]
    """
    array = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if array.dtype.kind == "f":
        return np.isnan(array)
    if array.dtype.kind != "O":
        return np.zeros(len(array), dtype=bool)
    return np.fromiter((_missing_value(v) for v in array.tolist()), dtype=bool, count=len(array))


def refuse_dates(
    dtypes: Any,
    names: Sequence[str],
    source: str,
    advice: str = "turn them into numbers (e.g. days since a date, the day of the week) or leave the column out of "
    "`features`",
) -> None:
    """Raises when a feature column holds dates or durations (numpy kinds ``M`` / ``m``), which a float conversion
    would silently turn into nanoseconds since 1970.

    Args:
        dtypes: the dtype of each column, by name (``DataFrame.dtypes``).
        names: the feature columns to check.
        source: where the columns come from, for the message.
        advice: what to do instead, for the message.

    Raises:
        ValueError: naming the column, its dtype and what to do instead.
    """
    # one pass over the dtypes first: looking each name up in pandas' Series of dtypes costs as much as a prediction
    if not any(getattr(dtype, "kind", "") in ("M", "m") for dtype in getattr(dtypes, "values", dtypes)):
        return
    for name in names:
        dtype = dtypes[name]
        if getattr(dtype, "kind", "") in ("M", "m"):
            raise ValueError(f"Feature column {name!r} of {source} holds dates or durations (dtype {dtype}): {advice}")


def _missing_value(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    name = type(value).__name__
    return name in ("NAType", "NaTType")  # pandas' missing markers, without importing pandas


def column_vocabulary(values: np.ndarray, column: str, source: str) -> tuple[list[Any], np.ndarray]:
    """The distinct values of a categorical column, sorted (``None`` last when some are missing), and each row's
    position among them.

    Values stay as they are: the strings ``"1"`` and ``"01"`` are two categories, the numbers ``1`` and ``1.0`` one.

    Raises:
        ValueError: for a column that mixes values that cannot be sorted together (text and numbers), naming it.

    Example::

        >>> column_vocabulary(np.array(["b", "a", None, "b"], dtype=object), "city", "the table")
        (['a', 'b', None], array([1, 0, 2, 1]))
    """
    missing = is_missing(values)
    present = values[~missing]
    try:
        distinct, inverse = np.unique(present, return_inverse=True)
    except TypeError as err:
        kinds = sorted({type(v).__name__ for v in present.tolist()})
        raise ValueError(
            f"Categorical column {column!r} of {source} mixes value types ({', '.join(kinds)}): make them one type"
        ) from err
    codes = np.empty(len(values), dtype=np.int64)
    codes[~missing] = inverse.reshape(-1)
    codes[missing] = len(distinct)
    vocabulary = distinct.tolist() + ([None] if missing.any() else [])
    return vocabulary, codes


class CategoryCodes:
    """The codes a model takes for one categorical column: ``1 … n`` for the training values in ``vocabulary``
    order, ``0`` for a value training did not see (the unknown code of
    :class:`~nnlit.nn.categorical.CategoricalEncoder`).

    A missing value is a category of its own when training had missing values (``None`` in the vocabulary), and
    unknown otherwise. When every training value is text, a number is looked up as its text (``7`` as ``"7"``): a
    prediction file whose column happens to hold only digits is read as numbers.

    Example::

        >>> codes = CategoryCodes(["red", "blue", None])
        >>> codes.encode(["blue", "green", float("nan"), "red"])
        (array([2, 0, 3, 1]), 1)
        >>> CategoryCodes(["7", "8"]).encode([7, 8.0, "9"])
        (array([1, 2, 0]), 1)
        >>> CategoryCodes([1, 2]).encode(["2", "x", 1])
        (array([2, 0, 1]), 1)
        >>> len(codes)  # codes in all, unknown included
        4
    """

    def __init__(self, vocabulary: Sequence[Any]) -> None:
        self.vocabulary = list(vocabulary)
        self._index = {value: code for code, value in enumerate(self.vocabulary, start=1) if value is not None}
        self._missing_code = self.vocabulary.index(None) + 1 if None in self.vocabulary else 0
        self._text = all(isinstance(v, str) for v in self.vocabulary if v is not None)

    def __len__(self) -> int:
        return len(self.vocabulary) + 1

    def encode(self, values: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, int]:
        """The code of each value, and how many values were unknown (neither a training value nor missing)."""
        values = values.tolist() if isinstance(values, np.ndarray) else list(values)
        get = self._index.get
        codes = np.fromiter((get(v, 0) for v in values), dtype=np.int64, count=len(values))
        unknown = np.flatnonzero(codes == 0)
        if not len(unknown):
            return codes, 0
        missing = is_missing(np.array([values[i] for i in unknown], dtype=object))
        codes[unknown[missing]] = self._missing_code
        for i in unknown[~missing]:
            if self._text and not isinstance(values[i], str):
                codes[i] = get(_as_text(values[i]), 0)
            elif not self._text and isinstance(values[i], str):
                codes[i] = get(_as_number(values[i]), 0)
        return codes, int((codes[unknown[~missing]] == 0).sum())

    def __repr__(self) -> str:
        shown = self.vocabulary if len(self.vocabulary) <= 6 else [*self.vocabulary[:5], "…"]
        return f"CategoryCodes({shown}, {len(self)} codes)"


def _as_text(value: Any) -> str:
    """A number as a CSV reader would have read it as text: ``7`` and ``7.0`` as ``"7"``."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _as_number(text: str) -> Any:
    """The number a text spells (``"3"`` as 3.0, which finds the integer 3 too), or the text when it spells none."""
    try:
        return float(text)
    except ValueError:
        return text


def column_medians(x: Tensor, rows: Tensor) -> Tensor:
    """The median of each column of ``x[rows]``, NaN left out, as ``numpy.nanmedian`` (and scikit-learn's
    ``SimpleImputer(strategy="median")``) computes it: the mean of the two middle values for an even count; 0 for a
    column with no value at all. One column at a time: no copy of the rows as a whole.

    Example::

        >>> column_medians(torch.tensor([[1.0, float("nan")], [5.0, 2.0], [4.0, float("nan")], [3.0, 7.0]]),
        ...                torch.arange(4))
        tensor([3.5000, 4.5000])
    """
    medians = torch.zeros(x.shape[1])
    for j in range(x.shape[1]):
        column = x[rows, j].numpy()
        if not np.isnan(column).all():
            medians[j] = float(np.nanmedian(column))
    return medians


def impute(x: Tensor, median: Tensor | None, indicators: Sequence[int]) -> Tensor:
    """Numeric columns with each NaN replaced by its column's ``median``, then a 0 / 1 "was missing" column for each
    column position in ``indicators``. ``median=None`` leaves the values as they are.

    Example::

        >>> impute(torch.tensor([[1.0, float("nan")], [float("nan"), 4.0]]), torch.tensor([2.0, 3.0]), [1])
        tensor([[1., 3., 1.],
                [2., 4., 0.]])
    """
    if median is None:
        return x
    nan = torch.isnan(x)
    filled = torch.where(nan, median.to(x.device, x.dtype), x)
    if not indicators:
        return filled
    # column slices, not an index tensor made from `indicators`: on a GPU that would be a copy from the host per batch
    flags = torch.cat([nan[:, j : j + 1] for j in indicators], dim=1).to(x.dtype)
    return torch.cat([filled, flags], dim=1)


def column_mean_std(
    x: Tensor, index: Tensor, transform: Callable[[Tensor], Tensor] | None = None, chunk: int = 8192
) -> tuple[Tensor, Tensor]:
    """Mean and (population) standard deviation per column of ``transform(x[index])``, in float64 over chunks of
    rows: no copy of the rows as a whole."""

    def rows(start: int) -> Tensor:
        part = x[index[start : start + chunk]]
        return (part if transform is None else transform(part)).double()

    total = torch.zeros(0, dtype=torch.float64)
    for start in range(0, len(index), chunk):
        part = rows(start).sum(dim=0)
        total = part if not len(total) else total + part
    if not len(total):
        total = torch.zeros(rows(0).shape[1], dtype=torch.float64)
    mean = total / len(index)
    squares = torch.zeros_like(total)
    for start in range(0, len(index), chunk):
        squares += ((rows(start) - mean) ** 2).sum(dim=0)
    return mean.float(), (squares / len(index)).sqrt().float()


__all__ = [
    "MISSING",
    "CategoryCodes",
    "column_mean_std",
    "column_medians",
    "column_vocabulary",
    "impute",
    "is_missing",
    "refuse_dates",
]
