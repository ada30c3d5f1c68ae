"""Writes ``predict`` results to a CSV file, one row per input row."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch import Tensor
from typing_extensions import override

from nnlit import safe_write
from nnlit.prediction_table import outputs_to_numpy, prediction_columns


class CSVPredictionWriter(BasePredictionWriter):
    """Collects what ``predict_step`` returns and writes it as CSV at the end of ``predict``.

    ``predict_step`` must return a dict of tensors with a first dimension of batch size. Recognised keys:
    ``row`` (the input row index; else rows are numbered in the order they arrive), ``label`` (class indices,
    decoded to the original labels with ``trainer.datamodule.decode`` when the data module has it),
    ``probability`` (binary: written as one column per class), ``probabilities`` (one column per class) and
    ``prediction`` (regression: one column per output). The columns are ``row, prediction, prob_<class>…``.

    The file is written to a temporary name and renamed, so a crash never leaves half a file behind. Under
    several processes each rank writes its own ``<stem>.rank<r>.csv`` (the ``row`` column tells where each row
    belongs).

    A spreadsheet runs a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return as a formula
    (CSV injection): the class labels come from the training data, which another person may have written. With
    ``escape_formulas`` (the default) such a label, in a cell or in a ``prob_<label>`` header, is written with a
    leading ``'``, which spreadsheets show as text; a plain number (``-1``, ``+2.5``) is left alone. Give
    ``escape_formulas=False`` (``--prediction_writer.escape_formulas=false``) for a file only programs read.

    Args:
        output_path: the CSV file; default ``predictions.csv`` in the trainer's log directory.
        escape_formulas: write text that a spreadsheet would run as a formula with a leading ``'``.

    Example::

        >>> escape_formula("=1+1"), escape_formula("@SUM(A1)"), escape_formula("-1"), escape_formula("yes")
        ("'=1+1", "'@SUM(A1)", '-1', 'yes')
    """

    def __init__(self, output_path: str | None = None, escape_formulas: bool = True) -> None:
        super().__init__(write_interval="batch")
        if not isinstance(escape_formulas, bool):
            raise TypeError(f"`escape_formulas` must be True or False, got {escape_formulas!r}")
        self.output_path = output_path
        self.escape_formulas = escape_formulas
        self._batches: list[dict[str, Tensor]] = []

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._batches = []

    @override
    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        if not isinstance(prediction, dict):
            raise TypeError(
                f"CSVPredictionWriter needs predict_step to return a dict of tensors, got {type(prediction).__name__}"
            )
        self._batches.append({k: v.detach().cpu() for k, v in prediction.items() if isinstance(v, Tensor)})

    @override
    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        path = self.resolve_path(trainer)
        header, rows = self._table(getattr(getattr(trainer, "datamodule", None), "decode", None))
        if self.escape_formulas:
            header = [escape_formula(name) for name in header]
            rows = [[escape_formula(value) if isinstance(value, str) else value for value in row] for row in rows]
        _write_csv_atomically(path, header, rows)
        rank_zero_info(f"Wrote {len(rows)} predictions to {path}")
        self._batches = []

    def resolve_path(self, trainer: L.Trainer) -> Path:
        """Where this rank writes its file."""
        if self.output_path is not None:
            path = Path(self.output_path)
        else:
            path = Path(trainer.log_dir or trainer.default_root_dir) / "predictions.csv"
        if trainer.world_size > 1:
            path = path.with_name(f"{path.stem}.rank{trainer.global_rank}{path.suffix}")
        return path

    def _table(self, decode: Any) -> tuple[list[str], list[list[Any]]]:
        if not self._batches:
            return ["row", "prediction"], []
        merged = outputs_to_numpy({key: torch.cat([b[key] for b in self._batches]) for key in self._batches[0]})
        classes = None
        if "label" in merged and decode is not None:
            num_classes = merged["probabilities"].shape[1] if "probabilities" in merged else 2
            classes = decode(torch.arange(num_classes))
        columns = {name: values.tolist() for name, values in prediction_columns(merged, classes).items()}
        return list(columns), [list(row) for row in zip(*columns.values())]


#: the first characters that make a spreadsheet read a cell as a formula
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would run it as a formula; a plain number is left alone."""
    if not text.startswith(FORMULA_STARTS):
        return text
    try:
        float(text)
    except ValueError:
        return f"'{text}"
    return text


def _write_csv_atomically(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    """Writes the table beside ``path``, then renames it over ``path`` (:mod:`nnlit.safe_write`): a reader sees the old
    file or the new one, and a link planted at ``path`` is replaced, not followed."""
    with safe_write.opened(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
