import lightning as L
import pytest
import torch
from torch import nn

from nnlit import MulticlassMLP, RegressionMLP, TabularDataModule
from nnlit.callbacks import ConstantInit, NegativeInit, UniformInit


def data():
    return TabularDataModule(dataset="spiral", n_classes=3, n_samples=90)


def model():
    return MulticlassMLP(in_features=2, num_classes=3, hidden=[8, 8])


class Snapshot(L.Callback):
    """Copies the weights as training starts: after init callbacks and checkpoint restore."""

    def on_train_start(self, trainer, pl_module):
        self.state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}


def test_uniform_range_zero_bias_and_every_linear(make_trainer):
    snap = Snapshot()
    make_trainer(callbacks=[UniformInit(0.0, 1.0), snap], max_steps=1).fit(model(), datamodule=data())
    for name in ("network.linear1", "network.linear2", "network.output"):
        weight, bias = snap.state[f"{name}.weight"], snap.state[f"{name}.bias"]
        assert ((weight >= 0) & (weight < 1)).all() and weight.std() > 0.1
        assert torch.equal(bias, torch.zeros_like(bias))


def test_deterministic_under_seed_everything(make_trainer):
    states = []
    for _ in range(2):
        L.seed_everything(7)
        snap = Snapshot()
        make_trainer(callbacks=[UniformInit(), snap], max_steps=1).fit(model(), datamodule=data())
        states.append(snap.state)
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_only_selected_modules_change(make_trainer):
    m = model()
    before = {k: v.clone() for k, v in m.state_dict().items()}  # e.g. weights loaded from a pretrained model
    snap = Snapshot()
    make_trainer(callbacks=[ConstantInit(0.5, modules=["network.output"]), snap], max_steps=1).fit(m, datamodule=data())
    assert torch.equal(snap.state["network.output.weight"], torch.full((3, 8), 0.5))
    for key in ("network.linear1.weight", "network.linear2.weight", "network.linear2.bias"):
        assert torch.equal(snap.state[key], before[key])


def test_resume_keeps_the_checkpoint_weights(make_trainer, tmp_path):
    trainer = make_trainer(callbacks=[UniformInit()], max_epochs=2)
    trainer.fit(model(), datamodule=data())
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)["state_dict"]

    snap = Snapshot()
    resumed = make_trainer(callbacks=[UniformInit(), snap], max_epochs=3)
    resumed.fit(model(), datamodule=data(), ckpt_path=tmp_path / "last.ckpt")
    assert all(torch.equal(snap.state[k], saved[k]) for k in saved)


def test_a_second_fit_trains_on_and_a_new_model_is_initialised(make_trainer):
    init = ConstantInit(0.25, modules=["network.output"])
    m = model()
    make_trainer(callbacks=[init], max_steps=2).fit(m, datamodule=data())
    trained = m.network.output.weight.detach().clone()
    assert not torch.equal(trained, torch.full_like(trained, 0.25))
    snap = Snapshot()
    make_trainer(callbacks=[init, snap], max_steps=1).fit(m, datamodule=data())
    assert torch.equal(snap.state["network.output.weight"], trained)  # not reset to 0.25
    other, snap = model(), Snapshot()
    make_trainer(callbacks=[init, snap], max_steps=1).fit(other, datamodule=data())
    assert torch.equal(snap.state["network.output.weight"], torch.full((3, 8), 0.25))


def test_negative_init_kills_the_layer(make_trainer):
    snap = Snapshot()
    make_trainer(callbacks=[NegativeInit(["network.linear2"]), snap], max_steps=1).fit(model(), datamodule=data())
    assert (snap.state["network.linear2.weight"] < 0).all() and (snap.state["network.linear2.bias"] == -1).all()
    assert (snap.state["network.linear1.weight"] > 0).any()


def test_foreign_module_and_patterns():
    class Foreign(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 4))
            self.head = nn.Linear(4, 1)

    net = Foreign()
    chosen = UniformInit(modules=["encoder.[02]", "head"]).select(net)
    assert chosen == {"encoder.0": net.encoder[0], "encoder.2": net.encoder[2], "head": net.head}
    with pytest.raises(ValueError, match=r"encoder.1 \(ReLU\) has no weight"):
        UniformInit(modules=["encoder.*"]).select(net)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: UniformInit(a=1.0, b=0.0), "UniformInit needs a <= b, got a=1.0, b=0.0"),
        (lambda: UniformInit(bias="ones"), "`bias` must be one of zeros, keep, uniform, got 'ones'"),
        (lambda: UniformInit(modules="network.output"), "`modules` must be a non-empty list"),
        (lambda: NegativeInit(["x"], b=0.5), "NegativeInit needs a <= b < 0"),
        (lambda: NegativeInit(["x"], bias=0.0), "NegativeInit needs a negative bias"),
    ],
)
def test_bad_arguments(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_pattern_matching_nothing_lists_the_modules():
    with pytest.raises(ValueError, match=r"'network.head' matches no module. Modules with weights: network.linear1, "):
        UniformInit(modules=["network.head"]).select(RegressionMLP(in_features=2, hidden=[4]))


def test_module_without_weight():
    with pytest.raises(ValueError, match=r"network.act1 \(ReLU\) has no weight to initialise"):
        UniformInit(modules=["network.act1"]).select(RegressionMLP(in_features=2, hidden=[4]))


def test_picklable_for_ddp_spawn():
    import pickle

    init = UniformInit()
    init._initialised.add(model())
    copy = pickle.loads(pickle.dumps(init))
    assert copy.a == init.a and len(copy._initialised) == 0


def test_default_modules_refused_for_a_pretrained_model(tmp_path):
    source = model()
    torch.save(source.network.state_dict(), tmp_path / "w.pt")
    pretrained = MulticlassMLP(in_features=2, num_classes=3, hidden=[8, 8], pretrained=str(tmp_path / "w.pt"))
    with pytest.raises(ValueError, match="would overwrite every Linear of a model built from the pretrained weights"):
        UniformInit().select(pretrained)
    assert list(UniformInit(modules=["network.output"]).select(pretrained)) == ["network.output"]
