"""SLURMRequeue in one process: a signal sent to the fit is acted on at the end of that training step (checkpoint,
requeue through a stand-in ``scontrol``, exit), the cap on requeues, SIGTERM, and the handlers given back."""

from __future__ import annotations

import csv
import os
import signal
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from nnlit import MulticlassMLP, TabularDataModule
from nnlit.callbacks import SLURMRequeue
from nnlit.callbacks.requeue import SIGTERM_STATUS, slurm_job_id

FAKES = Path(__file__).resolve().parents[1] / "scripts" / "slurm"


class SignalAt(L.Callback):
    """Sends ``signum`` to this process during batch ``batch`` of epoch 1, and records the step count after it."""

    def __init__(self, signum: int, batch: int) -> None:
        self.signum, self.batch, self.steps_after = signum, batch, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == self.batch:
            os.kill(os.getpid(), self.signum)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == self.batch:
            self.steps_after = trainer.global_step


@pytest.fixture
def slurm_job(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "scontrol").symlink_to(FAKES / "scontrol")  # scontrol alone: an srun makes Lightning warn
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SCONTROL_LOG", str(tmp_path / "scontrol.log"))
    return tmp_path


def fit(root: Path, make_trainer, signum: int, batch: int = 5, **options) -> tuple[SystemExit, int]:
    """A fit signalled mid-epoch: how it exits, and the step count at the end of the step the signal came in."""
    requeue, signaller = SLURMRequeue(**options), SignalAt(signum, batch)
    checkpoints = ModelCheckpoint(dirpath=root / "checkpoints", filename="last", enable_version_counter=False)
    callbacks = [signaller, requeue, checkpoints]
    trainer = make_trainer(max_epochs=3, callbacks=callbacks, enable_checkpointing=True)
    before = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGTERM)}
    with pytest.raises(SystemExit) as stopped:
        data = TabularDataModule(dataset="xor", batch_size=64, batches_per_step=1)  # 11 steps an epoch
        trainer.fit(MulticlassMLP(in_features=2, num_classes=2, hidden=[8]), datamodule=data)
    assert {s: signal.getsignal(s) for s in before} == before  # the handlers given back
    assert signaller.steps_after is not None
    return stopped.value, signaller.steps_after


def saved_step(root: Path) -> int:
    return torch.load(root / "checkpoints" / "hpc_ckpt_1.ckpt", weights_only=False)["global_step"]


def test_sigusr1_saves_at_the_end_of_the_step_and_requeues(slurm_job, make_trainer):
    stopped, steps = fit(slurm_job, make_trainer, signal.SIGUSR1)
    assert stopped.code == 0
    assert saved_step(slurm_job) == steps  # the signal's step finished, nothing after it
    assert (slurm_job / "scontrol.log").read_text() == "requeue 4242\n"


def test_sigterm_saves_and_stops_without_requeueing(slurm_job, make_trainer):
    stopped, steps = fit(slurm_job, make_trainer, signal.SIGTERM)
    assert stopped.code == SIGTERM_STATUS and saved_step(slurm_job) == steps
    assert not (slurm_job / "scontrol.log").exists()


def test_past_the_cap_the_job_saves_and_is_not_requeued(slurm_job, make_trainer, monkeypatch):
    monkeypatch.setenv("SLURM_RESTART_COUNT", "2")
    with pytest.warns(UserWarning, match=r"requeued 2 times \(max_requeues=2\): not requeued again"):
        stopped, steps = fit(slurm_job, make_trainer, signal.SIGUSR1, max_requeues=2)
    assert stopped.code == 1 and saved_step(slurm_job) == steps
    assert not (slurm_job / "scontrol.log").exists()


def test_an_older_hpc_checkpoint_is_removed_by_the_next_save(slurm_job, make_trainer):
    (slurm_job / "checkpoints").mkdir()
    fit(slurm_job, make_trainer, signal.SIGUSR1, batch=2)
    fit(slurm_job, make_trainer, signal.SIGUSR1, batch=4)  # a second requeue's save (from scratch: enough here)
    assert sorted(p.name for p in (slurm_job / "checkpoints").glob("hpc_ckpt_*")) == ["hpc_ckpt_2.ckpt"]


def test_an_array_task_is_requeued_by_its_array_id(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "900")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert slurm_job_id() == "77_3"
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77; rm -rf /")
    with pytest.raises(ValueError, match=r"SLURM_JOB_ID / SLURM_ARRAY_JOB_ID do not name a job: got '77; rm -rf /_3'"):
        slurm_job_id()


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"max_requeues": -1}, r"`max_requeues` must be an integer >= 0, got -1"),
        ({"max_requeues": True}, r"`max_requeues` must be an integer >= 0, got True"),
        ({"requeue_signal": "SIGINT"}, r"`requeue_signal` must be one of SIGUSR1, SIGUSR2, got 'SIGINT'"),
    ],
)
def test_bad_arguments_are_named(options, match):
    with pytest.raises(ValueError, match=match):
        SLURMRequeue(**options)


def tensorboard_scalars(folder: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of every ``tag`` scalar in the event files of ``folder``, read record by record."""
    import struct

    from tensorboardX.proto import event_pb2

    found = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 12 + length + 4  # length, its crc, the record, its crc
            found += [(event.step, v.simple_value) for v in event.summary.value if v.tag == tag]
    return found


def test_a_requeued_fit_logs_every_epoch_once_in_the_csv_file_and_in_tensorboard(slurm_job, make_trainer):
    pytest.importorskip("tensorboardX")
    from lightning.pytorch.loggers import TensorBoardLogger

    from nnlit.loggers import ResumableCSVLogger

    def trainer(signaller=None):
        loggers = [ResumableCSVLogger(slurm_job, version="job"), TensorBoardLogger(slurm_job, version="job")]
        checkpoints = ModelCheckpoint(filename="last", enable_version_counter=False)
        callbacks = [c for c in (signaller, SLURMRequeue(), checkpoints) if c is not None]
        return make_trainer(max_epochs=3, logger=loggers, callbacks=callbacks, enable_checkpointing=True)

    data = dict(dataset="xor", batch_size=64, batches_per_step=1)
    with pytest.raises(SystemExit):
        trainer(SignalAt(signal.SIGUSR1, 5)).fit(
            MulticlassMLP(in_features=2, num_classes=2, hidden=[8]), datamodule=TabularDataModule(**data)
        )
    folder = slurm_job / "lightning_logs" / "job"
    # TensorBoard names an event file by the second and the host: a requeued job starts later, in a new process; two
    # fits within one second of one process would share a file name, which no requeue does
    time.sleep(1.0 - time.time() % 1.0 + 0.05)
    resumed = trainer()  # the requeued job: the same run's folder, resumed from the requeue's checkpoint
    resumed.fit(
        MulticlassMLP(in_features=2, num_classes=2, hidden=[8]),
        datamodule=TabularDataModule(**data),
        ckpt_path=folder / "checkpoints" / "hpc_ckpt_1.ckpt",
    )
    with (folder / "metrics.csv").open() as file:
        assert [row["epoch"] for row in csv.DictReader(file) if row["val/loss"]] == ["0", "1", "2"]
    steps = [step for step, _ in tensorboard_scalars(folder, "val/loss")]
    assert len(steps) == 3 and len(set(steps)) == 3, steps
    assert not list((folder / "checkpoints").glob("hpc_ckpt_*"))
