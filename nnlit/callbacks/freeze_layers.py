"""Freezing layers for fine-tuning, and unfreezing them later with a smaller learning rate."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import BaseFinetuning
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.optim import Optimizer
from typing_extensions import override

from nnlit.validation import check_int

NORMS = (_BatchNorm, nn.LayerNorm, nn.GroupNorm)


class FreezeLayers(BaseFinetuning):
    """Freezes layers before training; optionally unfreezes them at an epoch, with their own smaller learning rate.

    Choose the layers by name patterns (``fnmatch`` over the LightningModule's module names, e.g.
    ``["network.linear1", "network.norm1"]`` or ``["backbone.*"]``) or as ``first_n``: the first ``n`` layers with a
    weight matrix (Linear, conv; not embeddings) in module order, with the norm layers that come before the next one.
    Frozen parameters have ``requires_grad=False``; nnlit's modules never give them to the optimizer.

    With ``unfreeze_at_epoch=k`` they start training at epoch ``k`` in a new optimizer param group whose learning
    rate is ``lr_factor`` × that of the first group: the fine-tuning lesson's smaller learning rate for pretrained
    layers.

    Built on Lightning's ``BaseFinetuning`` (its param-group bookkeeping survives checkpoints), with three differences:

    - resuming from a checkpoint saved after the unfreeze epoch keeps the layers unfrozen and their param group
      (``BaseFinetuning`` re-freezes them in ``setup``, which runs before callback state is restored);
    - parameters already in the optimizer are recognised by identity, not by value (two different all-zero biases are
      not the same parameter);
    - unfreezing happens at the first epoch ``>= unfreeze_at_epoch``, so a run resumed past that epoch still unfreezes.

    Batch-norm layers among the frozen ones keep training when ``train_bn=True`` (the default, as in Lightning), and
    stay frozen through the unfreeze when ``train_bn=False``.

    Under DDP, freezing works (frozen parameters are not registered with DDP, so no "did not receive gradients"
    error), but unfreezing does not: DDP only synchronises the parameters that required gradients when it wrapped
    the model. ``unfreeze_at_epoch`` with more than one process raises; run the two phases as two fits instead.

    A learning-rate scheduler created before the unfreeze does not know the new param group (its lr stays fixed).

    Args:
        modules: name patterns of the layers to freeze.
        first_n: freeze the first ``n`` weight layers instead.
        unfreeze_at_epoch: the epoch at which the frozen layers start training; ``None`` keeps them frozen.
        lr_factor: learning rate of the unfrozen layers relative to the optimizer's first param group.
        train_bn: keep batch-norm layers trainable while the rest is frozen.

    Raises:
        ValueError: unless exactly one of ``modules`` / ``first_n`` is given; for ``first_n < 1``, a negative
            ``unfreeze_at_epoch`` or a non-positive ``lr_factor``; when a pattern matches no module with parameters
            or ``first_n`` exceeds the number of layers (listing the modules that exist).
    """

    def __init__(
        self,
        modules: Sequence[str] | None = None,
        first_n: int | None = None,
        unfreeze_at_epoch: int | None = None,
        lr_factor: float = 0.1,
        train_bn: bool = True,
    ) -> None:
        super().__init__()
        if (modules is None) == (first_n is None):
            raise ValueError(
                f"Give exactly one of `modules` (name patterns) or `first_n`, got modules={modules!r}, "
                f"first_n={first_n!r}"
            )
        if modules is not None and (isinstance(modules, str) or not modules):
            raise ValueError(f"`modules` must be a non-empty list of name patterns, got {modules!r}")
        if first_n is not None:
            check_int("first_n", first_n)
        if unfreeze_at_epoch is not None and unfreeze_at_epoch < 0:
            raise ValueError(f"`unfreeze_at_epoch` must be >= 0 or None, got {unfreeze_at_epoch!r}")
        if lr_factor <= 0:
            raise ValueError(f"`lr_factor` must be > 0, got {lr_factor!r}")
        self.modules = None if modules is None else list(modules)
        self.first_n = first_n
        self.unfreeze_at_epoch = unfreeze_at_epoch
        self.lr_factor = lr_factor
        self.train_bn = train_bn
        self.unfrozen = False

    def select(self, root: nn.Module) -> dict[str, nn.Module]:
        """The layers this callback freezes, by name."""
        named = {name: m for name, m in root.named_modules() if name}
        with_params = [name for name, m in named.items() if any(True for _ in m.parameters(recurse=False))]
        if self.first_n is not None:
            return self._first_layers(named, with_params)
        assert self.modules is not None  # one of the two is set: checked in __init__
        chosen: dict[str, nn.Module] = {}
        for pattern in self.modules:
            matches = {
                name: m
                for name, m in named.items()
                if fnmatch.fnmatchcase(name, pattern) and any(True for _ in m.parameters())
            }
            if not matches:
                raise ValueError(
                    f"FreezeLayers: the pattern {pattern!r} matches no module with parameters. Modules with "
                    f"parameters: {', '.join(with_params)}"
                )
            chosen.update(matches)
        return chosen

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.unfreeze_at_epoch is not None and trainer.world_size > 1:
            raise ValueError(
                "FreezeLayers cannot unfreeze layers under DDP: DDP only synchronises the parameters that required "
                "gradients when it wrapped the model. Train the frozen phase, then start a second fit from its "
                "checkpoint without FreezeLayers (or with other layers frozen), or train on one device."
            )
        super().setup(trainer, pl_module, stage)

    @override
    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        layers = self.select(pl_module)
        self.freeze(list(layers.values()), train_bn=self.train_bn)
        count = sum(p.numel() for m in layers.values() for p in m.parameters() if not p.requires_grad)
        rank_zero_info(f"FreezeLayers: froze {', '.join(layers)} ({count} parameters)")

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_fit_start(trainer, pl_module)  # restores the param groups saved in the checkpoint
        if self.unfrozen:  # resumed after the unfreeze epoch: setup froze them again
            self._make_trainable(pl_module)

    @override
    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer: Optimizer) -> None:
        if self.unfreeze_at_epoch is None or self.unfrozen or epoch < self.unfreeze_at_epoch:
            return
        self._make_trainable(pl_module)
        present = {id(p) for group in optimizer.param_groups for p in group["params"]}
        params = [p for p in pl_module.parameters() if p.requires_grad and id(p) not in present]
        lr = optimizer.param_groups[0]["lr"] * self.lr_factor
        if params:
            optimizer.add_param_group({"params": params, "lr": lr})
        else:
            rank_zero_warn(
                "FreezeLayers: the unfrozen parameters were already in the optimizer (its configure_optimizers passes "
                "every parameter, frozen ones included), so they train at the optimizer's learning rate, not "
                f"lr x {self.lr_factor}. Pass only parameters with requires_grad to the optimizer."
            )
        self.unfrozen = True
        rank_zero_info(f"FreezeLayers: epoch {epoch}, unfroze {len(params)} tensors with lr {lr:g}")

    @override
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "unfrozen": self.unfrozen}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.unfrozen = bool(state_dict.get("unfrozen", False))

    def _make_trainable(self, pl_module: L.LightningModule) -> None:
        modules = self.flatten_modules(list(self.select(pl_module).values()))
        self.make_trainable([m for m in modules if self.train_bn or not isinstance(m, _BatchNorm)])

    def _first_layers(self, named: dict[str, nn.Module], with_params: list[str]) -> dict[str, nn.Module]:
        assert self.first_n is not None
        weighted = [name for name, m in named.items() if _has_weight_matrix(m)]
        if self.first_n > len(weighted):
            raise ValueError(
                f"FreezeLayers: first_n={self.first_n} but the model has {len(weighted)} layers with a weight matrix: "
                f"{', '.join(weighted)}"
            )
        stop = weighted[self.first_n] if self.first_n < len(weighted) else None
        chosen: dict[str, nn.Module] = {}
        for name, module in named.items():
            if name == stop:
                break
            if name in weighted or isinstance(module, NORMS):
                chosen[name] = module
        return chosen


def _has_weight_matrix(module: nn.Module) -> bool:
    """A layer of the network's depth: a Linear or conv weight; an embedding table is a lookup, not a layer."""
    weight = getattr(module, "weight", None)
    return (
        isinstance(weight, nn.Parameter) and weight.ndim >= 2 and not isinstance(module, nn.EmbeddingBag | nn.Embedding)
    )
