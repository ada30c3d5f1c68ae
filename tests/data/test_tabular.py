import numpy as np
import pytest
import torch

from nnlit import TabularDataModule


def write_csv(path, frame):
    frame.to_csv(path, index=False)
    return str(path)


@pytest.fixture
def frame():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, 50),
            "income": rng.normal(3000, 500, 50),
            "colour": rng.choice(["red", "green", "blue"], 50),
        }
    )


def test_builtin_split_sizes_and_disjoint():
    dm = TabularDataModule(dataset="gauss", n_samples=200, val_fraction=0.2, test_fraction=0.1)
    dm.setup("fit")
    train, val, test = (dm.split_indices(s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (140, 40, 20)
    assert len(set(torch.cat([train, val, test]).tolist())) == 200


def test_standardised_with_training_statistics_only():
    x = np.concatenate([np.zeros((80, 1)), np.full((20, 1), 100.0)])
    x = np.hstack([x, np.random.default_rng(0).normal(size=(100, 1))])
    dm = TabularDataModule.from_arrays(x, np.arange(100) % 2, val_fraction=0.5, seed=0)
    dm.setup("fit")
    train_x = torch.cat([b[0] for b in dm.train_dataloader()])
    raw_train = torch.as_tensor(x, dtype=torch.float32)[dm.split_indices("train")]
    assert torch.allclose(dm.preprocessing.mean, raw_train.mean(0)) and torch.allclose(
        train_x.mean(0), torch.zeros(2), atol=1e-5
    )
    assert torch.allclose(train_x.std(0, unbiased=False), torch.ones(2), atol=1e-4)


@pytest.mark.parametrize("categorical", [False, True])
def test_batches_standardised_in_place_leave_the_table_alone(categorical):
    """Gathered batches are standardised in their own buffer; the table, and predict's batches (views of the rows in
    order), are never written to, however often the loaders run."""
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, size=(60, 3))
    if categorical:
        pd = pytest.importorskip("pandas")
        x = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "colour": rng.choice(["red", "blue"], 60)})
    dm = TabularDataModule.from_arrays(x, np.arange(60) % 2, batch_size=8, val_fraction=0.25, test_fraction=0.25)
    dm.setup("fit")
    table = dm.table
    before = table.x.clone()
    codes = dm.rows.input_tensors("train", None)[1:]
    for split, loader in [("train", dm.train_dataloader), ("val", dm.val_dataloader), ("test", dm.test_dataloader)]:
        for _ in range(2):
            batches = list(loader())
            rows = dm.split_indices(split)  # in order for val/test; train is shuffled, so compare the sorted rows
            got = torch.cat([b[0] for b in batches])
            expected = dm.transform(before[rows], *(c[rows] for c in codes))
            if split == "train":
                got, expected = got.sort(dim=0).values, expected.sort(dim=0).values
            torch.testing.assert_close(got, expected, rtol=0, atol=0)
            assert torch.equal(table.x, before)
    predicted = [b[0] for _ in range(2) for b in dm.predict_dataloader()]
    assert torch.equal(predicted[0], predicted[len(predicted) // 2]) and torch.equal(table.x, before)
    assert not torch.equal(predicted[0][:, :3], before[:8])  # standardised: a copy, the table unchanged


def test_noise_features_appended_to_builtin_sets():
    dm = TabularDataModule(dataset="xor", n_samples=50, n_features=8)
    x = dm.table.x
    assert dm.num_features == 8 and dm.feature_names[-1] == "x8"
    assert torch.equal(x[:, :2], TabularDataModule(dataset="xor", n_samples=50).table.x)
    with pytest.raises(ValueError, match="`n_features` of a built-in set must be an integer >= 2, got 1"):
        TabularDataModule(dataset="xor", n_features=1)


def test_no_standardisation():
    dm = TabularDataModule(dataset="xor", n_samples=50, standardize=False)
    dm.setup("fit")
    x, _ = next(iter(dm.val_dataloader()))
    assert torch.equal(x, dm.table.x[dm.split_indices("val")][: len(x)])


def test_string_labels_encoded_and_decoded():
    y = np.array(["spam", "ham", "eggs", "ham"] * 5)
    dm = TabularDataModule.from_arrays(np.random.rand(20, 3), y)
    assert dm.num_classes == 3 and dm.classes == ["eggs", "ham", "spam"]
    dm.setup("fit")
    _, labels = next(iter(dm.train_dataloader()))
    assert labels.dtype == torch.int64 and labels.max() < 3
    assert dm.decode(torch.tensor([2, 0])) == ["spam", "eggs"]


@pytest.mark.parametrize(
    "labels",
    [[3, 5, 5, 3, 9, 3], [-2, 0, -2, 7, 7, 0], [0, 1, 2, 1, 0, 2], [2, 1, 1, 2, 1, 2]],
)
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_integer_labels_match_the_sorted_unique_mapping(labels, dtype):
    if dtype is np.uint8 and min(labels) < 0:
        pytest.skip("negative labels are not uint8")
    y = np.array(labels * 3, dtype=dtype)
    dm = TabularDataModule.from_arrays(np.random.rand(len(y), 2), y)
    classes, inverse = np.unique(y, return_inverse=True)
    table = dm.table
    assert dm.classes == classes.tolist() and all(type(c) is int for c in dm.classes)
    assert table.y.dtype == torch.int64 and table.y.tolist() == inverse.tolist()


def _read_only(a):
    a.flags.writeable = False
    return a


@pytest.mark.parametrize(
    "y",
    [
        np.array([-100, 100, 0] * 4, dtype=np.int8),  # offsets from the minimum overflow int8
        np.array([-30000, 30000, 0] * 4, dtype=np.int16),
        np.array([0, 1, 2] * 4)[::-1],  # a view with a negative stride
        np.array([0, 1, 2] * 4, dtype=">i8"),  # big-endian
        _read_only(np.array([0, 1, 2] * 4)),  # e.g. a pandas copy-on-write array
    ],
)
def test_integer_labels_of_any_layout_are_mapped_and_copied_when_they_cannot_be_shared(y):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns when it shares a read-only array
        table = TabularDataModule.from_arrays(np.random.rand(len(y), 2), y).table
    classes, inverse = np.unique(y, return_inverse=True)
    assert table.classes == classes.tolist() and table.y.tolist() == inverse.tolist()
    assert table.y.data_ptr() != y.ctypes.data


def test_labels_zero_to_k_are_shared_not_copied():
    y = np.arange(30, dtype=np.int64) % 3
    dm = TabularDataModule.from_arrays(np.random.rand(30, 2).astype(np.float32), y)
    assert dm.table.y.data_ptr() == y.ctypes.data  # no label-sized copy of a large table's labels


def test_task_inference_and_targets_shape():
    reg = TabularDataModule.from_arrays(np.random.rand(10, 2), np.random.rand(10))
    assert reg.num_classes is None and reg.num_targets == 1
    multi = TabularDataModule.from_arrays(np.random.rand(10, 2), np.random.rand(10, 3), task="regression")
    assert multi.num_targets == 3
    probs = TabularDataModule.from_arrays(np.random.rand(10, 2), np.eye(4)[np.arange(10) % 4], task="classification")
    assert probs.num_classes == 4


def test_state_dict_round_trip():
    dm = TabularDataModule(dataset="spiral", n_classes=3, n_samples=90)
    dm.setup("fit")
    other = TabularDataModule(dataset="xor", n_samples=40, seed=5)
    other.load_state_dict(dm.state_dict())
    assert torch.equal(other.preprocessing.mean, dm.preprocessing.mean) and torch.equal(
        other.preprocessing.std, dm.preprocessing.std
    )
    assert other.classes == [0, 1, 2] and other.feature_names == ["x1", "x2"]


def test_csv_source_and_predict_file(tmp_path, frame):
    frame = frame.drop(columns="colour").assign(label=np.where(frame["age"] > 40, "old", "young"))
    path = write_csv(tmp_path / "train.csv", frame)
    dm = TabularDataModule(path=path, target="label")
    assert dm.num_features == 2 and dm.classes == ["old", "young"] and dm.feature_names == ["age", "income"]
    predict = write_csv(tmp_path / "new.csv", frame.drop(columns="label").iloc[:7][["income", "age"]])
    dm = TabularDataModule(path=path, target="label", predict_path=predict)
    dm.setup("predict")
    x, rows = next(iter(dm.predict_dataloader()))
    assert rows.tolist() == list(range(7))
    expected = (
        torch.tensor(frame[["age", "income"]].to_numpy()[:7], dtype=torch.float32) - dm.preprocessing.mean
    ) / dm.preprocessing.std
    assert torch.allclose(x, expected)


def test_a_prediction_file_with_columns_that_are_not_features_warns_naming_them(tmp_path, frame):
    frame = frame.drop(columns="colour").assign(label=np.where(frame["age"] > 40, "old", "young"))
    path = write_csv(tmp_path / "train.csv", frame)
    predict = write_csv(tmp_path / "new.csv", frame.assign(incme=1.0, id=range(len(frame))))  # label: the target
    dm = TabularDataModule(path=path, target="label", predict_path=predict)
    with pytest.warns(
        UserWarning, match=r"new.csv' has columns that are not features of the model, ignored: 'incme', 'id'$"
    ):
        dm.setup("predict")
        batch = next(iter(dm.predict_dataloader()))
    assert len(batch[0]) == len(frame)


def test_parquet_source(tmp_path, frame):
    pytest.importorskip("pyarrow")
    path = tmp_path / "data.parquet"
    frame.drop(columns="colour").assign(y=np.arange(50) % 2).to_parquet(path)
    assert TabularDataModule(path=str(path), target="y").num_features == 2


@pytest.mark.parametrize("dtype", ["float32", "float64", "Int64"])
def test_a_file_table_is_row_major_with_the_frames_values(tmp_path, frame, dtype, monkeypatch):
    # pandas hands a block of columns over column-major; batches are cut by rows, so the table must be row-major
    pytest.importorskip("pyarrow")
    monkeypatch.setattr("nnlit.data.table._ROWS_PER_BLOCK", 7)  # 50 rows: 8 blocks, the last one short
    numbers = frame[["age", "income"]].round().astype(dtype)
    if dtype == "Int64":
        numbers.loc[[3, 20], "age"] = None  # missing values
    path = tmp_path / "data.parquet"
    numbers.assign(y=np.arange(50) % 2).to_parquet(path)
    dm = TabularDataModule(path=str(path), target="y", missing="median")
    dm.setup("fit")
    table = dm.train_dataloader().tensors[0]
    assert table.is_contiguous()
    expected = torch.tensor(numbers.to_numpy(dtype=np.float32, na_value=np.nan))
    torch.testing.assert_close(table, expected, rtol=0, atol=0, equal_nan=True)  # the table keeps NaN; batches impute


def test_arrays_with_a_categorical_column_give_a_row_major_table():
    x = np.asfortranarray(np.arange(40, dtype=np.float64).reshape(10, 4) % 7)
    dm = TabularDataModule.from_arrays(x, np.arange(10) % 2, feature_names=["a", "b", "c", "d"], categorical=["b"])
    dm.setup("fit")
    table = dm.train_dataloader().tensors[0]
    assert table.is_contiguous()
    assert torch.equal(table, torch.tensor(x[:, [0, 2, 3]], dtype=torch.float32))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "Give exactly one data source"),
        (
            {"dataset": "spiral", "path": "customers.csv"},
            r"got both dataset='spiral' and path='customers.csv': to read the file, set `dataset: null` in the YAML "
            r"config \(`--data.dataset=null` on the command line, dataset=None from Python\)",
        ),
        (
            {"dataset": "moons"},
            "Unknown dataset 'moons'. Built-in sets: breast_cancer, circle, diabetes, gauss, iris, plane, sine, spiral",
        ),
        ({"path": "a.csv"}, "`target` must name the target column of 'a.csv'"),
        ({"dataset": "xor", "val_fraction": -0.1}, r"`val_fraction` must be in \[0, 1\), got -0.1"),
        ({"dataset": "xor", "val_fraction": 1.2}, r"`val_fraction` must be in \[0, 1\), got 1.2"),
        ({"dataset": "xor", "test_fraction": -0.1}, r"`test_fraction` must be in \[0, 1\), got -0.1"),
        ({"dataset": "xor", "val_fraction": 0.5, "test_fraction": 0.5}, r"must be < 1 to leave rows for training"),
        ({"dataset": "xor", "batch_size": 0}, "`batch_size` must be a positive integer, got 0"),
        ({"dataset": "xor", "eval_batch_size": 0}, "`eval_batch_size` must be a positive integer, got 0"),
        ({"dataset": "xor", "task": "ranking"}, "`task` must be one of classification, regression or None"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TabularDataModule(**kwargs)


def test_missing_file_names_the_path(tmp_path):
    missing = str(tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError, match="Data file not found: .*nope.csv"):
        _ = TabularDataModule(path=missing, target="y").num_features


def test_unsupported_suffix():
    with pytest.raises(ValueError, match=r"the suffix must be one of \.csv, \.parquet, \.pq"):
        _ = TabularDataModule(path="data.xlsx", target="y").num_features


def test_target_column_absent_lists_columns(tmp_path, frame):
    path = write_csv(tmp_path / "d.csv", frame)
    with pytest.raises(ValueError, match="Target column 'price' not in .*Columns: age, income, colour"):
        _ = TabularDataModule(path=path, target="price").num_features


def test_text_feature_is_categorical(tmp_path, frame):
    path = write_csv(tmp_path / "d.csv", frame.assign(y=np.arange(50) % 2))
    dm = TabularDataModule(path=path, target="y")
    assert dm.num_features == 3 and dm.feature_names == ["age", "income", "colour"]
    assert dm.categorical_features == ["colour"]
    assert TabularDataModule(path=path, target="y", features=["age"]).num_features == 1


def test_date_feature_named(frame):
    pd = pytest.importorskip("pandas")
    frame = frame.assign(day=pd.date_range("2024-01-01", periods=50))
    with pytest.raises(ValueError, match="Feature column 'day' of the DataFrame holds dates .*days since a date"):
        _ = TabularDataModule.from_arrays(frame, np.arange(50) % 2).num_features


def test_nan_and_inf_reported_per_column(tmp_path, frame):
    frame = frame.drop(columns="colour").assign(y=np.arange(50) % 2)
    frame.loc[[3, 9, 11], "income"] = np.nan
    frame.loc[5, "age"] = np.inf
    path = write_csv(tmp_path / "d.csv", frame)
    with pytest.raises(ValueError, match=r"'age': 1 rows \(first at row 5\); 'income': 3 rows \(first at row 3\)"):
        _ = TabularDataModule(path=path, target="y").num_features


def test_nan_regression_target():
    y = np.ones(10)
    y[4] = np.nan
    with pytest.raises(ValueError, match=r"NaN in the arrays, target 'target': 1 rows \(first at row 4\)"):
        _ = TabularDataModule.from_arrays(np.zeros((10, 2)), y).num_features


def test_one_class_rejected():
    with pytest.raises(ValueError, match=r"at least 2 classes; the target of the arrays has \['a'\]"):
        _ = TabularDataModule.from_arrays(np.zeros((4, 2)), np.array(["a"] * 4)).num_classes


def test_predict_file_missing_column(tmp_path, frame):
    train = write_csv(tmp_path / "t.csv", frame.drop(columns="colour").assign(y=np.arange(50) % 2))
    new = write_csv(tmp_path / "n.csv", frame[["age"]])
    dm = TabularDataModule(path=train, target="y", predict_path=new)
    dm.setup("predict")
    missing = r"The prediction file '.*n.csv' lacks feature columns \['income'\]. The model takes 2: age, income"
    with pytest.raises(ValueError, match=missing):
        dm.predict_dataloader()


def test_no_test_split_explained():
    dm = TabularDataModule(dataset="xor", n_samples=50)
    dm.setup("test")
    with pytest.raises(ValueError, match="There is no test split: set `test_fraction`"):
        dm.test_dataloader()


def test_seed_follows_seed_everything():
    import lightning as L

    L.seed_everything(123)
    assert TabularDataModule(dataset="xor").seed == 123
    assert TabularDataModule(dataset="xor", seed=5).seed == 5


def test_predict_uses_the_checkpoint_scaler_not_the_new_data():
    trained = TabularDataModule.from_arrays(np.random.default_rng(0).normal(10, 2, (60, 2)), np.arange(60) % 2)
    trained.setup("fit")
    other = TabularDataModule.from_arrays(np.random.default_rng(1).normal(-5, 9, (60, 2)), np.arange(60) % 2)
    other.setup("predict")
    other.load_state_dict(trained.state_dict())  # what Lightning does with --ckpt_path, after setup
    x, _ = next(iter(other.predict_dataloader()))
    raw = other.table.x[: len(x)]
    assert torch.allclose(x, (raw - trained.preprocessing.mean) / trained.preprocessing.std)


def test_checkpoint_classes_must_match_the_data():
    other = TabularDataModule.from_arrays(np.zeros((20, 2)), np.array(["a", "c"] * 10))
    other.setup("fit")
    other.load_state_dict({**other.state_dict(), "classes": ["a", "b"]})  # a checkpoint trained on a / b
    with pytest.raises(ValueError, match=r"The checkpoint's classes \['a', 'b'\] differ from the classes of this data"):
        other.train_dataloader()


def test_string_target_with_missing_label(tmp_path, frame):
    frame = frame.drop(columns="colour").assign(kind=["x", "y"] * 25)
    frame.loc[7, "kind"] = None
    path = write_csv(tmp_path / "d.csv", frame)
    with pytest.raises(ValueError, match=r"The target 'kind' of .* has 1 missing labels \(first at row 7\)"):
        _ = TabularDataModule(path=path, target="kind").num_classes


def test_nan_in_a_numeric_target_names_the_column(tmp_path, frame):
    frame = frame.drop(columns="colour").assign(price=np.linspace(0, 1, 50))
    frame.loc[4, "price"] = np.nan
    path = write_csv(tmp_path / "d.csv", frame)
    with pytest.raises(ValueError, match=r"target 'price': 1 rows \(first at row 4\)"):
        _ = TabularDataModule(path=path, target="price").num_features


def test_mixed_label_types():
    with pytest.raises(ValueError, match=r"mixes label types \(int, str\)"):
        _ = TabularDataModule.from_arrays(np.zeros((4, 2)), np.array([1, "a", 2, "b"], dtype=object)).num_classes


@pytest.mark.parametrize(
    ("name", "rows", "features", "classes"),
    [("iris", 150, 4, 3), ("wine", 178, 13, 3), ("breast_cancer", 569, 30, 2), ("diabetes", 442, 10, None)],
)
def test_real_sets_shipped_with_sklearn(name, rows, features, classes):
    pytest.importorskip("sklearn")
    dm = TabularDataModule(dataset=name)
    assert (len(dm.table.x), dm.num_features, dm.num_classes) == (rows, features, classes)
    if name == "iris":
        assert dm.classes == ["setosa", "versicolor", "virginica"] and dm.feature_names[0] == "sepal length (cm)"


def test_real_set_without_sklearn(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match=r"comes with scikit-learn: pip install 'nnlit\[sklearn\]'"):
        _ = TabularDataModule(dataset="iris").num_features


def test_evaluation_splits_of_up_to_1024_rows_are_one_batch():
    dm = TabularDataModule(
        dataset="gauss", n_samples=2000, val_fraction=0.25, test_fraction=0.6, batch_size=16, batches_per_step=1
    )
    dm.setup("fit")
    dm.setup("test")
    assert dm.evaluation_batch_size == 1024
    assert [len(b[0]) for b in dm.val_dataloader()] == [500]  # one batch: Lightning's loop set-up paid once
    assert [len(b[0]) for b in dm.test_dataloader()] == [1024, 176]
    assert [len(b[0]) for b in dm.train_dataloader()] == [16] * 18 + [12]  # training keeps its batch size


def test_eval_batch_size_is_honoured_and_gives_the_same_rows():
    small = TabularDataModule(dataset="gauss", n_samples=200, eval_batch_size=7, seed=0)
    large = TabularDataModule(dataset="gauss", n_samples=200, seed=0)
    for dm in (small, large):
        dm.setup("fit")
    batches = list(small.val_dataloader())
    assert [len(b[0]) for b in batches] == [7] * 5 + [5]
    (whole,) = large.val_dataloader()
    torch.testing.assert_close(torch.cat([b[0] for b in batches]), whole[0], rtol=0, atol=0)
    torch.testing.assert_close(torch.cat([b[1] for b in batches]), whole[1], rtol=0, atol=0)


def test_no_validation_split_trains_on_every_row(make_trainer):
    from nnlit import MulticlassMLP

    dm = TabularDataModule(dataset="gauss", n_classes=3, n_samples=300, val_fraction=0.0, test_fraction=0.1)
    dm.setup("fit")
    assert len(dm.split_indices("train")) == 270 and len(dm.split_indices("val")) == 0
    assert dm.val_dataloader() == []
    trainer = make_trainer(max_epochs=2)
    trainer.fit(MulticlassMLP(in_features=2, num_classes=3, hidden=[8]), datamodule=dm)
    assert "train/loss" in trainer.callback_metrics and not any(k.startswith("val/") for k in trainer.callback_metrics)


def test_k_folds_validate_each_row_once_and_keep_the_test_rows():
    splits = []
    for fold in range(5):
        dm = TabularDataModule(dataset="gauss", n_samples=203, test_fraction=0.1, folds=5, fold=fold, seed=3)
        dm.setup("fit")
        splits.append({s: set(dm.split_indices(s).tolist()) for s in ("train", "val", "test")})
    assert all(s["test"] == splits[0]["test"] and len(s["test"]) == 20 for s in splits)
    vals = [s["val"] for s in splits]
    assert sorted(v for val in vals for v in val) == sorted(set(range(203)) - splits[0]["test"])  # each row once
    assert all(not (s["train"] & s["val"]) and len(s["train"]) + len(s["val"]) == 183 for s in splits)
    assert {len(v) for v in vals} <= {36, 37}
    with pytest.raises(ValueError, match=r"`fold` must be an integer in \[0, 5\) for folds=5, got 5"):
        TabularDataModule(dataset="xor", folds=5, fold=5)
    with pytest.raises(ValueError, match="`folds` must be"):
        TabularDataModule(dataset="xor", folds=1)


def test_from_arrays_has_no_other_source():
    dm = TabularDataModule.from_arrays(np.zeros((4, 2)), np.array([0, 1, 0, 1]))
    assert dm.dataset is None and dm.path is None and dm.num_features == 2
    with pytest.raises(ValueError, match="from_arrays takes its data from `x` and `y`: leave `dataset` out"):
        TabularDataModule.from_arrays(np.zeros((4, 2)), np.array([0, 1, 0, 1]), dataset="xor")


def test_predicting_a_file_with_a_checkpoint_reads_only_that_file(tmp_path, frame, make_trainer):
    """The training file is gone (or could be large): the checkpoint's preprocessing and the file to predict suffice."""
    from nnlit import MulticlassMLP

    train = write_csv(tmp_path / "train.csv", frame.assign(y=np.arange(50) % 3))
    new = write_csv(tmp_path / "new.csv", frame.drop(columns="colour").assign(colour="red").head(7))
    data = TabularDataModule(path=train, target="y")
    model = MulticlassMLP(in_features=data.num_features, num_classes=3, hidden=[4], categories=data.categories)
    trainer = make_trainer(max_steps=2)
    trainer.fit(model, datamodule=data)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    (tmp_path / "train.csv").unlink()

    served = TabularDataModule(path=train, target="y", predict_path=new, checkpoint=str(tmp_path / "m.ckpt"))
    assert (served.num_features, served.num_classes, served.num_targets) == (3, 3, 1)
    assert served.categories == data.categories and served.target_mean is None
    batches = make_trainer().predict(model, datamodule=served)
    assert sum(len(batch["label"]) for batch in batches) == 7
    with pytest.raises(FileNotFoundError):  # training asks for the training file
        served.setup("fit")


def test_an_unknown_argument_names_the_data_module_and_its_arguments():
    with pytest.raises(TypeError, match=r"TabularDataModule got unexpected keyword argument\(s\) 'batchsize'; its "):
        TabularDataModule(dataset="xor", batchsize=32)


def test_arguments_are_declared_once_and_read_as_attributes():
    """Each of DataOptions' fields is an attribute of the data module; setting one checks it again."""
    from nnlit.data.options import DataOptions

    dm = TabularDataModule(dataset="xor", n_samples=100, batch_size=16, seed=3)
    assert [getattr(dm, name) for name in ("dataset", "n_samples", "batch_size", "seed")] == ["xor", 100, 16, 3]
    assert all(hasattr(TabularDataModule, name) for name in DataOptions.names())
    dm.batch_size = 8
    assert dm.options.batch_size == 8 and next(iter(dm.train_dataloader()))[0].shape[0] == 8
    with pytest.raises(ValueError, match="batch_size"):
        dm.batch_size = 0
