"""MLPOptions declares the network's options once: every place that takes them follows it."""

import dataclasses
import inspect

import pytest

from nnlit import MLP, BinaryMLP, MLPModule, MulticlassMLP, RegressionMLP
from nnlit.arguments import init_arguments
from nnlit.nn.options import MLPOptions

HEADS = [BinaryMLP, MulticlassMLP, RegressionMLP]


@pytest.mark.parametrize("head", [MLPModule, *HEADS])
def test_every_option_is_an_argument_of_the_modules(head):
    assert set(MLPOptions.names()) <= set(init_arguments(head))


def test_the_builder_takes_every_option_with_the_same_default():
    parameters = inspect.signature(MLP).parameters
    for field in dataclasses.fields(MLPOptions):
        assert field.name in parameters, field.name
        if field.name != "hidden":  # the builder's hidden is required: MLP(8, [4], 2)
            assert parameters[field.name].default == field.default, field.name


def test_the_estimators_take_every_option_but_categories_with_its_default():
    sklearn = pytest.importorskip("nnlit.sklearn")
    parameters = inspect.signature(sklearn.MLPClassifier).parameters
    for field in dataclasses.fields(MLPOptions):
        if field.name == "categories":  # read from X
            assert field.name not in parameters
            continue
        assert parameters[field.name].default == field.default, field.name


def test_options_reach_the_network():
    model = RegressionMLP(in_features=3, hidden=[5], activation="tanh", bias=False, dropout=0.25)
    assert model.options == MLPOptions(hidden=[5], activation="tanh", bias=False, dropout=0.25)
    assert model.network.linear1.bias is None and model.network.dropout1.p == 0.25
    assert type(model.network.act1).__name__ == "Tanh"


def test_options_given_and_not_given_are_saved_as_hyperparameters():
    model = BinaryMLP(in_features=2, hidden=[3], pos_weight=2.0)
    expected = {name: getattr(MLPOptions, name) for name in MLPOptions.names()} | {"hidden": [3]}
    assert {name: model.hparams[name] for name in MLPOptions.names()} == expected
    assert "out_features" not in model.hparams  # BinaryMLP sets it itself
    assert model.hparams["pos_weight"] == 2.0 and model.hparams["num_classes"] == 2


def test_an_unknown_option_names_the_class_and_the_options():
    with pytest.raises(TypeError, match=r"MulticlassMLP got unexpected keyword argument\(s\) 'hiden'; the network's "):
        MulticlassMLP(in_features=2, num_classes=3, hiden=[4])


@pytest.mark.parametrize("head", HEADS)
def test_the_cli_lists_every_argument_with_its_type_default_and_doc(head, capsys):
    from nnlit.cli import main

    with pytest.raises(SystemExit):
        main(["fit", "--model.help", f"nnlit.{head.__name__}"])
    text = " ".join(capsys.readouterr().out.split())
    for name in init_arguments(head):
        assert f"--model.{name} " in text, name
    assert (
        "--model.hidden [ITEM,...], --model.hidden+ [ITEM,...] hidden layer widths. (type: Sequence[int], "
        "default: (64, 64))" in text
    )
    assert "--model.max_one_hot MAX_ONE_HOT a categorical column of at most this many codes" in text
    assert "(type: int, default: 16)" in text
