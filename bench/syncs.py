"""Where a run makes the host wait for a CUDA device, and when.

``torch.cuda.set_sync_debug_mode("warn")`` makes every operation that synchronises the host with the device warn. The
warning names only the innermost Python line, which is mostly inside torch or Lightning; :class:`HostSyncs` reads the
whole stack instead and puts each sync down to the innermost line of nnlit's code that led to it (else the innermost
line outside torch), with the Trainer's stage, epoch and global step at that moment. Used by ``bench/gpu.py`` and by
the GPU test in ``tests/test_host_reads.py``.

    with HostSyncs(trainer) as syncs:
        trainer.fit(model, datamodule=data)
    for row in syncs.table(): ...
"""

from __future__ import annotations

import collections
import os
import traceback
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import torch

import nnlit

NNLIT = str(Path(nnlit.__file__).parent) + os.sep
TORCH = str(Path(torch.__file__).parent) + os.sep
_SKIPPED = (TORCH, str(Path(warnings.__file__)), __file__)


class Sync(NamedTuple):
    place: str  # path:line (function)
    in_nnlit: bool  # the place is in nnlit's code
    stage: str  # the Trainer's stage ("train", "validate", "sanity_check", …; "-" outside one)
    epoch: int
    step: int


def place_of(stack: traceback.StackSummary, package: str = NNLIT) -> tuple[str, bool]:
    """The innermost frame of ``stack`` in ``package`` as ``path:line (function)``, and True; else the innermost frame
    outside torch, the warnings module and this file, and False."""
    frames = [f for f in stack if not f.filename.startswith(_SKIPPED)]
    ours = [f for f in frames if f.filename.startswith(package)]
    frame = (ours or frames or list(stack))[-1]
    return f"{frame.filename}:{frame.lineno} ({frame.name})", bool(ours)


class HostSyncs:
    """Records the host syncs made inside the ``with`` block (see the module's docstring). ``paused``: while True,
    syncs are not recorded (the debug mode stays on). Other warnings are shown as usual."""

    def __init__(self, trainer: Any = None, package: str = NNLIT) -> None:
        self.trainer = trainer
        self.package = package
        self.syncs: list[Sync] = []
        self.paused = False
        self._context: Any = None
        self._show: Any = None

    def __enter__(self) -> HostSyncs:
        self._context = warnings.catch_warnings()
        self._context.__enter__()
        warnings.simplefilter("always")
        self._show = warnings.showwarning
        warnings.showwarning = self._record
        if torch.cuda.is_available():
            torch.cuda.set_sync_debug_mode("warn")
        return self

    def __exit__(self, *exc: object) -> None:
        if torch.cuda.is_available():
            torch.cuda.set_sync_debug_mode(0)
        self._context.__exit__(*exc)

    def _record(self, message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None):
        if "synchroniz" not in str(message):
            self._show(message, category, filename, lineno, file, line)
            return
        if self.paused:
            return
        place, in_nnlit = place_of(traceback.extract_stack()[:-1], self.package)
        trainer = self.trainer
        stage = getattr(getattr(getattr(trainer, "state", None), "stage", None), "value", None) or "-"
        epoch, step = (trainer.current_epoch, trainer.global_step) if trainer is not None else (0, 0)
        self.syncs.append(Sync(place, in_nnlit, stage, epoch, step))

    def table(self, epochs: int) -> list[tuple[int, str, str, str]]:
        """One row per stage and place, most syncs first: ``(count, how often, stage, place)`` for a run of ``epochs``
        epochs. How often: beyond two per epoch, ``"per step"`` in training (a sync every few steps counts) and
        ``"per batch"`` elsewhere; beyond one, ``"per epoch"``; else ``"once"``."""
        counts = collections.Counter((s.stage, s.place) for s in self.syncs)
        rows = []
        for (stage, place), count in counts.most_common():
            if count > 2 * epochs:
                how = "per step" if stage == "train" else "per batch"
            else:
                how = "per epoch" if count > 1 else "once"
            rows.append((count, how, stage, place))
        return rows
