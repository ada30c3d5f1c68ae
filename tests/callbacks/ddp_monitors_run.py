"""Runs the two monitors on fixed weights in 1 or 2 CPU processes and prints their logged numbers as JSON.

Used by test_monitors_ddp.py in a subprocess with a timeout, so a collective call that one rank skips fails the test
instead of hanging it. With a batch of 2b rows in one process and b rows per rank in two, every step sees the same rows
(the ranks take alternate positions of the same permutation), so the numbers must agree. The Trainer uses
StepHooksPrecision, as the nnlit command does, so the monitor's step hook is called through it under DDP.
"""

import functools
import json
import sys

import lightning as L
import torch

from nnlit import MulticlassMLP, StepHooksPrecision, TabularDataModule
from nnlit.callbacks import DeadReLUCounter, GradientSaturationMonitor


def main(devices: int, activation: str) -> None:
    model = MulticlassMLP(
        in_features=2,
        num_classes=3,
        hidden=[16, 16],
        activation=activation,
        optimizer=functools.partial(torch.optim.SGD, lr=0.0),
    )
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():  # some units dead, some tanh outputs saturated
            p.copy_(torch.rand(p.shape, generator=g) * 2.0 - 1.2)
    data = TabularDataModule(dataset="spiral", n_classes=3, n_samples=400, batch_size=32 // devices, seed=0)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp_spawn" if devices > 1 else "auto",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        plugins=[StepHooksPrecision()],
        callbacks=[DeadReLUCounter(threshold=1.0), GradientSaturationMonitor(saturation_threshold=1.0)],
    )
    trainer.fit(model, datamodule=data)
    print(json.dumps({k: float(v) for k, v in trainer.callback_metrics.items()}))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
