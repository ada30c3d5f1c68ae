"""`nnlit export --format onnx --raw-rows`: one ONNX file from the table's own columns to the decoded prediction, equal
to Predictor on the real tables of the suite (text categories, gaps, unseen values), and servable by a client that
imports neither torch nor nnlit."""

import re
import warnings

import lightning as L
import numpy as np
import pytest
import torch
from doc_blocks import ROOT, blocks
from helpers import quiet_trainer, run_python
from test_real_tables import mixed_table, new_rows

from nnlit import BinaryMLP, MulticlassMLP, Predictor, RegressionMLP, TabularDataModule
from nnlit.export import export, main

ort = pytest.importorskip("onnxruntime")
pd = pytest.importorskip("pandas")
pytest.importorskip("onnxscript")


def fit_and_save(model, data, root, name, epochs=3):
    L.seed_everything(0)
    trainer = quiet_trainer(root, max_epochs=epochs)
    trainer.fit(model, datamodule=data)
    trainer.save_checkpoint(root / name)
    return root / name


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """The suite's table of numbers, text categories (one embedded) and gaps, as a binary classifier."""
    root = tmp_path_factory.mktemp("raw_rows")
    frame, label = mixed_table(600)
    data = TabularDataModule.from_arrays(frame, label, categorical=["zone"], missing="median_indicator", batch_size=64)
    data.setup("fit")
    model = BinaryMLP(in_features=data.num_features, hidden=[16], categories=data.categories)
    ckpt = fit_and_save(model, data, root, "mixed.ckpt")
    return ckpt, export(ckpt, root / "mixed.onnx", raw_rows=True)


def feeds(session, rows):
    """The client's columns: text as str ("" where missing), numbers as float32 (NaN where missing)."""
    out = {}
    for spec in session.get_inputs():
        column = rows[spec.name]
        text = spec.type == "tensor(string)"
        out[spec.name] = column.fillna("").astype(str).to_numpy() if text else column.to_numpy(np.float32)
    return out


def predictor_table(ckpt, rows):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unseen categories' warning
        return Predictor.from_checkpoint(ckpt).predict(rows)


def assert_matches_predictor(ckpt, path, rows):
    session = ort.InferenceSession(str(path))
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds(session, rows))))
    expected = predictor_table(ckpt, rows)
    if "probabilities" in outputs:
        probabilities = expected[[c for c in expected.columns if c.startswith("prob_")]].to_numpy()
        np.testing.assert_allclose(outputs["probabilities"], probabilities, atol=1e-5)
        assert outputs["prediction"].tolist() == expected["prediction"].tolist()
    else:
        np.testing.assert_allclose(outputs["prediction"], expected["prediction"].to_numpy(), rtol=1e-5, atol=1e-4)
    return outputs


def rows_with_gaps_and_unseen_values():
    rows = pd.concat([new_rows(), mixed_table(40, seed=7)[0]], ignore_index=True)
    rows.loc[4, "zone"] = 7  # a number category training did not see
    rows.loc[5, "zone"] = np.nan  # a missing number category (no missing zone in training: unknown)
    rows.loc[6, ["age", "city"]] = [np.nan, None]
    rows.loc[7, "plan"] = None  # the embedded column, missing
    return rows


def test_the_graph_takes_the_tables_columns(mixed):
    session = ort.InferenceSession(str(mixed[1]))
    inputs = {i.name: (i.type, i.shape) for i in session.get_inputs()}
    assert inputs == {
        "age": ("tensor(float)", ["batch"]),
        "city": ("tensor(string)", ["batch"]),
        "plan": ("tensor(string)", ["batch"]),
        "zone": ("tensor(float)", ["batch"]),
    }
    outputs = {o.name: (o.type, o.shape) for o in session.get_outputs()}
    assert outputs == {"prediction": ("tensor(string)", ["batch"]), "probabilities": ("tensor(float)", ["batch", 2])}


