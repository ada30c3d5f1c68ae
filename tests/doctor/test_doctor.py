"""nnlit doctor: the exit status, the JSON schema, --write-config round-tripping through nnlit fit, nnlit.diagnose
returning the same findings, the healthy quick start, and the learning-rate range test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import ROOT
from torch import nn

import nnlit
from nnlit.cli import main
from nnlit.diagnosis import KINDS, SEVERITIES
from nnlit.doctor.command import set_key
from nnlit.doctor.lr_range import lr_range_test

XOR_LINEAR = str(ROOT / "configs" / "demos" / "xor_linear.yaml")
QUICK = ["--data.init_args.n_samples=400", "--trainer.max_epochs=4"]

#: the JSON schema of `nnlit doctor --format json` (documented in docs/doctor.md)
FINDING_KEYS = {"kind", "severity", "where", "evidence", "message", "fix", "verified"}


def run(args, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["doctor", *args])
    out = capsys.readouterr()
    return exited.value.code, out.out, out.err


def check_schema(report):
    assert set(report) == {"healthy", "findings", "seconds"}
    assert isinstance(report["healthy"], bool) and isinstance(report["seconds"], float)
    for finding in report["findings"]:
        assert set(finding) == FINDING_KEYS
        assert finding["kind"] in KINDS and finding["severity"] in SEVERITIES
        assert finding["message"].endswith(f"(see docs/doctor.md#{finding['kind']}).")
        for evidence in finding["evidence"].values():
            assert set(evidence) == {"value", "threshold", "op"}
        assert finding["fix"] is None or all(isinstance(k, str) and "." in k for k in finding["fix"])
        if finding["verified"] is not None:
            assert {"metric", "before", "after", "helped"} <= set(finding["verified"])


def test_a_linear_net_on_xor_gets_a_verified_capacity_fix_json_and_exit_1(tmp_path, capsys):
    written = tmp_path / "fixed.yaml"
    code, out, _ = run(["--config", XOR_LINEAR, *QUICK, "--format", "json", f"--write-config={written}"], capsys)
    report = json.loads(out)
    check_schema(report)
    assert code == 1 and report["healthy"] is False
    first = report["findings"][0]
    assert first["kind"] == "too_little_capacity"
    assert first["fix"] == {"model.init_args.hidden": [64, 64]}
    assert first["verified"]["helped"] and first["verified"]["after"] > first["verified"]["before"]
    # the written config trains with nnlit fit and carries the fix
    assert "hidden:\n    - 64\n    - 64" in written.read_text()
    main(["fit", "--config", str(written), *QUICK, f"--trainer.default_root_dir={tmp_path}", "--report=false"])
    assert list(tmp_path.rglob("metrics.csv"))


def test_a_config_that_cannot_run_exits_2_with_one_line(tmp_path, capsys):
    code, _, err = run(["--config", str(tmp_path / "missing.yaml")], capsys)
    assert code == 2 and err.splitlines()[0].startswith("nnlit: error: --config") and "missing.yaml" in err
    code, _, err = run(["--config", XOR_LINEAR, "--model.init_args.hiden=[4]"], capsys)
    assert code == 2 and "hiden" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "0"], r"`--budget` must be a positive number of seconds, got 0\.0"),
        (["stray"], r"nnlit doctor takes config overrides as --key=value, got 'stray'"),
    ],
)
def test_bad_options_are_refused(args, message):
    from nnlit.doctor.command import main as doctor

    with pytest.raises(ValueError, match=message):
        doctor(["--config", XOR_LINEAR, *args])


def test_write_config_must_be_a_file(tmp_path):
    from nnlit.doctor.command import main as doctor

    with pytest.raises(ValueError, match=r"`--write-config` must be a file path, got the folder"):
        doctor(["--config", XOR_LINEAR, f"--write-config={tmp_path}"])


def test_set_key_builds_the_nested_keys():
    tree = {"trainer": {"max_epochs": 3}}
    set_key(tree, "trainer.callbacks", [{"class_path": "nnlit.callbacks.SavePlots"}])
    set_key(tree, "model.init_args.activation", "relu")
    assert tree == {
        "trainer": {"max_epochs": 3, "callbacks": [{"class_path": "nnlit.callbacks.SavePlots"}]},
        "model": {"init_args": {"activation": "relu"}},
    }
    with pytest.raises(ValueError, match=r"Cannot set 'trainer.max_epochs.x': 'max_epochs' is not a mapping"):
        set_key(tree, "trainer.max_epochs.x", 1)


def test_the_range_test_suggests_a_rate_and_refuses_a_flat_curve():
    torch.manual_seed(0)
    x = torch.randn(512, 4)
    y = (x[:, 0] > 0).long()
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    result = lr_range_test(net, nn.functional.cross_entropy, torch.optim.Adam, x, y, batch_size=64)
    assert 1e-4 <= result["suggestion"] <= 0.5 and result["reason"] == "minimum / 10"
    noise = torch.randint(0, 2, (512,))  # labels with no signal: no rate helps
    net = nn.Linear(4, 2, bias=False)
    flat = lr_range_test(net, nn.functional.cross_entropy, torch.optim.Adam, x * 0, noise, batch_size=64)
    assert flat["suggestion"] is None


@pytest.mark.slow
def test_the_healthy_quick_start_gets_no_error_or_warning(capsys):
    code, out, _ = run(["--config", "quickstart", "--format", "json"], capsys)
    report = json.loads(out)
    check_schema(report)
    assert code == 0 and report["healthy"]
    assert [f for f in report["findings"] if f["severity"] != "info"] == []


@pytest.mark.slow
def test_python_diagnose_returns_the_commands_findings_and_the_lesson_gets_its_fix(capsys, tmp_path):
    config = str(ROOT / "configs" / "demos" / "vanishing_sigmoid.yaml")
    diagnosis = nnlit.diagnose(config, budget=120)
    code, out, _ = run(["--config", config, "--format", "json", f"--out={tmp_path}"], capsys)
    report = json.loads(out)
    assert code == 1
    assert [f.kind for f in diagnosis.findings] == [f["kind"] for f in report["findings"]]
    assert diagnosis.findings[0].kind == "symmetric_init"
    assert diagnosis.findings[0].fix["model.init_args.activation"] == "relu"
    assert diagnosis.findings[0].verified["after"] > diagnosis.findings[0].verified["before"] + 0.1
    assert {p.name for p in Path(tmp_path).iterdir()} == {"loss_curves.png", "layers.png"}


@pytest.mark.slow
def test_plain_sgd_at_a_broken_rate_tries_adam_at_its_range_tested_rate_first():
    broken = ["--model.init_args.optimizer=torch.optim.SGD", "--model.init_args.optimizer.init_args.lr=1e-6"]
    diagnosis = nnlit.diagnose("quickstart", [*QUICK, *broken], budget=120)
    assert diagnosis.findings[0].kind == "lr_too_low"
    adam = diagnosis.findings[0].candidates[0]["model.init_args.optimizer"]  # tried first
    assert adam["class_path"] == "torch.optim.Adam" and 1e-4 < adam["init_args"]["lr"] < 1.0
    assert diagnosis.fixes()  # the best candidate that helped, Adam or a raised SGD rate
    verified = diagnosis.findings[0].verified
    assert verified["helped"] and verified["after"] > verified["before"] + 0.1
