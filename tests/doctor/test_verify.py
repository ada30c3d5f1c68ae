"""The doctor's verification (nnlit/doctor/verify.py) on crafted probe scores: which fix is kept, and when a warning
stays one."""

import types

import pytest

from nnlit.diagnosis import Finding
from nnlit.diagnosis import thresholds as T
from nnlit.doctor import Diagnosis
from nnlit.doctor.verify import Probes, verify

FIX = {"model.init_args.dropout": 0.2}


def context(score=0.80, chance=0.5, rows=100, truncated=False):
    view = types.SimpleNamespace(val=range(rows))
    return types.SimpleNamespace(
        score=score, chance=chance, metric="val/acc", classification=True, view=view, truncated=truncated
    )


def run(findings, ctx, scores, calls=None):
    """Verifies ``findings``; the probe with a fix ``f`` (``{}`` for none), seed ``s`` and whole fit ``w`` scores
    ``scores[(bool(f), s, w)]`` (``scores[(bool(f), s)]`` for a probe-length fit)."""

    def rerun(fix, epochs, seed):
        key = (bool(fix), seed) if epochs is not None else (bool(fix), seed, True)
        if calls is not None:
            calls.append(key)
        return scores[key], [], None

    probe = Probes(rerun, (ctx.score, [], None), epochs=5, seed=0, start=0.0, budget=1e9)
    verify(findings, ctx, probe, runs={})
    return findings


def one(kind, scores, calls=None, where="network.act1", candidates=(FIX,), **kw):
    found = Finding(kind, "warning", "…", where=where)
    found.candidates = [dict(c) for c in candidates]
    return run([found], context(**kw), scores, calls)[0]


@pytest.mark.parametrize(
    ("after", "kinds", "offered"),
    [
        (0.34, ("dead_relu",), True),  # the finding gone with the score unchanged
        (0.34, ("dead_relu", "no_signal"), False),  # at chance: gone is not enough …
        (0.36, ("dead_relu", "no_signal"), False),  # … nor a gain by noise
        (0.80, ("dead_relu", "no_signal"), True),  # a score well off chance
    ],
)
def test_with_validation_at_chance_only_a_gain_verifies_a_fix(after, kinds, offered):
    fix = {"model.init_args.activation": "leaky_relu"}
    found = [Finding(k, "warning", "…", where="network.act1" if k == "dead_relu" else "val/acc") for k in kinds]
    found[0].candidates = [fix]
    run(found, context(score=0.34, chance=0.34), {(True, 0): after, (False, 1): 0.34, (True, 1): after})
    assert (found[0].fix == fix) is offered and found[0].verified["helped"] is offered


def test_a_warning_whose_verified_fix_gains_nothing_becomes_an_info():
    # the fix cures the measurement and keeps the score: offered, but the run lost nothing to the finding
    calls = []
    found = one("dead_relu", {(True, 0): 0.80, (False, 1): 0.78, (True, 1): 0.78}, calls)
    assert found.severity == "info" and found.fix == FIX
    assert found.verified["gain"] == 0.0 and found.verified["needed"] == T.CLEAR_GAIN
    assert calls == [(True, 0), (False, 1), (True, 1)]  # a gain under twice the bar is probed with a second seed
    assert Diagnosis([found], 1.0).healthy and Diagnosis([found], 1.0).fixes() == {}  # an info's fix is not applied


def test_a_clear_gain_keeps_the_warning_and_one_seeds_luck_does_not():
    calls = []  # +0.10 on the first seed: clear at once, no second probe
    assert one("dead_relu", {(True, 0): 0.90}, calls).severity == "warning" and calls == [(True, 0)]
    # +0.03 on seed 0 (under twice the bar), +0.03 on seed 1: the mean gain clears the bar
    assert one("dead_relu", {(True, 0): 0.83, (False, 1): 0.70, (True, 1): 0.73}).severity == "warning"
    # +0.03 on seed 0, -0.01 on seed 1: a mean of +0.01, under the bar
    found = one("dead_relu", {(True, 0): 0.83, (False, 1): 0.70, (True, 1): 0.69})
    assert found.severity == "info" and found.verified["gain"] == pytest.approx(0.01)


