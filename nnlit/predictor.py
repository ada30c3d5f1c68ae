"""Fast in-process predictions from a trained model on raw rows of a table: :class:`Predictor`."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nnlit.checkpoint import load
from nnlit.checkpoint_io import MapLocation, read_checkpoint
from nnlit.data.fitted_preprocessing import DATA_KEY, FittedPreprocessing, data_state
from nnlit.data.preprocessing import CategoryCodes
from nnlit.data.rows import RowReader, outside_stacklevel
from nnlit.data.table import dataframe_type, is_frame, pandas_module
from nnlit.models.base import MLPModule
from nnlit.prediction_table import label_array, outputs_to_numpy, prediction_columns


class Predictor:
    """Predicts with a trained nnlit model on raw rows of a table, in the process, with the preprocessing of training:
    the checkpoint's feature names, category vocabularies, medians for missing numbers, standardisation with the
    training mean and standard deviation, and the original class labels.

    :meth:`predict` takes a pandas ``DataFrame``, a dict of one row (``{"x1": 0.3, …}``), a dict of columns
    (``{"x1": [0.3, …], …}``), a list of dicts, or a 2-D numpy array / torch tensor / list of lists whose columns are
    in feature order. Named columns may come in any order; columns the model was not trained on are ignored, with
    one warning per predictor. It returns the columns :class:`~nnlit.callbacks.CSVPredictionWriter` writes:
    ``row``, then ``prediction`` (the decoded class label) and ``prob_<class>`` for each class, or the regression
    ``prediction`` (``prediction_<j>`` for several outputs): a ``DataFrame`` (with the input's index) for a
    ``DataFrame``, else a dict of lists. An input of no rows gives a result of no rows.

    The module is put in eval mode and runs under ``torch.inference_mode()`` on its own device. Numeric columns take
    numbers, bools and numeric strings; a value that is not a number, or inf, is an error naming its column and row.
    A missing number (NaN, ``None``) is filled with the training median when the model was trained with
    ``missing="median"`` or ``"median_indicator"``, and is an error otherwise. A categorical column takes any value:
    one training did not see takes the unknown category, counted in :attr:`unknown_counts` and warned about once per
    predictor. :meth:`prepare_columns` is the step that turns an input into the model's input matrix;
    :meth:`predict_tensor` runs the model on a ready float32 matrix.

    Build one with :meth:`from_checkpoint`, or by hand for a model trained without nnlit's data module.

    One predictor may be shared by threads (a web server's workers): :meth:`predict` keeps no per-call state on the
    predictor, and :attr:`unknown_counts` is updated under a lock. The module runs in eval mode under
    ``inference_mode``, which changes no state of its own.

    Args:
        module: the trained model (an :class:`~nnlit.MLPModule`, e.g. from :func:`nnlit.load`).
        feature_names: the feature columns in the order the model takes them; ``None`` for a predictor that takes
            positional input only (arrays, tensors, lists of lists).
        mean: the training mean of each feature; ``None`` (with ``std``) for no standardisation.
        std: the training standard deviation of each feature, all ``> 0``.
        classes: the original label of each class index of a classifier; ``None`` labels rows with the indices.
        categorical: the feature names that are categorical, in the order of the model's code columns.
        vocabularies: the training values of each categorical feature, in code order (code 0 is unknown).
        median: the training median of each numeric feature, to fill missing numbers; ``None``: missing numbers are
            an error.
        indicators: the numeric features that have a was-missing input column, in the model's order.

    Raises:
        ValueError: when an argument does not fit the module (a count of names, means, classes or categories),
            naming it.

    Example::

        >>> from nnlit import BinaryMLP
        >>> model = BinaryMLP(in_features=2, hidden=[4])
        >>> predictor = Predictor(model, feature_names=["a", "b"], mean=[1.0, 2.0], std=[0.5, 4.0], classes=["n", "y"])
        >>> predictor
        Predictor(BinaryMLP, features=['a', 'b'], standardized, classes=['n', 'y'], device=cpu)
        >>> result = predictor.predict([{"a": 0.5, "b": -1.0}, {"b": 3.0, "a": 1.5}])
        >>> list(result), len(result["row"])
        (['row', 'prediction', 'prob_n', 'prob_y'], 2)
    """

    def __init__(
        self,
        module: MLPModule,
        feature_names: Sequence[str] | None = None,
        mean: Sequence[float] | Tensor | np.ndarray | None = None,
        std: Sequence[float] | Tensor | np.ndarray | None = None,
        classes: Sequence[Any] | None = None,
        categorical: Sequence[str] | None = None,
        vocabularies: Sequence[Sequence[Any]] | None = None,
        median: Sequence[float] | Tensor | np.ndarray | None = None,
        indicators: Sequence[str] | None = None,
        *,
        preprocessing: FittedPreprocessing | None = None,
    ) -> None:
        if not isinstance(module, MLPModule):
            raise TypeError(f"`module` must be an nnlit MLPModule (e.g. from nnlit.load), got {type(module).__name__}")
        self.module = module.eval()
        #: the width of the model's input: numeric features, was-missing columns, category codes
        self.num_inputs: int = module.in_features
        self.device = module.device
        described = (feature_names, mean, std, classes, categorical, vocabularies, median, indicators)
        if preprocessing is None:
            preprocessing = _preprocessing(self.num_inputs, *described)
            names = None if feature_names is None else list(feature_names)  # in the caller's order
        elif any(value is not None for value in described):
            raise ValueError("Give `preprocessing` or the arguments describing one (feature_names, mean, …), not both")
        else:
            names = preprocessing.feature_names
        #: the fitted preprocessing of training (one implementation with the data module's)
        self.preprocessing = preprocessing
        _check_fits(preprocessing, module)
        #: the feature columns the predictor takes, by name; ``None``: positional input only
        self.feature_names = names
        #: the raw feature columns the predictor takes
        self.num_features: int = len(preprocessing.feature_names)
        self._reader = RowReader(
            self.feature_names, preprocessing.numeric, self.num_features, allow_nan=preprocessing.median is not None
        )
        #: values of each categorical feature that training did not see, counted over every call of predict
        self.unknown_counts: dict[str, int] = dict.fromkeys(preprocessing.categorical, 0)
        self._lock = threading.Lock()
        self._warned_unknown = False
        self._output_index: Any = None
        # one run on a zero row tells the output layout (and warms the model up)
        outputs = self.predict_tensor(torch.zeros(1, self.num_inputs, device=self.device))
        self.classes = _check_classes(preprocessing.classes, outputs, type(module).__name__)
        self._class_array = None if self.classes is None else label_array(self.classes)
        self.output_columns = list(self._table(outputs))

    # the parts of the preprocessing, by the names the predictor has always had
    @property
    def categorical(self) -> list[str]:
        """The categorical features."""
        return self.preprocessing.categorical

    @property
    def indicators(self) -> list[str]:
        """The numeric features with a was-missing input column."""
        return self.preprocessing.indicators

    @property
    def codes(self) -> list[CategoryCodes]:
        """The codes of each categorical feature's values."""
        return self.preprocessing.codes

    @property
    def mean(self) -> Tensor | None:
        """The training mean of each model input column."""
        return self.preprocessing.mean

    @property
    def std(self) -> Tensor | None:
        """The training standard deviation of each model input column."""
        return self.preprocessing.std

    @property
    def median(self) -> Tensor | None:
        """The training median of each numeric feature (``None``: missing numbers are an error)."""
        return self.preprocessing.median

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        map_location: MapLocation = "cpu",
        *,
        module_class: type[MLPModule] | None = None,
        trusted: bool = False,
    ) -> Predictor:
        """A predictor for a checkpoint saved by a fit with :class:`~nnlit.TabularDataModule`: the module from
        :func:`nnlit.load`, the feature names, mean, std, classes, vocabularies and medians from the checkpoint's
        ``"TabularDataModule"`` entry.

        Args:
            path: the ``.ckpt`` file.
            map_location: where the model goes, as in :func:`nnlit.load`.
            module_class: the model's class, when the checkpoint's is not imported (``cls`` of :func:`nnlit.load`).
            trusted: as in :func:`nnlit.load`, for a file you made yourself.

        Raises:
            FileNotFoundError: naming the path.
            ValueError: when the file is not an nnlit checkpoint, or when it lacks the data module's entry (a model
                trained without nnlit's data module: build the predictor by hand).

        Example::

            >>> import lightning as L
            >>> from nnlit import BinaryMLP, TabularDataModule
            >>> trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            ...                     enable_model_summary=False, default_root_dir=getfixture("tmp_path"))
            >>> trainer.fit(BinaryMLP(in_features=2, hidden=[4]), datamodule=TabularDataModule(dataset="xor"))
            >>> trainer.save_checkpoint(getfixture("tmp_path") / "xor.ckpt")
            >>> predictor = Predictor.from_checkpoint(getfixture("tmp_path") / "xor.ckpt")
            >>> predictor.feature_names, predictor.output_columns
            (['x1', 'x2'], ['row', 'prediction', 'prob_0', 'prob_1'])
            >>> result = predictor.predict({"x1": [0.5, -0.5], "x2": [0.5, 0.5]})
            >>> len(result["prediction"]), set(result["prediction"]) <= {0, 1}
            (2, True)
        """
        module = load(path, map_location=map_location, cls=module_class, trusted=trusted)
        checkpoint = read_checkpoint(path, trusted=trusted)  # the structure only: no tensor data read twice
        state = data_state(checkpoint)
        if state is None:
            raise ValueError(
                f"{str(path)!r} has no {DATA_KEY!r} entry, where nnlit's data module saves the feature names, mean, "
                "std and classes of training: the model was trained without nnlit's TabularDataModule. Build the "
                "predictor by hand with the preprocessing the model was trained with: "
                f"Predictor(nnlit.load({str(path)!r}), feature_names=[...], mean=[...], std=[...], classes=[...])"
            )
        if state.get("feature_names") is None:  # trained on arrays given without names: positional input only
            return cls(module, None, state["mean"], state["std"], state["classes"], median=state.get("median"))
        return cls(module, preprocessing=FittedPreprocessing.from_state_dict(state))

    # ---------------------------------------------------------------- predictions
    def predict(self, rows: Any) -> Any:
        """Predictions for ``rows``: a ``DataFrame`` for a ``DataFrame``, else a dict of lists, with the columns of
        :attr:`output_columns`.

        Raises:
            ValueError: for a missing feature column (listing every missing one and the expected ones), a value that
                is not a number, NaN / inf / a missing value (naming the column and row), or a matrix of another
                width.
            TypeError: for an input of another type, listing the accepted ones.
        """
        x = self.prepare_columns(rows)
        table = self._table(self.predict_tensor(x))
        if is_frame(rows):
            return self._frame(dataframe_type(), table, rows.index)
        return {name: values.tolist() for name, values in table.items()}

    def predict_tensor(self, x: Tensor) -> dict[str, Tensor]:
        """The module's :meth:`~nnlit.MLPModule.predict_outputs` for ``x``, the model's input as
        :meth:`prepare_columns` returns it (rows × :attr:`num_inputs`: the numeric features in the units of the
        training data with missing values filled, the was-missing columns, the category codes), standardised on the
        module's device: the fast path, without the checks of values that :meth:`predict` makes.

        Example::

            >>> from nnlit import RegressionMLP
            >>> predictor = Predictor(RegressionMLP(in_features=3, out_features=2, hidden=[4]))
            >>> predictor.predict_tensor(torch.zeros(5, 3))["prediction"].shape
            torch.Size([5, 2])
        """
        if x.ndim != 2 or x.shape[1] != self.num_inputs:
            raise ValueError(
                f"`x` must have shape (rows, {self.num_inputs}) for a model of {self.num_inputs} input columns, got "
                f"{tuple(x.shape)}"
            )
        with torch.inference_mode():
            x = self.preprocessing.standardize(x.to(device=self.device, dtype=torch.float32))
            return self.module.predict_outputs(self.module(x))

    # ---------------------------------------------------------------- input columns
    def prepare_columns(self, rows: Any) -> Tensor:
        """The model's float32 input matrix (rows × :attr:`num_inputs`, not yet standardised) for any input that
        :meth:`predict` takes, checked: every feature column present, every numeric value a number. Numeric features
        come first, in feature order, with missing values filled with the training median (when the model was
        trained so); then the was-missing columns; then the code of each categorical feature.

        Example::

            >>> from nnlit import RegressionMLP
            >>> predictor = Predictor(RegressionMLP(in_features=2, hidden=[4]), feature_names=["a", "b"])
            >>> predictor.prepare_columns({"b": [1, 2], "a": [3.5, 4]})
            tensor([[3.5000, 1.0000],
                    [4.0000, 2.0000]])
        """
        prep = self.preprocessing
        if not prep.categorical:
            return prep.fill(self._reader.numeric(rows, self.device))
        columns, num_rows = self._reader.named(rows)
        numeric = self._reader.float_matrix([columns[name] for name in prep.numeric], num_rows, prep.numeric)
        x = torch.from_numpy(numeric)
        self._reader.check_finite(x, prep.numeric)
        codes, unknown = prep.encode_categories(columns, num_rows)
        if any(unknown.values()):
            self._count_unknown({name: n for name, n in unknown.items() if n})
        return prep.fill(x, codes).to(self.device)

    def _count_unknown(self, unknown: dict[str, int]) -> None:
        with self._lock:  # `+=` on a shared dict loses counts when threads interleave
            for name, count in unknown.items():
                self.unknown_counts[name] += count
        if not self._warned_unknown:
            self._warned_unknown = True
            shown = ", ".join(f"{name!r}: {n}" for name, n in unknown.items())
            warnings.warn(
                f"Predictor: values that training did not see take the unknown category ({shown}); "
                "`predictor.unknown_counts` keeps counting them (this warning is shown once per Predictor)",
                UserWarning,
                stacklevel=outside_stacklevel(),
            )

    # ---------------------------------------------------------------- output columns
    def _table(self, outputs: dict[str, Tensor]) -> dict[str, np.ndarray]:
        """The columns of :class:`~nnlit.callbacks.CSVPredictionWriter`, from the module's predict outputs."""
        return prediction_columns(outputs_to_numpy(outputs), self._class_array)

    def _frame(self, frame_type: Any, table: dict[str, np.ndarray], index: Any) -> Any:
        # built with integer keys, then given the cached column names: from string keys pandas makes a new Index of
        # strings for every frame (as long as the model's forward pass for one row)
        if self._output_index is None:
            self._output_index = pandas_module().Index(list(table))
        frame = frame_type(dict(enumerate(table.values())), index=index, copy=False)
        frame.columns = self._output_index.copy()  # not shared: a caller may rename a result's columns
        return frame

    def __repr__(self) -> str:
        if self.feature_names is None:
            features = f"{self.num_features} positional features"
        elif len(self.feature_names) > 6:
            features = f"features=[{', '.join(map(repr, self.feature_names[:5]))}, … {len(self.feature_names)} in all]"
        else:
            features = f"features={self.feature_names}"
        parts = [type(self.module).__name__, features, "standardized" if self.mean is not None else "not standardized"]
        if self.categorical:
            parts.append(f"categorical={self.categorical}")
        if self.median is not None:
            parts.append("missing numbers filled" + (f", indicators={self.indicators}" if self.indicators else ""))
        if self.classes is not None:
            parts.append(f"classes={self.classes}")
        return f"Predictor({', '.join(parts)}, device={self.device})"


def _preprocessing(
    num_inputs: int,
    feature_names: Sequence[str] | None,
    mean: Any,
    std: Any,
    classes: Sequence[Any] | None,
    categorical: Sequence[str] | None,
    vocabularies: Sequence[Sequence[Any]] | None,
    median: Any,
    indicators: Sequence[str] | None,
) -> FittedPreprocessing:
    """The preprocessing a predictor built by hand describes, its features put in the model's order (numeric, then
    categorical)."""
    categorical, indicators = list(categorical or []), list(indicators or [])
    num_features = num_inputs - len(indicators)
    if categorical and feature_names is None:
        raise ValueError("A predictor with `categorical` features needs `feature_names`")
    names = list(feature_names) if feature_names is not None else [f"column {j}" for j in range(num_features)]
    if len(names) != num_features:
        raise ValueError(
            f"`feature_names` needs {num_features} names for a model of {num_features} features, got {len(names)}"
        )
    unknown = [name for name in categorical if name not in names]
    if unknown:
        raise ValueError(f"`categorical` names {unknown}, which are not in `feature_names`: {names}")
    numeric = [name for name in names if name not in set(categorical)]
    missing = "error" if median is None else ("median_indicator" if indicators else "median")
    return FittedPreprocessing(
        numeric + categorical, categorical, vocabularies or [], missing, median, indicators, mean, std, classes
    )


def _check_fits(preprocessing: FittedPreprocessing, module: MLPModule) -> None:
    """The preprocessing's input width and categorical codes are the module's."""
    if preprocessing.num_inputs != module.in_features:
        raise ValueError(
            f"The preprocessing gives {preprocessing.num_inputs} input columns (features, was-missing columns), the "
            f"module takes in_features={module.in_features}"
        )
    expected = [int(n) for n in module.options.categories or []]
    given = preprocessing.categories or []
    if given != expected:
        if not given:
            raise ValueError(
                f"The module takes {len(expected)} categorical columns (categories={expected}): give `categorical` "
                "and `vocabularies`"
            )
        raise ValueError(
            f"The vocabularies give {given} codes per categorical feature (unknown included), the module takes "
            f"categories={expected}"
        )


def _check_classes(classes: Sequence[Any] | None, outputs: dict[str, Tensor], head: str) -> list[Any] | None:
    if "label" not in outputs:
        if classes is not None:
            raise ValueError(f"`classes` is for a classifier; {head} predicts {', '.join(outputs)}: give None")
        return None
    if classes is None:
        return None
    expected = outputs["probabilities"].shape[1] if "probabilities" in outputs else 2
    classes = list(classes)
    if len(classes) != expected:
        raise ValueError(f"`classes` needs {expected} labels for {head}'s {expected} classes, got {classes}")
    return classes


__all__ = ["Predictor"]
