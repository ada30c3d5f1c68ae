"""``nnlit doctor``: what is wrong with a training run, the evidence, and a config that fixes it, verified by a rerun.

:func:`diagnose` runs the stages (the table, the config statically, the initialisation, one small batch overfitted, a
short fit with the monitors, then each fix rerun) and returns a :class:`Diagnosis`; ``nnlit doctor`` prints it
(:mod:`nnlit.doctor.command`). The rules are :mod:`nnlit.diagnosis`'s, the ones every ``nnlit fit`` also applies.
"""

from __future__ import annotations

import functools
import json
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from nnlit.diagnosis.config import (
    LR_KEY,
    coupled_weight_decay,
    high_dropout,
    learning_rate_range,
    saturating_stack,
    wrong_head,
)
from nnlit.diagnosis.finding import Finding, healthy, ranked
from nnlit.diagnosis.layers import dead_units, gradient_ratio, saturated_units, symmetric_units
from nnlit.diagnosis.table import (
    class_imbalance,
    conflicting_labels,
    constant_columns,
    duplicate_rows,
    id_columns,
    leakage,
    missing_values,
    too_few_rows,
    unscaled_inputs,
)
from nnlit.diagnosis.training import (
    chance_level,
    explained,
    initial_loss,
    loss_curve,
    nan_loss,
    nothing_learnable,
    overfit_batch,
    overfitting,
    reference_gap,
    update_ratios,
)
from nnlit.doctor import probes
from nnlit.doctor import verify as verification
from nnlit.doctor.lr_range import USUAL, lr_range_test
from nnlit.doctor.verify import Probes

#: the default time budget of a diagnosis, in seconds
BUDGET = 120.0


@dataclass
class Diagnosis:
    """What :func:`diagnose` found.

    Attributes:
        findings: ranked (errors first, then the larger effect).
        seconds: how long the diagnosis took.
        stages: the stages run, in order (a stage that found an error ends the diagnosis).
        metric: the validation metric the fixes were judged by, ``"val/acc"`` or ``"val/r2"``.
        runs: the probe fits' measurements, ``{"before": …, "after": …}`` (for pictures).
    """

    findings: list[Finding]
    seconds: float
    stages: list[str] = field(default_factory=list)
    metric: str = ""
    runs: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """No error and no warning."""
        return healthy(self.findings)

    def to_dict(self) -> dict[str, Any]:
        """``{"healthy", "findings", "seconds"}``: the JSON ``nnlit doctor --format json`` prints."""
        return {
            "healthy": self.healthy,
            "findings": [f.to_dict() for f in self.findings],
            "seconds": round(self.seconds, 3),
        }

    def fixes(self) -> dict[str, Any]:
        """Every verified fix of an error or a warning, merged (a later finding's fix does not replace an earlier
        one's key). An info's fix cured its measurement without a clear gain: the run does not need it."""
        merged: dict[str, Any] = {}
        for finding in self.findings:
            if finding.severity == "info":
                continue
            if finding.fix and finding.verified and finding.verified.get("helped"):
                for key, value in finding.fix.items():
                    merged.setdefault(key, value)
        return merged


