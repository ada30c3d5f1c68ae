"""Fits or validates one nnlit head in 1 or 2 CPU processes and prints the logged numbers as JSON.

    python ddp_fit.py HEAD DEVICES validate|fit [--freeze] [--unfreeze]

For tests/test_ddp.py, run in a subprocess with a timeout. `validate` uses fixed, seeded weights, so one and two
processes must report the same metrics. `--freeze` checks on every rank that the frozen layer did not move.
"""

import argparse
import functools
import json

import lightning as L
import torch

from nnlit import BinaryMLP, MulticlassMLP, RegressionMLP, TabularDataModule
from nnlit.callbacks import FreezeLayers

HEADS = {
    "binary": (BinaryMLP, {}, {"dataset": "circle"}),
    "multiclass": (MulticlassMLP, {"num_classes": 3}, {"dataset": "spiral", "n_classes": 3}),
    "regression": (RegressionMLP, {}, {"dataset": "sine"}),
}


class FrozenOnEveryRank(L.Callback):
    """Fails the fit on any rank where linear1 moved, or where it differs from rank 0's."""

    def on_train_start(self, trainer, pl_module):
        self.start = pl_module.network.linear1.weight.detach().clone()

    def on_train_end(self, trainer, pl_module):
        weight = pl_module.network.linear1.weight.detach()
        if not torch.equal(weight, self.start):
            raise RuntimeError(f"rank {trainer.global_rank}: the frozen layer changed")


class ReplicasAgree(L.Callback):
    """Fails the fit when the ranks' weights differ at its end: every minibatch of a BatchGroup must have its
    gradients averaged across ranks, not only the group's first."""

    def on_train_end(self, trainer, pl_module):
        for name, param in pl_module.named_parameters():
            gathered = trainer.strategy.all_gather(param.detach())
            if trainer.world_size > 1 and not torch.equal(gathered[0], gathered[1]):
                raise RuntimeError(f"the ranks' {name} differ")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("head", choices=sorted(HEADS))
    parser.add_argument("devices", type=int)
    parser.add_argument("mode", choices=["fit", "validate"])
    parser.add_argument("--freeze", action="store_true")
    parser.add_argument("--unfreeze", action="store_true")
    args = parser.parse_args()

    cls, head_kwargs, data_kwargs = HEADS[args.head]
    torch.manual_seed(0)
    model = cls(in_features=2, hidden=[16, 16], optimizer=functools.partial(torch.optim.SGD, lr=0.05), **head_kwargs)
    # 405 rows: 81 validation rows, so the two validation shards are uneven (41 and 40); 162 training rows per rank
    # are 11 minibatches of 16, trained as one BatchGroup per epoch
    data = TabularDataModule(n_samples=405, batch_size=16, seed=0, **data_kwargs)
    callbacks: list[L.Callback] = [ReplicasAgree()]
    if args.freeze or args.unfreeze:
        callbacks.append(FreezeLayers(first_n=1, unfreeze_at_epoch=1 if args.unfreeze else None))
        callbacks.append(FrozenOnEveryRank())
    trainer = L.Trainer(
        accelerator="cpu",
        devices=args.devices,
        strategy="ddp_spawn" if args.devices > 1 else "auto",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    if args.mode == "fit":
        trainer.fit(model, datamodule=data)
    else:
        trainer.validate(model, datamodule=data, verbose=False)
    print(json.dumps({k: float(v) for k, v in trainer.callback_metrics.items()}))


if __name__ == "__main__":
    main()
