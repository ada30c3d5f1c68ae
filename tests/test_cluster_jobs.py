"""train.sbatch run as SLURM would run it, on this machine: ``bash train.sbatch`` with the job's variables set by the
test, a stand-in ``srun`` that starts the tasks here (tests/scripts/slurm/) and an ``scontrol`` that records its calls;
SIGUSR1 and SIGTERM sent to the running fit as SLURM sends them."""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # each test runs several fits in fresh processes

ROOT = Path(__file__).resolve().parents[1]
SBATCH = ROOT / "configs" / "cluster" / "train.sbatch"
FAKES = ROOT / "tests" / "scripts" / "slurm"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def job(
    tmp_path: Path,
    job_id: int,
    epochs: int,
    *extra: str,
    restarts: int = 0,
    tasks: int = 1,
    rows: int = 3000,
    **env: str,
):
    """``bash train.sbatch`` as job ``job_id`` (its ``restarts``-th requeue) started in ``tmp_path``, not waited for:
    ``rows`` per task, 64 per step."""
    variables = {
        **os.environ,
        "PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "NNLIT_PYTHON": sys.executable,
        "NNLIT_CONFIG": str(ROOT / "configs" / "cluster" / "ddp.yaml"),
        "SCONTROL_LOG": str(tmp_path / "scontrol.log"),
        "SLURM_JOB_ID": str(job_id),
        "SLURM_RESTART_COUNT": str(restarts),
        "SLURM_NTASKS": str(tasks),
        "MASTER_PORT": str(_free_port()),
        **env,
    }
    args = ["--trainer.accelerator=cpu", f"--trainer.devices={tasks}", "--trainer.num_nodes=1"]
    args += [f"--trainer.max_epochs={epochs}", f"--data.init_args.n_samples={rows * tasks}"]
    args += ["--trainer.enable_progress_bar=false", "--report=false", "--threads=1", *extra]
    log = (tmp_path / f"job{job_id}_{restarts}.out").open("w")
    return subprocess.Popen(
        ["bash", str(SBATCH), *args], cwd=tmp_path, env=variables, stdout=log, stderr=subprocess.STDOUT, text=True
    )


#: rows per task for a fit to be signalled mid-epoch: 750 steps an epoch (about a second here)
LONG = 60000


def run(tmp_path: Path, job_id: int, epochs: int, *extra: str, **kwargs) -> tuple[int, str]:
    process = job(tmp_path, job_id, epochs, *extra, **kwargs)
    code = process.wait(timeout=300)
    return code, output(tmp_path, job_id, kwargs.get("restarts", 0))


def output(tmp_path: Path, job_id: int, restarts: int = 0) -> str:
    return (tmp_path / f"job{job_id}_{restarts}.out").read_text()


def run_dir(tmp_path: Path, job_id: int | str) -> Path:
    return tmp_path / "runs" / "cluster" / "lightning_logs" / f"version_{job_id}"


def epochs_logged(folder: Path) -> list[int]:
    """The epochs of metrics.csv's validation rows, in file order."""
    with (folder / "metrics.csv").open() as file:
        return [int(row["epoch"]) for row in csv.DictReader(file) if row.get("val/loss")]


def signal_mid_epoch(tmp_path: Path, process: subprocess.Popen, job_id: int, signum: int) -> int:
    """Waits until the fit's first last.ckpt is written (at the end of an epoch), then sends ``signum`` to the tasks (as
    SLURM does: srun passes it on), so that it lands in a later epoch; returns the number of steps in an epoch (that
    checkpoint's steps over its epochs, however late it was read: an epoch may take less than a second)."""
    last = run_dir(tmp_path, job_id) / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.is_file():
        assert process.poll() is None, output(tmp_path, job_id)[-3000:]
        assert time.monotonic() < deadline, "the fit never wrote epoch 0's checkpoint"
        time.sleep(0.05)
    os.kill(_srun_pid(process.pid), signum)
    saved = torch.load(last, weights_only=False)
    return saved["global_step"] // (saved["epoch"] + 1)


def saved_mid_epoch(folder: Path, steps: int) -> int:
    """The epoch during which ``hpc_ckpt_1.ckpt`` in ``folder`` was saved, checked to be after epoch 0 and mid-epoch."""
    epoch, into = divmod(torch.load(folder / "hpc_ckpt_1.ckpt", weights_only=False)["global_step"], steps)
    assert epoch >= 1 and into > 0, (epoch, into)
    return epoch


def _srun_pid(bash_pid: int) -> int:
    """The stand-in srun started by the batch script (SLURM signals the job's steps, not the batch shell)."""
    children = Path(f"/proc/{bash_pid}/task/{bash_pid}/children").read_text().split()
    return int(children[0])


