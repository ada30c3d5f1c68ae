import csv
import math
import os
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import quiet_trainer, run_python

import nnlit
from nnlit import BinaryMLP, MulticlassMLP, RegressionMLP, TabularDataModule
from nnlit.callbacks import CSVPredictionWriter
from nnlit.predictor import Predictor

NAMES = ["a", "b", "c"]
ANIMALS = np.array(["cat", "dog", "eel"])


def table(rows=60, seed=0):
    """Columns on very different scales, so that a missed standardisation changes every prediction."""
    return np.random.default_rng(seed).normal(size=(rows, 3)) * [1.0, 10.0, 100.0] + [0.0, 5.0, -50.0]


def build(head, x):
    if head == "binary":
        dm = TabularDataModule.from_arrays(x, np.where(x[:, 0] > 0, "yes", "no"), feature_names=NAMES)
        return BinaryMLP(in_features=3, hidden=[8]), dm
    if head == "multiclass":
        labels = ANIMALS[np.digitize(x[:, 1], np.quantile(x[:, 1], [1 / 3, 2 / 3]))]
        dm = TabularDataModule.from_arrays(x, labels, feature_names=NAMES)
        return MulticlassMLP(in_features=3, num_classes=3, hidden=[8]), dm
    dm = TabularDataModule.from_arrays(x, x @ [1.0, 0.1, 0.01] + 3.0, feature_names=NAMES)
    return RegressionMLP(in_features=3, hidden=[8], target_mean=dm.target_mean, target_std=dm.target_std), dm


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A few training steps of each head on ``table()``, saved: ``{head: path}``."""
    root = tmp_path_factory.mktemp("predictor")
    paths = {}
    for head in ("binary", "multiclass", "regression"):
        model, dm = build(head, table())
        trainer = quiet_trainer(root, max_steps=5)
        trainer.fit(model, datamodule=dm)
        paths[head] = root / f"{head}.ckpt"
        trainer.save_checkpoint(paths[head])
    return paths


def edit(path, change, out):
    checkpoint = torch.load(path, weights_only=True)
    change(checkpoint)
    torch.save(checkpoint, out)
    return out


def expected_table(path, x):
    """The writer's columns computed directly: standardise with the checkpoint's mean / std, forward, then sigmoid,
    softmax or the regression head's rescaling; the module's own predict_step must agree."""
    state = torch.load(path, weights_only=True)["TabularDataModule"]
    module = nnlit.load(path)
    xs = (torch.as_tensor(x, dtype=torch.float32) - torch.tensor(state["mean"])) / torch.tensor(state["std"])
    with torch.no_grad():
        logits = module.network(xs)
        own = module.predict_step(xs, 0)
    table = {"row": list(range(len(x)))}
    if isinstance(module, BinaryMLP):
        p = torch.sigmoid(logits.view(-1))
        labels = (p >= 0.5).long()
        torch.testing.assert_close(own["probability"], p)
        probabilities = torch.stack([1 - p, p], dim=1)
    elif isinstance(module, MulticlassMLP):
        probabilities = torch.softmax(logits, dim=1)
        labels = probabilities.argmax(dim=1)
        torch.testing.assert_close(own["probabilities"], probabilities)
    else:
        prediction = logits * module.target_std + module.target_mean
        torch.testing.assert_close(own["prediction"], prediction)
        table["prediction"] = prediction.view(-1).tolist()
        return table
    assert torch.equal(own["label"], labels)
    table["prediction"] = [state["classes"][i] for i in labels.tolist()]
    for j, name in enumerate(state["classes"]):
        table[f"prob_{name}"] = probabilities[:, j].tolist()
    return table


def assert_same(got, expected):
    if isinstance(got, pd.DataFrame):
        got = {column: got[column].tolist() for column in got.columns}
    assert list(got) == list(expected)
    for column, values in expected.items():
        if values and isinstance(values[0], str):
            assert got[column] == values, column
        else:
            np.testing.assert_allclose(np.asarray(got[column], dtype=float), values, rtol=1e-6, atol=1e-6)


FORMS = {
    "DataFrame": lambda x: pd.DataFrame(x, columns=NAMES),
    "dict of lists": lambda x: {name: x[:, j].tolist() for j, name in enumerate(NAMES)},
    "dict of arrays": lambda x: {name: x[:, j] for j, name in enumerate(NAMES)},
    "dict of tensors": lambda x: {name: torch.tensor(x[:, j]) for j, name in enumerate(NAMES)},
    "dict of Series": lambda x: {name: pd.Series(x[:, j]) for j, name in enumerate(NAMES)},
    "list of dicts": lambda x: [dict(zip(NAMES, row)) for row in x.tolist()],
    "numpy array": lambda x: x,
    "float32 array": lambda x: x.astype(np.float32),
    "tensor": lambda x: torch.tensor(x),
    "list of lists": lambda x: x.tolist(),
}
HEADS = ["binary", "multiclass", "regression"]


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("head", HEADS)
def test_predictions_equal_a_direct_computation(checkpoints, head, form):
    x = table(rows=7, seed=1)
    predictor = Predictor.from_checkpoint(checkpoints[head])
    result = predictor.predict(FORMS[form](x))
    assert isinstance(result, pd.DataFrame) == (form == "DataFrame")
    assert_same(result, expected_table(checkpoints[head], x))
    assert list(result) == predictor.output_columns


@pytest.mark.parametrize("head", HEADS)
def test_one_row_dict(checkpoints, head):
    x = table(rows=1, seed=2)
    result = Predictor.from_checkpoint(checkpoints[head]).predict(dict(zip(NAMES, x[0])))
    assert all(len(values) == 1 for values in result.values())
    assert_same(result, expected_table(checkpoints[head], x))


@pytest.mark.parametrize("head", HEADS)
def test_same_columns_and_values_as_the_csv_writer(checkpoints, head, tmp_path):
    x = table()
    _, dm = build(head, x)
    out = tmp_path / "p.csv"
    trainer = quiet_trainer(tmp_path, callbacks=[CSVPredictionWriter(str(out))])
    trainer.predict(nnlit.load(checkpoints[head]), datamodule=dm)
    with open(out) as f:
        written = list(csv.DictReader(f))
    got = Predictor.from_checkpoint(checkpoints[head]).predict(pd.DataFrame(x, columns=NAMES))
    assert list(got.columns) == list(written[0])
    assert [str(v) for v in got["prediction"]] == [r["prediction"] for r in written]
    for column in got.columns:
        if column != "prediction":
            np.testing.assert_allclose(got[column], [float(r[column]) for r in written], rtol=1e-6, atol=1e-6)


def test_multiclass_labels_are_the_original_strings(checkpoints):
    predictor = Predictor.from_checkpoint(checkpoints["multiclass"])
    result = predictor.predict(pd.DataFrame(table(), columns=NAMES))
    assert predictor.classes == ["cat", "dog", "eel"]
    assert list(result.columns) == ["row", "prediction", "prob_cat", "prob_dog", "prob_eel"]
    assert set(result["prediction"]) <= {"cat", "dog", "eel"}
    np.testing.assert_allclose(result[["prob_cat", "prob_dog", "prob_eel"]].sum(axis=1), 1.0, rtol=1e-6)


def test_dataframe_result_keeps_the_input_index(checkpoints):
    frame = pd.DataFrame(table(rows=3), columns=NAMES, index=["r1", "r2", "r3"])
    result = Predictor.from_checkpoint(checkpoints["binary"]).predict(frame)
    assert list(result.index) == ["r1", "r2", "r3"] and result["row"].tolist() == [0, 1, 2]


@pytest.mark.parametrize("form", ["DataFrame", "dict of lists", "list of dicts"])
def test_column_order_does_not_matter(checkpoints, form):
    x = table(rows=5, seed=3)
    predictor = Predictor.from_checkpoint(checkpoints["multiclass"])
    reordered = FORMS[form](x)
    if form == "DataFrame":
        reordered = reordered[["c", "a", "b"]]
    elif form == "dict of lists":
        reordered = {name: reordered[name] for name in ["c", "a", "b"]}
    else:
        reordered = [{name: row[name] for name in ["b", "c", "a"]} for row in reordered]
    assert_same(predictor.predict(reordered), expected_table(checkpoints["multiclass"], x))
    assert_same(predictor.predict(reordered), expected_table(checkpoints["multiclass"], x))  # the cached layout


def test_predict_tensor_is_the_modules_predict_step(checkpoints):
    predictor = Predictor.from_checkpoint(checkpoints["binary"])
    x = torch.tensor(table(rows=4), dtype=torch.float32)
    got = predictor.predict_tensor(x)
    expected = predictor.module.predict_step((x - predictor.mean) / predictor.std, 0)
    assert got.keys() == expected.keys()
    for key in got:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)
    assert got["probability"].is_inference()  # computed under torch.inference_mode()
    assert not predictor.module.training


def test_hand_built_predictor_equals_the_checkpoints(checkpoints):
    state = torch.load(checkpoints["regression"], weights_only=True)["TabularDataModule"]
    by_hand = Predictor(nnlit.load(checkpoints["regression"]), NAMES, state["mean"], state["std"], None)
    x = table(rows=6, seed=4)
    assert by_hand.predict(x) == Predictor.from_checkpoint(checkpoints["regression"]).predict(x)


def test_repr(checkpoints):
    predictor = Predictor.from_checkpoint(checkpoints["multiclass"])
    assert repr(predictor) == (
        "Predictor(MulticlassMLP, features=['a', 'b', 'c'], standardized, classes=['cat', 'dog', 'eel'], device=cpu)"
    )


def test_without_standardization():
    model = RegressionMLP(in_features=2, hidden=[4])
    predictor = Predictor(model, feature_names=["u", "v"])
    x = torch.randn(3, 2)
    with torch.no_grad():
        expected = model(x).view(-1).tolist()
    np.testing.assert_allclose(predictor.predict({"u": x[:, 0], "v": x[:, 1]})["prediction"], expected, rtol=1e-6)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "rows, where",
    [
        (pd.DataFrame({"b": [1.0], "x": [2.0]}), "The DataFrame lacks"),
        ({"b": 1.0}, "The dict lacks"),
        ({"b": [1.0, 2.0]}, "The dict of columns lacks"),
        (
            [{"a": 1, "b": 1, "c": 1}, {"b": 1.0, "c": 1}, {"a": 1, "b": 1.0}],
            r"The list of dicts \(row 1 first\) lacks",
        ),
    ],
)
def test_missing_columns_are_all_listed(checkpoints, rows, where):
    predictor = Predictor.from_checkpoint(checkpoints["binary"])
    with pytest.raises(ValueError, match=rf"{where} feature columns \['a', 'c'\]\. The model takes 3: a, b, c; got b"):
        predictor.predict(rows)


@pytest.mark.parametrize(
    "rows",
    [
        pd.DataFrame({"c": [1.0, 2.0], "id": ["x", "y"], "b": [1.0, 2.0], "a": [0.0, 1.0], "note": [None, "z"]}),
        {"c": [1.0, 2.0], "id": ["x", "y"], "b": [1.0, 2.0], "a": [0.0, 1.0], "note": [None, "z"]},
        [{"a": 0.0, "b": 1.0, "c": 1.0, "id": "x"}, {"a": 1.0, "b": 2.0, "c": 2.0, "note": "z"}],
    ],
    ids=["DataFrame", "dict of columns", "list of dicts"],
)
def test_extra_columns_are_ignored_with_one_warning(checkpoints, rows):
    predictor = Predictor.from_checkpoint(checkpoints["binary"])
    expected = predictor.predict(np.array([[0.0, 1.0, 1.0], [1.0, 2.0, 2.0]]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = predictor.predict(rows)
        second = predictor.predict(rows)
        predictor.predict({"a": 1.0, "b": 2.0, "c": 3.0, "other": 4.0})
    assert [str(w.message) for w in caught] == [
        "Predictor ignores columns the model was not trained on: 'id', 'note' (this warning is shown once per "
        "Predictor)"
    ]
    assert caught[0].filename == __file__  # points at the caller's line
    assert_same(first, expected)
    assert_same(second, expected)


def test_each_predictor_warns_once_of_its_own(checkpoints):
    rows = {"a": 1.0, "b": 2.0, "c": 3.0, "other": 4.0}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            Predictor.from_checkpoint(checkpoints["binary"]).predict(rows)
    assert len(caught) == 2 and "'other'" in str(caught[0].message)


@pytest.mark.parametrize(
    "rows",
    [
        pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, "oops"], "c": [0.0, 0.0, 0.0]}),
        {"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, "oops"], "c": [0.0, 0.0, 0.0]},
        [{"a": 1.0, "b": 1.0, "c": 0.0}, {"a": 2.0, "b": 2.0, "c": 0.0}, {"a": 3.0, "b": "oops", "c": 0.0}],
        [[1.0, 1.0, 0.0], [2.0, 2.0, 0.0], [3.0, "oops", 0.0]],
        np.array([[1.0, 1.0, 0.0], [2.0, 2.0, 0.0], [3.0, "oops", 0.0]], dtype=object),
    ],
    ids=["DataFrame", "dict of columns", "list of dicts", "list of lists", "object array"],
)
def test_a_value_that_is_not_a_number_is_named(checkpoints, rows):
    predictor = Predictor.from_checkpoint(checkpoints["binary"])
    with pytest.raises(
        ValueError,
        match=r"Feature column 'b' of the input holds a value that is not a number at row 2: 'oops'; the model is "
        r"trained on numbers in this column \(a text column is categorical in training\)",
    ):
        predictor.predict(rows)


def test_numeric_strings_and_bools_are_numbers(checkpoints):
    predictor = Predictor.from_checkpoint(checkpoints["regression"])
    assert predictor.predict({"a": "1.5", "b": True, "c": 2}) == predictor.predict([[1.5, 1.0, 2.0]])


def test_a_nested_list_is_not_a_number(checkpoints):
    predictor = Predictor.from_checkpoint(checkpoints["binary"])
    with pytest.raises(
        ValueError,
        match=r"Feature column 'c' of the input holds a value that is not a number at row 0: \[1, 2\]; .*column$",
    ):
        predictor.predict([{"a": 1.0, "b": 1.0, "c": [1, 2]}])


@pytest.mark.parametrize(
    "rows, column, row, count",
    [
        (pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0], "c": [0.0, np.nan, np.nan]}), "c", 1, 2),
        (pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int64"), "b": [1.0] * 3, "c": [0.0] * 3}), "a", 1, 1),
        ({"a": [1.0, None], "b": [1.0, 2.0], "c": [0.0, 0.0]}, "a", 1, 1),
        ({"a": 1.0, "b": math.inf, "c": 0.0}, "b", 0, 1),
        ([{"a": 1.0, "b": 1.0, "c": 0.0}, {"a": 2.0, "b": 2.0, "c": None}], "c", 1, 1),
        (torch.tensor([[1.0, 1.0, 0.0], [2.0, -math.inf, 0.0]]), "b", 1, 1),
        (np.array([[1.0, 1.0, 0.0], [2.0, 2.0, np.nan]]), "c", 1, 1),
    ],
    ids=["DataFrame NaN", "nullable NA", "None in a column", "inf in a row", "None in a dict", "tensor", "array"],
)
def test_nan_inf_and_missing_values_are_named(checkpoints, rows, column, row, count):
    predictor = Predictor.from_checkpoint(checkpoints["binary"])
    # one check for training and serving: NaN and missing values name the `missing` setting, inf float32's range
    with pytest.raises(
        ValueError, match=rf"in the input, feature column '{column}': {count} rows \(first at row {row}\)"
    ) as raised:
        predictor.predict(rows)
    infinite = column == "b"
    assert ("beyond float32's range" in str(raised.value)) == infinite
    assert ("trained with `missing: error`" in str(raised.value)) == (not infinite)


@pytest.mark.parametrize("head", HEADS)
def test_an_empty_input_gives_an_empty_result(checkpoints, head):
    predictor = Predictor.from_checkpoint(checkpoints[head])
    empty = predictor.predict(pd.DataFrame({name: pd.Series(dtype=float) for name in NAMES}))
    assert isinstance(empty, pd.DataFrame) and list(empty.columns) == predictor.output_columns and len(empty) == 0
    for rows in ([], np.zeros((0, 3)), torch.zeros(0, 3), {name: [] for name in NAMES}):
        assert predictor.predict(rows) == {column: [] for column in predictor.output_columns}


def test_an_empty_dict_lacks_every_column(checkpoints):
    with pytest.raises(ValueError, match=r"The dict lacks feature columns \['a', 'b', 'c'\].*got none"):
        Predictor.from_checkpoint(checkpoints["binary"]).predict({})


@pytest.mark.parametrize(
    "rows, match",
    [
        (np.zeros((2, 4)), r"rows × 3 feature columns in training order \(a, b, c\); got shape \(2, 4\)$"),
        (torch.zeros(2, 2), r"got shape \(2, 2\)$"),
        ([[1.0, 2.0]], r"got shape \(1, 2\)$"),
        (np.zeros(3), r"got shape \(3,\): wrap one row in a list"),
    ],
)
def test_positional_input_of_another_width(checkpoints, rows, match):
    with pytest.raises(ValueError, match=match):
        Predictor.from_checkpoint(checkpoints["binary"]).predict(rows)


def test_columns_of_different_lengths(checkpoints):
    with pytest.raises(ValueError, match=r"same number of rows, got 'a': 2, 'b': 1, 'c': a scalar"):
        Predictor.from_checkpoint(checkpoints["binary"]).predict({"a": [1.0, 2.0], "b": [1.0], "c": 3.0})


def test_other_inputs_are_refused(checkpoints):
    predictor = Predictor.from_checkpoint(checkpoints["binary"])
    with pytest.raises(TypeError, match=r"takes a pandas DataFrame, a dict of one row .*; got str"):
        predictor.predict("a,b,c")
    with pytest.raises(TypeError, match="A list of rows must hold dicts only, got dict, list"):
        predictor.predict([{"a": 1.0, "b": 1.0, "c": 1.0}, [1.0, 2.0, 3.0]])


def test_a_checkpoint_without_feature_names_takes_positional_input_only(checkpoints, tmp_path):
    def drop_names(checkpoint):
        checkpoint["TabularDataModule"]["feature_names"] = None

    path = edit(checkpoints["binary"], drop_names, tmp_path / "unnamed.ckpt")
    predictor = Predictor.from_checkpoint(path)
    x = table(rows=4)
    assert_same(predictor.predict(x), expected_table(path, x))
    assert predictor.predict(torch.tensor(x)) == predictor.predict(x.tolist())
    for rows, form in ((pd.DataFrame(x, columns=NAMES), "a DataFrame"), ({"a": 1.0}, "a dict"), ([{"a": 1}], "dicts")):
        with pytest.raises(ValueError, match=rf"no feature names .* positional input only: .*; got {form} with named"):
            predictor.predict(rows)
    with pytest.raises(ValueError, match=r"NaN in the input, feature column 'column 1': 1 rows"):
        predictor.predict([[1.0, np.nan, 0.0]])


def test_a_checkpoint_without_the_data_module_entry(checkpoints, tmp_path):
    path = edit(checkpoints["binary"], lambda c: c.pop("TabularDataModule"), tmp_path / "bare.ckpt")
    with pytest.raises(
        ValueError,
        match=r"has no 'TabularDataModule' entry, where nnlit's data module saves the feature names, mean, std and "
        r"classes .* trained without nnlit's TabularDataModule\. .*Predictor\(nnlit\.load\('.*bare\.ckpt'\), "
        r"feature_names=\[\.\.\.\], mean=\[\.\.\.\], std=\[\.\.\.\], classes=\[\.\.\.\]\)",
    ):
        Predictor.from_checkpoint(path)


def test_a_data_module_subclass_entry_is_found(checkpoints, tmp_path):
    def rename(checkpoint):
        checkpoint["MyDataModule"] = checkpoint.pop("TabularDataModule")

    path = edit(checkpoints["binary"], rename, tmp_path / "renamed.ckpt")
    assert Predictor.from_checkpoint(path).feature_names == NAMES


def test_missing_checkpoint():
    with pytest.raises(FileNotFoundError, match="Checkpoint not found"):
        Predictor.from_checkpoint("nowhere.ckpt")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"feature_names": ["a", "b"]}, r"`feature_names` needs 3 names for a model of 3 features, got 2"),
        ({"feature_names": ["a", "b", "a"]}, r"`feature_names` must be unique, got \['a'\] more than once"),
        ({"mean": [0.0] * 3}, r"Give both `mean` and `std` or neither"),
        ({"mean": [0.0] * 2, "std": [1.0] * 2}, r"`mean` needs 3 values \(one per model input\), got 2"),
        ({"mean": [0.0] * 3, "std": [1.0, 0.0, 1.0]}, r"`std` must be > 0, got \[1.0, 0.0, 1.0\]"),
        ({"mean": [0.0, math.nan, 0.0], "std": [1.0] * 3}, r"`mean` must be finite"),
        ({"classes": ["x", "y", "z"]}, r"`classes` needs 2 labels for BinaryMLP's 2 classes, got \['x', 'y', 'z'\]"),
    ],
)
def test_constructor_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Predictor(BinaryMLP(in_features=3, hidden=[4]), **kwargs)


def test_classes_of_a_regression_model_are_refused():
    with pytest.raises(ValueError, match=r"`classes` is for a classifier; RegressionMLP predicts prediction"):
        Predictor(RegressionMLP(in_features=3, hidden=[4]), classes=["x", "y"])


def test_the_module_must_be_an_nnlit_module():
    with pytest.raises(TypeError, match=r"`module` must be an nnlit MLPModule .*, got Linear"):
        Predictor(torch.nn.Linear(3, 1))  # type: ignore[arg-type]


def test_classes_of_mixed_types_keep_their_type():
    predictor = Predictor(MulticlassMLP(in_features=2, num_classes=3, hidden=[4]), classes=[0, "one", 2.5])
    labels = predictor.predict(torch.randn(20, 2))["prediction"]
    assert set(labels) <= {0, "one", 2.5} and all(type(v) in (int, str, float) for v in labels)


@pytest.mark.integration
def test_pandas_is_not_needed():
    code = (
        "import sys; sys.modules['pandas'] = None\n"  # any import of pandas fails
        "from nnlit import BinaryMLP\n"
        "from nnlit.predictor import Predictor\n"
        "p = Predictor(BinaryMLP(in_features=2, hidden=[4]), feature_names=['u', 'v'], classes=['n', 'y'])\n"
        "print(sorted(p.predict([{'u': 1.0, 'v': 2.0}])))\n"
    )
    result = run_python("-c", code, timeout=120)
    assert result.stdout.strip() == "['prediction', 'prob_n', 'prob_y', 'row']"


CALLS = int(os.environ.get("NNLIT_THREAD_CALLS", 300))


def _thread_inputs(x):
    """The same rows in every form a web service gets, DataFrames with their columns in every order."""
    frames = [pd.DataFrame(x, columns=NAMES)[list(order)] for order in ("abc", "acb", "bac", "bca", "cab", "cba")]
    extra = pd.DataFrame(x, columns=NAMES).assign(note="x")[["note", "c", "b", "a"]]
    return [*frames, extra, FORMS["dict of lists"](x), FORMS["list of dicts"](x), x, torch.tensor(x)]


def test_a_predictor_shared_by_threads_answers_as_sequential_calls(checkpoints, monkeypatch):
    """8 threads, mixed forms and column orders, on one predictor: every answer equals the sequential one. Python
    switches threads every microsecond here, so that a race shows within a few thousand calls."""
    import concurrent.futures

    monkeypatch.setattr(sys, "getswitchinterval", sys.getswitchinterval)  # restored by monkeypatch
    sys.setswitchinterval(1e-6)
    x = table(rows=4, seed=5)
    predictor = Predictor.from_checkpoint(checkpoints["multiclass"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the extra column's warning
        inputs = _thread_inputs(x)
        expected = pd.DataFrame(predictor.predict(inputs[0])).to_numpy()

        def run(worker):
            wrong = 0
            for call in range(CALLS):
                got = predictor.predict(inputs[(worker + call) % len(inputs)])
                wrong += not np.array_equal(pd.DataFrame(got).to_numpy(), expected)
            return wrong

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            wrong = sum(pool.map(run, range(8)))
    sys.setswitchinterval(0.005)
    assert wrong == 0, f"{wrong} of {8 * CALLS} answers differ from the sequential one"


def test_a_layout_another_thread_caches_mid_call_is_not_used(checkpoints, monkeypatch):
    """The race the stress test above may miss, made to happen: thread A has matched its DataFrame's columns to the
    cached layout when another thread caches the layout of other columns; A must still use its own."""
    import threading

    predictor = Predictor.from_checkpoint(checkpoints["multiclass"])
    x = table(rows=4, seed=6)
    abc = pd.DataFrame(x, columns=NAMES)
    cba = abc[["c", "b", "a"]]
    expected = predictor.predict(abc).to_numpy()  # caches the layout of a, b, c
    matched, go_on = threading.Event(), threading.Event()
    equals = pd.Index.equals

    def pausing_equals(self, other):
        result = equals(self, other)
        if threading.current_thread().name == "A" and not matched.is_set():
            matched.set()
            go_on.wait(10)
        return result

    monkeypatch.setattr(pd.Index, "equals", pausing_equals)
    results = []
    thread = threading.Thread(target=lambda: results.append(predictor.predict(abc).to_numpy()), name="A")
    thread.start()
    assert matched.wait(10)
    assert np.array_equal(predictor.predict(cba).to_numpy(), expected)  # caches the layout of c, b, a
    go_on.set()
    thread.join(10)
    assert np.array_equal(results[0], expected)


def test_unknown_categories_are_counted_once_each_under_threads(tmp_path):
    import concurrent.futures

    frame = pd.DataFrame({"x": np.linspace(-1, 1, 40), "zone": ["n", "s"] * 20})
    dm = TabularDataModule.from_arrays(frame, (frame["x"] > 0).astype(int).to_numpy())
    trainer = quiet_trainer(tmp_path, max_steps=2)
    trainer.fit(BinaryMLP(in_features=2, hidden=[4], categories=dm.categories), datamodule=dm)
    trainer.save_checkpoint(tmp_path / "zones.ckpt")
    predictor = Predictor.from_checkpoint(tmp_path / "zones.ckpt")
    rows = [{"x": 0.5, "zone": "east"}, {"x": -0.5, "zone": "west"}, {"x": 0.1, "zone": "n"}]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: predictor.predict(rows), range(800)))
    assert predictor.unknown_counts == {"zone": 1600}


def test_a_hand_built_predictor_keeps_its_callers_order_and_arguments(checkpoints):
    model = nnlit.load(checkpoints["binary"])
    names = ["a", "zone", "c"]
    predictor = Predictor(
        BinaryMLP(in_features=3, hidden=[4], categories=[3]),
        feature_names=names,
        categorical=["zone"],
        vocabularies=[["n", "s"]],
    )
    assert predictor.feature_names == names and predictor.preprocessing.feature_names == ["a", "c", "zone"]
    assert [len(c) for c in predictor.codes] == [3]
    with pytest.raises(ValueError, match=r"Give `preprocessing` or the arguments describing one"):
        Predictor(
            model, feature_names=NAMES, preprocessing=Predictor.from_checkpoint(checkpoints["binary"]).preprocessing
        )
