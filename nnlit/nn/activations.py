"""The activation registry: one name per non-linearity, resolved by :func:`get_activation`."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from torch import nn

from nnlit.nn.maxout import Maxout

ActivationSpec = str | type[nn.Module] | nn.Module | None

#: Name -> module class. ``identity`` (or ``None``) means no non-linearity, as in a purely linear network.
ACTIVATIONS: dict[str, Callable[..., nn.Module]] = {
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "identity": nn.Identity,
    "leaky_relu": nn.LeakyReLU,
    "maxout": Maxout,
    "prelu": nn.PReLU,
    "relu": nn.ReLU,
    "selu": nn.SELU,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


def get_activation(spec: ActivationSpec, **kwargs: Any) -> nn.Module:
    """Returns a NEW activation module for ``spec``, so every layer owns its own instance (and can be hooked alone).

    Args:
        spec: a name from :data:`ACTIVATIONS`, an ``nn.Module`` class, an ``nn.Module`` instance (deep-copied), or
            ``None`` for no non-linearity.
        **kwargs: passed to the class, e.g. ``negative_slope=0.2`` for ``"leaky_relu"`` or ``pieces=3`` for
            ``"maxout"``. Not accepted together with an instance.

    Raises:
        ValueError: for an unknown name, listing the valid ones, or keyword arguments given with an instance.
        TypeError: for anything that is not a name, a module class, a module or ``None``.

    Example::

        >>> get_activation("leaky_relu", negative_slope=0.2)
        LeakyReLU(negative_slope=0.2)
        >>> get_activation(None)
        Identity()
        >>> get_activation("swish")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Unknown activation 'swish'. Valid names: elu, gelu, identity, leaky_relu, maxout, prelu, relu, ...
    """
    if spec is None:
        spec = "identity"
    if isinstance(spec, str):
        name = spec.lower()
        if name not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {spec!r}. Valid names: {', '.join(sorted(ACTIVATIONS))}")
        return _construct(ACTIVATIONS[name], name, kwargs)
    if isinstance(spec, nn.Module):
        if kwargs:
            raise ValueError(f"Keyword arguments {sorted(kwargs)} cannot be applied to the instance {spec!r}")
        return copy.deepcopy(spec)
    if isinstance(spec, type) and issubclass(spec, nn.Module):
        return _construct(spec, spec.__name__, kwargs)
    raise TypeError(
        f"`activation` must be a name ({', '.join(sorted(ACTIVATIONS))}), an nn.Module class or instance, or None;"
        f" got {spec!r}"
    )


def _construct(cls: Callable[..., nn.Module], name: str, kwargs: dict[str, Any]) -> nn.Module:
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"Activation {name!r} does not accept the arguments {kwargs}: {err}") from err
