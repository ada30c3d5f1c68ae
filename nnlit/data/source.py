"""Where a data module's rows come from: a built-in set, a CSV / Parquet file or arrays, read into a :class:`Table`."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from lightning.pytorch.utilities.rank_zero import rank_zero_info

from nnlit.data.preprocessing import MISSING
from nnlit.data.sklearn_sets import REAL
from nnlit.data.synthetic import SYNTHETIC
from nnlit.data.table import Table, builtin_table, read_training_table, table_from_source
from nnlit.validation import check_int

BUILTIN = sorted([*SYNTHETIC, *REAL])
Task = Literal["classification", "regression"]
TASKS = ("classification", "regression")
Missing = Literal["error", "median", "median_indicator"]


@dataclasses.dataclass(frozen=True)
class TableSource:
    """One source of rows and how to read it; the arguments are :class:`~nnlit.TabularDataModule`'s, checked as the
    source is made. ``arrays`` is ``(x, y, feature_names)`` of :meth:`~nnlit.TabularDataModule.from_arrays`;
    ``required``: a missing source is an error (not for a module that predicts from a checkpoint alone).

    Raises:
        ValueError: for no source or two, an unknown built-in set, a file without ``target``, and each argument
            outside what it accepts, naming it.
    """

    dataset: str | None = None
    path: str | None = None
    target: str | None = None
    features: list[str] | None = None
    categorical: list[str] | None = None
    missing: Missing = "error"
    task: Task | None = None
    n_samples: int = 1000
    noise: float = 0.1
    n_classes: int = 2
    n_features: int = 2
    seed: int = 0
    arrays: tuple[Any, Any, list[str] | None] | None = None
    required: bool = True

    def __post_init__(self) -> None:
        dataset, path = self.dataset, self.path
        if dataset is not None and path is not None:  # a config that names a built-in set, and a file added to it
            raise ValueError(
                f"Give exactly one data source, got both dataset={dataset!r} and path={path!r}: to read the file, set "
                "`dataset: null` in the YAML config (`--data.dataset=null` on the command line, dataset=None from "
                "Python); to use the built-in set, leave `path` out"
            )
        if dataset is None and path is None and self.arrays is None and self.required:
            raise ValueError(
                "Give exactly one data source: `dataset` (a built-in name: "
                f"{', '.join(BUILTIN)}) or `path` (a CSV / Parquet file); got neither. For arrays use "
                "TabularDataModule.from_arrays(x, y). To predict without training data give `checkpoint` and "
                "`predict_path` alone."
            )
        if dataset is not None and dataset not in BUILTIN:
            raise ValueError(f"Unknown dataset {dataset!r}. Built-in sets: {', '.join(BUILTIN)}")
        if path is not None and self.target is None:
            raise ValueError(f"`target` must name the target column of {path!r}")
        if self.missing not in MISSING:
            raise ValueError(f"`missing` must be one of {', '.join(MISSING)}, got {self.missing!r}")
        categorical = self.categorical
        if isinstance(categorical, str) or not all(isinstance(c, str) for c in categorical or []):
            raise ValueError(f"`categorical` must be a list of column names, got {categorical!r}")
        if self.task is not None and self.task not in TASKS:
            raise ValueError(f"`task` must be one of {', '.join(TASKS)} or None, got {self.task!r}")
        check_int("n_samples", self.n_samples)
        check_int("n_features", self.n_features, minimum=2, where=" of a built-in set")
        if self.noise < 0:
            raise ValueError(f"`noise` must be >= 0, got {self.noise!r}")

    def load(self, checkpoint_features: list[str] | None = None) -> Table:
        """The source's rows as a checked :class:`Table`, logged in one line. ``checkpoint_features``: a checkpoint's
        feature columns, read in its order where the source names its columns and no ``features`` are given."""
        features = self.features if self.features is not None else checkpoint_features
        categorical = list(self.categorical or [])
        if self.arrays is not None:
            strict = self.features is not None  # the caller's features must be there; a checkpoint's may not be
            table = table_from_source(self.arrays, features, self.task, categorical, self.missing, strict)
        elif self.dataset is not None:
            table = builtin_table(
                self.dataset, self.task, categorical, self.missing, self.n_samples, self.noise, self.n_classes,
                self.n_features, self.seed,
            )  # fmt: skip
        else:
            assert self.path is not None and self.target is not None  # checked when made
            table = read_training_table(self.path, self.target, features, self.task, categorical, self.missing)
        categorical_note = f", {len(table.categorical)} of them categorical" if table.categorical else ""
        rank_zero_info(
            f"nnlit data: {len(table.x)} rows, {len(table.feature_names)} features{categorical_note}, {table.task}"
            + (f", {len(table.classes)} classes" if table.classes is not None else "")
        )
        return table


__all__ = ["BUILTIN", "TASKS", "Missing", "TableSource", "Task"]
