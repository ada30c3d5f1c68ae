"""A fit whose last.ckpt is written by the clock (LastCheckpoint), killing itself between two writes, for
tests/callbacks/test_last_checkpoint.py.

    python clocked_fit.py ROOT --every-s 1.0 --max-epochs 40 [--kill-after 3] [--resume]

ROOT/epochs.txt gets a line per epoch's end and per save of last.ckpt (see Record). --kill-after K sends SIGKILL to
this process once a clock-driven save has happened and K more epochs have ended after it (so the kill falls between
two writes); --resume continues from last.ckpt.
"""

import argparse
import os
import signal
import time

import lightning as L

from nnlit import MulticlassMLP, TabularDataModule
from nnlit.callbacks import LastCheckpoint
from nnlit.loggers import ResumableCSVLogger


class Record(L.Callback):
    """Writes "end E seconds" at each epoch's end and "save E seconds" when the next epoch starts after last.ckpt was
    written at epoch E's end (Lightning runs checkpoints' hooks after the others), and kills on cue."""

    def __init__(self, root: str, kill_after: int | None) -> None:
        self.root, self.kill_after = root, kill_after
        self.stamp: int | None = None
        self.saved: int | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        path = os.path.join(self.root, "checkpoints", "last.ckpt")
        stamp = os.stat(path).st_mtime_ns if os.path.exists(path) else None
        if stamp != self.stamp and trainer.current_epoch > 0:
            self.saved = trainer.current_epoch - 1
            self._write("save", self.saved)
        self.stamp = stamp
        if self.kill_after is not None and self.saved is not None:
            if trainer.current_epoch - 1 - self.saved == self.kill_after:  # epochs ended after the save, unsaved
                os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.1)  # an epoch long enough that the clock spans several of them

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write("end", trainer.current_epoch)

    def _write(self, what: str, epoch: int) -> None:
        with open(os.path.join(self.root, "epochs.txt"), "a") as file:
            file.write(f"{what} {epoch} {time.monotonic()}\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--every-s", type=float, default=1.0)
    parser.add_argument("--max-epochs", type=int, default=40)
    parser.add_argument("--kill-after", type=int)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    L.seed_everything(0)
    model = MulticlassMLP(in_features=2, num_classes=3, hidden=[16])
    data = TabularDataModule(dataset="spiral", n_classes=3, n_samples=200, batch_size=32)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=args.max_epochs,
        logger=ResumableCSVLogger(args.root, name="", version="run"),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=args.root,
        callbacks=[
            Record(args.root, args.kill_after),
            LastCheckpoint(dirpath=os.path.join(args.root, "checkpoints"), every_s=args.every_s),
        ],
    )
    trainer.fit(model, datamodule=data, ckpt_path="last" if args.resume else None)


if __name__ == "__main__":
    main()
