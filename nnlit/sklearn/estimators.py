"""The scikit-learn estimators: :class:`MLPClassifier` and :class:`MLPRegressor`."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from nnlit.data.tabular import TabularDataModule
from nnlit.models.base import MLPModule
from nnlit.models.multiclass import MulticlassMLP
from nnlit.models.regression import RegressionMLP
from nnlit.sklearn.base import _MLPEstimator
from nnlit.sklearn.checks import (
    _float32_targets,
)


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
        history_: the metrics of each epoch, ``[{"epoch": 0, "train/loss": …, "val/loss": …, "val/acc": …}, …]``:
            the training split's loss, and every metric of the validation split when ``val_fraction`` > 0.
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


__all__ = ["MLPClassifier", "MLPRegressor"]
