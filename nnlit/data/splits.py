"""How a table's rows are split into train / val / test, or into K folds: fixed by a seed."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from nnlit.validation import check_int


@dataclasses.dataclass(frozen=True)
class RowSplit:
    """Splits ``num_rows`` rows once, by a permutation seeded with ``seed``: the first ``val_fraction`` of it
    validates, the next ``test_fraction`` tests, the rest trains. With ``folds``, the test rows come first and the
    rest is cut into ``folds`` parts of the seeded order, part ``fold`` validating (``val_fraction`` is then unused).

    Args:
        val_fraction: share of rows for validation, in ``[0, 1)``; at least one row when above 0.
        test_fraction: share of rows for testing, in ``[0, 1)``; at least one row when above 0.
        seed: seed of the permutation.
        folds: K-fold cross-validation, at least 2; ``None``: one split by ``val_fraction``.
        fold: which part validates, in ``[0, folds)``.

    Raises:
        ValueError: for a fraction outside ``[0, 1)``, fractions that leave no training row, a bad ``folds`` or
            ``fold``.

    Example::

        >>> split = RowSplit(val_fraction=0.2, test_fraction=0.1, seed=0)
        >>> {name: len(rows) for name, rows in split.split(10).items()}
        {'val': 2, 'test': 1, 'train': 7}
    """

    val_fraction: float = 0.2
    test_fraction: float = 0.0
    seed: int = 0
    folds: int | None = None
    fold: int = 0

    def __post_init__(self) -> None:
        if self.folds is not None:
            check_int("folds", self.folds, minimum=2)
            fold = self.fold
            if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < self.folds:
                raise ValueError(f"`fold` must be an integer in [0, {self.folds}) for folds={self.folds}, got {fold!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"`val_fraction` must be in [0, 1), got {self.val_fraction!r}")
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError(f"`test_fraction` must be in [0, 1), got {self.test_fraction!r}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError(
                f"`val_fraction` + `test_fraction` must be < 1 to leave rows for training, got "
                f"{self.val_fraction} + {self.test_fraction} = {self.val_fraction + self.test_fraction}"
            )

    def split(self, num_rows: int) -> dict[str, Tensor]:
        """The rows (int32 positions: half the memory of int64, and ``index_select`` takes either) of ``"val"``,
        ``"test"`` and ``"train"``.

        Raises:
            ValueError: when the rows cannot give every split its share and leave a training row.
        """
        order = torch.randperm(num_rows, generator=torch.Generator().manual_seed(self.seed), dtype=torch.int32)
        n_val = max(1, round(num_rows * self.val_fraction)) if self.val_fraction > 0 else 0
        n_test = max(1, round(num_rows * self.test_fraction)) if self.test_fraction > 0 else 0
        if self.folds is not None:  # the test rows first, then the rest in `folds` parts: part `fold` validates
            rest = order[n_test:]
            if len(rest) < self.folds:
                raise ValueError(f"{len(rest)} rows cannot be cut into folds={self.folds}")
            bounds = [len(rest) * k // self.folds for k in range(self.folds + 1)]
            lo, hi = bounds[self.fold], bounds[self.fold + 1]
            return {"val": rest[lo:hi], "test": order[:n_test], "train": torch.cat([rest[:lo], rest[hi:]])}
        if num_rows - n_val - n_test < 1:
            raise ValueError(
                f"{num_rows} rows cannot be split into val_fraction={self.val_fraction} and "
                f"test_fraction={self.test_fraction} with at least one training row"
            )
        return {"val": order[:n_val], "test": order[n_val : n_val + n_test], "train": order[n_val + n_test :]}


__all__ = ["RowSplit"]