def test_the_bar_is_one_validation_row_on_small_tables():
    # 30 validation rows: one row is 0.033, above CLEAR_GAIN; a gain of one row on both seeds is enough
    row = 1 / 30
    found = one("dead_relu", {(True, 0): 0.80 + row, (False, 1): 0.80, (True, 1): 0.80 + row}, rows=30)
    assert found.severity == "warning"
    found = one("dead_relu", {(True, 0): 0.80 + row, (False, 1): 0.80, (True, 1): 0.80}, rows=30)
    assert found.severity == "info" and found.verified["needed"] == pytest.approx(row)


def test_a_shortened_probe_is_weighed_by_the_whole_fit_which_can_prove_a_fix():
    # 15 epochs of a longer config: the fix does nothing yet; over the whole fit it wins 0.30 back, so the warning
    # stays, with the fix the whole fit proved
    found = one("underfitting", {(True, 0): 0.79, (False, 0, True): 0.65, (True, 0, True): 0.95}, truncated=True)
    assert found.severity == "warning" and found.fix == FIX
    assert found.verified == {"metric": "val/acc", "before": 0.65, "after": 0.95, "helped": True, "whole fit": True}
    # nor over the whole fit, on either seed: an info, saying how it was measured
    whole = {(False, 0, True): 0.95, (True, 0, True): 0.95, (False, 1, True): 0.9, (True, 1, True): 0.91}
    found = one("underfitting", {(True, 0): 0.79, **whole}, truncated=True)
    assert found.severity == "info" and found.fix is None
    assert found.verified["gain"] == pytest.approx(0.005) and found.verified["measured"] == "whole fits, 2 seeds"


def test_a_warning_the_budget_could_not_weigh_stays_a_warning(monkeypatch):
    import nnlit.doctor.verify as verification

    clock = [0.0]
    monkeypatch.setattr(verification.time, "perf_counter", lambda: clock[0])
    found = Finding("dead_relu", "warning", "…", where="network.act1")
    found.candidates = [FIX]
    ran = []

    def rerun(fix, epochs, seed):  # each probe takes 10 s of the 12 s budget
        ran.append(seed)
        clock[0] += 10.0
        return 0.80, [], None

    # the first probe took 5 s (1 s an epoch): the fix's probe fits the budget, the second seed's do not
    probe = Probes(rerun, (0.80, [], None), epochs=5, seed=0, start=0.0, budget=12.0, first_seconds=5.0)
    verify([found], context(), probe, runs={})
    assert ran == [0] and found.severity == "warning" and found.fix == FIX  # one seed's "no gain" is not enough
    assert "Probes(2 run, 5 epochs, seed 0" in repr(probe)


@pytest.mark.parametrize("kind", ["id_column", "leakage", "duplicate_rows"])
def test_kinds_that_inflate_the_validation_score_stay_warnings(kind):
    # removing them lowers the validation score, which is what a fix that helps on new rows does here
    assert one(kind, {(True, 0): 0.70, (False, 1): 0.8, (True, 1): 0.7}).severity == "warning"


def test_a_finding_with_no_fix_to_try_stays_a_warning():
    calls = []
    assert one("underfitting", {}, calls, candidates=()).severity == "warning" and calls == []


def test_a_fix_of_other_keys_is_verified_on_top_of_the_fixes_kept_before_it():
    lr = Finding("lr_too_high", "warning", "…", where="optimizer")
    lr.candidates = [{"model.init_args.optimizer.init_args.lr": 0.001}]
    decay = Finding("weight_decay_too_high", "warning", "…", where="optimizer")
    decay.candidates = [{"model.init_args.optimizer.init_args.weight_decay": 0.0}]
    lr.effect, decay.effect = 2.0, 1.0  # the learning rate first

    def rerun(fix, epochs, seed):
        score = 0.1 + 0.1 * ("model.init_args.optimizer.init_args.lr" in fix)
        return score + 0.3 * ("model.init_args.optimizer.init_args.weight_decay" in fix), [], None

    probe = Probes(rerun, (0.1, [], None), epochs=5, seed=0, start=0.0, budget=1e9)
    ctx = types.SimpleNamespace(score=0.1, chance=0.0, metric="val/r2", classification=False, truncated=False)
    verify([lr, decay], ctx, probe, runs={})
    assert decay.verified["with"] == lr.fix and decay.verified["before"] == pytest.approx(0.2)
    assert decay.verified["after"] == pytest.approx(0.5) and decay.severity == "warning"
    assert Diagnosis([lr, decay], 1.0).fixes() == {**lr.fix, **decay.fix}


