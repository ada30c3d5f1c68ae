"""scikit-learn estimators: :class:`MLPClassifier` and :class:`MLPRegressor`, nnlit's heads behind sklearn's API.

They stand in for ``sklearn.neural_network``'s estimators of the same names, with nnlit's parameter names
(``hidden`` for ``hidden_layer_sizes``, ``max_epochs`` for ``max_iter``, ``lr`` for ``learning_rate_init``,
``weight_decay`` for ``alpha``, roughly). They work in ``Pipeline``, ``ColumnTransformer``, ``GridSearchCV`` and
``cross_val_score``, pickle with ``pickle`` / ``joblib``, and take nnlit's callbacks (``DeadReLUCounter``,
``GradientSaturationMonitor``, …). Each fit is a Lightning fit of an nnlit head on a
:class:`~nnlit.TabularDataModule` built from ``X`` and ``y``, quiet (no bar, no logger files, no checkpoint files)
and on the CPU threads :class:`~nnlit.callbacks.Threads` chooses. Needs the ``sklearn`` extra (scikit-learn).
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import functools
import inspect
import io
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_random_state, column_or_1d, validate_data

from nnlit import quiet
from nnlit.callbacks.non_finite_loss import NonFiniteLossError
from nnlit.checkpoint_io import AtomicCheckpointIO
from nnlit.data.table import is_frame
from nnlit.data.tabular import TabularDataModule
from nnlit.models.base import MLPModule
from nnlit.models.multiclass import MulticlassMLP
from nnlit.models.regression import RegressionMLP
from nnlit.nn.options import MLPOptions
from nnlit.predictor import Predictor


class _History(Callback):
    """The epoch metrics of a fit, ``[{"epoch": 0, "train/loss": …, "val/loss": …}, …]``. An nnlit head logs them
    after the callbacks' epoch-end hooks, so each epoch is read when the next starts, and the last when training
    ends."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []
        self._ended: int | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._ended = trainer.current_epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer)

    def _record(self, trainer: L.Trainer) -> None:
        if self._ended is None:
            return
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items() if "/" in name}
        self.epochs.append({"epoch": self._ended, **metrics})
        self._ended = None


def _parameter_names_checked(init: Callable[..., None]) -> Callable[..., None]:
    """``init`` checking its keywords first, so that an unknown one is named in the estimator's words (Python's own
    TypeError would name the private base class), with nnlit's name for a scikit-learn one. ``functools.wraps`` keeps
    the signature scikit-learn reads the parameters from."""

    @functools.wraps(init)
    def checked(self: Any, *args: Any, **kwargs: Any) -> None:
        _check_parameter_names(type(self), kwargs)
        init(self, *args, **kwargs)

    return checked


