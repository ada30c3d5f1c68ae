import os
import zipfile

import pytest
import torch
from helpers import run_python

import nnlit
from nnlit import BinaryMLP, MulticlassMLP, RegressionMLP, TabularDataModule
from nnlit.trust import UntrustedCheckpointError


class ScaledBinaryMLP(BinaryMLP):
    """A user's subclass with an argument of its own."""

    def __init__(self, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale


class Outer:
    class NestedRegressionMLP(RegressionMLP):
        """A subclass reached through another class (``Outer.NestedRegressionMLP``)."""


HEADS = {
    "binary": (lambda: BinaryMLP(in_features=2, hidden=[4]), {"dataset": "xor"}),
    "multiclass": (
        lambda: MulticlassMLP(in_features=2, num_classes=3, hidden=[4]),
        {"dataset": "spiral", "n_classes": 3},
    ),
    "regression": (
        lambda: RegressionMLP(in_features=2, hidden=[4], target_mean=[2.0], target_std=[3.0]),
        {"dataset": "sine"},
    ),
    "subclass": (lambda: ScaledBinaryMLP(scale=2.5, in_features=2, hidden=[4]), {"dataset": "xor"}),
    "nested": (lambda: Outer.NestedRegressionMLP(in_features=2, hidden=[4]), {"dataset": "plane"}),
}


@pytest.fixture
def save(tmp_path, make_trainer):
    """Trains a model one step and saves its checkpoint: returns ``(path, model)``."""

    def factory(head="binary", name="m.ckpt"):
        build, data = HEADS[head]
        model = build()
        trainer = make_trainer(max_steps=1)
        trainer.fit(model, datamodule=TabularDataModule(n_samples=40, **data))
        path = tmp_path / name
        trainer.save_checkpoint(path)
        return path, model

    return factory


def edit(path, change):
    """Rewrites a checkpoint after ``change(checkpoint)``."""
    checkpoint = torch.load(path, weights_only=True)
    change(checkpoint)
    torch.save(checkpoint, path)


@pytest.mark.parametrize("head", sorted(HEADS))
def test_loads_the_class_that_saved_it_in_eval_mode(head, save):
    path, model = save(head)
    loaded = nnlit.load(path)
    assert type(loaded) is type(model)
    assert not loaded.training and not loaded.network.training
    for (name, tensor), expected in zip(loaded.state_dict().items(), model.state_dict().values()):
        assert torch.equal(tensor, expected), name
        assert tensor.device.type == "cpu"
    x = torch.randn(5, 2)
    model.eval()
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_the_checkpoint_records_class_and_version(save):
    path, _ = save("subclass")
    record = torch.load(path, weights_only=True)["nnlit"]
    assert record == {"class_path": f"{__name__}.ScaledBinaryMLP", "version": nnlit.__version__}
    assert nnlit.load(path).scale == 2.5


def test_a_checkpoint_saved_on_a_gpu_loads_on_the_cpu(save, monkeypatch):
    """The file is what a CUDA run writes: torch.save tags each storage with its device's location string ("cuda:0")
    in data.pkl, and ``location_tag`` is the function that makes that string."""
    path, model = save()
    checkpoint = torch.load(path, weights_only=True)
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(checkpoint, path)
    with zipfile.ZipFile(path) as archive:
        pickled = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
    assert b"cuda:0" in pickled and b"\x8c\x03cpu" not in pickled
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)  # what a plain load does on this machine
    loaded = nnlit.load(path)
    assert {t.device.type for t in loaded.state_dict().values()} == {"cpu"}
    assert torch.equal(loaded.network.output.weight, model.network.output.weight)


