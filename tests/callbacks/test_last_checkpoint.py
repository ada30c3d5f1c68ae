"""LastCheckpoint: last.ckpt written by the clock and at the last epoch; a run killed between two writes resumes
from it, losing at most ``every_s`` seconds and one epoch; the best checkpoint and the loggers keep every epoch."""

from __future__ import annotations

import csv
import itertools
import signal
from pathlib import Path

import lightning as L
import pytest
import torch
from helpers import quiet_trainer, run_python
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from nnlit import MulticlassMLP, TabularDataModule
from nnlit.callbacks import LastCheckpoint
from nnlit.loggers import ResumableCSVLogger

SCRIPT = Path(__file__).parents[1] / "scripts" / "clocked_fit.py"


def small_fit(root: Path, callbacks: list[L.Callback], epochs: int = 6, **trainer: object) -> L.Trainer:
    L.seed_everything(0)
    model = MulticlassMLP(in_features=2, num_classes=3, hidden=[8])
    data = TabularDataModule(dataset="spiral", n_classes=3, n_samples=120, batch_size=32, seed=0)
    options = {"enable_checkpointing": True, "num_sanity_val_steps": 0, **trainer}
    fit = quiet_trainer(root, max_epochs=epochs, callbacks=callbacks, **options)
    fit.fit(model, datamodule=data)
    return fit


def saved_epoch(path: Path) -> int:
    return torch.load(path, weights_only=False)["epoch"]


class FileEpochs(L.Callback):
    """The epoch in last.ckpt as each epoch starts (None while there is no file)."""

    def __init__(self, path: Path) -> None:
        self.path, self.seen = path, []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seen.append(saved_epoch(self.path) if self.path.exists() else None)


@pytest.mark.parametrize("every_s", [-1, float("nan"), float("inf"), "2", True])
def test_every_s_must_be_a_finite_number_of_seconds(every_s):
    with pytest.raises(ValueError, match=r"`every_s` must be a finite number of seconds >= 0, got"):
        LastCheckpoint(every_s=every_s)


def test_written_every_epoch_with_every_s_0(tmp_path):
    seen = FileEpochs(tmp_path / "last.ckpt")
    small_fit(tmp_path, [LastCheckpoint(dirpath=tmp_path, every_s=0), seen], epochs=4)
    assert seen.seen == [None, 0, 1, 2]
    assert saved_epoch(tmp_path / "last.ckpt") == 3


def test_written_at_the_last_epoch_before_the_clock_runs_out(tmp_path):
    seen = FileEpochs(tmp_path / "last.ckpt")
    small_fit(tmp_path, [LastCheckpoint(dirpath=tmp_path, every_s=3600), seen], epochs=4)
    assert seen.seen == [None, None, None, None]  # no epoch's end but the last one wrote it
    assert saved_epoch(tmp_path / "last.ckpt") == 3


def test_written_at_the_epoch_early_stopping_ends(tmp_path):
    stop = EarlyStopping(monitor="val/loss", patience=0, min_delta=10.0)  # stops after the second epoch
    small_fit(tmp_path, [stop, LastCheckpoint(dirpath=tmp_path, every_s=3600)], epochs=50)
    assert stop.stopped_epoch == 1
    assert saved_epoch(tmp_path / "last.ckpt") == 1


def test_written_when_max_steps_ends_the_fit(tmp_path):
    steps = small_fit(tmp_path / "count", [], epochs=1).global_step  # the optimizer steps of one epoch
    small_fit(tmp_path, [LastCheckpoint(dirpath=tmp_path, every_s=3600)], epochs=50, max_steps=2 * steps + 1)
    assert saved_epoch(tmp_path / "last.ckpt") == 2  # the fit ends one step into its third epoch


def test_best_checkpoint_is_the_epoch_with_the_best_monitored_value(tmp_path):
    best = ModelCheckpoint(dirpath=tmp_path, filename="best", monitor="val/loss", mode="min")
    logger = ResumableCSVLogger(tmp_path, name="", version="run")
    trainer = small_fit(tmp_path, [best, LastCheckpoint(dirpath=tmp_path, every_s=3600)], epochs=12, logger=logger)
    rows = [row for row in csv.DictReader(open(tmp_path / "run" / "metrics.csv")) if row["val/loss"]]
    logged = {int(row["epoch"]): float(row["val/loss"]) for row in rows}
    lowest = min(logged, key=logged.__getitem__)
    assert saved_epoch(tmp_path / "best.ckpt") == lowest
    data = TabularDataModule(dataset="spiral", n_classes=3, n_samples=120, batch_size=32, seed=0)
    (validated,) = trainer.validate(datamodule=data, ckpt_path="best", verbose=False)
    assert validated["val/loss"] == pytest.approx(logged[lowest], abs=1e-6)


def test_the_csv_logger_holds_every_epoch_of_a_fit_shorter_than_its_saving_clock(tmp_path):
    logger = ResumableCSVLogger(tmp_path, name="", version="run")
    small_fit(tmp_path, [LastCheckpoint(dirpath=tmp_path)], epochs=7, logger=logger)
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert sorted(int(row["epoch"]) for row in rows if row["train/loss"]) == list(range(7))
    assert sorted(int(row["epoch"]) for row in rows if row["val/loss"]) == list(range(7))


def test_tensorboard_holds_every_epoch(tmp_path):
    pytest.importorskip("tensorboard")
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path, name="", version="run")
    small_fit(tmp_path, [LastCheckpoint(dirpath=tmp_path)], epochs=7, logger=logger)
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    for tag in ("train/loss", "val/loss", "val/acc"):
        assert len(events.Scalars(tag)) == 7, tag


@pytest.mark.slow
@pytest.mark.integration
def test_a_run_killed_between_two_writes_resumes_within_the_window(tmp_path):
    every_s, epochs = 1.0, 40
    killed = run_python(SCRIPT, tmp_path, f"--every-s={every_s}", f"--max-epochs={epochs}", "--kill-after=3", ok=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    lines = [line.split() for line in (tmp_path / "epochs.txt").read_text().splitlines()]
    ends = [(int(epoch), float(at)) for what, epoch, at in lines if what == "end"]
    saves = [int(epoch) for what, epoch, _ in lines if what == "save"]
    assert len(saves) == 1, lines  # one clock-driven save, then three epochs that no save followed
    save_epoch, (last_epoch, killed_at) = saves[0], ends[-1]
    assert saved_epoch(tmp_path / "checkpoints" / "last.ckpt") == save_epoch == last_epoch - 3  # fell between writes
    durations = [b[1] - a[1] for a, b in itertools.pairwise(ends)]
    save_at = dict(ends)[save_epoch]
    assert killed_at - save_at <= every_s + max(durations)  # the stated window: every_s and one epoch at most
    assert save_at - ends[0][1] >= every_s - max(durations)  # the save came by the clock, not at every epoch

    run_python(SCRIPT, tmp_path, f"--every-s={every_s}", f"--max-epochs={epochs}", "--resume")
    lines = (tmp_path / "epochs.txt").read_text().splitlines()[len(lines) :]
    resumed = [int(line.split()[1]) for line in lines if line.startswith("end")]
    assert resumed == list(range(save_epoch + 1, epochs))  # continues with the epoch after the saved one
    assert saved_epoch(tmp_path / "checkpoints" / "last.ckpt") == epochs - 1
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    for metric in ("train/loss", "val/loss"):  # every epoch once: those before the save, those after the resume
        assert sorted(int(row["epoch"]) for row in rows if row[metric]) == list(range(epochs)), metric
