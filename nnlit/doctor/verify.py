"""The doctor's last stages: each fix verified by a rerun, each warning weighed by what its fix wins back, and the
verified fixes of a shortened probe trained for the config's own epochs.

The probe fits are :class:`Probes`' (each fix, seed and length run once); the rules that judge them are
:mod:`nnlit.diagnosis`'s, the thresholds :mod:`nnlit.diagnosis.thresholds`'.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sized
from typing import Any, Protocol

from nnlit.diagnosis import thresholds as T
from nnlit.diagnosis.finding import Finding, ranked

#: the most fixes tried per finding (the best that helps is kept)
TRIES = 3
#: kinds whose harm the validation score does not show (it is inflated by them): a fix cannot prove itself there
INFLATING = ("id_column", "leakage", "duplicate_rows")


class _Rows(Protocol):
    @property
    def val(self) -> Sized: ...  # the validation rows


class Context(Protocol):
    """What verification reads of a diagnosis: the first probe's ``score`` (``None`` when its loss broke), the
    metric's ``chance`` level, the ``metric``'s name, whether it is a ``classification``, whether the probe was
    ``truncated`` (shorter than the config's fit), and the table's ``view`` (its validation rows)."""

    score: float | None
    chance: float
    metric: str
    classification: bool
    truncated: bool

    @property
    def view(self) -> _Rows: ...


#: a probe's result: the validation metric (``None`` when the loss broke or the fix could not be applied), the
#: findings of the rerun, its measurements
Result = tuple[float | None, list[Finding], Any]


class Probes:
    """The probe fits of one diagnosis, each (fix, seed, length) run once while the budget lasts.

    Args:
        rerun: ``rerun(fix, epochs, seed)``: the probe with ``fix`` applied for ``epochs`` (``None``: the fixed
            config's own epochs, a whole fit).
        first: the first probe's result (no fix, ``seed``, ``epochs``).
        epochs: the probe's epochs.
        seed: the probe's seed.
        start: when the diagnosis started (``time.perf_counter()``).
        budget: its seconds.
    """

    def __init__(
        self,
        rerun: Callable[[dict[str, Any], int | None, int], Result],
        first: Result,
        epochs: int,
        seed: int,
        start: float,
        budget: float,
        first_seconds: float = 0.0,
        whole_epochs: int | None = None,
    ) -> None:
        self.rerun, self.epochs, self.seed, self.start, self.budget = rerun, epochs, seed, start, budget
        #: the config's own epochs (a whole fit); the probe's when unknown
        self.whole_epochs = whole_epochs or epochs
        #: the slowest seconds per epoch of a probe so far: what the next one is expected to cost
        self.per_epoch = first_seconds / max(1, epochs)
        self._runs: dict[tuple[str, int, bool], Result] = {("{}", seed, False): first}

    def __repr__(self) -> str:
        return f"Probes({len(self._runs)} run, {self.epochs} epochs, seed {self.seed}, budget {self.budget:g} s)"

    def time_left(self, epochs: int = 0) -> bool:
        """Whether the budget pays for a probe of ``epochs`` more (0: whether any time is left)."""
        return time.perf_counter() - self.start + epochs * self.per_epoch <= self.budget

    def __call__(self, fix: dict[str, Any], seed: int | None = None, whole: bool = False) -> Result:
        """The probe with ``fix``, ``seed`` (default: the probe's) and the whole fit's epochs when ``whole``; a probe
        the budget cannot pay for (at the slowest seconds per epoch so far) is ``(None, [], None)``, not run."""
        key = (json.dumps(fix, sort_keys=True), self.seed if seed is None else seed, whole)
        if key not in self._runs:
            epochs = self.whole_epochs if whole else self.epochs
            if not self.time_left(epochs):
                return None, [], None
            began = time.perf_counter()
            self._runs[key] = self.rerun(fix, None if whole else self.epochs, key[1])
            self.per_epoch = max(self.per_epoch, (time.perf_counter() - began) / max(1, epochs))
        return self._runs[key]


def verify(findings: list[Finding], context: Context, probe: Probes, runs: dict[str, Any]) -> None:
    """Reruns the probe with each finding's candidate fixes (errors first) while the budget lasts; keeps the best that
    helps: the metric gains :data:`~nnlit.diagnosis.thresholds.FIX_GAIN`, or the finding is gone and the metric loses
    no more than :data:`~nnlit.diagnosis.thresholds.FIX_TOLERANCE`; with validation at chance (a ``no_signal``
    finding), the fix must take the metric :data:`~nnlit.diagnosis.thresholds.CHANCE_MARGIN` off it. Then each
    warning is weighed (:func:`settle`).

    A finding whose fixes change other keys than the fixes kept before it is verified on top of them (a weight decay
    after a learning rate): the fixes are applied together, so they are judged together. A finding no fix helped is
    tried once more on top of every fix kept after it (a wider net may need the dropout it had to go first)."""
    at_chance = any(f.kind == "no_signal" for f in findings)
    applied: dict[str, Any] = {}  # the fixes kept so far, as Diagnosis.fixes() merges them: the first key wins
    tried: dict[int, tuple[tuple[float, dict[str, Any]], dict[str, Any]]] = {}
    best_gain = -math.inf
    order = ranked(findings)
    weighed = {id(f) for f in order if f.severity == "warning" and f.kind not in INFLATING and not at_chance}
    for finding in order:
        finding.fix = None  # a fix is offered once verified
    for second in (False, True):
        for finding in order:
            keys = {key for candidate in finding.candidates for key in candidate}
            stack = dict(applied) if applied and not keys & set(applied) else {}
            if second and (finding.fix is not None or not stack or stack == tried[id(finding)][1]):
                continue
            best, largest = _try(finding, stack, context, probe, at_chance, retry=second)
            if second and best is None:
                continue  # the first pass's measurement stands
            tried[id(finding)] = (largest, stack)
            if best is not None:
                gain, finding.fix, measurements = best
                if gain > best_gain:
                    best_gain, runs["after"], runs["fix"] = gain, measurements, finding.fix
            if id(finding) in weighed:
                finding.severity = "warning"  # weighed again after a retry
                settle(finding, largest, stack, context, probe)
            if finding.fix and finding.severity != "info":
                for key, value in finding.fix.items():
                    applied.setdefault(key, value)


def _try(
    finding: Finding, stack: dict[str, Any], context: Context, probe: Probes, at_chance: bool, retry: bool
) -> tuple[tuple[float, dict[str, Any], Any] | None, tuple[float, dict[str, Any]]]:
    """Each candidate fix of ``finding`` on top of ``stack``: the best that helps (gain, fix, measurements) or
    ``None``, and the largest gain of any candidate with that candidate; sets ``finding.verified`` (on a ``retry``,
    only when a candidate helps)."""
    if not finding.candidates:  # nothing to try: no probe of the stack either
        return None, (-math.inf, {})
    before = context.score
    base = before if before is not None and math.isfinite(before) else context.chance
    if stack:
        stacked = probe(stack)[0]
        base = stacked if stacked is not None and math.isfinite(stacked) else base
    scale = 1 - context.chance if context.chance < 1 else 1.0
    best: tuple[float, dict[str, Any], Any] | None = None
    largest: tuple[float, dict[str, Any]] = (-math.inf, {})
    for candidate in finding.candidates[:TRIES]:
        if not probe.time_left():
            if best is None and not retry:
                finding.verified = {
                    "metric": context.metric,
                    "before": before,
                    "after": None,
                    "helped": False,
                    "skipped": "time budget spent",
                }
            break
        after, rerun_findings, measurements = probe({**stack, **candidate})
        gone = not any(f.kind == finding.kind and f.where == finding.where for f in rerun_findings)
        gain = (after - base) if after is not None else -math.inf
        if gain > largest[0]:
            largest = (gain, candidate)
        # a static finding is gone by construction once its fix is applied: only the metric can prove that one
        measured = finding.where not in ("model", "optimizer") and not at_chance
        helped = gain >= T.FIX_GAIN or (measured and gone and gain >= -T.FIX_TOLERANCE)
        if at_chance:
            helped = after is not None and (after - context.chance) / scale >= T.CHANCE_MARGIN
        if (best is None and (not retry or helped)) or (helped and best is not None and gain > best[0]):
            finding.verified = _verified(context.metric, base if stack else before, after, helped, stack)
        if helped and (best is None or gain > best[0]):  # the best of the candidates that help
            best = (gain, candidate, measurements)
    return best, largest


def settle(
    finding: Finding, largest: tuple[float, dict[str, Any]], stack: dict[str, Any], context: Context, probe: Probes
) -> None:
    """Makes ``finding`` an info when no fix tried gains :func:`clear_gain`: the run is not "clearly worse than it
    could be". A gain under twice the bar is one probe's word and is measured again: when the probe was shorter than
    the config's fit, over whole fits (the first seed's, and the next seed's too unless the first clears twice the
    bar; a fix they prove is offered), else with the next seed; the mean of the gains decides. A finding whose
    candidates were not all tried, or whose measurement could not run again (the budget), stays a warning.
    ``largest``: the largest gain of a candidate and the candidate; ``stack``: the fixes it was tried on top of."""
    gain, candidate = largest
    verified = finding.verified or {}
    if not math.isfinite(gain) or verified.get("skipped"):  # nothing measured, or not every fix tried
        return
    clear, how = clear_gain(context), "the probe"
    if gain < 2 * clear:
        whole = bool(context.truncated)
        gains, first = ([] if whole else [gain]), None
        for seed in [probe.seed, probe.seed + 1] if whole else [probe.seed + 1]:
            before, after = probe(stack, seed, whole)[0], probe({**stack, **candidate}, seed, whole)[0]
            if before is None or after is None or not math.isfinite(before):
                return  # not measured again: the warning stands
            gains.append(after - before)
            first = first or (before, after)
            if whole and gains[0] >= 2 * clear:
                break
        gain = sum(gains) / len(gains)
        how = f"{'whole fits' if whole else 'probes'}, {len(gains) if whole else 2} seeds"
        if whole and finding.fix is None and gain >= clear and first is not None:
            finding.fix = candidate
            finding.verified = _verified(context.metric, first[0], first[1], True, stack, whole=True)
    if gain < clear - 1e-6:
        finding.severity = "info"
        if finding.verified is not None:
            finding.verified.update(gain=gain, needed=clear, measured=how)


def whole_fit(findings: list[Finding], context: Context, probe: Probes, fixes: dict[str, Any]) -> list[Finding]:
    """The verified ``fixes`` of a shortened probe, trained for the config's own epochs: what only a whole fit shows
    (the fixed net overfitting by its last epoch) is a new finding, with the fix that wins back the most, verified
    over the whole fit too."""
    if not fixes:
        return []
    before, found, _ = probe(fixes, whole=True)
    if before is None:
        return []
    clear, added = clear_gain(context), []
    known = {(f.kind, f.where) for f in findings}
    for finding in found:
        if finding.severity == "info" or (finding.kind, finding.where) in known or not finding.candidates:
            continue
        best: tuple[float, dict[str, Any]] | None = None
        for candidate in finding.candidates[:TRIES]:
            if set(candidate) & set(fixes):  # written after the fixes, it would not replace them
                continue
            after = probe({**fixes, **candidate}, whole=True)[0]
            if after is not None and after - before >= clear and (best is None or after > best[0]):
                best = (after, candidate)
        if best is None or not _confirmed(best[0] - before, best[1], fixes, clear, probe):
            continue
        finding.fix = best[1]
        finding.verified = _verified(context.metric, before, best[0], True, fixes, whole=True)
        finding.message = f"With the other fixes, over the whole fit: {finding.message}"
        added.append(finding)
    return added


def _confirmed(gain: float, candidate: dict[str, Any], fixes: dict[str, Any], clear: float, probe: Probes) -> bool:
    """Whether a whole fit's ``gain`` from ``candidate`` on top of ``fixes`` clears ``clear``: a gain under twice the
    bar is one seed's word, so both whole fits run again with the next seed and the mean of the two gains decides."""
    if gain >= 2 * clear:
        return True
    seed = probe.seed + 1
    before, after = probe(fixes, seed, whole=True)[0], probe({**fixes, **candidate}, seed, whole=True)[0]
    if before is None or after is None or not math.isfinite(before):
        return False
    return (gain + after - before) / 2 >= clear - 1e-6


def clear_gain(context: Context) -> float:
    """The metric gain a verified fix must reach for its finding to stay a warning: :data:`CLEAR_GAIN` points, and
    for accuracy at least :data:`CLEAR_ROWS` validation rows."""
    rows = len(context.view.val) if context.classification else 0
    return max(T.CLEAR_GAIN, T.CLEAR_ROWS / rows) if rows else T.CLEAR_GAIN


def _verified(
    metric: str, before: float | None, after: float | None, helped: bool, stack: dict[str, Any], whole: bool = False
) -> dict[str, Any]:
    """A finding's ``verified``: ``with`` the fixes applied in both runs, ``whole`` when both were whole fits."""
    verified: dict[str, Any] = {"metric": metric, "before": before, "after": after, "helped": helped}
    if stack:
        verified["with"] = stack
    if whole:
        verified["whole fit"] = True
    return verified