@pytest.mark.gpu
@pytest.mark.integration
def test_a_model_trained_on_a_gpu_loads_without_cuda(tmp_path, make_trainer):
    from lightning.pytorch.callbacks import ModelCheckpoint

    model = BinaryMLP(in_features=2, hidden=[4])
    # saved during the fit, while the weights are on the GPU (Lightning moves them back to the CPU when it ends)
    saver = ModelCheckpoint(dirpath=tmp_path, filename="gpu", save_on_train_epoch_end=True)
    trainer = make_trainer(accelerator="gpu", max_steps=1, enable_checkpointing=True, callbacks=[saver])
    trainer.fit(model, datamodule=TabularDataModule(dataset="xor", n_samples=40))
    assert torch.load(tmp_path / "gpu.ckpt", weights_only=True)["state_dict"]["network.output.weight"].is_cuda
    script = (
        "import sys, torch, nnlit; assert not torch.cuda.is_available(); m = nnlit.load(sys.argv[1]); "
        "print(type(m).__name__, m.network.output.weight.device)"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = run_python("-c", script, tmp_path / "gpu.ckpt", env=env)
    assert result.stdout.strip() == "BinaryMLP cpu"


def test_map_location_is_passed_to_torch_load(save):
    path, _ = save()
    locations = []

    def keep_on_cpu(storage, location):
        locations.append(location)
        return storage

    nnlit.load(path, map_location=keep_on_cpu)
    assert locations and set(locations) == {"cpu"}


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Checkpoint not found: '.*nowhere\.ckpt'"):
        nnlit.load(tmp_path / "nowhere.ckpt")


@pytest.mark.parametrize(
    ("write", "match"),
    [
        (
            lambda p: p.write_text("model:\n  class_path: nnlit.BinaryMLP\n"),
            r"a text file \(a YAML config, by its look",
        ),
        (lambda p: p.write_bytes(b""), r"an empty file"),
        (lambda p: p.write_bytes(bytes(range(256))), r"a binary file, not a file torch.load reads"),
        (
            lambda p: torch.save({"linear.weight": torch.zeros(2, 2), "linear.bias": torch.zeros(2)}, p),
            r"a plain state_dict of 2 tensors \(linear.weight, linear.bias\): build the model and call load_state_dict",
        ),
        (lambda p: torch.save({"epoch": 3}, p), r"a dict without a 'state_dict' entry \(keys: epoch\)"),
        (lambda p: torch.save([1, 2], p), r"a saved list"),
        (lambda p: torch.jit.save(torch.jit.script(torch.nn.Linear(2, 1)), str(p)), r"a TorchScript archive"),
    ],
)
def test_a_file_that_is_not_a_checkpoint_says_what_it_is(write, match, tmp_path):
    path = tmp_path / "thing.ckpt"
    write(path)
    with pytest.raises(ValueError, match=rf"'.*thing\.ckpt' is not an nnlit checkpoint: it is {match}"):
        nnlit.load(path)


@pytest.mark.parametrize(
    ("head", "advice"),
    [
        ("binary", r"saved by nnlit.BinaryMLP: `from nnlit import BinaryMLP; BinaryMLP.load_from_checkpoint\('.*'\)`"),
        ("multiclass", r"saved by nnlit.MulticlassMLP"),
        ("regression", r"saved by nnlit.RegressionMLP"),
        (
            "subclass",
            r"call load_from_checkpoint on the class that saved it, e.g. nnlit.BinaryMLP.load_from_checkpoint",
        ),
    ],
)
def test_a_checkpoint_without_the_class_says_which_to_call(head, advice, save):
    path, _ = save(head)
    edit(path, lambda checkpoint: checkpoint.pop("nnlit"))
    with pytest.raises(ValueError, match=rf"a Lightning checkpoint without the class that saved it .*{advice}"):
        nnlit.load(path)


def test_a_cli_checkpoint_without_the_class_names_its_class_path(save):
    path, _ = save("subclass")

    def as_if_from_the_cli(checkpoint):
        del checkpoint["nnlit"]
        checkpoint["hyper_parameters"]["_class_path"] = f"{__name__}.ScaledBinaryMLP"

    edit(path, as_if_from_the_cli)
    with pytest.raises(ValueError, match=rf"saved by {__name__}.ScaledBinaryMLP: `from {__name__} import ScaledBinary"):
        nnlit.load(path)


@pytest.mark.parametrize(
    ("class_path", "error", "match"),
    [
        (
            "gone_package.models.OldMLP",
            UntrustedCheckpointError,
            r"saved by 'gone_package.models.OldMLP' \(nnlit 0.0.1\), whose module is not imported.* cls=YourClass",
        ),
        (
            "nnlit.models.binary.RenamedMLP",
            UntrustedCheckpointError,
            r"'nnlit.models.binary.RenamedMLP' .* which does not exist \(no 'RenamedMLP' in 'nnlit.models.binary'\)",
        ),
        ("__main__.ScriptMLP", UntrustedCheckpointError, r"A class defined in a script is found again only in that"),
        (
            "collections.OrderedDict",
            UntrustedCheckpointError,
            r"nnlit.class_path names 'collections.OrderedDict', which is not a LightningModule class",
        ),
        (
            "lightning.LightningModule",
            TypeError,
            r"names .lightning.LightningModule., which is not a subclass of nnlit",
        ),
    ],
)
def test_a_class_that_cannot_be_found_is_named(class_path, error, match, save):
    path, _ = save()
    edit(path, lambda checkpoint: checkpoint.update(nnlit={"class_path": class_path, "version": "0.0.1"}))
    with pytest.raises(error, match=match):
        nnlit.load(path)


def test_the_caller_names_a_class_the_checkpoint_cannot_find(save):
    path, _ = save("subclass")
    edit(path, lambda checkpoint: checkpoint.update(nnlit={"class_path": "__main__.ScaledBinaryMLP"}))
    loaded = nnlit.load(path, cls=ScaledBinaryMLP)
    assert type(loaded) is ScaledBinaryMLP and loaded.scale == 2.5
    with pytest.raises(TypeError, match=r"`cls` must be a subclass of nnlit.MLPModule, got <class 'dict'>"):
        nnlit.load(path, cls=dict)


def test_hyperparameters_beyond_plain_data_need_trusted(save):
    path, _ = save()
    edit(path, lambda checkpoint: checkpoint["hyper_parameters"].update(threshold=_Threshold(0.5)))
    with pytest.raises(UntrustedCheckpointError, match=r"holds pickled Python objects \(.*_Threshold\).*trusted=True"):
        nnlit.load(path)
    assert nnlit.load(path, trusted=True).threshold == 0.5


class _Threshold(float):
    """A float subclass: pickled as a class reference, which weights_only loading refuses."""
