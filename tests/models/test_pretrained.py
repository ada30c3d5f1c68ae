import pytest
import torch

from nnlit import BinaryMLP, MulticlassMLP, TabularDataModule
from nnlit.callbacks import FreezeLayers, UniformInit


@pytest.fixture
def pretrained(tmp_path, make_trainer):
    """A 3-class spiral model, trained one epoch and saved."""
    model = MulticlassMLP(in_features=2, num_classes=3, hidden=[16, 8])
    trainer = make_trainer()
    trainer.fit(model, datamodule=TabularDataModule(dataset="spiral", n_classes=3, n_samples=90))
    path = tmp_path / "pretrained.ckpt"
    trainer.save_checkpoint(path)
    return str(path), model


def test_same_shape_loads_everything(pretrained):
    path, source = pretrained
    model = MulticlassMLP(in_features=2, num_classes=3, hidden=[16, 8], pretrained=path)
    assert all(
        torch.equal(a, b) for a, b in zip(model.network.state_dict().values(), source.network.state_dict().values())
    )


def test_new_head_of_another_width_keeps_fresh_weights(pretrained, caplog):
    path, source = pretrained
    torch.manual_seed(0)
    fresh = BinaryMLP(in_features=2, hidden=[16, 8])
    torch.manual_seed(0)
    with caplog.at_level("INFO"):
        model = BinaryMLP(in_features=2, hidden=[16, 8], pretrained=path)
    assert "new head network.output of another shape keeps its fresh weights" in caplog.text
    assert torch.equal(model.network.linear1.weight, source.network.linear1.weight)
    assert torch.equal(model.network.linear2.bias, source.network.linear2.bias)
    assert torch.equal(model.network.output.weight, fresh.network.output.weight)


def test_body_mismatch_names_each_layer(pretrained):
    path, _ = pretrained
    with pytest.raises(
        ValueError, match=r"network.linear2.weight: \(8, 16\) in the checkpoint, \(4, 16\) in the model"
    ):
        MulticlassMLP(in_features=2, num_classes=3, hidden=[16, 4], pretrained=path)
    with pytest.raises(ValueError, match=r"network.linear3.weight: missing from the checkpoint"):
        MulticlassMLP(in_features=2, num_classes=3, hidden=[16, 8, 8], pretrained=path)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="Pretrained checkpoint not found: 'nowhere.ckpt'"):
        BinaryMLP(in_features=2, pretrained="nowhere.ckpt")


def test_plain_state_dict_file(tmp_path):
    source = BinaryMLP(in_features=2, hidden=[4])
    torch.save(source.network.state_dict(), tmp_path / "weights.pt")
    model = BinaryMLP(in_features=2, hidden=[4], pretrained=str(tmp_path / "weights.pt"))
    assert torch.equal(model.network.output.weight, source.network.output.weight)


def test_fine_tuned_checkpoint_does_not_need_the_pretrained_file(pretrained, make_trainer, tmp_path):
    path, source = pretrained
    model = BinaryMLP(in_features=2, hidden=[16, 8], pretrained=path)
    assert model.hparams.pretrained is None
    before_head = model.network.output.weight.detach().clone()
    trainer = make_trainer(callbacks=[FreezeLayers(first_n=2), UniformInit(0.0, 0.01, modules=["network.output"])])
    trainer.fit(model, datamodule=TabularDataModule(dataset="xor", n_samples=90))
    assert torch.equal(model.network.linear1.weight, source.network.linear1.weight)  # frozen pretrained body
    assert not torch.equal(model.network.output.weight, before_head)
    trainer.save_checkpoint(tmp_path / "tuned.ckpt")
    (tmp_path / "pretrained.ckpt").unlink()
    loaded = BinaryMLP.load_from_checkpoint(tmp_path / "tuned.ckpt")
    assert torch.equal(loaded.network.output.weight, model.network.output.weight)


def test_extra_body_layers_in_the_checkpoint_are_an_error(pretrained):
    path, _ = pretrained  # hidden [16, 8]: linear1, linear2, output
    with pytest.raises(ValueError, match=r"network.linear2.weight: in the checkpoint, not in the model"):
        MulticlassMLP(in_features=2, num_classes=3, hidden=[16], pretrained=path)
