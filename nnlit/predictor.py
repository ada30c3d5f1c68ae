"""Fast in-process predictions from a trained model on raw rows of a table: :class:`Predictor`."""

from __future__ import annotations

import inspect
import math
import operator
import os
import sys
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from typing import Any, NoReturn

import numpy as np
import torch
from torch import Tensor

from nnlit.checkpoint import load
from nnlit.checkpoint_io import MapLocation, read_checkpoint
from nnlit.data.preprocessing import CategoryCodes, impute, is_missing, refuse_dates
from nnlit.data.tabular import DATA_KEY, data_state
from nnlit.models.base import MLPModule

_DATES = "the model takes the numbers it was trained on: convert them as the training table was"
_FORMS = (
    "a pandas DataFrame, a dict of one row ({name: value}), a dict of columns ({name: [values]}), a list of dicts, "
    "or a 2-D numpy array / torch tensor / list of lists in feature order"
)


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
    ) -> None:
        if not isinstance(module, MLPModule):
            raise TypeError(f"`module` must be an nnlit MLPModule (e.g. from nnlit.load), got {type(module).__name__}")
        self.module = module.eval()
        #: the width of the model's input: numeric features, was-missing columns, category codes
        self.num_inputs: int = module.in_features
        self.indicators = list(indicators or [])
        self.categorical = list(categorical or [])
        #: the raw feature columns the predictor takes
        self.num_features: int = self.num_inputs - len(self.indicators)
        self.feature_names = None if feature_names is None else _check_names(feature_names, self.num_features)
        self.device = module.device
        self.mean, self.std = _check_scaler(mean, std, self.num_inputs, self.device)
        self.codes = _check_categorical(self.categorical, vocabularies, self.feature_names, module)
        self._numeric = [n for n in self.feature_names or [] if n not in set(self.categorical)]
        self.median = _check_median(median, self.num_features - len(self.categorical), self.device)
        unknown_indicators = [n for n in self.indicators if n not in self._numeric]
        if unknown_indicators:
            raise ValueError(f"`indicators` {unknown_indicators} are not numeric features: {self._numeric}")
        if self.indicators and self.median is None:
            raise ValueError("`indicators` need the `median` of each numeric feature, to fill what is missing")
        self._indicator_positions = [self._numeric.index(n) for n in self.indicators]
        #: values of each categorical feature that training did not see, counted over every call of predict
        self.unknown_counts: dict[str, int] = dict.fromkeys(self.categorical, 0)
        self._lock = threading.Lock()
        self._warned_unknown = False
        self._labels = self.feature_names or [f"column {j}" for j in range(self.num_features)]
        self._getter = _row_getter(self.feature_names if not self.categorical else self._numeric)
        self._frame_layout: tuple[Any, list[int] | None, list[Any]] | None = None
        self._warned_extra_columns = False
        self._output_index: Any = None
        # one run on a zero row tells the output layout (and warms the model up)
        outputs = self.predict_tensor(torch.zeros(1, self.num_inputs, device=self.device))
        self.classes = _check_classes(classes, outputs, type(module).__name__)
        self._class_array = None if self.classes is None else _label_array(self.classes)
        self.output_columns = self._output_columns(outputs)

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
        return cls(
            module,
            state["feature_names"],
            state["mean"],
            state["std"],
            state["classes"],
            categorical=state.get("categorical"),
            vocabularies=state.get("vocabularies"),
            median=state.get("median"),
            indicators=state.get("indicators"),
        )

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
        table = self._table(self.predict_tensor(x), len(x))
        frame_type = _dataframe_type()
        if frame_type is not None and isinstance(rows, frame_type):
            return self._frame(frame_type, table, rows.index)
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
            x = x.to(device=self.device, dtype=torch.float32)
            if self.mean is not None and self.std is not None:
                x = (x - self.mean) / self.std
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
        if self.categorical:
            return self._mixed_columns(rows)
        frame_type = _dataframe_type()
        if frame_type is not None and isinstance(rows, frame_type):
            x = self._frame_columns(rows)
        elif isinstance(rows, Mapping):
            x = self._mapping_columns(rows)
        elif isinstance(rows, Tensor):
            return self._numeric_input(self._tensor_columns(rows))
        elif isinstance(rows, np.ndarray):
            x = self._positional_columns(rows)
        elif isinstance(rows, (list, tuple)):
            if not rows:
                return torch.zeros(0, self.num_inputs)
            if isinstance(rows[0], Mapping):
                x = self._row_dict_columns(rows)
            else:
                x = self._positional_columns(rows)
        else:
            raise TypeError(f"Predictor.predict takes {_FORMS}; got {type(rows).__name__}")
        self._check_finite(x)
        # pandas hands out read-only arrays, which torch warns about: copied then (nothing here writes to them)
        return self._numeric_input(torch.from_numpy(np.require(x, requirements="W")))

    def _numeric_input(self, x: Tensor) -> Tensor:
        """Numeric features with missing values filled and was-missing columns added, when the model had them."""
        return x if self.median is None else impute(x, self.median.to(x.device), self._indicator_positions)

    def _mixed_columns(self, rows: Any) -> Tensor:
        """The model's input for a table with categorical features: numbers as in the numeric-only path, then codes."""
        columns, num_rows = self._named_columns(rows)
        numeric = self._float_matrix([columns[name] for name in self._numeric], num_rows, self._numeric)
        self._check_finite(numeric, self._numeric)
        x = self._numeric_input(torch.from_numpy(numeric))
        codes = np.empty((num_rows, len(self.categorical)), dtype=np.float32)
        unknown: dict[str, int] = {}
        for j, (name, vocabulary) in enumerate(zip(self.categorical, self.codes)):
            codes[:, j], count = vocabulary.encode(columns[name])
            if count:
                unknown[name] = count
        if unknown:
            with self._lock:  # `+=` on a shared dict loses counts when threads interleave
                for name, count in unknown.items():
                    self.unknown_counts[name] += count
        if unknown and not self._warned_unknown:
            self._warned_unknown = True
            shown = ", ".join(f"{name!r}: {n}" for name, n in unknown.items())
            warnings.warn(
                f"Predictor: values that training did not see take the unknown category ({shown}); "
                "`predictor.unknown_counts` keeps counting them (this warning is shown once per Predictor)",
                UserWarning,
                stacklevel=_outside_stacklevel(),
            )
        return torch.cat([x, torch.from_numpy(codes)], dim=1).to(self.device)

    def _named_columns(self, rows: Any) -> tuple[dict[str, Any], int]:
        """Every feature column of a named input, as a sequence of values, and the number of rows."""
        names = self._require_names("named columns")
        frame_type = _dataframe_type()
        if frame_type is not None and isinstance(rows, frame_type):
            _, extra = self._layout(rows.columns.tolist(), "the DataFrame")
            refuse_dates(rows.dtypes, names, "the DataFrame", _DATES)
            self._warn_extra_columns(extra)
            return {name: rows[name].to_numpy(dtype=object) for name in names}, len(rows)
        if isinstance(rows, Mapping):
            present = next((rows[name] for name in names if name in rows), None)
            if _is_column(present):
                missing = [name for name in names if name not in rows]
                if missing:
                    self._raise_missing(missing, list(rows), "the dict of columns")
                self._warn_extra_columns([key for key in rows if key not in set(names)])
                columns = {name: list(_as_column(rows[name])) for name in names}
                lengths = {len(values) for values in columns.values()}
                if len(lengths) > 1:
                    shown = ", ".join(f"{name!r}: {len(values)}" for name, values in columns.items())
                    raise ValueError(f"The columns of a dict of columns must have the same number of rows, got {shown}")
                return columns, lengths.pop()
            rows = [rows]
        if isinstance(rows, (list, tuple)) and all(isinstance(row, Mapping) for row in rows):
            try:
                columns = {name: [row[name] for row in rows] for name in names}
            except KeyError:
                self._raise_missing_in_rows(rows, names)
            known = set(names)
            self._warn_extra_columns(sorted({key for row in rows for key in row if key not in known}, key=str))
            return columns, len(rows)
        raise TypeError(
            "A model with categorical features takes named columns: a pandas DataFrame, a dict of one row, a dict of "
            f"columns or a list of dicts; got {type(rows).__name__}"
        )

    def _frame_columns(self, frame: Any) -> np.ndarray:
        names = self._require_names("a DataFrame")
        # the layout of the last frame's columns is kept: comparing two Index objects is cheaper than listing one. It
        # is read once into a local: another thread may replace the cached one at any moment.
        layout = self._frame_layout
        if layout is None or not frame.columns.equals(layout[0]):
            layout = (frame.columns, *self._layout(frame.columns.tolist(), "the DataFrame"))
            self._frame_layout = layout
        _, index, extra = layout
        refuse_dates(frame.dtypes, names, "the DataFrame", _DATES)
        self._warn_extra_columns(extra)
        try:
            if extra:  # the feature columns alone: the extra ones may not be numbers
                return frame.take(index, axis=1).to_numpy(dtype=np.float32)
            x = frame.to_numpy(dtype=np.float32)  # one conversion of the whole table, then the columns in order
            return x if index is None else x[:, index]
        except (TypeError, ValueError):
            return self._float_matrix([frame[name].to_numpy() for name in names], len(frame))

    def _mapping_columns(self, mapping: Mapping[str, Any]) -> np.ndarray:
        names = self._require_names("a dict")
        present = next((mapping[name] for name in names if name in mapping), None)
        if not _is_column(present):
            return self._row_dict_columns([mapping])
        missing = [name for name in names if name not in mapping]
        if missing:
            self._raise_missing(missing, list(mapping), "the dict of columns")
        if len(mapping) > len(names):
            known = set(names)
            self._warn_extra_columns([key for key in mapping if key not in known])
        columns = [_as_column(mapping[name]) for name in names]
        lengths = {name: len(values) if _is_column(values) else None for name, values in zip(names, columns)}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{name!r}: {'a scalar' if n is None else n}" for name, n in lengths.items())
            raise ValueError(f"The columns of a dict of columns must have the same number of rows, got {shown}")
        return self._float_matrix(columns, len(columns[0]))

    def _row_dict_columns(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        names = self._require_names("dicts")
        try:
            # one pass over the rows, each row's values in feature order straight into the matrix
            values = chain.from_iterable(map(self._getter, rows))
            x = np.fromiter(values, dtype=np.float32, count=len(rows) * len(names)).reshape(len(rows), len(names))
        except KeyError:
            self._raise_missing_in_rows(rows, names)
        except (TypeError, ValueError):
            if not all(isinstance(row, Mapping) for row in rows):
                kinds = sorted({type(row).__name__ for row in rows})
                raise TypeError(f"A list of rows must hold dicts only, got {', '.join(kinds)}") from None
            x = self._float_matrix(list(zip(*map(self._getter, rows))), len(rows))
        if not self._warned_extra_columns and any(len(row) != len(names) for row in rows):
            known = set(names)
            self._warn_extra_columns(sorted({key for row in rows for key in row if key not in known}, key=str))
        return x

    def _positional_columns(self, rows: Any) -> np.ndarray:
        try:
            x = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError):
            x = np.asarray(rows, dtype=object)
            self._check_width(x)
            return self._float_matrix([x[:, j] for j in range(x.shape[1])], len(x))
        self._check_width(x)
        return x

    def _tensor_columns(self, rows: Tensor) -> Tensor:
        self._check_width(rows)
        x = rows.detach().to(device=self.device, dtype=torch.float32)
        if x.numel() and not bool(torch.isfinite(x.amax()) & torch.isfinite(x.amin())):
            self._check_finite(x.cpu().numpy())
        return x

    # ---------------------------------------------------------------- checks
    def _require_names(self, form: str) -> list[str]:
        if self.feature_names is None:
            raise ValueError(
                f"This predictor has no feature names (its model was trained on arrays given without them), so it "
                f"takes positional input only: a 2-D numpy array, torch tensor or list of lists with the "
                f"{self.num_features} columns in training order; got {form} with named columns"
            )
        return self.feature_names

    def _layout(self, columns: list[Any], source: str) -> tuple[list[int] | None, list[Any]]:
        """The position of each feature among ``columns`` (``None`` when they are in order) and the extra ones."""
        names = self._require_names(source)
        position = {column: j for j, column in enumerate(columns)}
        missing = [name for name in names if name not in position]
        if missing:
            self._raise_missing(missing, columns, source)
        duplicated = sorted({name for name in names if columns.count(name) > 1})
        if duplicated:
            raise ValueError(f"Feature columns {duplicated} appear more than once in {source}")
        index = [position[name] for name in names]
        known = set(names)
        extra = [column for column in columns if column not in known]
        return (None if index == list(range(len(columns))) else index), extra

    def _raise_missing(self, missing: list[str], columns: list[Any], source: str) -> NoReturn:
        raise ValueError(
            f"{source[0].upper()}{source[1:]} lacks feature columns {missing}. The model takes {self.num_features}: "
            f"{', '.join(self.feature_names or [])}; got {', '.join(map(str, columns)) or 'none'}"
        )

    def _raise_missing_in_rows(self, rows: Sequence[Mapping[str, Any]], names: list[str]) -> NoReturn:
        missing = [name for name in names if any(name not in row for row in rows)]
        first = next(i for i, row in enumerate(rows) if any(name not in row for name in names))
        source = f"the list of dicts (row {first} first)" if len(rows) > 1 else "the dict"
        self._raise_missing(missing, list(rows[first]), source)

    def _warn_extra_columns(self, extra: list[Any]) -> None:
        if extra and not self._warned_extra_columns:
            self._warned_extra_columns = True
            warnings.warn(
                f"Predictor ignores columns the model was not trained on: {', '.join(map(repr, extra))} (this "
                "warning is shown once per Predictor)",
                UserWarning,
                stacklevel=_outside_stacklevel(),
            )

    def _check_width(self, x: np.ndarray | Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.num_features:
            what = "" if self.feature_names is None else f" ({', '.join(self.feature_names)})"
            raise ValueError(
                f"Positional input must be 2-D, rows × {self.num_features} feature columns in training order{what}; "
                f"got shape {tuple(x.shape)}" + (": wrap one row in a list" if x.ndim == 1 else "")
            )

    def _float_matrix(self, columns: Sequence[Any], num_rows: int, labels: Sequence[str] | None = None) -> np.ndarray:
        """Columns as a float32 matrix, column by column, so that a value that is not a number is found with its
        column (``labels``, default the feature names). A missing value (``None``, pandas' ``NA``) becomes NaN."""
        labels = self._labels if labels is None else labels
        x = np.empty((num_rows, len(columns)), dtype=np.float32)
        for j, values in enumerate(columns):
            try:
                x[:, j] = values
            except (TypeError, ValueError) as err:
                column = np.asarray(values, dtype=object).reshape(-1)
                missing = is_missing(column)
                if missing.any():
                    column[missing] = np.nan
                    try:
                        x[:, j] = column
                        continue
                    except (TypeError, ValueError):
                        pass
                raise self._bad_value_error(labels[j], values, err) from err
        return x

    def _bad_value_error(self, label: str, values: Any, err: Exception) -> ValueError:
        for row, value in enumerate(values):
            if not _is_number(value) and not is_missing(np.array([value], dtype=object))[0]:
                hint = (
                    ": the model was trained on numbers in this column (text columns are categorical in training)"
                    if isinstance(value, str)
                    else ""
                )
                return ValueError(f"Column {label!r} holds a value that is not a number at row {row}: {value!r}{hint}")
        return ValueError(f"Column {label!r} cannot be converted to float32: {err}")

    def _check_finite(self, x: np.ndarray, labels: Sequence[str] | None = None) -> None:
        # NaN propagates through min / max and ±inf is their result: no mask of the table's size unless one is bad
        if x.size and not (math.isfinite(x.max()) and math.isfinite(x.min())):
            self._raise_not_finite(np.isinf(x) if self.median is not None else ~np.isfinite(x), labels)

    def _raise_not_finite(self, bad: np.ndarray, labels: Sequence[str] | None = None) -> None:
        if not bad.any():
            return  # only NaN, which the training median fills
        labels = self._labels if labels is None else labels
        column = int(np.flatnonzero(bad.any(axis=0))[0])
        rows = np.flatnonzero(bad[:, column])
        if self.median is not None:
            raise ValueError(
                f"Column {labels[column]!r} holds inf (or a number beyond float32's range of ±3.4e38) at row "
                f"{int(rows[0])} ({len(rows)} rows in all): missing "
                "numbers are filled with the training median, infinite ones are an error"
            )
        raise ValueError(
            f"Column {labels[column]!r} holds NaN, inf (or a number beyond float32's ±3.4e38) or a missing value at "
            f"row {int(rows[0])} ({len(rows)} rows in "
            "all): the model takes finite numbers only, as in training (trained with the data module's `missing: "
            "median`, it would fill them); fill or drop those rows"
        )

    # ---------------------------------------------------------------- output columns
    def _output_columns(self, outputs: dict[str, Tensor]) -> list[str]:
        return list(self._table(outputs, 1))

    def _table(self, outputs: dict[str, Tensor], num_rows: int) -> dict[str, np.ndarray]:
        """The columns of :class:`~nnlit.callbacks.CSVPredictionWriter`, from the module's predict outputs."""
        merged = {key: value.cpu().numpy() for key, value in outputs.items()}
        table: dict[str, np.ndarray] = {"row": np.arange(num_rows)}
        if "label" in merged:
            labels = merged["label"].reshape(num_rows)
            table["prediction"] = labels if self._class_array is None else self._class_array[labels]
            if "probability" in merged:
                positive = merged["probability"].reshape(num_rows)
                probabilities = [1 - positive, positive]
            else:
                probabilities = list(_as_matrix(merged["probabilities"], num_rows).T)
            names = self.classes if self.classes is not None else range(len(probabilities))
            for name, column in zip(names, probabilities):
                table[f"prob_{name}"] = column
        if "prediction" in merged:
            predictions = _as_matrix(merged["prediction"], num_rows)
            if predictions.shape[1] == 1:
                table["prediction"] = predictions[:, 0]
            else:
                for j in range(predictions.shape[1]):
                    table[f"prediction_{j}"] = predictions[:, j]
        return table

    def _frame(self, frame_type: Any, table: dict[str, np.ndarray], index: Any) -> Any:
        # built with integer keys, then given the cached column names: from string keys pandas makes a new Index of
        # strings for every frame (as long as the model's forward pass for one row)
        if self._output_index is None:
            self._output_index = _pandas().Index(list(table))
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


def _pandas() -> Any:
    """pandas if it is imported (an input cannot be a DataFrame otherwise; pandas is an optional dependency)."""
    return sys.modules.get("pandas")


def _dataframe_type() -> Any:
    """``pandas.DataFrame`` when pandas is imported, else ``None``."""
    pandas = _pandas()
    return None if pandas is None else pandas.DataFrame


def _as_matrix(values: np.ndarray, num_rows: int) -> np.ndarray:
    """Outputs as rows × columns (one column for outputs of one value per row, even with no rows)."""
    return values if values.ndim == 2 else values.reshape(num_rows, 1)


def _outside_stacklevel() -> int:
    """The ``stacklevel`` of a warning raised by its caller that points at the first line outside this file (the user's
    call of ``predict``), however deep in this file the warning comes from."""
    frame = inspect.currentframe()
    frame = frame.f_back if frame is not None else None
    level = 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
        level += 1
    return level


def _is_number(value: Any) -> bool:
    """Whether numpy converts ``value`` to one float32, as it does numbers, bools, numeric strings and None (NaN)."""
    try:
        return np.ndim(np.float32(value)) == 0  # a list converts, to an array
    except (TypeError, ValueError):
        return False


def _is_column(value: Any) -> bool:
    """Whether a dict value is a column of values rather than the value of one row."""
    if isinstance(value, (str, bytes)) or value is None:
        return False
    ndim = getattr(value, "ndim", None)
    return ndim > 0 if isinstance(ndim, int) else isinstance(value, (list, tuple))


def _as_column(values: Any) -> Any:
    if isinstance(values, Tensor):
        return values.detach().cpu().numpy()
    to_numpy = getattr(values, "to_numpy", None)  # a pandas Series
    return to_numpy() if callable(to_numpy) else values


def _row_getter(names: list[str] | None) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The values of a dict row in feature order, as a tuple (``KeyError`` for a missing one)."""
    if not names:
        return tuple
    if len(names) == 1:
        name = names[0]
        return lambda row: (row[name],)
    return operator.itemgetter(*names)


def _check_names(names: Sequence[str], num_features: int) -> list[str]:
    names = list(names)
    if len(names) != num_features:
        raise ValueError(
            f"`feature_names` needs {num_features} names for a model of {num_features} features, got {len(names)}"
        )
    duplicated = sorted({name for name in names if names.count(name) > 1}, key=str)
    if duplicated:
        raise ValueError(f"`feature_names` must be unique, got {duplicated} more than once")
    return names


def _check_scaler(mean: Any, std: Any, num_features: int, device: torch.device) -> tuple[Tensor | None, Tensor | None]:
    if (mean is None) != (std is None):
        raise ValueError(f"Give both `mean` and `std` or neither, got mean={mean!r}, std={std!r}")
    if mean is None:
        return None, None
    tensors = []
    for name, values in (("mean", mean), ("std", std)):
        tensor = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
        if len(tensor) != num_features:
            raise ValueError(f"`{name}` needs {num_features} values (one per feature), got {len(tensor)}")
        if not torch.isfinite(tensor).all():
            raise ValueError(f"`{name}` must be finite, got {tensor.tolist()}")
        tensors.append(tensor.to(device))
    if (tensors[1] <= 0).any():
        raise ValueError(f"`std` must be > 0, got {tensors[1].tolist()}")
    return tensors[0], tensors[1]


def _check_categorical(
    categorical: list[str], vocabularies: Sequence[Sequence[Any]] | None, names: list[str] | None, module: MLPModule
) -> list[CategoryCodes]:
    """The codes of each categorical feature, checked against the feature names and the module's ``categories``."""
    expected = list(getattr(module, "categories", None) or [])
    if not categorical:
        if expected:
            raise ValueError(
                f"The module takes {len(expected)} categorical columns (categories={expected}): give `categorical` and "
                "`vocabularies`"
            )
        return []
    if names is None:
        raise ValueError("A predictor with `categorical` features needs `feature_names`")
    unknown = [name for name in categorical if name not in names]
    if unknown:
        raise ValueError(f"`categorical` names {unknown}, which are not in `feature_names`: {names}")
    if vocabularies is None or len(vocabularies) != len(categorical):
        count = "none" if vocabularies is None else len(vocabularies)
        raise ValueError(f"`vocabularies` needs one list per categorical feature ({len(categorical)}), got {count}")
    codes = [CategoryCodes(v) for v in vocabularies]
    if [len(c) for c in codes] != expected:
        raise ValueError(
            f"The vocabularies give {[len(c) for c in codes]} codes per categorical feature (unknown included), the "
            f"module takes categories={expected}"
        )
    return codes


def _check_median(median: Any, num_numeric: int, device: torch.device) -> Tensor | None:
    if median is None:
        return None
    tensor = torch.as_tensor(median, dtype=torch.float32).reshape(-1)
    if len(tensor) != num_numeric:
        raise ValueError(f"`median` needs {num_numeric} values (one per numeric feature), got {len(tensor)}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"`median` must be finite, got {tensor.tolist()}")
    return tensor.to(device)


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


def _label_array(classes: list[Any]) -> np.ndarray:
    """The class labels as an array that class indices select from: of their own dtype when it keeps them as they
    are (e.g. strings or integers), else of Python objects."""
    array = np.asarray(classes)
    if array.dtype == object or array.tolist() != classes:
        array = np.empty(len(classes), dtype=object)
        array[:] = classes
    return array


__all__ = ["Predictor"]
