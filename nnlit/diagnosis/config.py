"""Rules over the config, statically: the head, the stack of activations, dropout, the learning rate, the weight
decay."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nnlit.diagnosis import thresholds as T
from nnlit.diagnosis.finding import Finding, finding, without_present

ACTIVATION_KEY = "model.init_args.activation"
LR_KEY = "model.init_args.optimizer.init_args.lr"
DECAY_KEY = "model.init_args.optimizer.init_args.weight_decay"
#: the optimizers whose weight decay is decoupled from the gradient (Loshchilov & Hutter 2019)
DECOUPLED = ("adamw",)
#: the activations that saturate (bounded both ways)
SATURATING = ("sigmoid", "tanh", "hardtanh", "softsign")
#: the activations whose units can die (zero output, zero gradient)
DYING = ("relu", "relu6")
#: the optimizers of adaptive step size (a learning rate of 1e-3 is their usual one)
ADAPTIVE = ("adam", "adamw", "rmsprop", "adamax", "nadam", "radam", "sparseadam")


def wrong_head(head_task: str, data_task: str, num_classes: int | None) -> list[Finding]:
    """A head that does not fit the target: ``head_task`` is ``"binary"``, ``"multiclass"`` or ``"regression"``;
    ``data_task`` ``"classification"`` or ``"regression"``.

    Example::

        >>> [f.severity for f in wrong_head("regression", "classification", 3)]
        ['error']
        >>> wrong_head("multiclass", "classification", 3)
        []
    """
    head = {"binary": "nnlit.BinaryMLP", "multiclass": "nnlit.MulticlassMLP", "regression": "nnlit.RegressionMLP"}
    if data_task == "regression":
        want = "regression"
    else:
        want = "binary" if num_classes == 2 and head_task == "binary" else "multiclass"
        if num_classes == 2 and head_task in ("binary", "multiclass"):
            return []
    if head_task == want:
        return []
    target = f"{data_task} with {num_classes} classes" if num_classes else data_task
    return [
        finding(
            "wrong_head",
            "error",
            f"The model is a {head_task} head but the target is {target}: use {head[want]}",
            where="model",
            candidates=[{"model.class_path": head[want]}],
            effect=1.0,
        )
    ]


def saturating_stack(
    activation: str | None, hidden: Sequence[int], norm: str | None, config: dict[str, Any] | None = None
) -> list[Finding]:
    """A deep stack of sigmoid / tanh layers without normalisation: the backward signal shrinks at every layer.

    Example::

        >>> [f.kind for f in saturating_stack("sigmoid", [10] * 6, None)]
        ['vanishing_gradients']
        >>> saturating_stack("relu", [10] * 6, None), saturating_stack("tanh", [10] * 6, "batch")
        ([], [])
    """
    if activation not in SATURATING or norm is not None or len(hidden) < T.SATURATING_DEPTH:
        return []
    candidates = [
        c for c in ({ACTIVATION_KEY: "relu"}, {"model.init_args.norm": "batch"}) if without_present(c, config)
    ]
    return [
        finding(
            "vanishing_gradients",
            "warning",
            f"{len(hidden)} {activation} layers without normalisation: each multiplies the backward signal by at most "
            f"{'1/4' if activation == 'sigmoid' else '1'} and saturated units by almost 0, so the first layers barely "
            f"learn",
            where="model",
            measured={"saturating layers": (len(hidden), T.SATURATING_DEPTH, ">=")},
            candidates=candidates,
            effect=len(hidden) / T.SATURATING_DEPTH,
        )
    ]


def high_dropout(dropout: float, hidden: Sequence[int], config: dict[str, Any] | None = None) -> list[Finding]:
    """Dropout at or above :data:`~nnlit.diagnosis.thresholds.HIGH_DROPOUT` on narrow hidden layers.

    Example::

        >>> [f.kind for f in high_dropout(0.7, [16, 16])]
        ['underfitting']
        >>> high_dropout(0.7, [256, 256]), high_dropout(0.1, [16])
        ([], [])
    """
    if dropout < T.HIGH_DROPOUT or not hidden or max(hidden) > T.NARROW_WIDTH:
        return []
    return [
        finding(
            "underfitting",
            "warning",
            f"Dropout {dropout:g} on hidden layers of at most {max(hidden)} units drops most of a small net at every "
            f"step: it cannot fit the table",
            where="model",
            measured={
                "dropout": (dropout, T.HIGH_DROPOUT, ">="),
                "widest layer": (max(hidden), 32, "<="),
            },
            candidates=[{"model.init_args.dropout": 0.1}],
            effect=dropout,
        )
    ]


def learning_rate_range(optimizer: str, lr: float | None) -> list[Finding]:
    """A learning rate far outside its optimizer's usual range (:data:`~nnlit.diagnosis.thresholds.LR_RANGE`). No fix
    here: the doctor's learning-rate range test proposes one.

    Example::

        >>> [f.kind for f in learning_rate_range("SGD", 1e6)], [f.kind for f in learning_rate_range("Adam", 1e-8)]
        (['lr_too_high'], ['lr_too_low'])
        >>> learning_rate_range("Adam", 1e-3)
        []
    """
    if lr is None or lr <= 0:
        return []
    family = _family(optimizer)
    low, high = T.LR_RANGE[family]
    if low <= lr <= high:
        return []
    kind, op, limit = ("lr_too_high", ">", high) if lr > high else ("lr_too_low", "<", low)
    return [
        finding(
            kind,
            "warning",
            f"{optimizer} with lr={lr:g} is far {'above' if lr > high else 'below'} its usual range ({low:g} to "
            f"{high:g})",
            where="optimizer",
            measured={"lr": (lr, limit, op)},
            effect=abs(_log10(lr / limit)),
        )
    ]


def coupled_weight_decay(optimizer: str, weight_decay: float) -> list[Finding]:
    """A weight decay above :data:`~nnlit.diagnosis.thresholds.COUPLED_DECAY` on an optimizer that adds it to the
    gradient (an L2 penalty: every optimizer but AdamW, unless built with ``decoupled_weight_decay=True``, which the
    caller reports as 0). Adam's ``weight_decay=1`` is not AdamW's: it holds every weight near 0 and the net
    underfits. The fixes tried: 1e-4, then 0.

    Example::

        >>> [f.kind for f in coupled_weight_decay("Adam", 1.0)], coupled_weight_decay("AdamW", 1.0)
        (['weight_decay_too_high'], [])
        >>> coupled_weight_decay("SGD", 5e-4)
        []
    """
    name = optimizer.rsplit(".", 1)[-1].lower()
    if name in DECOUPLED or weight_decay <= T.COUPLED_DECAY:
        return []
    return [
        finding(
            "weight_decay_too_high",
            "warning",
            f"{optimizer} adds weight_decay={weight_decay:g} times every weight to its gradient (an L2 penalty, not "
            f"AdamW's decoupled decay): above {T.COUPLED_DECAY:g} (usual: 1e-5 to 1e-3), it holds the weights near 0",
            where="optimizer",
            measured={"weight_decay": (weight_decay, T.COUPLED_DECAY, ">")},
            candidates=[{DECAY_KEY: 1e-4}, {DECAY_KEY: 0.0}],
            effect=abs(_log10(weight_decay / T.COUPLED_DECAY)),
        )
    ]


def _family(optimizer: str) -> str:
    name = optimizer.rsplit(".", 1)[-1].lower()
    if name in ADAPTIVE:
        return "adaptive"
    return "adagrad" if name == "adagrad" else "sgd"


def _log10(value: float) -> float:
    import math

    return math.log10(value) if value > 0 else 0.0
