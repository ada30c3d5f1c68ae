"""ResumableCSVLogger keeps the rows of an earlier run in its folder, where Lightning's CSVLogger deletes them, and a
row logged again at the same step (a run resumed from an earlier checkpoint) replaces the earlier one."""

from __future__ import annotations

import csv

import pytest
from lightning.pytorch.loggers import CSVLogger

from nnlit.loggers import ResumableCSVLogger


def log(logger_class, root, rows):
    logger = logger_class(root, version="job")
    for step, metrics in rows:
        logger.log_metrics(metrics, step=step)
    logger.save()
    return logger


def read(root):
    with (root / "lightning_logs" / "job" / "metrics.csv").open() as file:
        return list(csv.DictReader(file))


def test_lightnings_logger_deletes_the_earlier_rows_and_this_one_keeps_them(tmp_path):
    first = [(9, {"epoch": 0, "val/loss": 0.9}), (19, {"epoch": 1, "val/loss": 0.8})]
    log(CSVLogger, tmp_path / "lightning", first)
    with pytest.warns(UserWarning, match="will be deleted"):
        log(CSVLogger, tmp_path / "lightning", [(29, {"epoch": 2, "val/loss": 0.7})])
    assert [row["epoch"] for row in read(tmp_path / "lightning")] == ["2"]  # what a requeued job got

    log(ResumableCSVLogger, tmp_path / "nnlit", first)
    log(ResumableCSVLogger, tmp_path / "nnlit", [(29, {"epoch": 2, "val/loss": 0.7})])
    assert [row["epoch"] for row in read(tmp_path / "nnlit")] == ["0", "1", "2"]


def test_a_row_logged_again_replaces_the_earlier_one_and_a_new_metric_widens_the_file(tmp_path):
    log(ResumableCSVLogger, tmp_path, [(9, {"epoch": 0, "val/loss": 0.9}), (19, {"epoch": 1, "val/loss": 0.8})])
    # resumed from epoch 0's checkpoint: epoch 1 again (other values), and a metric the first run did not log
    log(ResumableCSVLogger, tmp_path, [(9, {"epoch": 0, "train/loss": 1.0}), (19, {"epoch": 1, "val/loss": 0.75})])
    rows = read(tmp_path)
    assert [(row["epoch"], row["val/loss"], row["train/loss"]) for row in rows] == [
        ("0", "0.9", ""),
        ("0", "", "1.0"),  # another row of step 9: both kept
        ("1", "0.75", ""),  # the new value, once
    ]
