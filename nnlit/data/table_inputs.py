"""A table's columns as the model takes them, under the fitted preprocessing."""

from __future__ import annotations

from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch import Tensor

from nnlit.data.fitted_preprocessing import FittedPreprocessing
from nnlit.data.table import Table


class TableInputs:
    """The numeric features of a table and, with categorical features, their codes under the fitted vocabularies
    (computed once per table and preprocessing), checked against the columns training saw; counts, per split, the
    categorical values training did not see, logged once per split."""

    def __init__(self) -> None:
        #: values that the training split did not have, per split, per categorical column (logged once per split)
        self.unknown_categories: dict[str, dict[str, int]] = {}
        self._codes: Tensor | None = None  # the table's category codes as the model takes them
        self._unknown: Tensor | None = None  # where the table's categorical values were not in the training split

    def forget_codes(self) -> None:
        """After a new preprocessing (fitted, or a checkpoint's): the codes are computed again."""
        self._codes = self._unknown = None

    def tensors(self, table: Table, prep: FittedPreprocessing, split: str, rows: Tensor | None) -> tuple[Tensor, ...]:
        """The table's numeric features, and its category codes when it has categorical features; counts, once per
        split, how many of the split's values (``rows``, default all) training did not see.

        Raises:
            ValueError: when the table's features, or its categorical ones, are not those of ``prep``.
        """
        if table.feature_names != prep.feature_names:
            raise ValueError(
                f"The features of the checkpoint, {prep.feature_names}, differ from those of this data, "
                f"{table.feature_names}: the model would read each column as another. Use data with the columns the "
                "model was trained on"
            )
        if not prep.categorical:
            return (table.x,)
        if table.categorical != prep.categorical:
            raise ValueError(
                f"The categorical features of the checkpoint, {prep.categorical}, differ from those of this "
                f"data, {table.categorical}: use data with the columns the model was trained on"
            )
        if self._codes is None:
            self._codes, self._unknown = prep.table_codes(table)
        if split not in self.unknown_categories and self._unknown is not None:
            unknown = self._unknown if rows is None else self._unknown[rows]
            self.record_unknown(split, prep.categorical, unknown.sum(dim=0).tolist())
        return table.x, self._codes

    def record_unknown(self, split: str, names: list[str], counts: list[int]) -> None:
        """Keeps the count of unknown values of each categorical feature for ``split``, and logs the ones found."""
        self.unknown_categories[split] = dict(zip(names, counts))
        found = {name: n for name, n in self.unknown_categories[split].items() if n}
        if found:
            shown = ", ".join(f"{name!r}: {n}" for name, n in found.items())
            rank_zero_info(
                f"nnlit data: {sum(found.values())} categorical values of the {split} rows were not in the training "
                f"split and take the unknown category ({shown})"
            )


__all__ = ["TableInputs"]
