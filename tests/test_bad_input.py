"""Bad input at the command line ends with one message that names what is wrong, the bad value and what is accepted,
and a non-zero exit status; no traceback unless asked for. One row per case."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import nnlit
from nnlit.cli import main

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--config", str(ROOT / "configs/quickstart.yaml"), "--trainer.max_epochs=1", "--report=false"]
QUICK += ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def file_args(path: Path, *extra: str) -> list[str]:
    """``nnlit fit`` on a file whose target column is ``y``."""
    data = ["--data.init_args.dataset=null", f"--data.init_args.path={path}", "--data.init_args.target=y"]
    return ["fit", *QUICK, *data, *extra]


def write_csv(text: str | bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / "table.csv"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    return make


def ids_csv(folder: Path) -> Path:
    rows = 400
    frame = pd.DataFrame(
        {"user": [f"u{i}" for i in range(rows)], "x": np.arange(rows) / rows, "y": [0, 1] * (rows // 2)}
    )
    frame.to_csv(folder / "table.csv", index=False)
    return folder / "table.csv"


def floaty_csv(folder: Path) -> Path:
    frame = pd.DataFrame({"a": np.linspace(0, 1, 30), "y": np.arange(30) % 3 + 0.5})
    frame.to_csv(folder / "table.csv", index=False)
    return folder / "table.csv"


def huge_csv(folder: Path) -> Path:
    (folder / "table.csv").write_text("a,y\n" + "".join(f"{v},{i % 2}\n" for i, v in enumerate([0.5] * 9 + [1e39])))
    return folder / "table.csv"


def nested_parquet(folder: Path) -> Path:
    pd.DataFrame({"a": [[1, 2], [3], [4]] * 4, "y": [0, 1, 0] * 4}).to_parquet(folder / "table.parquet")
    return folder / "table.parquet"


def a_checkpoint(folder: Path) -> Path:
    main(["fit", *QUICK, "--data.init_args.n_samples=100", f"--trainer.default_root_dir={folder}"])
    return next(folder.glob("lightning_logs/version_0/checkpoints/best.ckpt"))


def truncated_checkpoint(folder: Path) -> Path:
    path = a_checkpoint(folder)
    path.write_bytes(path.read_bytes()[:4000])
    return path


def state_dict_file(folder: Path) -> Path:
    torch.save({"network.linear1.weight": torch.zeros(4, 2)}, folder / "weights.ckpt")
    return folder / "weights.ckpt"


def changed_checkpoint(folder: Path, change: Callable[[dict], None], name: str = "evil.ckpt") -> Path:
    """A quick-start checkpoint (its last.ckpt) changed by ``change``, saved as ``folder / name``."""
    a_checkpoint(folder)
    checkpoint = torch.load(folder / "lightning_logs/version_0/checkpoints/last.ckpt", weights_only=True)
    change(checkpoint)
    torch.save(checkpoint, folder / name)
    return folder / name


def removing_a_folder(folder: Path) -> list[str]:
    def plant(checkpoint: dict) -> None:
        state = next(v for k, v in checkpoint["callbacks"].items() if "'monitor': None" in k)
        state["best_model_path"] = f"local://{folder}/important"

    evil = changed_checkpoint(folder, plant)
    return [
        "fit",
        *QUICK,
        "--data.init_args.n_samples=100",
        f"--trainer.default_root_dir={folder}",
        f"--ckpt_path={evil}",
    ]


def declaring_more(checkpoint: dict) -> None:
    checkpoint["hyper_parameters"]["hidden"] = [60000, 60000]


def tampering(checkpoint: dict) -> None:
    weight = checkpoint["state_dict"]["network.linear1.weight"].clone()
    weight.untyped_storage().resize_(16)
    checkpoint["state_dict"]["network.linear1.weight"] = weight


def bad_metrics(folder: Path) -> list[str]:
    (folder / "metrics.csv").write_text("epoch,step,train/loss\n0,1,abc\n")
    return ["plot", str(folder)]


def planted_study(folder: Path, params: dict, attrs: dict | None = None) -> list[str]:
    import json

    import optuna

    (folder / "search.yaml").write_text("model.init_args.hidden: {choices: [[8], [16]]}\n")
    (folder / "sweep").mkdir()
    study = optuna.create_study(storage=f"sqlite:///{folder}/sweep/study.db", study_name="nnlit", direction="maximize")
    distributions = {key: optuna.distributions.CategoricalDistribution([json.dumps(v)]) for key, v in params.items()}
    trial = optuna.trial.create_trial(
        params={k: json.dumps(v) for k, v in params.items()}, distributions=distributions, value=0.9, user_attrs=attrs
    )
    study.add_trial(trial)
    return ["tune", "--config=quickstart", "--search", str(folder / "search.yaml"), "--out", str(folder / "sweep")]


def text_link(folder: Path) -> list[str]:
    (folder / "notes.txt").write_text("password=hunter2\n")
    (folder / "model.ckpt").symlink_to(folder / "notes.txt")
    return ["export", f"--ckpt_path={folder / 'model.ckpt'}"]


#: case -> (how the command line is made from a scratch folder, what the message must say)
CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "batch_size 0": (lambda f: ["fit", *QUICK, "--data.init_args.batch_size=0"], r"`batch_size` must be a positive"),
    "val_fraction 1": (
        lambda f: ["fit", *QUICK, "--data.init_args.val_fraction=1"],
        r"`val_fraction` must be in \[0, 1\), got 1.0",
    ),
    "unknown activation": (
        lambda f: ["fit", *QUICK, "--model.init_args.activation=swish"],
        r"Unknown activation 'swish'. Valid names: elu, gelu,",
    ),
    "unknown loss": (
        lambda f: ["fit", "--config", str(ROOT / "configs/heads/regression.yaml"), "--model.init_args.loss=l3"],
        r"Unknown loss 'l3'. Valid losses: huber, mae, mse",
    ),
    "unknown data set": (
        lambda f: ["fit", *QUICK, "--data.init_args.dataset=spirals"],
        r"Unknown dataset 'spirals'. Built-in sets: breast_cancer, circle,",
    ),
    "UniformInit a > b": (
        lambda f: [
            "fit",
            *QUICK,
            "--trainer.callbacks+={class_path: nnlit.callbacks.UniformInit, init_args: {a: 1, b: -1}}",
        ],
        r"UniformInit needs a <= b, got a=1.0, b=-1.0",
    ),
    "float labels for a multiclass head": (
        lambda f: file_args(floaty_csv(f)),
        r"`num_classes` must be an integer >= 2, got None .*`task: classification`",
    ),
    "hidden [0]": (lambda f: ["fit", *QUICK, "--model.init_args.hidden=[0]"], r"`hidden\[0\]` must be a positive"),
    "a value the parser refuses": (
        lambda f: ["fit", *QUICK, "--trainer.max_epochs=abc"],
        r"trainer.max_epochs: expected int or null, got 'abc'",
    ),
    "max_epochs 0": (lambda f: ["fit", *QUICK, "--trainer.max_epochs=0"], r"`trainer.max_epochs` is 0, so fit would"),
    "empty CSV": (lambda f: file_args(write_csv("")(f)), r"'.*table.csv' is empty: a CSV file needs a header row"),
    "CSV without rows": (lambda f: file_args(write_csv("a,b,y\n")(f)), r"'.*table.csv' has no rows \(only the columns"),
    "non-UTF-8 CSV": (
        lambda f: file_args(write_csv(b"a,y\n\xe9t\xe9,1\n")(f)),
        r"'.*table.csv' is not UTF-8 text \(byte b'\\xe9' at position 4\): save it as UTF-8",
    ),
    "repeated column names": (
        lambda f: file_args(write_csv("a,a,y\n1,2,0\n3,4,1\n")(f)),
        r"'.*table.csv' names columns \['a'\] more than once",
    ),
    "Parquet list column": (lambda f: file_args(nested_parquet(f)), r"Column 'a' of '.*table.parquet' holds nested"),
    "a folder as the data path": (
        lambda f: file_args(f),
        r"'.*' is a folder: give a data file \(.csv, .parquet, .pq\)",
    ),
    "an identifier column": (
        lambda f: file_args(ids_csv(f)),
        r"Categorical column 'user' has 3\d\d distinct values in 3\d\d training rows: it looks like an identifier",
    ),
    "a number beyond float32": (
        lambda f: file_args(huge_csv(f)),
        r"NaN or inf \(inf, or a number beyond float32's range of ±3.4e38\) in .*feature column 'a': 1 rows",
    ),
    "a truncated checkpoint": (
        lambda f: ["predict", *QUICK, f"--ckpt_path={truncated_checkpoint(f)}"],
        r"'.*best.ckpt' is not an nnlit checkpoint: it is a truncated checkpoint",
    ),
    "a plain state_dict as a checkpoint": (
        lambda f: ["predict", *QUICK, f"--ckpt_path={state_dict_file(f)}"],
        r"'.*weights.ckpt' is not a Lightning checkpoint: it is a plain state_dict of 1 tensors",
    ),
    "a misspelt model option": (
        lambda f: ["fit", *QUICK, "--model.init_args.hiden=[8]"],
        r"model: Option 'hiden' is not accepted \(nnlit.MulticlassMLP\)\. Did you mean 'hidden'\? Accepted: in_f",
    ),
    "an abbreviated trainer flag": (
        lambda f: ["fit", *QUICK, "--trainer.max_epoc=3"],
        r"unrecognized arguments: --trainer.max_epoc=3\. Did you mean --trainer.max_epochs\?",
    ),
    "an optimizer option it does not take": (
        lambda f: ["fit", *QUICK, "--model.init_args.optimizer.init_args.learning_rate=0.1"],
        r"model.optimizer: Option 'learning_rate' is not accepted \(torch.optim.Adam\)\. Accepted: lr, betas",
    ),
    "no CPU threads": (
        lambda f: ["fit", *QUICK, "--threads=0"],
        r"`threads` must be 'auto' or a positive integer, got 0",
    ),
    "threads that are not a number": (
        lambda f: ["fit", *QUICK, "--threads=many"],
        r"threads: expected int or 'auto', got 'many'",
    ),
    "a resumed checkpoint naming a folder to remove": (
        removing_a_folder,
        r"'.*evil.ckpt': callbacks\[.*\]\.best_model_path names 'local://.*important', a path with a protocol",
    ),
    "hyperparameters declaring more than the weights": (
        lambda f: ["export", f"--ckpt_path={changed_checkpoint(f, declaring_more)}"],
        r"'.*evil.ckpt': the hyperparameters declare network\.linear1\.weight of shape \(60000, 2\), but state_dict",
    ),
    "a tensor larger than its stored data": (
        lambda f: ["export", f"--ckpt_path={changed_checkpoint(f, tampering)}"],
        r"'.*evil.ckpt' holds tensors that do not fit their stored data \(the file was altered or damaged\)",
    ),
    "a metrics.csv value that is not a number": (
        bad_metrics,
        r"'.*metrics.csv', line 2, column 'train/loss': 'abc' is not a number",
    ),
    "a class_path naming a function": (
        lambda f: ["fit", *QUICK, "--model.class_path=os.system"],
        r"model\.class_path: 'os\.system' is not a subclass of MLPModule",
    ),
    "a subcommand without its required argument": (
        lambda f: ["export", "--format", "onnx"],
        r"the following arguments are required: --ckpt_path \(see nnlit export --help\)",
    ),
    "a study trial with a key outside the search space": (
        lambda f: planted_study(f, {"model.init_args.hidden": [8], "trainer.default_root_dir": "/elsewhere"}),
        r"Trial 0 of study 'nnlit' in '.*study.db' holds 'trainer.default_root_dir', which is not a key of the search",
    ),
    "a study trial whose std is not a number": (
        lambda f: [*planted_study(f, {"model.init_args.hidden": [8]}, {"std": "abc"}), "--folds", "2"],
        r"Trial 0 of study 'nnlit' in '.*study.db' holds a `folds` or `std` attribute that is not a number",
    ),
    "a feature column with no value to fill": (
        lambda f: file_args(
            write_csv("a,b,y\n" + "".join(f"{i},,{i % 2}\n" for i in range(40)))(f), "--data.init_args.missing=median"
        ),
        r"Feature column 'b' has no value in the \d+ training rows \(every one is missing\)",
    ),
    "a link to a text file given as a checkpoint": (
        text_link,
        r"'.*model.ckpt' is not an nnlit checkpoint: it is a text file$",
    ),
    "an ONNX opset the exporter cannot write": (
        lambda f: ["export", f"--ckpt_path={a_checkpoint(f)}", "--opset_version=1"],
        r"The ONNX exporter cannot write opset 1: it wrote opset \d+ instead \(the file is removed\)",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_ends_with_one_message(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make, expected = CASES[case]
    args = make(tmp_path)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("nnlit")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.search(expected, lines[0]), lines[0]
    assert not list(tmp_path.glob("**/*.onnx"))  # nothing half-done is left behind
    shown = lines[0].replace(str(tmp_path), "DIR").replace(f"{ROOT}/", "")
    assert _digits_masked(shown) == _digits_masked(CATALOGUE.get(case, "")), (
        f"docs/figures/errors.md does not hold {case!r}'s message as the command now words it: "
        "rerun python scripts/docs_errors.py"
    )


#: the error catalogue the docs include: case -> the message line (scripts/docs_errors.py writes it)
CATALOGUE = dict(
    re.findall(r"^### (.+?)\n\n```text\n\$ .*?\n(nnlit.*?)\n```", (ROOT / "docs/figures/errors.md").read_text(), re.M)
)


def _digits_masked(text: str) -> str:
    return re.sub(r"\d+", "N", text)  # an exporter's opset, a file's byte count: numbers vary between releases


def test_the_error_catalogue_holds_every_case():
    assert sorted(CATALOGUE) == sorted(CASES)


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"`batch_size` must be a positive integer, got 0"):
        main(["fit", *QUICK, "--data.init_args.batch_size=0", "--debug"])
    monkeypatch.setenv("NNLIT_DEBUG", "1")
    with pytest.raises(ValueError, match=r"`batch_size` must be a positive integer, got 0"):
        main(["fit", *QUICK, "--data.init_args.batch_size=0"])


def test_a_yaml_config_given_to_load_says_what_it_is():
    with pytest.raises(ValueError, match=r"is not an nnlit checkpoint: it is a text file \(a YAML config, by its look"):
        nnlit.load(ROOT / "configs/quickstart.yaml")


def test_a_date_column_given_to_a_predictor_is_refused():
    predictor = nnlit.Predictor(nnlit.BinaryMLP(in_features=2, hidden=[4]), feature_names=["a", "when"])
    frame = pd.DataFrame({"a": [1.0], "when": pd.to_datetime(["2026-01-01"])})
    with pytest.raises(ValueError, match=r"Feature column 'when' of the DataFrame holds dates or durations"):
        predictor.predict(frame)
