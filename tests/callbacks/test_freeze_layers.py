import functools
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from nnlit import MulticlassMLP, TabularDataModule
from nnlit.callbacks import FreezeLayers


def data():
    return TabularDataModule(dataset="spiral", n_classes=3, n_samples=120, batch_size=32)


def model(**kwargs):
    options = {
        "in_features": 2,
        "num_classes": 3,
        "hidden": [8, 8],
        "optimizer": functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9),
    }
    options.update(kwargs)
    return MulticlassMLP(**options)


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class EpochWeights(L.Callback):
    """Records linear1's weight at the end of every training epoch, and the optimizer's groups."""

    def __init__(self):
        self.weights, self.groups = [], []

    def on_train_epoch_end(self, trainer, pl_module):
        self.weights.append(pl_module.network.linear1.weight.detach().clone())
        self.groups.append([g["lr"] for g in trainer.optimizers[0].param_groups])


def test_frozen_parameters_bitwise_unchanged_rest_trained(make_trainer):
    m = model()
    before = snapshot(m)
    make_trainer(max_epochs=2, callbacks=[FreezeLayers(modules=["network.linear1"])]).fit(m, datamodule=data())
    after = snapshot(m)
    assert torch.equal(after["network.linear1.weight"], before["network.linear1.weight"])
    assert torch.equal(after["network.linear1.bias"], before["network.linear1.bias"])
    assert not torch.equal(after["network.linear2.weight"], before["network.linear2.weight"])
    assert not torch.equal(after["network.output.weight"], before["network.output.weight"])


def test_first_n_takes_layers_and_their_norms():
    callback = FreezeLayers(first_n=2)
    chosen = callback.select(model(norm="batch"))
    assert list(chosen) == ["network.linear1", "network.norm1", "network.linear2", "network.norm2"]


def test_unfreeze_adds_a_group_with_the_smaller_lr(make_trainer):
    record = EpochWeights()
    callbacks = [FreezeLayers(first_n=1, unfreeze_at_epoch=2, lr_factor=0.1), record]
    make_trainer(max_epochs=4, callbacks=callbacks).fit(model(), datamodule=data())
    assert record.groups[:2] == [[0.1], [0.1]]
    assert record.groups[2:] == [[0.1, pytest.approx(0.01)]] * 2
    assert torch.equal(record.weights[0], record.weights[1])  # frozen in epochs 0 and 1
    assert not torch.equal(record.weights[1], record.weights[2])  # trains from epoch 2


def test_resume_after_unfreeze_keeps_layers_unfrozen_and_groups(make_trainer, tmp_path):
    """Lightning #21901: a resumed BaseFinetuning re-freezes modules that had been unfrozen."""

    def callbacks():
        return [FreezeLayers(first_n=1, unfreeze_at_epoch=1, lr_factor=0.5)]

    L.seed_everything(0)
    straight = model()
    make_trainer(max_epochs=4, callbacks=callbacks()).fit(straight, datamodule=data())

    L.seed_everything(0)
    first = model()
    trainer = make_trainer(max_epochs=2, callbacks=callbacks())
    trainer.fit(first, datamodule=data())
    trainer.save_checkpoint(tmp_path / "mid.ckpt")

    L.seed_everything(0)
    resumed = model()
    record = EpochWeights()
    trainer = make_trainer(max_epochs=4, callbacks=[*callbacks(), record])
    trainer.fit(resumed, datamodule=data(), ckpt_path=tmp_path / "mid.ckpt")
    assert resumed.network.linear1.weight.requires_grad
    assert record.groups == [[0.1, 0.05], [0.1, 0.05]]
    assert not torch.equal(record.weights[0], record.weights[1])  # still training after the resume
    final, expected = snapshot(resumed), snapshot(straight)
    assert all(torch.equal(final[k], expected[k]) for k in expected)  # same as never stopping


def test_train_bn(make_trainer):
    for train_bn, trains in [(True, True), (False, False)]:
        m = model(norm="batch")
        before = snapshot(m)
        make_trainer(callbacks=[FreezeLayers(first_n=1, train_bn=train_bn)]).fit(m, datamodule=data())
        assert torch.equal(snapshot(m)["network.linear1.weight"], before["network.linear1.weight"])
        assert torch.equal(snapshot(m)["network.norm1.weight"], before["network.norm1.weight"]) is not trains


def test_train_bn_false_keeps_norm_frozen_after_unfreeze(make_trainer):
    m = model(norm="batch")
    make_trainer(max_epochs=2, callbacks=[FreezeLayers(first_n=1, unfreeze_at_epoch=1, train_bn=False)]).fit(
        m, datamodule=data()
    )
    assert m.network.linear1.weight.requires_grad and not m.network.norm1.weight.requires_grad


def test_distinct_equal_valued_parameters_are_not_confused(make_trainer):
    """Both biases start at zero: a value comparison would think linear1.bias is already in the optimizer."""
    m = model()
    with torch.no_grad():
        m.network.linear1.bias.zero_()
        m.network.linear2.bias.zero_()
    record = EpochWeights()
    make_trainer(max_epochs=2, callbacks=[FreezeLayers(first_n=1, unfreeze_at_epoch=1), record]).fit(
        m, datamodule=data()
    )
    optimizer_params = {id(p) for g in m.trainer.optimizers[0].param_groups for p in g["params"]}
    assert id(m.network.linear1.bias) in optimizer_params


def test_ddp_unfreeze_refused_with_advice():
    trainer = SimpleNamespace(world_size=2, strategy=None)
    with pytest.raises(ValueError, match="cannot unfreeze layers under DDP.*second fit"):
        FreezeLayers(first_n=1, unfreeze_at_epoch=1).setup(trainer, model(), "fit")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "Give exactly one of `modules`"),
        ({"modules": ["a"], "first_n": 1}, "Give exactly one of `modules`"),
        ({"modules": "network.linear1"}, "`modules` must be a non-empty list"),
        ({"first_n": 0}, "`first_n` must be a positive integer, got 0"),
        ({"first_n": 1, "unfreeze_at_epoch": -1}, "`unfreeze_at_epoch` must be >= 0"),
        ({"first_n": 1, "lr_factor": 0.0}, "`lr_factor` must be > 0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FreezeLayers(**kwargs)


def test_pattern_matching_nothing_lists_modules():
    with pytest.raises(
        ValueError,
        match=r"'encoder' matches no module with parameters. Modules with parameters: "
        r"network.linear1, network.linear2, network.output",
    ):
        FreezeLayers(modules=["encoder"]).select(model())


def test_first_n_too_large():
    with pytest.raises(ValueError, match="first_n=4 but the model has 3 layers with a weight matrix"):
        FreezeLayers(first_n=4).select(model())


def test_warns_when_the_optimizer_already_holds_the_frozen_parameters(make_trainer):
    class EveryParameter(MulticlassMLP):
        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    m = EveryParameter(in_features=2, num_classes=3, hidden=[8, 8])
    with pytest.warns(UserWarning, match="already in the optimizer .* not lr x 0.1"):
        make_trainer(max_epochs=2, callbacks=[FreezeLayers(first_n=1, unfreeze_at_epoch=1)]).fit(m, datamodule=data())
