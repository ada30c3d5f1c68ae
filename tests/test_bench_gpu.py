"""``bench/gpu.py`` runs where a GPU is lent only now and then, so its dry run on the CPU is checked here: the same
fits, the same table, and a sync count that is empty there. ``bench/syncs.py``, which places each sync, is checked with
warnings standing in for CUDA's."""

from __future__ import annotations

import functools
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "bench/gpu.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


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


def _syncs_module():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import syncs
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return syncs


def _function(path: str, name: str, body: str) -> Any:
    """A function ``name(inner)`` running ``body``, that claims to live in ``path``."""
    scope: dict[str, Any] = {"warnings": warnings}
    exec(compile(f"def {name}(inner):\n    {body}\n", path, "exec"), scope)
    return scope[name]


def _warn_from(path: str, name: str, inner: Any = None) -> None:
    """Calls ``inner`` from a function named ``name`` in ``path``; by default, torch warning of a sync."""
    if inner is None:
        warn = "warnings.warn('called a synchronizing CUDA operation')"
        inner = functools.partial(_function(torch.__file__.replace("__init__.py", "cuda/op.py"), "op", warn), None)
    _function(path, name, "inner()")(inner)


def test_syncs_are_put_down_to_the_innermost_line_of_nnlit():
    syncs = _syncs_module()
    stage = SimpleNamespace(stage=SimpleNamespace(value="train"))
    trainer = SimpleNamespace(state=stage, current_epoch=1, global_step=7)
    package, hook = "/site/nnlit/", "/site/nnlit/callbacks/x.py:2 (hook)"
    with syncs.HostSyncs(trainer, package=package) as recorder:
        # nnlit's hook calls into Lightning, which syncs: the place is nnlit's line
        _warn_from("/site/nnlit/callbacks/x.py", "hook", lambda: _warn_from("/site/lightning/y.py", "log"))
        _warn_from("/site/lightning/y.py", "loop")  # no nnlit frame: the innermost frame outside torch
        recorder.paused = True
        _warn_from("/site/nnlit/callbacks/x.py", "hook")  # not recorded
        recorder.paused = False
        trainer.current_epoch, trainer.global_step = 2, 9
        _warn_from("/site/nnlit/callbacks/x.py", "hook")
        with pytest.warns(UserWarning, match="something else"):  # other warnings are shown as usual
            warnings.warn("something else", UserWarning, stacklevel=1)
    assert recorder.syncs == [
        syncs.Sync(hook, True, "/site/lightning/y.py:2 (log)", "train", 1, 7),
        syncs.Sync("/site/lightning/y.py:2 (loop)", False, "/site/lightning/y.py:2 (loop)", "train", 1, 7),
        syncs.Sync(hook, True, hook, "train", 2, 9),
    ]
    assert recorder.table(epochs=2) == [
        (1, "once", "train", f"{hook} <- /site/lightning/y.py:2 (log)"),
        (1, "once", "train", "/site/lightning/y.py:2 (loop)"),
        (1, "once", "train", hook),
    ]
    assert recorder.from_nnlit(epochs=2) == {"once": 2}
    recorder.syncs = recorder.syncs[2:] * 5
    assert recorder.table(epochs=2) == [(5, "per step", "train", hook)]
    recorder.syncs = recorder.syncs[:2]
    assert recorder.table(epochs=2) == [(2, "per epoch", "train", hook)]
