"""Where a data module's rows come from: a built-in set, a CSV / Parquet file or arrays, read into a :class:`Table`."""

from __future__ import annotations

import dataclasses
from typing import Any

from lightning.pytorch.utilities.rank_zero import rank_zero_info

from nnlit.data.options import TASKS, DataOptions
from nnlit.data.preprocessing import MISSING
from nnlit.data.sklearn_sets import REAL
from nnlit.data.synthetic import SYNTHETIC
from nnlit.data.table import Table, builtin_table, read_training_table, table_from_source
from nnlit.validation import check_int

BUILTIN = sorted([*SYNTHETIC, *REAL])


@dataclasses.dataclass(frozen=True)
class TableSource:
    """One source of rows and how to read it, as ``options`` (a data module's) name it, checked as the source is made.
    ``arrays`` is ``(x, y, feature_names)`` of :meth:`~nnlit.TabularDataModule.from_arrays`; ``required``: a missing
    source is an error (not for a module that predicts from a checkpoint alone).

    Raises:
        ValueError: for no source or two, an unknown built-in set, a file without ``target``, and each argument
            outside what it accepts, naming it.
    """

    options: DataOptions
    arrays: tuple[Any, Any, list[str] | None] | None = None
    required: bool = True

    def __post_init__(self) -> None:
        o = self.options
        dataset, path = o.dataset, o.path
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
        if path is not None and o.target is None:
            raise ValueError(f"`target` must name the target column of {path!r}")
        if o.missing not in MISSING:
            raise ValueError(f"`missing` must be one of {', '.join(MISSING)}, got {o.missing!r}")
        categorical = o.categorical
        if isinstance(categorical, str) or not all(isinstance(c, str) for c in categorical or []):
            raise ValueError(f"`categorical` must be a list of column names, got {categorical!r}")
        if o.task is not None and o.task not in TASKS:
            raise ValueError(f"`task` must be one of {', '.join(TASKS)} or None, got {o.task!r}")
        check_int("n_samples", o.n_samples)
        check_int("n_features", o.n_features, minimum=2, where=" of a built-in set")
        if o.noise < 0:
            raise ValueError(f"`noise` must be >= 0, got {o.noise!r}")

    def load(self, checkpoint_features: list[str] | None = None) -> Table:
        """The source's rows as a checked :class:`Table`, logged in one line. ``checkpoint_features``: a checkpoint's
        feature columns, read in its order where the source names its columns and no ``features`` are given."""
        o = self.options
        features = o.features if o.features is not None else checkpoint_features
        categorical = list(o.categorical or [])
        if self.arrays is not None:
            strict = o.features is not None  # the caller's features must be there; a checkpoint's may not be
            table = table_from_source(self.arrays, features, o.task, categorical, o.missing, strict)
        elif o.dataset is not None:
            table = builtin_table(
                o.dataset, o.task, categorical, o.missing, o.n_samples, o.noise, o.n_classes,
                o.n_features, 0 if o.seed is None else o.seed,
            )  # fmt: skip
        else:
            assert o.path is not None and o.target is not None  # checked when made
            table = read_training_table(o.path, o.target, features, o.task, categorical, o.missing)
        categorical_note = f", {len(table.categorical)} of them categorical" if table.categorical else ""
        rank_zero_info(
            f"nnlit data: {len(table.x)} rows, {len(table.feature_names)} features{categorical_note}, {table.task}"
            + (f", {len(table.classes)} classes" if table.classes is not None else "")
        )
        return table


__all__ = ["BUILTIN", "TableSource"]
