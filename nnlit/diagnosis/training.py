"""Rules over what training measured: the first loss, the loss curves, update sizes and scores; the rules over layers
(dead and saturated units, gradients) are :mod:`nnlit.diagnosis.layers`', re-exported here.

Every function takes plain numbers (from a monitor's history, a probe or a finished fit) and returns findings; none
needs a Trainer. The monitors' warnings, the end-of-fit report and ``nnlit doctor`` all call these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from nnlit.diagnosis import thresholds as T
from nnlit.diagnosis.finding import Finding, finding
from nnlit.diagnosis.layers import CALLBACKS_KEY, dead_units, gradient_ratio, saturated_units, symmetric_units


def nan_loss(value: float, epoch: int, step: int, cause: str = "") -> list[Finding]:
    """The loss became NaN or infinite: an error that makes every later measurement meaningless.

    Example::

        >>> nan_loss(float("nan"), 0, 16)[0].severity
        'error'
    """
    return [
        finding(
            "nan_loss",
            "error",
            f"The training loss became {value} in epoch {epoch}, by step {step}."
            + (f" Likely cause: {cause.rstrip('.')}" if cause else ""),
            f"epoch {epoch}, step {step}",
            {"loss": (value, 0, "finite")},
            effect=math.inf,
        )
    ]


def initial_loss(first_loss: float, prior_loss: float) -> list[Finding]:
    """The first loss against the loss of predicting the prior (ln C for C balanced classes, the variance for
    standardised regression targets): far above it, the initial outputs are confidently wrong.

    Example::

        >>> initial_loss(first_loss=9.0, prior_loss=1.1)[0].kind
        'bad_init'
        >>> initial_loss(first_loss=1.2, prior_loss=1.1)
        []
    """
    limit = max(T.INITIAL_LOSS_FACTOR * prior_loss, prior_loss + T.INITIAL_LOSS_MARGIN)
    if not first_loss > limit:
        return []
    return [
        finding(
            "bad_init",
            "warning",
            f"The first loss is {first_loss:.3g} where predicting the prior gives {prior_loss:.3g}: the initial "
            f"weights make confident wrong predictions, and the first steps are spent undoing them",
            measured={"first loss": (first_loss, limit, ">"), "prior loss": (prior_loss, prior_loss, "=")},
            effect=first_loss / max(prior_loss, 1e-12),
        )
    ]


#: the kinds that are symptoms: another finding that names a cause explains them
SYMPTOMS = ("too_little_capacity", "underfitting", "lr_too_low")
#: the kinds that name a cause of poor training
CAUSES = (
    "symmetric_init",
    "dead_relu",
    "vanishing_gradients",
    "saturation",
    "lr_too_high",
    "nan_loss",
    "exploding_gradients",
)


def explained(findings: list[Finding]) -> list[Finding]:
    """``findings`` without the symptoms a cause explains: a net that cannot memorise a batch, learns nothing or
    barely moves its loss because its units are dead, its gradients vanish or its learning rate is too high gets the
    cause, not the symptom (the symptoms' own fixes would not help). Static config findings stay. Unscaled inputs
    explain a bad first loss, dead and saturated units.

    Example::

        >>> kinds = [Finding("dead_relu", "warning", "…"), Finding("underfitting", "warning", "…", where="val/acc")]
        >>> [f.kind for f in explained(kinds)]
        ['dead_relu']
        >>> [f.kind for f in explained([Finding("unscaled_inputs", "warning", "…"), *kinds])]
        ['unscaled_inputs', 'underfitting']
    """
    if any(f.kind == "unscaled_inputs" for f in findings):  # large inputs kill, saturate and blow up the first loss
        findings = [f for f in findings if f.kind not in ("bad_init", "dead_relu", "saturation")]
    if not any(f.kind in CAUSES for f in findings):
        return findings
    diverged = any(f.kind in ("lr_too_high", "nan_loss") for f in findings)  # a rising validation loss is divergence
    symptoms = (*SYMPTOMS, "overfitting") if diverged else SYMPTOMS
    return [f for f in findings if f.kind not in symptoms or f.where in ("model", "optimizer")]


def update_ratios(ratios: Mapping[str, float], lr: float | None = None) -> list[Finding]:
    """Each weight's mean ‖ΔW‖ / ‖W‖ per optimizer step against the range
    [:data:`~nnlit.diagnosis.thresholds.UPDATE_RATIO_LOW`, :data:`~nnlit.diagnosis.thresholds.UPDATE_RATIO_HIGH`]:
    the median over layers decides (one frozen or tiny layer does not). The learning-rate range test gives the fix.

    Example::

        >>> update_ratios({"l1": 0.5, "l2": 0.3, "l3": 0.4})[0].kind
        'lr_too_high'
        >>> update_ratios({"l1": 1e-3, "l2": 2e-3})
        []
    """
    values = sorted(v for v in ratios.values() if v > 0 and math.isfinite(v))
    if not values:
        return []
    median = values[len(values) // 2]
    rate = f" (lr={lr:g})" if lr is not None else ""
    if median > T.UPDATE_RATIO_HIGH:
        kind, op, limit, words = "lr_too_high", ">", T.UPDATE_RATIO_HIGH, "each step changes the weights by"
    elif median < T.UPDATE_RATIO_LOW:
        kind, op, limit, words = "lr_too_low", "<", T.UPDATE_RATIO_LOW, "each step changes the weights by only"
    else:
        return []
    return [
        finding(
            kind,
            "warning",
            f"The learning rate{rate} is too {'high' if kind == 'lr_too_high' else 'low'}: {words} {median:.1e} of "
            f"their size, the median over layers",
            "optimizer",
            {"update / weight ratio": (median, limit, op)},
            effect=abs(math.log10(median / limit)),
        )
    ]


def loss_curve(losses: Sequence[float], prior_loss: float | None = None, lr: float | None = None) -> list[Finding]:
    """The training loss per epoch: diverged (the last above :data:`~nnlit.diagnosis.thresholds.DIVERGENCE_FACTOR` ×
    the first, or × the loss of predicting the prior: worse than knowing nothing) is a learning rate too high; stalled
    (less than :data:`~nnlit.diagnosis.thresholds.STALL_FRACTION` of the way to 0 removed) one too low.

    Example::

        >>> loss_curve([1.1, 40.0, 6e6])[0].kind
        'lr_too_high'
        >>> loss_curve([6e6, 8.0, 5.8], prior_loss=1.1)[0].kind
        'lr_too_high'
        >>> loss_curve([1.1, 1.099, 1.0985])[0].kind
        'lr_too_low'
        >>> loss_curve([1.1, 0.6, 0.3], prior_loss=1.1)
        []
    """
    finite = [x for x in losses if math.isfinite(x)]
    if len(finite) < 2:
        return []
    first, last = finite[0], finite[-1]
    rate = f" (lr={lr:g})" if lr is not None else ""
    if last > T.DIVERGENCE_FACTOR * first or (prior_loss is not None and last > T.DIVERGENCE_FACTOR * prior_loss):
        versus, reference = ("first", first) if last > T.DIVERGENCE_FACTOR * first else ("prior", prior_loss or 1.0)
        against = f"the loss of predicting the prior, {reference:.3g}" if versus == "prior" else f"{first:.3g}"
        return [
            finding(
                "lr_too_high",
                "warning",
                f"The training loss ended at {last:.3g}, above {against}: it diverged, and the learning rate{rate} is "
                f"too high",
                "train/loss",
                {f"last / {versus} loss": (last / max(reference, 1e-12), T.DIVERGENCE_FACTOR, ">")},
                effect=math.log10(max(last / max(reference, 1e-12), 1.0)) + 1,
            )
        ]
    if first > 0 and (first - last) / first < T.STALL_FRACTION and len(finite) >= 3:
        return [
            finding(
                "lr_too_low",
                "warning",
                f"The training loss barely moved ({first:.4g} to {last:.4g}): the learning rate{rate} is too low, or "
                f"the net cannot learn",
                "train/loss",
                {"share of the loss removed": ((first - last) / first, T.STALL_FRACTION, "<")},
                effect=1.0,
            )
        ]
    return []


def overfitting(train_losses: Sequence[float], val_losses: Sequence[float]) -> list[Finding]:
    """Validation loss risen :data:`~nnlit.diagnosis.thresholds.OVERFIT_RISE` above its best, at least
    :data:`~nnlit.diagnosis.thresholds.OVERFIT_EPOCHS` epochs after it, while the training loss kept falling, with a
    last gap of :data:`~nnlit.diagnosis.thresholds.OVERFIT_GAP` (one uptick is not enough).

    Example::

        >>> overfitting([1.0, 0.5, 0.2, 0.05, 0.01, 0.005], [1.0, 0.6, 0.7, 0.8, 1.1, 1.3])[0].kind
        'overfitting'
        >>> overfitting([1.0, 0.5, 0.4], [1.0, 0.55, 0.56])
        []
    """
    pairs = [(t, v) for t, v in zip(train_losses, val_losses) if math.isfinite(t) and math.isfinite(v)]
    if len(pairs) < 3:
        return []
    train, val = [p[0] for p in pairs], [p[1] for p in pairs]
    best = min(val)
    best_at = val.index(best)
    rise = (val[-1] - best) / max(best, 1e-12)
    gap = (val[-1] - train[-1]) / max(val[-1], 1e-12)
    late = len(val) - 1 - best_at < T.OVERFIT_EPOCHS
    if rise < T.OVERFIT_RISE or gap < T.OVERFIT_GAP or train[-1] >= train[best_at] or late:
        return []
    return [
        finding(
            "overfitting",
            "warning",
            f"The validation loss rose {rise:.0%} above its best (epoch {best_at}) while the training loss kept "
            f"falling: the net memorises the training rows. Use dropout, weight decay, fewer epochs or a smaller net",
            "val/loss",
            {"validation rise": (rise, T.OVERFIT_RISE, ">="), "gap": (gap, T.OVERFIT_GAP, ">=")},
            [{"model.init_args.dropout": 0.2}, {"trainer.max_epochs": best_at + 1}],
            effect=rise,
        )
    ]


def chance_level(
    train_score: float | None, val_score: float | None, chance: float, metric: str = "val/acc"
) -> list[Finding]:
    """Scores against chance (accuracy: the majority class's share; R²: 0), normalised to (score - chance) / (1 -
    chance). Validation at chance while training fits: no signal in the labels (no fix). Both at chance: the net
    learnt nothing.

    Example::

        >>> chance_level(0.99, 0.51, chance=0.5)[0].kind
        'no_signal'
        >>> chance_level(0.52, 0.51, chance=0.5)[0].kind
        'underfitting'
        >>> chance_level(0.95, 0.93, chance=0.5)
        []
    """
    if val_score is None or not math.isfinite(val_score):
        return []
    scale = 1 - chance if chance < 1 else 1.0
    val_gain = (val_score - chance) / scale
    if val_gain >= T.CHANCE_MARGIN:
        return []
    train_gain = (train_score - chance) / scale if train_score is not None and math.isfinite(train_score) else None
    if train_gain is not None and train_gain >= T.FITS_MARGIN:
        return [
            finding(
                "no_signal",
                "warning",
                f"{metric} is {val_score:.3g}, at chance ({chance:.3g}), while training reaches {train_score:.3g}: the "
                f"net memorises rows, and the features seem to carry no signal about the labels. No config change "
                f"can fix that; check the labels and the features",
                metric,
                {"gain over chance": (val_gain, T.CHANCE_MARGIN, "<")},
                effect=1.0 - val_gain,
            )
        ]
    return [
        finding(
            "underfitting",
            "warning",
            f"{metric} is {val_score:.3g}, at chance ({chance:.3g}), and training is no better: the net learnt nothing",
            metric,
            {"gain over chance": (val_gain, T.CHANCE_MARGIN, "<")},
            effect=1.0 - val_gain,
        )
    ]


def reference_gap(
    score: float | None, reference: float | None, reference_name: str, metric: str, hidden: Sequence[int] = ()
) -> list[Finding]:
    """A quick reference model (logistic / ridge regression) beating the MLP's validation ``score`` by more than
    :data:`~nnlit.diagnosis.thresholds.REFERENCE_MARGIN`.

    Example::

        >>> reference_gap(0.70, 0.90, "logistic regression", "val/acc")[0].kind
        'underfitting'
        >>> reference_gap(0.95, 0.90, "logistic regression", "val/acc")
        []
    """
    if score is None or reference is None or not math.isfinite(score) or reference - score <= T.REFERENCE_MARGIN:
        return []
    candidates = [{"model.init_args.hidden": [64, 64]}] if hidden and max(hidden) < 64 else []
    return [
        finding(
            "underfitting",
            "warning",
            f"A {reference_name} fitted on the same split reaches {metric} {reference:.3g}, this MLP {score:.3g}: a "
            f"linear model does better than this net",
            metric,
            {"reference - MLP": (reference - score, T.REFERENCE_MARGIN, ">")},
            candidates,
            effect=reference - score,
        )
    ]


def nothing_learnable(
    score: float | None, reference: float | None, reference_name: str, chance: float, metric: str = "val/acc"
) -> list[Finding]:
    """The MLP and a quick nonlinear reference model (the doctor fits gradient boosting) both at chance on validation:
    the features seem to carry no signal about the labels. Judged without the MLP's training score, so a short probe
    can tell.

    Example::

        >>> nothing_learnable(0.02, -0.01, "ridge regression", chance=0.0, metric="val/r2")[0].kind
        'no_signal'
        >>> nothing_learnable(0.02, 0.4, "ridge regression", chance=0.0, metric="val/r2")
        []
    """
    if score is None or reference is None or not math.isfinite(score):
        return []
    scale = 1 - chance if chance < 1 else 1.0
    gains = ((score - chance) / scale, (reference - chance) / scale)
    if max(gains) >= T.CHANCE_MARGIN:
        return []
    return [
        finding(
            "no_signal",
            "warning",
            f"{metric} is {score:.3g} and a {reference_name} reaches {reference:.3g}, both at chance "
            f"({chance:.3g}): the features seem to carry no signal about the labels. No config change can fix that; "
            f"check the labels and the features",
            metric,
            {"best gain over chance": (max(gains), T.CHANCE_MARGIN, "<")},
            effect=1.0 - max(gains),
        )
    ]


def overfit_batch(
    first_loss: float, last_loss: float, rows: int, steps: int, hidden: Sequence[int] | None = None
) -> list[Finding]:
    """The overfit-one-batch probe: a few dozen rows trained alone for a few hundred steps should reach a loss near 0;
    a loss above :data:`~nnlit.diagnosis.thresholds.OVERFIT_BATCH_FRACTION` of its start means the labels, the loss or
    the capacity are wrong. With the ``hidden`` widths known and below 64, the fix tried is a wider net.

    Example::

        >>> overfit_batch(0.69, 0.68, rows=32, steps=300)[0].kind
        'too_little_capacity'
        >>> overfit_batch(0.69, 0.01, rows=32, steps=300)
        []
    """
    if not math.isfinite(last_loss) or not math.isfinite(first_loss) or first_loss <= 0:
        return []
    share = last_loss / first_loss
    if share <= T.OVERFIT_BATCH_FRACTION:
        return []
    return [
        finding(
            "too_little_capacity",
            "warning",
            f"Trained alone for {steps} steps, {rows} rows kept {share:.0%} of their first loss: the net cannot even "
            f"memorise a few dozen rows, so its capacity, its loss or the labels are wrong",
            "train",
            {"last / first loss on one batch": (share, T.OVERFIT_BATCH_FRACTION, ">")},
            [{"model.init_args.hidden": [64, 64]}] if hidden is not None and max(hidden, default=0) < 64 else [],
            effect=share,
        )
    ]


__all__ = [
    "CALLBACKS_KEY",
    "chance_level",
    "dead_units",
    "explained",
    "gradient_ratio",
    "initial_loss",
    "loss_curve",
    "nan_loss",
    "nothing_learnable",
    "overfit_batch",
    "overfitting",
    "reference_gap",
    "saturated_units",
    "symmetric_units",
    "update_ratios",
]
