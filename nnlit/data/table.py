"""A table held in memory: the numeric features, the categorical columns' codes and the targets, built from arrays, a
``DataFrame`` or a CSV / Parquet file, with every value checked on the way in."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nnlit.data.files import check_flat, read_table
from nnlit.data.preprocessing import column_vocabulary, is_missing, refuse_dates


@dataclass
class Table:
    """The rows of a data source as tensors, before any fitted preprocessing.

    Attributes:
        x: float32 numeric features, ``(rows, numeric)``, not yet imputed nor standardised (NaN where missing).
        y: int64 class indices ``(rows,)``, float32 probability rows ``(rows, K)``, or float32 targets
            ``(rows, T)``.
        feature_names: the numeric columns, then the categorical ones.
        task: ``"classification"`` or ``"regression"``.
        classes: the original label of each class index; ``None`` for regression.
        categorical: the categorical columns.
        codes: int64 ``(rows, categorical)``: each value's position in ``values``.
        values: each categorical column's distinct values, sorted (``None`` last when some are missing).
    """

    x: Tensor  # float32 numeric features, (rows, numeric), not yet imputed nor standardised
    y: Tensor  # int64 class indices (rows,), float32 probability rows (rows, K), or float32 targets (rows, T)
    feature_names: list[str]  # the numeric columns, then the categorical ones
    task: str
    classes: list[Any] | None  # original label of each class index; None for regression
    categorical: list[str] = field(default_factory=list)
    codes: Tensor | None = None  # int64 (rows, categorical): each value's position in `values`
    values: list[list[Any]] = field(default_factory=list)  # each categorical column's distinct values, sorted

    @property
    def numeric(self) -> list[str]:
        """The numeric feature columns."""
        return self.feature_names[: self.x.shape[1]]


def pandas_module() -> Any:
    """pandas if it is imported (an input cannot be a DataFrame otherwise; pandas is an optional dependency)."""
    return sys.modules.get("pandas")


def dataframe_type() -> Any:
    """``pandas.DataFrame`` when pandas is imported, else ``None``."""
    pandas = pandas_module()
    return None if pandas is None else pandas.DataFrame


def is_frame(x: Any) -> bool:
    """Whether ``x`` is a pandas ``DataFrame`` (pandas itself is not imported to tell)."""
    frame_type = dataframe_type()
    return frame_type is not None and isinstance(x, frame_type)


def numeric_matrix(frame: Any, columns: list[str], source: str) -> Tensor:
    """The numeric feature columns as a row-major float32 matrix; a column read as objects (e.g. bools with an empty
    cell) is converted value by value, a missing one as NaN, and the first value that is not a number is named with
    its row.

    Row-major: ``frame.to_numpy()`` gives a column-major matrix, from which gathering a batch's rows touches every
    column at scattered places (several times slower per batch than from contiguous rows), and making it row-major
    afterwards would hold two copies of the data at once. So it is filled in blocks of rows when every column holds
    numbers (each block converted by pandas, then written row-major), else column by column."""
    import pandas as pd

    x = np.empty((len(frame), len(columns)), dtype=np.float32)
    typed = [pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]) for c in columns]
    if all(typed) and frame.columns.is_unique:
        numbers = frame[columns]
        for start in range(0, len(frame), _ROWS_PER_BLOCK):
            block = numbers.iloc[start : start + _ROWS_PER_BLOCK]
            x[start : start + len(block)] = block.to_numpy(dtype=np.float32, na_value=np.nan)
        return torch.from_numpy(x)
    for j, column in enumerate(columns):
        series = frame[column]
        if typed[j]:
            x[:, j] = series.to_numpy(dtype=np.float32, na_value=np.nan)
            continue
        values = series.to_numpy(dtype=object)
        missing = is_missing(values)  # one pass over the column, not one array per value
        for row, value in enumerate(values):
            if missing[row]:
                x[row, j] = np.nan
                continue
            try:
                x[row, j] = float(value)
            except (TypeError, ValueError):
                raise not_a_number(column, source, row, value) from None
    return torch.from_numpy(x)


def not_a_number(column: str, source: str, row: int, value: Any) -> ValueError:
    """The error for a value of a numeric feature column that is not a number, in training and in serving alike.

    Example::

        >>> not_a_number("age", "the input", 3, "old")
        ValueError("Feature column 'age' of the input holds a value that is not a number at row 3: 'old'; the model is \
trained on numbers in this column (a text column is categorical in training)")
    """
    hint = " (a text column is categorical in training)" if isinstance(value, str) else ""
    return ValueError(
        f"Feature column {column!r} of {source} holds a value that is not a number at row {row}: {value!r}; the model "
        f"is trained on numbers in this column{hint}"
    )


_ROWS_PER_BLOCK = 1 << 16  # 65,536 rows: an 8 MB float32 block at 32 columns


def table_from_frame(
    frame: Any,
    features: list[str],
    y: Any,
    task: str | None,
    source: str,
    categorical: list[str],
    missing: str,
    target_name: str = "target",
) -> Table:
    """A table from a DataFrame's feature columns: text, ``category`` and listed columns are categorical, the other
    columns numbers (bools as 0 / 1)."""
    import pandas as pd

    _check_listed(categorical, features, source)
    refuse_dates(frame.dtypes, features, source)
    numeric, text = [], []
    for name in features:
        series = frame[name]
        is_number = pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
        if name in categorical or not is_number or isinstance(series.dtype, pd.CategoricalDtype):
            text.append(name)
        else:
            numeric.append(name)
    x = numeric_matrix(frame, numeric, source)  # row-major: a batch's rows are gathered from contiguous memory
    columns = {name: frame[name].to_numpy(dtype=object) for name in text}
    return _build_table(x, numeric, columns, y, task, source, missing, target_name)


def table_from_arrays(
    x: Any,
    y: Any,
    names: list[str] | None,
    task: str | None,
    source: str,
    categorical: list[str] | None = None,
    missing: str = "error",
    target_name: str = "target",
) -> Table:
    x_np = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    if x_np.ndim != 2:
        raise ValueError(f"Features of {source} must be a 2-D array (rows × features), got shape {x_np.shape}")
    if x_np.dtype.kind not in "biuf":
        raise ValueError(
            f"Features of {source} must be numeric, got dtype {x_np.dtype}: encode them as numbers first, or pass a "
            "pandas DataFrame, whose text columns are taken as categorical"
        )
    names = names if names is not None else [f"x{i + 1}" for i in range(x_np.shape[1])]
    if len(names) != x_np.shape[1]:
        raise ValueError(f"{len(names)} feature names for {x_np.shape[1]} feature columns")
    categorical = categorical or []
    _check_listed(categorical, names, source)
    keep = [j for j, name in enumerate(names) if name not in categorical]
    if len(keep) == len(names):
        features = _shared_tensor(x_np, np.float32)
    else:
        features = _shared_tensor(np.take(x_np, keep, axis=1), np.float32)  # fresh, row-major (x[:, keep] is not)
    columns = {name: x_np[:, names.index(name)] for name in names if name in categorical}
    return _build_table(features, [names[j] for j in keep], columns, y, task, source, missing, target_name)


def _check_listed(categorical: list[str], features: list[str], source: str) -> None:
    unknown = [name for name in categorical if name not in features]
    if unknown:
        raise ValueError(
            f"`categorical` names {unknown}, which are not feature columns of {source}. Features: {', '.join(features)}"
        )


def _build_table(
    x: Tensor,
    numeric: list[str],
    categorical: dict[str, np.ndarray],
    y: Any,
    task: str | None,
    source: str,
    missing: str,
    target_name: str,
) -> Table:
    y_np = as_numpy(y)
    if len(y_np) != len(x):
        raise ValueError(f"{source}: {len(x)} feature rows but {len(y_np)} targets")
    check_finite(x, numeric, "feature column", source, allow_nan=missing != "error")
    names = numeric + list(categorical)
    codes, values = None, []
    if categorical:
        encoded = [column_vocabulary(column, name, source) for name, column in categorical.items()]
        values = [vocabulary for vocabulary, _ in encoded]
        codes = torch.as_tensor(np.stack([c for _, c in encoded], axis=1))
    y_tensor, task, classes = _targets(y_np, task, source, target_name)
    return Table(x, y_tensor, names, task, classes, list(categorical), codes, values)


def as_numpy(values: Any, others: bool = True) -> Any:
    """A tensor or a pandas Series / DataFrame as numpy; anything else through ``np.asarray`` (``others=False``: as
    it is, e.g. a list keeping its Python objects)."""
    if isinstance(values, Tensor):
        return values.detach().cpu().numpy()
    to_numpy = getattr(values, "to_numpy", None)  # a pandas Series or DataFrame
    if callable(to_numpy):
        return to_numpy()
    return np.asarray(values) if others else values


def _targets(y_np: np.ndarray, task: str | None, source: str, target_name: str) -> tuple[Tensor, str, list[Any] | None]:
    """The targets as the model takes them, the task, and the class labels (``None`` for regression)."""
    if task is None:
        task = "regression" if y_np.dtype.kind == "f" else "classification"
    if task == "regression":
        targets = _float_targets(y_np, source, target_name)
        return targets.view(len(targets), -1), task, None
    if y_np.ndim == 2:  # probability or one-hot rows
        probs = _float_targets(y_np, source, target_name)
        if (probs < 0).any():
            raise ValueError(f"Probability targets of {source} must be >= 0")
        return probs, task, list(range(probs.shape[1]))
    missing = is_missing(y_np)  # class labels: one per row (probability rows returned above)
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"The target {target_name!r} of {source} has {int(missing.sum())} missing labels (first at row {first})"
        )
    small_ints = _small_int_labels(y_np)
    if small_ints is not None:
        return small_ints
    try:
        classes, indices = np.unique(y_np, return_inverse=True)
    except TypeError as err:
        kinds = sorted({type(v).__name__ for v in y_np.tolist()})
        raise ValueError(f"The target {target_name!r} of {source} mixes label types ({', '.join(kinds)})") from err
    if len(classes) < 2:
        raise ValueError(f"Classification needs at least 2 classes; the target of {source} has {classes.tolist()}")
    return torch.as_tensor(indices.reshape(-1), dtype=torch.int64), task, classes.tolist()


def _small_int_labels(y_np: np.ndarray) -> tuple[Tensor, str, list[Any]] | None:
    """Integer class labels in a small range, mapped with a lookup table instead of ``np.unique``'s sort (which holds
    three more label-sized arrays at once); labels that are already ``0 … k-1`` in int64 are shared, not copied.
    ``None`` for any other labels (or fewer than 2 classes, which the general path reports)."""
    fits_int64 = y_np.dtype.kind == "i" or (y_np.dtype.kind == "u" and y_np.itemsize < 8)
    if not fits_int64 or y_np.ndim != 1 or not len(y_np):
        return None
    low, high = int(y_np.min()), int(y_np.max())
    if high - low > 65_536:
        return None
    offsets = np.subtract(y_np, low, dtype=np.int64) if low else y_np  # int64: no overflow of a narrow dtype
    present = np.flatnonzero(np.bincount(offsets, minlength=high - low + 1)) + low
    if len(present) < 2:
        return None
    classes = present.tolist()
    if classes == list(range(len(classes))):
        indices = _shared_tensor(y_np, np.int64)
    else:
        lookup = np.zeros(high - low + 1, dtype=np.int64)
        lookup[present - low] = np.arange(len(present))
        indices = torch.from_numpy(lookup[offsets])
    return indices, "classification", classes


def _shared_tensor(array: np.ndarray, dtype: type[np.generic]) -> Tensor:
    """``array`` as a tensor of ``dtype``, sharing its memory when it already is a native-order, C-contiguous, writeable
    array of that dtype (the data module never modifies it); a copy otherwise."""
    if array.dtype == dtype and array.dtype.isnative and array.flags.c_contiguous and array.flags.writeable:
        return torch.from_numpy(array)
    return torch.from_numpy(np.array(array, dtype=dtype, order="C", copy=True))


def _float_targets(y: np.ndarray, source: str, target_name: str) -> Tensor:
    if y.dtype.kind not in "biuf":
        raise ValueError(
            f"The target {target_name!r} of {source} must be numeric for regression, got dtype {y.dtype}: set "
            "`task: classification` if it holds class labels"
        )
    targets = torch.as_tensor(y.astype(np.float32))
    columns = targets.view(len(targets), -1)
    names = [target_name] if columns.shape[1] == 1 else [f"{target_name}[{i}]" for i in range(columns.shape[1])]
    check_finite(columns, names, "target", source)
    return targets


def check_finite(
    x: Tensor | np.ndarray, names: list[str], kind: str, source: str, allow_nan: bool = False, training: bool = True
) -> None:
    """Raises, naming each column with its count of rows and the first row, when ``x`` holds inf (or a number beyond
    float32's range, which became inf) or, unless ``allow_nan``, NaN: the one check of training and serving."""
    # NaN propagates through max / min and ±inf is their result: no mask of the table's size unless one is bad. On the
    # CPU through numpy (a view): torch's reductions cost several times more on the small inputs of serving.
    if isinstance(x, np.ndarray):
        if not x.size or (math.isfinite(x.max()) and math.isfinite(x.min())):
            return
        x = torch.from_numpy(x)
    elif not x.numel():
        return
    elif x.device.type == "cpu":
        values = x.detach().numpy()
        if math.isfinite(values.max()) and math.isfinite(values.min()):
            return
    elif bool(torch.isfinite(x.amax()) & torch.isfinite(x.amin())):
        return
    bad = torch.isinf(x) if allow_nan else ~torch.isfinite(x)
    counts = bad.sum(dim=0)
    problems = []
    for col in torch.nonzero(counts).flatten().tolist():
        first = int(torch.nonzero(bad[:, col])[0])
        problems.append(f"{names[col]!r}: {int(counts[col])} rows (first at row {first})")
    if not problems:
        return
    beyond = " (inf, or a number beyond float32's range of ±3.4e38)"
    if allow_nan:
        raise ValueError(
            f"Infinite values{beyond} in {source}, {kind} " + "; ".join(problems) + ". Missing numbers are filled with "
            "the training median; infinite ones are an error"
        )
    hint = ""
    if kind == "feature column" and bool(torch.isnan(x).any()):
        hint = (
            ". Set the data module's `missing: median` to fill missing numbers with the training median (or "
            "`missing: median_indicator` to also add a was-missing input per column)"
            if training
            else ". The model's preprocessing has no medians to fill missing numbers (trained with `missing: error`): "
            "fill or drop those rows"
        )
    what = f"NaN or inf{beyond}" if bool(torch.isinf(x).any()) else "NaN"
    raise ValueError(f"{what} in {source}, {kind} " + "; ".join(problems) + hint)


def read_training_table(
    path: str,
    target: str,
    features: list[str] | None,
    task: str | None,
    categorical: list[str],
    missing: str,
) -> Table:
    """The table of a CSV / Parquet training file: ``features`` (default every column but ``target``) and the
    ``target`` column.

    Raises:
        ValueError: naming the file, for a target or feature column it lacks (listing those it has), or a target that
            is also a feature; and as :func:`nnlit.data.files.read_table` and :func:`table_from_frame`.
    """
    frame = read_table(path)
    columns = [str(c) for c in frame.columns]
    if target not in columns:
        raise ValueError(f"Target column {target!r} not in {path!r}. Columns: {', '.join(columns)}")
    features = features if features is not None else [c for c in columns if c != target]
    absent = [c for c in features if c not in columns]
    if absent:
        raise ValueError(f"Feature columns {absent} not in {path!r}. Columns: {', '.join(columns)}")
    if target in features:
        raise ValueError(f"The target column {target!r} cannot also be a feature")
    check_flat(frame, [*features, target], path)
    return table_from_frame(
        frame, features, frame[target].to_numpy(), task, repr(path), categorical, missing, target_name=target
    )


def table_from_source(
    arrays: tuple[Any, Any, list[str] | None],
    features: list[str] | None,
    task: str | None,
    categorical: list[str],
    missing: str,
    strict: bool = True,
) -> Table:
    """The table of ``(x, y, feature_names)`` given to ``TabularDataModule.from_arrays``: a ``DataFrame`` (its columns
    named by ``features`` when given, in that order) or a matrix. ``strict``: a feature the frame lacks is an error
    (else, for a checkpoint's features, the frame's own columns are taken).

    Raises:
        ValueError: for ``features`` the frame lacks, naming them and the frame's columns.
    """
    x, y, names = arrays
    if is_frame(x):
        frame = x.set_axis([str(c) for c in x.columns], axis=1)
        columns = list(frame.columns)
        absent = [name for name in features or [] if name not in columns]
        if absent and strict:
            raise ValueError(f"Feature columns {absent} not in the DataFrame. Columns: {', '.join(columns)}")
        chosen = list(features) if features is not None and not absent else columns
        return table_from_frame(frame, chosen, y, task, "the DataFrame", categorical, missing)
    return table_from_arrays(x, y, names, task, "the arrays", categorical, missing)


def builtin_table(
    dataset: str,
    task: str | None,
    categorical: list[str],
    missing: str,
    n_samples: int,
    noise: float,
    n_classes: int,
    n_features: int,
    seed: int,
) -> Table:
    """The table of a built-in set: one scikit-learn ships, or a synthetic one of ``n_samples`` rows with
    ``n_features - 2`` columns of Gaussian noise after its 2 informative ones."""
    from nnlit.data.sklearn_sets import REAL, load_real
    from nnlit.data.synthetic import SYNTHETIC

    source = f"dataset {dataset!r}"
    if dataset in REAL:
        x_np, y_np, names = load_real(dataset)
        return table_from_arrays(x_np, y_np, names, task or REAL[dataset].task, source, categorical, missing)
    spec = SYNTHETIC[dataset]
    x, y = spec.make(n_samples=n_samples, noise=noise, n_classes=n_classes, seed=seed)
    if n_features > 2:
        x = torch.cat([x, torch.randn(len(x), n_features - 2, generator=torch.Generator().manual_seed(seed + 1))], 1)
    names = [f"x{i + 1}" for i in range(x.shape[1])]
    return table_from_arrays(x, y, names, task or spec.task, source, categorical, missing)
