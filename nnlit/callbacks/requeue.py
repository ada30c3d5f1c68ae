"""Saving and requeueing a SLURM job when SLURM warns of its time limit (SIGUSR1) or preempts it (SIGTERM).

Lightning's own handler saves a checkpoint, finalises the loggers and calls ``scontrol requeue`` inside the signal
handler, wherever the signal lands (a collective under way on another rank, a save half written); it writes
``hpc_ckpt_N.ckpt`` in ``default_root_dir``, shared by every job there, one file per requeue; nothing caps the number
of requeues; and on SIGTERM it saves nothing. :class:`SLURMRequeue` replaces it: the handlers only record the signal,
and the work is done at the end of a training step, on every rank at the same step.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn
from typing_extensions import override

#: what a recorded signal asks for, by priority (a preemption wins over a time-limit warning)
NOTHING, REQUEUE, STOP = 0, 1, 2
#: the exit status of a job stopped by SIGTERM (as a process killed by it reports): SLURM's record says so
SIGTERM_STATUS = 128 + signal.SIGTERM
#: the name of the checkpoints a signal saves, as Lightning names its own
HPC_PREFIX = "hpc_ckpt_"


class SLURMRequeue(Callback):
    """Under SLURM, saves a checkpoint and requeues the job when SLURM signals it, at a step boundary, every rank at
    the same step.

    - **SIGUSR1** (``#SBATCH --signal=SIGUSR1@90``: the time limit is near): saves ``hpc_ckpt_N.ckpt`` in the run's
      checkpoint folder, removes the older ``hpc_ckpt_*`` there, flushes the loggers, calls ``scontrol requeue`` (on
      rank 0) unless the job was requeued ``max_requeues`` times already (``SLURM_RESTART_COUNT``), and ends the
      fit. The requeued job runs the same command; ``--ckpt_path last`` resumes from that checkpoint.
    - **SIGTERM** (a preemption, ``scancel``, or the time limit itself): saves the same checkpoint and ends the fit with
      exit status 143; nothing is requeued by nnlit (SLURM requeues a preempted job with ``--requeue`` itself). SLURM
      kills the job ``KillWait`` seconds (30 by default) after SIGTERM: a training step plus a save must fit.

    The signal handlers only record the signal; the save happens at the end of the training step under way (a signal
    during validation waits for the next training step). With several processes, the ranks agree at each step
    (a one-number all-reduce, read on the host: on GPUs, one wait for the device per step, beside the step's gradient
    all-reduce) so that all of them save and stop at the same one. When the fit ends normally, the
    ``hpc_ckpt_*`` files older than the run's ``last.ckpt`` are removed. Under several processes Lightning's SIGUSR1
    handler is turned off (``SLURMEnvironment.auto_requeue``); from the first training step on, these handlers replace
    Lightning's, and Lightning gives back the earlier ones when the fit ends.

    The ``nnlit`` command adds it to ``fit`` under SLURM; name it in the config to set ``max_requeues``.

    Args:
        max_requeues: how many times a job may be requeued (SLURM's ``SLURM_RESTART_COUNT``); the last run saves its
            checkpoint and ends without requeueing, saying how to continue.
        requeue_signal: the signal that asks for a requeue: the one of ``#SBATCH --signal``.

    Example::

        >>> SLURMRequeue(max_requeues=3)
        SLURMRequeue(max_requeues=3, requeue_signal='SIGUSR1')
    """

    def __init__(self, max_requeues: int = 10, requeue_signal: str = "SIGUSR1") -> None:
        if isinstance(max_requeues, bool) or not isinstance(max_requeues, int) or max_requeues < 0:
            raise ValueError(f"`max_requeues` must be an integer >= 0, got {max_requeues!r}")
        names = sorted(s.name for s in signal.Signals if s.name.startswith("SIGUSR"))
        if requeue_signal not in names:
            raise ValueError(f"`requeue_signal` must be one of {', '.join(names)}, got {requeue_signal!r}")
        self.max_requeues = max_requeues
        self.requeue_signal = requeue_signal
        #: what the last signal asked for (NOTHING, REQUEUE or STOP); set by the handlers only
        self.requested = NOTHING
        self._previous: dict[int, Any] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_requeues={self.max_requeues}, requeue_signal={self.requeue_signal!r})"

    # ------------------------------------------------------------------------------------------ the handlers
    def _record(self, signum: int, frame: FrameType | None) -> None:
        """The handler: records what the signal asks for, nothing else (no I/O, no collective, no lock)."""
        self.requested = max(self.requested, STOP if signum == signal.SIGTERM else REQUEUE)

    def _install(self) -> None:
        if threading.current_thread() is not threading.main_thread():  # signals go to the main thread only
            return
        for signum in (signal.Signals[self.requeue_signal], signal.SIGTERM):
            previous = signal.signal(signum, self._record)
            self._previous.setdefault(signum, previous)

    def _restore(self) -> None:
        """Gives back the handlers found at the start, where this callback's are still installed: on an exception
        this runs before Lightning gives back its own originals; at the end of a fit, after."""
        if threading.current_thread() is threading.main_thread():
            for signum, handler in self._previous.items():
                if signal.getsignal(signum) == self._record:
                    signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self.requested = NOTHING
        environment = getattr(trainer.strategy, "cluster_environment", None)
        if isinstance(environment, SLURMEnvironment):  # Lightning's own requeue handler is not installed at all
            environment.auto_requeue = False

    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after Lightning registered its handlers (which it gives back itself when the fit ends): replaced by these
        self._install()

    @override
    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore()

    @override
    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore()

    # ------------------------------------------------------------------------------------------ at a step
    @override
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        requested = self.requested
        if trainer.world_size > 1:  # every rank the same answer, at the same step
            flag = torch.tensor(float(requested), device=trainer.strategy.root_device)
            requested = int(trainer.strategy.reduce(flag, reduce_op="max").item())
        if requested == NOTHING:
            return
        path = self._save(trainer)
        requeued = requested == REQUEUE and self._requeue(trainer, path)
        if requested == STOP:
            rank_zero_info(f"nnlit: SIGTERM: saved {path} at step {trainer.global_step}; stopping")
            raise SystemExit(SIGTERM_STATUS)
        raise SystemExit(0 if requeued else 1)

    def _save(self, trainer: L.Trainer) -> Path:
        folder = checkpoint_folder(trainer)
        numbers = [_hpc_number(p) for p in folder.glob(f"{HPC_PREFIX}*.ckpt")] if folder.is_dir() else []
        path = folder / f"{HPC_PREFIX}{max(numbers, default=0) + 1}.ckpt"
        trainer.save_checkpoint(path)  # every rank: the strategy writes on rank 0, with a barrier
        if trainer.is_global_zero:
            remove_hpc_checkpoints(folder, keep=path)
        for logger in trainer.loggers:
            logger.save()
        trainer.strategy.barrier("nnlit-requeue-saved")
        return path

    def _requeue(self, trainer: L.Trainer, path: Path) -> bool:
        restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
        if restarts >= self.max_requeues:
            rank_zero_warn(
                f"nnlit: the job was requeued {restarts} times (max_requeues={self.max_requeues}): not requeued "
                f"again. Its checkpoint is {path}; submit the job again with the run's name to continue it"
            )
            return False
        if not trainer.is_global_zero:
            return True
        job = slurm_job_id()
        try:
            result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as err:
            rank_zero_warn(f"nnlit: `scontrol requeue {job}` failed ({err}); the checkpoint is {path}")
            return False
        if result.returncode != 0:
            rank_zero_warn(f"nnlit: `scontrol requeue {job}` failed: {result.stderr.strip()}; the checkpoint is {path}")
            return False
        rank_zero_info(f"nnlit: saved {path} at step {trainer.global_step}; requeued job {job} ({restarts + 1})")
        return True

    @override
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        folder = checkpoint_folder(trainer)
        last = folder / "last.ckpt"
        if trainer.is_global_zero and last.is_file():  # the finished run's last.ckpt supersedes the requeues' saves
            remove_hpc_checkpoints(folder, keep=last)


def checkpoint_folder(trainer: L.Trainer) -> Path:
    """Where the run keeps its checkpoints: its ``ModelCheckpoint``'s folder, else ``<log dir>/checkpoints``, else
    ``default_root_dir``."""
    callback = trainer.checkpoint_callback
    dirpath = getattr(callback, "dirpath", None)
    if dirpath is not None:
        return Path(dirpath)
    logger = trainer.loggers[0] if trainer.loggers else None
    log_dir = getattr(logger, "log_dir", None)
    return Path(log_dir) / "checkpoints" if log_dir is not None else Path(trainer.default_root_dir)


def remove_hpc_checkpoints(folder: Path, keep: Path) -> list[Path]:
    """Removes the ``hpc_ckpt_*.ckpt`` files in ``folder`` older than ``keep`` (which stays); returns them."""
    removed = []
    newest = keep.stat().st_mtime_ns
    for path in folder.glob(f"{HPC_PREFIX}*.ckpt"):
        if path != keep and path.stat().st_mtime_ns <= newest:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def slurm_job_id() -> str:
    """The id ``scontrol requeue`` takes for this job: ``<array job>_<task>`` for an array task.

    Raises:
        ValueError: when SLURM's variables do not name a job.
    """
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{array_job}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}" if array_job else os.environ.get("SLURM_JOB_ID")
    if job is None or not re.fullmatch(r"[0-9]+(_[0-9]+)?", job):
        raise ValueError(f"SLURM_JOB_ID / SLURM_ARRAY_JOB_ID do not name a job: got {job!r}")
    return job


def _hpc_number(path: Path) -> int:
    digits = path.stem[len(HPC_PREFIX) :]
    return int(digits) if digits.isdigit() else 0
