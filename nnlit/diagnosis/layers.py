"""Rules over what the layers measured: weights that start equal, dead and saturated units, the first / last gradient.

Every function takes plain numbers (from a monitor's history, a probe or a finished fit) and returns findings; none
needs a Trainer. :mod:`nnlit.diagnosis.training` holds the rules over losses and scores and re-exports these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from nnlit.diagnosis import thresholds as T
from nnlit.diagnosis.config import ACTIVATION_KEY, DYING, SATURATING
from nnlit.diagnosis.finding import Finding, finding, without_present

CALLBACKS_KEY = "trainer.callbacks"
NORM_KEY = "model.init_args.norm"


def symmetric_units(
    spreads: Mapping[str, float],
    init_callbacks: Sequence[str] = (),
    callbacks_without_init: list[Any] | None = None,
    activations: Sequence[str] = (),
) -> list[Finding]:
    """Layers whose units all start with the same weights (``spreads``: each layer's spread of weight rows over their
    mean size): every unit then gets the same gradient and they stay equal. ``init_callbacks``: the names of the
    initialisation callbacks of the config; ``callbacks_without_init``: the config's callbacks without them (the fix;
    with sigmoid / tanh ``activations``, also with ReLU, since a default-initialised saturating stack learns slowly).

    Example::

        >>> [f.where for f in symmetric_units({"network.linear1": 0.0, "network.linear2": 0.4}, ["ConstantInit"])]
        ['network.linear1']
    """
    same = [name for name, spread in spreads.items() if spread <= T.SYMMETRIC_SPREAD]
    if not same:
        return []
    by = f" ({', '.join(init_callbacks)})" if init_callbacks else ""
    return [
        finding(
            "symmetric_init",
            "error",
            f"Every unit of {len(same)} layer(s) starts with the same weights{by}: they get the same gradient and stay "
            f"copies of one unit, so each layer is one unit wide",
            ", ".join(same),
            {"weight-row spread": (min(spreads[n] for n in same), T.SYMMETRIC_SPREAD, "<=")},
            _without_init(callbacks_without_init, activations),
            effect=len(same),
        )
    ]


def _without_init(callbacks: list[Any] | None, activations: Sequence[str]) -> list[dict[str, Any]]:
    if callbacks is None:
        return []
    alone: dict[str, Any] = {CALLBACKS_KEY: callbacks}
    if any(a in SATURATING for a in activations):
        return [alone, {**alone, ACTIVATION_KEY: "relu"}]
    return [alone]


def _absent(candidates: list[dict[str, Any]], config: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The candidate fixes the config does not already have."""
    return [c for c in candidates if without_present(c, dict(config or {}))]


def dead_units(
    dead: Mapping[str, tuple[int, int]],
    layer_kinds: Mapping[str, str],
    lr_too_high: bool = False,
    init_callbacks: Sequence[str] = (),
    callbacks_without_init: list[Any] | None = None,
    config: Mapping[str, Any] | None = None,
    epoch: int | None = None,
    threshold: float = T.DEAD_LAYER_FRACTION,
) -> list[Finding]:
    """Layers where at least ``threshold`` (:data:`~nnlit.diagnosis.thresholds.DEAD_LAYER_FRACTION`) of the units
    never fired.

    ``dead``: layer → (dead units, units); ``layer_kinds``: layer → activation name (``"relu"``, ``"leaky_relu"`` …).
    Only dying kinds (ReLU, ReLU6) are judged: a LeakyReLU unit that is never positive still learns, and a net without
    ReLU gets no advice about ReLUs. With ``lr_too_high`` the learning rate is named as the cause (its own finding
    carries the fix); otherwise the fixes are: without the config's initialisation callbacks, then LeakyReLU.

    Example::

        >>> [f.where for f in dead_units({"act1": (2, 16), "act2": (16, 16)}, {"act1": "relu", "act2": "relu"})]
        ['act2']
        >>> dead_units({"act1": (16, 16)}, {"act1": "leaky_relu"})
        []
    """
    found = []
    for name, (count, units) in dead.items():
        if layer_kinds.get(name) not in DYING or units == 0:
            continue
        share = count / units
        if share < threshold:
            continue
        when = f" in epoch {epoch}" if epoch is not None else ""
        candidates: list[dict[str, Any]] = []
        if lr_too_high:
            cause = "the learning rate is too high: large updates push units below 0 for good"
        else:
            cause = "a negative initialisation" if init_callbacks else "large negative updates or biases"
            if callbacks_without_init is not None:
                candidates.append({CALLBACKS_KEY: callbacks_without_init})
            candidates.append({ACTIVATION_KEY: "leaky_relu"})
        found.append(
            finding(
                "dead_relu",
                "warning",
                f"{count}/{units} units ({share:.0%}) of {name} output 0 for every training sample{when}: dead ReLUs, "
                f"which get no gradient and stay dead. Likely cause: {cause}",
                name,
                {"dead share": (share, threshold, ">=")},
                _absent(candidates, config),
                effect=share,
            )
        )
    return found


