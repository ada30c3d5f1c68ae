"""In-memory tabular data: arrays, CSV / Parquet files or a built-in synthetic set, split, scaled and batched."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Literal

import lightning as L
from torch import Tensor

from nnlit.checked_loading import checked_load_arguments
from nnlit.data.fitted_preprocessing import DATA_KEY, FittedPreprocessing, data_state, read_data_state
from nnlit.data.loader import TensorBatchLoader
from nnlit.data.options import DataOptions, Missing, Option, Task
from nnlit.data.placement import TablePlacement
from nnlit.data.source import TableSource
from nnlit.data.split_loaders import batch_transform, predict_loader
from nnlit.data.split_table import SplitTable
from nnlit.data.splits import RowSplit
from nnlit.data.table import Table
from nnlit.distributed import destroy_process_group_at_exit


class TabularDataModule(L.LightningDataModule):
    """Tabular data held in memory and served as slices of tensors.

    Exactly one source: a built-in ``dataset`` name, a CSV / Parquet ``path`` (with the ``target`` column), or arrays
    or a ``DataFrame`` through :meth:`from_arrays`. Rows are split once with ``seed`` into train / val / test; features
    are standardised with the training split's mean and standard deviation; class labels of any type (strings,
    integers) are encoded as ``0..K-1`` and decoded back for predictions.

    **Categorical columns**: text, pandas ``category`` columns, and the columns listed in ``categorical`` (e.g. integer
    codes). Each value becomes a code, ``1 … n`` for the values of the training split; a value the training split did
    not have (in validation, test or prediction rows) gets code ``0``, the unknown category, and their count is logged
    once per split. A missing value is a category of its own. The codes follow the numeric columns in the model's
    input, and the model one-hot encodes or embeds them (:class:`~nnlit.nn.categorical.CategoricalEncoder`; the CLI
    links :attr:`categories` into the model).

    **Missing numbers** (NaN, empty CSV cells) follow ``missing``: an error by default, or filled with the training
    split's median, with a "was missing" input if asked.

    The scaler, medians, vocabularies and the label mapping are fitted on the training split only and are part of
    :meth:`state_dict`, so a checkpoint carries them, and ``predict`` and :class:`~nnlit.Predictor` reuse them.

    Batches are ``(features, targets)`` for fit / validate / test and ``(features, row_index)`` for predict. They are
    cut from tensors by a shuffled index (see :class:`~nnlit.data.loader.TensorBatchLoader`); under DDP each rank
    takes a distinct stride of the same per-epoch permutation.

    Args:
        **options: the arguments, each declared once in :class:`~nnlit.data.options.DataOptions` (its docs follow):
            the source (``dataset``, ``path``, ``target``, …, ``checkpoint``), the split (``val_fraction``, ``folds``,
            …) and the batches (``batch_size``, …, ``table_on_device``); each is read as an attribute of the same
            name, kept in :attr:`options`.

    Example::

        >>> dm = TabularDataModule(dataset="spiral", n_classes=3, n_samples=300)
        >>> dm.num_features, dm.num_classes
        (2, 3)
        >>> dm.setup("fit")
        >>> x, y = next(iter(dm.train_dataloader()))
        >>> x.shape, y.dtype
        (torch.Size([64, 2]), torch.int64)
    """

    dataset = Option[str | None]()
    path = Option[str | None]()
    target = Option[str | None]()
    features = Option[list[str] | None]()
    categorical = Option[list[str] | None]()
    missing = Option[Missing]()
    predict_path = Option[str | None]()
    checkpoint = Option[str | None]()
    task = Option[Task | None]()
    n_samples = Option[int]()
    noise = Option[float]()
    n_classes = Option[int]()
    n_features = Option[int]()
    val_fraction = Option[float]()
    test_fraction = Option[float]()
    batch_size = Option[int]()
    eval_batch_size = Option[int | None]()
    batches_per_step = Option[int]()
    standardize = Option[bool]()
    shuffle = Option[bool]()
    drop_last = Option[bool]()
    seed = Option[int]()  # resolved when the module is made
    folds = Option[int | None]()
    fold = Option[int]()

    def __init__(self, **options: Any) -> None:
        super().__init__()
        DataOptions.check_names(type(self).__name__, options)
        #: the arguments (see :class:`~nnlit.data.options.DataOptions`); ``seed`` resolved
        self.options = DataOptions(**options)
        if self.options.seed is None:
            self.seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
        # the arrays of from_arrays, set on the instance before it calls __init__ (no source argument to check then)
        self._arrays: tuple[Any, Any, list[str] | None] | None = getattr(self, "_arrays", None)
        #: no training data: predictions on ``predict_path`` with the preprocessing of ``checkpoint``
        self.predict_only = self.options.predict_only
        TableSource(self.options, self._arrays, not self.predict_only)  # checks the source's arguments
        #: where the loaders gather batches from (the host, or one copy of the table on the Trainer's device)
        self.placement = TablePlacement(self.options.table_on_device)
        #: the table, its split, the preprocessing fitted on the training split, the model's inputs under it
        self.rows = SplitTable()
        #: values that the training split did not have, per split, per categorical column (logged once per split)
        self.unknown_categories = self.rows.inputs.unknown_categories
        if self.checkpoint is not None:
            self.load_state_dict(read_data_state(self.checkpoint))

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls,
        checkpoint_path: str | Path,
        map_location: Any = None,
        hparams_file: str | Path | None = None,
        weights_only: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """Lightning's ``load_from_checkpoint``, reading the file as checked plain data and building the data module
        with ``cls(**hparams, **kwargs)``, never through an ``_instantiator`` the file names (see :mod:`nnlit.trust`).
        nnlit saves no data module hyperparameters: give the data source as ``kwargs``; the fitted preprocessing comes
        from the checkpoint. (``checkpoint=path`` does the same without the Lightning call.)"""
        if "checkpoint" in kwargs:
            raise ValueError("`checkpoint` is the file load_from_checkpoint reads: give the data source alone")
        data, arguments = checked_load_arguments(cls, checkpoint_path, hparams_file, weights_only, kwargs)
        return super().load_from_checkpoint(data, map_location, None, True, **arguments)

    @classmethod
    def from_arrays(cls, x: Any, y: Any, feature_names: list[str] | None = None, **kwargs: Any) -> TabularDataModule:
        """Builds the data module from a feature matrix ``x`` (rows × features, numpy or torch) or a pandas
        ``DataFrame`` of features (categorical columns included), and targets ``y`` (numpy, torch or a pandas
        ``Series``).

        ``y`` holds class labels of any type, probability / one-hot rows (``task="classification"``), or float
        regression targets (one column or several). ``feature_names`` names the columns of a matrix (a
        ``DataFrame`` has its own). ``kwargs`` are the other ``__init__`` arguments.

        A float32 feature matrix and int64 labels ``0 … k-1`` (C-contiguous, writeable numpy arrays) are used in place,
        not copied, so a large table is not held twice: do not modify them while the data module is in use.

        Example::

            >>> import numpy as np
            >>> dm = TabularDataModule.from_arrays(np.eye(4), np.array(["a", "b", "a", "b"]), val_fraction=0.5)
            >>> dm.num_features, dm.num_classes, dm.classes
            (4, 2, ['a', 'b'])
        """
        for source in ("dataset", "path"):
            if kwargs.get(source) is not None:
                raise ValueError(f"from_arrays takes its data from `x` and `y`: leave `{source}` out")
        self = cls.__new__(cls)
        self._arrays = (x, y, feature_names)
        self.__init__(**kwargs)  # type: ignore[misc]
        return self

    # ---------------------------------------------------------------- what the model needs to know; names of the data
    @property
    def num_features(self) -> int:
        """Number of model input columns: the numeric features, their was-missing columns (with
        ``missing="median_indicator"``), then one code column per categorical feature."""
        return self._fitted().num_inputs

    @property
    def categories(self) -> list[int] | None:
        """The number of codes of each categorical feature, unknown included (``None`` when there are none): the
        model's ``categories``."""
        return self._fitted().categories

    @property
    def num_classes(self) -> int | None:
        """Number of classes (``None`` for regression)."""
        classes = self.preprocessing.classes if self.preprocessing is not None else self.table.classes
        return None if classes is None else len(classes)

    @property
    def num_targets(self) -> int:
        """Number of regression targets (1 for classification)."""
        if self.preprocessing is not None:
            return self.preprocessing.num_targets
        return 1 if self.table.classes is not None else self.table.y.shape[1]

    @property
    def preprocessing(self) -> FittedPreprocessing | None:
        """What training learnt (fitted at the first setup, or taken from ``checkpoint``), saved in checkpoints:
        feature names, scaler, medians, vocabularies, classes (:class:`~nnlit.data.fitted_preprocessing.
        FittedPreprocessing`); ``None`` until then."""
        return self.rows.preprocessing

    @property
    def feature_names(self) -> list[str] | None:
        """The feature columns as the model takes them: the numeric ones, then the categorical ones."""
        source = self.preprocessing or self.rows.table
        return None if source is None else source.feature_names

    @property
    def classes(self) -> list[Any] | None:
        """The original label of each class index (``None`` for regression)."""
        source = self.preprocessing or self.rows.table
        return None if source is None else source.classes

    @property
    def categorical_features(self) -> list[str]:
        """The categorical features (fitted)."""
        return [] if self.preprocessing is None else self.preprocessing.categorical

    @property
    def indicators(self) -> list[str]:
        """The numeric features with a was-missing input column."""
        return [] if self.preprocessing is None else self.preprocessing.indicators

    # ---------------------------------------------------------------- placement, target scale, rows, splits, loaders
    @property
    def table_on_device(self) -> bool | Literal["auto"]:
        """Where the loaders gather batches from (see the argument); set it to change it for the next run."""
        return self.placement.mode

    @table_on_device.setter
    def table_on_device(self, mode: bool | Literal["auto"]) -> None:
        self.placement = TablePlacement(mode)
        self.options = dataclasses.replace(self.options, table_on_device=mode)

    @property
    def target_mean(self) -> list[float] | None:
        """Mean of each regression target over the training split (``None`` for classification)."""
        scale = self._target_scale()
        return None if scale is None else scale[0]

    @property
    def target_std(self) -> list[float] | None:
        """Standard deviation of each regression target over the training split (1 where it is 0)."""
        scale = self._target_scale()
        return None if scale is None else scale[1]

    def _target_scale(self) -> tuple[list[float], list[float]] | None:
        # predicting with a checkpoint: the model's target scaling comes back with its weights
        if self.predict_only or self.options.serves_checkpoint or self.table.classes is not None:
            return None
        self._split_rows()
        return self.rows.target_scale()

    def _fitted(self) -> FittedPreprocessing:
        """The fitted preprocessing, after splitting the rows and fitting it unless done (the model's sizes depend on
        it, and a training source is checked against a checkpoint's preprocessing at once); a data module that serves a
        checkpoint reads no training rows for it."""
        if not self.rows.splits and not self.predict_only and not self.options.serves_checkpoint:
            self.setup()
        return self.rows.fitted()  # fitted by setup, or restored from the checkpoint of predict_only

    def _split_rows(self) -> dict[str, Tensor]:
        """The rows of each split, split (and the preprocessing fitted) at the first use."""
        if not self.rows.splits:
            self.setup()
        return self.rows.splits

    @property
    def table(self) -> Table:
        """The whole table (every split), read or built at the first use."""
        return self._load()

    def split_indices(self, stage: str) -> Tensor:
        """The rows of the table (int32 positions) in the ``"train"``, ``"val"`` or ``"test"`` split: fixed by
        ``seed``, so another library can be compared on exactly these rows.

        Example::

            >>> dm = TabularDataModule(dataset="xor", n_samples=100, val_fraction=0.2)
            >>> [len(dm.split_indices(s)) for s in ("train", "val", "test")]
            [80, 20, 0]
        """
        if stage not in ("train", "val", "test"):
            raise ValueError(f"`stage` must be 'train', 'val' or 'test', got {stage!r}")
        return self._split_rows()[stage]

    def setup(self, stage: str | None = None) -> None:
        destroy_process_group_at_exit()  # a CPU (gloo) process of a distributed fit can abort at exit otherwise
        if self.predict_only:
            if stage not in (None, "predict"):
                raise ValueError(
                    f"This data module has no training data (only `checkpoint` and `predict_path`), so it cannot "
                    f"{stage}: give `dataset` or `path`"
                )
            return
        if stage == "predict" and self.predict_path is not None:
            return  # the rows come from predict_path; the preprocessing from the checkpoint or, at the loader, training
        split = RowSplit(self.val_fraction, self.test_fraction, self.seed, self.folds, self.fold)
        self.rows.split(self._load(), split, self.missing, self.standardize, list(self.categorical or []))

    def train_dataloader(self) -> TensorBatchLoader:
        loader = self._split_loader("train", shuffle=self.shuffle, pad=True, drop_last=self.drop_last)
        module = self.trainer.lightning_module if self.trainer is not None else None
        if getattr(module, "takes_batch_groups", False):
            loader.group = self.batches_per_step
        return loader

    @property
    def evaluation_batch_size(self) -> int:
        """Rows per batch in validation, test and predict: ``eval_batch_size``, else ``max(batch_size, 1024)``."""
        return self.options.evaluation_batch_size

    def val_dataloader(self) -> TensorBatchLoader | list[TensorBatchLoader]:
        # val_fraction=0: every row trains, and Lightning validates nothing
        if not len(self.rows.splits.get("val", ())):
            return []
        return self._split_loader("val", shuffle=False, pad=False, drop_last=False)

    def test_dataloader(self) -> TensorBatchLoader:
        if not len(self.rows.splits.get("test", ())):
            raise ValueError("There is no test split: set `test_fraction` > 0 (e.g. 0.2) to hold out test rows")
        return self._split_loader("test", shuffle=False, pad=False, drop_last=False)

    def predict_dataloader(self) -> TensorBatchLoader:
        prep = self._fitted()  # the rows read and split, unless they come from predict_path
        tensors = self.rows.predict_tensors(self.predict_path, self.target)
        transform = batch_transform(prep, self.placement, copied=False)  # rows in order: views of the table
        return predict_loader(tensors, self.evaluation_batch_size, self.trainer, transform)

    def state_dict(self) -> dict[str, Any]:
        """The fitted preprocessing (:meth:`FittedPreprocessing.state_dict`), saved in checkpoints."""
        return self._fitted().state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # the table is read as training read it
        self.missing = self.rows.restore(state_dict).missing  # type: ignore[assignment]

    def split_tensors(self, split: str) -> tuple[Tensor, Tensor]:
        """The standardised features and the targets of the ``"train"``, ``"val"`` or ``"test"`` rows (a copy).

        Example::

            >>> dm = TabularDataModule(dataset="xor", n_samples=100)
            >>> dm.setup("fit")
            >>> [t.shape for t in dm.split_tensors("val")]
            [torch.Size([20, 2]), torch.Size([20])]
        """
        if split not in ("train", "val", "test"):
            raise ValueError(f"`split` must be 'train', 'val' or 'test', got {split!r}")
        self._split_rows()  # read, split and fitted at the first use
        return self.rows.split_tensors(split, self.placement)

    def transform(self, x: Tensor, codes: Tensor | None = None) -> Tensor:
        """The model's input from numeric features in their own units (NaN where missing) and, for categorical
        features, their codes: missing numbers filled with the training median and was-missing columns added
        (per ``missing``), the codes appended, then everything standardised with the fitted training mean and
        standard deviation (was-missing and code columns keep their values)."""
        return self._fitted().transform(x, codes, False, on=lambda t: self.placement.copy(t, x.device))

    def decode(self, labels: Tensor) -> list[Any]:
        """Maps class indices back to the original labels (as :class:`~nnlit.callbacks.CSVPredictionWriter` does)."""
        return self._fitted().decode(labels)

    # ---------------------------------------------------------------- internals
    def _split_loader(self, split: str, shuffle: bool, pad: bool, drop_last: bool) -> TensorBatchLoader:
        batch_size = self.batch_size if split == "train" else self.evaluation_batch_size
        self._split_rows()  # read, split and fitted at the first use
        order = dict(shuffle=shuffle, pad=pad, drop_last=drop_last, seed=self.seed, trainer=self.trainer)
        return self.rows.loader(split, batch_size, self.placement, **order)

    def teardown(self, stage: str) -> None:
        """Frees the device's copy of the table at the end of ``fit``, ``validate``, ``test`` or ``predict``
        (:meth:`TablePlacement.release <nnlit.data.placement.TablePlacement.release>`)."""
        self.placement.release()

    def on_exception(self, exception: BaseException) -> None:
        """A run that raised (a CUDA out-of-memory error, say) gets no ``teardown`` from Lightning: the device's copy
        is released here instead."""
        self.teardown("exception")

    def _load(self) -> Table:
        if self.rows.table is not None:
            return self.rows.table
        checkpoint_features = None if self.checkpoint is None else self.feature_names
        return self.rows.load(TableSource(self.options, self._arrays, not self.predict_only), checkpoint_features)


__all__ = ["DATA_KEY", "TabularDataModule", "data_state", "read_data_state"]
