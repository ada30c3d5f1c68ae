"""Several minibatches per Lightning step (BatchGroup) train exactly as Lightning's own loop does, one per step."""

from __future__ import annotations

import functools

import lightning as L
import pytest
import torch

from nnlit import MulticlassMLP, RegressionMLP, TabularDataModule
from nnlit.data.loader import BatchGroup

SCHEDULERS = {
    "none": (None, "epoch"),
    "steplr-epoch": (functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.7), "epoch"),
    "steplr-step": (functools.partial(torch.optim.lr_scheduler.StepLR, step_size=5, gamma=0.9), "step"),
    # mode "max" on a falling val/loss: the rate halves after every validation but the first
    "plateau": (
        functools.partial(torch.optim.lr_scheduler.ReduceLROnPlateau, mode="max", factor=0.5, patience=0),
        "epoch",
    ),
}


def _fit(make_trainer, automatic, scheduler="none", **trainer_kwargs):
    torch.manual_seed(0)
    lr_scheduler, interval = SCHEDULERS[scheduler]
    model = RegressionMLP(
        in_features=2,
        hidden=[16],
        optimizer=functools.partial(torch.optim.SGD, lr=0.05, momentum=0.9),
        lr_scheduler=lr_scheduler,
        scheduler_interval=interval,
    )
    if automatic:
        model.automatic_optimization = True
    data = TabularDataModule(dataset="sine", n_samples=500, batch_size=16, batches_per_step=8, seed=0)
    counter = HookCounter()
    options = {"max_epochs": 4, "callbacks": [counter], **trainer_kwargs}
    trainer = make_trainer(**options)
    trainer.fit(model, datamodule=data)
    return model, trainer, counter