def test_mixed_table_with_gaps_and_unseen_categories_equals_predictor(mixed):
    rows = rows_with_gaps_and_unseen_values()
    outputs = assert_matches_predictor(*mixed, rows)
    assert set(outputs["prediction"].tolist()) <= {"no", "yes"}


def test_the_training_rows_equal_predictor(mixed):
    assert_matches_predictor(*mixed, mixed_table(600)[0])


def test_a_missing_category_is_a_category_of_its_own(mixed):
    """city had gaps in training: "" is the missing city, not unknown; "paris" is unknown."""
    session = ort.InferenceSession(str(mixed[1]))
    row = pd.DataFrame({"age": [40.0] * 3, "city": [None, "paris", "rome"], "plan": ["p01"] * 3, "zone": [1] * 3})
    prepared = Predictor.from_checkpoint(mixed[0]).prepare_columns(row)
    assert prepared[0, 2] != 0 and prepared[1, 2] == 0  # the missing city has a code; the unseen one is 0
    _, probabilities = session.run(None, feeds(session, row))
    assert not np.allclose(probabilities[0], probabilities[1])  # so the two rows differ
    np.testing.assert_allclose(probabilities, predictor_table(mixed[0], row)[["prob_no", "prob_yes"]], atol=1e-5)


@pytest.mark.parametrize("batch", [1, 5])
def test_any_batch_size(mixed, batch):
    assert_matches_predictor(*mixed, new_rows().iloc[:batch])


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    root = tmp_path_factory.mktemp("iris")
    data = TabularDataModule(dataset="iris", batch_size=16)
    ckpt = fit_and_save(MulticlassMLP(in_features=4, num_classes=3, hidden=[8]), data, root, "iris.ckpt", epochs=5)
    return ckpt, export(ckpt, root / "iris.onnx", raw_rows=True)


def test_multiclass_real_table_equals_predictor(iris):
    from nnlit.data.sklearn_sets import load_real

    x, _, names = load_real("iris")
    outputs = assert_matches_predictor(*iris, pd.DataFrame(x, columns=names))
    assert set(outputs["prediction"].tolist()) <= {"setosa", "versicolor", "virginica"}


def test_regression_with_gaps_equals_predictor(tmp_path):
    """diabetes, with gaps put in a column and imputed: the prediction in the target's units."""
    from nnlit.data.sklearn_sets import load_real

    x, y, names = load_real("diabetes")
    frame = pd.DataFrame(x, columns=names)
    frame.loc[::7, "bmi"] = np.nan
    target = y.astype(np.float32)
    data = TabularDataModule.from_arrays(frame, target, task="regression", missing="median", batch_size=64)
    ckpt = fit_and_save(RegressionMLP(in_features=10, hidden=[16]), data, tmp_path, "diabetes.ckpt")
    path = export(ckpt, tmp_path / "diabetes.onnx", raw_rows=True)
    outputs = assert_matches_predictor(ckpt, path, frame.iloc[:50])
    assert outputs["prediction"].shape == (50,) and 0 < float(np.mean(outputs["prediction"])) < 400


def test_integer_classes_are_decoded(tmp_path):
    x = np.random.default_rng(0).normal(size=(120, 2)).astype(np.float32)
    data = TabularDataModule.from_arrays(x, np.where(x[:, 0] > 0, 7, 3), feature_names=["a", "b"], batch_size=32)
    ckpt = fit_and_save(BinaryMLP(in_features=2, hidden=[4]), data, tmp_path, "ints.ckpt")
    path = export(ckpt, tmp_path / "ints.onnx", raw_rows=True)
    outputs = assert_matches_predictor(ckpt, path, pd.DataFrame(x, columns=["a", "b"]))
    assert outputs["prediction"].dtype == np.int64 and set(outputs["prediction"].tolist()) <= {3, 7}


def test_command_writes_the_raw_rows_file(mixed, tmp_path, capsys):
    main(["--ckpt_path", str(mixed[0]), "--raw-rows", "--out", str(tmp_path / "cli.onnx")])
    assert capsys.readouterr().out.strip() == f"Wrote {tmp_path / 'cli.onnx'}"
    assert_matches_predictor(mixed[0], tmp_path / "cli.onnx", new_rows())


