"""``bench/tune.py`` (run by hand, see docs/sweeps.md): a short run prints each part, its ratios computed from the
times it prints, and the test scores of the shipped config, the tuned one and scikit-learn's models."""

from __future__ import annotations

import re

import pytest
from helpers import run_python

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # sweeps in processes of their own: a few minutes

pytest.importorskip("optuna")
pytest.importorskip("sklearn")


def test_a_short_run_prints_every_part():
    done = run_python(
        "bench/tune.py", "--trials", "2", "--folds", "2", "--epochs", "1", "--datasets", "iris", timeout=900
    )
    out = done.stdout
    assert "cost: 2 fits of the quick start (1,000 rows), 2 epochs in all" in out
    loop = float(re.search(r"plain loop in one process +([\d.]+) s", out).group(1))
    tune = float(re.search(r"nnlit tune, 1 worker +([\d.]+) s", out).group(1))
    overhead = float(re.search(r"machinery: ([+-][\d.]+) % of the loop", out).group(1))
    assert overhead == pytest.approx(100 * (tune / loop - 1), abs=0.2)  # from times printed to 0.01 s
    one = float(re.search(r"1 worker\(s\) +([\d.]+) s", out).group(1))
    two = float(re.search(r"2 worker\(s\) +([\d.]+) s", out).group(1))
    assert float(re.search(r"2 workers / 1 worker: ([\d.]+)x the time", out).group(1)) == pytest.approx(
        two / one, abs=0.01
    )
    scores = dict(re.findall(r"^iris +accuracy (.+?) +([\d.]+) +[\d.]+$", out, flags=re.M))
    assert set(scores) == {"shipped config", "tuned config", "sklearn MLPClassifier", "sklearn LogisticRegression"}
    assert all(0 <= float(score) <= 1 for score in scores.values())
    gain = float(re.search(r"iris +tuned - shipped: ([+-][\d.]+) points", out).group(1))
    assert gain == pytest.approx(100 * (float(scores["tuned config"]) - float(scores["shipped config"])), abs=0.2)
