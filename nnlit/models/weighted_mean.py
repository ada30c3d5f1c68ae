"""The epoch loss as a metric: a mean weighted by rows, reduced exactly across DDP ranks."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


class WeightedMean(Metric):
    r"""``Σ wᵢ xᵢ / Σ wᵢ`` over every update of an epoch, summed across processes before dividing.

    Logged through ``self.log``, it gives every DDP rank the same exact epoch loss, also when the ranks see different
    numbers of rows. (``torchmetrics.MeanMetric(nan_strategy="disable")``, the variant without a per-step NaN check,
    ignores the weights in torchmetrics 1.9.)

    Example::

        >>> mean = WeightedMean()
        >>> mean.update(torch.tensor(1.0), 32)
        >>> mean.update(torch.tensor(3.0), 16)
        >>> mean.compute()
        tensor(1.6667)
    """

    full_state_update = False  # float32 states: Apple's MPS has no float64
    weighted_sum: Tensor
    total_weight: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.add_state("weighted_sum", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total_weight", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, value: Tensor, weight: float | Tensor) -> None:
        """Adds each element of ``value`` with ``weight`` (a number, or a tensor that broadcasts to ``value``'s shape).

        A number weight is applied as a scalar argument of the kernels: no tensor is made from host data, so on a GPU
        the update copies nothing to the device and never waits for it."""
        value = value.detach().float()
        if isinstance(weight, Tensor):
            weight = torch.broadcast_to(weight.to(self.total_weight.device, torch.float32), value.shape)
            self.weighted_sum += (value * weight).sum()
            self.total_weight += weight.sum()
        else:
            self.weighted_sum += value.sum() * weight
            self.total_weight += float(weight) * value.numel()

    def compute(self) -> Tensor:
        return self.weighted_sum / self.total_weight
