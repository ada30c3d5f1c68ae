"""What many tests need: a quiet CPU Trainer, a fresh Python process and a script loaded from its file.
(``tests/`` is on ``sys.path`` under pytest: ``from helpers import quiet_trainer, run_python, load_script``.)"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import lightning as L

ROOT = Path(__file__).resolve().parents[1]


def quiet_trainer(root: str | Path, **kwargs: Any) -> L.Trainer:
    """A tiny CPU Trainer writing into ``root``: one epoch, no bar, no summary, no logger, no checkpoints, unless
    ``kwargs`` say otherwise."""
    options: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 1,
        "default_root_dir": root,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": False,
        "enable_checkpointing": False,
    }
    options.update(kwargs)
    return L.Trainer(**options)


def run_python(
    *args: Any, cwd: str | Path = ROOT, timeout: float = 300, ok: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in a fresh process (a script, ``-m module`` or ``-c code``), its output captured. With ``ok``
    its exit status must be 0; the end of its stderr is the assertion's message. Mark the tests that use it
    ``integration``."""
    result = subprocess.run(
        [sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )
    if ok:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def load_script(path: str, name: str) -> ModuleType:
    """The module of a script that is not in a package (``scripts/demo.py``, ``bench/doctor.py``), relative to the
    repository's root, imported from its file as ``name`` (kept in ``sys.modules``: dataclasses and pickling find
    it)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
