"""What a quick start prints: nnlit's lines, Lightning's lines about the run, the model summary, epoch lines (the
output is not a terminal here) and the report; nothing else (see nnlit/quiet.py)."""

from __future__ import annotations

import pytest
from helpers import run_python

pytestmark = pytest.mark.integration  # starts the nnlit command

#: the starts of the stderr lines a quick start may print
ALLOWED = ("nnlit", "SavePlots wrote ", "Seed set to ", "GPU available: ", "`Trainer.fit` stopped: ")


def test_the_quick_start_prints_only_what_it_should(tmp_path):
    done = run_python("-m", "nnlit.cli", "fit", "--config", "quickstart", "--trainer.max_epochs=3", cwd=tmp_path)
    lines = done.stderr.splitlines()
    assert [line for line in lines if not line.startswith(ALLOWED)] == []
    assert any(line.startswith("nnlit: 1 CPU thread") for line in lines)
    assert "\r" not in done.stdout  # no bar redraws piled up in a file
    out = done.stdout.splitlines()
    assert [line.split(":")[0] for line in out if line.startswith("Epoch ")] == ["Epoch 1/3", "Epoch 3/3"]
    assert any(line.startswith("nnlit fit report") for line in out)
    assert len(done.stdout) < 6000 and len(done.stderr) < 1000
