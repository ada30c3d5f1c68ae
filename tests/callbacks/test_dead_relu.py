import lightning as L
import pytest
import torch
from torch import nn

from nnlit import MulticlassMLP, TabularDataModule
from nnlit.callbacks import DeadReLUCounter
from nnlit.data import TensorBatchLoader


class Foreign(L.LightningModule):
    """Not an nnlit module: its own Sequential, fixed weights (lr 0), so dead units are known in advance."""

    def __init__(self, activation: nn.Module | None = None, functional: bool = False):
        super().__init__()
        self.hidden = nn.Linear(2, 4)
        self.act = activation if activation is not None else nn.ReLU()
        self.out = nn.Linear(4, 1)
        self.functional = functional
        with torch.no_grad():
            self.hidden.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
            self.hidden.bias.copy_(torch.tensor([-1.0, 0.0, 0.0, -100.0]))

    def forward(self, x):
        h = self.hidden(x)
        return self.out(torch.relu(h) if self.functional else self.act(h))

    def training_step(self, batch, batch_idx):
        return nn.functional.mse_loss(self(batch[0]).view(-1), batch[1])

    def validation_step(self, batch, batch_idx):
        self(batch[0])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def loader(x):
    return TensorBatchLoader([x, torch.zeros(len(x))], batch_size=4)


X = torch.tensor([[1.0, -1.0], [2.0, -3.0], [0.5, -0.5], [3.0, -2.0], [1.0, -1.0]])  # x2 never > 0


def test_counts_match_a_direct_computation(make_trainer):
    model = Foreign()
    counter = DeadReLUCounter(threshold=0.9)
    trainer = make_trainer(max_epochs=2, callbacks=[counter])
    trainer.fit(model, train_dataloaders=loader(X))
    expected_alive = (torch.relu(model.hidden(X)) > 0).any(dim=0)
    expected_dead = int((~expected_alive).sum())
    assert expected_dead == 3  # units 0, 2, 3; only unit 1 ever fires
    assert [h["dead"] for h in counter.history] == [{"act": expected_dead}] * 2
    for entry in counter.history:  # the per-unit record behind the heatmap: exactly the units that never fired
        assert torch.equal(entry["dead_units"]["act"], ~expected_alive)
    assert trainer.callback_metrics["dead_relu/act"] == pytest.approx(expected_dead / 4)
    assert trainer.callback_metrics["dead_relu/total"] == pytest.approx(expected_dead / 4)


def test_validation_batches_not_counted_unless_asked(make_trainer):
    val_x = torch.tensor([[0.0, 5.0]])  # would make unit 2 fire
    for include, dead in [(False, 3), (True, 2)]:
        counter = DeadReLUCounter(include_validation=include)
        make_trainer(callbacks=[counter], num_sanity_val_steps=0).fit(
            Foreign(), train_dataloaders=loader(X), val_dataloaders=loader(val_x)
        )
        assert counter.history[-1]["dead"]["act"] == dead


def test_sanity_check_never_counted_and_training_resumes_after_a_mid_epoch_validation(make_trainer):
    val_x = torch.tensor([[0.0, 5.0]])  # would make unit 2 fire
    counter = DeadReLUCounter(include_validation=True)
    trainer = make_trainer(callbacks=[counter], num_sanity_val_steps=1, check_val_every_n_epoch=5, max_epochs=1)
    trainer.fit(Foreign(), train_dataloaders=loader(X), val_dataloaders=loader(val_x))
    assert counter.history[-1]["dead"]["act"] == 3  # the sanity check ran val_x, and did not count it
    # unit 1 fires only in the second training batch, which comes after a validation pass
    late = torch.tensor([[-1.0, -1.0]] * 4 + [[1.0, -1.0]])
    for include, dead in [(False, 3), (True, 2)]:
        counter = DeadReLUCounter(include_validation=include)
        trainer = make_trainer(callbacks=[counter], num_sanity_val_steps=0, val_check_interval=1, max_epochs=1)
        trainer.fit(Foreign(), train_dataloaders=loader(late), val_dataloaders=loader(val_x))
        assert counter.history[-1]["dead"]["act"] == dead


def test_conv_like_output_counts_channels():
    counter = DeadReLUCounter()
    counter.counting = True  # as inside a training epoch
    hook = counter._make_hook("conv")
    out = torch.zeros(2, 3, 4, 4)
    out[1, 2, 3, 0] = 1.0  # channel 2 fires once, in one sample and one position
    hook(nn.ReLU(), (), out)
    assert counter.alive_units()["conv"].tolist() == [False, False, True]


