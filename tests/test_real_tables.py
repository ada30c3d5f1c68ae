"""A table of numbers, text categories and missing values, end to end: `nnlit fit`, `nnlit predict`, `nnlit.load`,
Predictor and export agree, and an unseen category or a missing number never crashes a prediction."""

import csv
import subprocess
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from helpers import quiet_trainer, run_python

import nnlit
from nnlit import BinaryMLP, Predictor, TabularDataModule
from nnlit.nn.categorical import CategoricalEncoder

pytestmark = pytest.mark.integration  # the module's fit runs the nnlit command in a process

pd = pytest.importorskip("pandas")

CITIES = ["oslo", "rome", "lima", "kyiv", "pune"]
PLANS = [f"p{i:02d}" for i in range(30)]  # more than max_one_hot: embedded
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--report=false"]


def mixed_table(rows: int, seed: int = 0):
    """The label depends on the city (one-hot), the plan (embedded) and the age (with missing values)."""
    rng = np.random.default_rng(seed)
    city = rng.choice(CITIES, rows)
    plan = rng.choice(PLANS, rows)
    age = rng.normal(40, 10, rows)
    score = (np.isin(city, ["rome", "kyiv"]) * 3.0 - 1.5 + (np.array([int(p[1:]) for p in plan]) % 2) * 2.0 - 1.0) + (
        age - 40
    ) / 10
    label = np.where(score > 0, "yes", "no")
    age[rng.random(rows) < 0.15] = np.nan
    city = city.astype(object)
    city[rng.random(rows) < 0.05] = None
    frame = pd.DataFrame({"age": age, "city": city, "plan": plan, "zone": rng.integers(0, 3, rows)})
    return frame, label


