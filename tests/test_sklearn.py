"""nnlit.sklearn: the estimators pass scikit-learn's checks, work in its machinery, pickle, save nnlit checkpoints and
train what the equivalent ``nnlit fit`` trains."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("sklearn")

from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.estimator_checks import check_estimator

import nnlit
from nnlit.callbacks import DeadReLUCounter
from nnlit.sklearn import MLPClassifier, MLPRegressor

FAST = {"max_epochs": 15, "lr": 0.01, "random_state": 0}


@pytest.fixture(scope="module")
def blobs():
    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=0)
    return X.astype(np.float32), np.array(["ant", "bee", "cat"])[y]


@pytest.mark.parametrize("estimator", [MLPClassifier(**FAST), MLPRegressor(**FAST)], ids=lambda e: type(e).__name__)
def test_sklearns_estimator_checks_pass(estimator):
    """Every check but those the estimator names, with their reasons, in EXPECTED_FAILED_CHECKS."""
    results = check_estimator(estimator, on_fail=None, expected_failed_checks=estimator.EXPECTED_FAILED_CHECKS)
    assert len(results) > 40
    assert [r["check_name"] for r in results if r["status"] == "failed"] == []
    assert all(reason for reason in estimator.EXPECTED_FAILED_CHECKS.values())


def test_it_learns_with_labels_of_any_kind_and_records_each_epoch(blobs):
    X, y = blobs
    model = MLPClassifier(**FAST).fit(X, y)
    assert model.classes_.tolist() == ["ant", "bee", "cat"] and model.n_features_in_ == 6
    assert set(model.predict(X)) <= set(model.classes_) and model.score(X, y) > 0.85
    probabilities = model.predict_proba(X)
    assert probabilities.shape == (300, 3) and np.allclose(probabilities.sum(axis=1), 1.0)
    assert [e["epoch"] for e in model.history_] == list(range(15)) and model.n_epochs_ == 15
    assert model.history_[-1]["train/loss"] < model.history_[0]["train/loss"]
    assert "train/loss" in model.history_[0] and "train/acc" not in model.history_[0]  # the split's loss alone


def test_early_stopping_on_a_validation_split(blobs):
    X, y = blobs
    model = MLPClassifier(max_epochs=500, lr=0.05, val_fraction=0.2, patience=3, random_state=0).fit(X, y)
    assert model.n_epochs_ < 500 and "val/loss" in model.history_[-1]


def test_the_same_seed_trains_the_same_weights_and_leaves_torchs_generator_alone(blobs):
    X, y = blobs
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = MLPClassifier(**FAST).fit(X, y).predict_proba(X)
    after = torch.rand(1)
    b = MLPClassifier(**FAST).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert torch.equal(before, after)  # the fit drew from a generator of its own


def test_in_a_pipeline_with_grid_search_on_two_processes_and_cross_validation():
    X, y = load_breast_cancer(return_X_y=True)
    pipeline = make_pipeline(StandardScaler(), MLPClassifier(max_epochs=10, random_state=0))
    search = GridSearchCV(
        pipeline, {"mlpclassifier__hidden": [(8,), (16,)], "mlpclassifier__lr": [1e-3, 1e-2]}, cv=3, n_jobs=2
    )
    search.fit(X, y)
    assert len(search.cv_results_["mean_test_score"]) == 4 and search.best_score_ > 0.9
    scores = cross_val_score(MLPClassifier(max_epochs=10, lr=0.01, random_state=0), X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.9


def test_a_dataframe_with_text_categories_and_gaps(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=400),
            "city": rng.choice(["oslo", "rome", "lima"], 400),
            "plan": pd.Categorical(rng.choice(["a", "b"], 400)),
        }
    )
    y = ((frame["size"] > 0) ^ (frame["city"] == "rome")).astype(int)
    frame.loc[::17, "size"] = np.nan
    model = MLPRegressor(max_epochs=30, lr=0.01, missing="median", random_state=0).fit(frame, y.astype(float))
    assert model.feature_names_in_.tolist() == ["size", "city", "plan"]
    assert model.preprocessing_.categorical == ["city", "plan"]
    unseen = frame.head(3).assign(city=["paris", "rome", "oslo"])  # an unknown city takes the unknown category
    assert model.predict(unseen).shape == (3,)
    with pytest.raises(ValueError, match="feature names"):
        model.predict(frame[["city", "size", "plan"]].rename(columns={"size": "height"}))


def test_inside_a_column_transformer():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=200), "colour": rng.choice(["red", "blue"], 200)})
    y = np.where((frame["x"] > 0) == (frame["colour"] == "red"), "yes", "no")
    columns = ColumnTransformer([("num", StandardScaler(), ["x"]), ("cat", OneHotEncoder(), ["colour"])])
    pipeline = make_pipeline(columns, MLPClassifier(max_epochs=40, lr=0.02, random_state=0)).fit(frame, y)
    assert pipeline.score(frame, y) > 0.9


def test_several_regression_targets_in_their_own_units():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3)).astype(np.float32)
    Y = np.column_stack([X @ [1.0, 2.0, 0.0] + 100.0, X @ [0.0, -1.0, 3.0] * 0.01])
    model = MLPRegressor(hidden=(32,), max_epochs=60, lr=0.01, random_state=0).fit(X, Y)
    prediction = model.predict(X)
    assert prediction.shape == (500, 2)
    assert abs(prediction[:, 0].mean() - 100.0) < 1.0 and model.score(X, Y) > 0.9


def test_pickle_and_joblib_round_trips_predict_the_same(blobs, tmp_path):
    joblib = pytest.importorskip("joblib")
    X, y = blobs
    model = MLPClassifier(**FAST).fit(X, y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    joblib.dump(model, tmp_path / "model.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "model.joblib").predict(X), model.predict(X))


def test_save_writes_a_checkpoint_nnlit_loads_and_serves(blobs, tmp_path):
    X, y = blobs
    model = MLPClassifier(**FAST).fit(X, y)
    path = model.save(tmp_path / "model.ckpt")
    predictor = nnlit.Predictor.from_checkpoint(path)
    result = predictor.predict(X[:20])
    assert list(result["prediction"]) == model.predict(X[:20]).tolist()
    np.testing.assert_allclose(
        np.column_stack([result[f"prob_{c}"] for c in model.classes_]), model.predict_proba(X[:20]), rtol=1e-6
    )
    assert type(nnlit.load(path)).__name__ == "MulticlassMLP"


def test_predictions_equal_those_of_the_equivalent_nnlit_fit(blobs, tmp_path, monkeypatch):
    from nnlit.cli import main

    X, y = blobs
    model = MLPClassifier(hidden=(16,), max_epochs=5, batch_size=32, lr=0.01, random_state=0).fit(X, y)
    seed = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))  # what random_state=0 seeds
    table = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)]).assign(y=y)
    table.to_csv(tmp_path / "train.csv", index=False, float_format="%.9g")  # float32 values, exactly
    monkeypatch.chdir(tmp_path)
    data = ["--data=TabularDataModule", "--data.init_args.path=train.csv", "--data.init_args.target=y"]
    data += ["--data.init_args.val_fraction=0", f"--data.init_args.seed={seed}", "--data.init_args.batch_size=32"]
    head = ["--model=MulticlassMLP", "--model.init_args.hidden=[16]", "--model.init_args.optimizer=torch.optim.Adam"]
    head += ["--model.init_args.optimizer.init_args.lr=0.01"]
    run = [f"--seed_everything={seed}", "--trainer.max_epochs=5", "--threads=1", "--trainer.enable_progress_bar=false"]
    main(["fit", *head, *data, *run, "--report=false"])
    (checkpoint,) = tmp_path.glob("lightning_logs/version_0/checkpoints/*.ckpt")
    result = nnlit.Predictor.from_checkpoint(checkpoint).predict(table.drop(columns="y"))
    expected = np.column_stack([result[f"prob_{c}"] for c in model.classes_])
    np.testing.assert_allclose(model.predict_proba(X), expected, rtol=1e-5, atol=1e-7)


def test_callbacks_are_copied_per_fit_and_kept_with_what_they_saw(blobs):
    X, y = blobs
    counter = DeadReLUCounter()
    model = MLPClassifier(callbacks=[counter], **FAST).fit(X, y)
    assert counter.history == []  # the parameter is left as given
    (fitted,) = model.callbacks_
    assert isinstance(fitted, DeadReLUCounter) and len(fitted.history) == 15


def test_a_fit_is_quiet_and_leaves_no_files(blobs, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    X, y = blobs
    MLPClassifier(**FAST).fit(X, y).predict(X)
    out, err = capfd.readouterr()
    assert out == "" and err == "" and list(tmp_path.iterdir()) == []


def test_bad_input_is_named():
    X, y = make_classification(n_samples=50, n_features=4, random_state=0)
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(X)
    model = MLPClassifier(max_epochs=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 4 features"):
        model.predict(X[:, :3])
    with pytest.raises(ValueError, match="only one class: 1"):
        MLPClassifier().fit(X, np.ones(50))
    with pytest.raises(ValueError, match="Input y contains NaN"):
        MLPRegressor().fit(X, np.where(np.arange(50) == 3, np.nan, 1.0))
    with pytest.raises(ValueError, match="Input y contains NaN or None"):
        MLPClassifier().fit(X, np.array(["a", None] * 25, dtype=object))
    scipy_sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="Sparse input is not supported"):
        MLPClassifier().fit(scipy_sparse.csr_matrix(X), y)


def test_a_logger_without_a_folder_leaves_nothing_behind_and_trainer_callbacks_are_copied(blobs, tmp_path, monkeypatch):
    import tempfile

    from lightning.pytorch.loggers import CSVLogger

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the fit's scratch folder goes here
    X, y = blobs
    counter = DeadReLUCounter()
    model = MLPClassifier(trainer_kwargs={"logger": True, "callbacks": [counter]}, **FAST).fit(X, y)
    assert list(tmp_path.iterdir()) == []  # the scratch folder, and the logger's files in it, are gone
    assert counter.history == [] and len(model.callbacks_) == 0  # trainer_kwargs' callbacks are copied too
    kept = MLPClassifier(trainer_kwargs={"logger": CSVLogger(tmp_path / "logs")}, **FAST).fit(X, y)
    assert kept.n_epochs_ == 15 and list((tmp_path / "logs").glob("**/metrics.csv"))


def test_a_precision_in_trainer_kwargs_takes_the_place_of_the_default_plugin(blobs):
    X, y = blobs
    model = MLPClassifier(trainer_kwargs={"precision": "bf16-mixed"}, **FAST).fit(X, y)
    assert model.predict(X).shape == y.shape and model.n_epochs_ == FAST["max_epochs"]
