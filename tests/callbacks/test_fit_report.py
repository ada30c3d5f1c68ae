import functools
import importlib.util

import lightning as L
import pytest
import torch
from helpers import quiet_trainer
from lightning.pytorch.loggers import CSVLogger

from nnlit import BinaryMLP, TabularDataModule
from nnlit.callbacks import DeadReLUCounter, FitReport, GradientSaturationMonitor, NegativeInit


def fit(model, callbacks, tmp_path, epochs=3):
    trainer = quiet_trainer(tmp_path, max_epochs=epochs, logger=CSVLogger(tmp_path), callbacks=callbacks)
    L.seed_everything(0)
    trainer.fit(model, datamodule=TabularDataModule(dataset="circle", n_samples=300))
    return trainer


def row(text, first_cell):
    (line,) = [line for line in text.splitlines() if line.split() and line.split()[0] == first_cell]
    return line.split()


def test_dead_layer_report(tmp_path):
    report = FitReport(print_report=False)
    counter = DeadReLUCounter(threshold=0.5)
    model = BinaryMLP(in_features=2, hidden=[16, 16])
    with pytest.warns(UserWarning, match="dead ReLUs"):
        trainer = fit(model, [NegativeInit(modules=["network.linear2"]), counter, report], tmp_path)
    text = report.text
    params = sum(p.numel() for p in model.parameters())
    assert text.splitlines()[0] == f"nnlit fit report: BinaryMLP: {params:,} parameters, 3 epochs"
    metrics = trainer.callback_metrics
    assert row(text, "loss")[1:] == [f"{float(metrics['train/loss']):.4g}", f"{float(metrics['val/loss']):.4g}"]
    assert row(text, "acc")[1:] == [f"{float(metrics['train/acc']):.4g}", f"{float(metrics['val/acc']):.4g}"]
    assert row(text, "network.act2")[1:] == ["ReLU", "16/16"]  # every unit of the killed layer
    dead_first = counter.history[-1]["dead"]["network.act1"]
    assert row(text, "network.act1")[1:] == ["ReLU", f"{dead_first}/16"]
    assert row(text, "network.linear1")[1:3] == ["Linear", "2→16"] and row(text, "network.linear1")[3] == "48"
    assert "grad norm" not in text and "saturated" not in text  # no GradientSaturationMonitor: columns left out
    (advice,) = [line for line in text.splitlines() if line.startswith("advice:")]
    assert "16/16 units (100%) of network.act2" in advice
    assert (tmp_path / "lightning_logs" / "version_0" / "report.txt").read_text() == text


def test_saturation_gradients_and_frozen_layers(tmp_path):
    from nnlit.callbacks import FreezeLayers

    report, monitor = FitReport(print_report=False), GradientSaturationMonitor()
    model = BinaryMLP(
        in_features=2, hidden=[8, 8], activation="tanh", optimizer=functools.partial(torch.optim.SGD, lr=0.1)
    )
    fit(model, [FreezeLayers(modules=["network.linear1"]), monitor, report], tmp_path, epochs=2)
    text = report.text
    frozen = sum(p.numel() for p in model.network.linear1.parameters())
    assert f"{frozen:,} frozen, 2 epochs" in text.splitlines()[0]
    last = monitor.history[-1]
    assert row(text, "network.linear1")[1:4] == ["Linear", "2→8", "(frozen)"]
    assert row(text, "network.linear2")[-1] == f"{last['grad_norm']['network.linear2']:.4g}"
    assert row(text, "network.act1")[1:] == ["Tanh", f"{last['saturation']['network.act1']:.1%}"]
    assert "first / last" not in text  # no ratio while the first layer is frozen


def test_printed_with_rich_or_plain(tmp_path, capsys, monkeypatch):
    pytest.importorskip("rich")
    fit(BinaryMLP(in_features=2, hidden=[4]), [FitReport()], tmp_path, epochs=1)
    out = capsys.readouterr().out
    assert "nnlit fit report" in out and "network.linear1" in out and "│" in out  # rich draws box lines
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "rich" else real_find_spec(name))
    report = FitReport()
    fit(BinaryMLP(in_features=2, hidden=[4]), [report], tmp_path, epochs=1)
    assert capsys.readouterr().out == report.text + "\n"


def test_nnlit_fit_prints_it_unless_told_not_to(tmp_path, capsys, monkeypatch):
    from pathlib import Path

    from nnlit.cli import main

    monkeypatch.chdir(tmp_path)
    config = Path(__file__).resolve().parents[2] / "configs" / "demos" / "dead_relu.yaml"
    args = ["fit", "--config", str(config), "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false"]
    main(args)
    assert "nnlit fit report: MulticlassMLP" in capsys.readouterr().out
    main([*args, "--report=false"])
    assert "nnlit fit report" not in capsys.readouterr().out


def test_the_report_applies_the_cheap_rules_and_names_the_doctor(tmp_path):
    report = FitReport(print_report=False)
    model = BinaryMLP(in_features=2, hidden=[16, 16], optimizer=functools.partial(torch.optim.Adam, lr=50.0))
    fit(model, [report], tmp_path, epochs=4)
    kinds = [f.kind for f in report.findings]
    assert "lr_too_high" in kinds and "dead_relu" not in kinds  # no monitor: no word about dead units
    assert "diagnosis: warning lr_too_high: Adam with lr=50 is far above its usual range" in report.text
    assert "Run `nnlit doctor` with this fit's config and overrides" in report.text


def test_a_healthy_fit_gets_no_diagnosis(tmp_path):
    report = FitReport(print_report=False)
    model = BinaryMLP(in_features=2, hidden=[16, 16], optimizer=functools.partial(torch.optim.Adam, lr=0.01))
    fit(model, [report, DeadReLUCounter(), GradientSaturationMonitor()], tmp_path, epochs=8)
    assert report.findings == [] and "diagnosis:" not in report.text and "nnlit doctor" not in report.text
    assert len(report.epochs) == 8 and report.epochs[-1]["train/loss"] < report.epochs[0]["train/loss"]