def test_raw_rows_is_onnx_only(mixed):
    with pytest.raises(ValueError, match=r"`raw_rows` writes an ONNX file: give format='onnx', got format='torch"):
        export(mixed[0], format="torchscript", raw_rows=True)


def test_raw_rows_needs_the_data_modules_preprocessing(tmp_path, make_trainer):
    model = BinaryMLP(in_features=2, hidden=[4])
    trainer = make_trainer(max_steps=1)
    trainer.fit(model, torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(4, 2), torch.ones(4))))
    trainer.save_checkpoint(tmp_path / "bare.ckpt")
    with pytest.raises(ValueError, match="has no 'TabularDataModule' entry"):
        export(tmp_path / "bare.ckpt", raw_rows=True)


def test_a_feature_named_like_an_output_is_refused(tmp_path):
    x = np.random.default_rng(0).normal(size=(60, 2)).astype(np.float32)
    data = TabularDataModule.from_arrays(x, x[:, 0] > 0, feature_names=["prediction", "b"], batch_size=32)
    ckpt = fit_and_save(BinaryMLP(in_features=2, hidden=[4]), data, tmp_path, "named.ckpt", epochs=1)
    with pytest.raises(ValueError, match=r"feature columns \['prediction'\] are named the same: rename them"):
        export(ckpt, raw_rows=True)


def test_a_category_of_text_and_numbers_is_refused():
    from nnlit.data.fitted_preprocessing import FittedPreprocessing
    from nnlit.raw_rows_onnx import write_raw_rows_onnx

    prep = FittedPreprocessing(["a", "kind"], categorical=["kind"], vocabularies=[["x", 3]])
    model = BinaryMLP(in_features=2, hidden=[4], categories=[3])
    with pytest.raises(ValueError, match=r"Categorical column 'kind' has training values of several types \(int, str"):
        write_raw_rows_onnx(model, prep, model.network, ROOT / "never.onnx")


# ---------------------------------------------------------------- the client of docs/serving.md
#: a client that finds torch or nnlit importable has not shown that it needs neither
BLOCKER = """
import sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "nnlit", "lightning"):
            raise ImportError(f"{name} is blocked: the client must run without it")
        return None

sys.meta_path.insert(0, Blocked())
"""


def client_block():
    (code,) = [code for code in blocks(ROOT / "docs" / "serving.md", "python") if "ort.InferenceSession(" in code
               and "import nnlit" not in code and "from nnlit" not in code]  # fmt: skip
    return code


@pytest.mark.integration
def test_the_served_client_needs_neither_torch_nor_nnlit(mixed, tmp_path):
    """docs/serving.md's client, run as written in a fresh process where importing torch, lightning or nnlit fails,
    on rows with gaps and unseen categories: it prints what Predictor predicts."""
    code = client_block()
    assert len([line for line in code.splitlines() if line.strip()]) <= 12
    model, rows = re.search(r'InferenceSession\("([^"]+)"\)', code)[1], re.search(r'read_csv\("([^"]+)"\)', code)[1]
    (tmp_path / model).write_bytes(mixed[1].read_bytes())
    new = rows_with_gaps_and_unseen_values().iloc[:6]
    new.to_csv(tmp_path / rows, index=False)
    blocked = run_python("-c", BLOCKER + "\nimport torch", cwd=tmp_path, ok=False)
    assert "torch is blocked" in blocked.stderr  # the blocker works
    out = run_python("-c", BLOCKER + code, cwd=tmp_path).stdout
    expected = predictor_table(mixed[0], pd.read_csv(tmp_path / rows))
    assert [line.split()[0] for line in out.splitlines()] == expected["prediction"].tolist(), out
    assert "paris" in (tmp_path / rows).read_text() and "p99" in (tmp_path / rows).read_text()
