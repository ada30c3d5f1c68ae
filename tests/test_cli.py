"""The `nnlit` command end to end: every config, print_config, optimizers from YAML, subclasses by class_path."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from helpers import run_python

from nnlit import BinaryMLP, MulticlassMLP, RegressionMLP, TabularDataModule
from nnlit.cli import build, main

ROOT = Path(__file__).resolve().parents[1]
# configs/search/ holds nnlit tune's search spaces, not configs
CONFIGS = sorted(p for p in ROOT.glob("configs/**/*.yaml") if "search" not in p.relative_to(ROOT / "configs").parts)
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def test_configs_exist():
    names = {p.relative_to(ROOT / "configs").as_posix() for p in CONFIGS}
    assert {"quickstart.yaml", "heads/binary.yaml", "heads/multiclass.yaml", "heads/regression.yaml"} <= names
    assert {f"optimizers/{n}.yaml" for n in ("sgd_momentum", "adagrad", "rmsprop", "adam")} <= names


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.relative_to(ROOT / "configs").as_posix())
def test_every_config_runs(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # configs write under runs/, relative to the working directory
    args = ["fit", "--config", str(config), "--trainer.fast_dev_run=true", f"--trainer.default_root_dir={tmp_path}"]
    if "num_nodes:" in config.read_text():
        # a cluster config runs on this machine by changing trainer keys only
        args += ["--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.num_nodes=1", "--trainer.strategy=auto"]
    if "pretrained:" in config.read_text():
        # its pretrained checkpoint comes from another config's full run: tests/test_demos.py runs that pair
        args.append("--model.init_args.pretrained=null")
    main([*args, *QUIET])


@pytest.mark.parametrize(
    ("name", "cls", "lr", "extra"),
    [
        ("sgd_momentum", torch.optim.SGD, 0.05, {"momentum": 0.95}),
        ("adagrad", torch.optim.Adagrad, 0.1, {}),
        ("rmsprop", torch.optim.RMSprop, 0.005, {"alpha": 0.99}),
        ("adam", torch.optim.Adam, 0.01, {"betas": (0.9, 0.999)}),
    ],
)
def test_optimizers_from_yaml(name, cls, lr, extra):
    cli = build(["--config", str(ROOT / f"configs/optimizers/{name}.yaml")])
    optimizer = cli.model.configure_optimizers()
    assert type(optimizer) is cls and optimizer.defaults["lr"] == lr
    for key, value in extra.items():
        assert optimizer.defaults[key] == value


def test_data_shape_is_linked_into_the_model():
    cli = build(["--config", str(ROOT / "configs/quickstart.yaml")])
    assert isinstance(cli.model, MulticlassMLP)
    assert (cli.model.in_features, cli.model.num_classes) == (2, 3)
    regression = build(["--config", str(ROOT / "configs/heads/regression.yaml"), "--data.init_args.dataset=plane"])
    assert isinstance(regression.model, RegressionMLP) and regression.model.out_features == 1
    assert "num_classes" not in regression.model.hparams  # a link the head does not take is not saved


def test_fit_trainer_has_no_prediction_writer_and_a_null_profiler(tmp_path):
    from lightning.pytorch.profilers import PassThroughProfiler, SimpleProfiler

    from nnlit import NullProfiler
    from nnlit.callbacks import CSVPredictionWriter
    from nnlit.lightning_cli import make

    config = ["--config", str(ROOT / "configs/quickstart.yaml"), f"--trainer.default_root_dir={tmp_path}"]
    fit = make(["fit", *config, "--trainer.fast_dev_run=true", *QUIET], run=True).trainer
    assert not any(isinstance(c, CSVPredictionWriter) for c in fit.callbacks)  # it only writes in predict
    assert type(fit.profiler) is NullProfiler
    built = build(config).trainer  # no subcommand: a script may go on to predict, so the writer stays
    assert any(isinstance(c, CSVPredictionWriter) for c in built.callbacks)
    named = build([*config, "--trainer.profiler=simple"]).trainer
    assert isinstance(named.profiler, SimpleProfiler)  # a profiler the config names is kept
    bare = ["--model=nnlit.BinaryMLP", "--data=nnlit.TabularDataModule", "--data.dataset=xor", "--data.n_samples=100"]
    bare += ["--trainer.barebones=true", "--trainer.logger=false", "--trainer.enable_progress_bar=false"]
    bare += [f"--trainer.default_root_dir={tmp_path}", "--trainer.max_epochs=1", "--report=false"]
    barebones = make(["fit", *bare], run=True).trainer
    assert type(barebones.profiler) is PassThroughProfiler  # barebones refuses any other profiler


def test_print_config_round_trip(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = ROOT / "configs/heads/binary.yaml"
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(config), "--print_config"])
    printed = tmp_path / "printed.yaml"
    printed.write_text(capsys.readouterr().out)
    assert yaml.safe_load(printed.read_text())["model"]["class_path"] == "nnlit.BinaryMLP"

    def train(path: Path, out: Path) -> dict[str, torch.Tensor]:
        main(
            [
                "fit",
                "--config",
                str(path),
                "--trainer.max_epochs=2",
                "--trainer.logger=false",
                f"--trainer.default_root_dir={out}",
                *QUIET,
            ]
        )
        (ckpt,) = (out / "checkpoints").glob("*.ckpt")
        return torch.load(ckpt, weights_only=True)["state_dict"]

    original, replayed = train(config, tmp_path / "a"), train(printed, tmp_path / "b")
    assert original.keys() == replayed.keys()
    assert all(torch.equal(original[k], replayed[k]) for k in original)


class CountingBinary(BinaryMLP):
    """A user's subclass: a wider first layer and an L2 penalty in the loss."""

    def __init__(self, penalty: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        self.penalty = penalty

    def build_network(self):
        network = super().build_network()
        network.extra_tag = torch.nn.Identity()
        return network

    def compute_loss(self, outputs, target):
        l2 = sum((p**2).sum() for p in self.network.parameters())
        return super().compute_loss(outputs, target) + self.penalty * l2


class CountingMulticlass(MulticlassMLP):
    def metric_inputs(self, outputs, target):
        self.metric_calls = getattr(self, "metric_calls", 0) + 1
        return super().metric_inputs(outputs, target)


class ScaledRegression(RegressionMLP):
    def forward(self, x):
        return 2.0 * super().forward(x)


@pytest.mark.parametrize(
    ("class_path", "dataset", "check"),
    [
        ("test_cli.CountingBinary", "xor", lambda m: m.penalty == 0.5 and hasattr(m.network, "extra_tag")),
        ("test_cli.CountingMulticlass", "spiral", lambda m: m.metric_calls > 0),
        ("test_cli.ScaledRegression", "plane", lambda m: isinstance(m, ScaledRegression)),
    ],
)
def test_subclass_by_class_path(class_path, dataset, check, tmp_path):
    args = [
        "--model",
        class_path,
        "--data",
        "nnlit.TabularDataModule",
        f"--data.dataset={dataset}",
        "--data.n_samples=100",
        "--trainer.max_epochs=1",
        f"--trainer.default_root_dir={tmp_path}",
        *QUIET,
    ]
    if class_path.endswith("CountingBinary"):
        args.append("--model.penalty=0.5")
    cli = build(args)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert check(cli.model)
    assert torch.isfinite(cli.trainer.callback_metrics["val/loss"])


def test_bad_activation_in_yaml(tmp_path):
    with pytest.raises(ValueError, match="Unknown activation 'swish'"):
        build(["--config", str(ROOT / "configs/quickstart.yaml"), "--model.activation=swish"])


def test_regression_data_with_a_classifier():
    with pytest.raises(ValueError, match="got None .*use RegressionMLP"):
        build(["--config", str(ROOT / "configs/quickstart.yaml"), "--data.dataset=sine"])


def run_nnlit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_python("-m", "nnlit.cli", *args, cwd=cwd)


@pytest.mark.integration
def test_fit_checkpoint_predict_end_to_end(tmp_path):
    config = str(ROOT / "configs/quickstart.yaml")
    run_nnlit("fit", "--config", config, "--trainer.max_epochs=3", "--data.n_samples=600", *QUIET, cwd=tmp_path)
    ckpt = tmp_path / "runs/quickstart/lightning_logs/version_0/checkpoints/best.ckpt"
    last = torch.load(ckpt.with_name("last.ckpt"), weights_only=True)
    assert ckpt.is_file() and last["epoch"] == 2  # the latest epoch, whatever the best one was
    out = tmp_path / "preds.csv"
    run_nnlit(
        "predict",
        "--config",
        config,
        "--ckpt_path",
        str(ckpt),
        "--data.n_samples=600",
        f"--prediction_writer.output_path={out}",
        *QUIET,
        cwd=tmp_path,
    )
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 600 and list(rows[0]) == ["row", "prediction", "prob_0", "prob_1", "prob_2"]
    assert [int(r["row"]) for r in rows] == list(range(600))

    # the same numbers from the checkpoint directly: scaler and weights restored, labels decoded
    model = MulticlassMLP.load_from_checkpoint(ckpt, map_location="cpu")  # the CPU tensors below, on any machine
    dm = TabularDataModule(dataset="spiral", n_classes=3, n_samples=600)
    dm.load_state_dict(torch.load(ckpt, weights_only=True)["TabularDataModule"])
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(dm.transform(dm.table.x)), dim=1)
    written = torch.tensor([[float(r[f"prob_{k}"]) for k in range(3)] for r in rows])
    assert torch.allclose(written, probs, atol=1e-6)
    assert [int(r["prediction"]) for r in rows] == probs.argmax(1).tolist()


