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


class KillAtStep(L.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
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
    parser.add_argument("--every-n-steps", type=int, help="also checkpoint every N steps (mid-epoch)")
    parser.add_argument("--kill-at-step", type=int)
    args = parser.parse_args()
    if args.kill_in_save:
        kill_during_save(args.kill_in_save)

    L.seed_everything(0)
    model = MulticlassMLP(in_features=2, num_classes=3, hidden=[16, 16])
    # 10 minibatches an epoch in groups of 2 per Lightning step: mid-epoch checkpoints fall between groups
    data = TabularDataModule(dataset="spiral", n_classes=3, n_samples=400, batch_size=32, batches_per_step=2)
    callbacks = [
        FreezeLayers(first_n=1, unfreeze_at_epoch=2, lr_factor=0.1),
        DeadReLUCounter(),
        GradientSaturationMonitor(),
        ModelCheckpoint(dirpath=os.path.join(args.root, "checkpoints"), filename="last", enable_version_counter=False),
    ]
    if args.every_n_steps:
        steps_dir = os.path.join(args.root, "checkpoints")
        callbacks.append(
            ModelCheckpoint(
                dirpath=steps_dir,
                filename="last",
                every_n_train_steps=args.every_n_steps,
                enable_version_counter=False,
                save_on_train_epoch_end=False,
            )
        )
        callbacks = [c for c in callbacks if not (isinstance(c, ModelCheckpoint) and not c._every_n_train_steps)]
    if args.kill_at_epoch is not None:
        callbacks.append(KillAtEpoch(args.kill_at_epoch))
    if args.kill_at_step is not None:
        callbacks.append(KillAtStep(args.kill_at_step))
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
