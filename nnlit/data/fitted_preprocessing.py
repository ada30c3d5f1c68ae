"""What training learnt about its table, applied the same way to every later row: :class:`FittedPreprocessing`."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import Tensor

from nnlit.checkpoint_io import read_checkpoint
from nnlit.data.placement import DeviceCopies
from nnlit.data.preprocessing import MISSING, CategoryCodes, column_mean_std, column_medians, impute
from nnlit.data.table import Table

#: a categorical column with more distinct training values than both of these looks like an identifier
_ID_LIKE_MIN, _ID_LIKE_FRACTION = 50, 0.5
#: The checkpoint entry where Lightning saves ``TabularDataModule.state_dict``: the preprocessing of training.
DATA_KEY = "TabularDataModule"
#: the keys every saved preprocessing has (older checkpoints lack the others)
STATE_KEYS = frozenset({"mean", "std", "classes", "feature_names"})


class FittedPreprocessing:
    """The preprocessing of a table, fitted on its training rows, in the spirit of a fitted scikit-learn transformer:
    feature names, categorical columns and their vocabularies, medians and was-missing columns for missing numbers,
    the mean and standard deviation of each model input, and the class labels.

    :class:`~nnlit.TabularDataModule` fits one (:meth:`fit`) and saves it in checkpoints (:meth:`state_dict`);
    :class:`~nnlit.Predictor` and a data module given a ``checkpoint`` rebuild it (:meth:`from_state_dict`). Both
    transform rows through :meth:`transform`, so training and serving cannot drift apart.

    The model's input is: the numeric features (missing ones filled with the training median when ``missing`` is not
    ``"error"``), a 0 / 1 was-missing column for each of :attr:`indicators`, then the code of each categorical
    feature; all standardised with :attr:`mean` and :attr:`std` (the was-missing and code columns keep their values:
    mean 0, std 1).

    Args:
        feature_names: the numeric features, then the categorical ones, as the model takes them.
        categorical: the categorical features (the last ``len(categorical)`` of ``feature_names``).
        vocabularies: the training values of each categorical feature, in code order (code 0 is unknown).
        missing: ``"error"``, ``"median"`` or ``"median_indicator"``, as the data module's argument.
        median: the training median of each numeric feature; ``None`` when missing numbers are an error.
        indicators: the numeric features with a was-missing input column.
        mean: the training mean of each model input column; ``None`` (with ``std``) for no standardisation.
        std: the training standard deviation of each model input column, all ``> 0``.
        classes: the original label of each class index; ``None`` for regression.
        num_targets: the regression targets (1 for classification).

    Raises:
        ValueError: for arguments that do not fit together, naming them (a count of names, means, medians or
            vocabularies, a non-finite statistic, a zero standard deviation).

    Example::

        >>> prep = FittedPreprocessing(["a", "b"], mean=[1.0, 2.0], std=[0.5, 4.0], classes=["n", "y"])
        >>> prep.transform(torch.tensor([[2.0, 2.0]]))
        tensor([[2., 0.]])
        >>> FittedPreprocessing.from_state_dict(prep.state_dict()).classes
        ['n', 'y']
    """

    def __init__(
        self,
        feature_names: Sequence[str],
        categorical: Sequence[str] = (),
        vocabularies: Sequence[Sequence[Any]] = (),
        missing: str = "error",
        median: Sequence[float] | Tensor | None = None,
        indicators: Sequence[str] = (),
        mean: Sequence[float] | Tensor | None = None,
        std: Sequence[float] | Tensor | None = None,
        classes: Sequence[Any] | None = None,
        num_targets: int = 1,
    ) -> None:
        self.feature_names = _unique_names(feature_names)
        self.categorical = list(categorical)
        if self.feature_names[len(self.feature_names) - len(self.categorical) :] != self.categorical:
            raise ValueError(
                f"`categorical` {self.categorical} must be the last features of `feature_names` {self.feature_names}"
            )
        self.vocabularies = [list(v) for v in vocabularies]
        if len(self.vocabularies) != len(self.categorical):
            raise ValueError(
                f"`vocabularies` needs one list per categorical feature ({len(self.categorical)}), got "
                f"{len(self.vocabularies)}"
            )
        self.codes = [CategoryCodes(v) for v in self.vocabularies]
        if missing not in MISSING:
            raise ValueError(f"`missing` must be one of {', '.join(MISSING)}, got {missing!r}")
        self.missing = missing
        self.indicators = list(indicators)
        self.median = _statistic("median", median, len(self.numeric))
        if (self.median is None) != (missing == "error"):
            raise ValueError(f"`median` is needed with missing={missing!r} and only then, got median={median!r}")
        unknown = [name for name in self.indicators if name not in self.numeric]
        if unknown:
            raise ValueError(f"`indicators` {unknown} are not numeric features: {self.numeric}")
        if self.indicators and self.median is None:
            raise ValueError("`indicators` need the `median` of each numeric feature, to fill what is missing")
        if (mean is None) != (std is None):
            raise ValueError(f"Give both `mean` and `std` or neither, got mean={mean!r}, std={std!r}")
        self.mean = _statistic("mean", mean, self.num_inputs)
        self.std = _statistic("std", std, self.num_inputs)
        if self.std is not None and (self.std <= 0).any():
            raise ValueError(f"`std` must be > 0, got {self.std.tolist()}")
        self.classes = None if classes is None else list(classes)
        self.num_targets = int(num_targets)
        #: the positions of :attr:`indicators` among the numeric features
        self.indicator_positions = [self.numeric.index(name) for name in self.indicators]
        self._copies = DeviceCopies()  # the statistics on the devices they were used on

    # ---------------------------------------------------------------- fitting
    @classmethod
    def fit(
        cls, table: Table, train: Tensor, missing: str = "error", standardize: bool = True, listed: Sequence[str] = ()
    ) -> FittedPreprocessing:
        """Fits on the rows ``train`` of ``table``: the medians and was-missing columns (per ``missing``), the
        vocabulary of each categorical column (the values the training rows have), and the mean and standard deviation
        of each model input (a column whose values are all equal gets 1).

        Raises:
            ValueError: for a numeric column with no value in the training rows when filling missing numbers; for a
                categorical column that nnlit inferred (not ``listed`` in the data module's
                ``categorical``) with more distinct training values than max(50, half the rows): an identifier, whose
                embedding would learn nothing that carries to new rows. A listed one is kept, with a warning.
        """
        numeric = table.numeric
        median, indicators = None, []
        if missing != "error":
            empty = [name for j, name in enumerate(numeric) if bool(torch.isnan(table.x[train, j]).all())]
            if empty:  # its median would be made up (0), and the column a constant
                raise ValueError(
                    f"Feature column {empty[0]!r} has no value in the {len(train)} training rows (every one is "
                    f"missing), so missing={missing!r} has no median to fill it with: drop the column"
                )
            median = column_medians(table.x, train)
            if missing == "median_indicator":
                indicators = [n for j, n in enumerate(numeric) if bool(torch.isnan(table.x[train, j]).any())]
        vocabularies = []
        if table.codes is not None:
            for j, values in enumerate(table.values):
                seen = torch.unique(table.codes[train, j]).tolist()
                vocabularies.append([values[k] for k in seen])  # sorted as `values` are, None last
                _check_cardinality(table.categorical[j], len(seen), len(train), table.categorical[j] in listed)
        mean = std = None
        if standardize:
            positions = [numeric.index(name) for name in indicators]
            mean, std = column_mean_std(table.x, train, lambda x: impute(x, median, positions))
            std = torch.where(std > 0, std, torch.ones_like(std))
            mean[len(numeric) :], std[len(numeric) :] = 0.0, 1.0  # was-missing columns stay 0 / 1
            codes = len(table.categorical)
            mean, std = torch.cat([mean, torch.zeros(codes)]), torch.cat([std, torch.ones(codes)])
        targets = 1 if table.classes is not None else table.y[:1].view(1, -1).shape[1]
        return cls(
            table.feature_names, table.categorical, vocabularies, missing, median, indicators, mean, std,
            table.classes, targets,
        )  # fmt: skip

    # ---------------------------------------------------------------- what the model takes
    @property
    def numeric(self) -> list[str]:
        """The numeric features."""
        return self.feature_names[: len(self.feature_names) - len(self.categorical)]

    @property
    def num_inputs(self) -> int:
        """The model's input width: numeric features, was-missing columns, category codes."""
        return len(self.feature_names) + len(self.indicators)

    @property
    def categories(self) -> list[int] | None:
        """The number of codes of each categorical feature, unknown included (the model's ``categories``)."""
        return [len(codes) for codes in self.codes] or None

    def transform(
        self, x: Tensor, codes: Tensor | None = None, copied: bool = False, on: Callable[[Tensor], Tensor] | None = None
    ) -> Tensor:
        """The model's input from numeric features in their own units (NaN where missing) and the category codes:
        :meth:`fill`, then :meth:`standardize`.

        Args:
            x: the numeric features, rows × :attr:`numeric`.
            codes: the codes of the categorical features, rows × :attr:`categorical` (any dtype).
            copied: ``x`` is a copy nothing else reads (a gathered batch): it is standardised in place.
            on: how a statistic reaches ``x``'s device (a data module keeps one copy per fit); default, a copy kept
                here.
        """
        filled = self.fill(x, codes, on)
        return self.standardize(filled, copied or filled is not x, on)

    def fill(self, x: Tensor, codes: Tensor | None = None, on: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """The model's input before standardisation: missing numbers filled with the training median and was-missing
        columns added (per ``missing``), then the category codes. ``x`` itself when there is nothing to add."""
        if self.median is not None:  # imputing: the was-missing positions are looked up only then
            x = impute(x, self._on(self.median, x.device, on), self.indicator_positions)
        if codes is not None and codes.shape[1]:
            x = torch.cat([x, codes.to(device=x.device, dtype=x.dtype)], dim=1)
        return x

    def standardize(self, x: Tensor, in_place: bool = False, on: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """``(x - mean) / std`` with the training statistics (``x`` as :meth:`fill` returns it), in place when
        ``in_place``; ``x`` itself when the preprocessing does not standardise."""
        if self.mean is None or self.std is None:
            return x
        mean, std = self._on(self.mean, x.device, on), self._on(self.std, x.device, on)
        return (x.sub_(mean) if in_place else x - mean).div_(std)

    def _on(self, statistic: Tensor, device: torch.device, on: Callable[[Tensor], Tensor] | None) -> Tensor:
        """A statistic on ``device``: itself when it is there, else through ``on`` or a copy kept here (copies of the
        statistics now held only: one may have been replaced)."""
        if statistic.device == device:
            return statistic
        if on is not None:
            return on(statistic)
        return self._copies.to(statistic, device, keep=(self.median, self.mean, self.std))

    def table_codes(self, table: Table) -> tuple[Tensor, Tensor]:
        """The codes (float32, rows × :attr:`categorical`) of a table's categorical columns, and where a value was
        unknown to training (bool, the same shape). Each column's distinct values are encoded once, then gathered
        by the table's own codes: a large table is not encoded value by value."""
        if table.codes is None:
            raise ValueError("The table has no categorical columns")
        columns, unseen_columns = [], []
        for values, vocabulary, codes in zip(table.values, self.codes, table.codes.T):
            lookup, _ = vocabulary.encode(values)  # the code of each distinct value
            columns.append(torch.as_tensor(lookup, dtype=torch.float32)[codes])
            unseen = torch.tensor([code == 0 and value is not None for code, value in zip(lookup, values)])
            unseen_columns.append(unseen[codes])
        return torch.stack(columns, dim=1), torch.stack(unseen_columns, dim=1)

    def encode_categories(self, columns: Mapping[str, Sequence[Any]], num_rows: int) -> tuple[Tensor, dict[str, int]]:
        """The codes (float32, rows × :attr:`categorical`) of raw categorical columns (by name), and how many values
        of each column training did not see (they take the unknown code, 0)."""
        codes = np.empty((num_rows, len(self.categorical)), dtype=np.float32)
        unknown: dict[str, int] = {}
        for j, (name, vocabulary) in enumerate(zip(self.categorical, self.codes)):
            codes[:, j], unknown[name] = vocabulary.encode(columns[name])
        return torch.from_numpy(codes), unknown

    def decode(self, labels: Tensor | Sequence[int]) -> list[Any]:
        """The original labels of class indices (the indices themselves for regression or unnamed classes)."""
        indices = labels.tolist() if isinstance(labels, Tensor) else list(labels)
        return indices if self.classes is None else [self.classes[i] for i in indices]

    # ---------------------------------------------------------------- the checkpoint entry
    def state_dict(self) -> dict[str, Any]:
        """Plain data (lists, strings, numbers): the ``"TabularDataModule"`` entry of a checkpoint."""
        return {
            "mean": None if self.mean is None else self.mean.tolist(),
            "std": None if self.std is None else self.std.tolist(),
            "classes": self.classes,
            "feature_names": self.feature_names,
            "categorical": self.categorical,
            "vocabularies": self.vocabularies,
            "missing": self.missing,
            "median": None if self.median is None else self.median.tolist(),
            "indicators": self.indicators,
            "num_targets": self.num_targets,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> FittedPreprocessing:
        """The preprocessing a :meth:`state_dict` describes (checkpoints written before categorical and missing values
        were supported lack those keys)."""
        return cls(
            state["feature_names"],
            categorical=state.get("categorical", []),
            vocabularies=state.get("vocabularies", []),
            missing=state.get("missing", "error"),
            median=state.get("median"),
            indicators=state.get("indicators", []),
            mean=state["mean"],
            std=state["std"],
            classes=state["classes"],
            num_targets=state.get("num_targets", 1),
        )

    def __repr__(self) -> str:
        parts = [f"features={self.feature_names}"]
        if self.categorical:
            parts.append(f"categorical={self.categorical}")
        if self.median is not None:
            parts.append(f"missing={self.missing!r}")
        parts.append("standardized" if self.mean is not None else "not standardized")
        if self.classes is not None:
            parts.append(f"classes={self.classes}")
        return f"FittedPreprocessing({', '.join(parts)})"


def _unique_names(names: Sequence[str]) -> list[str]:
    names = list(names)
    repeated = sorted({name for name in names if names.count(name) > 1}, key=str)
    if repeated:
        raise ValueError(f"`feature_names` must be unique, got {repeated} more than once")
    return names


def _statistic(name: str, values: Sequence[float] | Tensor | None, length: int) -> Tensor | None:
    """A statistic as a float32 tensor of ``length`` finite values, or ``None``."""
    if values is None:
        return None
    tensor = torch.as_tensor(values, dtype=torch.float32).reshape(-1).clone()
    if len(tensor) != length:
        what = "one per numeric feature" if name == "median" else "one per model input"
        raise ValueError(f"`{name}` needs {length} values ({what}), got {len(tensor)}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"`{name}` must be finite, got {tensor.tolist()}")
    return tensor


def _check_cardinality(name: str, distinct: int, rows: int, listed: bool) -> None:
    """A text column with a value for (nearly) every row is an identifier, not a category: refused when nnlit inferred
    that it is categorical, warned about when it is listed in ``categorical``."""
    if distinct <= max(_ID_LIKE_MIN, _ID_LIKE_FRACTION * rows):
        return
    width = min(600, round(1.6 * (distinct + 1) ** 0.56))
    message = (
        f"Categorical column {name!r} has {distinct:,} distinct values in {rows:,} training rows: it looks like an "
        f"identifier, whose embedding ({distinct + 1:,} x {width} = {(distinct + 1) * width:,} parameters) learns "
        "nothing that carries to new rows"
    )
    if not listed:
        raise ValueError(f"{message}. Leave it out of `features`, or list it in `categorical` if it is a category")
    rank_zero_warn(f"{message} (it is listed in `categorical`, so it is kept)")


def read_data_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The data module's state saved in a checkpoint (see :meth:`TabularDataModule.state_dict`).

    Raises:
        FileNotFoundError: naming the path.
        ValueError: when the checkpoint has no such entry (a model trained without nnlit's data module).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint not found: {str(path)!r}")
    state = data_state(read_checkpoint(path))  # checked plain data; the structure only, no weights read
    if state is None:
        raise ValueError(
            f"{str(path)!r} has no {DATA_KEY!r} entry, where nnlit's data module saves the feature names, scaler, "
            "vocabularies and classes of training: the model was trained without nnlit's TabularDataModule"
        )
    return state


def data_state(checkpoint: Any) -> dict[str, Any] | None:
    """The data module's state in a loaded checkpoint: the ``"TabularDataModule"`` entry, or the one entry of the same
    keys (a subclass of the data module is saved under its own name); ``None`` when there is none."""
    if not isinstance(checkpoint, dict):
        return None
    state = checkpoint.get(DATA_KEY)
    if isinstance(state, dict) and STATE_KEYS <= set(state):
        return state
    found = [v for v in checkpoint.values() if isinstance(v, dict) and STATE_KEYS <= set(v)]
    return found[0] if len(found) == 1 else None


__all__ = ["DATA_KEY", "STATE_KEYS", "FittedPreprocessing", "data_state", "read_data_state"]