def diagnose(
    config: str, overrides: Sequence[str] = (), budget: float = BUDGET, verify: bool = True, seed: int = 0
) -> Diagnosis:
    """Diagnoses the training run of ``config`` (a file, or a shipped config's name) with ``overrides``
    (``["--model.init_args.activation=tanh", …]``, as ``nnlit fit`` takes them).

    Args:
        config: the config, as ``nnlit fit --config`` takes it.
        overrides: ``--key=value`` arguments.
        budget: seconds; fixes are verified while time is left (a fix not verified is not offered).
        verify: rerun the short probe with each fix; ``False`` keeps each finding's first candidate, unverified.
        seed: the seed of the probe fits.

    Raises:
        ValueError, TypeError, LookupError, OSError: when the config cannot be built (the ``nnlit`` command's errors).

    Example::

        >>> import nnlit
        >>> diagnosis = nnlit.diagnose("configs/demos/xor_linear.yaml", budget=30)  # doctest: +SKIP
        >>> [f.kind for f in diagnosis.findings]  # doctest: +SKIP
        ['underfitting']
    """
    start = time.perf_counter()
    stages: list[str] = []
    with tempfile.TemporaryDirectory() as root:
        built = probes.build_config(config, overrides, root)
        view = probes.table_view(built)
        context = _Context(built, view)
        stages.append("table")
        findings = context.table_findings()
        stages.append("config")
        findings += context.config_findings()
        if any(f.severity == "error" for f in findings):
            return Diagnosis(ranked(findings), time.perf_counter() - start, stages)
        epochs = min(built.max_epochs, probes.PROBE_EPOCHS)
        context.truncated = epochs < built.max_epochs
        stages += ["initialisation", "one batch", "short fit"]
        began = time.perf_counter()
        before = probes.probe_fit(built, epochs, seed=seed)
        first_seconds = time.perf_counter() - began
        context.score = before.metric(context.metric)
        measured = context.fit_findings(before)
        kinds = {f.kind for f in measured}
        # a config rule's guess gives way to the measurement of the same kind
        findings = [f for f in findings if not (f.where in ("model", "optimizer") and f.kind in kinds)] + measured
        findings = explained(_deduplicated(findings))
        context.add_lr_candidates(findings, before)
        runs: dict[str, Any] = {"before": before}
        added: list[Finding] = []  # what the whole fit of the fixes shows: after the rest, it exists because of them
        if verify:
            stages.append("verify")
            rerun = functools.partial(_rerun, context, config, overrides)
            first = (context.score, measured, before)
            probe = Probes(rerun, first, epochs, seed, start, budget, first_seconds, built.max_epochs)
            verification.verify(findings, context, probe, runs)
            if context.truncated:
                stages.append("whole fit")
                added = verification.whole_fit(findings, context, probe, Diagnosis(findings, 0.0).fixes())
        else:
            for finding in findings:
                finding.fix = dict(finding.candidates[0]) if finding.candidates else None
        ordered = ranked(findings) + ranked(added)
        return Diagnosis(ordered, time.perf_counter() - start, stages, context.metric, runs)


