"""Records which training rows each of 2 processes sees per epoch, for tests/test_ddp.py.

    python ddp_rows.py SEED OUT_DIR

The first feature of row i is i (no standardisation), so a batch tells which rows it holds. Rank 0 gathers every
rank's rows at the end of each epoch and writes OUT_DIR/epoch<k>.json ([rank 0 rows, rank 1 rows]); the training
rows of the split go to OUT_DIR/train_rows.json.
"""

import functools
import json
import sys
from pathlib import Path

import lightning as L
import numpy as np
import torch

from nnlit import BinaryMLP, TabularDataModule
from nnlit.data.loader import BatchGroup


class RecordRows(L.Callback):
    def __init__(self, out: Path) -> None:
        self.out = out
        self.rows: list[int] = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.rows = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        features = batch.tensors[0] if isinstance(batch, BatchGroup) else batch[0]
        self.rows.extend(features[:, 0].long().tolist())

    def on_train_epoch_end(self, trainer, pl_module):
        gathered = trainer.strategy.all_gather(torch.tensor(self.rows))  # same length everywhere: padded shards
        if trainer.global_rank == 0:
            (self.out / f"epoch{trainer.current_epoch}.json").write_text(json.dumps(gathered.tolist()))


def main(seed: int, out: Path) -> None:
    n = 100  # 11 validation rows, 89 training rows: odd, so one row is repeated to pad the second shard
    x = np.stack([np.arange(n), np.zeros(n)], axis=1).astype(np.float32)
    data = TabularDataModule.from_arrays(
        x, np.arange(n) % 2, standardize=False, val_fraction=0.11, batch_size=8, seed=seed
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[RecordRows(out)],
    )
    trainer.fit(
        BinaryMLP(in_features=2, hidden=[4], optimizer=functools.partial(torch.optim.SGD, lr=0.0)), datamodule=data
    )
    data.setup("fit")
    (out / "train_rows.json").write_text(json.dumps(sorted(data.split_indices("train").tolist())))


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
