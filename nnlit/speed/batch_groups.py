"""nnlit's training loop inside one Lightning step: a :class:`~nnlit.data.loader.BatchGroup` of minibatches, one
optimizer step each. Its whole contract is here.

**Why.** Lightning's per-step machinery (hooks, loop bookkeeping, logging) costs about as much as a small MLP's whole
forward and backward pass. The data module hands a model that takes groups (``takes_batch_groups``) up to
``batches_per_step`` minibatches per Lightning step, and :func:`train_group` trains them one by one.

**When.** :func:`lightning_loop_reason` says when Lightning's own loop (one minibatch per step, automatic
optimization) is used instead: ``automatic_optimization`` set to ``True``, a subclass that overrides
``training_step``, or a Trainer that clips gradients or accumulates batches (Lightning does both in its own loop
only). :class:`~nnlit.models.base.MLPModule` asks it once, when a Trainer is attached (before Lightning checks the
loop's configuration), keeps the answer as its ``automatic_optimization`` and logs the reason once per fit.

**What the loop needs from a module** is :class:`BatchGroupModule`: Lightning's optimizer, backward and scheduler
calls, the loss of one minibatch (``step_loss``), and the two attributes that steer ``ReduceLROnPlateau``.

**Per minibatch**, as in Lightning's loop: forward and loss (``step_loss``), ``zero_grad``, ``manual_backward``
(``on_before_backward``, ``on_after_backward``), ``optimizer.step`` (``on_before_optimizer_step``), and the
schedulers of ``interval: step``. ``trainer.global_step`` counts optimizer steps, and ``max_steps`` stops at the
exact step, mid-group.

**What counts minibatches** (optimizer steps): ``trainer.global_step``, the ``step`` of the logged epoch metrics
(``metrics.csv``, TensorBoard), checkpoint names (``epoch=…-step=…``), ``SavePlots``' images, and the ``nnlit``
command's progress bar.

**What counts groups**, because Lightning counts its own steps and takes no other count without its private state:
``on_train_batch_start`` / ``_end`` and their ``batch_idx``, ``limit_train_batches``, an integer
``val_check_interval``, and ``log_every_n_steps``. Set the data module's ``batches_per_step: 1`` when these must count
minibatches.

**Per epoch**, after validation: the schedulers of ``interval: epoch``, every ``frequency`` epochs. Every scheduler is
stepped through the module's ``lr_scheduler_step`` (a subclass's override is called, so schedulers outside
``torch.optim`` work); a ``ReduceLROnPlateau`` gets the value of the module's ``scheduler_monitor`` after an epoch that
validated, and a missing value is an error (a warning for a config with ``strict: False`` where Lightning keeps it).
In manual optimization Lightning drops a scheduler config's ``reduce_on_plateau``, ``monitor`` and ``strict`` keys,
with a warning; the scheduler's type and ``scheduler_monitor`` stand in for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import lightning as L
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import Tensor
from torch.optim.lr_scheduler import ReduceLROnPlateau

from nnlit.data.loader import BatchGroup


class BatchGroupModule(Protocol):
    """What :func:`train_group` and :func:`step_schedulers` need from a LightningModule (an
    :class:`~nnlit.MLPModule` is one)."""

    #: the metric a ``ReduceLROnPlateau`` scheduler watches
    scheduler_monitor: str
    #: the last epoch whose validation logged its metrics (a ``ReduceLROnPlateau`` steps only after one)
    validated_epoch: int

    @property
    def trainer(self) -> L.Trainer: ...

    def optimizers(self) -> Any: ...

    def manual_backward(self, loss: Tensor, *args: Any, **kwargs: Any) -> None: ...

    def lr_scheduler_step(self, scheduler: Any, metric: Any | None) -> None: ...

    def step_loss(self, batch: Any, stage: str) -> Tensor:
        """The loss of one minibatch of ``stage``, its metric inputs kept for the epoch."""
        ...


def lightning_loop_reason(
    cls: type[L.LightningModule], grouped_step: Callable[..., Any], trainer: L.Trainer | None, choice: bool | None
) -> str | None:
    """Why a module of class ``cls`` trains in Lightning's own loop, one minibatch per step, under ``trainer``;
    ``None`` when it takes batch groups. ``grouped_step`` is the ``training_step`` that trains groups
    (``MLPModule``'s); ``choice`` what ``automatic_optimization`` was set to by hand (``None``: not set).

    Example::

        >>> from nnlit import BinaryMLP, MLPModule
        >>> lightning_loop_reason(BinaryMLP, MLPModule.training_step, None, None) is None
        True
        >>> lightning_loop_reason(BinaryMLP, MLPModule.training_step, None, True)
        'automatic_optimization is set to True'
    """
    if choice is not None:
        return f"automatic_optimization is set to {choice}" if choice else None
    if cls.training_step is not grouped_step:
        return f"{cls.__name__} overrides training_step"
    if trainer is not None and (trainer.gradient_clip_val or 0) > 0:
        return f"the Trainer clips gradients (gradient_clip_val={trainer.gradient_clip_val})"
    if trainer is not None and trainer.accumulate_grad_batches != 1:
        return f"the Trainer accumulates batches (accumulate_grad_batches={trainer.accumulate_grad_batches})"
    return None


def train_group(module: BatchGroupModule, batch: Any) -> dict[str, Any] | None:
    """Trains each minibatch of ``batch`` (a :class:`BatchGroup`, or one minibatch) with its own optimizer step;
    returns the last minibatch's detached loss as ``{"loss": …}``, or ``None`` when ``max_steps`` was reached first."""
    optimizer = module.optimizers()
    if isinstance(optimizer, list):
        raise ValueError(
            f"MLPModule's training step drives one optimizer, configure_optimizers returned {len(optimizer)}: "
            "override training_step to drive several"
        )
    trainer = module.trainer
    loss = None
    for minibatch in batch.split() if isinstance(batch, BatchGroup) else (batch,):
        if 0 <= trainer.max_steps <= trainer.global_step:
            break
        loss = module.step_loss(minibatch, "train")
        optimizer.zero_grad()
        module.manual_backward(loss)
        optimizer.step()
        step_schedulers(module, "step")
    return None if loss is None else {"loss": loss.detach()}


def step_schedulers(module: BatchGroupModule, interval: str) -> None:
    """Steps the schedulers of ``interval`` (``"step"`` or ``"epoch"``) as Lightning's automatic loop does: every
    ``frequency`` optimizer steps or epochs, through ``module.lr_scheduler_step``; a ``ReduceLROnPlateau`` with its
    monitored value, after epochs that validated."""
    trainer = module.trainer
    for config in trainer.lr_scheduler_configs:
        if config.interval != interval:
            continue
        count = trainer.global_step if interval == "step" else trainer.current_epoch + 1
        if count % config.frequency:
            continue
        # in manual optimization Lightning drops a config's reduce_on_plateau / monitor / strict (with a warning) and
        # leaves their defaults: the scheduler's type and the module's scheduler_monitor stand in for the first two
        if not (config.reduce_on_plateau or isinstance(config.scheduler, ReduceLROnPlateau)):
            module.lr_scheduler_step(config.scheduler, None)
            continue
        if module.validated_epoch != trainer.current_epoch:
            continue  # no new value of the monitored metric this epoch
        monitor = config.monitor or module.scheduler_monitor
        value = trainer.callback_metrics.get(monitor)
        if value is None:
            message = (
                f"ReduceLROnPlateau monitors {monitor!r}, which was not logged; logged metrics: "
                f"{sorted(trainer.callback_metrics)}"
            )
            if config.strict:
                raise ValueError(message)
            rank_zero_warn(f"{message}. The scheduler is not stepped (strict=False)")
            continue
        module.lr_scheduler_step(config.scheduler, value)


__all__ = ["BatchGroupModule", "lightning_loop_reason", "step_schedulers", "train_group"]
