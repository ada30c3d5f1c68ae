"""``bench/small.py`` (run by ``make bench``, not by CI's tests otherwise): a short run prints every row for both
tables, each ratio its time over the torch loop's."""

from __future__ import annotations

import pytest
from helpers import run_python

pytestmark = pytest.mark.integration  # starts a process


def test_a_short_run_prints_each_fit_of_both_tables_with_its_ratio():
    done = run_python("bench/small.py", "--repeats", "1", "--epochs", "2")
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in done.stdout.splitlines()[4:] if "|" in line]
    fits = [
        "plain torch loop",
        "nnlit, Trainer defaults",
        "without bar and summary",
        "and without checkpoints",
        "and without logger",
        "and without validation",
        "`nnlit fit` in-process",
    ]
    assert [(table, fit) for table, fit, *_ in rows] == [
        (table, fit) for table in ("150 rows (iris)", "10,000 rows") for fit in fits
    ]
    for table in ("150 rows (iris)", "10,000 rows"):
        own = [row for row in rows if row[0] == table]
        base = float(own[0][3])  # ms per epoch: the finest figure printed
        assert base > 0 and own[0][4] == "1.00"
        for _, _, _, per_epoch, ratio in own[1:]:
            assert float(ratio) == pytest.approx(float(per_epoch) / base, rel=0.03, abs=0.01)
