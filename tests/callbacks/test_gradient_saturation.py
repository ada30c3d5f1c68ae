import warnings

import lightning as L
import pytest
import torch
from torch import nn

from nnlit import BinaryMLP, RegressionMLP, TabularDataModule
from nnlit.callbacks import GradientSaturationMonitor
from nnlit.callbacks.gradient_saturation import SIGMOID_EPS, SOFTSIGN_LIMIT, saturated
from nnlit.data import TensorBatchLoader


class Foreign(L.LightningModule):
    """A user's own module: tanh then sigmoid layers, frozen by lr 0 so every epoch sees the same outputs."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer1 = nn.Linear(3, 8)
        self.tanh = nn.Tanh()
        self.layer2 = nn.Linear(8, 4)
        self.sigmoid = nn.Sigmoid()
        self.head = nn.Linear(4, 1)
        with torch.no_grad():
            self.layer1.weight.mul_(4.0)  # push some tanh outputs into saturation

    def forward(self, x):
        return self.head(self.sigmoid(self.layer2(self.tanh(self.layer1(x)))))

    def training_step(self, batch, batch_idx):
        return nn.functional.mse_loss(self(batch[0]).view(-1), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


X = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
Y = torch.randn(64, generator=torch.Generator().manual_seed(2))


def test_saturation_and_gradient_norms_match_a_direct_computation(make_trainer):
    model = Foreign()
    monitor = GradientSaturationMonitor(saturation_threshold=1.0)
    make_trainer(max_epochs=2, callbacks=[monitor]).fit(model, train_dataloaders=TensorBatchLoader([X, Y], 16))

    h1 = torch.tanh(model.layer1(X))
    h2 = torch.sigmoid(model.layer2(h1))
    expected_tanh = (h1.abs() > 0.97).float().mean().item()
    expected_sigmoid = ((h2 < 0.015) | (h2 > 0.985)).float().mean().item()
    assert expected_tanh > 0.1  # the check is not vacuous
    norms = {"layer1": [], "layer2": [], "head": []}
    for start in range(0, 64, 16):  # the same four minibatches, gradients by hand
        model.zero_grad()
        nn.functional.mse_loss(model(X[start : start + 16]).view(-1), Y[start : start + 16]).backward()
        for name in norms:
            norms[name].append(getattr(model, name).weight.grad.norm().item())
    expected_norms = {name: sum(v) / len(v) for name, v in norms.items()}

    for epoch in monitor.history:
        assert epoch["saturation"]["tanh"] == pytest.approx(expected_tanh)
        assert epoch["saturation"]["sigmoid"] == pytest.approx(expected_sigmoid)
        assert epoch["grad_norm"] == pytest.approx(expected_norms, rel=1e-5)
        assert epoch["ratio"] == pytest.approx(expected_norms["layer1"] / expected_norms["head"], rel=1e-5)


def test_logged_keys(make_trainer):
    trainer = make_trainer(callbacks=[GradientSaturationMonitor(saturation_threshold=1.0)])
    trainer.fit(Foreign(), train_dataloaders=TensorBatchLoader([X, Y], 16))
    assert {"saturation/tanh", "saturation/sigmoid", "grad_norm/layer1", "grad_norm/first_last_ratio"} <= set(
        trainer.callback_metrics
    )


def deep_net(activation):
    """The lesson: 7 Linear layers; with sigmoid, every weight set to a constant multiplier."""
    model = RegressionMLP(in_features=2, hidden=[10] * 6, activation=activation)
    if activation == "sigmoid":
        for module in model.network:
            if isinstance(module, nn.Linear):
                nn.init.constant_(module.weight, 0.1)
                nn.init.zeros_(module.bias)
    return model


def test_vanishing_gradients_lesson(make_trainer):
    data = TabularDataModule(dataset="plane", n_samples=256)
    monitor = GradientSaturationMonitor()
    with pytest.warns(UserWarning, match=r"gradient of network.linear1 is .* of the gradient of network.output"):
        make_trainer(callbacks=[monitor]).fit(deep_net("sigmoid"), datamodule=data)
    assert monitor.history[-1]["ratio"] < 1e-3
    assert len(monitor.advice) == 1 and "vanishing gradients" in monitor.advice[0]

    monitor = GradientSaturationMonitor()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_trainer(callbacks=[monitor]).fit(deep_net("relu"), datamodule=data)
    assert monitor.history[-1]["ratio"] > 1e-3
    assert not [w for w in caught if "vanishing gradients" in str(w.message)]
    assert monitor.advice == []


def test_saturation_warning(make_trainer):
    monitor = GradientSaturationMonitor(saturation_threshold=0.01)
    with pytest.warns(UserWarning, match=r"of the outputs of tanh are saturated"):
        make_trainer(callbacks=[monitor]).fit(Foreign(), train_dataloaders=TensorBatchLoader([X, Y], 16))
    assert [m for m in monitor.advice if "of the outputs of tanh are saturated" in m] == monitor.advice != []
    other = GradientSaturationMonitor()
    other.load_state_dict(monitor.state_dict())
    assert other.advice == monitor.advice


@pytest.mark.parametrize(
    ("module", "values", "expected"),
    [
        (nn.Tanh(), [0.969, 0.971, -0.98], [False, True, True]),
        (nn.Sigmoid(), [SIGMOID_EPS - 1e-4, 0.5, 1 - SIGMOID_EPS + 1e-4], [True, False, True]),
        (nn.Softsign(), [SOFTSIGN_LIMIT - 1e-3, -(SOFTSIGN_LIMIT + 1e-3)], [False, True]),
        (nn.Hardtanh(), [-1.0, 0.3, 1.0], [True, False, True]),
    ],
)
def test_saturation_rules(module, values, expected):
    assert saturated(module, torch.tensor(values)).tolist() == expected


def test_sigmoid_and_tanh_rules_cover_the_same_preactivations():
    x = torch.linspace(-8, 8, 10001)
    assert torch.equal(saturated(nn.Sigmoid(), torch.sigmoid(x)), saturated(nn.Tanh(), torch.tanh(x / 2)))


def test_relu_only_model_has_no_saturation_but_has_gradients(make_trainer):
    monitor = GradientSaturationMonitor()
    model = RegressionMLP(in_features=2, hidden=[8])
    make_trainer(callbacks=[monitor]).fit(model, datamodule=TabularDataModule(dataset="plane", n_samples=64))
    assert monitor.history[-1]["saturation"] == {}
    assert set(monitor.history[-1]["grad_norm"]) == {"network.linear1", "network.output"}


def test_hooks_removed_and_state_round_trip(make_trainer):
    model = Foreign()
    monitor = GradientSaturationMonitor(saturation_threshold=1.0)
    make_trainer(callbacks=[monitor]).fit(model, train_dataloaders=TensorBatchLoader([X, Y], 16))
    assert all(not m._forward_hooks for m in model.modules())
    other = GradientSaturationMonitor()
    other.load_state_dict(monitor.state_dict())
    assert other.history == monitor.history


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ratio_threshold": 0.0}, "`ratio_threshold` must be > 0, got 0.0"),
        ({"saturation_threshold": 1.5}, r"`saturation_threshold` must be in \(0, 1\], got 1.5"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GradientSaturationMonitor(**kwargs)


def started_with_unit_gradients():
    """A monitor started on a Foreign model whose every gradient is ones, outside a Trainer."""
    model = Foreign()
    monitor = GradientSaturationMonitor()
    monitor.on_fit_start(None, model)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    return model, monitor


def test_only_the_stepped_optimizers_weights_are_read():
    model, monitor = started_with_unit_gradients()
    head_only = torch.optim.SGD(model.head.parameters(), lr=0.1)
    monitor.on_before_optimizer_step(None, model, head_only)
    assert monitor.mean_grad_norms() == {"head": pytest.approx(2.0)}  # 4 ones: norm 2
    monitor.teardown(None, model, "fit")


def test_a_parameter_group_added_mid_fit_is_read_from_the_next_step():
    """FreezeLayers gives unfrozen layers back as a new parameter group: the weights read per step follow."""
    model, monitor = started_with_unit_gradients()
    optimizer = torch.optim.SGD(model.head.parameters(), lr=0.1)
    monitor.on_before_optimizer_step(None, model, optimizer)
    model.head.weight.grad = torch.full_like(model.head.weight, 3.0)
    optimizer.add_param_group({"params": list(model.layer1.parameters())})
    monitor.on_before_optimizer_step(None, model, optimizer)
    norms = monitor.mean_grad_norms()
    assert norms == {"layer1": pytest.approx(24**0.5), "head": pytest.approx((2.0 + 6.0) / 2)}
    monitor.teardown(None, model, "fit")


def test_no_ratio_while_the_first_layer_is_frozen(make_trainer):
    from nnlit.callbacks import FreezeLayers

    monitor = GradientSaturationMonitor()
    trainer = make_trainer(callbacks=[FreezeLayers(first_n=1), monitor])
    trainer.fit(deep_net("relu"), datamodule=TabularDataModule(dataset="plane", n_samples=64))
    assert monitor.history[-1]["ratio"] is None and "grad_norm/first_last_ratio" not in trainer.callback_metrics
    assert "network.linear1" not in monitor.history[-1]["grad_norm"]


def test_long_epochs_read_evenly_spaced_steps(make_trainer):
    """16 steps per epoch with grad_norm_steps=2: the first epoch thins its readings to steps 0 and 8 (stride 8);
    the second starts at that stride. Each epoch's mean is the mean of the norms at exactly those steps."""
    model = Foreign()  # lr 0: every epoch sees the same gradients
    monitor = GradientSaturationMonitor(grad_norm_steps=2)
    make_trainer(max_epochs=2, callbacks=[monitor]).fit(model, train_dataloaders=TensorBatchLoader([X, Y], 4))
    norms = {"layer1": [], "layer2": [], "head": []}
    for start in range(0, 64, 4):
        model.zero_grad()
        nn.functional.mse_loss(model(X[start : start + 4]).view(-1), Y[start : start + 4]).backward()
        for name in norms:
            norms[name].append(getattr(model, name).weight.grad.norm().item())
    read = {name: (v[0] + v[8]) / 2 for name, v in norms.items()}
    every = {name: sum(v) / len(v) for name, v in norms.items()}
    assert read["layer1"] != pytest.approx(every["layer1"], rel=1e-3)  # the two rules give different numbers
    for epoch in monitor.history:
        assert epoch["grad_norm"] == pytest.approx(read, rel=1e-5)
    monitor_all = GradientSaturationMonitor(grad_norm_steps=None)
    make_trainer(max_epochs=1, callbacks=[monitor_all]).fit(model, train_dataloaders=TensorBatchLoader([X, Y], 4))
    assert monitor_all.history[-1]["grad_norm"] == pytest.approx(every, rel=1e-5)


