"""Two processes where an extra ReLU and Tanh run on rank 0 only: the monitors must not hang. For test_monitors_ddp."""

import lightning as L
import torch
from torch import nn

from nnlit.callbacks import DeadReLUCounter, GradientSaturationMonitor
from nnlit.data import TensorBatchLoader


class RankDependent(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 4)
        self.relu = nn.ReLU()
        self.extra_relu = nn.ReLU()
        self.extra_tanh = nn.Tanh()
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        h = self.relu(self.layer(x))
        if self.trainer.global_rank == 0:
            h = self.extra_tanh(self.extra_relu(h))
        return self.head(h)

    def training_step(self, batch, batch_idx):
        return nn.functional.mse_loss(self(batch[0]).view(-1), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


if __name__ == "__main__":
    x, y = torch.randn(64, 2, generator=torch.Generator().manual_seed(0)), torch.zeros(64)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[DeadReLUCounter(threshold=1.0), GradientSaturationMonitor(saturation_threshold=1.0)],
    )
    trainer.fit(RankDependent(), train_dataloaders=TensorBatchLoader([x, y], 8))
    print(sorted(k for k in trainer.callback_metrics if k.startswith(("dead_relu", "saturation"))))
