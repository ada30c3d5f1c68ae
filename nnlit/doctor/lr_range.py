"""A learning-rate range test (Smith 2017, "Cyclical learning rates"), made robust to the failure modes users report
for Lightning's and pytorch-lr-finder's (Lightning #1767, pytorch-lr-finder #106)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

#: learning rates tried, per optimizer family: from, to
RANGE = {"adaptive": (1e-6, 1.0), "sgd": (1e-5, 10.0)}
#: optimizer steps of the test
STEPS = 200
#: smoothing of the loss (an exponential moving average, bias-corrected)
SMOOTHING = 0.9
#: the curve is flat when its lowest smoothed loss is above this share of its first
FLAT = 0.97
#: the usual learning rate of each optimizer family: the fix tried when the range test suggests none
USUAL = {"adaptive": 1e-3, "sgd": 1e-2}


def lr_range_test(
    network: nn.Module,
    loss_of: Callable[[Tensor, Tensor], Tensor],
    optimizer_class: type[torch.optim.Optimizer],
    x: Tensor,
    y: Tensor,
    batch_size: int,
    options: dict[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Trains a copy of ``network`` for :data:`STEPS` steps while the learning rate grows exponentially over
    :data:`RANGE`, and returns ``{"suggestion": lr or None, "lrs": [...], "losses": [...], "reason": str}``.

    Robust where the usual finders are not: the loss is smoothed and bias-corrected; the test stops when the smoothed
    loss exceeds 4× its best (the divergence the others plot as a wall); the suggestion is the learning rate of the
    lowest smoothed loss divided by 10 (fastai's "minimum / 10", steadier than the steepest slope Lightning suggests,
    which noise moves by decades); and no rate is suggested when the curve is flat (the best smoothed loss less than
    3 % below the start) or the minimum sits at either end of the range. The batches are drawn from a fixed seed, so
    the test repeats.

    Example::

        >>> torch.manual_seed(0) and None
        >>> x = torch.randn(512, 4); y = (x[:, 0] > 0).long()
        >>> result = lr_range_test(nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2)),
        ...                        nn.functional.cross_entropy, torch.optim.Adam, x, y, batch_size=64)
        >>> 1e-4 < result["suggestion"] < 1.0
        True
    """
    family = "sgd" if optimizer_class in (torch.optim.SGD,) else "adaptive"
    start, end = RANGE[family]
    twin = copy.deepcopy(network)
    twin.train()
    params = [p for p in twin.parameters() if p.requires_grad]
    optimizer = optimizer_class(params, lr=start, **(options or {}))  # type: ignore[call-arg]
    factor = (end / start) ** (1 / (STEPS - 1))
    generator = torch.Generator().manual_seed(seed)
    lrs: list[float] = []
    losses: list[float] = []
    average, best = 0.0, math.inf
    for step in range(STEPS):
        lr = start * factor**step
        for group in optimizer.param_groups:
            group["lr"] = lr
        rows = torch.randint(len(x), (min(batch_size, len(x)),), generator=generator)
        loss = loss_of(twin(x[rows]), y[rows])
        value = float(loss.detach())
        if not math.isfinite(value):
            break
        average = SMOOTHING * average + (1 - SMOOTHING) * value
        smoothed = average / (1 - SMOOTHING ** (step + 1))
        lrs.append(lr)
        losses.append(smoothed)
        best = min(best, smoothed)
        if step > 10 and smoothed > 4 * best:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if len(losses) < 10:
        return {"suggestion": None, "lrs": lrs, "losses": losses, "reason": "the loss broke at the first rates"}
    lowest = min(range(len(losses)), key=losses.__getitem__)
    if losses[lowest] > FLAT * losses[0]:
        return {"suggestion": None, "lrs": lrs, "losses": losses, "reason": "the loss did not fall at any rate"}
    if lowest == 0:
        return {"suggestion": None, "lrs": lrs, "losses": losses, "reason": "the lowest loss is at the lowest rate"}
    return {"suggestion": _round(lrs[lowest] / 10), "lrs": lrs, "losses": losses, "reason": "minimum / 10"}


def _round(lr: float) -> float:
    """``lr`` to one significant digit: 0.0123 → 0.01 (a config value a reader can type)."""
    exponent = math.floor(math.log10(lr))
    return float(f"{round(lr / 10**exponent)}e{exponent}")
