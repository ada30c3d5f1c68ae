"""A CSV logger that keeps the rows of earlier runs in its folder: a resumed or requeued run adds to its metrics.csv.

Lightning's ``CSVLogger`` deletes ``metrics.csv`` when its version folder is not empty ("Previous log files in this
directory will be deleted"). A SLURM job that is requeued logs to the same folder (its version is the job id), so every
epoch before the requeue would be lost.
"""

from __future__ import annotations

import csv
from typing import Any

from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.loggers.csv_logs import _ExperimentWriter as _FabricExperimentWriter
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from typing_extensions import override

from nnlit import safe_write


class _KeepingExperimentWriter(ExperimentWriter):
    """Lightning's writer, told to keep an existing ``metrics.csv``: its header and rows stay, new rows are appended.

    A run resumed from a checkpoint logs again what the killed run had logged after that checkpoint, at the same step:
    a row of the same step and the same metrics replaces the earlier one, so each epoch's row is in the file once."""

    def __init__(self, log_dir: str) -> None:
        self._earlier: set[tuple[str, frozenset[str]]] = set()
        super().__init__(log_dir)

    @override
    def _check_log_dir_exists(self) -> None:  # Lightning's deletes metrics.csv; this reads it instead
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            reader = csv.DictReader(file)
            self.metrics_keys = list(reader.fieldnames or [])
            self._earlier = {_signature(row) for row in reader}

    @override
    def save(self) -> None:
        if self.metrics and self._earlier:
            replaced = {_signature(row) for row in self.metrics} & self._earlier
            if replaced:
                self._drop(replaced)
        super().save()

    def _drop(self, signatures: set[tuple[str, frozenset[str]]]) -> None:
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            rows = [row for row in csv.DictReader(file) if _signature(row) not in signatures]
        local = isinstance(self._fs, LocalFileSystem)  # a local file is replaced, never written through a planted link
        writing = (
            safe_write.opened(self.metrics_file_path, "w", newline="")
            if local
            else self._fs.open(self.metrics_file_path, "w", newline="")
        )
        with writing as file:
            writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(rows)
        self._earlier -= signatures


def _signature(row: dict[str, Any]) -> tuple[str, frozenset[str]]:
    """A row's step and the names of the metrics it holds (the ``epoch`` column is one of them)."""
    filled = frozenset(key for key, value in row.items() if key != "step" and value not in (None, ""))
    step = row.get("step")
    return str(int(float(step))) if step not in (None, "") else "", filled


class ResumableCSVLogger(CSVLogger):
    """Lightning's ``CSVLogger`` (same arguments, same files) that keeps an existing ``metrics.csv`` in its version
    folder and adds to it, where Lightning's deletes it.

    Use it wherever a run's folder is reused: a SLURM job requeued with its job id as the version, or a run continued
    under the same ``version``. A run resumed from a checkpoint logs again the steps after that checkpoint; their rows
    replace the earlier ones, so each epoch is in the file once.

    Example::

        >>> import csv
        >>> root = getfixture("tmp_path")
        >>> for run in range(2):  # the same folder twice, as a requeued job does
        ...     logger = ResumableCSVLogger(root, version="job")
        ...     logger.log_metrics({"epoch": run, "val/loss": 1.0 / (run + 1)}, step=10 * run)
        ...     logger.save()
        >>> [row["epoch"] for row in csv.DictReader(open(root / "lightning_logs" / "job" / "metrics.csv"))]
        ['0', '1']
    """

    @property
    @override
    @rank_zero_experiment
    def experiment(self) -> _FabricExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _KeepingExperimentWriter(log_dir=self.log_dir)
        return self._experiment
