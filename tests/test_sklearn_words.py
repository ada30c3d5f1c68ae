"""The estimators speak their own words: scikit-learn's parameter names get nnlit's, a typo a "did you mean", and
missing numbers the `missing=` argument, never the private base class or the data module's `missing: median`."""

import pickle

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")

from sklearn.base import clone  # noqa: E402

from nnlit.sklearn import SKLEARN_NAMES, MLPClassifier, MLPRegressor  # noqa: E402


@pytest.mark.parametrize(
    ("estimator", "given", "match"),
    [
        (MLPClassifier, "hidden_layer_sizes", r"MLPClassifier got an unexpected keyword argument 'hidden_layer_sizes'; "
         r"nnlit's MLPClassifier calls scikit-learn's `hidden_layer_sizes` `hidden`\. It takes: hidden, activation"),
        (MLPRegressor, "max_iter", r"MLPRegressor .* calls scikit-learn's `max_iter` `max_epochs`"),
        (MLPClassifier, "alpha", r"`weight_decay` \(the optimizer's weight decay, where scikit-learn adds an L2"),
        (MLPClassifier, "learning_rate_init", r"`lr`"),
        (MLPClassifier, "hiden", r"unexpected keyword argument 'hiden'; did you mean `hidden`\?"),
        (MLPRegressor, "max_epoch", r"did you mean `max_epochs`\?"),
        (MLPClassifier, "colour", r"unexpected keyword argument 'colour'\. It takes: hidden, "),
    ],
)  # fmt: skip
def test_unknown_parameters_are_named_in_the_estimators_words(estimator, given, match):
    with pytest.raises(TypeError, match=match) as caught:
        estimator(**{given: 1})
    assert "_MLPEstimator" not in str(caught.value)


def test_every_sklearn_name_is_not_a_parameter():
    """The table is of names the estimators do not take (a name both use needs no entry)."""
    taken = set(MLPClassifier().get_params()) | set(MLPRegressor().get_params())
    assert not set(SKLEARN_NAMES) & taken
    assert all(hint.startswith("`") and hint.split("`")[1].split("=")[0] in taken for hint in SKLEARN_NAMES.values())


def test_the_contract_is_unchanged():
    """clone, get_params and pickle go through as before."""
    model = MLPClassifier(hidden=(4,), max_epochs=3)
    assert clone(model).get_params() == model.get_params()
    assert pickle.loads(pickle.dumps(model)).get_params()["hidden"] == (4,)


@pytest.fixture
def gappy():
    x = np.random.default_rng(0).normal(size=(60, 2))
    x[3, 1] = np.nan
    return x, np.arange(60) % 2


@pytest.mark.parametrize("form", ["array", "DataFrame"])
def test_nan_in_fit_names_the_missing_argument(gappy, form):
    x, y = gappy
    X = x if form == "array" else pd.DataFrame(x, columns=["a", "b"])
    with pytest.raises(ValueError, match=r"Input X contains NaN.*give MLPClassifier\(missing='median'\) to fill") as e:
        MLPClassifier(max_epochs=1).fit(X, y)
    assert "missing: median" not in str(e.value) and "HistGradientBoosting" not in str(e.value)
    if form == "DataFrame":
        assert "('b': 1 rows)" in str(e.value)


@pytest.mark.parametrize("form", ["array", "DataFrame"])
def test_nan_in_predict_says_what_the_fit_had(gappy, form):
    x, y = gappy
    filled = np.nan_to_num(x)
    frame = form == "DataFrame"
    model = MLPClassifier(max_epochs=1).fit(pd.DataFrame(filled, columns=["a", "b"]) if frame else filled, y)
    with pytest.raises(ValueError, match=r"this MLPClassifier was fitted with missing='error', so it has no medians"):
        model.predict(pd.DataFrame(x, columns=["a", "b"]) if frame else x)


@pytest.mark.parametrize("missing", ["median", "median_indicator"])
def test_missing_numbers_in_an_array_are_filled(gappy, missing):
    x, y = gappy
    model = MLPRegressor(max_epochs=1, missing=missing).fit(x, y.astype(float))
    assert np.isfinite(model.predict(x)).all()
    assert model.module_.in_features == (3 if missing == "median_indicator" else 2)
