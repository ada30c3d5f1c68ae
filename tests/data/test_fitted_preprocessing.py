"""FittedPreprocessing on its own: its checks, its state round trip, its device copies."""

import pytest
import torch

from nnlit.data.fitted_preprocessing import FittedPreprocessing


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"missing": "mean"}, r"`missing` must be one of error, median, median_indicator, got 'mean'"),
        ({"missing": "median"}, r"`median` is needed with missing='median' and only then, got median=None"),
        ({"median": [0.0, 0.0]}, r"`median` is needed with missing='error' and only then"),
        ({"categorical": ["a"], "vocabularies": [["x"]]}, r"`categorical` \['a'\] must be the last features"),
        ({"mean": [0.0, 0.0]}, r"Give both `mean` and `std` or neither"),
        ({"mean": [0.0], "std": [1.0]}, r"`mean` needs 2 values \(one per model input\), got 1"),
    ],
)
def test_arguments_that_do_not_fit_together_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FittedPreprocessing(["a", "b"], **kwargs)


def test_state_round_trip_and_transform():
    prep = FittedPreprocessing(
        ["a", "b", "zone"], ["zone"], [["n", "s"]], "median_indicator", [1.0, 2.0], ["b"],
        mean=[0.0, 10.0, 0.0, 0.0], std=[1.0, 2.0, 1.0, 1.0], classes=["no", "yes"],
    )  # fmt: skip
    again = FittedPreprocessing.from_state_dict(prep.state_dict())
    assert again.state_dict() == prep.state_dict()
    x = torch.tensor([[3.0, float("nan")]])
    codes, unknown = prep.encode_categories({"zone": ["s"]}, 1)
    # b filled with its median 2 -> (2 - 10) / 2; its was-missing column 1; zone's code 2
    torch.testing.assert_close(prep.transform(x, codes), torch.tensor([[3.0, -4.0, 1.0, 2.0]]))
    assert unknown == {"zone": 0} and prep.decode([1, 0]) == ["yes", "no"]


def test_a_replaced_statistic_is_not_served_from_a_stale_copy():
    prep = FittedPreprocessing(["a"], mean=[1.0], std=[1.0])
    meta = torch.device("meta")
    first = prep._on(prep.mean, meta, None)
    prep.mean = torch.tensor([5.0])
    assert prep._on(prep.mean, meta, None) is not first and len(prep._copies.kept) == 1  # the old copy is dropped
