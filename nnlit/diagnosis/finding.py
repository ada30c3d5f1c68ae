"""What a diagnosis finds: :class:`Finding`, the vocabulary of its kinds and their order."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: the docs page every finding links (``docs/doctor.md#<kind>``)
DOCS = "docs/doctor.md"

#: every kind a finding can have, with the lesson it belongs to (the docs section of the same name explains it)
KINDS: dict[str, str] = {
    "constant_column": "a column with one value carries nothing",
    "id_column": "a row identifier is not a feature",
    "duplicate_rows": "repeated rows inflate the validation score",
    "conflicting_labels": "the same features with different labels cannot all be learnt",
    "leakage": "one feature alone gives the answer away",
    "class_imbalance": "a rare class is easy to ignore",
    "missing_values": "a mostly empty column",
    "unscaled_inputs": "inputs far from the standardised range slow or break training",
    "too_few_rows": "more parameters than the rows can pin down",
    "wrong_head": "the head does not fit the target",
    "bad_init": "the first loss should be the loss of predicting the prior",
    "symmetric_init": "a constant initialisation makes every unit of a layer the same",
    "dead_relu": "ReLUs that never fire get no gradient and stay dead",
    "saturation": "saturated sigmoid / tanh units pass almost no gradient",
    "vanishing_gradients": "the first layers barely learn",
    "exploding_gradients": "the first layers get far larger gradients than the last",
    "nan_loss": "the loss became NaN or infinite",
    "lr_too_high": "the learning rate is too high",
    "lr_too_low": "the learning rate is too low",
    "weight_decay_too_high": "an L2 weight decay so strong that the weights cannot move from 0",
    "too_little_capacity": "the net is too small for the table",
    "overfitting": "training fits while validation gets worse",
    "no_signal": "validation stays at chance: the labels carry no signal the features can give",
    "underfitting": "the net learns less than a simple model does",
}

#: the severities, from the most serious
SEVERITIES = ("error", "warning", "info")


@dataclass
class Finding:
    """One thing a diagnosis found.

    Attributes:
        kind: a name from :data:`KINDS`.
        severity: ``"error"`` (the run cannot succeed as configured), ``"warning"`` (it will be clearly worse than it
            could be) or ``"info"``.
        message: one or two sentences naming the lesson, ending with the docs section.
        where: the column, layer or split it is about; ``None`` when there is none.
        evidence: each measured number, with the threshold it was held against and how:
            ``{"ratio": {"value": 2e-5, "threshold": 1e-3, "op": "<="}}``.
        fix: config overrides as dotted keys, exactly as ``nnlit fit`` takes them; ``None`` when no config change can
            help (or none was verified).
        verified: the before / after of the fix's rerun, ``{"metric", "before", "after", "measurement"?}``; ``None``
            when not rerun.
        candidates: the fixes to try, best guess first (the doctor reruns each and keeps the first that helps).
        effect: the size of the effect, for ranking findings of one severity (larger first).

    Raises:
        ValueError: for an unknown ``kind`` or ``severity``.

    Example::

        >>> f = Finding("dead_relu", "warning", "12/16 units never fired", where="network.act2")
        >>> f.fix_line() is None, f.kind
        (True, 'dead_relu')
        >>> Finding("lr_too_high", "warning", "…", fix={"model.init_args.optimizer.init_args.lr": 0.01}).fix_line()
        '--model.init_args.optimizer.init_args.lr=0.01'
    """

    kind: str
    severity: str
    message: str
    where: str | None = None
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)
    fix: dict[str, Any] | None = None
    verified: dict[str, Any] | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    effect: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Unknown finding kind {self.kind!r}. Valid kinds: {', '.join(sorted(KINDS))}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"`severity` must be one of {', '.join(SEVERITIES)}, got {self.severity!r}")
        if self.fix is None and self.candidates:
            self.fix = dict(self.candidates[0])

    def fix_line(self) -> str | None:
        """The fix as ``--key=value`` arguments of ``nnlit fit``; ``None`` without a fix."""
        if not self.fix:
            return None
        return " ".join(f"--{key}={_argument(value)}" for key, value in self.fix.items())

    def to_dict(self) -> dict[str, Any]:
        """The finding as JSON-ready data (the schema of ``nnlit doctor --format json``)."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "where": self.where,
            "evidence": self.evidence,
            "message": self.message,
            "fix": self.fix,
            "verified": self.verified,
        }

    def __repr__(self) -> str:
        where = f" at {self.where}" if self.where else ""
        return f"Finding({self.severity} {self.kind}{where})"


