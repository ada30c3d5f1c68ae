import torch

from nnlit.models.weighted_mean import WeightedMean


def test_weights_count():
    mean = WeightedMean()
    values, weights = torch.tensor([0.5, 2.0, 4.0]), [64, 64, 7]
    for v, w in zip(values, weights):
        mean.update(v, w)
    expected = (values * torch.tensor(weights, dtype=torch.float32)).sum() / sum(weights)
    assert torch.allclose(mean.compute(), expected)
    assert not torch.allclose(mean.compute(), values.mean())  # an unweighted mean would differ


def test_reset():
    mean = WeightedMean()
    mean.update(torch.tensor(5.0), 1)
    mean.reset()
    mean.update(torch.tensor(1.0), 3)
    assert mean.compute().item() == 1.0


def test_weights_broadcast_over_the_values():
    # a number or a 0-d tensor weighs every element of a vector value: both count each element, as 3 updates would
    by_number, by_tensor, one_by_one = WeightedMean(), WeightedMean(), WeightedMean()
    values = torch.tensor([1.0, 2.0, 6.0])
    by_number.update(values, 4)
    by_tensor.update(values, torch.tensor(4))
    for v in values:
        one_by_one.update(v, 4)
    one_by_one.update(torch.tensor(10.0), 2)
    by_number.update(torch.tensor(10.0), 2)
    by_tensor.update(torch.tensor([10.0]), torch.tensor([2.0]))
    expected = torch.tensor((4 * 9.0 + 2 * 10.0) / 14)
    for mean in (by_number, by_tensor, one_by_one):
        torch.testing.assert_close(mean.compute(), expected)