def test_predict_config_is_the_source_of_truth(tmp_path, capsys):
    """A setting given with --ckpt_path is used, and a network that does not fit the checkpoint is named."""
    config = str(ROOT / "configs/heads/binary.yaml")
    base = ["--config", config, "--data.n_samples=200", f"--trainer.default_root_dir={tmp_path}", *QUIET]
    main(["fit", *base, "--trainer.max_epochs=1", "--trainer.logger=false"])
    (ckpt,) = (tmp_path / "checkpoints").glob("*.ckpt")
    outputs = {}
    for threshold in ("0.5", "0.99"):
        out = tmp_path / f"p{threshold}.csv"
        main(
            [
                "predict",
                *base,
                f"--ckpt_path={ckpt}",
                f"--model.init_args.threshold={threshold}",
                f"--prediction_writer.output_path={out}",
            ]
        )
        with out.open() as f:
            outputs[threshold] = [row["prediction"] for row in csv.DictReader(f)]
    assert outputs["0.5"] != outputs["0.99"]
    with pytest.raises(SystemExit) as exited:
        main(["predict", *base, f"--ckpt_path={ckpt}", "--model.init_args.hidden=[32, 16]"])
    assert exited.value.code == 2
    assert "network.linear1.weight: (16, 2) in the checkpoint, (32, 2) in the model" in capsys.readouterr().err


