"""Mixed precision: bf16 on CPU end to end; fp16 with a gradient scaler on a GPU (skipped without one)."""

import functools
import math
from pathlib import Path

import lightning as L
import pytest
import torch

from nnlit import RegressionMLP, TabularDataModule
from nnlit.callbacks import GradientSaturationMonitor
from nnlit.cli import main

ROOT = Path(__file__).resolve().parents[1]


def grad_norms(precision: str, accelerator: str = "cpu") -> dict[str, float]:
    """Per-layer gradient norms of one epoch with fixed weights (lr 0), so every precision sees the same model."""
    L.seed_everything(0)
    model = RegressionMLP(
        in_features=2, hidden=[16, 16], activation="tanh", optimizer=functools.partial(torch.optim.SGD, lr=0.0)
    )
    monitor = GradientSaturationMonitor()
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[monitor],
    )
    trainer.fit(model, datamodule=TabularDataModule(dataset="sine", n_samples=512, batch_size=64, seed=0))
    return monitor.history[-1]["grad_norm"]


def test_bf16_gradient_norms_match_fp32():
    fp32, bf16 = grad_norms("32-true"), grad_norms("bf16-mixed")
    assert fp32.keys() == bf16.keys()
    for name in fp32:
        assert bf16[name] == pytest.approx(fp32[name], rel=0.05), name


def test_bf16_end_to_end_from_the_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(
        [
            "fit",
            "--config",
            str(ROOT / "configs/quickstart.yaml"),
            "--trainer.precision=bf16-mixed",
            "--trainer.max_epochs=3",
            "--data.n_samples=600",
            "--trainer.enable_progress_bar=false",
            "--trainer.callbacks+=nnlit.callbacks.DeadReLUCounter",
            "--trainer.callbacks+=nnlit.callbacks.GradientSaturationMonitor",
        ]
    )
    checkpoint = torch.load(tmp_path / "runs/quickstart/checkpoints/last.ckpt", weights_only=False)
    assert checkpoint["epoch"] == 2
    histories = {k: v["history"] for k, v in checkpoint["callbacks"].items() if "history" in v}
    assert len(histories) == 2 and all(len(h) == 3 for h in histories.values())
    assert all(
        math.isfinite(v) for v in histories[next(k for k in histories if "Gradient" in k)][-1]["grad_norm"].values()
    )
    assert all(torch.isfinite(t).all() for t in checkpoint["state_dict"].values())


@pytest.mark.gpu
def test_fp16_gradient_norms_are_read_after_unscaling():
    # the GradScaler multiplies the loss by 2**16; norms read before unscaling would be that much larger
    fp32, fp16 = grad_norms("32-true", "gpu"), grad_norms("16-mixed", "gpu")
    for name in fp32:
        assert fp16[name] == pytest.approx(fp32[name], rel=0.05), name


@pytest.mark.gpu
def test_quickstart_on_one_gpu(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(
        [
            "fit",
            "--config",
            str(ROOT / "configs/quickstart.yaml"),
            "--trainer.accelerator=gpu",
            "--trainer.devices=1",
            "--trainer.enable_progress_bar=false",
        ]
    )
    best = torch.load(tmp_path / "runs/quickstart/checkpoints/best.ckpt", weights_only=False)
    score = next(v["best_model_score"] for k, v in best["callbacks"].items() if "val/acc" in k)
    assert float(score) >= 0.95
