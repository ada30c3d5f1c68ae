"""TabularDataModule on a table of numbers, text categories and missing values."""

import logging

import numpy as np
import pytest
import torch
from helpers import quiet_trainer

from nnlit import TabularDataModule

pd = pytest.importorskip("pandas")


def mixed_frame(rows: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, rows)
    age[rng.random(rows) < 0.2] = np.nan
    city = rng.choice(["oslo", "rome", "lima"], rows).astype(object)
    city[rng.random(rows) < 0.1] = None
    return pd.DataFrame(
        {
            "age": age,
            "city": city,
            "income": rng.normal(3.0, 1.0, rows),
            "zone": rng.integers(0, 3, rows),
            "flag": rng.random(rows) < 0.5,
        }
    )


def targets(rows: int = 200):
    return np.where(np.arange(rows) % 3 == 0, "yes", "no")


def test_layout_numeric_then_was_missing_then_codes():
    dm = TabularDataModule.from_arrays(mixed_frame(), targets(), categorical=["zone"], missing="median_indicator")
    assert dm.num_features == 3 + 1 + 2
    assert dm.feature_names == ["age", "income", "flag", "city", "zone"]
    assert dm.categorical_features == ["city", "zone"]
    assert dm.indicators == ["age"]  # the only numeric column with missing values
    assert dm.num_features == 3 + 1 + 2
    assert dm.preprocessing.vocabularies == [["lima", "oslo", "rome", None], [0, 1, 2]]
    assert dm.categories == [5, 4]  # unknown + the training values


def test_numbers_match_simple_imputer_and_standard_scaler():
    sklearn = pytest.importorskip("sklearn")  # noqa: F841
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    frame = mixed_frame()
    dm = TabularDataModule.from_arrays(
        frame, targets(), categorical=["zone"], missing="median_indicator", val_fraction=0.3
    )
    dm.setup("fit")
    train, val = dm.split_indices("train").numpy(), dm.split_indices("val").numpy()
    numeric = frame[["age", "income", "flag"]].to_numpy(dtype=np.float64)
    imputer = SimpleImputer(strategy="median", add_indicator=True).fit(numeric[train])
    scaler = StandardScaler().fit(imputer.transform(numeric[train])[:, :3])
    expected = imputer.transform(numeric[val])
    expected[:, :3] = scaler.transform(expected[:, :3])  # the was-missing column stays 0 / 1
    x, _ = dm.split_tensors("val")
    np.testing.assert_allclose(x[:, :4].numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dm.preprocessing.median.numpy(), imputer.statistics_, rtol=1e-6)


def test_vocabulary_from_training_rows_only_and_unknown_logged_once(caplog):
    frame = mixed_frame()
    dm = TabularDataModule.from_arrays(frame, targets(), missing="median", val_fraction=0.25, seed=1)
    dm.setup("fit")
    val = dm.split_indices("val")
    frame.loc[val[:7].numpy(), "city"] = "paris"  # a city only validation rows have
    dm = TabularDataModule.from_arrays(frame, targets(), missing="median", val_fraction=0.25, seed=1)
    assert dm.categories == [5] and "paris" not in dm.preprocessing.vocabularies[0]
    with caplog.at_level(logging.INFO):
        batches = list(dm.val_dataloader())
        list(dm.val_dataloader())
    codes = torch.cat([b[0][:, -1] for b in batches])
    assert int((codes == 0).sum()) == 7
    assert dm.unknown_categories["val"] == {"city": 7}
    logged = [r.message for r in caplog.records if "not in the training split" in r.message]
    assert logged == [
        "nnlit data: 7 categorical values of the val rows were not in the training split and take the unknown "
        "category ('city': 7)"
    ]
    assert dm.unknown_categories.get("train", {"city": 0}) == {"city": 0}


def test_codes_are_positions_in_the_vocabulary():
    frame = mixed_frame()
    dm = TabularDataModule.from_arrays(frame, targets(), missing="median", standardize=False, val_fraction=0.2)
    x, _ = dm.split_tensors("train")
    rows = dm.split_indices("train").numpy()
    vocabulary = dm.preprocessing.vocabularies[0]
    expected = [vocabulary.index(None if pd.isna(v) else v) + 1 for v in frame["city"].to_numpy()[rows]]
    assert x[:, -1].long().tolist() == expected


def test_missing_category_is_its_own_code():
    frame = mixed_frame()
    frame.loc[::5, "city"] = None
    dm = TabularDataModule.from_arrays(frame, targets(), missing="median")
    x, _ = dm.split_tensors("val")
    assert dm.preprocessing.vocabularies[0][-1] is None
    rows = dm.split_indices("val").numpy()
    none_rows = torch.as_tensor(frame["city"].isna().to_numpy()[rows])
    assert none_rows.any()
    assert (x[none_rows, -1] == len(dm.preprocessing.vocabularies[0])).all()


