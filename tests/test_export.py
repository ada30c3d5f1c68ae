import re

import pytest
import torch
from torch.nn import functional as F

import nnlit
from nnlit import BinaryMLP, MulticlassMLP, RegressionMLP, TabularDataModule
from nnlit.export import export, main
from nnlit.nn.activations import ACTIVATIONS

DATA = {
    "binary": {"dataset": "xor"},
    "multiclass": {"dataset": "spiral", "n_classes": 3},
    "regression": {"dataset": "sine"},
}


class ProbabilityMLP(MulticlassMLP):
    """A subclass with a forward of its own (probabilities, not logits): exported by tracing."""

    def forward(self, x):
        return F.softmax(self.network(x) / 2.0, dim=-1)


class VarargsNetwork(torch.nn.Module):
    """A network TorchScript cannot compile (``*inputs``): exported by tracing."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, *inputs):
        return torch.tanh(self.linear(inputs[0])) * 3.0


class VarargsMLP(BinaryMLP):
    def build_network(self):
        return VarargsNetwork()


def build(head, **kwargs):
    kwargs = {"in_features": 2, "hidden": [6, 4], **kwargs}
    if head == "binary":
        return BinaryMLP(**kwargs)
    if head == "multiclass":
        return MulticlassMLP(num_classes=3, **kwargs)
    if head == "probability":
        return ProbabilityMLP(num_classes=3, **kwargs)
    if head == "varargs":
        return VarargsMLP(**kwargs)
    return RegressionMLP(out_features=1, target_mean=[100.0], target_std=[20.0], **kwargs)


@pytest.fixture
def checkpoint(tmp_path, make_trainer):
    """Trains a model one step and saves it: returns the checkpoint's path."""

    def factory(head="binary", **kwargs):
        model = build(head, **kwargs)
        trainer = make_trainer(max_steps=1)
        data = DATA.get(head, DATA["binary" if head == "varargs" else "multiclass"])
        trainer.fit(model, datamodule=TabularDataModule(n_samples=40, **data))
        path = tmp_path / f"{head}.ckpt"
        trainer.save_checkpoint(path)
        return path

    return factory


def expected_outputs(path, x):
    with torch.no_grad():
        return nnlit.load(path)(x)


MODELS = [
    ("binary", {"activation": "relu"}),
    ("multiclass", {"activation": "maxout", "activation_kwargs": {"pieces": 3}}),
    ("regression", {"activation": "gelu", "norm": "batch", "dropout": 0.2}),
    ("binary", {"activation": "prelu", "norm": "layer"}),
    ("multiclass", {"activation": "leaky_relu", "activation_kwargs": {"negative_slope": 0.2}, "bias": False}),
    ("probability", {"activation": "tanh"}),
]


@pytest.mark.parametrize(("head", "kwargs"), MODELS, ids=[f"{h}-{k['activation']}" for h, k in MODELS])
def test_torchscript_matches_the_module(head, kwargs, checkpoint, tmp_path):
    path = checkpoint(head, **kwargs)
    served = torch.jit.load(export(path, tmp_path / "model.pt", format="torchscript"))
    for batch in (1, 37):
        x = torch.randn(batch, 2)
        torch.testing.assert_close(served(x), expected_outputs(path, x), rtol=1e-5, atol=1e-5)


ONNX_MODELS = [MODELS[i] for i in (0, 1, 2, 5)]  # an export takes seconds: each head, Maxout, BatchNorm, a subclass


