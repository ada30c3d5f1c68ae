import pytest
import torch

from nnlit.data.synthetic import SYNTHETIC, make_gauss, make_spiral, make_xor


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_shapes_types_and_seeding(name):
    make = SYNTHETIC[name].make
    x, y = make(n_samples=200, noise=0.2, seed=1)
    assert x.shape == (200, 2) and x.dtype == torch.float32
    if SYNTHETIC[name].task == "classification":
        assert y.dtype == torch.int64 and set(y.tolist()) == {0, 1}
    else:
        assert y.shape == (200,) and y.dtype == torch.float32
    x2, y2 = make(n_samples=200, noise=0.2, seed=1)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, make(n_samples=200, noise=0.2, seed=2)[0])


def test_global_rng_untouched():
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    make_spiral(100)
    assert torch.equal(torch.rand(1), expected)


def test_xor_without_noise_follows_the_sign_rule():
    x, y = make_xor(500, noise=0.0)
    assert torch.equal(y, (x[:, 0] * x[:, 1] >= 0).long())


@pytest.mark.parametrize("make", [make_gauss, make_spiral])
def test_many_classes_balanced(make):
    _, y = make(300, n_classes=3)
    assert torch.bincount(y).tolist() == [100, 100, 100]


def test_class_count_errors():
    with pytest.raises(ValueError, match="The 'xor' data set has exactly 2 classes, got n_classes=3"):
        make_xor(10, n_classes=3)
    with pytest.raises(ValueError, match="`n_classes` of the 'spiral' data set must be an integer >= 2, got 1"):
        make_spiral(10, n_classes=1)