def test_negative_init_layer_reported_fully_dead_with_a_warning(make_trainer):
    model = MulticlassMLP(in_features=2, num_classes=3, hidden=[16, 16])
    with torch.no_grad():  # the lesson's negative initialiser: weights and bias < 0, inputs of layer 2 are >= 0
        model.network.linear2.weight.uniform_(-1.0, -0.1)
        model.network.linear2.bias.fill_(-1.0)
    counter = DeadReLUCounter()
    with pytest.warns(UserWarning, match=r"16/16 units \(100%\) of network.act2 output 0 .*dead ReLUs"):
        make_trainer(callbacks=[counter]).fit(model, datamodule=TabularDataModule(dataset="spiral", n_classes=3))
    assert counter.history[-1]["dead"]["network.act2"] == 16
    assert counter.history[-1]["dead"]["network.act1"] < 16


def test_leaky_units_reported_as_never_positive(make_trainer):
    counter = DeadReLUCounter()
    trainer = make_trainer(callbacks=[counter])
    trainer.fit(Foreign(activation=nn.LeakyReLU(0.1)), train_dataloaders=loader(X))
    assert counter.history[-1]["never_positive"] == {"act": 3} and counter.history[-1]["dead"] == {}
    assert "dead_relu/total" not in trainer.callback_metrics
    assert trainer.callback_metrics["never_positive/act"] == pytest.approx(0.75)


def test_functional_relu_warns_and_reports_nothing(make_trainer):
    counter = DeadReLUCounter()
    model = Foreign(activation=nn.Identity(), functional=True)
    with pytest.warns(UserWarning, match="found no nn.ReLU.* in Foreign: a ReLU applied functionally"):
        trainer = make_trainer(callbacks=[counter])
        trainer.fit(model, train_dataloaders=loader(X))
    assert counter.history == [] and not any(k.startswith("dead_relu") for k in trainer.callback_metrics)


def test_hooks_removed_after_fit(make_trainer):
    model = Foreign()
    make_trainer(callbacks=[DeadReLUCounter()]).fit(model, train_dataloaders=loader(X))
    assert all(not m._forward_hooks for m in model.modules())


def test_state_round_trip():
    counter = DeadReLUCounter()
    counter.history = [{"epoch": 0, "dead": {"a": 1}, "never_positive": {}, "units": {"a": 2}}]
    counter._warned = {"a"}
    other = DeadReLUCounter()
    other.load_state_dict(counter.state_dict())
    assert other.history == counter.history and other._warned == {"a"}


def test_advice_is_kept_with_the_warning(make_trainer):
    counter = DeadReLUCounter(threshold=0.5)
    with pytest.warns(UserWarning, match="dead ReLUs"):
        make_trainer(callbacks=[counter]).fit(Foreign(), train_dataloaders=loader(X))
    assert len(counter.advice) == 1 and "3/4 units (75%) of act" in counter.advice[0]
    other = DeadReLUCounter()
    other.load_state_dict(counter.state_dict())
    assert other.advice == counter.advice


def test_bad_threshold():
    with pytest.raises(ValueError, match=r"`threshold` must be in \(0, 1\], got 0"):
        DeadReLUCounter(threshold=0)


def make_hook(counter, name="layer"):
    counter.counting = True  # as inside a training epoch
    return counter._make_hook(name)


def test_one_dimensional_output_is_one_unit():
    counter = DeadReLUCounter()
    hook = make_hook(counter)
    hook(nn.ReLU(), (), torch.zeros(4))
    hook(nn.ReLU(), (), torch.tensor([0.0, 2.0]))  # a smaller last batch
    assert counter.alive_units()["layer"].tolist() == [True]


def test_unit_dim_for_sequences():
    counter = DeadReLUCounter(unit_dim=2)
    hook = make_hook(counter)
    out = torch.zeros(2, 5, 3)
    out[0, 4, 1] = 1.0
    hook(nn.ReLU(), (), out)
    assert counter.alive_units()["layer"].tolist() == [False, True, False]


def test_module_reused_at_another_width_raises():
    counter = DeadReLUCounter()
    hook = make_hook(counter)
    hook(nn.ReLU(), (), torch.ones(2, 8))
    with pytest.raises(ValueError, match="layer produced 4 units after 8: a module used at places of different width"):
        hook(nn.ReLU(), (), torch.ones(2, 4))


def test_deferred_row_reduction_equals_a_per_batch_reduction():
    """(batch, units) outputs are folded into a running elementwise maximum and reduced over rows later; the alive
    mask must equal a direct reduction over every row, whatever the order of batch shapes."""
    counter = DeadReLUCounter()
    hook = make_hook(counter)
    g = torch.Generator().manual_seed(0)
    batches = [torch.relu(torch.randn(rows, 64, generator=g) - 2.5) for rows in (8, 8, 8, 3, 8, 8, 1)]
    for out in batches[:4]:
        hook(nn.ReLU(), (), out)
    midway = (torch.cat(batches[:4]) > 0).any(dim=0)
    assert torch.equal(counter.alive_units()["layer"], midway)  # read midway: the pending rows are counted
    for out in batches[4:]:
        hook(nn.ReLU(), (), out)
    expected = (torch.cat(batches) > 0).any(dim=0)
    assert 0 < int(expected.sum()) < 64  # some units alive, some dead: the check can fail either way
    assert torch.equal(counter.alive_units()["layer"], expected)


