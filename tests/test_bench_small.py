"""``bench/small.py`` (run by ``make bench``, not by CI's tests otherwise): a short run prints every row for both
tables, each ratio its time over the torch loop's and over the bare LightningModule's."""

from __future__ import annotations

import pytest
from helpers import run_python

pytestmark = pytest.mark.integration  # starts a process


def test_a_short_run_prints_each_fit_of_both_tables_with_its_ratios():
    done = run_python("bench/small.py", "--repeats", "1", "--epochs-small", "3", "--epochs-large", "1")
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in done.stdout.splitlines()[4:] if "|" in line]
    fits = [
        "plain torch loop",
        "bare LightningModule, optional pieces off",
        "bare LightningModule, Trainer defaults",
        "nnlit, Trainer defaults",
        "without bar and summary",
        "and without checkpoints",
        "and without logger",
        "and without validation",
        "`nnlit fit` in-process",
        "`nnlit fit --config quickstart` (shipped defaults)",
    ]
    tables = ("150 rows (iris), 3 epochs", "10,000 rows, 1 epochs")
    assert [(table, fit) for table, fit, *_ in rows] == [(table, fit) for table in tables for fit in fits]
    for table in tables:
        own = [row for row in rows if row[0] == table]
        base, floor = float(own[0][3]), float(own[1][3])  # ms per epoch: the finest figures printed
        assert base > 0 and own[0][4] == "1.00" and own[1][5] == "1.00"
        for _, _, _, per_epoch, over_torch, over_lightning in own:
            assert float(over_torch) == pytest.approx(float(per_epoch) / base, rel=0.03, abs=0.01)
            assert float(over_lightning) == pytest.approx(float(per_epoch) / floor, rel=0.03, abs=0.01)