def test_missing_numbers_are_an_error_by_default():
    with pytest.raises(ValueError, match=r"NaN in the DataFrame, feature column 'age': \d+ rows .*missing: median"):
        _ = TabularDataModule.from_arrays(mixed_frame(), targets()).num_features


def test_inf_is_an_error_even_when_imputing():
    frame = mixed_frame()
    frame.loc[4, "income"] = np.inf
    with pytest.raises(
        ValueError,
        match=r"Infinite values \(inf, or a number beyond float32's range of ±3.4e38\) in the DataFrame, "
        r"feature column 'income': 1 rows \(first at row 4",
    ):
        _ = TabularDataModule.from_arrays(frame, targets(), missing="median").num_features


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"missing": "mean"}, "`missing` must be one of error, median, median_indicator, got 'mean'"),
        ({"categorical": "zone"}, "`categorical` must be a list of column names, got 'zone'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TabularDataModule(dataset="xor", **kwargs)


def test_categorical_must_name_features():
    with pytest.raises(ValueError, match=r"`categorical` names \['town'\], which are not feature columns .*age, city"):
        _ = TabularDataModule.from_arrays(mixed_frame(), targets(), categorical=["town"]).num_features


def test_mixed_value_types_named():
    frame = mixed_frame().assign(zone=["a", 1] * 100)
    with pytest.raises(ValueError, match=r"Categorical column 'zone' of the DataFrame mixes value types \(int, str\)"):
        _ = TabularDataModule.from_arrays(frame, targets(), missing="median").num_features


def test_state_dict_round_trip_restores_the_preprocessing():
    frame = mixed_frame()
    dm = TabularDataModule.from_arrays(frame, targets(), missing="median_indicator", categorical=["zone"])
    x, _ = dm.split_tensors("val")
    # the same rows with another seed: the split and its fitted state differ until the checkpoint's is loaded
    other = TabularDataModule.from_arrays(frame, targets(), missing="median_indicator", categorical=["zone"], seed=5)
    other.setup()
    other.load_state_dict(dm.state_dict())
    other.rows.splits = dm.rows.splits  # the same rows: the one private reach left, to compare one split under two fits
    torch.testing.assert_close(other.split_tensors("val")[0], x)


def test_old_checkpoint_state_loads_as_numeric_only():
    dm = TabularDataModule(dataset="xor")
    dm.load_state_dict({"mean": [0.0, 0.0], "std": [1.0, 1.0], "classes": [0, 1], "feature_names": ["x1", "x2"]})
    assert dm.categorical_features == [] and dm.preprocessing.median is None and dm.missing == "error"


def test_predict_file_with_unseen_category_and_missing_values(tmp_path, caplog):
    frame = mixed_frame()
    train = tmp_path / "train.csv"
    frame.assign(y=targets()).to_csv(train, index=False)
    new = frame.head(6).copy()
    new.loc[0, "city"] = "paris"
    new.loc[1, "age"] = np.nan
    new.loc[2, "city"] = None
    new.to_csv(tmp_path / "new.csv", index=False)
    dm = TabularDataModule(path=str(train), target="y", missing="median", predict_path=str(tmp_path / "new.csv"))
    dm.setup("predict")
    with caplog.at_level(logging.INFO):
        x, rows = next(iter(dm.predict_dataloader()))
    assert rows.tolist() == list(range(6))
    assert x[0, -1] == 0 and x[2, -1] == len(dm.preprocessing.vocabularies[0])  # unknown; missing, its own category
    assert torch.isfinite(x).all()
    assert x[1, 0] == (dm.preprocessing.median[0] - dm.preprocessing.mean[0]) / dm.preprocessing.std[0]
    assert dm.unknown_categories["predict"] == {"city": 1}


def test_listed_integer_column_on_a_builtin_set():
    dm = TabularDataModule(dataset="diabetes", categorical=["sex"])
    assert dm.categories == [3] and dm.feature_names[-1] == "sex"
    assert dm.num_features == 10
    x, _ = dm.split_tensors("train")
    assert set(x[:, -1].tolist()) == {1.0, 2.0}


def test_predict_only_regression_keeps_its_targets_and_scaling(tmp_path):

    from nnlit import RegressionMLP

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    y = np.stack([x @ [1.0, 2.0, 3.0] + 50.0, x[:, 0] * 10.0], axis=1)
    dm = TabularDataModule.from_arrays(x, y, feature_names=["a", "b", "c"])
    model = RegressionMLP(
        in_features=3, out_features=2, hidden=[8], target_mean=dm.target_mean, target_std=dm.target_std
    )
    trainer = quiet_trainer(tmp_path, max_steps=3)
    trainer.fit(model, datamodule=dm)
    trainer.save_checkpoint(tmp_path / "reg.ckpt")
    pd.DataFrame(x[:10], columns=["a", "b", "c"]).to_csv(tmp_path / "new.csv", index=False)
    alone = TabularDataModule(checkpoint=str(tmp_path / "reg.ckpt"), predict_path=str(tmp_path / "new.csv"))
    assert alone.num_targets == 2 and alone.num_classes is None and alone.target_mean is None
    rebuilt = RegressionMLP.load_from_checkpoint(tmp_path / "reg.ckpt")
    predicted = torch.cat([b["prediction"] for b in quiet_trainer(tmp_path).predict(rebuilt, datamodule=alone)])
    model.eval()
    with torch.no_grad():
        expected = model(dm.transform(torch.as_tensor(x[:10], dtype=torch.float32)))
    torch.testing.assert_close(predicted, expected)


@pytest.fixture
def saved(tmp_path):
    """A few steps of a BinaryMLP on mixed_frame(), trained with missing="median": (checkpoint, training csv)."""

    from nnlit import BinaryMLP

    frame = mixed_frame()
    frame.assign(y=targets()).to_csv(tmp_path / "train.csv", index=False)
    dm = TabularDataModule(path=str(tmp_path / "train.csv"), target="y", missing="median")
    model = BinaryMLP(in_features=dm.num_features, categories=dm.categories, hidden=[4])
    trainer = quiet_trainer(tmp_path, max_steps=2)
    trainer.fit(model, datamodule=dm)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    return str(tmp_path / "m.ckpt"), tmp_path / "train.csv"


def test_checkpoint_preprocessing_reads_columns_in_its_own_order(saved, tmp_path):
    ckpt, train = saved
    frame = pd.read_csv(train)
    frame[["income", "y", "city", "age", "zone", "flag"]].to_csv(tmp_path / "shuffled.csv", index=False)
    original = TabularDataModule(path=str(train), target="y", checkpoint=ckpt).split_tensors("val")[0]
    shuffled = TabularDataModule(path=str(tmp_path / "shuffled.csv"), target="y", checkpoint=ckpt)
    torch.testing.assert_close(shuffled.split_tensors("val")[0], original)
    frame.drop(columns="income").to_csv(tmp_path / "fewer.csv", index=False)
    with pytest.raises(ValueError, match=r"Feature columns \['income'\] not in"):
        _ = TabularDataModule(path=str(tmp_path / "fewer.csv"), target="y", checkpoint=ckpt).num_features


def test_other_features_than_the_checkpoint_are_an_error(saved):
    ckpt, _ = saved
    dm = TabularDataModule.from_arrays(np.zeros((20, 5)), np.array(["no", "yes"] * 10), missing="median")
    dm.setup()
    dm.load_state_dict(torch.load(ckpt, weights_only=True)["TabularDataModule"])
    with pytest.raises(ValueError, match=r"The features of the checkpoint, \['age', .*differ from those of this data"):
        dm.val_dataloader()


def test_prediction_file_read_as_objects(saved, tmp_path):
    ckpt, train = saved
    new = pd.read_csv(train).drop(columns="y").head(3).astype({"flag": object})
    new.loc[1, "flag"] = None  # a bool column with an empty cell is read back as objects
    new.to_csv(tmp_path / "new.csv", index=False)
    dm = TabularDataModule(checkpoint=ckpt, predict_path=str(tmp_path / "new.csv"))
    x, _ = next(iter(dm.predict_dataloader()))
    assert torch.isfinite(x).all()
    new = new.astype({"income": object})
    new.loc[2, "income"] = "lots"
    new.to_csv(tmp_path / "bad.csv", index=False)
    dm = TabularDataModule(checkpoint=ckpt, predict_path=str(tmp_path / "bad.csv"))
    with pytest.raises(ValueError, match=r"Feature column 'income' .* not a number at row 2: 'lots'"):
        dm.predict_dataloader()


def test_missing_numbers_at_prediction_of_a_model_trained_without(tmp_path):

    from nnlit import BinaryMLP

    frame = mixed_frame().drop(columns=["age"])
    dm = TabularDataModule.from_arrays(frame, targets())
    model = BinaryMLP(in_features=dm.num_features, categories=dm.categories, hidden=[4])
    trainer = quiet_trainer(tmp_path, max_steps=1)
    trainer.fit(model, datamodule=dm)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    frame.loc[1, "income"] = np.nan
    frame.to_csv(tmp_path / "new.csv", index=False)
    dm = TabularDataModule(checkpoint=str(tmp_path / "m.ckpt"), predict_path=str(tmp_path / "new.csv"))
    with pytest.raises(ValueError, match=r"'income': 1 rows .*trained with `missing: error`.*fill or drop"):
        dm.predict_dataloader()


def test_no_decision_boundary_over_a_code_or_was_missing_column():
    from nnlit.plots import draws_boundary

    frame = mixed_frame()[["income", "city"]]
    assert not draws_boundary(TabularDataModule.from_arrays(frame, targets()))
    assert draws_boundary(TabularDataModule.from_arrays(mixed_frame()[["income", "zone"]], targets()))