class _MLPEstimator(BaseEstimator):
    """What :class:`MLPClassifier` and :class:`MLPRegressor` share; see their docstrings."""

    _head: type[MLPModule]

    # the network's options are MLPOptions' (less `categories`, read from X), with its defaults; a test holds them
    @_parameter_names_checked
    def __init__(
        self,
        hidden: Sequence[int] = MLPOptions.hidden,
        activation: str | None = MLPOptions.activation,
        activation_kwargs: dict[str, Any] | None = MLPOptions.activation_kwargs,
        dropout: float = MLPOptions.dropout,
        norm: str | None = MLPOptions.norm,
        bias: bool = MLPOptions.bias,
        max_one_hot: int = MLPOptions.max_one_hot,
        embedding_dim: int | None = MLPOptions.embedding_dim,
        optimizer: Any = torch.optim.Adam,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 64,
        max_epochs: int = 100,
        val_fraction: float = 0.0,
        patience: int = 10,
        missing: str = "error",
        callbacks: Sequence[Callback] | None = None,
        trainer_kwargs: dict[str, Any] | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
    ) -> None:
        self.hidden = hidden
        self.activation = activation
        self.activation_kwargs = activation_kwargs
        self.dropout = dropout
        self.norm = norm
        self.bias = bias
        self.max_one_hot = max_one_hot
        self.embedding_dim = embedding_dim
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.val_fraction = val_fraction
        self.patience = patience
        self.missing = missing
        self.callbacks = callbacks
        self.trainer_kwargs = trainer_kwargs
        self.random_state = random_state
        self.verbose = verbose

    # ---------------------------------------------------------------- fitting
    def fit(self, X: Any, y: Any) -> _MLPEstimator:
        """Trains a new network on ``X`` (rows × features: numpy, or a pandas ``DataFrame`` whose text and category
        columns become categorical features) and targets ``y``; returns ``self``.

        Raises:
            TypeError: for sparse ``X``.
            ValueError: for ``X`` / ``y`` sklearn refuses (NaN in a numeric array, one sample, mismatched lengths), a
                classifier's ``y`` of one class or continuous values, NaN in ``y``; when the training loss becomes
                NaN or infinite ("Solver produced non-finite parameter weights", as sklearn's MLP says).
        """
        X, y = self._check_training_data(X, y)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        data = TabularDataModule.from_arrays(
            X,
            y,
            feature_names=None if is_frame(X) else [f"x{i}" for i in range(X.shape[1])],
            task=self._task,
            val_fraction=self.val_fraction,
            batch_size=self.batch_size,
            missing=self.missing,
            seed=seed,
        )
        with self._quiet(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            data.setup("fit")
            module = self._build_module(data)
            history = _History()
            callbacks = _copies(self.callbacks, "callbacks")  # the parameter stays as given (sklearn's rule)
            with tempfile.TemporaryDirectory() as scratch:  # where Lightning may write unless told where to
                trainer = self._trainer(history, callbacks, scratch)
                try:
                    trainer.fit(module, datamodule=data)
                except NonFiniteLossError as err:  # sklearn's MLP raises a ValueError for non-finite weights
                    raise ValueError(f"Solver produced non-finite parameter weights: {err.cause}") from err
                self.checkpoint_ = self._checkpoint_bytes(trainer)
        module.trainer = None  # type: ignore[assignment]  # the fitted model keeps no Trainer (pickles, copies)
        self.module_ = module.cpu().eval()
        self.preprocessing_ = data.preprocessing
        self.history_ = history.epochs
        self.callbacks_ = callbacks
        self.n_epochs_ = len(history.epochs)
        self._predictor = Predictor(self.module_, preprocessing=self.preprocessing_)
        return self

    def _check_training_data(self, X: Any, y: Any) -> tuple[Any, Any]:
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        _refuse_sparse(X)
        if is_frame(X):  # kept as a frame: its text and category columns are categorical features
            _refuse_repeated_names(X)
            self._refuse_missing_numbers(X, fitted=False)
            X = _string_columns(X)
            validate_data(self, X, reset=True, skip_check_array=True)
            if len(X) < 2:
                raise ValueError(f"{type(self).__name__} needs at least 2 samples, got {len(X)}")
            y = self._check_targets(np.asarray(y))
            if len(y) != len(X):
                raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
            return X, y
        with self._missing_in_words(fitted=False):
            X, y = validate_data(
                self, X, y, dtype=np.float32, multi_output=self._task == "regression", ensure_min_samples=2,
                ensure_all_finite="allow-nan" if self.missing != "error" else True,
            )  # fmt: skip
        return X, self._check_targets(y)

    def _check_features(self, X: Any) -> Any:
        check_is_fitted(self)
        _refuse_sparse(X)
        if is_frame(X):
            _refuse_repeated_names(X)
            validate_data(self, X, reset=False, skip_check_array=True)
            self._refuse_missing_numbers(X, fitted=True)
            return _string_columns(X)
        allow_nan = self.missing != "error"
        with self._missing_in_words(fitted=True):
            return validate_data(
                self, X, reset=False, dtype=np.float32, ensure_all_finite="allow-nan" if allow_nan else True
            )

    def _missing_advice(self, fitted: bool) -> str:
        """What to do about NaN in ``X`` with ``missing="error"``, in the estimator's words."""
        name = type(self).__name__
        if fitted:
            return (
                f"this {name} was fitted with missing='error', so it has no medians to fill them: fill or drop those "
                f"rows, or refit with {name}(missing='median')"
            )
        return (
            f"give {name}(missing='median') to fill missing numbers with the training median, or "
            "missing='median_indicator' to also add a was-missing column per feature"
        )

    @contextlib.contextmanager
    def _missing_in_words(self, fitted: bool) -> Iterator[None]:
        """sklearn's error for NaN in a numeric ``X`` points to other estimators: this one points to ``missing=``."""
        try:
            yield
        except ValueError as err:
            if self.missing != "error" or not str(err).startswith("Input X contains NaN"):
                raise
            raise ValueError(f"Input X contains NaN: {self._missing_advice(fitted)}") from None

    def _refuse_missing_numbers(self, X: Any, fitted: bool) -> None:
        """NaN or a missing value in a numeric column of a DataFrame ``X``, with ``missing="error"``: named."""
        if self.missing != "error":
            return
        counts = X.select_dtypes(include=["number", "bool"]).isna().sum()
        bad = {str(name): int(count) for name, count in counts.items() if count}
        if bad:
            shown = ", ".join(f"{name!r}: {count} rows" for name, count in bad.items())
            raise ValueError(f"Input X contains NaN in numeric columns ({shown}): {self._missing_advice(fitted)}")

    def _build_module(self, data: TabularDataModule) -> MLPModule:
        raise NotImplementedError

    def _module_arguments(self, data: TabularDataModule) -> dict[str, Any]:
        optimizer = self.optimizer
        if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
            optimizer = functools.partial(optimizer, lr=self.lr, weight_decay=self.weight_decay)  # type: ignore[call-arg]
        options = {name: getattr(self, name) for name in MLPOptions.names() if name != "categories"}
        options["hidden"] = list(self.hidden)
        return {"in_features": data.num_features, "optimizer": optimizer, "categories": data.categories, **options}

    def _trainer(self, history: _History, callbacks: list[Callback], scratch: str) -> L.Trainer:
        callbacks = [history, *callbacks]
        if self.val_fraction > 0 and self.patience:
            callbacks.append(EarlyStopping(monitor="val/loss", patience=self.patience))
        options: dict[str, Any] = {
            "max_epochs": self.max_epochs,
            "accelerator": "cpu",
            "devices": 1,
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": bool(self.verbose),
            "enable_model_summary": bool(self.verbose),
            "num_sanity_val_steps": 0,
            "default_root_dir": scratch,  # removed after the fit: a logger's files stay only with a default_root_dir
            "plugins": [AtomicCheckpointIO()],
        }
        options.update(self.trainer_kwargs or {})
        more = options.get("callbacks", [])
        options["callbacks"] = [*callbacks, *_copies([more] if isinstance(more, Callback) else more, "trainer_kwargs")]
        return L.Trainer(**options)

    @staticmethod
    def _checkpoint_bytes(trainer: L.Trainer) -> bytes:
        """The fitted model as a normal nnlit checkpoint (for :meth:`save`), taken while its Trainer is there."""
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.ckpt"
            trainer.save_checkpoint(path, weights_only=False)  # the whole checkpoint, as `nnlit fit` saves it
            return path.read_bytes()

    def _quiet(self) -> contextlib.AbstractContextManager[None]:
        no_validation = r"Total length of `list` across ranks is zero"  # val_fraction=0: no validation
        return quiet.watched_fit(no_validation) if self.verbose else quiet.inner_fit(no_validation)

    # ---------------------------------------------------------------- predicting
    def _outputs(self, X: Any) -> dict[str, torch.Tensor]:
        X = self._check_features(X)
        if len(X) == 0:
            raise ValueError(
                f"Found array with 0 sample(s) (shape={getattr(X, 'shape', None)}) while a minimum of 1 is required."
            )
        columns = self._predictor.prepare_columns(X)
        return self._predictor.predict_tensor(columns)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes the fitted model as a normal nnlit checkpoint, for :func:`nnlit.load`,
        :meth:`nnlit.Predictor.from_checkpoint` and ``nnlit export``; returns its path."""
        check_is_fitted(self)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        AtomicCheckpointIO().save_checkpoint(torch.load(io.BytesIO(self.checkpoint_), weights_only=True), path)
        return path

    # ---------------------------------------------------------------- pickling: no Predictor (it holds a lock)
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state = dict(state) if isinstance(state, dict) else state
        state.pop("_predictor", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "module_" in state:
            self._predictor = Predictor(self.module_, preprocessing=self.preprocessing_)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.missing != "error"
        tags.non_deterministic = self.random_state is None
        return tags

    #: sklearn's estimator checks these estimators do not pass, and why (``check_estimator(...,
    #: expected_failed_checks=MLPRegressor.EXPECTED_FAILED_CHECKS)``); tests/test_sklearn.py runs the others
    EXPECTED_FAILED_CHECKS: ClassVar[dict[str, str]] = {
        "check_methods_subset_invariance": (
            "predictions are float32, as the network computes them, and a float32 matrix product's last bits depend on "
            "how many rows it multiplies at once (a relative difference of about 1e-6, over the check's 1e-7)"
        ),
    }


class MLPClassifier(ClassifierMixin, _MLPEstimator):
    """A multilayer perceptron classifier: :class:`~nnlit.MulticlassMLP` (softmax over the classes, two included)
    trained with Lightning, behind scikit-learn's API.

    Args:
        hidden: hidden layer widths.
        activation: the hidden activation (any name :class:`~nnlit.MLP` takes: ``relu``, ``tanh``, ``gelu``, …).
        activation_kwargs: keyword arguments of the activation, e.g. ``{"negative_slope": 0.1}``.
        dropout: dropout probability after each hidden activation.
        norm: ``None``, ``"batch"`` or ``"layer"`` normalisation after each hidden Linear.
        bias: whether the Linear layers have a bias.
        max_one_hot: a categorical column of ``X`` (a DataFrame's text or category column) of at most this many codes
            is one-hot encoded, a wider one embedded; as the other network options, see
            :class:`~nnlit.nn.options.MLPOptions`.
        embedding_dim: the width of every embedding; default a width per column that grows with its codes.
        optimizer: a ``torch.optim`` optimizer class, built with ``lr`` and ``weight_decay``; or a callable taking the
            parameters (e.g. ``functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9)``), then used as it is.
        lr: the optimizer's learning rate (with an optimizer class).
        weight_decay: the optimizer's weight decay (with an optimizer class).
        batch_size: rows per optimizer step.
        max_epochs: passes over the training rows.
        val_fraction: rows held out for validation, in ``[0, 1)``: ``0`` trains on every row; above, training stops
            when ``val/loss`` has not improved for ``patience`` epochs (``patience=0``: validates without stopping).
        patience: epochs without a better ``val/loss`` before stopping early (with ``val_fraction > 0``).
        missing: missing numbers in ``X``: ``"error"``, or filled with the training median (``"median"``, plus a
            was-missing column per feature with ``"median_indicator"``), as in :class:`~nnlit.TabularDataModule`.
        callbacks: Lightning callbacks for each fit, nnlit's monitors included: deep-copied for each fit (see
            ``callbacks_``), so each must be copyable.
        trainer_kwargs: more ``lightning.Trainer`` arguments (``accelerator="gpu"``, ``precision``, …; its
            ``callbacks`` are copied per fit too). A logger or checkpoints need a ``default_root_dir`` here to be kept:
            without one they go to a temporary folder removed after the fit.
        random_state: seeds the split, the batch order and the initial weights; ``None``: a new seed per fit.
        verbose: show Lightning's progress bar, model summary and messages.

    Attributes:
        classes_: the class labels, sorted.
        n_features_in_: the number of features seen by fit.
        feature_names_in_: the feature names (when ``X`` was a DataFrame with string column names).
        history_: the metrics of each epoch, ``[{"epoch": 0, "train/loss": …, "train/acc": …}, …]``.
        callbacks_: this fit's copies of ``callbacks``, holding what they recorded (a ``DeadReLUCounter``'s
            ``history``, a ``GradientSaturationMonitor``'s ``advice``).
        n_epochs_: the epochs trained (fewer than ``max_epochs`` when stopped early).
        module_: the fitted :class:`~nnlit.MulticlassMLP` (on the CPU, in eval mode).
        preprocessing_: the fitted :class:`~nnlit.data.FittedPreprocessing` (standardisation, vocabularies).

    Example::

        >>> from sklearn.datasets import load_iris
        >>> X, y = load_iris(return_X_y=True)
        >>> model = MLPClassifier(hidden=(16,), max_epochs=30, lr=0.01, random_state=0).fit(X, y)
        >>> model.classes_.tolist(), model.predict_proba(X[:2]).shape, model.score(X, y) > 0.9
        ([0, 1, 2], (2, 3), True)
    """

    _task = "classification"

    def _check_targets(self, y: np.ndarray) -> np.ndarray:
        y = column_or_1d(y, warn=True)
        if y.dtype.kind == "f" and np.isnan(y).any():
            raise ValueError("Input y contains NaN.")
        if y.dtype == object and any(value is None or value != value for value in y):  # before sorting them
            raise ValueError("Input y contains NaN or None.")
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data, but the data contains only "
                f"one class: {np.asarray(self.classes_[0]).tolist()!r}"
            )
        return y  # the data module maps the labels to indices in the same sorted order (checked in _build_module)

    def _build_module(self, data: TabularDataModule) -> MLPModule:
        if data.classes != self.classes_.tolist():  # predict_proba's columns are in classes_ order
            raise RuntimeError(f"The data module ordered the classes {data.classes}, not as {self.classes_.tolist()}")
        return MulticlassMLP(num_classes=len(self.classes_), **self._module_arguments(data))

    def predict_proba(self, X: Any) -> np.ndarray:
        """The probability of each class (columns in :attr:`classes_` order) for each row of ``X``."""
        return self._outputs(X)["probabilities"].double().cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class label for each row of ``X``."""
        probabilities = self.predict_proba(X)  # first: it says when the estimator is not fitted
        return self.classes_[probabilities.argmax(axis=1)]