class WithValidation(Foreign):
    def validation_step(self, batch, batch_idx):
        self(batch[0] * 100.0)  # saturates everything: must not be counted


def test_saturation_counts_training_batches_after_a_mid_epoch_validation(make_trainer):
    model = WithValidation()
    monitor = GradientSaturationMonitor(saturation_threshold=1.0)
    trainer = make_trainer(max_epochs=1, callbacks=[monitor], val_check_interval=1, num_sanity_val_steps=0)
    trainer.fit(model, train_dataloaders=TensorBatchLoader([X, Y], 16), val_dataloaders=TensorBatchLoader([X, Y], 64))
    h1 = torch.tanh(model.layer1(X))
    expected, first_batch = (h1.abs() > 0.97).float().mean().item(), (h1[:16].abs() > 0.97).float().mean().item()
    assert expected != pytest.approx(first_batch)
    assert monitor.history[-1]["saturation"]["tanh"] == pytest.approx(expected)


@pytest.mark.parametrize("steps", [0, -1, 1.5, True])
def test_bad_grad_norm_steps(steps):
    with pytest.raises(ValueError, match="`grad_norm_steps` must be a positive integer or None"):
        GradientSaturationMonitor(grad_norm_steps=steps)


class TwoOptimizers(L.LightningModule):
    """Manual optimization with one optimizer per layer, both stepped after each backward (lr 0: fixed weights)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(4, 1)
        self.automatic_optimization = False

    def forward(self, x):
        return self.b(self.a(x))

    def training_step(self, batch, batch_idx):
        opt_a, opt_b = self.optimizers()
        opt_a.zero_grad()
        opt_b.zero_grad()
        self.manual_backward(nn.functional.mse_loss(self(batch[0]).view(-1), batch[1]))
        opt_a.step()
        opt_b.step()

    def configure_optimizers(self):
        return torch.optim.SGD(self.a.parameters(), lr=0.0), torch.optim.SGD(self.b.parameters(), lr=0.0)


def test_each_optimizer_is_sampled_on_its_own_steps(make_trainer):
    """Two optimizers stepping alternately: each one's readings are its own steps 0, 16, 32 (grad_norm_steps=2, 40
    steps each), not every other step of the two together (which would read only the first optimizer)."""
    x, y = torch.randn(80, 3, generator=torch.Generator().manual_seed(3)), torch.randn(80)
    model = TwoOptimizers()
    monitor = GradientSaturationMonitor(grad_norm_steps=2)
    make_trainer(callbacks=[monitor]).fit(model, train_dataloaders=TensorBatchLoader([x, y], 2))
    expected = {"a": 0.0, "b": 0.0}
    for k in (0, 16, 32):
        model.zero_grad()
        nn.functional.mse_loss(model(x[2 * k : 2 * k + 2]).view(-1), y[2 * k : 2 * k + 2]).backward()
        for name in expected:
            expected[name] += getattr(model, name).weight.grad.norm().item() / 3
    assert monitor.history[-1]["grad_norm"] == pytest.approx(expected, rel=1e-5)


def test_a_second_fit_starts_reading_every_step_again(make_trainer):
    model = Foreign()
    monitor = GradientSaturationMonitor(grad_norm_steps=2)
    make_trainer(callbacks=[monitor]).fit(model, train_dataloaders=TensorBatchLoader([X, Y], 4))  # 16 steps
    make_trainer(callbacks=[monitor]).fit(model, train_dataloaders=TensorBatchLoader([X[:12], Y[:12]], 4))
    every = GradientSaturationMonitor(grad_norm_steps=None)
    make_trainer(callbacks=[every]).fit(model, train_dataloaders=TensorBatchLoader([X[:12], Y[:12]], 4))
    assert monitor.history[-1]["grad_norm"] == pytest.approx(every.history[-1]["grad_norm"], rel=1e-6)


class RecordsBatches(L.Callback):
    def __init__(self):
        self.inputs = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.inputs.append(batch[0])


def test_a_run_resumed_mid_epoch_counts_the_rest_of_its_epoch(make_trainer, tmp_path):
    """Lightning resumes a mid-epoch checkpoint without `on_train_epoch_start`; the monitor still counts."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    first = make_trainer(
        max_steps=2, enable_checkpointing=True, callbacks=[ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=2)]
    )
    first.fit(Foreign(), train_dataloaders=TensorBatchLoader([X, Y], 16))
    monitor, seen = GradientSaturationMonitor(saturation_threshold=1.0), RecordsBatches()
    model = Foreign()
    make_trainer(callbacks=[monitor, seen]).fit(
        model, train_dataloaders=TensorBatchLoader([X, Y], 16), ckpt_path=str(next(tmp_path.glob("*.ckpt")))
    )
    assert seen.inputs  # the resumed epoch ran batches
    h1 = torch.tanh(model.layer1(torch.cat(seen.inputs)))  # lr 0: the resumed weights are the initial ones
    assert monitor.history[-1]["saturation"]["tanh"] == pytest.approx((h1.abs() > 0.97).float().mean().item())


