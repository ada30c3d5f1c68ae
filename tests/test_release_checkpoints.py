"""Checkpoints written by nnlit 0.1.0 (the files under ``tests/checkpoints/release_0_1_0/``, made by that release's
code) load in this one and predict the numbers that release predicted (``expected.json``, written by the same code)."""

import json
import warnings
from pathlib import Path

import pytest
import torch

import nnlit

FOLDER = Path(__file__).parent / "checkpoints" / "release_0_1_0"
EXPECTED = json.loads((FOLDER / "expected.json").read_text())


@pytest.mark.parametrize(("name", "head"), [("multiclass", nnlit.MulticlassMLP), ("regression", nnlit.RegressionMLP)])
def test_load_gives_the_release_outputs(name, head):
    case = EXPECTED[f"{name}_load"]
    model = nnlit.load(FOLDER / f"{name}.ckpt")
    assert type(model) is head
    with torch.no_grad():
        outputs = model(torch.tensor(case["x"]))
    torch.testing.assert_close(outputs, torch.tensor(case["outputs"]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["multiclass", "regression"])
def test_predictor_gives_the_release_predictions(name):
    pd = pytest.importorskip("pandas")
    case = EXPECTED[f"{name}_predictor"]
    rows = pd.DataFrame(case["rows"]) if isinstance(case["rows"], dict) else case["rows"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "purple" is a colour the table never had
        result = nnlit.Predictor.from_checkpoint(FOLDER / f"{name}.ckpt").predict(rows)
    assert list(result) == list(case["result"])
    for column, values in case["result"].items():
        got = result[column]
        got = got.tolist() if hasattr(got, "tolist") else list(got)
        if isinstance(values[0], float):
            assert got == pytest.approx(values, rel=1e-6, abs=1e-6), column
        else:
            assert got == values, column


def test_the_release_hyperparameters_build_the_same_module():
    model = nnlit.load(FOLDER / "multiclass.ckpt")
    assert model.hparams["hidden"] == [4] and model.hparams["categories"] == [4]
    # two numbers and a colour of 4 codes (unknown included) one-hot encoded: 5 inputs to linear1
    assert model.network.layer_parameters() == {"linear1": 5 * 4 + 4, "output": 4 * 3 + 3}