class MLPRegressor(RegressorMixin, _MLPEstimator):
    """A multilayer perceptron regressor: :class:`~nnlit.RegressionMLP` trained with Lightning, behind scikit-learn's
    API. ``y`` may hold several targets (rows × targets); each is standardised with its training mean and standard
    deviation for training, as :class:`~nnlit.TabularDataModule` does, and predictions are in the targets' units.

    Args and attributes: as :class:`MLPClassifier`'s, without ``classes_``; ``module_`` is a
    :class:`~nnlit.RegressionMLP`.

    Example::

        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(400, 3))
        >>> y = X @ np.array([1.0, -2.0, 0.5]) + 10
        >>> model = MLPRegressor(hidden=(32,), max_epochs=40, lr=0.01, random_state=0).fit(X, y)
        >>> model.predict(X[:3]).shape, model.score(X, y) > 0.9
        ((3,), True)
    """

    _task = "regression"

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # several targets: y of rows × targets
        return tags

    def _check_targets(self, y: np.ndarray) -> np.ndarray:
        exact = np.asarray(y, dtype=np.float64)  # before float32: a value beyond its range is not "infinity"
        if not np.isfinite(exact).all():
            raise ValueError("Input y contains NaN or infinity.")
        y = _float32_targets(exact)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        self._single_target = y.ndim == 1
        return y

    def _build_module(self, data: TabularDataModule) -> MLPModule:
        return RegressionMLP(
            out_features=data.num_targets,
            target_mean=data.target_mean,
            target_std=data.target_std,
            **self._module_arguments(data),
        )

    def predict(self, X: Any) -> np.ndarray:
        """The predicted targets for each row of ``X``: a vector for one target, rows × targets for several."""
        prediction = self._outputs(X)["prediction"].double().cpu().numpy()
        return prediction[:, 0] if self._single_target and prediction.ndim == 2 else prediction