class _Context:
    """What the rules need to know about the config, its table and its model."""

    def __init__(self, built: probes.Built, view: probes.TableView) -> None:
        self.built, self.view = built, view
        model = built.model
        self.kinds = probes.activation_kinds(model)
        self.optimizer, self.lr, self.weight_decay = probes.optimizer_of(model)
        self.prior = probes.prior_loss(view)
        self.chance = probes.chance_score(view)
        self.classification = view.task == "classification"
        self.metric = "val/acc" if self.classification else "val/r2"
        self.without_init = probes.callbacks_without_init(built)
        self.score: float | None = None
        #: the probe fit is shorter than the config's: "learnt too little" cannot be judged from it
        self.truncated = False
        self._reference: tuple[str, float | None] | None = None
        self._boosted: tuple[str, float | None] | None = None

    def table_findings(self) -> list[Finding]:
        v = self.view
        findings = constant_columns(v.x, v.names) + id_columns(v.x, v.names, features_fix=v.features_fix)
        findings += missing_values(v.x, v.names)
        findings += unscaled_inputs(v.x, v.names, v.standardize)
        params = sum(p.numel() for p in self.built.model.parameters())
        findings += too_few_rows(len(v.train), params)
        if v.y.ndim == 1:
            findings += duplicate_rows(v.x, v.y)
            if self.classification:
                findings += conflicting_labels(v.x, v.y) + class_imbalance(v.y)
            filled = torch.nan_to_num(torch.from_numpy(v.x)).numpy()
            findings += leakage(filled[v.train], v.y[v.train], filled[v.val], v.y[v.val], v.names)
        return findings

    def config_findings(self) -> list[Finding]:
        model, config = self.built.model, self.built.config
        findings = wrong_head(
            probes.head_task(model), self.view.task, getattr(self.built.datamodule, "num_classes", None)
        )
        activation = _option(model, "activation", None)
        hidden = list(_option(model, "hidden", []) or [])
        findings += saturating_stack(activation, hidden, _option(model, "norm", None), config)
        findings += high_dropout(float(_option(model, "dropout", 0.0) or 0.0), hidden, config)
        findings += learning_rate_range(self.optimizer, self.lr)
        findings += coupled_weight_decay(self.optimizer, self.weight_decay)
        return findings

    def fit_findings(self, m: probes.FitMeasurements) -> list[Finding]:
        init, config = m.init, self.built.config
        findings: list[Finding] = []
        if init.first_loss is not None and math.isfinite(init.first_loss):
            findings += initial_loss(init.first_loss, self.prior)
        findings += symmetric_units(
            init.spreads, self.built.init_callbacks, self.without_init, list(self.kinds.values())
        )
        if init.overfit is not None:
            hidden = _option(self.built.model, "hidden", None)
            findings += overfit_batch(
                *init.overfit, rows=probes.OVERFIT_ROWS, steps=probes.OVERFIT_STEPS, hidden=hidden
            )
        if m.nan is not None:
            return findings + nan_loss(m.nan.value, m.nan.epoch, m.nan.step, m.nan.cause)
        train = [e["train/loss"] for e in m.epochs if "train/loss" in e]
        val = [e["val/loss"] for e in m.epochs if "val/loss" in e]
        findings += loss_curve(train, self.prior, self.lr)
        findings += update_ratios(m.update_ratios, self.lr)
        high = any(f.kind == "lr_too_high" for f in findings) or bool(
            [f for f in learning_rate_range(self.optimizer, self.lr) if f.kind == "lr_too_high"]
        )
        dead = m.dead or init.dead
        findings += dead_units(
            dead, self.kinds, high, self.built.init_callbacks, self.without_init, config, epoch=len(m.epochs) - 1
        )
        findings += saturated_units(m.saturation or init.saturation, config)
        norms = list(m.grad_norms.items())
        if len(norms) >= 2:
            shares = [c / u for c, u in dead.values() if u] if dead else []
            findings += gradient_ratio(
                norms[0][1],
                norms[-1][1],
                first=norms[0][0],
                last=norms[-1][0],
                activations=list(self.kinds.values()),
                dead_share=max(shares, default=0.0),
                init_callbacks=self.built.init_callbacks,
                callbacks_without_init=self.without_init,
                config=config,
            )
        if len(val) == len(train):
            findings += overfitting(train, val)
        score_name = self.metric.split("/")[1]
        at_chance = chance_level(m.metric(f"train/{score_name}"), m.metric(self.metric), self.chance, self.metric)
        findings += [f for f in at_chance if not (self.truncated and f.kind == "underfitting")]
        if not any(f.kind in ("no_signal", "underfitting") for f in findings):
            name, reference = self.reference(nonlinear=True)
            findings += nothing_learnable(m.metric(self.metric), reference, name, self.chance, self.metric)
        if not self.truncated and not any(f.kind in ("no_signal", "underfitting") for f in findings):
            name, reference = self.reference()
            findings += reference_gap(
                m.metric(self.metric), reference, name, self.metric, _option(self.built.model, "hidden", [])
            )
        return findings

    def reference(self, nonlinear: bool = False) -> tuple[str, float | None]:
        """A logistic (classification) or ridge (regression) regression fitted on the same split, and its
        validation score; ``("", None)`` without scikit-learn. ``nonlinear``: gradient boosting instead, the reference
        that tells "no signal" (a linear model is at chance on a spiral or a sine that an MLP learns)."""
        if nonlinear:
            if self._boosted is None:
                self._boosted = _reference_score(self.built.datamodule, self.classification, nonlinear=True)
            return self._boosted
        if self._reference is None:
            self._reference = _reference_score(self.built.datamodule, self.classification)
        return self._reference

    def add_lr_candidates(self, findings: list[Finding], before: probes.FitMeasurements) -> None:
        """Learning-rate fixes from a range test, for the learning-rate and NaN findings."""
        wanted = [f for f in findings if f.kind in ("lr_too_high", "lr_too_low", "nan_loss") or f.kind == "dead_relu"]
        if not wanted or before.init.initial_state is None:
            return
        if self.lr is None:
            return
        result = _range_test(self.built, before.init.initial_state)
        suggestion = result["suggestion"]
        family = "sgd" if self.optimizer == "SGD" else "adaptive"
        rates = [r for r in (suggestion, USUAL[family]) if r is not None and not math.isclose(r, self.lr, rel_tol=0.5)]
        # plain SGD at a broken rate: Adam (AUTOTRAINER's first repair of an unstable loss) at the rate its own range
        # test finds, else its usual one; momentum-free SGD at a sound rate learns too slowly to reach the healthy score
        adam_rate = USUAL["adaptive"]
        if family == "sgd":
            adam_rate = _range_test(self.built, before.init.initial_state, torch.optim.Adam)["suggestion"] or adam_rate
        adam = {"model.init_args.optimizer": {"class_path": "torch.optim.Adam", "init_args": {"lr": adam_rate}}}
        for finding in wanted:
            if finding.kind == "dead_relu" and not any(f.kind == "lr_too_high" for f in findings):
                continue
            toward = [r for r in rates if (r > self.lr if finding.kind == "lr_too_low" else r < self.lr)]
            lr_fixes: list[dict[str, Any]] = [{LR_KEY: r} for r in dict.fromkeys(toward)]
            if family == "sgd":
                lr_fixes.insert(0, adam)
            finding.candidates[:0] = lr_fixes
            if suggestion is not None:
                finding.evidence.setdefault("range test", {"value": suggestion, "threshold": None, "op": "suggests"})