class SaturatesAfterValidation(L.Callback):
    def on_validation_end(self, trainer, pl_module):
        pl_module(X * 100.0)  # another callback's use of the model (a plot, say): not a training batch


def test_forward_calls_of_other_callbacks_after_validation_are_not_counted(make_trainer):
    model = WithValidation()
    monitor = GradientSaturationMonitor(saturation_threshold=1.0)
    trainer = make_trainer(callbacks=[monitor, SaturatesAfterValidation()], num_sanity_val_steps=0)
    trainer.fit(model, train_dataloaders=TensorBatchLoader([X, Y], 16), val_dataloaders=TensorBatchLoader([X, Y], 64))
    expected = (torch.tanh(model.layer1(X)).abs() > 0.97).float().mean().item()
    assert monitor.history[-1]["saturation"]["tanh"] == pytest.approx(expected)


def test_on_a_relu_net_the_advice_names_dead_units_not_saturation(make_trainer):
    from nnlit.callbacks import NegativeInit

    data = TabularDataModule(dataset="plane", n_samples=256)
    monitor = GradientSaturationMonitor()
    model = RegressionMLP(in_features=2, hidden=[16, 16, 16], activation="relu")
    with pytest.warns(UserWarning, match=r"gradient of network.linear1 is 0.0e\+00 .* Likely cause: dead ReLU units"):
        make_trainer(callbacks=[NegativeInit(modules=["network.linear2"]), monitor]).fit(model, datamodule=data)
    assert len(monitor.advice) == 1 and "instead of sigmoid" not in monitor.advice[0]


@pytest.mark.parametrize("constant", [False, True])
def test_vanishing_advice_proposes_an_initialisation_only_when_the_config_sets_one(make_trainer, constant):
    from nnlit.callbacks import ConstantInit

    data = TabularDataModule(dataset="circle", n_samples=256)
    monitor = GradientSaturationMonitor(ratio_threshold=0.5)  # a default-initialised sigmoid stack is below it too
    model = BinaryMLP(in_features=2, hidden=[8] * 6, activation="sigmoid")
    callbacks = [ConstantInit(value=0.1), monitor] if constant else [monitor]
    with pytest.warns(UserWarning, match="vanishing gradients"):
        make_trainer(callbacks=callbacks).fit(model, datamodule=data)
    (advice,) = monitor.advice
    assert "6 sigmoid layers" in advice
    assert ("initialisation (ConstantInit)" in advice) is constant
    assert "default" not in advice