#: scikit-learn's MLP parameters that nnlit names otherwise: their name here, and how they differ when they do
SKLEARN_NAMES: dict[str, str] = {
    "hidden_layer_sizes": "`hidden`",
    "max_iter": "`max_epochs`",
    "learning_rate_init": "`lr`",
    "alpha": "`weight_decay` (the optimizer's weight decay, where scikit-learn adds an L2 penalty to the loss)",
    "early_stopping": "`val_fraction` (early stopping is on when it is above 0)",
    "validation_fraction": "`val_fraction`",
    "n_iter_no_change": "`patience`",
    "solver": "`optimizer` (a torch.optim class such as torch.optim.SGD or torch.optim.Adam)",
    "momentum": "`optimizer=functools.partial(torch.optim.SGD, lr=..., momentum=...)`",
    "nesterovs_momentum": "`optimizer=functools.partial(torch.optim.SGD, lr=..., momentum=..., nesterov=True)`",
    "beta_1": "`optimizer=functools.partial(torch.optim.Adam, lr=..., betas=(beta_1, beta_2))`",
    "beta_2": "`optimizer=functools.partial(torch.optim.Adam, lr=..., betas=(beta_1, beta_2))`",
    "epsilon": "`optimizer=functools.partial(torch.optim.Adam, lr=..., eps=...)`",
}


