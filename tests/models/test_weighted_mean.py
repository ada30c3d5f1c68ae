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
