"""The lessons in configs/demos/ show what the README says they show."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch.utilities.model_summary import ModelSummary

from nnlit.callbacks import DeadReLUCounter, GradientSaturationMonitor
from nnlit.lightning_cli import NNLitCLI, build

DEMOS = Path(__file__).resolve().parents[1] / "configs" / "demos"


def fit(name: str, *overrides: str) -> NNLitCLI:
    args = ["--config", str(DEMOS / f"{name}.yaml"), "--trainer.enable_progress_bar=false", *overrides]
    cli = build(args)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return cli


def callback(cli: NNLitCLI, cls: type) -> object:
    (found,) = [c for c in cli.trainer.callbacks if isinstance(c, cls)]
    return found


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_xor_needs_a_hidden_layer():
    linear = fit("xor_linear")
    assert float(linear.trainer.callback_metrics["val/acc"]) <= 0.75
    hidden = fit("xor_hidden")
    assert float(hidden.trainer.callback_metrics["val/acc"]) >= 0.99


def test_vanishing_gradients_with_sigmoid_not_with_relu(recwarn):
    sigmoid = fit("vanishing_sigmoid")
    assert callback(sigmoid, GradientSaturationMonitor).history[-1]["ratio"] < 1e-3
    assert any("vanishing gradients" in str(w.message) for w in recwarn)
    recwarn.clear()
    relu = fit("vanishing_relu")
    assert all(h["ratio"] > 0.01 for h in callback(relu, GradientSaturationMonitor).history)  # README: above 0.01
    assert not any("vanishing gradients" in str(w.message) for w in recwarn)


def test_negative_init_kills_relus_and_leaky_units_recover(recwarn):
    dead = callback(fit("dead_relu"), DeadReLUCounter)
    assert [h["dead"]["network.act2"] for h in dead.history] == [16] * 5
    assert any("of network.act2 output 0 for every training sample" in str(w.message) for w in recwarn)
    leaky = callback(fit("dead_leaky_relu"), DeadReLUCounter)
    never_positive = [h["never_positive"]["network.act2"] for h in leaky.history]
    assert never_positive[0] == 16 and never_positive[-1] <= 4  # README: from 1.0 to 0.25 or below


def test_finetune_from_pretrained_body():
    pretrain = fit("pretrain")
    assert float(pretrain.trainer.callback_metrics["val/acc"]) >= 0.9
    body = pretrain.model.network.linear1.weight.detach().clone()
    finetune = fit("finetune", "--trainer.max_epochs=3")  # the frozen phase only
    assert torch.equal(finetune.model.network.linear1.weight, body)
    assert float(finetune.trainer.callback_metrics["val/acc"]) >= 0.8
    tuned = fit("finetune")  # frozen, then unfrozen at epoch 3 with lr x 0.1
    assert not torch.equal(tuned.model.network.linear1.weight, body)
    assert [g["lr"] for g in tuned.trainer.optimizers[0].param_groups] == [0.01, pytest.approx(0.001)]
    assert float(tuned.trainer.callback_metrics["val/acc"]) >= 0.95


def test_capacity_summary_shows_46_parameters(caplog):
    with caplog.at_level("INFO"):
        cli = fit("capacity")
    summary = ModelSummary(cli.model, max_depth=2)
    assert summary.total_parameters == 46
    layers = dict(zip(summary.layer_names, summary.param_nums))
    assert (layers["network.linear1"], layers["network.output"]) == (36, 10)
    assert "46        Total params" in caplog.text and "network.linear1   | Linear             | 36" in caplog.text
    # a lesson about size that trains well: `nnlit doctor` reported 3 epochs of it as underfitting (val/acc 0.57)
    assert float(cli.trainer.callback_metrics["val/acc"]) >= 0.95