def _check_parameter_names(cls: type, given: dict[str, Any]) -> None:
    """Raises for a keyword ``cls.__init__`` does not take, naming nnlit's name for a scikit-learn one or the closest
    of the accepted ones."""
    accepted = list(inspect.signature(cls).parameters)
    unknown = [name for name in given if name not in accepted]
    if not unknown:
        return
    name = unknown[0]
    if name in SKLEARN_NAMES:
        hint = f"; nnlit's {cls.__name__} calls scikit-learn's `{name}` {SKLEARN_NAMES[name]}"
    else:
        close = difflib.get_close_matches(name, accepted, n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
    raise TypeError(
        f"{cls.__name__} got an unexpected keyword argument {name!r}{hint}. It takes: {', '.join(accepted)}"
    )


def _copies(callbacks: Any, name: str) -> list[Callback]:
    """Deep copies of ``callbacks`` for one fit: a fit never changes the estimator's parameters."""
    try:
        return copy.deepcopy(list(callbacks or []))
    except (TypeError, AttributeError) as err:
        raise TypeError(
            f"The callbacks in `{name}` are copied for each fit (the estimator's parameters stay as given), and one "
            f"cannot be: {err}"
        ) from err


def _string_columns(frame: Any) -> Any:
    """``frame`` with its column names as strings (the feature names nnlit matches by), unchanged when they are."""
    if all(isinstance(name, str) for name in frame.columns):
        return frame
    return frame.set_axis([str(name) for name in frame.columns], axis=1)


def _refuse_repeated_names(frame: Any) -> None:
    """Refuses a frame two of whose columns have the same name as text (``1`` and ``"1"``): nnlit matches columns by
    that name.

    Raises:
        ValueError: naming the columns.
    """
    seen: dict[str, Any] = {}
    for name in frame.columns:
        if str(name) in seen:
            raise ValueError(
                f"X has two columns named {str(name)!r} as text ({seen[str(name)]!r} and {name!r}): nnlit matches "
                "columns by their names as strings; rename one"
            )
        seen[str(name)] = name


def _refuse_sparse(X: Any) -> None:
    if hasattr(X, "tocsr") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(
            "Sparse input is not supported: nnlit's MLPs take a dense matrix (use X.toarray(), or a dense "
            "transformer before the estimator)"
        )


__all__ = ["MLPClassifier", "MLPRegressor"]


#: the largest integer float32 holds exactly, with every integer below it
FLOAT32_EXACT_INTEGERS = 2**24


def _float32_targets(y: np.ndarray) -> np.ndarray:
    """``y`` (float64) as float32, the network's precision: a value beyond float32's range is refused, and a rounding
    that changes a value beyond 2**24 (where float32 no longer holds every integer) is said, once per fit.

    Raises:
        ValueError: naming the first value beyond float32's range and its row.
    """
    limit = float(np.finfo(np.float32).max)
    beyond = np.flatnonzero((np.abs(y) > limit).reshape(len(y), -1).any(axis=1))
    if beyond.size:
        value = y.reshape(len(y), -1)[beyond[0]]
        raise ValueError(
            f"Input y holds {value.tolist() if value.size > 1 else value.item()!r} (row {beyond[0]}), beyond float32's "
            f"range of ±{limit:.1e}, in which the network computes: rescale the target (divide it by a power of ten)"
        )
    rounded = y.astype(np.float32)
    changed = (np.abs(y) > FLOAT32_EXACT_INTEGERS) & (rounded.astype(np.float64) != y)
    if changed.any():
        warnings.warn(
            f"{int(changed.sum())} target value(s) beyond 2**24 = {FLOAT32_EXACT_INTEGERS}, where float32 no longer "
            f"holds every integer, change when the network reads them as float32 (the largest change: "
            f"{float(np.abs(rounded.astype(np.float64) - y).max()):g}): subtract an offset or rescale y to keep them",
            UserWarning,
            stacklevel=4,
        )
    return rounded
