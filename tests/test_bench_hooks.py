"""``bench/hooks.py`` (run by ``make bench``, not by CI's tests otherwise): a small run prints a time per minibatch for
each plugin, with and without nnlit's four callbacks."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import run_python

pytestmark = pytest.mark.integration  # every test here starts processes

ROOT = Path(__file__).resolve().parents[1]


def test_small_run_prints_a_time_per_minibatch_for_each_plugin_and_callback_set():
    done = run_python("bench/hooks.py", "--rows", "2000", "--repeats", "1")
    table = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| ")]
    rows = [[cell.strip() for cell in row] for row in table if "µs" not in row[2] and not row[0].startswith(" -")]
    assert [row[:2] for row in rows] == [
        ["Lightning `Precision`", "defaults"],
        ["nnlit `StepHooksPrecision`", "defaults"],
        ["Lightning `Precision`", "defaults + four"],
        ["nnlit `StepHooksPrecision`", "defaults + four"],
    ]
    for *_, median, fastest in rows:
        assert 0.0 < float(fastest) <= float(median) < 1e5  # µs per minibatch
