"""Initialising chosen layers' weights before training: uniform, constant, negative."""

from __future__ import annotations

import fnmatch
import weakref
from collections.abc import Sequence
from typing import Any, cast

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn
from typing_extensions import override

BIAS_MODES = ("zeros", "keep", "uniform")


class WeightInit(Callback):
    """Base of the initialisers: selects modules by name pattern and fills each one's ``weight`` with
    :meth:`init_weight` and ``bias`` with :meth:`init_bias` (a subclass gives the two rules, as skorch's
    ``ParamMapper`` maps patterns to functions).

    Runs in ``setup("fit")``: after the model is built and before Lightning restores a checkpoint given as
    ``ckpt_path``, so a resumed run keeps the checkpoint's weights. Only the selected modules are touched, so weights
    loaded from a pretrained model elsewhere stay as they are. Each LightningModule is initialised once, at its first
    fit: calling ``fit`` again to train on does not start it over (with ``ddp_spawn``, whose processes get a copy of
    the callback each time, a second ``fit`` initialises again).

    Args:
        modules: ``fnmatch`` patterns over the LightningModule's module names (``"network.linear1"``,
            ``"network.linear*"``, ``"*output"``); default every ``nn.Linear``, which is refused for a model built
            with ``pretrained`` weights.
    """

    def __init__(self, modules: Sequence[str] | None = None) -> None:
        if modules is not None and (isinstance(modules, str) or not modules):
            raise ValueError(f"`modules` must be a non-empty list of name patterns, got {modules!r}")
        self.modules = None if modules is None else list(modules)
        self._initialised: weakref.WeakSet[nn.Module] = weakref.WeakSet()

    def __getstate__(self) -> dict[str, Any]:
        # a WeakSet cannot be pickled (ddp_spawn pickles callbacks); a spawned process starts with an empty one,
        # and its model, a copy, has not been initialised there yet
        state = self.__dict__.copy()
        state["_initialised"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._initialised = weakref.WeakSet()

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or pl_module in self._initialised:
            return
        self._initialised.add(pl_module)
        with torch.no_grad():
            for module in self.select(pl_module).values():
                self.initialise(module)

    def select(self, root: nn.Module) -> dict[str, nn.Module]:
        """The modules to initialise, by name.

        Raises:
            ValueError: when a pattern matches no module (listing the modules that have a weight), or a matched
                module has no ``weight`` parameter.
        """
        named = {name: m for name, m in root.named_modules() if name}
        if self.modules is None:
            pretrained = getattr(root, "pretrained_from", None)
            if pretrained is not None:
                raise ValueError(
                    f"{type(self).__name__} would overwrite every Linear of a model built from the pretrained weights "
                    f"{pretrained!r}. Name the layers to re-initialise, e.g. modules: [network.output]"
                )
            return {name: m for name, m in named.items() if isinstance(m, nn.Linear)}
        weighted = [name for name, m in named.items() if isinstance(getattr(m, "weight", None), nn.Parameter)]
        chosen: dict[str, nn.Module] = {}
        for pattern in self.modules:
            matches = {name: m for name, m in named.items() if fnmatch.fnmatchcase(name, pattern)}
            if not matches:
                raise ValueError(
                    f"{type(self).__name__}: the pattern {pattern!r} matches no module. Modules with weights: "
                    f"{', '.join(weighted)}"
                )
            chosen.update(matches)
        for name, module in chosen.items():
            if not isinstance(getattr(module, "weight", None), nn.Parameter):
                raise ValueError(
                    f"{type(self).__name__}: {name} ({type(module).__name__}) has no weight to initialise. Modules "
                    f"with weights: {', '.join(weighted)}"
                )
        return chosen

    def initialise(self, module: nn.Module) -> None:
        """Fills a selected module's ``weight`` with :meth:`init_weight` and its ``bias``, when it has one, with
        :meth:`init_bias`."""
        self.init_weight(_weight(module))
        bias = getattr(module, "bias", None)
        if isinstance(bias, nn.Parameter):
            self.init_bias(bias)

    def init_weight(self, weight: Tensor) -> None:
        """Fills a weight in place (the subclass's rule)."""
        raise NotImplementedError

    def init_bias(self, bias: Tensor) -> None:
        """Fills a bias in place: zeros unless the subclass says otherwise."""
        nn.init.zeros_(bias)


class UniformInit(WeightInit):
    """Draws weights from ``U(a, b)`` (the lessons' ``nn.init.uniform_``), deterministic under ``seed_everything``.

    Args:
        a: lower bound.
        b: upper bound, ``>= a``.
        modules: name patterns, default every ``nn.Linear`` (see :class:`WeightInit`).
        bias: ``"zeros"``, ``"keep"`` (leave as built) or ``"uniform"`` (also ``U(a, b)``).

    Raises:
        ValueError: for ``a > b``, an unknown ``bias`` mode, or ``modules`` that select nothing.

    Example::

        >>> from nnlit import MLP
        >>> mlp = MLP(2, [3], 1)
        >>> UniformInit(0.0, 1.0).initialise(mlp.linear1)
        >>> bool(((mlp.linear1.weight >= 0) & (mlp.linear1.weight < 1)).all()), mlp.linear1.bias.abs().sum().item()
        (True, 0.0)
    """

    def __init__(
        self, a: float = -0.1, b: float = 0.1, modules: Sequence[str] | None = None, bias: str = "zeros"
    ) -> None:
        super().__init__(modules)
        if a > b:
            raise ValueError(f"UniformInit needs a <= b, got a={a}, b={b}")
        if bias not in BIAS_MODES:
            raise ValueError(f"`bias` must be one of {', '.join(BIAS_MODES)}, got {bias!r}")
        self.a, self.b, self.bias = a, b, bias

    @override
    def init_weight(self, weight: Tensor) -> None:
        nn.init.uniform_(weight, self.a, self.b)

    @override
    def init_bias(self, bias: Tensor) -> None:
        if self.bias == "zeros":
            nn.init.zeros_(bias)
        elif self.bias == "uniform":
            nn.init.uniform_(bias, self.a, self.b)


class ConstantInit(WeightInit):
    """Sets every weight of the chosen modules to ``value`` and their bias to 0: the vanishing-gradient lesson's
    constant-multiplier initialiser (every unit of a layer computes the same thing, and with sigmoid the gradient
    shrinks layer after layer).

    Example::

        >>> from nnlit import MLP
        >>> mlp = MLP(2, [3], 1)
        >>> ConstantInit(0.5).initialise(mlp.output)
        >>> mlp.output.weight.tolist(), mlp.output.bias.tolist()
        ([[0.5, 0.5, 0.5]], [0.0])
    """

    def __init__(self, value: float = 0.1, modules: Sequence[str] | None = None) -> None:
        super().__init__(modules)
        self.value = value

    @override
    def init_weight(self, weight: Tensor) -> None:
        nn.init.constant_(weight, self.value)


class NegativeInit(WeightInit):
    """Makes the chosen layers' weights ``U(a, b)`` with ``b < 0`` and their bias ``bias``: the dead-ReLU lesson. A
    layer fed by ReLU outputs (all >= 0) then computes only negative values, so the ReLU after it never fires.

    Args:
        modules: name patterns of the layers to kill (required: this is a targeted experiment).
        a: lower bound of the weights.
        b: upper bound of the weights, < 0.
        bias: the bias value, < 0.

    Raises:
        ValueError: when ``b >= 0``, ``a > b`` or ``bias >= 0``.
    """

    def __init__(self, modules: Sequence[str], a: float = -1.0, b: float = -0.1, bias: float = -1.0) -> None:
        if not a <= b < 0:
            raise ValueError(f"NegativeInit needs a <= b < 0, got a={a}, b={b}")
        if bias >= 0:
            raise ValueError(f"NegativeInit needs a negative bias, got {bias}")
        super().__init__(modules)
        self.a, self.b, self.bias = a, b, bias

    @override
    def init_weight(self, weight: Tensor) -> None:
        nn.init.uniform_(weight, self.a, self.b)

    @override
    def init_bias(self, bias: Tensor) -> None:
        nn.init.constant_(bias, self.bias)


def _weight(module: nn.Module) -> Tensor:
    # WeightInit.select has checked that the module has a weight Parameter
    return cast(Tensor, module.weight)
