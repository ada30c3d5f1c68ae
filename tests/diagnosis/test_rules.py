"""The diagnosis rules on crafted measurements: each fires where it should and stays quiet where it should, gives no
advice about a layer kind the net does not have, and no fix the config already has."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest

from nnlit.diagnosis import KINDS, Finding, healthy, ranked
from nnlit.diagnosis import config as C
from nnlit.diagnosis import table as D
from nnlit.diagnosis import thresholds as T
from nnlit.diagnosis import training as R

RNG = np.random.default_rng(0)


# ---------------------------------------------------------------- the Finding type
def test_a_finding_refuses_an_unknown_kind_or_severity():
    with pytest.raises(ValueError, match=r"Unknown finding kind 'dead_relus'\. Valid kinds: bad_init, class_imbalance"):
        Finding("dead_relus", "warning", "…")
    with pytest.raises(ValueError, match=r"`severity` must be one of error, warning, info, got 'fatal'"):
        Finding("dead_relu", "fatal", "…")


def test_findings_rank_errors_first_then_by_effect_and_serialise_to_json():
    findings = [
        Finding("overfitting", "warning", "a", effect=0.2),
        Finding("class_imbalance", "info", "b", effect=50),
        Finding("nan_loss", "error", "c", evidence={"loss": {"value": "nan", "threshold": 0, "op": "finite"}}),
        Finding("dead_relu", "warning", "d", effect=0.9),
    ]
    assert [f.kind for f in ranked(findings)] == ["nan_loss", "dead_relu", "overfitting", "class_imbalance"]
    data = json.loads(json.dumps([f.to_dict() for f in findings]))
    assert set(data[0]) == {"kind", "severity", "where", "evidence", "message", "fix", "verified"}
    assert not healthy(findings) and healthy([findings[1]])


def test_the_fix_line_is_what_nnlit_fit_takes():
    f = Finding("id_column", "warning", "…", fix={"data.init_args.features": ["a", "b"], "trainer.max_epochs": 5})
    assert f.fix_line() == '--data.init_args.features=\'["a", "b"]\' --trainer.max_epochs=5'


def test_every_kind_of_the_issue_is_in_the_vocabulary():
    issue = (
        "constant_column id_column duplicate_rows conflicting_labels leakage class_imbalance missing_values "
        "unscaled_inputs too_few_rows wrong_head bad_init symmetric_init dead_relu saturation vanishing_gradients "
        "exploding_gradients nan_loss lr_too_high lr_too_low too_little_capacity overfitting no_signal underfitting"
    ).split()
    assert set(issue) <= set(KINDS)


def test_the_package_imports_nothing_from_the_models_or_the_command():
    for path in Path(R.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(("nnlit.models", "nnlit.cli", "nnlit.doctor")), (path, node.module)


# ---------------------------------------------------------------- the table
def test_table_rules_on_a_crafted_table():
    rows = 300
    y = RNG.integers(0, 2, rows)
    x = np.stack(
        [np.arange(rows, dtype=float), np.full(rows, 3.0), RNG.normal(size=rows), y + 0.001 * RNG.normal(size=rows)], 1
    )
    names = ["row_id", "constant", "noise", "leak"]
    assert [f.where for f in D.id_columns(x, names, features_fix=True)] == ["row_id"]
    assert D.id_columns(x, names, features_fix=True)[0].fix == {
        "data.init_args.features": ["constant", "noise", "leak"]
    }
    assert [f.where for f in D.constant_columns(x, names)] == ["constant"]
    assert [f.where for f in D.leakage(x[:200], y[:200], x[200:], y[200:], names)] == ["leak"]


def test_a_continuous_feature_is_not_an_id_and_an_honest_feature_is_not_a_leak():
    x = RNG.normal(size=(500, 1))  # every value distinct, but floats in no order
    assert D.id_columns(x, ["height"]) == []
    y = (x[:, 0] + RNG.normal(size=500) > 0).astype(np.int64)  # a strong feature, not a perfect one
    assert D.leakage(x[:400], y[:400], x[400:], y[400:], ["height"]) == []


def test_duplicates_conflicts_imbalance_missing_and_scale():
    x = np.repeat(RNG.normal(size=(10, 2)), 10, axis=0)
    y = RNG.integers(0, 2, 100)
    assert D.duplicate_rows(x, y)[0].kind == "duplicate_rows"
    assert D.conflicting_labels(x, y)[0].evidence["conflicting share"]["value"] > T.CONFLICT_FRACTION
    assert D.class_imbalance(np.array([0] * 100 + [1] * 9))[0].severity == "info"
    assert D.class_imbalance(np.array([0] * 50 + [1] * 50)) == []
    holes = RNG.normal(size=(100, 2))
    holes[:40, 1] = np.nan
    assert [f.where for f in D.missing_values(holes, ["a", "b"])] == ["b"]
    big = np.stack([RNG.normal(size=100), 1e4 + 300 * RNG.normal(size=100)], 1)
    finding = D.unscaled_inputs(big, ["a", "income"], standardize=False)[0]
    assert finding.fix == {"data.init_args.standardize": True}
    assert D.unscaled_inputs(RNG.normal(size=(100, 2)) * 3, ["a", "b"], standardize=False) == []


def test_too_few_rows():
    assert D.too_few_rows(rows=40, parameters=100)[0].evidence["training rows"]["threshold"] == T.MIN_ROWS
    assert D.too_few_rows(rows=400, parameters=100_000)[0].kind == "too_few_rows"
    assert D.too_few_rows(rows=2400, parameters=4500) == []


# ---------------------------------------------------------------- the config
def test_wrong_head():
    assert C.wrong_head("binary", "classification", 3)[0].fix == {"model.class_path": "nnlit.MulticlassMLP"}
    assert C.wrong_head("multiclass", "regression", None)[0].fix == {"model.class_path": "nnlit.RegressionMLP"}
    assert C.wrong_head("multiclass", "classification", 2) == []
    assert C.wrong_head("binary", "classification", 2) == []


def test_saturating_stack_offers_no_fix_the_config_already_has():
    config = {"model.init_args.activation": "sigmoid", "model.init_args.norm": "batch"}
    finding = C.saturating_stack("sigmoid", [10] * 6, None, config={"model.init_args.activation": "relu"})[0]
    assert finding.candidates == [{"model.init_args.norm": "batch"}]
    assert C.saturating_stack("sigmoid", [10] * 6, "batch", config=config) == []


@pytest.mark.parametrize(
    ("optimizer", "lr", "kind"),
    [
        ("torch.optim.SGD", 1e6, "lr_too_high"),
        ("Adam", 5.0, "lr_too_high"),
        ("Adam", 1e-8, "lr_too_low"),
        ("SGD", 0.1, None),
    ],
)
def test_learning_rate_far_outside_the_optimizers_range(optimizer, lr, kind):
    assert [f.kind for f in C.learning_rate_range(optimizer, lr)] == ([kind] if kind else [])


@pytest.mark.parametrize(
    ("optimizer", "decay", "found"),
    [("Adam", 1.0, True), ("torch.optim.SGD", 0.5, True), ("AdamW", 1.0, False), ("Adam", 0.1, False)],
)
def test_a_weight_decay_added_to_the_gradient_above_its_usual_range(optimizer, decay, found):
    findings = C.coupled_weight_decay(optimizer, decay)
    assert [f.kind for f in findings] == (["weight_decay_too_high"] if found else [])
    if found:
        assert findings[0].evidence["weight_decay"] == {"value": decay, "threshold": T.COUPLED_DECAY, "op": ">"}
        assert findings[0].candidates[0] == {C.DECAY_KEY: 1e-4} and findings[0].where == "optimizer"


@pytest.mark.parametrize(
    ("optimizer", "options", "decay"),
    [
        ("Adam", {"weight_decay": 1.0}, 1.0),
        ("Adam", {"weight_decay": 1.0, "decoupled_weight_decay": True}, 0.0),  # AdamW's behaviour
        ("AdamW", {"weight_decay": 1.0}, 0.0),
        ("SGD", {"lr": 0.1}, 0.0),
    ],
)
def test_the_doctor_reads_the_coupled_weight_decay_of_the_models_optimizer(optimizer, options, decay):
    import functools

    import torch

    from nnlit.doctor.probes import optimizer_of

    model = torch.nn.Linear(2, 1)
    model.optimizer = functools.partial(getattr(torch.optim, optimizer), **{"lr": 1e-3, **options})
    assert optimizer_of(model) == (optimizer, options.get("lr", 1e-3), decay)


def test_high_dropout_on_a_narrow_net():
    assert C.high_dropout(0.6, [8, 8])[0].fix == {"model.init_args.dropout": 0.1}
    assert C.high_dropout(0.6, [128]) == []


# ---------------------------------------------------------------- training
def test_initial_loss_against_the_prior():
    prior = math.log(3)
    assert R.initial_loss(20.0, prior)[0].kind == "bad_init"
    assert R.initial_loss(prior * 1.05, prior) == []


def test_symmetric_units_fix_removes_the_initialisation_callback():
    kept = [{"class_path": "nnlit.callbacks.SavePlots"}]
    finding = R.symmetric_units({"network.linear1": 0.0}, ["ConstantInit"], kept)[0]
    assert (finding.severity, finding.fix) == ("error", {"trainer.callbacks": kept})
    assert R.symmetric_units({"network.linear1": 0.3}) == []


def test_no_dead_relu_advice_on_a_net_without_relus():
    dead = {"network.act1": (16, 16)}
    assert R.dead_units(dead, {"network.act1": "sigmoid"}) == []
    assert R.dead_units(dead, {"network.act1": "leaky_relu"}) == []
    assert R.dead_units(dead, {"network.act1": "relu"})[0].kind == "dead_relu"


def test_dead_relus_under_a_high_learning_rate_name_the_rate_not_leaky_relu():
    finding = R.dead_units({"a": (15, 16)}, {"a": "relu"}, lr_too_high=True)[0]
    assert "learning rate is too high" in finding.message and finding.fix is None
    assert R.dead_units({"a": (15, 16)}, {"a": "relu"})[0].fix == {"model.init_args.activation": "leaky_relu"}
    already = {"model.init_args.activation": "leaky_relu"}
    assert R.dead_units({"a": (15, 16)}, {"a": "relu"}, config=already)[0].fix is None


def test_saturation():
    assert R.saturated_units({"act": 0.9})[0].fix == {"model.init_args.activation": "relu"}
    assert R.saturated_units({"act": 0.9}, config={"model.init_args.activation": "relu"})[0].fix is None
    assert R.saturated_units({"act": 0.2}) == []


def test_vanishing_gradient_advice_fits_the_net():
    sigmoid = R.gradient_ratio(1e-7, 1.0, activations=["sigmoid"] * 6)[0]
    assert "sigmoid" in sigmoid.message and "initialisation" not in sigmoid.message
    dead = R.gradient_ratio(1e-7, 1.0, activations=["relu"] * 2, dead_share=0.9)[0]
    assert "dead ReLU" in dead.message and dead.candidates == [{"model.init_args.activation": "leaky_relu"}]
    relu_alive = R.gradient_ratio(1e-7, 1.0, activations=["relu"] * 2, dead_share=0.0)[0]
    assert "ReLU" not in relu_alive.message and "sigmoid" not in relu_alive.message
    kept = [{"class_path": "nnlit.callbacks.SavePlots"}]
    constant = R.gradient_ratio(
        1e-7, 1.0, activations=["sigmoid"], init_callbacks=["ConstantInit"], callbacks_without_init=kept
    )
    assert constant[0].candidates[:2] == [
        {"trainer.callbacks": kept, "model.init_args.activation": "relu"},  # both causes at once first
        {"trainer.callbacks": kept},
    ]
    assert "ConstantInit" in constant[0].message
    assert R.gradient_ratio(300.0, 1.0)[0].kind == "exploding_gradients"
    assert R.gradient_ratio(0.2, 1.0) == [] and R.gradient_ratio(float("nan"), 1.0) == []


def test_update_ratios_use_the_median_layer():
    assert R.update_ratios({"a": 1e-7, "b": 2e-7, "c": 0.5})[0].kind == "lr_too_low"
    assert R.update_ratios({"a": 1e-3, "b": 1e-3, "c": 5.0}) == []


@pytest.mark.parametrize(
    ("losses", "kind"),
    [([1.1, 3.0, 6.5e6], "lr_too_high"), ([1.1, 1.1, 1.0999], "lr_too_low"), ([1.1, 0.5, 0.2], None), ([0.7], None)],
)
def test_loss_curve(losses, kind):
    assert [f.kind for f in R.loss_curve(losses)] == ([kind] if kind else [])


def test_one_rising_validation_loss_is_not_overfitting():
    assert R.overfitting([1.0, 0.5, 0.3, 0.2], [1.0, 0.55, 0.5, 0.52]) == []
    found = R.overfitting([1.0, 0.4, 0.1, 0.02, 0.005], [1.0, 0.5, 0.6, 0.9, 1.4])
    assert found[0].kind == "overfitting" and found[0].candidates[1] == {"trainer.max_epochs": 2}


def test_chance_level_and_the_reference_model():
    assert R.chance_level(0.99, 0.34, chance=1 / 3)[0].fix is None  # no signal: no config change helps
    assert R.chance_level(None, 0.34, chance=1 / 3)[0].kind == "underfitting"
    assert R.chance_level(0.9, 0.88, chance=1 / 3) == []
    assert R.reference_gap(0.6, 0.9, "ridge regression", "val/r2", hidden=[4])[0].fix == {
        "model.init_args.hidden": [64, 64]
    }
    assert R.reference_gap(0.89, 0.9, "ridge regression", "val/r2") == []


def test_overfit_one_batch_and_nan_loss():
    assert R.overfit_batch(1.0, 0.9, rows=32, steps=200)[0].kind == "too_little_capacity"
    assert R.overfit_batch(1.0, float("nan"), rows=32, steps=200) == []
    finding = R.nan_loss(float("nan"), 0, 16, "a learning rate too high.")[0]
    assert finding.severity == "error" and json.dumps(finding.to_dict())  # NaN written as text: valid JSON


def test_a_cause_explains_its_symptoms():
    cause = R.dead_units({"a": (16, 16)}, {"a": "relu"})
    symptoms = R.chance_level(0.34, 0.33, chance=1 / 3) + R.overfit_batch(1.0, 0.95, rows=32, steps=200)
    assert [f.kind for f in R.explained(cause + symptoms)] == ["dead_relu"]
    assert R.explained(symptoms) == symptoms
    diverged = R.loss_curve([1.1, 5.0, 9.0]) + R.overfitting([1.0, 0.4, 0.1, 0.02, 0.005], [1.0, 0.5, 0.6, 0.9, 1.4])
    assert [f.kind for f in R.explained(diverged)] == ["lr_too_high"]


def test_ranking_puts_causes_before_symptoms():
    findings = [
        Finding("overfitting", "warning", "…", effect=6.0),
        Finding("lr_too_high", "warning", "…", effect=1.0),
        Finding("symmetric_init", "error", "…"),
    ]
    assert [f.kind for f in ranked(findings)] == ["symmetric_init", "lr_too_high", "overfitting"]


def test_no_signal_from_the_reference_without_the_training_score():
    assert R.nothing_learnable(0.34, 0.32, "logistic regression", chance=1 / 3)[0].fix is None
    assert R.nothing_learnable(0.34, 0.9, "logistic regression", chance=1 / 3) == []  # the linear model learns
    assert R.nothing_learnable(None, 0.3, "logistic regression", chance=1 / 3) == []
