"""The process group of a distributed fit, ended before Python shuts down.

Lightning destroys the process group at exit only for NCCL (GPUs). On CPU (gloo), a process that exits with its group
still alive can abort while the interpreter shuts down: gloo's worker threads still hold the work of the last
collective, and freeing its tensors then needs an interpreter that is already gone ("terminate called without an
active exception", the process killed by SIGABRT after a fit that finished). A ``ddp_spawn`` worker or a SLURM task
that trained well would then report a failure. Destroying the group from an ``atexit`` handler, while the interpreter
is still whole, avoids it (a 2-process gloo loop that exits right after 20 ``all_gather`` calls aborted 7 times in
30 runs without it, 0 in 40 with it).
"""

from __future__ import annotations

import atexit

import torch.distributed as dist

_registered = False


def destroy_process_group_at_exit() -> None:
    """Has the process group, when this process has one, destroyed when Python exits. Called from the ``setup`` hooks
    of nnlit's modules and data module (each process of a distributed fit runs them); once per process, whatever the
    number of calls; a no-op without a process group."""
    global _registered
    if _registered or not (dist.is_available() and dist.is_initialized()):
        return
    atexit.register(_destroy)
    _registered = True


def _destroy() -> None:
    if dist.is_initialized():  # the user may have destroyed it already
        dist.destroy_process_group()
