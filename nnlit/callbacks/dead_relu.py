"""Counting dead ReLU units: units whose output is 0 for every training sample of an epoch."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import Tensor, nn
from typing_extensions import override

from nnlit.callbacks.monitor import Monitor
from nnlit.callbacks.weight_init import WeightInit
from nnlit.diagnosis.config import learning_rate_range
from nnlit.diagnosis.layers import dead_units
from nnlit.diagnosis.thresholds import DEAD_LAYER_FRACTION

#: activations whose zero output means a zero gradient: a unit that never fires never learns again
DYING: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6)
#: activations with a slope below zero: a unit that is never positive still gets gradients and can recover
LEAKY: tuple[type[nn.Module], ...] = (nn.LeakyReLU, nn.PReLU)


class DeadReLUCounter(Monitor):
    """Counts, per ReLU layer and epoch, the units that output 0 for every training sample (Lu et al. 2020, "Dying
    ReLU and initialization").

    Unit ``j`` of a layer is dead over an epoch iff ``out[..., j, ...] <= 0`` for every sample, where ``j`` indexes
    dimension 1 of the output (a feature of a ``(batch, features)`` output, a channel of a conv-like output). The
    callback hooks every ``nn.ReLU`` / ``nn.ReLU6`` module of the LightningModule (any LightningModule) and keeps each
    unit's largest output on the device: ``peak = max(peak, out.amax(other dims))``; alive means ``peak > 0``. Nothing
    is moved to the host until the epoch ends; under DDP the alive masks are combined across ranks (a unit is dead
    only if it is dead on every rank).

    For a ``(batch, units)`` output the per-batch reduction is deferred: each batch is folded into a running
    elementwise maximum of the batch's own shape (one elementwise kernel into a kept buffer) and reduced over rows only
    when the batch shape changes, ``alive_units()`` is read, or the epoch ends. The result is the same (a maximum is a
    maximum in any order); a reduction over rows in every step costs several times more inside a training step.

    Logged each epoch: ``dead_relu/<layer>`` (dead fraction) and ``dead_relu/total`` (dead fraction of all ReLU
    units). ``nn.LeakyReLU`` / ``nn.PReLU`` units are not dead in this sense (a negative slope still passes gradient,
    so they can recover); their never-positive fraction is logged as ``never_positive/<layer>``.

    A ReLU applied functionally (``F.relu`` in ``forward``) cannot be hooked: when the model has no activation module
    at all the callback warns once and logs nothing, rather than report "0 dead" for layers it cannot see. A model
    whose activations are modules of other kinds (sigmoid, tanh, GELU …) has no ReLU to count: nothing is logged, and
    nothing is said.

    The warning is the ``dead_relu`` finding of :func:`nnlit.diagnosis.layers.dead_units`, the rule ``nnlit doctor``
    uses (kept in :attr:`findings`).

    Args:
        threshold: warn (once per layer) when the dead fraction of a layer reaches this value.
        include_validation: also count validation batches (a unit alive on validation data is then alive).
        unit_dim: the output dimension that indexes units: 1 for ``(batch, features)`` and ``(batch, channels,
            …)``; 2 for a Linear applied to ``(batch, positions, features)``. A 1-D output is one unit.

    A module used at several places of ``forward`` counts as one layer (a unit is alive if it fires at any of them);
    if the places differ in width the callback raises, since their units cannot be told apart. Give each place its
    own module to count them separately.

    Raises:
        ValueError: if ``threshold`` is not in ``(0, 1]`` or ``unit_dim < 1``; during fit, when a module's outputs
            change width.

    Example::

        >>> import lightning as L
        >>> trainer = L.Trainer(callbacks=[DeadReLUCounter(threshold=0.5)])
    """

    def __init__(
        self, threshold: float = DEAD_LAYER_FRACTION, include_validation: bool = False, unit_dim: int = 1
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"`threshold` must be in (0, 1], got {threshold!r}")
        if unit_dim < 1:
            raise ValueError(f"`unit_dim` must be >= 1 (dimension 0 is the batch), got {unit_dim!r}")
        super().__init__()
        self.threshold = threshold
        self.include_validation = include_validation
        self.unit_dim = unit_dim
        # history: one entry per finished epoch: {"epoch", "dead": {layer: count}, "units": {layer: n},
        # "never_positive": …, "dead_units": {layer: bool tensor on the CPU, True where the unit never fired}}
        # (``dead_units`` holds LeakyReLU / PReLU layers' never-positive units too)
        self._layers: dict[str, nn.Module] = {}
        self._init_callbacks: list[str] = []
        self._lr_too_high = False
        self._peak: dict[str, Tensor] = {}  # layer -> each unit's largest output this epoch, on the device
        self._running: dict[str, Tensor] = {}  # layer -> elementwise max of its (batch, units) outputs, not yet reduced

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._layers = {name: m for name, m in pl_module.named_modules() if isinstance(m, DYING + LEAKY)}
        callbacks = getattr(trainer, "callbacks", [])
        optimizers = getattr(trainer, "optimizers", None) or []
        rate = optimizers[0].param_groups[0].get("lr") if optimizers and optimizers[0].param_groups else None
        self._lr_too_high = isinstance(rate, float | int) and any(  # the rule the report and the doctor apply
            f.kind == "lr_too_high" for f in learning_rate_range(type(optimizers[0]).__name__, float(rate))
        )
        self._init_callbacks = [type(c).__name__ for c in callbacks if isinstance(c, WeightInit)]
        if not self._layers and not _has_activation_modules(pl_module):  # a net of other activations has no ReLU
            rank_zero_warn(
                f"DeadReLUCounter found no nn.ReLU, nn.ReLU6, nn.LeakyReLU or nn.PReLU module in "
                f"{type(pl_module).__name__}: a ReLU applied functionally (F.relu / torch.relu in forward) cannot be "
                "hooked, so no dead units are reported. Use nn.ReLU modules to count them."
            )
        for name, module in self._layers.items():
            self.hook(module, self._make_hook(name))

    @property
    def count_validation(self) -> bool:  # type: ignore[override]
        return self.include_validation

    def start_epoch(self) -> None:
        self._peak, self._running = {}, {}

    def alive_units(self) -> dict[str, Tensor]:
        """Each hooked layer's units that output a positive value so far this epoch (this process only), as a bool
        mask."""
        for name in list(self._running):
            self._fold(name)
        return {name: peak > 0 for name, peak in self._peak.items()}

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if not self._layers:
            return
        dead: dict[str, int] = {}
        never_positive: dict[str, int] = {}
        units: dict[str, int] = {}
        masks = {name: ~alive.cpu() for name, alive in self._combine_ranks(trainer, pl_module).items()}
        for name, mask in masks.items():
            count = int(mask.sum())
            units[name] = mask.numel()
            (dead if isinstance(self._layers[name], DYING) else never_positive)[name] = count
        for name, count in dead.items():
            pl_module.log(f"dead_relu/{name}", count / units[name], on_epoch=True)
            self._maybe_warn(name, count, units[name], trainer.current_epoch)
        for name, count in never_positive.items():
            pl_module.log(f"never_positive/{name}", count / units[name], on_epoch=True)
        if dead:
            total_units = sum(units[name] for name in dead)
            pl_module.log("dead_relu/total", sum(dead.values()) / total_units, on_epoch=True)
        self.history.append(
            {
                "epoch": trainer.current_epoch,
                "dead": dead,
                "never_positive": never_positive,
                "units": units,
                "dead_units": masks,
            }
        )

    def _combine_ranks(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Tensor]:
        """Each layer's alive mask over every rank. Every rank makes the same two collective calls, whatever layers
        ran on it (a layer that ran on one rank only must not leave the other waiting): first the unit counts, then
        one concatenated mask, with zeros where a rank did not run a layer."""
        names = list(self._layers)
        device = pl_module.device
        alive = self.alive_units()
        sizes = torch.tensor([alive[n].numel() if n in alive else 0 for n in names], device=device)
        if trainer.world_size > 1:
            sizes = trainer.strategy.all_gather(sizes).amax(dim=0)
        width = sizes.tolist()  # one host sync per epoch
        parts = [
            alive[n] if n in alive else torch.zeros(w, dtype=torch.bool, device=device) for n, w in zip(names, width)
        ]
        mask = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.bool, device=device)
        if trainer.world_size > 1:
            mask = trainer.strategy.all_gather(mask).any(dim=0)
        return {n: m for n, m, w in zip(names, mask.split(width), width) if w}  # no rank ran a 0-width layer

    @override
    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().teardown(trainer, pl_module, stage)
        self._peak, self._running = {}, {}

    def _make_hook(self, name: str) -> Any:
        def hook(module: nn.Module, inputs: Any, output: Tensor) -> None:
            if not self.counting:
                return
            # A running maximum, not a running `any(output > 0)`: on CPU a bool `any` over the batch costs about 9
            # times as much as `amax` (bench/throughput.py measures the callbacks' overhead)
            output = output.detach()
            if output.ndim == 2 and self.unit_dim == 1:  # (batch, units): fold in now, reduce later
                running = self._running.get(name)
                if running is not None and running.shape == output.shape:
                    torch.maximum(running, output, out=running)
                    return
                if running is not None:
                    self._fold(name)
                self._check_width(name, output.shape[1])
                self._running[name] = output.clone()
                return
            if output.ndim == 1:  # one value per sample: a single unit
                peak = output.amax().view(1)
            else:
                dim = self.unit_dim if self.unit_dim < output.ndim else output.ndim - 1
                peak = output.amax(dim=tuple(d for d in range(output.ndim) if d != dim))
            self._merge(name, peak)

        return hook

    def _fold(self, name: str) -> None:
        """Reduces a layer's running (batch, units) maximum over its rows into the layer's per-unit peak."""
        self._merge(name, self._running.pop(name).amax(dim=0))

    def _merge(self, name: str, peak: Tensor) -> None:
        self._check_width(name, peak.numel())
        previous = self._peak.get(name)
        self._peak[name] = peak if previous is None else torch.maximum(previous, peak)

    def _check_width(self, name: str, units: int) -> None:
        known = self._peak.get(name, self._running.get(name))
        width = None if known is None else known.shape[-1]
        if width is not None and width != units:
            raise ValueError(
                f"DeadReLUCounter: {name} produced {units} units after {width}: a module used at places of different "
                "width cannot be counted. Give each place its own nn.ReLU, or set `unit_dim` to the dimension that "
                "holds the units."
            )

    def _maybe_warn(self, name: str, dead: int, units: int, epoch: int) -> None:
        layer, kinds = {name: (dead, units)}, {name: "relu"}
        init, high = self._init_callbacks, self._lr_too_high
        for finding in dead_units(layer, kinds, high, init, epoch=epoch, threshold=self.threshold):
            self.warn_finding(name, finding)


def _has_activation_modules(module: nn.Module) -> bool:
    """Whether ``module`` holds activation modules (torch's, or a ``Maxout``): then a missing ReLU module is no ReLU."""
    return any(
        type(m).__module__ == "torch.nn.modules.activation" or type(m).__name__ == "Maxout" for m in module.modules()
    )