def saturated_units(
    saturation: Mapping[str, float],
    config: Mapping[str, Any] | None = None,
    epoch: int | None = None,
    threshold: float = T.SATURATED_LAYER_FRACTION,
) -> list[Finding]:
    """Sigmoid / tanh layers more than :data:`~nnlit.diagnosis.thresholds.SATURATED_LAYER_FRACTION` saturated
    (``saturation``: layer → saturated share of outputs; only bounded activations have one).

    Example::

        >>> [f.where for f in saturated_units({"act1": 0.1, "act2": 0.9})]
        ['act2']
    """
    found = []
    for name, share in saturation.items():
        if share <= threshold:
            continue
        when = f" in epoch {epoch}" if epoch is not None else ""
        found.append(
            finding(
                "saturation",
                "warning",
                f"{share:.0%} of the outputs of {name} are saturated{when} (derivative below 6% of its maximum): "
                f"little gradient flows through it. Standardise the inputs, use smaller initial weights or a lower "
                f"learning rate, or a non-saturating activation",
                name,
                {"saturated share": (share, threshold, ">")},
                _absent([{ACTIVATION_KEY: "relu"}], config),
                effect=share,
            )
        )
    return found


def gradient_ratio(
    first_norm: float,
    last_norm: float,
    first: str = "the first layer",
    last: str = "the last layer",
    activations: Sequence[str] = (),
    dead_share: float | None = None,
    init_callbacks: Sequence[str] = (),
    callbacks_without_init: list[Any] | None = None,
    config: Mapping[str, Any] | None = None,
    epoch: int | None = None,
    vanishing: float = T.VANISHING_RATIO,
) -> list[Finding]:
    """Vanishing (ratio <= ``vanishing``, :data:`~nnlit.diagnosis.thresholds.VANISHING_RATIO`) or exploding (ratio >=
    :data:`~nnlit.diagnosis.thresholds.EXPLODING_RATIO`) gradients from the first and last layers' mean ‖∇W‖₂.

    The advice fits the net: ``activations`` are the kinds of its activation layers; ``dead_share`` the largest dead
    share of a ReLU layer (``None``: not counted). Sigmoid / tanh layers: a non-saturating activation. Dead ReLUs: the
    dead units stop the gradient (LeakyReLU). A different initialisation is proposed only when the config sets one
    (``init_callbacks``): a net that already has the default one is not told to use it.

    Example::

        >>> f = gradient_ratio(1e-6, 1.0, activations=["sigmoid"] * 6)[0]
        >>> f.kind, f.candidates
        ('vanishing_gradients', [{'model.init_args.activation': 'relu'}, {'model.init_args.norm': 'batch'}])
        >>> "initialisation" in gradient_ratio(1e-6, 1.0, activations=["sigmoid"])[0].message
        False
        >>> gradient_ratio(0.5, 1.0)
        []
    """
    if not (first_norm >= 0 and last_norm >= 0):  # NaN: the nan_loss rule's business
        return []
    ratio = first_norm / last_norm if last_norm > 0 else (math.inf if first_norm > 0 else 1.0)
    when = f"In epoch {epoch} the" if epoch is not None else "The"
    seen = f"{when} gradient of {first} is {ratio:.1e} of the gradient of {last}"
    if ratio >= T.EXPLODING_RATIO and ratio < math.inf:
        return [
            finding(
                "exploding_gradients",
                "warning",
                f"{seen}: exploding gradients, the first layers take far larger steps than the last. Lower the "
                f"learning rate or add normalisation",
                first,
                {"first / last gradient norm": (ratio, T.EXPLODING_RATIO, ">=")},
                _absent([{NORM_KEY: "batch"}], config),
                effect=math.log10(ratio) if math.isfinite(ratio) else 10.0,
            )
        ]
    if ratio > vanishing:
        return []
    saturating = [a for a in activations if a in SATURATING]
    dying = [a for a in activations if a in DYING]
    candidates: list[dict[str, Any]] = []
    if init_callbacks and callbacks_without_init is not None:
        if saturating:  # both causes at once: one alone may leave the other starving the first layers
            candidates.append({CALLBACKS_KEY: callbacks_without_init, ACTIVATION_KEY: "relu"})
        candidates.append({CALLBACKS_KEY: callbacks_without_init})
    if saturating:
        cause = f"{len(saturating)} {saturating[0]} layers, each passing at most a fraction of the gradient back"
        candidates += [{ACTIVATION_KEY: "relu"}, {NORM_KEY: "batch"}]
    elif dying and (dead_share is None or dead_share >= T.DEAD_LAYER_FRACTION):
        counted = "" if dead_share is not None else " (probably: a DeadReLUCounter counts them)"
        cause = f"dead ReLU units, which pass no gradient{counted}"
        candidates.append({ACTIVATION_KEY: "leaky_relu"})
    else:
        cause = "a deep stack that shrinks the backward signal"
        candidates.append({NORM_KEY: "batch"})
    if init_callbacks:
        cause += f", made worse by the initialisation ({', '.join(init_callbacks)})"
    return [
        finding(
            "vanishing_gradients",
            "warning",
            f"{seen}: vanishing gradients, the first layers barely learn. Likely cause: {cause}",
            first,
            {"first / last gradient norm": (ratio, vanishing, "<=")},
            _absent(candidates, config),
            effect=-math.log10(max(ratio, 1e-30)),
        )
    ]
