"""StopOnNonFiniteLoss: a NaN / infinite training loss stops the fit at once, with a clear error, writing no
checkpoint of the broken weights; the nnlit command exits 1, the scikit-learn estimators raise sklearn's ValueError."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from helpers import quiet_trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nnlit.callbacks.non_finite_loss import NonFiniteLossError, StopOnNonFiniteLoss, likely_cause
from nnlit.cli import main


class Plain(L.LightningModule):
    """Any LightningModule (not an nnlit head); its loss turns NaN from epoch ``nan_epoch`` on."""

    def __init__(self, nan_epoch: int = 10**9, lr: float = 0.01) -> None:
        super().__init__()
        self.layer = nn.Linear(3, 1)
        self.nan_epoch = nan_epoch
        self.lr = lr

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self.layer(x).squeeze(1), y)
        if self.current_epoch >= self.nan_epoch:
            loss = loss * float("nan")
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def _loader(x_scale: float = 1.0, nan_inputs: bool = False) -> DataLoader:
    x = torch.randn(64, 3) * x_scale
    if nan_inputs:
        x[5, 1] = float("nan")
    return DataLoader(TensorDataset(x, x.sum(1)), batch_size=16)


def test_a_nan_loss_stops_the_fit_at_its_step_and_keeps_the_good_checkpoint(tmp_path):
    last = ModelCheckpoint(dirpath=tmp_path, filename="last", enable_version_counter=False)
    trainer = quiet_trainer(tmp_path, max_epochs=5, enable_checkpointing=True, callbacks=[StopOnNonFiniteLoss(), last])
    with pytest.raises(NonFiniteLossError, match=r"became nan in epoch 2, by step 12.*writing no checkpoint") as err:
        trainer.fit(Plain(nan_epoch=2), _loader())
    assert (err.value.epoch, err.value.step) == (2, 12)  # read when epoch 2 (4 steps) ends, before any checkpoint
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert saved["epoch"] == 1  # the last good epoch's checkpoint, not replaced
    assert all(torch.isfinite(t).all() for t in saved["state_dict"].values())


def test_an_exploding_learning_rate_is_named_as_the_likely_cause(tmp_path):
    trainer = quiet_trainer(tmp_path, max_epochs=50, callbacks=[StopOnNonFiniteLoss(every_n_steps=1)])
    with pytest.raises(NonFiniteLossError, match=r"learning rate \(SGD lr=10\) is too high: the loss grew"):
        trainer.fit(Plain(lr=10.0), _loader())


def test_nan_inputs_are_named_as_the_likely_cause(tmp_path):
    trainer = quiet_trainer(tmp_path, callbacks=[StopOnNonFiniteLoss(every_n_steps=1)])
    with pytest.raises(NonFiniteLossError, match="the batch holds NaN or infinite inputs"):
        trainer.fit(Plain(), _loader(nan_inputs=True))


def test_a_finite_fit_is_left_alone(tmp_path):
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[StopOnNonFiniteLoss()])
    trainer.fit(Plain(), _loader())
    assert trainer.current_epoch == 2


def test_the_flag_is_read_every_n_steps(tmp_path):
    trainer = quiet_trainer(tmp_path, max_epochs=5, callbacks=[StopOnNonFiniteLoss(every_n_steps=2)])
    with pytest.raises(NonFiniteLossError, match="became nan in epoch 2, by step 10"):  # the 2nd step of epoch 2
        trainer.fit(Plain(nan_epoch=2), _loader())


def test_the_flag_is_read_before_a_checkpoint(tmp_path):
    callback = StopOnNonFiniteLoss(every_n_steps=1000)
    callback._bad = torch.tensor(float("inf"))
    trainer = quiet_trainer(tmp_path)
    with pytest.raises(NonFiniteLossError, match="became inf"):
        callback.on_save_checkpoint(trainer, Plain(), {})


@pytest.mark.parametrize("value", [0, -3, 2.5, None])
def test_every_n_steps_must_be_a_positive_integer(value):
    with pytest.raises(ValueError, match=rf"`every_n_steps` must be a positive integer, got {value}"):
        StopOnNonFiniteLoss(every_n_steps=value)


def test_the_likely_cause_of_a_loss_that_did_not_grow():
    assert likely_cause([0.7, 0.6], inputs_finite=True, learning_rate="Adam lr=0.01").startswith(
        "a learning rate (Adam lr=0.01) too high for this net"
    )


def test_the_heads_stop_by_default_and_the_command_exits_1_naming_the_doctor(tmp_path, capsys):
    args = [
        "fit",
        "--config",
        "quickstart",
        "--model.init_args.optimizer=torch.optim.SGD",
        "--model.init_args.optimizer.init_args.lr=1e6",
        "--trainer.max_epochs=2",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.enable_progress_bar=false",
    ]
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "\nnnlit: error: The training loss became nan in epoch 0" in "\n" + err
    assert "Run `nnlit doctor --config quickstart --model.init_args.optimizer=torch.optim.SGD" in err
    assert not list(Path(tmp_path).rglob("*.ckpt"))


def test_the_estimators_raise_as_sklearns_mlp_does():
    pytest.importorskip("sklearn")
    from nnlit.sklearn import MLPRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    estimator = MLPRegressor(optimizer=torch.optim.SGD, lr=1e6, max_epochs=3, random_state=0)
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights: "):
        estimator.fit(X, X.sum(1))
