"""configs/cluster/tune.sbatch run as a SLURM array would run it, on this machine: tasks started together on a fresh
storage, a task killed (SIGKILL) or stopped (SIGTERM) mid-trial, and the --finish step that reruns what they left and
writes the one best.yaml."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from nnlit.tune import storage as tune_storage  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # sweeps in fresh processes

ROOT = Path(__file__).resolve().parents[1]
SBATCH = ROOT / "configs" / "cluster" / "tune.sbatch"
FAKES = ROOT / "tests" / "scripts" / "slurm"
SEARCH = """
model.init_args.hidden: {choices: [[8], [16, 16]]}
model.init_args.optimizer.init_args.lr: {low: 1.0e-3, high: 0.1, log: true}
"""
#: epochs of a trial that a signal should find still running (300 rows: about 6 s on an idle machine; the signal comes
#: 1.5 s after its fit starts)
LONG = 600
SMALL = ["--config", "quickstart", "--data.init_args.n_samples=300", "--trainer.accelerator=cpu", "--threads=1"]


def task(tmp_path: Path, index: int, *args: str, epochs: int = 2) -> subprocess.Popen:
    """``bash tune.sbatch ARGS`` as array task ``index`` of job 77, started in ``tmp_path``, not waited for."""
    env = {
        **os.environ,
        "PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "NNLIT_PYTHON": sys.executable,
        "SLURM_JOB_ID": str(100 + index),
        "SLURM_ARRAY_JOB_ID": "77",
        "SLURM_ARRAY_TASK_ID": str(index),
    }
    log = (tmp_path / f"task{index}.out").open("a")
    command = ["bash", str(SBATCH), *SMALL, f"--trainer.max_epochs={epochs}", "--heartbeat", "2", *args]
    return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)


def study(tmp_path: Path):
    storage = tune_storage.open_storage(f"journal:{tmp_path / 'runs' / 'tune' / 'quickstart.journal'}", tmp_path)
    return optuna.load_study(study_name="quickstart", storage=storage)


def results(tmp_path: Path) -> list:
    return [t for t in study(tmp_path).trials if not tune_storage.surplus(t)]


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "search.yaml").write_text(SEARCH)
    return tmp_path


def test_tasks_started_together_share_one_study_and_run_exactly_the_trials(folder):
    tasks = [task(folder, index, "--trials", "5") for index in range(3)]  # all create the study at once
    codes = [t.wait(timeout=600) for t in tasks]
    assert codes == [0, 0, 0], [(folder / f"task{i}.out").read_text()[-2000:] for i in range(3)]
    finished = [t for t in results(folder) if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 5 and len(results(folder)) == 5
    assert not list(folder.glob("runs/tune/**/best.yaml"))  # the tasks write none
    final = task(folder, 0, "--trials", "5", "--finish")
    assert final.wait(timeout=600) == 0
    assert [p.relative_to(folder).as_posix() for p in folder.glob("runs/**/best.yaml")] == ["runs/tune/best.yaml"]
    assert len(results(folder)) == 5  # nothing was missing: nothing rerun


def _wait_for_a_running_trial(folder: Path, process: subprocess.Popen, index: int) -> None:
    deadline = time.monotonic() + 240
    # the trial's log folder: its fit has started (not its last.ckpt: the quick start writes the first one 2 s into a
    # fit or at its end)
    while not list(folder.glob("runs/tune/trials/trial_*/lightning_logs/*")):
        assert process.poll() is None, (folder / f"task{index}.out").read_text()[-3000:]
        assert time.monotonic() < deadline, "no trial started"
        time.sleep(0.1)
    time.sleep(1.5)  # a heartbeat or two recorded


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_or_stopped_tasks_trial_is_run_again_by_the_last_step(folder, signum):
    # a trial long enough to be signalled mid-fit; the last step trains with the same settings, as a study requires
    process = task(folder, 0, "--trials", "2", epochs=LONG)
    _wait_for_a_running_trial(folder, process, 0)
    os.kill(_python(process.pid), signum)
    process.wait(timeout=120)
    stopped = next(t for t in results(folder) if t.number == 0)
    # SIGKILL leaves the trial running (its heartbeat stops); SIGTERM gives it up and queues it again at once
    assert stopped.state.name == ("RUNNING" if signum == signal.SIGKILL else "FAIL")
    final = task(folder, 0, "--trials", "2", "--finish", epochs=LONG)
    assert final.wait(timeout=600) == 0, (folder / "task0.out").read_text()[-3000:]
    trials = results(folder)
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert [t.number for t in failed] == [0]
    rerun = [t for t in trials if t.system_attrs.get("failed_trial") == 0]
    assert len(rerun) == 1 and rerun[0].state.name == "COMPLETE" and rerun[0].params == failed[0].params
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials) == 2
    assert (folder / "runs" / "tune" / "best.yaml").is_file()


def _python(bash_pid: int) -> int:
    """The nnlit process the batch script started (SLURM signals the job's processes; bash would wait for it)."""
    pid = bash_pid
    for _ in range(3):  # bash -> nnlit wrapper exec'd into python
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if not children:
            return pid
        pid = int(children[0])
    return pid


def test_workers_creating_a_fresh_sqlite_study_at_once_all_open_it(tmp_path):
    """Optuna #1092: RDBStorage creates its tables on first use; ten workers doing it at the same moment made one fail
    with "UNIQUE constraint failed: alembic_version" in 2 of 3 tries before nnlit retried."""
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from nnlit.tune import storage as tune_storage\n"
        "folder = Path(sys.argv[1])\n"
        "(folder / f'ready{sys.argv[2]}').touch()\n"
        "while not (folder / 'go').exists(): time.sleep(0.001)\n"
        "tune_storage.create_or_load_study(f'sqlite:///{folder}/s.db', folder, 's', 'minimize', None, None)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path), str(i)], env=env, stderr=subprocess.PIPE, text=True
        )
        for i in range(8)
    ]
    deadline = time.monotonic() + 600
    while len(list(tmp_path.glob("ready*"))) < len(workers) and time.monotonic() < deadline:
        time.sleep(0.1)  # every process imported and waiting
    (tmp_path / "go").touch()
    errors = [w.communicate(timeout=600)[1] for w in workers]
    assert [w.returncode for w in workers] == [0] * len(workers), [e[-500:] for e in errors if e]
    assert optuna.get_all_study_names(f"sqlite:///{tmp_path}/s.db") == ["s"]
