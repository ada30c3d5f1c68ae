"""scripts/demo.py, what `make demo` runs: the quick start's fit, validate and predict in one process."""

from __future__ import annotations

import csv
import shlex
import sys
from pathlib import Path

import pytest
import torch
from helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "configs" / "quickstart.yaml")


def demo_script():
    """scripts/demo.py, imported from its file (scripts/ is not a package)."""
    return load_script("scripts/demo.py", "nnlit_demo_script")


def test_the_commands_are_the_ones_the_docs_show():
    """The lines a learner copies: the README's `nnlit validate` and `nnlit predict` lines, the fit's config alone."""
    steps, predictions = demo_script().commands("configs/quickstart.yaml", None, [])
    lines = [shlex.join(["nnlit", *step]) for step in steps]
    assert lines == [
        "nnlit fit --config configs/quickstart.yaml",
        "nnlit validate --config configs/quickstart.yaml --ckpt_path best --trainer.enable_progress_bar=false",
        "nnlit predict --config configs/quickstart.yaml --ckpt_path best --trainer.enable_progress_bar=false "
        "--prediction_writer.output_path runs/quickstart/predictions.csv",
    ]
    assert predictions == Path("runs/quickstart/predictions.csv")
    readme = (ROOT / "README.md").read_text()
    assert "nnlit predict --config configs/quickstart.yaml --ckpt_path best --prediction_writer.output_path" in readme
    page = (ROOT / "docs" / "getting-started.md").read_text()
    assert all(f"$ {line}\n" in page for line in lines)  # the page shows what the demo prints


def test_a_root_and_overrides_reach_every_command():
    steps, predictions = demo_script().commands("q.yaml", "out/q", ["--trainer.max_epochs=2"])
    assert all(
        step[1:5] == ["--config", "q.yaml", "--trainer.default_root_dir=out/q", "--trainer.max_epochs=2"]
        for step in steps
    )
    assert predictions == Path("out/q/predictions.csv") and steps[2][-1] == "out/q/predictions.csv"


def test_the_demo_trains_validates_the_best_checkpoint_and_predicts(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "runs"
    argv = list(sys.argv)
    demo_script().main(["--config", CONFIG, "--root", str(root), "--trainer.max_epochs=3"])
    assert sys.argv == argv  # the commands' arguments do not outlive the demo
    out = capsys.readouterr().out
    shown = [line for line in out.splitlines() if line.startswith("$ nnlit ")]
    assert [line.split()[2] for line in shown] == ["fit", "validate", "predict"]
    assert "Validate metric" in out and "val/acc" in out.split("$ nnlit validate")[1]
    # the best checkpoint is the fit's; validate and predict made runs of their own without checkpoints
    fitted = [run for run in sorted(root.glob("lightning_logs/version_*")) if (run / "checkpoints").is_dir()]
    assert len(fitted) == 1 and (fitted[0] / "checkpoints" / "best.ckpt").is_file()
    assert len(list(root.glob("lightning_logs/version_*"))) == 3
    with (root / "predictions.csv").open() as rows:
        table = list(csv.reader(rows))
    assert table[0] == ["row", "prediction", "prob_0", "prob_1", "prob_2"] and len(table) == 3001
    shown_rows = out.split(f"First predictions ({root / 'predictions.csv'}):\n", 1)[1].splitlines()
    assert shown_rows == [",".join(row) for row in table[:6]]
    # the validation metrics printed are the best checkpoint's, as `nnlit validate --ckpt_path best` prints them
    best = torch.load(fitted[0] / "checkpoints" / "best.ckpt", weights_only=True)
    score = next(c["best_model_score"] for k, c in best["callbacks"].items() if k.startswith("ModelCheckpoint"))
    assert str(float(score)) in out.split("$ nnlit validate")[1]


def test_an_error_ends_the_demo_as_it_ends_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        demo_script().main(["--config", CONFIG, "--root", str(tmp_path / "runs"), "--trainer.max_epochs=0"])
    assert stopped.value.code == 2
    captured = capsys.readouterr()
    assert "nnlit: error: `trainer.max_epochs` is 0" in captured.err
    assert "$ nnlit validate" not in captured.out  # nothing runs after the failed step
