"""Watching for saturated activations and vanishing gradients."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from typing_extensions import override

from nnlit.callbacks.monitor import Monitor
from nnlit.callbacks.weight_init import WeightInit
from nnlit.diagnosis.layers import gradient_ratio, saturated_units
from nnlit.validation import check_int

#: An output is saturated where the activation's derivative is below this fraction of its maximum. It is tanh's
#: derivative at |y| = 0.97 (1 - 0.97², DESIGN's definition); the same rule gives every other bounded activation.
DERIVATIVE_FRACTION = 1.0 - 0.97**2
#: sigmoid(x) = (1 + tanh(x / 2)) / 2, so its derivative is below that fraction of its maximum (1/4) exactly where
#: tanh(x / 2) is: y < 0.015 or y > 0.985.
SIGMOID_EPS = (1.0 - 0.97) / 2
#: softsign's derivative is (1 - |y|)²: below the fraction where |y| > 1 - sqrt(fraction) ≈ 0.757.
SOFTSIGN_LIMIT = 1.0 - math.sqrt(DERIVATIVE_FRACTION)


def saturated(module: nn.Module, output: Tensor) -> Tensor:
    """Boolean mask of the saturated elements of an activation's ``output``.

    Example::

        >>> saturated(nn.Tanh(), torch.tensor([0.5, 0.98, -0.99])).tolist()
        [False, True, True]
        >>> saturated(nn.Sigmoid(), torch.tensor([0.01, 0.5, 0.99])).tolist()
        [True, False, True]
    """
    if isinstance(module, nn.Tanh):
        return output.abs() > 0.97
    if isinstance(module, nn.Sigmoid):
        return (output < SIGMOID_EPS) | (output > 1.0 - SIGMOID_EPS)
    if isinstance(module, nn.Softsign):
        return output.abs() > SOFTSIGN_LIMIT
    if isinstance(module, nn.Hardtanh):  # the derivative is exactly 0 at the clamps
        return (output <= module.min_val) | (output >= module.max_val)
    raise TypeError(f"No saturation rule for {type(module).__name__}")


#: the name of each activation module type, as nnlit's activation registry and the diagnosis rules say it
ACTIVATION_KINDS: dict[type[nn.Module], str] = {
    nn.ReLU6: "relu6",
    nn.ReLU: "relu",
    nn.LeakyReLU: "leaky_relu",
    nn.PReLU: "prelu",
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
    nn.Softsign: "softsign",
    nn.Hardtanh: "hardtanh",
    nn.SELU: "selu",
    nn.ELU: "elu",
    nn.GELU: "gelu",
    nn.SiLU: "silu",
}


def activation_kind(module: nn.Module) -> str:
    """The kind of an activation module (``"relu"``, ``"sigmoid"`` …), ``""`` for any other module.

    Example::

        >>> activation_kind(nn.ReLU6()), activation_kind(nn.Linear(2, 2))
        ('relu6', '')
    """
    for cls, name in ACTIVATION_KINDS.items():  # ReLU6 before Hardtanh, its base class
        if isinstance(module, cls):
            return name
    return ""


def _bounded(module: nn.Module) -> bool:
    # ReLU6 subclasses Hardtanh, but its 0 is a dead unit (DeadReLUCounter's business), not saturation
    return isinstance(module, nn.Tanh | nn.Sigmoid | nn.Softsign | nn.Hardtanh) and not isinstance(module, nn.ReLU6)


class GradientSaturationMonitor(Monitor):
    """Per-epoch saturation of bounded activations and per-layer weight-gradient norms, on any LightningModule.

    **Saturation.** For every ``nn.Sigmoid``, ``nn.Tanh``, ``nn.Hardtanh`` and ``nn.Softsign`` module, the fraction of
    its outputs during the epoch's training batches that are saturated: where the derivative is below
    ``1 - 0.97² ≈ 5.9 %`` of its maximum, i.e. tanh ``|y| > 0.97``; sigmoid ``y < ε`` or ``y > 1 - ε`` with
    ``ε = 0.015`` (the same pre-activations, as ``σ(x) = (1 + tanh(x/2)) / 2``); softsign ``|y| > 0.757``; hardtanh at
    its clamps. Counts accumulate on the device and are summed across DDP ranks once per epoch.

    **Gradients.** ``‖∇W‖₂`` of every module weight with two or more dimensions (Linear, conv; not embedding
    tables, whose rows get gradients only from the rows of their category), read in
    ``on_before_optimizer_step`` (after AMP unscaling and the DDP all-reduce) and averaged over the epoch's optimizer
    steps (every step when epochs are shorter than ``2 × grad_norm_steps`` steps, evenly spaced steps of longer ones,
    see ``grad_norm_steps``). The headline is ``grad_norm/first_last_ratio``: first layer over last layer. Far below 1,
    the early layers barely learn: vanishing gradients. It is not logged while the first or the last weight layer gets
    no gradient (frozen). With several optimizers, each step reads only the weights of the optimizer being stepped.

    Logged each epoch: ``saturation/<layer>``, ``grad_norm/<layer>``, ``grad_norm/first_last_ratio``. The same
    numbers stay in :attr:`history` (saved with checkpoints). Warns once, with advice, when the ratio falls below
    ``ratio_threshold`` or a layer's saturation exceeds ``saturation_threshold``.

    Args:
        ratio_threshold: warn when ``grad_norm/first_last_ratio`` is below this.
        saturation_threshold: warn when a layer's saturated fraction is above this, in ``(0, 1]``.
        grad_norm_steps: how many optimizer steps per epoch, at least, have their gradient norms read (per
            optimizer). Reading the norms costs about as much as a small MLP's optimizer step, so a long epoch is
            sampled: the norms are read at steps ``0, s, 2s, …`` of the epoch, ``s`` a power of two. In the first
            epoch ``s`` starts at 1 and doubles whenever ``2 × grad_norm_steps`` readings are kept (every other one is
            dropped, so they stay evenly spaced); each later epoch starts with the ``s`` that gives between
            ``grad_norm_steps`` and twice as many readings over the previous epoch's length (an epoch much shorter
            than the one before gets fewer, at least its first step). When epochs have fewer than
            ``2 × grad_norm_steps`` steps, every step is read. ``None``: every step of every epoch.

    Raises:
        ValueError: for a non-positive ``ratio_threshold`` or ``grad_norm_steps``, or a ``saturation_threshold``
            outside ``(0, 1]``.
    """

    def __init__(
        self, ratio_threshold: float = 1e-3, saturation_threshold: float = 0.5, grad_norm_steps: int | None = 32
    ) -> None:
        if ratio_threshold <= 0:
            raise ValueError(f"`ratio_threshold` must be > 0, got {ratio_threshold!r}")
        if not 0.0 < saturation_threshold <= 1.0:
            raise ValueError(f"`saturation_threshold` must be in (0, 1], got {saturation_threshold!r}")
        check_int("grad_norm_steps", grad_norm_steps, allow_none=True)
        super().__init__()
        self.ratio_threshold = ratio_threshold
        self.saturation_threshold = saturation_threshold
        self.grad_norm_steps = grad_norm_steps
        # history: one entry per epoch: {"epoch", "saturation": {layer: fraction}, "grad_norm": {layer: mean norm},
        # "ratio"}
        self._activations: dict[str, nn.Module] = {}
        self._weights: dict[str, nn.Parameter] = {}
        self._saturated: dict[str, Tensor] = {}  # layer -> saturated outputs this epoch, on the device
        self._totals: dict[str, int] = {}  # layer -> outputs this epoch (shape metadata: no device work)
        self._readers: dict[int, _NormReadings] = {}  # id(optimizer) -> this epoch's gradient-norm readings
        self._stepped_cache: dict[tuple[Any, ...], list[str]] = {}
        self._kinds: list[str] = []  # the kind of each activation module, in order ("sigmoid", "relu" …)
        self._init_callbacks: list[str] = []
        self._trainer_callbacks: list[Any] = []

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stepped_cache, self._readers = {}, {}
        modules = dict(pl_module.named_modules())
        self._activations = {name: m for name, m in modules.items() if _bounded(m)}
        self._weights = {
            name: m.weight
            for name, m in modules.items()
            if isinstance(getattr(m, "weight", None), nn.Parameter)
            and m.weight.ndim >= 2
            and not isinstance(m, nn.Embedding | nn.EmbeddingBag)  # a lookup table, not a layer of the depth
        }
        for name, module in self._activations.items():
            self.hook(module, self._make_hook(name))
        self._kinds = [activation_kind(m) for m in modules.values() if activation_kind(m)]
        self._trainer_callbacks = list(getattr(trainer, "callbacks", []))
        self._init_callbacks = [type(c).__name__ for c in self._trainer_callbacks if isinstance(c, WeightInit)]

    def start_epoch(self) -> None:
        self._saturated, self._totals = {}, {}
        for reader in self._readers.values():
            reader.start_epoch()

    @override
    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Optimizer) -> None:
        reader = self._readers.get(id(optimizer))
        if reader is None:
            reader = self._readers[id(optimizer)] = _NormReadings(self.grad_norm_steps)
        if not reader.due():
            return
        # frozen, unused and other optimizers' weights have no gradient or are not stepped here
        names = tuple(n for n in self._stepped_weights(optimizer) if self._weights[n].grad is not None)
        norms: list[Tensor] = []
        if names:
            grads: list[Tensor] = [self._weights[n].grad for n in names]  # type: ignore[misc]
            with torch.no_grad():  # a gradient kept for higher-order terms must not put the norms in a graph
                norms = [torch.linalg.vector_norm(g if g.dtype == torch.float32 else g.float()) for g in grads]
        reader.add(names, norms)

    def _stepped_weights(self, optimizer: Optimizer) -> list[str]:
        """The monitored weights the optimizer steps, in layer order; kept until its parameter groups change (e.g.
        FreezeLayers adds the unfrozen layers as a group)."""
        key = (id(optimizer), tuple((id(group["params"]), len(group["params"])) for group in optimizer.param_groups))
        cached = self._stepped_cache.get(key)
        if cached is None:
            stepped = {id(p) for group in optimizer.param_groups for p in group["params"]}
            cached = self._stepped_cache[key] = [n for n, w in self._weights.items() if id(w) in stepped]
        return cached

    def mean_grad_norms(self) -> dict[str, float]:
        """Each weight's ``‖∇W‖₂`` averaged over this epoch's readings so far (see ``grad_norm_steps``; one host
        sync)."""
        readings = [reading for reader in self._readers.values() for reading in reader.readings]
        flat = [norm for _, norms in readings for norm in norms]
        values = iter(torch.stack(flat).tolist() if flat else [])
        sums: dict[str, float] = {}
        steps: dict[str, int] = {}
        for names, _ in readings:
            for name in names:
                sums[name] = sums.get(name, 0.0) + next(values)
                steps[name] = steps.get(name, 0) + 1
        return {name: sums[name] / steps[name] for name in self._weights if name in sums}

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        saturation: dict[str, float] = {}
        names = list(self._activations)
        if names:
            # one reduction for every layer, made by every rank, with zeros for layers that did not run on it
            zero = torch.zeros((), device=pl_module.device)
            counts = torch.stack(
                [
                    torch.stack([self._saturated.get(n, zero).float(), zero.new_tensor(float(self._totals.get(n, 0)))])
                    for n in names
                ]
            )
            if trainer.world_size > 1:
                counts = trainer.strategy.reduce(counts, reduce_op="sum")
            for name, (saturated_count, total) in zip(names, counts.tolist()):  # one host sync per epoch
                if total:
                    saturation[name] = saturated_count / total
        grad_norm = self.mean_grad_norms()
        ratio = None
        weights = list(self._weights)
        first, last = (weights[0], weights[-1]) if len(weights) >= 2 else ("", "")
        if first in grad_norm and last in grad_norm:  # not while the first (or last) layer is frozen
            ratio = grad_norm[first] / grad_norm[last] if grad_norm[last] > 0 else math.inf
        for name, value in saturation.items():
            pl_module.log(f"saturation/{name}", value, on_epoch=True)
        for name, value in grad_norm.items():
            pl_module.log(f"grad_norm/{name}", value, on_epoch=True)
        if ratio is not None:
            pl_module.log("grad_norm/first_last_ratio", ratio, on_epoch=True)
            self._maybe_warn_ratio(ratio, first, last, trainer.current_epoch)
        for name, value in saturation.items():
            self._maybe_warn_saturation(name, value, trainer.current_epoch)
        self.history.append(
            {"epoch": trainer.current_epoch, "saturation": saturation, "grad_norm": grad_norm, "ratio": ratio}
        )

    def _make_hook(self, name: str) -> Callable[[nn.Module, Any, Tensor], None]:
        def hook(module: nn.Module, inputs: Any, output: Tensor) -> None:
            if not self.counting:
                return
            with torch.no_grad():
                count = saturated(module, output).sum()
                previous = self._saturated.get(name)
                self._saturated[name] = count if previous is None else previous + count
                self._totals[name] = self._totals.get(name, 0) + output.numel()

        return hook

    def _maybe_warn_ratio(self, ratio: float, first: str, last: str, epoch: int) -> None:
        # the rule of nnlit.diagnosis, with advice that fits the net: its activations, its dead units (when a
        # DeadReLUCounter counts them) and whether the config sets an initialisation
        for finding in gradient_ratio(
            ratio,
            1.0,
            first=first,
            last=last,
            activations=self._kinds,
            dead_share=self._dead_share(),
            init_callbacks=self._init_callbacks,
            epoch=epoch,
            vanishing=self.ratio_threshold,
        ):
            if finding.kind == "vanishing_gradients":
                self.warn_finding("ratio", finding)

    def _dead_share(self) -> float | None:
        from nnlit.callbacks.dead_relu import DeadReLUCounter  # a sibling monitor, read when present

        counter = next((c for c in self._trainer_callbacks if isinstance(c, DeadReLUCounter)), None)
        if counter is None or not counter.history:
            return None
        last = counter.history[-1]
        shares = [last["dead"][n] / last["units"][n] for n in last["dead"] if last["units"].get(n)]
        return max(shares, default=0.0)

    def _maybe_warn_saturation(self, name: str, value: float, epoch: int) -> None:
        for finding in saturated_units({name: value}, epoch=epoch, threshold=self.saturation_threshold):
            self.warn_finding(name, finding)


class _NormReadings:
    """One optimizer's gradient-norm readings over an epoch, at its steps ``0, s, 2s, …``.

    ``s`` (the stride) is a power of two: 1 in the first epoch, doubled (dropping every other reading) whenever
    ``2 × target`` readings are kept; each later epoch starts with the stride that gives ``target`` to ``2 × target``
    readings over the previous epoch's length. ``target=None`` reads every step.

    Example::

        >>> r = _NormReadings(target=2)
        >>> for step in range(16):
        ...     if r.due():
        ...         r.add(("w",), [torch.tensor(float(step))])
        >>> [float(n[0]) for _, n in r.readings], r.stride
        ([0.0, 8.0], 8)
    """

    def __init__(self, target: int | None) -> None:
        self.target = target
        self.readings: list[tuple[tuple[str, ...], list[Tensor]]] = []
        self.steps = 0  # optimizer steps so far this epoch
        self.stride = 1

    def start_epoch(self) -> None:
        if self.target is not None and self.steps:  # from the length of the epoch that ended
            self.stride = 1 << max(0, (self.steps // self.target).bit_length() - 1)
        self.readings, self.steps = [], 0

    def due(self) -> bool:
        """Counts a step; whether its norms are read."""
        step, self.steps = self.steps, self.steps + 1
        return step % self.stride == 0

    def add(self, names: tuple[str, ...], norms: list[Tensor]) -> None:
        self.readings.append((names, norms))  # kept even when empty: the readings stay at steps 0, s, 2s, …
        if self.target is not None and len(self.readings) >= 2 * self.target:
            self.readings = self.readings[::2]
            self.stride *= 2
