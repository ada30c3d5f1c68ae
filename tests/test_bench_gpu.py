"""``bench/gpu.py`` runs where a GPU is lent only now and then, so its dry run on the CPU is checked here: the same
fits, the same table, and a sync count that is empty there. (``nnlit.speed.host_syncs``, which places each sync, has its
own tests.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch
from helpers import run_python

pytestmark = pytest.mark.integration  # every test here starts processes

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_python("bench/gpu.py", *args, ok=False)


def test_dry_run_on_the_cpu_prints_the_table():
    done = _run("--device", "cpu", "--rows", "4000", "--epochs", "1", "--repeats", "1", "--batch-size", "512")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = {line.split("  ")[0].strip(): line.split() for line in done.stdout.splitlines() if "x " in line}
    assert set(lines) == {"hand-written loop", "nnlit fit (defaults)", "nnlit + 4 callbacks"}
    assert lines["hand-written loop"][-2] == "1.00x"
    for row in lines.values():
        assert 0.0 < float(row[-1]) <= 1.0  # validation accuracy
    assert "no sync count on the CPU" in done.stdout
    assert "host syncs in a fit with the four callbacks (8 optimizer steps, 1 epochs)" in done.stdout
    assert "from nnlit's code, per step: 0" in done.stdout  # the report's lines (nothing synchronises on a CPU)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given without a GPU")
def test_without_a_gpu_it_says_so():
    done = _run()
    assert done.returncode != 0
    assert "no CUDA device here" in done.stderr and "--device cpu" in done.stderr