def test_running_maximum_does_not_alias_the_output():
    counter = DeadReLUCounter()
    hook = make_hook(counter)
    out = torch.zeros(2, 4)
    hook(nn.ReLU(), (), out)
    out[0, 0] = 5.0  # a later in-place change of the layer's output tensor
    assert counter.alive_units()["layer"].tolist() == [False] * 4


def test_deferred_reduction_checks_the_width_against_a_folded_peak():
    counter = DeadReLUCounter()
    hook = make_hook(counter)
    hook(nn.ReLU(), (), torch.ones(2, 8))
    counter.alive_units()  # folds the running buffer into the per-unit peak
    with pytest.raises(ValueError, match="layer produced 4 units after 8"):
        hook(nn.ReLU(), (), torch.ones(3, 4))


def test_a_run_resumed_mid_epoch_counts_the_rest_of_its_epoch(make_trainer, tmp_path):
    """Lightning resumes a mid-epoch checkpoint without `on_train_epoch_start`; the counter still counts."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    first = make_trainer(
        max_steps=1, enable_checkpointing=True, callbacks=[ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=1)]
    )
    first.fit(Foreign(), train_dataloaders=loader(X))
    (ckpt,) = tmp_path.glob("*.ckpt")
    counter = DeadReLUCounter(threshold=0.9)
    resumed = make_trainer(max_epochs=1, callbacks=[counter])
    resumed.fit(Foreign(), train_dataloaders=loader(X), ckpt_path=str(ckpt))
    assert resumed.global_step == 2  # only the epoch's second batch ran here
    assert counter.history == [
        {
            "epoch": 0,
            "dead": {"act": 3},
            "never_positive": {},
            "units": {"act": 4},
            "dead_units": counter.history[0]["dead_units"],
        }
    ]
    assert counter.history[0]["dead_units"]["act"].tolist() == [True, False, True, True]
    # and its validation counts when asked: the resumed epoch is a training epoch
    counter = DeadReLUCounter(threshold=0.9, include_validation=True)
    resumed = make_trainer(max_epochs=1, callbacks=[counter], num_sanity_val_steps=0)
    val_x = torch.tensor([[0.0, 5.0]])  # makes unit 2 fire
    resumed.fit(Foreign(), train_dataloaders=loader(X), val_dataloaders=loader(val_x), ckpt_path=str(ckpt))
    assert counter.history[-1]["dead"]["act"] == 2


class RunsTheModelAfterValidation(L.Callback):
    """Another callback that calls the model after validation (as a plot of the model would)."""

    def on_validation_end(self, trainer, pl_module):
        pl_module(torch.tensor([[0.0, 5.0]]))  # would make unit 2 fire


def test_forward_calls_of_other_callbacks_after_validation_are_not_counted(make_trainer):
    counter = DeadReLUCounter(threshold=0.9)
    trainer = make_trainer(callbacks=[counter, RunsTheModelAfterValidation()], num_sanity_val_steps=0)
    trainer.fit(Foreign(), train_dataloaders=loader(X), val_dataloaders=loader(X[:1]))
    assert counter.history[-1]["dead"]["act"] == 3


def test_a_net_of_other_activation_modules_gets_no_word_about_relus(make_trainer):
    import warnings

    counter = DeadReLUCounter()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a warning here fails the test
        warnings.filterwarnings("ignore", message=".*(does not have many workers|treespec|LeafSpec|val_dataloader).*")
        make_trainer(callbacks=[counter]).fit(Foreign(activation=nn.Sigmoid()), train_dataloaders=loader(X))
    assert counter.history == [] and counter.advice == []


def test_the_warning_is_the_diagnosis_rules_finding(make_trainer):
    from nnlit.diagnosis import training

    counter = DeadReLUCounter()
    with pytest.warns(UserWarning, match="Likely cause: large negative updates or biases"):
        make_trainer(callbacks=[counter]).fit(Foreign(), train_dataloaders=loader(X))
    (finding,) = counter.findings
    dead = (counter.history[0]["dead"]["act"], 4)
    again = training.dead_units({"act": dead}, {"act": "relu"}, epoch=0)[0]
    assert (finding.kind, finding.where, finding.message) == ("dead_relu", "act", again.message)
