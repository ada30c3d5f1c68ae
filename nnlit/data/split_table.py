"""A data module's rows and what is learnt from them: the table, its split, the fitted preprocessing, the model's
inputs."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from nnlit.data.fitted_preprocessing import FittedPreprocessing
from nnlit.data.loader import TensorBatchLoader
from nnlit.data.placement import TablePlacement
from nnlit.data.predict_file import read_predict_file
from nnlit.data.source import TableSource
from nnlit.data.split_loaders import batch_transform, split_loader
from nnlit.data.splits import RowSplit
from nnlit.data.table import Table
from nnlit.data.table_inputs import TableInputs


class SplitTable:
    """The table of a :class:`~nnlit.TabularDataModule`, read from its :class:`~nnlit.data.source.TableSource` at the
    first use; its rows, split once by a :class:`~nnlit.data.splits.RowSplit`; the preprocessing fitted on the
    training split (or restored from a checkpoint, which then wins); and the model's inputs under it
    (:class:`~nnlit.data.table_inputs.TableInputs`). The data module says when to read, split and fit; this holds the
    results.

    Example::

        >>> from nnlit.data.options import DataOptions
        >>> rows = SplitTable()
        >>> table = rows.load(TableSource(DataOptions(dataset="xor", n_samples=100, seed=0)))
        >>> rows.split(table, RowSplit(0.2, 0.0, 0), "error", True, [])
        >>> [len(rows.splits[s]) for s in ("train", "val", "test")], rows.preprocessing.feature_names
        ([80, 20, 0], ['x1', 'x2'])
    """

    def __init__(self) -> None:
        #: the whole table (every split), once read
        self.table: Table | None = None
        #: the rows (int32 positions in the table) of ``"train"``, ``"val"`` and ``"test"``, once split
        self.splits: dict[str, Tensor] = {}
        #: what training learnt (fitted at the first split, or restored from a checkpoint), saved in checkpoints
        self.preprocessing: FittedPreprocessing | None = None
        self.inputs = TableInputs()

    def load(self, source: TableSource, feature_names: list[str] | None = None) -> Table:
        """The table, read from ``source`` at the first call (in the order of a checkpoint's ``feature_names``)."""
        if self.table is None:
            self.table = source.load(feature_names)
        return self.table

    def split(self, table: Table, split: RowSplit, missing: str, standardize: bool, categorical: list[str]) -> None:
        """Splits ``table``'s rows by ``split``, and fits the preprocessing on the training rows unless there is one
        already (a checkpoint's values, restored later, win)."""
        self.splits = split.split(len(table.x))
        if self.preprocessing is None:
            self.preprocessing = FittedPreprocessing.fit(table, self.splits["train"], missing, standardize, categorical)
            self.inputs.forget_codes()

    def restore(self, state_dict: dict[str, Any]) -> FittedPreprocessing:
        """Takes a checkpoint's preprocessing (:meth:`FittedPreprocessing.state_dict`) in place of a fitted one."""
        self.preprocessing = FittedPreprocessing.from_state_dict(state_dict)
        self.inputs.forget_codes()
        return self.preprocessing

    def fitted(self) -> FittedPreprocessing:
        """The preprocessing, once fitted or restored."""
        if self.preprocessing is None:
            raise RuntimeError("The rows are not split yet: nothing is fitted")
        return self.preprocessing

    def input_tensors(self, split: str, rows: Tensor | None) -> tuple[Tensor, ...]:
        """The table's numeric features, and its category codes with categorical features (see
        :meth:`TableInputs.tensors <nnlit.data.table_inputs.TableInputs.tensors>`)."""
        assert self.table is not None  # read before anything asks for its inputs
        return self.inputs.tensors(self.table, self.fitted(), split, rows)

    def split_tensors(self, split: str, placement: TablePlacement) -> tuple[Tensor, Tensor]:
        """The model's inputs (filled, coded, standardised: a copy) and the targets of the ``split``'s rows."""
        assert self.table is not None
        index = self.splits[split]
        tensors = self.input_tensors(split, index)
        transform = batch_transform(self.fitted(), placement, copied=True)
        return transform(tuple(t[index] for t in tensors))[0], self.table.y[index]

    def loader(self, split: str, batch_size: int, placement: TablePlacement, **order: Any) -> TensorBatchLoader:
        """Batches of the ``split``'s rows (see :func:`~nnlit.data.split_loaders.split_loader`, which takes ``order``:
        ``shuffle``, ``pad``, ``drop_last``, ``seed``, ``trainer``), after checking a checkpoint's classes."""
        assert self.table is not None
        self.check_classes()
        index = self.splits[split]
        # the whole table and the split's row numbers: no copy of the split; each batch is standardised as it is cut
        tensors = [*self.input_tensors(split, index), self.table.y]
        transform = batch_transform(self.fitted(), placement, copied=True)
        return split_loader(tensors, index, batch_size, placement=placement, transform=transform, **order)

    def predict_tensors(self, predict_path: str | None, target: str | None) -> tuple[Tensor, ...]:
        """The inputs of the rows to predict: the file ``predict_path`` (read as :class:`~nnlit.Predictor` reads rows;
        its unknown categorical values counted), else every row of the table."""
        if predict_path is None:
            return self.input_tensors("predict", None)
        tensors, unknown = read_predict_file(predict_path, self.fitted(), target)
        if unknown:
            self.inputs.record_unknown("predict", list(unknown), list(unknown.values()))
        return tensors

    def check_classes(self) -> None:
        """Raises a ``ValueError`` when a checkpoint's classes are not those of the table: the labels would be mapped
        to the wrong outputs."""
        classes = self.fitted().classes
        table_classes = None if self.table is None else self.table.classes
        if classes is not None and table_classes is not None and classes != table_classes:
            raise ValueError(
                f"The checkpoint's classes {classes} differ from the classes of this data, {table_classes}: the "
                "labels would be mapped to the wrong outputs. Use data with the classes the model was trained on."
            )

    def target_scale(self) -> tuple[list[float], list[float]] | None:
        """The mean and standard deviation (1 where it is 0) of each regression target over the training rows;
        ``None`` for classes."""
        assert self.table is not None
        if self.table.classes is not None:
            return None
        train_y = self.table.y[self.splits["train"]]
        std = train_y.std(dim=0, unbiased=False)
        return train_y.mean(dim=0).tolist(), torch.where(std > 0, std, torch.ones_like(std)).tolist()


__all__ = ["SplitTable"]