@pytest.mark.parametrize(("head", "kwargs"), ONNX_MODELS, ids=[f"{h}-{k['activation']}" for h, k in ONNX_MODELS])
def test_onnx_matches_the_module(head, kwargs, checkpoint, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    path = checkpoint(head, **kwargs)
    onnx_path = export(path, tmp_path / "model.onnx", format="onnx")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("model.onnx")] == ["model.onnx"]  # one file
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (graph_input,), (graph_output,) = session.get_inputs(), session.get_outputs()
    assert (graph_input.name, graph_input.type, graph_output.name) == ("features", "tensor(float)", "outputs")
    assert isinstance(graph_input.shape[0], str) and graph_input.shape[1] == 2  # a dynamic batch dimension
    for batch in (1, 37):
        x = torch.randn(batch, 2)
        outputs = torch.from_numpy(session.run(None, {"features": x.numpy()})[0])
        torch.testing.assert_close(outputs, expected_outputs(path, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_scripts(activation, checkpoint):
    kwargs = {"activation_kwargs": {"pieces": 2}} if activation == "maxout" else {}
    path = checkpoint("multiclass", activation=activation, **kwargs)
    served = torch.jit.load(export(path, format="torchscript"))
    assert "Expected features of shape" in served.code  # scripted: a trace keeps no Python branch
    x = torch.randn(37, 2)
    torch.testing.assert_close(served(x), expected_outputs(path, x), rtol=1e-5, atol=1e-5)


def test_a_network_that_does_not_script_is_traced(checkpoint, tmp_path):
    path = checkpoint("varargs")
    with pytest.warns(UserWarning, match="torch.jit.script cannot compile the network .*; it is traced instead"):
        served = torch.jit.load(export(path, format="torchscript"))
    for batch in (1, 37):
        x = torch.randn(batch, 2)
        torch.testing.assert_close(served(x), expected_outputs(path, x), rtol=1e-5, atol=1e-5)


def test_default_out_is_next_to_the_checkpoint(checkpoint, tmp_path):
    path = checkpoint()
    assert export(path, format="torchscript") == tmp_path / "binary.pt"
    assert (tmp_path / "binary.pt").is_file()


def test_torchscript_checks_the_input_width(checkpoint):
    served = torch.jit.load(export(checkpoint(), format="torchscript"))
    with pytest.raises(torch.jit.Error, match=r"Expected features of shape \(batch, 2\), got \[4, 3\]"):
        served(torch.zeros(4, 3))


def test_unknown_format_names_the_accepted_ones(checkpoint):
    with pytest.raises(ValueError, match=r"Unknown export format 'tflite'. Accepted formats: onnx, torchscript"):
        export(checkpoint(), format="tflite")


def test_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Checkpoint not found: '.*nowhere\.ckpt'"):
        export(tmp_path / "nowhere.ckpt", format="torchscript")


def test_onnx_without_its_packages_says_what_to_install(checkpoint, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "onnxscript" else find_spec(name))
    with pytest.raises(ImportError, match=r"ONNX export needs the onnxscript package: pip install 'nnlit\[onnx\]'"):
        export(checkpoint(), format="onnx")


def test_command_writes_the_file(checkpoint, tmp_path, capsys):
    path = checkpoint("regression")
    main(["--ckpt_path", str(path), "--format", "torchscript", "--out", str(tmp_path / "served" / "r.pt")])
    assert capsys.readouterr().out == f"Wrote {tmp_path / 'served' / 'r.pt'}\n"
    x = torch.randn(3, 2)
    torch.testing.assert_close(torch.jit.load(tmp_path / "served" / "r.pt")(x), expected_outputs(path, x))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--format", "onnx"], "the following arguments are required: --ckpt_path"),
        (
            ["--ckpt_path", "m.ckpt", "--format", "tflite"],
            "invalid choice: 'tflite' \\(choose from '?onnx'?, '?torchscript'?\\)",
        ),
        (["--ckpt_path", "nowhere.ckpt"], "nnlit: error: Checkpoint not found: 'nowhere.ckpt'"),
    ],
)
def test_command_errors(args, match, capsys):
    from nnlit.cli import main as command

    with pytest.raises(SystemExit) as exit_info:
        command(["export", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert re.search(match, err) and "nnlit: error: " in err and "nnlit export: error" not in err, err
