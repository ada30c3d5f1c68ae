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
        """Adds ``value`` with ``weight``; several at once when both are tensors of the same shape."""
        weight = torch.as_tensor(weight, dtype=torch.float32, device=self.total_weight.device)
        self.weighted_sum += (value.detach().float() * weight).sum()
        self.total_weight += weight.sum()

    def compute(self) -> Tensor:
        return self.weighted_sum / self.total_weight