def _range_test(
    built: probes.Built, state: dict[str, torch.Tensor], optimizer_class: type[torch.optim.Optimizer] | None = None
) -> dict[str, Any]:
    """The range test of the model from its initial ``state``, with its own optimizer or ``optimizer_class``."""
    import copy

    model = copy.deepcopy(built.model).cpu()
    model.load_state_dict(state)
    if optimizer_class is None:
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer_class = type(model.optimizer(trainable))
    x, y = built.datamodule.split_tensors("train")
    batch = int(getattr(built.datamodule, "batch_size", 64) or 64)
    return lr_range_test(model.network, model.compute_loss, optimizer_class, x, y, batch)


def _reference_score(dm: Any, classification: bool, nonlinear: bool = False) -> tuple[str, float | None]:
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
        from sklearn.linear_model import LogisticRegression, Ridge
    except ImportError:
        return "", None
    x_train, y_train = (t.numpy() for t in dm.split_tensors("train"))
    x_val, y_val = (t.numpy() for t in dm.split_tensors("val"))
    if len(x_val) == 0:
        return "", None
    if classification and y_train.ndim != 1:
        return "", None
    if nonlinear:
        boosting = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
        fitted = boosting(max_iter=100, random_state=0).fit(x_train, y_train)
        return "gradient boosting model", float(fitted.score(x_val, y_val))
    if classification:
        model = LogisticRegression(max_iter=300).fit(x_train, y_train)
        return "logistic regression", float(model.score(x_val, y_val))
    return "ridge regression", float(Ridge().fit(x_train, y_train).score(x_val, y_val))


def _deduplicated(findings: list[Finding]) -> list[Finding]:
    """One finding per (kind, where): the larger effect (a dead layer at initialisation and after training is one)."""
    kept: dict[tuple[str, str | None], Finding] = {}
    for finding in findings:
        key = (finding.kind, finding.where)
        if key not in kept or finding.effect > kept[key].effect:
            kept[key] = finding
    return list(kept.values())


def _rerun(
    context: _Context, config: str, overrides: Sequence[str], fix: dict[str, Any], epochs: int | None, seed: int
) -> verification.Result:
    """The short probe with ``fix`` applied (``epochs=None``: the fixed config's own epochs, a whole fit): its
    validation metric and findings."""
    extra = [f"--{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in fix.items()]
    with tempfile.TemporaryDirectory() as root:
        try:
            built = probes.build_config(config, [*overrides, *extra], root)
        except Exception:  # a fix the config cannot take is no fix
            return None, [], None
        view = probes.table_view(built)
        rerun = _Context(built, view)
        rerun.truncated = context.truncated if epochs is not None else False
        measurements = probes.probe_fit(built, built.max_epochs if epochs is None else epochs, seed=seed)
        if measurements.nan is not None:
            return None, rerun.fit_findings(measurements), measurements
        findings = explained(rerun.config_findings() + rerun.fit_findings(measurements))
        return measurements.metric(context.metric), findings, measurements


__all__ = ["BUDGET", "Diagnosis", "diagnose"]


def _option(model: Any, name: str, default: Any) -> Any:
    """An option of the network's body: ``model.options.<name>`` on nnlit's heads
    (:class:`~nnlit.nn.options.MLPOptions`), else an attribute of that name on a user's own module, else ``default``."""
    options = getattr(model, "options", None)
    if options is not None and hasattr(options, name):
        return getattr(options, name)
    return getattr(model, name, default)