@pytest.mark.integration
def test_help_names_every_subcommand():
    """`nnlit --help` (the console script, reading sys.argv itself) lists Lightning's subcommands and nnlit's own."""
    script = "import sys; from nnlit.cli import main; sys.argv = ['nnlit', '--help']; main()"
    result = run_python("-c", script, timeout=120)
    text = " ".join(result.stdout.split())
    assert "{fit,validate,test,predict}" in text and "nnlit plot RUN_DIR" in text and "nnlit export" in text
    assert "args parameter is intended" not in result.stderr  # main(None) leaves sys.argv to LightningCLI


@pytest.mark.parametrize("subcommand", ["fit", "validate", "test", "predict"])
def test_a_subcommand_parses_as_with_every_subcommands_parser(subcommand, capsys):
    """`nnlit fit …` builds fit's parser alone: its help and what it parses are those of a CLI that built all four."""
    from nnlit.lightning_cli import _cli

    args = [subcommand, "--config", str(ROOT / "configs/quickstart.yaml"), "--trainer.max_epochs=3"]
    texts = []
    for only in (subcommand, None):
        with pytest.raises(SystemExit):
            _cli([subcommand, "--help"], run=True, only_subcommand=only)
        texts.append(capsys.readouterr().out)
        with pytest.raises(SystemExit):
            _cli([*args, "--print_config"], run=True, only_subcommand=only)
        texts.append(capsys.readouterr().out)
    assert texts[:2] == texts[2:] and "max_epochs: 3" in texts[1]


def test_only_subcommand_must_be_one_of_lightnings():
    from nnlit.lightning_cli import NNLitCLI

    with pytest.raises(ValueError, match="`only_subcommand` can be fit, validate, test, predict or None, got 'plot'"):
        NNLitCLI(only_subcommand="plot")


def test_predict_with_a_predict_path_reads_only_that_file(tmp_path):
    """A config for a CSV file, predicted on with ``--data.predict_path``: the checkpoint gives the preprocessing, and
    the training file is not read (it is gone here)."""
    rows = [{"a": i % 7 / 7, "b": (i * 3) % 5 / 5, "label": "yes" if i % 2 else "no"} for i in range(40)]
    train = tmp_path / "train.csv"
    with train.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["a", "b", "label"])
        writer.writeheader()
        writer.writerows(rows)
    new = tmp_path / "new.csv"
    new.write_text("a,b\n0.1,0.2\n0.5,0.9\n0.3,0.3\n")
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": {"class_path": "nnlit.BinaryMLP", "init_args": {"hidden": [4]}},
                "data": {"class_path": "nnlit.TabularDataModule", "init_args": {"path": str(train), "target": "label"}},
                "trainer": {"default_root_dir": str(tmp_path), "max_epochs": 1, "logger": False},
            }
        )
    )
    base = ["--config", str(config), *QUIET]
    main(["fit", *base])
    (ckpt,) = (tmp_path / "checkpoints").glob("*.ckpt")
    train.unlink()
    out = tmp_path / "predictions.csv"
    writer = f"--prediction_writer.output_path={out}"
    main(["predict", *base, f"--ckpt_path={ckpt}", f"--data.predict_path={new}", writer])
    with out.open() as f:
        predictions = [row["prediction"] for row in csv.DictReader(f)]
    assert len(predictions) == 3 and set(predictions) <= {"no", "yes"}
