import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnlit.nn import MLP
from nnlit.nn.categorical import CategoricalEncoder, embedding_size


def reference(encoder: CategoricalEncoder, x: torch.Tensor) -> torch.Tensor:
    """The encoder's output computed column by column with F.one_hot and the embedding tables directly."""
    parts = [x[:, : encoder.num_numeric]]
    one_hot = [j for j, n in enumerate(encoder.categories) if n <= encoder.max_one_hot]
    for j in one_hot:
        codes = x[:, encoder.num_numeric + j]
        n = encoder.categories[j]
        valid = (codes >= 0) & (codes < n) & (codes == codes.floor())
        code = torch.where(valid, codes, torch.zeros_like(codes)).long()
        parts.append(F.one_hot(code, n)[:, 1:].float())  # column 0, the unknown code, dropped
    embedded = [j for j, n in enumerate(encoder.categories) if n > encoder.max_one_hot]
    for table, j in zip(encoder.embeddings, embedded):
        codes = x[:, encoder.num_numeric + j]
        valid = (codes >= 0) & (codes < encoder.categories[j]) & (codes == codes.floor())
        parts.append(table.weight[torch.where(valid, codes, torch.zeros_like(codes)).long()])
    return torch.cat(parts, dim=1)


def random_input(rows: int, num_numeric: int, categories: list[int], seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    codes = [torch.randint(0, n, (rows, 1), generator=g).float() for n in categories]
    return torch.cat([torch.randn(rows, num_numeric, generator=g), *codes], dim=1)


@pytest.mark.parametrize(
    ("categories", "max_one_hot"), [([3], 16), ([40], 16), ([3, 40, 5, 17], 16), ([3, 5], 0), ([2, 30], 100)]
)
def test_matches_column_by_column_reference(categories, max_one_hot):
    encoder = CategoricalEncoder(2 + len(categories), categories, max_one_hot=max_one_hot)
    x = random_input(64, 2, categories)
    torch.testing.assert_close(encoder(x), reference(encoder, x))
    assert encoder(x).shape == (64, encoder.out_features)


def test_width_one_hot_and_embedding_sizes():
    encoder = CategoricalEncoder(5, [3, 40, 17], max_one_hot=16)
    # 2 numeric + (3 - 1) one-hot + the default embedding widths of 40 and 17 codes
    assert encoder.out_features == 2 + 2 + embedding_size(40) + embedding_size(17)
    assert [e.num_embeddings for e in encoder.embeddings] == [40, 17]
    assert CategoricalEncoder(3, [40, 17], embedding_dim=4).out_features == 1 + 4 + 4


def test_embedding_size_rule():
    assert [embedding_size(n) for n in (2, 20, 100)] == [round(1.6 * n**0.56) for n in (2, 20, 100)]
    assert embedding_size(10**7) == 600


@pytest.mark.parametrize("bad_code", [0.0, -1.0, 40.0, 1000.0, 1.5, float("nan"), float("inf")])
def test_unknown_and_invalid_codes_add_nothing(bad_code):
    encoder = CategoricalEncoder(2, [3, 40])
    x = torch.tensor([[bad_code, bad_code]])
    assert encoder(x).abs().sum().item() == 0.0


def test_unknown_embedding_row_is_zero_and_stays_zero():
    encoder = CategoricalEncoder(1, [30], max_one_hot=0)
    optimizer = torch.optim.SGD(encoder.parameters(), lr=1.0)
    x = torch.tensor([[0.0], [5.0], [0.0]])
    encoder(x).sum().backward()
    optimizer.step()
    table = encoder.embeddings[0].weight
    assert table[0].abs().sum().item() == 0.0
    assert table.grad is not None and table.grad[5].abs().sum().item() > 0


def test_numeric_columns_pass_through():
    encoder = CategoricalEncoder(3, [4])
    x = torch.tensor([[1.5, -2.0, 3.0]])
    assert encoder(x)[0, :2].tolist() == [1.5, -2.0]
    assert encoder(x)[0, 2:].tolist() == [0.0, 0.0, 1.0]


def test_torchscript_gives_the_same_outputs():
    encoder = CategoricalEncoder(4, [3, 40, 5], max_one_hot=4)
    x = random_input(10, 1, [3, 40, 5])
    torch.testing.assert_close(torch.jit.script(encoder)(x), encoder(x))


def test_mlp_puts_the_encoder_first():
    mlp = MLP(4, [8], 1, categories=[3, 40])
    assert list(dict(mlp.named_children()))[:2] == ["encoder", "linear1"]
    assert mlp.linear1.in_features == mlp.encoder.out_features == 2 + 2 + embedding_size(40)
    assert mlp(random_input(5, 2, [3, 40])).shape == (5, 1)
    assert mlp.layer_parameters()["encoder"] == 40 * embedding_size(40)
    assert not any(isinstance(m, CategoricalEncoder) for m in MLP(4, [8], 1))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_features": 1, "categories": [3, 3]}, "2 categorical columns do not fit in in_features=1"),
        ({"in_features": 2, "categories": [1]}, r"needs >= 2 codes .*got \[1\]"),
        ({"in_features": 2, "categories": [3], "max_one_hot": -1}, "`max_one_hot` must be an integer >= 0, got -1"),
        ({"in_features": 2, "categories": [3], "embedding_dim": 0}, "`embedding_dim` must be a positive integer"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CategoricalEncoder(**kwargs)


def test_embedding_is_not_a_layer_for_freezing_or_gradient_ratio():
    from nnlit.callbacks.freeze_layers import _has_weight_matrix

    mlp = MLP(3, [4], 1, categories=[30], max_one_hot=0)
    layers = [name for name, m in mlp.named_modules() if _has_weight_matrix(m)]
    assert layers == ["linear1", "output"]
    assert isinstance(mlp.encoder.embeddings[0], nn.Embedding)
