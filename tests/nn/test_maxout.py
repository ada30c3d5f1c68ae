import pytest
import torch

from nnlit.nn import Maxout


@pytest.mark.parametrize("pieces", [2, 3, 5])
def test_maxout_matches_a_loop_over_units(pieces):
    torch.manual_seed(0)
    width = 4
    x = torch.randn(7, width * pieces)
    out = Maxout(pieces)(x)
    expected = torch.stack([x[:, j * pieces : (j + 1) * pieces].max(dim=1).values for j in range(width)], dim=1)
    assert torch.equal(out, expected)


@pytest.mark.parametrize("pieces", [1, 0, 2.5, True])
def test_bad_pieces(pieces):
    with pytest.raises(ValueError, match="`pieces` must be an integer >= 2"):
        Maxout(pieces)


def test_width_not_divisible():
    with pytest.raises(ValueError, match=r"Maxout\(pieces=3\) needs an input width divisible by 3, got 4"):
        Maxout(3)(torch.zeros(2, 4))