def new_rows():
    frame, _ = mixed_table(8, seed=1)
    frame.loc[0, "city"] = "paris"  # unseen
    frame.loc[1, "plan"] = "p99"  # unseen, embedded column
    frame.loc[2, "age"] = np.nan
    frame.loc[3, "city"] = None
    return frame


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """`nnlit fit` then `nnlit predict` on CSV files: the run's directory."""
    root = tmp_path_factory.mktemp("mixed")
    frame, label = mixed_table(1500)
    frame.assign(bought=label).to_csv(root / "train.csv", index=False)
    new_rows().to_csv(root / "new.csv", index=False)
    config = {
        "seed_everything": 0,
        "trainer": {"max_epochs": 25, "default_root_dir": str(root), "logger": False},
        "model": {"class_path": "nnlit.BinaryMLP", "init_args": {"hidden": [32]}},
        "data": {
            "class_path": "nnlit.TabularDataModule",
            "init_args": {
                "path": str(root / "train.csv"),
                "target": "bought",
                "categorical": ["zone"],
                "missing": "median_indicator",
                "batch_size": 32,
                "predict_path": str(root / "new.csv"),
            },
        },
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    nnlit_command("fit", "--config", "config.yaml", cwd=root)
    ckpt = next((root / "checkpoints").glob("*.ckpt"))
    out = nnlit_command(
        "predict",
        "--config",
        "config.yaml",
        "--ckpt_path",
        str(ckpt),
        "--prediction_writer.output_path=preds.csv",
        cwd=root,
    )
    return {"root": root, "ckpt": ckpt, "predict_log": out.stderr + out.stdout}


def nnlit_command(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_python("-m", "nnlit.cli", *args, *QUIET, cwd=cwd)


def written_predictions(run):
    with (run["root"] / "preds.csv").open() as f:
        return list(csv.DictReader(f))


def test_checkpoint_carries_the_preprocessing(run):
    state = torch.load(run["ckpt"], weights_only=True)
    data = state["TabularDataModule"]
    assert data["feature_names"] == ["age", "city", "plan", "zone"]
    assert data["categorical"] == ["city", "plan", "zone"]
    assert data["vocabularies"][0] == [*sorted(CITIES), None]
    assert data["vocabularies"][1] == PLANS and data["vocabularies"][2] == [0, 1, 2]
    assert data["indicators"] == ["age"] and len(data["median"]) == 1
    assert state["hyper_parameters"]["categories"] == [7, 31, 4]


def test_load_rebuilds_the_encoder_without_data(run):
    model = nnlit.load(run["ckpt"])
    assert isinstance(model.network.encoder, CategoricalEncoder)
    assert model.in_features == 1 + 1 + 3  # age, age was missing, three codes
    assert [e.num_embeddings for e in model.network.encoder.embeddings] == [31]  # the plans; city and zone one-hot
    assert isinstance(BinaryMLP.load_from_checkpoint(run["ckpt"]).network.encoder, CategoricalEncoder)


def test_predict_writes_every_row_and_logs_the_unknown_categories(run):
    rows = written_predictions(run)
    assert len(rows) == 8 and {r["prediction"] for r in rows} <= {"no", "yes"}
    assert all(0.0 <= float(r["prob_yes"]) <= 1.0 for r in rows)
    assert "2 categorical values of the predict rows were not in the training split" in run["predict_log"]
    assert "('city': 1, 'plan': 1)" in run["predict_log"]


@pytest.mark.parametrize("form", ["DataFrame", "dict of columns", "list of dicts"])
def test_predictor_matches_nnlit_predict(run, form):
    frame = new_rows()
    if form == "dict of columns":
        rows = {name: frame[name].tolist() for name in frame.columns}
    elif form == "list of dicts":
        rows = frame.to_dict(orient="records")
    else:
        rows = frame
    predictor = Predictor.from_checkpoint(run["ckpt"])
    with pytest.warns(UserWarning, match=r"take the unknown category \('city': 1, 'plan': 1\)"):
        result = predictor.predict(rows)
    written = written_predictions(run)
    np.testing.assert_allclose(np.asarray(result["prob_yes"]), [float(r["prob_yes"]) for r in written], atol=1e-6)
    assert list(result["prediction"]) == [r["prediction"] for r in written]
    assert predictor.unknown_counts == {"city": 1, "plan": 1, "zone": 0}


def test_predictor_warns_once_and_keeps_counting(run):
    predictor = Predictor.from_checkpoint(run["ckpt"])
    row = {"age": 30.0, "city": "paris", "plan": "p01", "zone": 1}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            predictor.predict(row)
    assert len([w for w in caught if "unknown category" in str(w.message)]) == 1
    assert predictor.unknown_counts["city"] == 3


def test_missing_values_take_the_training_median_and_the_indicator(run):
    predictor = Predictor.from_checkpoint(run["ckpt"])
    median = float(predictor.median[0])
    row = {"city": "rome", "plan": "p03", "zone": 2}
    given = predictor.prepare_columns({**row, "age": median})
    for missing in (None, float("nan")):
        filled = predictor.prepare_columns({**row, "age": missing})
        assert filled[0, 0] == median and filled[0, 1] == 1.0 and given[0, 1] == 0.0
        torch.testing.assert_close(filled[:, 2:], given[:, 2:])


def test_predictor_names_a_text_value_in_a_numeric_column(run):
    predictor = Predictor.from_checkpoint(run["ckpt"])
    with pytest.raises(
        ValueError, match=r"Feature column 'age' of the input holds a value that is not a number at row 0: 'old'"
    ):
        predictor.predict({"age": "old", "city": "rome", "plan": "p01", "zone": 1})
    with pytest.raises(ValueError, match=r"lacks feature columns \['plan'\]"):
        predictor.predict({"age": 3.0, "city": "rome", "zone": 1})
    with pytest.raises(TypeError, match="A model with categorical features takes named columns"):
        predictor.predict(np.zeros((2, 4)))


def test_categories_carry_the_signal(run, tmp_path):
    """The label depends on city and plan as much as on age: without them the model is much worse."""
    frame, label = mixed_table(1500)
    dm = TabularDataModule.from_arrays(frame, label, categorical=["zone"], missing="median_indicator", batch_size=32)
    model = nnlit.load(run["ckpt"])
    dm.load_state_dict(torch.load(run["ckpt"], weights_only=True)["TabularDataModule"])
    x, y = dm.split_tensors("val")
    with torch.no_grad():
        accuracy = float(((model(x).view(-1) > 0).long() == y).float().mean())
    numbers_only = TabularDataModule.from_arrays(frame[["age"]], label, missing="median", batch_size=32)
    baseline = BinaryMLP(in_features=numbers_only.num_features, hidden=[32])
    L.seed_everything(0)
    quiet_trainer(tmp_path, max_epochs=25).fit(baseline, datamodule=numbers_only)
    xb, yb = numbers_only.split_tensors("val")
    with torch.no_grad():
        baseline_accuracy = float(((baseline(xb).view(-1) > 0).long() == yb).float().mean())
    assert accuracy > 0.9 and accuracy > baseline_accuracy + 0.15, (accuracy, baseline_accuracy)


def test_onnx_export_takes_the_codes(run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from nnlit.export import export

    path = export(run["ckpt"], tmp_path / "model.onnx")
    predictor = Predictor.from_checkpoint(run["ckpt"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = predictor.prepare_columns(new_rows())
    standardised = ((x - predictor.mean) / predictor.std).numpy()
    session = ort.InferenceSession(str(path))
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: standardised})
    with torch.no_grad():
        expected = predictor.module(torch.from_numpy(standardised)).numpy()
    np.testing.assert_allclose(onnx_out, expected, atol=1e-5)


def test_nnlit_predict_from_the_checkpoint_alone(run, tmp_path):
    """With no training data source, `nnlit predict --ckpt_path` takes the preprocessing from the checkpoint."""
    nnlit_command(
        "predict",
        "--config",
        str(run["root"] / "config.yaml"),
        "--ckpt_path",
        str(run["ckpt"]),
        "--data.init_args.path=null",
        f"--prediction_writer.output_path={tmp_path / 'alone.csv'}",
        cwd=tmp_path,
    )
    assert (tmp_path / "alone.csv").read_text() == (run["root"] / "preds.csv").read_text()


def test_predict_only_data_module(run, tmp_path):
    dm = TabularDataModule(checkpoint=str(run["ckpt"]), predict_path=str(run["root"] / "new.csv"))
    assert dm.predict_only and dm.num_features == 5 and dm.categories == [7, 31, 4] and dm.num_classes == 2
    batches = quiet_trainer(tmp_path).predict(nnlit.load(run["ckpt"]), datamodule=dm)
    probabilities = torch.cat([b["probability"] for b in batches]).tolist()
    written = [float(r["prob_yes"]) for r in written_predictions(run)]
    np.testing.assert_allclose(probabilities, written, atol=1e-6)
    with pytest.raises(ValueError, match="has no training data .*so it cannot fit: give `dataset` or `path`"):
        dm.setup("fit")


def test_checkpoint_without_data_entry_is_named(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "bare.ckpt")
    with pytest.raises(ValueError, match="has no 'TabularDataModule' entry"):
        TabularDataModule(checkpoint=str(tmp_path / "bare.ckpt"), predict_path="new.csv")
    with pytest.raises(FileNotFoundError, match="Checkpoint not found: 'nothing.ckpt'"):
        TabularDataModule(checkpoint="nothing.ckpt", predict_path="new.csv")
    with pytest.raises(ValueError, match="give `checkpoint` and `predict_path` alone"):
        TabularDataModule(predict_path="new.csv")


def test_predictor_repr_names_the_preprocessing(run):
    text = repr(Predictor.from_checkpoint(run["ckpt"]))
    assert "categorical=['city', 'plan', 'zone']" in text and "missing numbers filled, indicators=['age']" in text
