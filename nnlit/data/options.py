"""The arguments of a data module, declared once.

:class:`DataOptions` is the one place where an argument of :class:`~nnlit.TabularDataModule` (its source, its split,
its batches) gets its name, type, default and documentation. The data module takes them as keyword arguments and hands
them to it unchanged, LightningCLI lists them from it (``nnlit fit --data.help nnlit.TabularDataModule``), and the data
module reads each as an attribute of the same name (:class:`Option`). Adding an argument: a field here with its line
under ``Args:``, its :class:`Option` line in the data module (a test fails until there is one), and its use in the data
module or one of its parts.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Generic, Literal, TypeVar

from nnlit.data.splits import RowSplit
from nnlit.validation import check_int

T = TypeVar("T")
Task = Literal["classification", "regression"]
TASKS = ("classification", "regression")
Missing = Literal["error", "median", "median_indicator"]


@dataclasses.dataclass(frozen=True)
class DataOptions:
    """The arguments of :class:`~nnlit.TabularDataModule`, checked as they are made (the source's, which depend on
    :meth:`~nnlit.TabularDataModule.from_arrays`, by :class:`~nnlit.data.source.TableSource`).

    Args:
        dataset: a built-in set: synthetic ``circle``, ``gauss``, ``spiral``, ``xor`` (classification), ``plane``,
            ``sine`` (regression); or one that scikit-learn ships, read offline (``sklearn`` extra): ``iris``,
            ``wine``, ``breast_cancer`` (classification), ``diabetes`` (regression).
        path: a ``.csv`` or ``.parquet`` file (needs the ``files`` extra).
        target: the target column of ``path``.
        features: the feature columns of ``path``; default every column but ``target``.
        categorical: feature columns to treat as categories although they hold numbers (e.g. integer codes); text and
            pandas ``category`` columns are categorical without being listed.
        missing: ``"error"``, ``"median"`` or ``"median_indicator"``: what to do with missing numeric values (NaN,
            empty CSV cells): ``"error"`` stops with the columns and rows that have them; ``"median"`` fills them with
            the training split's median of the column; ``"median_indicator"`` also adds a 0 / 1 "was missing" input
            for each column that had missing values in the training split (as scikit-learn's
            ``SimpleImputer(add_indicator=True)``). Infinite values are always an error.
        predict_path: a file to predict on (the target column may be absent); default every row of the data.
        checkpoint: a checkpoint whose fitted preprocessing (feature names, scaler, medians, vocabularies, classes)
            this data module takes instead of fitting its own. With ``predict_path`` and no ``dataset`` or ``path``,
            the module predicts without any training data at hand; ``nnlit predict --ckpt_path X`` fills this in
            when the config's data has no source.
        task: ``classification`` or ``regression``; default: the built-in set's task, else regression for float
            targets and classification for anything else.
        n_samples: rows of a synthetic set.
        noise: noise level of a synthetic set.
        n_classes: classes of a built-in ``gauss`` or ``spiral`` set (the others have 2).
        n_features: columns of a built-in set: its 2 informative ones, then ``n_features - 2`` columns of Gaussian
            noise that a model must learn to ignore.
        val_fraction: share of rows for validation, in ``[0, 1)``; ``0``: every row trains and nothing is validated
            (there are then no ``val/`` metrics to monitor).
        test_fraction: share of rows for testing, in ``[0, 1)``; ``0`` for no test split.
        batch_size: rows per batch: per optimizer step.
        eval_batch_size: rows per batch in validation, test and predict; default ``max(batch_size, 1024)``. The
            model is in eval mode there, so the metrics do not depend on it (up to float rounding), and a split of
            up to that many rows is one batch: each batch costs Lightning's evaluation loop about as much as a small
            MLP's forward pass.
        batches_per_step: training minibatches handed to one Lightning training step, when the model takes them
            (nnlit's heads do, see :class:`~nnlit.models.base.MLPModule`); each is still its own optimizer step.
            Lightning's per-step cost (as much as a small MLP's whole step) is paid once per group.
            ``1`` for one minibatch per Lightning step; other LightningModules always get single minibatches.
        standardize: scale features to zero mean and unit variance on the training split.
        shuffle: shuffle the training rows every epoch.
        drop_last: drop the last, smaller training batch.
        seed: seed of the built-in set, the split and the shuffling; default the seed given to
            ``seed_everything`` (the config's ``seed_everything``), else 0.
        folds: K-fold cross-validation: the rows left after the test split are cut into ``folds`` parts of the
            seeded order, and part ``fold`` validates (``val_fraction`` is then unused); ``None``: one split by
            ``val_fraction``. ``nnlit tune --folds K`` fits each ``fold`` of ``0 … K-1``.
        fold: which part validates, in ``[0, folds)``.
        table_on_device: where the training, validation and test loaders gather batches from. ``"auto"``: on a CUDA
            device, the table (features, codes, targets) is copied to the Trainer's device once per fit, when it takes
            at most a quarter of the device's free memory (PyTorch's unused cache counted as free), and batches are
            gathered and standardised there (no copy from the host per batch); otherwise it stays on the host.
            ``True``: on the Trainer's device whatever its size or kind; ``False``: on the host. The choice is made
            once per run, by the first loader asked for. Under DDP each process holds the whole table. The copy is
            released at the end of ``fit``, ``validate`` or ``test``, or when one raises (the Trainer's loaders then
            read the host's table), back to PyTorch's cache on the device.

    Raises:
        ValueError: for a batch size, split fraction, ``folds`` or ``fold`` outside what it accepts, naming it.

    Example::

        >>> options = DataOptions(dataset="xor", batch_size=32)
        >>> options.batch_size, options.evaluation_batch_size, DataOptions.names()[:2]
        (32, 1024, ('dataset', 'path'))
    """

    dataset: str | None = None
    path: str | None = None
    target: str | None = None
    features: list[str] | None = None
    categorical: list[str] | None = None
    missing: Missing = "error"
    predict_path: str | None = None
    checkpoint: str | None = None
    task: Task | None = None
    n_samples: int = 1000
    noise: float = 0.1
    n_classes: int = 2
    n_features: int = 2
    val_fraction: float = 0.2
    test_fraction: float = 0.0
    batch_size: int = 64
    eval_batch_size: int | None = None
    batches_per_step: int = 16
    standardize: bool = True
    shuffle: bool = True
    drop_last: bool = False
    seed: int | None = None
    table_on_device: bool | Literal["auto"] = "auto"
    folds: int | None = None
    fold: int = 0

    def __post_init__(self) -> None:
        check_int("batch_size", self.batch_size)
        if self.eval_batch_size is not None:
            check_int("eval_batch_size", self.eval_batch_size)
        check_int("batches_per_step", self.batches_per_step)
        RowSplit(self.val_fraction, self.test_fraction, 0, self.folds, self.fold)  # checks the split's arguments

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The arguments' names, in the order they are declared."""
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def check_names(cls, owner: str, given: dict[str, Any]) -> None:
        """Raises a ``TypeError`` naming ``owner`` (the class that was given them) and every argument when a name in
        ``given`` is not one (a dataclass would name only itself)."""
        unknown = sorted(set(given) - set(cls.names()))
        if unknown:
            raise TypeError(
                f"{owner} got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; its arguments are "
                f"{', '.join(cls.names())}"
            )

    @property
    def predict_only(self) -> bool:
        """No training data: predictions on ``predict_path`` with the preprocessing of ``checkpoint``."""
        no_source = self.dataset is None and self.path is None
        return no_source and self.checkpoint is not None and self.predict_path is not None

    @property
    def serves_checkpoint(self) -> bool:
        """Predicting ``predict_path`` with a checkpoint's preprocessing: the training source is for other stages."""
        return self.checkpoint is not None and self.predict_path is not None

    @property
    def evaluation_batch_size(self) -> int:
        """Rows per batch in validation, test and predict: ``eval_batch_size``, else ``max(batch_size, 1024)``."""
        return self.eval_batch_size if self.eval_batch_size is not None else max(self.batch_size, 1024)


class Option(Generic[T]):
    """An attribute of a data module that reads its option of the same name from the module's ``options``; setting it
    makes new options with that value (checked again)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, module: Any, owner: type | None = None) -> T:
        if module is None:  # read on the class: the descriptor itself
            return self  # type: ignore[return-value]
        return getattr(module.options, self.name)  # type: ignore[no-any-return]

    def __set__(self, module: Any, value: T) -> None:
        module.options = dataclasses.replace(module.options, **{self.name: value})


__all__ = ["TASKS", "DataOptions", "Missing", "Option", "Task"]