def evidence(value: float, threshold: float, op: str) -> dict[str, Any]:
    """One measured number against its threshold: ``op`` is how it was compared (``"<="``, ``">="``, ``">"`` …)."""
    return {"value": _plain(value), "threshold": _plain(threshold), "op": op}


def docs_link(kind: str) -> str:
    """The docs section of a kind."""
    return f"{DOCS}#{kind}"


def finding(
    kind: str,
    severity: str,
    text: str,
    where: str | None = None,
    measured: dict[str, tuple[float, float, str]] | None = None,
    candidates: list[dict[str, Any]] | None = None,
    effect: float = 0.0,
) -> Finding:
    """The :class:`Finding` a rule reports: ``text`` ends with the kind's docs section, and each ``measured`` name maps
    to ``(value, threshold, op)``, the :func:`evidence` of it.

    Example::

        >>> f = finding("dead_relu", "warning", "16/16 units are dead", "act2", {"dead share": (1.0, 0.5, ">=")})
        >>> f.message, f.evidence["dead share"]
        ('16/16 units are dead (see docs/doctor.md#dead_relu).', {'value': 1.0, 'threshold': 0.5, 'op': '>='})
    """
    return Finding(
        kind,
        severity,
        f"{text} (see {docs_link(kind)}).",
        where=where,
        evidence={name: evidence(*numbers) for name, numbers in (measured or {}).items()},
        candidates=list(candidates or []),
        effect=effect,
    )


#: within a severity: what makes every other measurement meaningless, then causes, then symptoms and the rest
TIERS: dict[str, int] = {
    **dict.fromkeys(("nan_loss", "wrong_head", "symmetric_init", "leakage", "id_column"), 0),
    **dict.fromkeys(
        (
            "lr_too_high",
            "lr_too_low",
            "weight_decay_too_high",
            "dead_relu",
            "vanishing_gradients",
            "exploding_gradients",
            "saturation",
            "bad_init",
            "unscaled_inputs",
        ),
        1,
    ),
}


def ranked(findings: list[Finding]) -> list[Finding]:
    """Errors first, then warnings, then infos; within a severity the kinds that invalidate a run, then causes (a
    learning rate, dead units, vanishing gradients …), then symptoms and the rest (:data:`TIERS`); then the larger
    effect first (stable otherwise)."""
    return sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), TIERS.get(f.kind, 2), -f.effect))


def healthy(findings: list[Finding]) -> bool:
    """No error and no warning."""
    return not any(f.severity in ("error", "warning") for f in findings)


def without_present(fix: dict[str, Any], config: dict[str, Any] | None) -> dict[str, Any] | None:
    """``fix`` unless the flat dotted ``config`` already has every value of it (then ``None``: no fix the config
    already has).

    Example::

        >>> without_present({"model.init_args.activation": "relu"}, {"model.init_args.activation": "relu"}) is None
        True
        >>> without_present({"model.init_args.activation": "relu"}, {"model.init_args.activation": "tanh"})
        {'model.init_args.activation': 'relu'}
    """
    if config is not None and all(key in config and config[key] == value for key, value in fix.items()):
        return None
    return fix


def _argument(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return f"'{text}'" if any(c in text for c in " []{}\"'") else text


def _plain(value: float) -> Any:
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        return str(number)  # JSON has no NaN nor infinity
    return number
