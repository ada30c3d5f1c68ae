import itertools

import pytest
import torch
from torch import nn

from nnlit.nn import ACTIVATIONS, MLP, Maxout


def expected_parameters(sizes):
    """Parameters of Linear layers sizes[0] -> sizes[1] -> ... with biases: the formula."""
    return sum(a * b + b for a, b in itertools.pairwise(sizes))


def test_capacity_lesson():
    mlp = MLP(8, [4], 2, activation=None)
    assert mlp.num_parameters == 46 == expected_parameters([8, 4, 2])
    assert [type(m) for m in mlp] == [nn.Linear, nn.Identity, nn.Linear]


@pytest.mark.parametrize("hidden", [[], [3], [5, 7], [16, 8, 4]])
def test_parameter_count_matches_formula(hidden):
    mlp = MLP(6, hidden, 3)
    assert mlp.num_parameters == expected_parameters([6, *hidden, 3])
    assert sum(mlp.layer_parameters().values()) == mlp.num_parameters


def test_empty_hidden_is_one_linear_layer():
    mlp = MLP(5, [], 1)
    assert len(mlp) == 1 and isinstance(mlp.output, nn.Linear)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_each_layer_owns_its_activation(activation):
    mlp = MLP(3, [4, 4, 4], 2, activation=activation)
    acts = [mlp.act1, mlp.act2, mlp.act3]
    assert len({id(a) for a in acts}) == 3
    assert mlp(torch.randn(5, 3)).shape == (5, 2)


def test_activation_instance_is_copied_per_layer():
    mlp = MLP(2, [3, 3], 1, activation=nn.LeakyReLU(negative_slope=0.2))
    assert mlp.act1 is not mlp.act2
    assert mlp.act2.negative_slope == 0.2


def test_maxout_widens_the_linear_in_front():
    mlp = MLP(2, [3, 5], 1, activation="maxout", activation_kwargs={"pieces": 4})
    assert isinstance(mlp.act1, Maxout)
    assert mlp.linear1.out_features == 12 and mlp.linear2.in_features == 3 and mlp.linear2.out_features == 20
    assert mlp(torch.randn(4, 2)).shape == (4, 1)


def test_norm_and_dropout_order():
    mlp = MLP(2, [3], 1, norm="batch", dropout=0.5)
    assert list(dict(mlp.named_children())) == ["linear1", "norm1", "act1", "dropout1", "output"]
    assert isinstance(mlp.norm1, nn.BatchNorm1d) and mlp.dropout1.p == 0.5
    assert isinstance(MLP(2, [3], 1, norm="layer").norm1, nn.LayerNorm)


def test_forward_equals_manual_computation():
    torch.manual_seed(0)
    mlp = MLP(3, [4], 2, activation="tanh")
    x = torch.randn(6, 3)
    manual = torch.tanh(x @ mlp.linear1.weight.T + mlp.linear1.bias) @ mlp.output.weight.T + mlp.output.bias
    assert torch.allclose(mlp(x), manual, atol=1e-6)


def test_no_bias():
    assert all(m.bias is None for m in MLP(3, [4], 2, bias=False) if isinstance(m, nn.Linear))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden": [4, 0]}, r"`hidden\[1\]` must be a positive integer, got 0"),
        ({"hidden": [-2]}, r"`hidden\[0\]` must be a positive integer, got -2"),
        ({"in_features": 0}, "`in_features` must be a positive integer, got 0"),
        ({"dropout": 1.0}, r"`dropout` must be in \[0, 1\), got 1.0"),
        ({"norm": "group"}, "Unknown norm 'group'. Valid values: None, batch, layer"),
        ({"activation": "relu6"}, "Unknown activation 'relu6'"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"in_features": 3, "hidden": [4], "out_features": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        MLP(**args)
