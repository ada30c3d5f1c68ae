"""Built-in synthetic data sets: the 2-D classification sets of the TensorFlow playground, and two regression sets.

Every generator takes ``n_samples``, ``noise`` and ``seed`` and returns ``(x, y)``: float32 features of shape
``(n_samples, 2)`` and int64 class labels (classification) or float32 targets (regression). The same seed gives the
same data on every machine (a private ``torch.Generator`` is used, the global RNG is not touched).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from nnlit.validation import check_int

RADIUS = 5.0  # the playground draws every set inside [-5, 5]^2


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> Tensor:
    return torch.rand(n, generator=g) * (high - low) + low


def make_xor(n_samples: int = 1000, noise: float = 0.1, n_classes: int = 2, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Points in the four quadrants; class 1 where ``x1 * x2 >= 0``. A linear model cannot separate it.

    Example::

        >>> x, y = make_xor(4, seed=0)
        >>> x.shape, y.tolist() == ((x[:, 0] * x[:, 1]) >= 0).long().tolist()
        (torch.Size([4, 2]), True)
    """
    _check_binary("xor", n_classes)
    g = torch.Generator().manual_seed(seed)
    x = _uniform(2 * n_samples, -RADIUS, RADIUS, g).view(n_samples, 2)
    x = x + torch.where(x > 0, 0.3, -0.3)  # keep points off the axes, as the playground does
    y = (x[:, 0] * x[:, 1] >= 0).long()
    x = x + _uniform(2 * n_samples, -RADIUS, RADIUS, g).view(n_samples, 2) * noise
    return x, y


def make_circle(n_samples: int = 1000, noise: float = 0.1, n_classes: int = 2, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A disc (class 1, radius < 2.5) inside a ring (class 0, radius in [3.5, 5])."""
    _check_binary("circle", n_classes)
    g = torch.Generator().manual_seed(seed)
    y = (torch.arange(n_samples) % 2 == 0).long()
    inner = _uniform(n_samples, 0.0, 0.5 * RADIUS, g)
    outer = _uniform(n_samples, 0.7 * RADIUS, RADIUS, g)
    r = torch.where(y == 1, inner, outer)
    angle = _uniform(n_samples, 0.0, 2 * math.pi, g)
    x = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=1)
    x = x + _uniform(2 * n_samples, -RADIUS, RADIUS, g).view(n_samples, 2) * noise
    return x, y


def make_gauss(n_samples: int = 1000, noise: float = 0.1, n_classes: int = 2, seed: int = 0) -> tuple[Tensor, Tensor]:
    """``n_classes`` Gaussian blobs on a circle of radius 2√2 (for two classes: centred at (2, 2) and (-2, -2)).

    The standard deviation grows from √0.5 to 2 as ``noise`` goes from 0 to 1, as in the playground.
    """
    _check_classes("gauss", n_classes)
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n_samples) % n_classes
    angle = math.pi / 4 + 2 * math.pi * y.double() / n_classes
    centres = 2 * math.sqrt(2) * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1).float()
    std = math.sqrt(0.5 + 3.5 * noise)
    x = centres + std * torch.randn(n_samples, 2, generator=g)
    return x, y


def make_spiral(n_samples: int = 1000, noise: float = 0.1, n_classes: int = 2, seed: int = 0) -> tuple[Tensor, Tensor]:
    """``n_classes`` interleaved spiral arms, each turning 1.75 times around the origin."""
    _check_classes("spiral", n_classes)
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n_samples) % n_classes
    t = _uniform(n_samples, 0.0, 1.0, g)
    r = t * RADIUS
    angle = 1.75 * t * 2 * math.pi + 2 * math.pi * y.float() / n_classes
    x = torch.stack([r * torch.sin(angle), r * torch.cos(angle)], dim=1)
    x = x + _uniform(2 * n_samples, -1.0, 1.0, g).view(n_samples, 2) * noise
    return x, y


def make_plane(n_samples: int = 1000, noise: float = 0.1, n_classes: int = 0, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Regression: ``y = 0.5 x1 - 0.3 x2 + 1`` plus Gaussian noise of standard deviation ``noise``."""
    g = torch.Generator().manual_seed(seed)
    x = _uniform(2 * n_samples, -RADIUS, RADIUS, g).view(n_samples, 2)
    y = 0.5 * x[:, 0] - 0.3 * x[:, 1] + 1.0 + noise * torch.randn(n_samples, generator=g)
    return x, y


def make_sine(n_samples: int = 1000, noise: float = 0.1, n_classes: int = 0, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Regression: ``y = sin(x1) + 0.5 cos(x2)`` plus Gaussian noise; a linear model explains little of it."""
    g = torch.Generator().manual_seed(seed)
    x = _uniform(2 * n_samples, -RADIUS, RADIUS, g).view(n_samples, 2)
    y = torch.sin(x[:, 0]) + 0.5 * torch.cos(x[:, 1]) + noise * torch.randn(n_samples, generator=g)
    return x, y


@dataclass(frozen=True)
class SyntheticSet:
    """A built-in data set: its generator and the task it poses."""

    make: Callable[..., tuple[Tensor, Tensor]]
    task: str


SYNTHETIC: dict[str, SyntheticSet] = {
    "circle": SyntheticSet(make_circle, "classification"),
    "gauss": SyntheticSet(make_gauss, "classification"),
    "plane": SyntheticSet(make_plane, "regression"),
    "sine": SyntheticSet(make_sine, "regression"),
    "spiral": SyntheticSet(make_spiral, "classification"),
    "xor": SyntheticSet(make_xor, "classification"),
}


def _check_binary(name: str, n_classes: int) -> None:
    if n_classes != 2:
        raise ValueError(f"The {name!r} data set has exactly 2 classes, got n_classes={n_classes!r}")


def _check_classes(name: str, n_classes: int) -> None:
    check_int("n_classes", n_classes, minimum=2, where=f" of the {name!r} data set")
