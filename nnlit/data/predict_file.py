"""A file of rows to predict on, read into the model's feature columns by the same reader as ``Predictor``'s."""

from __future__ import annotations

import torch
from torch import Tensor

from nnlit.data.files import check_flat, read_table
from nnlit.data.fitted_preprocessing import FittedPreprocessing
from nnlit.data.rows import RowReader


def read_predict_file(
    path: str, preprocessing: FittedPreprocessing, target: str | None
) -> tuple[tuple[Tensor, ...], dict[str, int]]:
    """The numeric features of the rows of ``path`` (a CSV / Parquet file) in their own units (NaN where missing) and,
    with categorical features, their codes; and the count, per categorical feature, of values training did not see.

    The columns are checked by :class:`~nnlit.data.rows.RowReader`, as :class:`~nnlit.Predictor` checks its input:
    every feature present, in any order, every numeric value a number; a column that is not a feature is ignored with
    one warning (``target``, the training target, is ignored silently).

    Raises:
        ValueError: naming the file, for a missing feature column or a value that is not a number.
    """
    frame = read_table(path)
    if target is not None and target in frame.columns:
        frame = frame.drop(columns=target)
    prep = preprocessing
    names = prep.feature_names
    check_flat(frame, [name for name in names if name in frame.columns], path)
    reader = RowReader(
        names, prep.numeric, len(names), allow_nan=prep.median is not None, source=f"the prediction file {path!r}"
    )
    if not prep.categorical:
        return (reader.numeric(frame),), {}
    columns, num_rows = reader.named(frame)
    x = torch.from_numpy(reader.float_matrix([columns[name] for name in prep.numeric], num_rows, prep.numeric))
    reader.check_finite(x, prep.numeric)
    codes, unknown = prep.encode_categories(columns, num_rows)
    return (x, codes), unknown


__all__ = ["read_predict_file"]