class HookCounter(L.Callback):
    def __init__(self):
        self.counts = {"batch_end": 0, "after_backward": 0, "before_optimizer_step": 0}
        self.lrs = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.counts["batch_end"] += 1

    def on_after_backward(self, trainer, pl_module):
        self.counts["after_backward"] += 1

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.counts["before_optimizer_step"] += 1
        self.lrs.append(optimizer.param_groups[0]["lr"])


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
def test_grouped_fit_equals_lightnings_automatic_loop(make_trainer, scheduler):
    grouped, grouped_trainer, grouped_hooks = _fit(make_trainer, automatic=False, scheduler=scheduler)
    plain, plain_trainer, plain_hooks = _fit(make_trainer, automatic=True, scheduler=scheduler)
    assert grouped.takes_batch_groups and not plain.takes_batch_groups
    # 400 training rows: 25 minibatches an epoch, in groups of 8 (4 Lightning batches) or one by one (25)
    assert grouped_hooks.counts == {"batch_end": 4 * 4, "after_backward": 4 * 25, "before_optimizer_step": 4 * 25}
    assert plain_hooks.counts == {"batch_end": 4 * 25, "after_backward": 4 * 25, "before_optimizer_step": 4 * 25}
    assert grouped_trainer.global_step == plain_trainer.global_step == 4 * 25
    assert grouped_hooks.lrs == pytest.approx(plain_hooks.lrs, rel=1e-6)  # the learning rate of every step
    if scheduler != "none":
        assert len(set(grouped_hooks.lrs)) > 1  # the scheduler did act
    for (name, a), b in zip(grouped.state_dict().items(), plain.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    for key in ("train/loss", "val/loss", "val/r2"):
        torch.testing.assert_close(grouped_trainer.callback_metrics[key], plain_trainer.callback_metrics[key])


def test_max_steps_stops_inside_a_group(make_trainer):
    _, trainer, hooks = _fit(make_trainer, automatic=False, max_steps=11)
    assert trainer.global_step == 11 and hooks.counts["before_optimizer_step"] == 11


def test_gradient_clipping_falls_back_to_one_minibatch_per_step(make_trainer):
    model, _, hooks = _fit(make_trainer, automatic=False, gradient_clip_val=0.5, max_epochs=1)
    assert model.automatic_optimization and not model.takes_batch_groups
    assert hooks.counts["batch_end"] == hooks.counts["before_optimizer_step"] == 25


def test_a_subclass_with_its_own_training_step_gets_lightnings_loop(make_trainer):
    class Own(MulticlassMLP):
        def training_step(self, batch, batch_idx):
            assert not isinstance(batch, BatchGroup)
            return super().training_step(batch, batch_idx)

    model = Own(in_features=2, num_classes=2, hidden=[8])
    assert model.automatic_optimization
    data = TabularDataModule(dataset="xor", n_samples=200, batch_size=16)
    make_trainer(max_epochs=1).fit(model, datamodule=data)


def test_other_lightning_modules_get_single_minibatches(make_trainer):
    class Plain(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 2)
            self.batches = 0

        def training_step(self, batch, batch_idx):
            x, y = batch
            self.batches += 1
            return torch.nn.functional.cross_entropy(self.layer(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    model = Plain()
    make_trainer(max_epochs=1, limit_val_batches=0).fit(model, TabularDataModule(dataset="xor", n_samples=200))
    assert model.batches == 3  # 160 training rows in batches of 64


def test_a_batch_group_outside_a_trainer_is_refused():
    model = MulticlassMLP(in_features=2, num_classes=2)
    group = BatchGroup((torch.randn(8, 2), torch.randint(0, 2, (8,))), batch_size=4)
    with pytest.raises(ValueError, match="batches_per_step: 1"):
        model.training_step(group, 0)


def test_bad_batches_per_step():
    with pytest.raises(ValueError, match="batches_per_step"):
        TabularDataModule(dataset="xor", batches_per_step=0)


def test_plateau_steps_only_after_epochs_that_validated(make_trainer):
    # validation after epochs 1, 3, 5 (Lightning's own loop refuses this: no val/loss after epoch 0); the first sets
    # the reference, the second is "worse" (mode max on a falling loss): the rate halves from epoch 4 on
    _, _, hooks = _fit(make_trainer, automatic=False, scheduler="plateau", check_val_every_n_epoch=2, max_epochs=6)
    per_epoch = [hooks.lrs[i * 25 : (i + 1) * 25] for i in range(6)]
    assert [set(lrs) for lrs in per_epoch] == [{0.05}] * 4 + [{0.025}] * 2


class HookNames(RegressionMLP):
    """Records the hook name Lightning sets on the module (MLPModule stores it past nn.Module's attribute checks)."""

    def on_before_backward(self, loss):
        self.seen = [*getattr(self, "seen", []), self._current_fx_name]

    def on_after_backward(self):
        self.seen.append(self._current_fx_name)
        self.log("after_backward_calls", float(len(self.seen)) / 2, reduce_fx="max")


def test_lightning_sees_each_hooks_name_on_the_module(make_trainer):
    model = HookNames(in_features=2, hidden=[4])
    data = TabularDataModule(dataset="sine", n_samples=64, batch_size=16, batches_per_step=2, seed=0)
    trainer = make_trainer(max_epochs=1)
    trainer.fit(model, datamodule=data)
    assert model.seen == ["on_before_backward", "on_after_backward"] * 4  # 64 rows / 16: four minibatches
    assert trainer.callback_metrics["after_backward_calls"] == 4.0  # self.log accepted inside the hook
    assert model._current_fx_name is None  # restored once fit ends


class EpochHooksWithoutSuper(RegressionMLP):
    """A subclass whose epoch hooks do their own thing and never call super()."""

    def on_train_epoch_end(self):
        self.seen = dict(self.trainer.callback_metrics)

    def on_validation_epoch_end(self):
        pass


def test_epoch_metrics_need_no_super_in_a_subclass(make_trainer):
    model = EpochHooksWithoutSuper(in_features=2, hidden=[8])
    trainer = make_trainer(max_epochs=2)
    trainer.fit(model, datamodule=TabularDataModule(dataset="sine", n_samples=200))
    assert {"train/loss", "train/mae", "val/loss", "val/mae"} <= set(trainer.callback_metrics)
    assert "train/loss" in model.seen  # logged before the module's own hook runs


class StepsItsOwnWay(RegressionMLP):
    def lr_scheduler_step(self, scheduler, metric):
        self.stepped = getattr(self, "stepped", 0) + 1
        scheduler.step()


class HalvingEveryEpoch:
    """A scheduler outside torch.optim: Lightning accepts it with an lr_scheduler_step override."""

    def __init__(self, optimizer):
        self.optimizer = optimizer

    def step(self):
        for group in self.optimizer.param_groups:
            group["lr"] /= 2

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


@pytest.mark.parametrize("interval", ["epoch", "step"])
def test_schedulers_step_through_lr_scheduler_step(interval, make_trainer):
    torch.manual_seed(2)  # SGD at lr=1.0 diverges from some initial weights, and a NaN loss stops the fit
    model = StepsItsOwnWay(
        in_features=2,
        hidden=[8],
        optimizer=functools.partial(torch.optim.SGD, lr=1.0),
        lr_scheduler=HalvingEveryEpoch,
        scheduler_interval=interval,
    )
    trainer = make_trainer(max_epochs=3)
    trainer.fit(model, datamodule=TabularDataModule(dataset="sine", n_samples=200, batch_size=16))
    expected = 3 if interval == "epoch" else trainer.global_step
    assert not model.automatic_optimization and model.stepped == expected
    assert trainer.optimizers[0].param_groups[0]["lr"] == 0.5**expected


def test_a_plateau_scheduler_without_its_metric_names_what_was_logged(make_trainer):
    class Watching(RegressionMLP):
        scheduler_monitor = "val/nothing"

    model = Watching(in_features=2, hidden=[8], lr_scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau)
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau monitors 'val/nothing', which was not logged; .*val/loss"):
        make_trainer(max_epochs=1).fit(model, datamodule=TabularDataModule(dataset="sine", n_samples=100))


def test_lightnings_loop_is_chosen_once_with_the_reason(make_trainer, caplog):
    class OwnStep(RegressionMLP):
        def training_step(self, batch, batch_idx):
            return super().training_step(batch, batch_idx)

    with caplog.at_level("INFO"):
        make_trainer(max_epochs=2).fit(OwnStep(in_features=2), datamodule=TabularDataModule(dataset="sine"))
        make_trainer(max_epochs=1, gradient_clip_val=1.0).fit(
            RegressionMLP(in_features=2), datamodule=TabularDataModule(dataset="sine")
        )
    messages = [r.getMessage() for r in caplog.records if "Lightning's loop" in r.getMessage()]
    assert messages == [
        "OwnStep trains one minibatch per Lightning step (Lightning's loop): OwnStep overrides training_step",
        "RegressionMLP trains one minibatch per Lightning step (Lightning's loop): the Trainer clips gradients "
        "(gradient_clip_val=1.0)",
    ]


@pytest.mark.parametrize("returned", ["list", "one"])
def test_a_subclass_with_callbacks_of_its_own_keeps_its_epoch_metrics(returned, make_trainer):
    class OwnCallbacks(RegressionMLP):
        def configure_callbacks(self):
            monitor = L.pytorch.callbacks.EarlyStopping(monitor="val/loss", patience=5)
            return [monitor] if returned == "list" else monitor

    trainer = make_trainer(max_epochs=1)
    trainer.fit(OwnCallbacks(in_features=2), datamodule=TabularDataModule(dataset="sine"))
    assert {"train/loss", "val/loss", "val/mae"} <= set(trainer.callback_metrics)
    assert sum(type(c).__name__ == "EpochMetrics" for c in trainer.callbacks) == 1


def test_a_trainer_kept_from_an_nnlit_fit_trains_another_module(make_trainer):
    from lightning.pytorch.demos.boring_classes import BoringModel

    trainer = make_trainer(max_epochs=1)
    trainer.fit(RegressionMLP(in_features=2), datamodule=TabularDataModule(dataset="sine"))
    trainer.fit_loop.max_epochs = 2
    trainer.fit(BoringModel())  # EpochMetrics stays among the Trainer's callbacks, and leaves this module alone
    assert trainer.current_epoch == 2


def test_the_logged_step_counts_minibatches(make_trainer, tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    data = TabularDataModule(dataset="sine", n_samples=500, batch_size=16, batches_per_step=8)
    trainer = make_trainer(max_epochs=2, logger=CSVLogger(tmp_path), log_every_n_steps=1)
    trainer.fit(RegressionMLP(in_features=2, hidden=[8]), datamodule=data)
    lines = (tmp_path / "lightning_logs/version_0/metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    steps = sorted({int(float(line.split(",")[header.index("step")])) for line in lines[1:]})
    assert trainer.num_training_batches == 4 and trainer.global_step == 2 * 25  # 25 minibatches in 4 groups
    assert steps == [25, 50]


def test_lightnings_own_batch_counts_count_groups(make_trainer):
    """What the batch_groups module says Lightning cannot be told without its private state: limit_train_batches (and
    the other per-step counts of Lightning) count groups of batches_per_step minibatches."""
    data = TabularDataModule(dataset="sine", n_samples=500, batch_size=16, batches_per_step=8)
    trainer = make_trainer(max_epochs=1, limit_train_batches=2)
    trainer.fit(RegressionMLP(in_features=2, hidden=[8]), datamodule=data)
    assert trainer.num_training_batches == 2 and trainer.global_step == 2 * 8


def test_checkpoint_names_count_minibatches_and_never_repeat(make_trainer, tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=1, save_top_k=-1)
    data = TabularDataModule(dataset="sine", n_samples=500, batch_size=16, batches_per_step=8)
    trainer = make_trainer(max_epochs=2, enable_checkpointing=True, callbacks=[saver])
    trainer.fit(RegressionMLP(in_features=2, hidden=[8]), datamodule=data)
    names = sorted(p.name for p in (tmp_path / "ckpt").glob("*.ckpt"))
    expected = [f"epoch={e}-step={s}.ckpt" for e, steps in ((0, (8, 16, 24, 25)), (1, (33, 41, 49, 50))) for s in steps]
    assert names == sorted(expected)
