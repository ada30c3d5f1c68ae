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
