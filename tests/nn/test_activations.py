import pytest
import torch
from torch import nn

from nnlit.nn import ACTIVATIONS, Maxout, get_activation


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_name_builds_a_new_module(name):
    first, second = get_activation(name), get_activation(name)
    assert isinstance(first, nn.Module)
    assert first is not second


@pytest.mark.parametrize(
    ("spec", "kwargs", "expected"),
    [
        ("relu", {}, nn.ReLU),
        ("ReLU", {}, nn.ReLU),
        ("leaky_relu", {"negative_slope": 0.3}, nn.LeakyReLU),
        (nn.Tanh, {}, nn.Tanh),
        (None, {}, nn.Identity),
        ("maxout", {"pieces": 3}, Maxout),
    ],
)
def test_specs(spec, kwargs, expected):
    module = get_activation(spec, **kwargs)
    assert type(module) is expected
    if "negative_slope" in kwargs:
        assert module.negative_slope == 0.3
    if "pieces" in kwargs:
        assert module.pieces == 3


def test_instance_is_copied_with_its_parameters():
    prelu = nn.PReLU(init=0.1)
    copy = get_activation(prelu)
    assert copy is not prelu
    assert copy.weight is not prelu.weight
    assert torch.equal(copy.weight, prelu.weight)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"Unknown activation 'swish'\. Valid names: elu, gelu, identity"):
        get_activation("swish")


def test_kwargs_with_instance_rejected():
    with pytest.raises(ValueError, match="cannot be applied to the instance"):
        get_activation(nn.ReLU(), inplace=True)


def test_wrong_type_rejected():
    with pytest.raises(TypeError, match="`activation` must be a name"):
        get_activation(3)


def test_kwargs_the_activation_rejects():
    with pytest.raises(ValueError, match=r"Activation 'relu' does not accept the arguments \{'negative_slope': 0.2\}"):
        get_activation("relu", negative_slope=0.2)
