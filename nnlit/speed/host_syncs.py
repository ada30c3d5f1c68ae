"""Where a run makes the host wait for a CUDA device, and when.

``torch.cuda.set_sync_debug_mode("warn")`` makes the operations that synchronise the host with the device warn:
blocking copies between host and device, reading a value (``.item()``, ``nonzero``, …) and stream synchronisations.
It does not flag ``torch.cuda.synchronize()``, ``Event.synchronize()`` or ``torch.distributed``'s collectives. The
warning names only the innermost Python line, which is mostly inside torch or Lightning; :class:`HostSyncs` reads the
whole stack instead and puts each sync down to the innermost line of nnlit's code that led to it (else the innermost
line outside torch), keeping that innermost line outside torch too (the operation itself), with the Trainer's stage,
epoch and global step at that moment. ``bench/gpu.py`` prints its table; the GPU test in ``tests/test_host_reads.py``
checks that training makes none per step.

    with HostSyncs(trainer) as syncs:
        trainer.fit(model, datamodule=data)
    for count, how_often, stage, place in syncs.table(): ...

How often a place syncs is told from the steps it synced at: in training, at two or more global steps of one epoch is
"per step" (a sync every few steps counts); at one step of each of several epochs, "per epoch", however many times
it synced there (a loop over layers at an epoch's end); else "once". Outside training the global step stands still,
so there the count decides: more than two per epoch is "per batch".
"""

from __future__ import annotations

import collections
import os
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch

NNLIT = str(Path(__file__).parents[1]) + os.sep  # the nnlit package
TORCH = str(Path(torch.__file__).parent) + os.sep
_SKIPPED = (TORCH, str(Path(warnings.__file__)), __file__)


class Sync(NamedTuple):
    place: str  # path:line (function)
    in_nnlit: bool  # the place is in nnlit's code
    origin: str  # the innermost line outside torch: what synchronised (the place itself when nothing is between)
    stage: str  # the Trainer's stage ("train", "validate", "sanity_check", …; "-" outside one)
    epoch: int
    step: int


def place_of(stack: Sequence[traceback.FrameSummary], package: str = NNLIT) -> tuple[str, bool, str]:
    """The innermost frame of ``stack`` in ``package`` as ``path:line (function)``, and True; else the innermost frame
    outside torch, the warnings module and this file, and False. Third: that innermost frame outside torch."""
    frames = [f for f in stack if not f.filename.startswith(_SKIPPED)] or list(stack)
    ours = [f for f in frames if f.filename.startswith(package)]
    frame, origin = (ours or frames)[-1], frames[-1]
    return _name(frame), bool(ours), _name(origin)


def _name(frame: traceback.FrameSummary) -> str:
    return f"{frame.filename}:{frame.lineno} ({frame.name})"


class HostSyncs:
    """Records the host syncs made inside the ``with`` block (see the module's docstring). ``paused``: while True,
    syncs are not recorded (the debug mode stays on). Other warnings are shown as usual. A sync inside a
    ``warnings.catch_warnings(record=True)`` block, or under an "ignore" filter set during the run, is not seen."""

    def __init__(self, trainer: Any = None, package: str = NNLIT) -> None:
        self.trainer = trainer
        self.package = package
        self.syncs: list[Sync] = []
        self.paused = False
        self._context: Any = None
        self._show: Any = None
        self._mode = 0

    def __enter__(self) -> HostSyncs:
        self._context = warnings.catch_warnings()
        self._context.__enter__()
        warnings.simplefilter("always")
        self._show = warnings.showwarning
        warnings.showwarning = self._record
        if torch.cuda.is_available():
            self._mode = torch.cuda.get_sync_debug_mode()
            torch.cuda.set_sync_debug_mode("warn")
        return self

    def __exit__(self, *exc: object) -> None:
        if torch.cuda.is_available():
            torch.cuda.set_sync_debug_mode(self._mode)
        self._context.__exit__(*exc)

    def _record(self, message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None):
        if "synchroniz" not in str(message):
            self._show(message, category, filename, lineno, file, line)
            return
        if self.paused:
            return
        place, in_nnlit, origin = place_of(traceback.extract_stack()[:-1], self.package)
        trainer = self.trainer
        stage = getattr(getattr(getattr(trainer, "state", None), "stage", None), "value", None) or "-"
        epoch, step = (trainer.current_epoch, trainer.global_step) if trainer is not None else (0, 0)
        self.syncs.append(Sync(place, in_nnlit, origin, stage, epoch, step))

    def table(self) -> list[tuple[int, str, str, str]]:
        """One row per stage, place and origin, most syncs first: ``(count, how often, stage, where)``, where is the
        place, then ``<- origin`` when the sync came from a line further in; how often as the module says."""
        return [
            (len(syncs), _how_often(syncs), stage, place if origin == place else f"{place} <- {origin}")
            for (stage, place, origin), syncs in sorted(self._groups().items(), key=lambda item: -len(item[1]))
        ]

    def from_nnlit(self) -> collections.Counter[str]:
        """The syncs put down to nnlit's code, summed by how often (as in :meth:`table`)."""
        total: collections.Counter[str] = collections.Counter()
        for syncs in self._groups(nnlit_only=True).values():
            total[_how_often(syncs)] += len(syncs)
        return total

    def _groups(self, nnlit_only: bool = False) -> dict[tuple[str, str, str], list[Sync]]:
        """The syncs of each ``(stage, place, origin)``; with ``nnlit_only``, those put down to nnlit's code."""
        groups: dict[tuple[str, str, str], list[Sync]] = collections.defaultdict(list)
        for sync in self.syncs:
            if sync.in_nnlit or not nnlit_only:
                groups[(sync.stage, sync.place, sync.origin)].append(sync)
        return groups


def _how_often(syncs: list[Sync]) -> str:
    epochs: dict[int, set[int]] = collections.defaultdict(set)
    for sync in syncs:
        epochs[sync.epoch].add(sync.step)
    if syncs[0].stage == "train":
        if any(len(steps) > 1 for steps in epochs.values()):
            return "per step"
    elif len(syncs) > 2 * len(epochs):
        return "per batch"
    return "per epoch" if len(syncs) > 1 else "once"
