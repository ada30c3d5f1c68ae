"""In-memory tabular data: arrays, CSV / Parquet files or a built-in synthetic set, split, scaled and batched."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch import Tensor

from nnlit.data.files import read_table
from nnlit.data.loader import ShardedIndexSampler, TensorBatchLoader
from nnlit.data.sklearn_sets import REAL, load_real
from nnlit.data.synthetic import SYNTHETIC

BUILTIN = sorted([*SYNTHETIC, *REAL])

Task = Literal["classification", "regression"]
TASKS = ("classification", "regression")


@dataclass
class _Table:
    x: Tensor  # float32 features, (rows, features), not yet standardised
    y: Tensor  # int64 class indices (rows,), float32 probability rows (rows, K), or float32 targets (rows, T)
    feature_names: list[str]
    task: str
    classes: list[Any] | None  # original label of each class index; None for regression


class TabularDataModule(L.LightningDataModule):
    """Tabular data held in memory and served as slices of tensors.

    Exactly one source: a built-in ``dataset`` name, a CSV / Parquet ``path`` (with the ``target`` column), or arrays
    through :meth:`from_arrays`. Rows are split once with ``seed`` into train / val / test; features are standardised
    with the training split's mean and standard deviation; class labels of any type (strings, integers) are encoded
    as ``0..K-1`` and decoded back for predictions. The scaler and the label mapping are part of :meth:`state_dict`,
    so a checkpoint carries them and ``predict`` reuses them.

    Batches are ``(features, targets)`` for fit / validate / test and ``(features, row_index)`` for predict. They are
    cut from tensors by a shuffled index (see :class:`~nnlit.data.loader.TensorBatchLoader`); under DDP each rank
    takes a distinct stride of the same per-epoch permutation.

    Args:
        dataset: a built-in set: synthetic ``circle``, ``gauss``, ``spiral``, ``xor`` (classification), ``plane``,
            ``sine`` (regression); or one that scikit-learn ships, read offline (``sklearn`` extra): ``iris``,
            ``wine``, ``breast_cancer`` (classification), ``diabetes`` (regression).
        path: a ``.csv`` or ``.parquet`` file (needs the ``files`` extra).
        target: the target column of ``path``.
        features: the feature columns of ``path``; default every column but ``target``.
        predict_path: a file to predict on (the target column may be absent); default every row of the data.
        task: ``classification`` or ``regression``; default: the built-in set's task, else regression for float
            targets and classification for anything else.
        n_samples: rows of a synthetic set.
        noise: noise level of a synthetic set.
        n_classes: classes of a built-in ``gauss`` or ``spiral`` set (the others have 2).
        n_features: columns of a built-in set: its 2 informative ones, then ``n_features - 2`` columns of Gaussian
            noise that a model must learn to ignore.
        val_fraction: share of rows for validation, in ``(0, 1)``.
        test_fraction: share of rows for testing, in ``[0, 1)``; ``0`` for no test split.
        batch_size: rows per batch: per optimizer step.
        batches_per_step: training minibatches handed to one Lightning training step, when the model takes them
            (nnlit's heads do, see :class:`~nnlit.models.base.MLPModule`); each is still its own optimizer step.
            Lightning's per-step cost (about 0.5 ms, as much as a small MLP's whole step) is paid once per group.
            ``1`` for one minibatch per Lightning step; other LightningModules always get single minibatches.
        standardize: scale features to zero mean and unit variance on the training split.
        shuffle: shuffle the training rows every epoch.
        drop_last: drop the last, smaller training batch.
        seed: seed of the built-in set, the split and the shuffling; default the seed given to
            ``seed_everything`` (the config's ``seed_everything``), else 0.

    Example::

        >>> dm = TabularDataModule(dataset="spiral", n_classes=3, n_samples=300)
        >>> dm.num_features, dm.num_classes
        (2, 3)
        >>> dm.setup("fit")
        >>> x, y = next(iter(dm.train_dataloader()))
        >>> x.shape, y.dtype
        (torch.Size([64, 2]), torch.int64)
    """

    def __init__(
        self,
        dataset: str | None = None,
        path: str | None = None,
        target: str | None = None,
        features: list[str] | None = None,
        predict_path: str | None = None,
        task: Task | None = None,
        n_samples: int = 1000,
        noise: float = 0.1,
        n_classes: int = 2,
        n_features: int = 2,
        val_fraction: float = 0.2,
        test_fraction: float = 0.0,
        batch_size: int = 64,
        batches_per_step: int = 16,
        standardize: bool = True,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self._arrays: tuple[Any, Any, list[str] | None] | None = None
        if (dataset is None) == (path is None):
            raise ValueError(
                "Give exactly one data source: `dataset` (a built-in name: "
                f"{', '.join(BUILTIN)}) or `path` (a CSV / Parquet file); got dataset={dataset!r}, "
                f"path={path!r}. For arrays use TabularDataModule.from_arrays(x, y)."
            )
        if dataset is not None and dataset not in BUILTIN:
            raise ValueError(f"Unknown dataset {dataset!r}. Built-in sets: {', '.join(BUILTIN)}")
        if path is not None and target is None:
            raise ValueError(f"`target` must name the target column of {path!r}")
        if task is not None and task not in TASKS:
            raise ValueError(f"`task` must be one of {', '.join(TASKS)} or None, got {task!r}")
        _check_positive_int("n_samples", n_samples)
        _check_positive_int("batch_size", batch_size)
        _check_positive_int("batches_per_step", batches_per_step)
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"`val_fraction` must be in (0, 1), got {val_fraction!r}")
        if not 0.0 <= test_fraction < 1.0:
            raise ValueError(f"`test_fraction` must be in [0, 1), got {test_fraction!r}")
        if val_fraction + test_fraction >= 1.0:
            raise ValueError(
                f"`val_fraction` + `test_fraction` must be < 1 to leave rows for training, got "
                f"{val_fraction} + {test_fraction} = {val_fraction + test_fraction}"
            )
        if isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 2:
            raise ValueError(f"`n_features` of a built-in set must be an integer >= 2, got {n_features!r}")
        if noise < 0:
            raise ValueError(f"`noise` must be >= 0, got {noise!r}")
        self.dataset = dataset
        self.path = path
        self.target = target
        self.features = features
        self.predict_path = predict_path
        self.task = task
        self.n_samples = n_samples
        self.noise = noise
        self.n_classes = n_classes
        self.n_features = n_features
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.batch_size = batch_size
        self.batches_per_step = batches_per_step
        self.standardize = standardize
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed if seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))

        self._table: _Table | None = None
        self._splits: dict[str, Tensor] = {}
        # fitted state, saved in checkpoints
        self.mean: Tensor | None = None
        self.std: Tensor | None = None
        self.classes: list[Any] | None = None
        self.feature_names: list[str] | None = None

    @classmethod
    def from_arrays(
        cls,
        x: Any,
        y: Any,
        feature_names: list[str] | None = None,
        **kwargs: Any,
    ) -> TabularDataModule:
        """Builds the data module from a feature matrix ``x`` (rows × features) and targets ``y`` (numpy or torch).

        ``y`` holds class labels of any type, probability / one-hot rows (``task="classification"``), or float
        regression targets (one column or several). ``kwargs`` are the other ``__init__`` arguments.

        Example::

            >>> dm = TabularDataModule.from_arrays(np.eye(4), np.array(["a", "b", "a", "b"]), val_fraction=0.5)
            >>> dm.num_features, dm.num_classes, dm.classes
            (4, 2, ['a', 'b'])
        """
        self = cls(dataset="xor", **kwargs)  # a valid placeholder source, replaced by the arrays below
        self.dataset = None
        self._arrays = (x, y, feature_names)
        return self

    # ---------------------------------------------------------------- what the model needs to know (linked by the CLI)
    @property
    def num_features(self) -> int:
        """Number of feature columns."""
        return self._load().x.shape[1]

    @property
    def num_classes(self) -> int | None:
        """Number of classes (``None`` for regression)."""
        table = self._load()
        return None if table.classes is None else len(table.classes)

    @property
    def num_targets(self) -> int:
        """Number of regression targets (1 for classification)."""
        table = self._load()
        return 1 if table.classes is not None else table.y.shape[1]

    # ---------------------------------------------------------------- Lightning hooks
    @property
    def target_mean(self) -> list[float] | None:
        """Mean of each regression target over the training split (``None`` for classification)."""
        train_y = self._train_targets()
        return None if train_y is None else train_y.mean(dim=0).tolist()

    @property
    def target_std(self) -> list[float] | None:
        """Standard deviation of each regression target over the training split (1 where it is 0)."""
        train_y = self._train_targets()
        if train_y is None:
            return None
        std = train_y.std(dim=0, unbiased=False)
        return torch.where(std > 0, std, torch.ones_like(std)).tolist()

    def _train_targets(self) -> Tensor | None:
        table = self._load()
        if table.classes is not None:
            return None
        if not self._splits:
            self.setup()
        return table.y[self._splits["train"]]

    def setup(self, stage: str | None = None) -> None:
        table = self._load()
        num_rows = len(table.x)
        order = torch.randperm(num_rows, generator=torch.Generator().manual_seed(self.seed))
        n_val = max(1, round(num_rows * self.val_fraction))
        n_test = round(num_rows * self.test_fraction) if self.test_fraction > 0 else 0
        if self.test_fraction > 0:
            n_test = max(1, n_test)
        if num_rows - n_val - n_test < 1:
            raise ValueError(
                f"{num_rows} rows cannot be split into val_fraction={self.val_fraction} and "
                f"test_fraction={self.test_fraction} with at least one training row"
            )
        self._splits = {
            "val": order[:n_val],
            "test": order[n_val : n_val + n_test],
            "train": order[n_val + n_test :],
        }
        if self.mean is None and self.standardize:  # fitted once; a checkpoint's values, restored later, win
            mean, std = _column_mean_std(table.x, self._splits["train"])
            self.mean = mean
            self.std = torch.where(std > 0, std, torch.ones_like(std))

    def train_dataloader(self) -> TensorBatchLoader:
        loader = self._split_loader("train", shuffle=self.shuffle, pad=True, drop_last=self.drop_last)
        module = self.trainer.lightning_module if self.trainer is not None else None
        if getattr(module, "takes_batch_groups", False):
            loader.group = self.batches_per_step
        loader.skip_batches = self._batches_done_in_resumed_epoch(len(loader))
        return loader

    def val_dataloader(self) -> TensorBatchLoader:
        return self._split_loader("val", shuffle=False, pad=False, drop_last=False)

    def test_dataloader(self) -> TensorBatchLoader:
        if not len(self._splits.get("test", ())):
            raise ValueError("There is no test split: set `test_fraction` > 0 (e.g. 0.2) to hold out test rows")
        return self._split_loader("test", shuffle=False, pad=False, drop_last=False)

    def predict_dataloader(self) -> TensorBatchLoader:
        x = self._load().x if self.predict_path is None else self._read_predict_file(self.predict_path)
        rows = torch.arange(len(x))
        rank, world_size = self._rank_and_world_size()
        sampler = ShardedIndexSampler(len(x), shuffle=False, rank=rank, world_size=world_size, pad=False)
        return TensorBatchLoader([x, rows], self.batch_size, sampler=sampler, transform=self._transform_batch)

    def state_dict(self) -> dict[str, Any]:
        return {
            "mean": None if self.mean is None else self.mean.tolist(),
            "std": None if self.std is None else self.std.tolist(),
            "classes": self.classes,
            "feature_names": self.feature_names,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.mean = None if state_dict["mean"] is None else torch.tensor(state_dict["mean"])
        self.std = None if state_dict["std"] is None else torch.tensor(state_dict["std"])
        self.classes = state_dict["classes"]
        self.feature_names = state_dict["feature_names"]

    # ---------------------------------------------------------------- transforms
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
        if not self._splits:
            self.setup()
        table, index = self._load(), self._splits[split]
        return self.transform(table.x[index]), table.y[index]

    def transform(self, x: Tensor) -> Tensor:
        """Standardises features with the fitted training mean and standard deviation (identity if off)."""
        if self.mean is None or self.std is None:
            return x
        return (x - self.mean) / self.std

    def decode(self, labels: Tensor) -> list[Any]:
        """Maps class indices back to the original labels.

        Example::

            >>> dm = TabularDataModule.from_arrays(np.eye(3), np.array(["cat", "dog", "cat"]))
            >>> dm.setup("fit")
            >>> dm.decode(torch.tensor([1, 0]))
            ['dog', 'cat']
        """
        indices = labels.tolist()
        if self.classes is None:
            return indices
        return [self.classes[i] for i in indices]

    # ---------------------------------------------------------------- internals
    def _split_loader(self, split: str, shuffle: bool, pad: bool, drop_last: bool) -> TensorBatchLoader:
        if not self._splits:
            self.setup()
        table = self._load()
        if self.classes is not None and table.classes is not None and self.classes != table.classes:
            raise ValueError(
                f"The checkpoint's classes {self.classes} differ from the classes of this data, {table.classes}: the "
                "labels would be mapped to the wrong outputs. Use data with the classes the model was trained on."
            )
        index = self._splits[split]
        rank, world_size = self._rank_and_world_size()
        sampler = ShardedIndexSampler(
            len(index), shuffle=shuffle, seed=self.seed, rank=rank, world_size=world_size, pad=pad
        )
        # the whole table and the split's row numbers: no copy of the split; each batch is standardised as it is cut
        return TensorBatchLoader(
            [table.x, table.y],
            self.batch_size,
            sampler=sampler,
            drop_last=drop_last,
            rows=index,
            transform=self._transform_batch,
        )

    def _transform_batch(self, tensors: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        return (self.transform(tensors[0]), *tensors[1:])

    def _batches_done_in_resumed_epoch(self, num_batches: int) -> int:
        """Batches of the current epoch a checkpoint taken mid-epoch had already trained on (0 otherwise)."""
        trainer = self.trainer
        if trainer is None or not trainer.fit_loop.restarting:
            return 0
        # checkpoints are written in on_train_batch_end, before `completed` counts the batch: `processed` has it
        done: int = getattr(trainer.fit_loop.epoch_loop.batch_progress.current, "processed", 0)
        return done if 0 < done < num_batches else 0

    def _rank_and_world_size(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def _load(self) -> _Table:
        if self._table is None:
            if self._arrays is not None:
                x, y, names = self._arrays
                self._table = _table_from_arrays(x, y, names, self.task, source="the arrays")
            elif self.dataset in REAL:
                x_np, y_np, names = load_real(self.dataset)
                task = self.task or REAL[self.dataset].task
                self._table = _table_from_arrays(x_np, y_np, names, task, source=f"dataset {self.dataset!r}")
            elif self.dataset is not None:
                spec = SYNTHETIC[self.dataset]
                x, y = spec.make(n_samples=self.n_samples, noise=self.noise, n_classes=self.n_classes, seed=self.seed)
                if self.n_features > 2:
                    g = torch.Generator().manual_seed(self.seed + 1)
                    x = torch.cat([x, torch.randn(len(x), self.n_features - 2, generator=g)], dim=1)
                names = [f"x{i + 1}" for i in range(x.shape[1])]
                task = self.task or spec.task
                self._table = _table_from_arrays(x, y, names, task, source=f"dataset {self.dataset!r}")
            else:
                assert self.path is not None and self.target is not None  # checked in __init__
                self._table = self._read_training_file(self.path, self.target)
            if self.feature_names is None:  # unless restored from a checkpoint
                self.feature_names = self._table.feature_names
                self.classes = self._table.classes
            rank_zero_info(
                f"nnlit data: {len(self._table.x)} rows, {self._table.x.shape[1]} features, {self._table.task}"
                + (f", {len(self._table.classes)} classes" if self._table.classes is not None else "")
            )
        return self._table

    def _read_training_file(self, path: str, target: str) -> _Table:
        frame = read_table(path)
        columns = [str(c) for c in frame.columns]
        if target not in columns:
            raise ValueError(f"Target column {target!r} not in {path!r}. Columns: {', '.join(columns)}")
        features = self.features if self.features is not None else [c for c in columns if c != target]
        missing = [c for c in features if c not in columns]
        if missing:
            raise ValueError(f"Feature columns {missing} not in {path!r}. Columns: {', '.join(columns)}")
        if target in features:
            raise ValueError(f"The target column {target!r} cannot also be a feature")
        x = _numeric_matrix(frame, features, path)
        y = frame[target].to_numpy()
        return _table_from_arrays(x, y, features, self.task, source=repr(path), target_name=target)

    def _read_predict_file(self, path: str) -> Tensor:
        frame = read_table(path)
        names = self.feature_names or self._load().feature_names
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise ValueError(
                f"The prediction file {path!r} lacks feature columns {missing}. The model uses: {', '.join(names)}"
            )
        x = _numeric_matrix(frame, names, path)
        _check_finite(x, names, "feature column", repr(path))
        return x


def _numeric_matrix(frame: Any, columns: list[str], path: str) -> Tensor:
    import pandas as pd

    for column in columns:
        series = frame[column]
        if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
            example = series.dropna().iloc[0] if series.notna().any() else None
            raise ValueError(
                f"Feature column {column!r} in {path!r} is not numeric (dtype {series.dtype}, e.g. {example!r}): "
                "encode it as numbers (one-hot or integer codes) or leave it out of `features`"
            )
    return torch.as_tensor(frame[columns].to_numpy(dtype=np.float32, copy=True))


def _table_from_arrays(
    x: Any, y: Any, names: list[str] | None, task: str | None, source: str, target_name: str = "target"
) -> _Table:
    x_np = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    y_np = y.detach().cpu().numpy() if isinstance(y, Tensor) else np.asarray(y)
    if x_np.ndim != 2:
        raise ValueError(f"Features of {source} must be a 2-D array (rows × features), got shape {x_np.shape}")
    if x_np.dtype.kind not in "biuf":
        raise ValueError(f"Features of {source} must be numeric, got dtype {x_np.dtype}: encode them as numbers first")
    if len(y_np) != len(x_np):
        raise ValueError(f"{source}: {len(x_np)} feature rows but {len(y_np)} targets")
    names = names if names is not None else [f"x{i + 1}" for i in range(x_np.shape[1])]
    if len(names) != x_np.shape[1]:
        raise ValueError(f"{len(names)} feature names for {x_np.shape[1]} feature columns")
    features = torch.as_tensor(x_np.astype(np.float32, copy=False))  # shares float32 arrays: never modified
    _check_finite(features, names, "feature column", source)
    if task is None:
        task = "regression" if y_np.dtype.kind == "f" else "classification"
    if task == "regression":
        targets = _float_targets(y_np, source, target_name)
        return _Table(features, targets.view(len(targets), -1), names, task, None)
    if y_np.ndim == 2:  # probability or one-hot rows
        probs = _float_targets(y_np, source, target_name)
        if (probs < 0).any():
            raise ValueError(f"Probability targets of {source} must be >= 0")
        return _Table(features, probs, names, task, list(range(probs.shape[1])))
    missing = _missing(y_np)
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"The target {target_name!r} of {source} has {int(missing.sum())} missing labels (first at row {first})"
        )
    try:
        classes, indices = np.unique(y_np, return_inverse=True)
    except TypeError as err:
        kinds = sorted({type(v).__name__ for v in y_np.tolist()})
        raise ValueError(f"The target {target_name!r} of {source} mixes label types ({', '.join(kinds)})") from err
    if len(classes) < 2:
        raise ValueError(f"Classification needs at least 2 classes; the target of {source} has {classes.tolist()}")
    return _Table(features, torch.as_tensor(indices.reshape(-1), dtype=torch.int64), names, task, classes.tolist())


def _float_targets(y: np.ndarray, source: str, target_name: str) -> Tensor:
    if y.dtype.kind not in "biuf":
        raise ValueError(
            f"The target {target_name!r} of {source} must be numeric for regression, got dtype {y.dtype}: set "
            "`task: classification` if it holds class labels"
        )
    targets = torch.as_tensor(y.astype(np.float32))
    columns = targets.view(len(targets), -1)
    names = [target_name] if columns.shape[1] == 1 else [f"{target_name}[{i}]" for i in range(columns.shape[1])]
    _check_finite(columns, names, "target", source)
    return targets


def _missing(y: np.ndarray) -> np.ndarray:
    if y.dtype.kind == "f":
        return np.isnan(y).reshape(len(y), -1).any(axis=1)
    if y.dtype.kind == "O":
        return np.array([v is None or (isinstance(v, float) and v != v) for v in y.tolist()], dtype=bool)
    return np.zeros(len(y), dtype=bool)


def _check_finite(x: Tensor, names: list[str], kind: str, source: str) -> None:
    # NaN propagates through amax / amin and ±inf is their result: no mask of the table's size unless one is bad
    if not x.numel() or bool(torch.isfinite(x.amax()) & torch.isfinite(x.amin())):
        return
    bad = ~torch.isfinite(x)
    counts = bad.sum(dim=0)
    problems = []
    for col in torch.nonzero(counts).flatten().tolist():
        first = int(torch.nonzero(bad[:, col])[0])
        problems.append(f"{names[col]!r}: {int(counts[col])} rows (first at row {first})")
    raise ValueError(f"NaN or inf in {source}, {kind} " + "; ".join(problems))


def _column_mean_std(x: Tensor, index: Tensor, chunk: int = 8192) -> tuple[Tensor, Tensor]:
    """Mean and (population) standard deviation of ``x[index]`` per column, in float64 over chunks of rows: no copy
    of the rows as a whole."""
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    for start in range(0, len(index), chunk):
        total += x[index[start : start + chunk]].double().sum(dim=0)
    mean = total / len(index)
    squares = torch.zeros_like(total)
    for start in range(0, len(index), chunk):
        squares += ((x[index[start : start + chunk]].double() - mean) ** 2).sum(dim=0)
    return mean.float(), (squares / len(index)).sqrt().float()


def _check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")


__all__ = ["TabularDataModule"]
