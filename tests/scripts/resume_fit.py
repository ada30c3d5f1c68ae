"""A small deterministic fit that can kill itself, for tests/test_resume.py.

    python resume_fit.py ROOT --max-epochs 5 [--kill-at-epoch 3] [--kill-in-save 2] [--resume]

Every epoch writes ROOT/checkpoints/last.ckpt; a finished run writes ROOT/final.ckpt. --kill-at-epoch K sends SIGKILL
to this process as epoch K starts (after epoch K-1's checkpoint); --kill-in-save N does it during the N-th checkpoint
save, after the new file is written to its temporary name and before it replaces last.ckpt.
"""

import argparse
import os
import signal

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from nnlit import MulticlassMLP, TabularDataModule
from nnlit.callbacks import DeadReLUCounter, FreezeLayers, GradientSaturationMonitor


class KillAtEpoch(L.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


def kill_during_save(nth: int) -> None:
    from fsspec.implementations.local import LocalFileOpener

    commit = LocalFileOpener.commit
    calls = {"n": 0}

    def dying_commit(self):  # the temporary file is complete; the rename onto last.ckpt has not happened
        calls["n"] += 1
        if calls["n"] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return commit(self)

    LocalFileOpener.commit = dying_commit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--max-epochs", type=int, default=5)
    parser.add_argument("--kill-at-epoch", type=int)
    parser.add_argument("--kill-in-save", type=int)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    if args.kill_in_save:
        kill_during_save(args.kill_in_save)

    L.seed_everything(0)
    model = MulticlassMLP(in_features=2, num_classes=3, hidden=[16, 16])
    data = TabularDataModule(dataset="spiral", n_classes=3, n_samples=400, batch_size=32)
    callbacks = [
        FreezeLayers(first_n=1, unfreeze_at_epoch=2, lr_factor=0.1),
        DeadReLUCounter(),
        GradientSaturationMonitor(),
        ModelCheckpoint(dirpath=os.path.join(args.root, "checkpoints"), filename="last", enable_version_counter=False),
    ]
    if args.kill_at_epoch is not None:
        callbacks.append(KillAtEpoch(args.kill_at_epoch))
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=args.max_epochs,
        deterministic=True,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=args.root,
        callbacks=callbacks,
    )
    trainer.fit(model, datamodule=data, ckpt_path="last" if args.resume else None)
    trainer.save_checkpoint(os.path.join(args.root, "final.ckpt"))


if __name__ == "__main__":
    main()
