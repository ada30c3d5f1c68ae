"""How many CPU threads torch uses in a fit: the :class:`Threads` callback and :func:`choose_threads`."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from typing_extensions import override

#: floating-point operations of one training step (forward and backward of a minibatch) from which a second thread
#: pays for itself on an idle machine; below it, threads only wait on each other (measured by bench/threads.py)
PARALLEL_WORK = 64e6


class Threads(Callback):
    """Sets the number of CPU threads torch uses for a fit on the CPU (``torch.set_num_threads``), and restores the
    previous number when the fit ends.

    ``"auto"`` (the default) chooses with :func:`choose_threads`: one thread when a training step is too small to
    share (a small MLP's minibatch), else as many as the CPUs this process may use (its CPU affinity and cgroup
    quota, not the machine's core count, divided among the processes of a multi-process run on the node) that other
    processes leave idle. torch's own default, a thread per core, spins against whatever else runs there: with one
    other busy process on 2 cores, a small MLP trains several times slower on 2 threads than on 1 (bench/threads.py).

    The ``nnlit`` command adds it (``--threads``, default ``auto``); from Python: ``Trainer(callbacks=[Threads()])``.

    Args:
        threads: ``"auto"``, or a number of threads.

    Example::

        >>> Threads(2).threads, Threads().threads
        (2, 'auto')
    """

    def __init__(self, threads: int | Literal["auto"] = "auto") -> None:
        if threads != "auto" and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"`threads` must be 'auto' or a positive integer, got {threads!r}")
        self.threads = threads
        #: the number chosen for the last fit (``None`` when it did not run on the CPU)
        self.chosen: int | None = None
        self._previous: int | None = None

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or trainer.strategy.root_device.type != "cpu":
            return
        if self.threads == "auto":
            batch_size = getattr(getattr(trainer, "datamodule", None), "batch_size", None)
            work = step_work(pl_module, batch_size) if isinstance(batch_size, int) else None
            processes = sharing_processes(max(1, getattr(trainer, "num_devices", 1)))
            self.chosen, reason = choose_threads(work, cpus=_affinity(), quota=_cgroup_quota(), processes=processes)
        else:
            self.chosen, reason = self.threads, "set by `threads`"
        self._previous = torch.get_num_threads()
        torch.set_num_threads(self.chosen)
        rank_zero_info(f"nnlit: {self.chosen} CPU thread{'s' if self.chosen > 1 else ''} ({reason})")

    @override
    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore()

    @override
    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore()  # Lightning skips teardown when a fit raises (Ctrl-C included)

    def _restore(self) -> None:
        if self._previous is not None:
            torch.set_num_threads(self._previous)
            self._previous = None


def choose_threads(
    work: float | None,
    cpus: float | None = None,
    busy: float | None = None,
    processes: int = 1,
    quota: float | None = None,
) -> tuple[int, str]:
    """The threads for a fit whose training step does ``work`` floating-point operations, and why.

    The CPUs of the affinity that other processes leave idle, at most the cgroup ``quota`` (a container's limit caps
    this process; other tenants' load on the host does not shrink it), shared among ``processes``.

    Args:
        work: the operations of one training step (:func:`step_work`); ``None``: unknown, taken as large.
        cpus: the CPUs of this process's affinity; default: read from the system.
        busy: how many of those CPUs other processes keep busy; default :func:`cpus_busy`.
        processes: processes of this run that share those CPUs (DDP ranks not bound to CPUs of their own).
        quota: the cgroup's CPU quota; default: read from the system (``None`` when there is none).

    Example::

        >>> choose_threads(5e6, cpus=8, busy=0)
        (1, 'a training step of 5 MFLOP is too small to share')
        >>> choose_threads(3e8, cpus=8, busy=0)
        (8, 'a training step of 300 MFLOP, 8 CPUs for this process, 0.0 busy elsewhere')
        >>> choose_threads(3e8, cpus=8, busy=5.2)
        (3, 'a training step of 300 MFLOP, 8 CPUs for this process, 5.2 busy elsewhere')
        >>> choose_threads(3e8, cpus=64, busy=40, quota=4)  # a 4-CPU container on a busy 64-CPU host
        (4, 'a training step of 300 MFLOP, 4 CPUs for this process (cgroup quota), 40.0 busy elsewhere')
    """
    if work is not None and work < PARALLEL_WORK:
        return 1, f"a training step of {work / 1e6:.2g} MFLOP is too small to share"
    if cpus is None:
        cpus, quota = _affinity(), _cgroup_quota() if quota is None else quota
    busy = cpus_busy() if busy is None else busy
    cap = cpus if quota is None else min(cpus, quota)
    threads = max(1, min(int(cap / processes), round((cpus - busy) / processes)))
    size = "of unknown size" if work is None else f"of {work / 1e6:.0f} MFLOP"
    share = f"{cap / processes:g} CPUs for this process" + (" (cgroup quota)" if cap < cpus else "")
    return threads, f"a training step {size}, {share}, {busy:.1f} busy elsewhere"


def sharing_processes(processes: int) -> int:
    """How many of this run's ``processes`` on the node share this process's CPUs: all of them, unless each was bound
    to CPUs of its own (SLURM's ``--cpus-per-task``, ``taskset``: an affinity smaller than the node), whose affinity is
    then already its share."""
    affinity = _affinity()
    return 1 if affinity < (os.cpu_count() or affinity) else processes


def step_work(module: torch.nn.Module, batch_size: int) -> float:
    """Floating-point operations of one training step of a dense network: about 6 per parameter and row (2 in the
    forward pass, 4 in the backward one)."""
    return 6.0 * sum(p.numel() for p in module.parameters() if p.requires_grad) * batch_size


def cpus_available() -> float:
    """The CPUs this process may run on: its CPU affinity (what ``taskset`` or SLURM give it), capped by its cgroup's
    CPU quota (a container's or a job's ``--cpus``)."""
    cpus = _affinity()
    quota = _cgroup_quota()
    return min(cpus, quota) if quota is not None else cpus


def _affinity() -> float:
    """The number of CPUs this process may run on (its affinity)."""
    try:
        return float(len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return float(os.cpu_count() or 1)


def cpus_busy(interval: float = 0.05) -> float:
    """How many of this process's CPUs other processes keep busy, measured over ``interval`` seconds from
    ``/proc/stat`` (0 where it cannot be read). This process's own CPU time in the interval is left out."""
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:
        return 0.0
    before, own_before = _cpu_times(allowed), time.process_time()
    if before is None:
        return 0.0
    time.sleep(interval)
    after, own_after = _cpu_times(allowed), time.process_time()
    if after is None:
        return 0.0
    total = after[0] - before[0]
    if total <= 0:
        return 0.0
    busy_fraction = (after[1] - before[1]) / total  # of the allowed CPUs' time
    own = (own_after - own_before) / interval
    return max(0.0, busy_fraction * len(allowed) - own)


def _cpu_times(allowed: set[int]) -> tuple[int, int] | None:
    """The total and busy jiffies of the CPUs in ``allowed``, from ``/proc/stat``."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    total = busy = 0
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in allowed:
            continue
        values = [int(v) for v in fields[:8]]
        idle = values[3] + values[4]  # idle, iowait
        total += sum(values)
        busy += sum(values) - idle
    return total, busy


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup"), membership: Path = Path("/proc/self/cgroup")) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (``None``: no quota), for cgroup v2 and v1."""
    candidates: list[tuple[Path, str]] = []
    try:
        entries = membership.read_text().splitlines()
    except OSError:
        entries = []
    for entry in entries:
        _, controllers, group = entry.split(":", 2)
        if controllers == "":
            candidates.append((root / group.lstrip("/") / "cpu.max", "v2"))
        elif "cpu" in controllers.split(","):
            for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
                candidates.append((root / mount / group.lstrip("/"), "v1"))
    candidates += [(root / "cpu.max", "v2"), (root / "cpu", "v1")]
    for path, version in candidates:
        try:
            if version == "v2":
                quota, period = path.read_text().split()[:2]
                return None if quota == "max" else int(quota) / int(period)
            quota_us = int((path / "cpu.cfs_quota_us").read_text())
            period_us = int((path / "cpu.cfs_period_us").read_text())
            return None if quota_us <= 0 else quota_us / period_us
        except (OSError, ValueError):
            continue
    return None


__all__ = ["PARALLEL_WORK", "Threads", "choose_threads", "cpus_available", "cpus_busy", "step_work"]
