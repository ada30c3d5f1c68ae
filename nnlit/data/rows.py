"""Raw rows in the forms people hand a model (a DataFrame, dicts, lists, arrays, tensors), read into feature columns:
:class:`RowReader`. Every value is checked: a missing column, a value that is not a number, NaN or inf."""

from __future__ import annotations

import inspect
import operator
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from typing import Any, NoReturn

import numpy as np
import torch
from torch import Tensor

from nnlit.data.preprocessing import is_missing, refuse_dates
from nnlit.data.table import as_numpy, check_finite, is_frame, not_a_number

#: the forms :meth:`RowReader.numeric` reads
FORMS = (
    "a pandas DataFrame, a dict of one row ({name: value}), a dict of columns ({name: [values]}), a list of dicts, "
    "or a 2-D numpy array / torch tensor / list of lists in feature order"
)
_DATES = "the model takes the numbers it was trained on: convert them as the training table was"
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class RowReader:
    """Reads raw rows into a model's feature columns, in feature order.

    Named columns (a ``DataFrame``, dicts) may come in any order; columns the model was not trained on are ignored,
    with one warning per reader. Positional input (arrays, tensors, lists of lists) must have the features in order.
    A reader keeps the layout of the last ``DataFrame``'s columns (reading it once into a local per call: one reader
    may serve several threads) and the flag of its one warning.

    Args:
        feature_names: the feature columns, numeric then categorical; ``None`` for positional input only.
        numeric: the numeric features (all of them, for positional input).
        num_features: how many feature columns positional input has.
        allow_nan: missing numbers are allowed (training filled them with the median); inf never is.
        source: what the rows are called in errors and the warning (``"the prediction file 'new.csv'"``); default
            the form of the input (``the DataFrame``, ``the input``) and ``Predictor``.

    Example::

        >>> reader = RowReader(["a", "b"], ["a", "b"], 2)
        >>> reader.numeric([{"b": 1.0, "a": 2.0}])
        tensor([[2., 1.]])
    """

    def __init__(
        self,
        feature_names: list[str] | None,
        numeric: list[str],
        num_features: int,
        allow_nan: bool = False,
        source: str | None = None,
    ) -> None:
        self.feature_names = feature_names
        self.source = source
        self.num_features = num_features
        self.allow_nan = allow_nan
        self._numeric = numeric
        self._labels = feature_names or [f"column {j}" for j in range(num_features)]
        categorical = bool(feature_names) and len(numeric) < len(feature_names or [])
        self._getter = _row_getter(numeric if categorical else feature_names)
        self._frame_layout: tuple[Any, list[int] | None, list[Any]] | None = None
        self._warned_extra_columns = False

    def numeric(self, rows: Any, device: torch.device | None = None) -> Tensor:
        """The float32 matrix (rows × features, feature order) of input of numeric features only, checked: every
        column present, every value a number, none infinite (nor NaN unless ``allow_nan``). A tensor stays on its
        device (``device``, when given)."""
        if is_frame(rows):
            x = self._frame_columns(rows)
        elif isinstance(rows, Mapping):
            x = self._mapping_columns(rows)
        elif isinstance(rows, Tensor):
            return self._tensor_columns(rows, device)
        elif isinstance(rows, np.ndarray):
            x = self._positional_columns(rows)
        elif isinstance(rows, (list, tuple)):
            if not rows:
                return torch.zeros(0, self.num_features)
            if isinstance(rows[0], Mapping):
                x = self._row_dict_columns(rows)
            else:
                x = self._positional_columns(rows)
        else:
            raise TypeError(f"Predictor.predict takes {FORMS}; got {type(rows).__name__}")
        self.check_finite(x)
        # pandas hands out read-only arrays, which torch warns about: copied then (nothing here writes to them)
        return torch.from_numpy(np.require(x, requirements="W"))

    def check_finite(self, x: Tensor | np.ndarray, labels: list[str] | None = None) -> None:
        """:func:`nnlit.data.table.check_finite` on input rows: named by column and row."""
        check_finite(x, labels or self._labels, "feature column", self.source or "the input", self.allow_nan, False)

    def named(self, rows: Any) -> tuple[dict[str, Any], int]:
        """Every feature column of a named input, as a sequence of values, and the number of rows."""
        names = self._require_names("named columns")
        if is_frame(rows):
            _, extra = self._layout(rows.columns.tolist(), self.source or "the DataFrame")
            refuse_dates(rows.dtypes, names, self.source or "the DataFrame", _DATES)
            self._warn_extra_columns(extra)
            return {name: rows[name].to_numpy(dtype=object) for name in names}, len(rows)
        if isinstance(rows, Mapping):
            present = next((rows[name] for name in names if name in rows), None)
            if _is_column(present):
                missing = [name for name in names if name not in rows]
                if missing:
                    self._raise_missing(missing, list(rows), "the dict of columns")
                self._warn_extra_columns([key for key in rows if key not in set(names)])
                columns = {name: list(_as_column(rows[name])) for name in names}
                lengths = {len(values) for values in columns.values()}
                if len(lengths) > 1:
                    shown = ", ".join(f"{name!r}: {len(values)}" for name, values in columns.items())
                    raise ValueError(f"The columns of a dict of columns must have the same number of rows, got {shown}")
                return columns, lengths.pop()
            rows = [rows]
        if isinstance(rows, (list, tuple)) and all(isinstance(row, Mapping) for row in rows):
            try:
                columns = {name: [row[name] for row in rows] for name in names}
            except KeyError:
                self._raise_missing_in_rows(rows, names)
            known = set(names)
            self._warn_extra_columns(sorted({key for row in rows for key in row if key not in known}, key=str))
            return columns, len(rows)
        raise TypeError(
            "A model with categorical features takes named columns: a pandas DataFrame, a dict of one row, a dict of "
            f"columns or a list of dicts; got {type(rows).__name__}"
        )

    def _frame_columns(self, frame: Any) -> np.ndarray:
        names = self._require_names("a DataFrame")
        # the layout of the last frame's columns is kept: comparing two Index objects is cheaper than listing one. It
        # is read once into a local: another thread may replace the cached one at any moment.
        layout = self._frame_layout
        if layout is None or not frame.columns.equals(layout[0]):
            layout = (frame.columns, *self._layout(frame.columns.tolist(), self.source or "the DataFrame"))
            self._frame_layout = layout
        _, index, extra = layout
        refuse_dates(frame.dtypes, names, self.source or "the DataFrame", _DATES)
        self._warn_extra_columns(extra)
        try:
            if extra:  # the feature columns alone: the extra ones may not be numbers
                return frame.take(index, axis=1).to_numpy(dtype=np.float32)
            x = frame.to_numpy(dtype=np.float32)  # one conversion of the whole table, then the columns in order
            return x if index is None else x[:, index]
        except (TypeError, ValueError):
            return self.float_matrix([frame[name].to_numpy() for name in names], len(frame))

    def _mapping_columns(self, mapping: Mapping[str, Any]) -> np.ndarray:
        names = self._require_names("a dict")
        present = next((mapping[name] for name in names if name in mapping), None)
        if not _is_column(present):
            return self._row_dict_columns([mapping])
        missing = [name for name in names if name not in mapping]
        if missing:
            self._raise_missing(missing, list(mapping), "the dict of columns")
        if len(mapping) > len(names):
            known = set(names)
            self._warn_extra_columns([key for key in mapping if key not in known])
        columns = [_as_column(mapping[name]) for name in names]
        lengths = {name: len(values) if _is_column(values) else None for name, values in zip(names, columns)}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{name!r}: {'a scalar' if n is None else n}" for name, n in lengths.items())
            raise ValueError(f"The columns of a dict of columns must have the same number of rows, got {shown}")
        return self.float_matrix(columns, len(columns[0]))

    def _row_dict_columns(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        names = self._require_names("dicts")
        try:
            # one pass over the rows, each row's values in feature order straight into the matrix
            values = chain.from_iterable(map(self._getter, rows))
            x = np.fromiter(values, dtype=np.float32, count=len(rows) * len(names)).reshape(len(rows), len(names))
        except KeyError:
            self._raise_missing_in_rows(rows, names)
        except (TypeError, ValueError):
            if not all(isinstance(row, Mapping) for row in rows):
                kinds = sorted({type(row).__name__ for row in rows})
                raise TypeError(f"A list of rows must hold dicts only, got {', '.join(kinds)}") from None
            x = self.float_matrix(list(zip(*map(self._getter, rows))), len(rows))
        if not self._warned_extra_columns and any(len(row) != len(names) for row in rows):
            known = set(names)
            self._warn_extra_columns(sorted({key for row in rows for key in row if key not in known}, key=str))
        return x

    def _positional_columns(self, rows: Any) -> np.ndarray:
        try:
            x = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError):
            x = np.asarray(rows, dtype=object)
            self._check_width(x)
            return self.float_matrix([x[:, j] for j in range(x.shape[1])], len(x))
        self._check_width(x)
        return x

    def _tensor_columns(self, rows: Tensor, device: torch.device | None) -> Tensor:
        self._check_width(rows)
        x = rows.detach().to(device=device or rows.device, dtype=torch.float32)
        self.check_finite(x)
        return x

    # ---------------------------------------------------------------- checks
    def _require_names(self, form: str) -> list[str]:
        if self.feature_names is None:
            raise ValueError(
                f"This predictor has no feature names (its model was trained on arrays given without them), so it "
                f"takes positional input only: a 2-D numpy array, torch tensor or list of lists with the "
                f"{self.num_features} columns in training order; got {form} with named columns"
            )
        return self.feature_names

    def _layout(self, columns: list[Any], source: str) -> tuple[list[int] | None, list[Any]]:
        """The position of each feature among ``columns`` (``None`` when they are in order) and the extra ones."""
        names = self._require_names(source)
        position = {column: j for j, column in enumerate(columns)}
        missing = [name for name in names if name not in position]
        if missing:
            self._raise_missing(missing, columns, source)
        duplicated = sorted({name for name in names if columns.count(name) > 1})
        if duplicated:
            raise ValueError(f"Feature columns {duplicated} appear more than once in {source}")
        index = [position[name] for name in names]
        known = set(names)
        extra = [column for column in columns if column not in known]
        return (None if index == list(range(len(columns))) else index), extra

    def _raise_missing(self, missing: list[str], columns: list[Any], source: str) -> NoReturn:
        raise ValueError(
            f"{source[0].upper()}{source[1:]} lacks feature columns {missing}. The model takes {self.num_features}: "
            f"{', '.join(self.feature_names or [])}; got {', '.join(map(str, columns)) or 'none'}"
        )

    def _raise_missing_in_rows(self, rows: Sequence[Mapping[str, Any]], names: list[str]) -> NoReturn:
        missing = [name for name in names if any(name not in row for row in rows)]
        first = next(i for i, row in enumerate(rows) if any(name not in row for name in names))
        source = f"the list of dicts (row {first} first)" if len(rows) > 1 else "the dict"
        self._raise_missing(missing, list(rows[first]), source)

    def _warn_extra_columns(self, extra: list[Any]) -> None:
        if extra and not self._warned_extra_columns:
            self._warned_extra_columns = True
            shown = ", ".join(map(repr, extra))
            message = (
                f"Predictor ignores columns the model was not trained on: {shown} (this warning is shown once per "
                "Predictor)"
                if self.source is None
                else f"{self.source[0].upper()}{self.source[1:]} has columns that are not features of the model, "
                f"ignored: {shown}"
            )
            warnings.warn(message, UserWarning, stacklevel=outside_stacklevel())

    def _check_width(self, x: np.ndarray | Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.num_features:
            what = "" if self.feature_names is None else f" ({', '.join(self.feature_names)})"
            raise ValueError(
                f"Positional input must be 2-D, rows × {self.num_features} feature columns in training order{what}; "
                f"got shape {tuple(x.shape)}" + (": wrap one row in a list" if x.ndim == 1 else "")
            )

    def float_matrix(self, columns: Sequence[Any], num_rows: int, labels: Sequence[str] | None = None) -> np.ndarray:
        """Columns as a float32 matrix, column by column, so that a value that is not a number is found with its
        column (``labels``, default the feature names). A missing value (``None``, pandas' ``NA``) becomes NaN."""
        labels = self._labels if labels is None else labels
        x = np.empty((num_rows, len(columns)), dtype=np.float32)
        for j, values in enumerate(columns):
            try:
                x[:, j] = values
            except (TypeError, ValueError) as err:
                column = np.asarray(values, dtype=object).reshape(-1)
                missing = is_missing(column)
                if missing.any():
                    column[missing] = np.nan
                    try:
                        x[:, j] = column
                        continue
                    except (TypeError, ValueError):
                        pass
                raise self._bad_value_error(labels[j], values, err) from err
        return x

    def _bad_value_error(self, label: str, values: Any, err: Exception) -> ValueError:
        for row, value in enumerate(values):
            if not _is_number(value) and not is_missing(np.array([value], dtype=object))[0]:
                return not_a_number(label, self.source or "the input", row, value)
        return ValueError(f"Column {label!r} cannot be converted to float32: {err}")


def outside_stacklevel() -> int:
    """The ``stacklevel`` of a warning raised by its caller that points at the first line outside nnlit (the user's
    call of ``predict``), however deep in nnlit the warning comes from."""
    frame = inspect.currentframe()
    frame = frame.f_back if frame is not None else None
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    return level


def _is_number(value: Any) -> bool:
    """Whether numpy converts ``value`` to one float32, as it does numbers, bools, numeric strings and None (NaN)."""
    try:
        return np.ndim(np.float32(value)) == 0  # a list converts, to an array
    except (TypeError, ValueError):
        return False


def _is_column(value: Any) -> bool:
    """Whether a dict value is a column of values rather than the value of one row."""
    if isinstance(value, (str, bytes)) or value is None:
        return False
    ndim = getattr(value, "ndim", None)
    return ndim > 0 if isinstance(ndim, int) else isinstance(value, (list, tuple))


def _as_column(values: Any) -> Any:
    return as_numpy(values, others=False)


def _row_getter(names: list[str] | None) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The values of a dict row in feature order, as a tuple (``KeyError`` for a missing one)."""
    if not names:
        return tuple
    if len(names) == 1:
        name = names[0]
        return lambda row: (row[name],)
    return operator.itemgetter(*names)


__all__ = ["FORMS", "RowReader", "outside_stacklevel"]