def test_the_whole_fit_adds_what_only_it_shows_with_the_fix_it_proves():
    from nnlit.doctor.verify import whole_fit

    lr = {"model.init_args.optimizer.init_args.lr": 0.001}
    stop = {"trainer.max_epochs": 20}

    def rerun(fix, epochs, seed):
        assert epochs is None  # whole fits only
        if "trainer.max_epochs" in fix:
            return 0.45, [], None
        late = Finding("overfitting", "warning", "The validation loss rose", where="val/loss")
        late.candidates = [{"model.init_args.dropout": 0.2}, stop]
        dropout = "model.init_args.dropout" in fix
        return (0.30 if dropout else 0.21), ([] if dropout else [late]), None

    probe = Probes(rerun, (0.1, [], None), epochs=15, seed=0, start=0.0, budget=1e9)
    ctx = types.SimpleNamespace(score=0.1, chance=0.0, metric="val/r2", classification=False, truncated=True)
    known = Finding("lr_too_high", "warning", "…", where="optimizer", fix=lr)
    added = whole_fit([known], ctx, probe, lr)
    assert [(f.kind, f.fix) for f in added] == [("overfitting", stop)]  # the candidate that wins back the most
    assert added[0].verified == {
        "metric": "val/r2",
        "before": 0.21,
        "after": 0.45,
        "helped": True,
        "with": lr,
        "whole fit": True,
    }
    assert added[0].message.startswith("With the other fixes, over the whole fit: The validation loss rose")
    assert whole_fit([known], ctx, probe, {}) == []  # no fix: nothing to train


def test_a_finding_no_fix_helped_is_tried_again_on_top_of_the_fixes_kept_after_it():
    wide = {"model.init_args.hidden": [64, 64]}
    light = {"model.init_args.dropout": 0.1}
    capacity = Finding("too_little_capacity", "warning", "…", where="train", effect=2.0)
    capacity.candidates = [wide]
    dropout = Finding("underfitting", "warning", "…", where="model", effect=1.0)
    dropout.candidates = [light]

    def rerun(fix, epochs, seed):  # the wider net helps only once the heavy dropout is gone
        light_now = "model.init_args.dropout" in fix
        score = 0.6 + 0.2 * light_now + 0.15 * (light_now and "model.init_args.hidden" in fix)
        return score, [] if light_now else [Finding("too_little_capacity", "warning", "…", where="train")], None

    probe = Probes(rerun, (0.6, [], None), epochs=5, seed=0, start=0.0, budget=1e9)
    verify([capacity, dropout], context(score=0.6), probe, runs={})
    assert dropout.fix == light and capacity.fix == wide and capacity.severity == "warning"
    assert capacity.verified == {
        "metric": "val/acc",
        "before": 0.8,
        "after": pytest.approx(0.95),
        "helped": True,
        "with": light,
    }


def test_a_whole_fit_gain_of_one_row_is_confirmed_with_a_second_seed():
    from nnlit.doctor.verify import whole_fit

    stop = {"trainer.max_epochs": 13}

    def rerun(fix, epochs, seed):  # 36 validation rows: stopping early wins one row on seed 0, none on seed 1
        if "trainer.max_epochs" in fix:
            return (35 if seed == 0 else 34) / 36, [], None
        late = Finding("overfitting", "warning", "…", where="val/loss")
        late.candidates = [stop]
        return 34 / 36, [late], None

    probe = Probes(rerun, (0.5, [], None), epochs=15, seed=0, start=0.0, budget=1e9)
    ctx = context(score=0.5, rows=36, truncated=True)
    assert whole_fit([], ctx, probe, {"model.init_args.dropout": 0.1}) == []