def test_a_new_job_trains_beside_an_older_run_and_does_not_resume_it(tmp_path):
    code, _ = run(tmp_path, 1001, 2)
    assert code == 0
    code, text = run(tmp_path, 1002, 2)
    assert code == 0
    assert "Restoring states" not in text, text[-3000:]
    assert "training from scratch" in text and "version_1001" in text  # names the run it could continue
    assert epochs_logged(run_dir(tmp_path, 1002)) == [0, 1]
    assert torch.load(run_dir(tmp_path, 1002) / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 1


def test_continuing_an_older_run_on_purpose_and_refusing_another_model(tmp_path):
    assert run(tmp_path, 1001, 2)[0] == 0
    code, text = run(tmp_path, 1003, 3, NNLIT_RUN="1001")
    assert code == 0 and "Restoring states" in text and "version_1001" in text
    assert epochs_logged(run_dir(tmp_path, 1001)) == [0, 1, 2]
    code, text = run(tmp_path, 1004, 4, "--model.init_args.hidden=[8]", NNLIT_RUN="1001")
    assert code == 2
    assert "trained another model than this config" in text and "start a new run" in text, text[-3000:]


def test_a_requeued_job_keeps_every_epochs_metrics_once(tmp_path):
    assert run(tmp_path, 1001, 2)[0] == 0
    code, text = run(tmp_path, 1001, 4, restarts=1)
    assert code == 0 and "Restoring states" in text
    assert epochs_logged(run_dir(tmp_path, 1001)) == [0, 1, 2, 3]
    assert run(tmp_path, 1001, 5, restarts=2)[0] == 0
    assert epochs_logged(run_dir(tmp_path, 1001)) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("tasks", [1, 2])
def test_sigusr1_mid_epoch_saves_requeues_and_the_requeued_job_resumes_there(tmp_path, tasks):
    process = job(tmp_path, 1001, 4, tasks=tasks, rows=LONG)
    steps = signal_mid_epoch(tmp_path, process, 1001, signal.SIGUSR1)
    assert process.wait(timeout=240) == 0, output(tmp_path, 1001)[-3000:]
    folder = run_dir(tmp_path, 1001) / "checkpoints"
    epoch = saved_mid_epoch(folder, steps)
    assert (tmp_path / "scontrol.log").read_text().split("\n")[0] == "requeue 1001"
    assert epochs_logged(run_dir(tmp_path, 1001)) == list(range(epoch))  # the epochs finished before the signal

    code, text = run(tmp_path, 1001, 4, restarts=1, tasks=tasks, rows=LONG)  # what SLURM starts after the requeue
    assert code == 0, text[-3000:]
    assert "hpc_ckpt_1.ckpt" in text.split("Restoring states")[1].split("\n")[0]
    assert "by another run" not in text  # its own last.ckpt, replaced without a warning
    assert epochs_logged(run_dir(tmp_path, 1001)) == [0, 1, 2, 3]
    assert not list(folder.glob("hpc_ckpt_*"))  # superseded by the finished run's last.ckpt
    assert torch.load(folder / "last.ckpt", weights_only=False)["global_step"] == 4 * steps


@pytest.mark.parametrize("tasks", [1, 2])
def test_sigterm_mid_epoch_saves_and_stops_without_requeueing(tmp_path, tasks):
    process = job(tmp_path, 1001, 4, rows=LONG, tasks=tasks)
    steps = signal_mid_epoch(tmp_path, process, 1001, signal.SIGTERM)
    assert process.wait(timeout=240) == 128 + signal.SIGTERM, output(tmp_path, 1001)[-3000:]
    saved_mid_epoch(run_dir(tmp_path, 1001) / "checkpoints", steps)
    assert not (tmp_path / "scontrol.log").exists()  # SLURM requeues a preempted job itself
    code, text = run(tmp_path, 1001, 4, restarts=1, rows=LONG, tasks=tasks)
    assert code == 0 and "hpc_ckpt_1.ckpt" in text.split("Restoring states")[1].split("\n")[0]
    assert epochs_logged(run_dir(tmp_path, 1001)) == [0, 1, 2, 3]


def test_the_requeue_cap_saves_and_ends_without_requeueing(tmp_path):
    process = job(tmp_path, 1001, 3, restarts=10, rows=LONG)
    signal_mid_epoch(tmp_path, process, 1001, signal.SIGUSR1)
    assert process.wait(timeout=240) == 1
    assert "requeued 10 times (max_requeues=10)" in output(tmp_path, 1001, 10)
    assert (run_dir(tmp_path, 1001) / "checkpoints" / "hpc_ckpt_1.ckpt").is_file()
    assert not (tmp_path / "scontrol.log").exists()
