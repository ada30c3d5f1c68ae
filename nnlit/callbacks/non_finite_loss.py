"""Stopping a fit at once when its training loss becomes NaN or infinite."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor
from typing_extensions import override

#: the docs section the message links
DOCS = "docs/doctor.md#nan_loss"
#: how the message names the doctor (the ``nnlit`` command replaces it with the command line to run)
DOCTOR_HINT = "`nnlit doctor` with this fit's config and overrides"


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite: the fit cannot go on (the ``nnlit`` command exits with status 1).

    Attributes:
        epoch: the epoch of the step whose loss was not finite.
        step: ``trainer.global_step`` after that step (optimizer steps so far).
        value: the loss (``nan``, ``inf`` or ``-inf``).
        cause: the likely cause, in words.
    """

    def __init__(self, message: str, epoch: int, step: int, value: float, cause: str) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.value = value
        self.cause = cause


class StopOnNonFiniteLoss(Callback):
    """Raises :class:`NonFiniteLossError` when the training loss is NaN or infinite, on any LightningModule.

    The loss is what ``training_step`` returns (a tensor, or a mapping with a ``"loss"`` key): nnlit's heads return
    the last minibatch's loss of each step, and a loss that went NaN stays NaN, since the weights it updated do. Each
    step only folds the loss into a flag kept on the loss's device (no host read, so no GPU sync per step); the flag is
    read every ``every_n_steps`` training steps, at the end of each training epoch, before validation and before a
    checkpoint is written. So no checkpoint of the broken weights is written and no ``best`` / ``last`` checkpoint is
    replaced (Lightning's ``ModelCheckpoint`` writes nothing when a fit raises, unless ``save_on_exception`` is set).

    The message names the epoch, the step at which the flag was read, the likely cause (a learning rate too high when
    the loss grew before it broke; NaN or infinite inputs when the batch holds any) and the ``nnlit doctor`` command.
    The ``nnlit`` heads add this callback by default.

    Args:
        every_n_steps: read the flag every this many training steps (Lightning steps: an nnlit head's step may train
            several minibatches).

    Raises:
        ValueError: if ``every_n_steps`` is not a positive integer.

    Example::

        >>> import lightning as L
        >>> trainer = L.Trainer(callbacks=[StopOnNonFiniteLoss()])
    """

    def __init__(self, every_n_steps: int = 32) -> None:
        if not isinstance(every_n_steps, int) or isinstance(every_n_steps, bool) or every_n_steps < 1:
            raise ValueError(f"`every_n_steps` must be a positive integer, got {every_n_steps!r}")
        self.every_n_steps = every_n_steps
        self._bad: Tensor | None = None  # on the device: the first non-finite loss since the last read, else 0
        self._first: Tensor | None = None  # the first loss of the fit (for the cause)
        self._last: Tensor | None = None  # the latest finite loss
        self._steps = 0

    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._bad = self._first = self._last = None
        self._steps = 0

    @override
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            return
        with torch.no_grad():
            loss = loss.detach().reshape(()).float()
            finite = torch.isfinite(loss)
            first = torch.where(finite, torch.zeros_like(loss), loss)  # 0 where finite, the loss where not
            self._bad = first if self._bad is None else torch.where(self._bad != 0, self._bad, first)
            if self._first is None:
                self._first = loss
            self._last = loss if self._last is None else torch.where(finite, loss, self._last)
        self._steps += 1
        if self._steps % self.every_n_steps == 0:
            self._check(trainer, batch)

    @override
    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.training:
            self._check(trainer, None)

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check(trainer, None)

    @override
    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self._check(trainer, None)  # called before the file is written: raising here writes nothing

    def _check(self, trainer: L.Trainer, batch: Any) -> None:
        if self._bad is None:
            return
        value = float(self._bad)  # one host read
        self._bad = None
        if value != 0 and not math.isfinite(value):
            self._raise(trainer, value, batch)

    def _raise(self, trainer: L.Trainer, value: float, batch: Any) -> None:
        losses = [float(t) for t in (self._first, self._last) if t is not None]
        cause = likely_cause(
            [x for x in losses if math.isfinite(x)],
            inputs_finite=_inputs_finite(batch),
            learning_rate=_learning_rate(trainer),
        )
        message = (
            f"The training loss became {value} in epoch {trainer.current_epoch}, by step {trainer.global_step}: the "
            f"weights are broken and training stopped, writing no checkpoint. Likely cause: {cause} Run "
            f"{DOCTOR_HINT} to see the evidence and a verified fix (see {DOCS})."
        )
        raise NonFiniteLossError(message, trainer.current_epoch, trainer.global_step, value, cause)


def likely_cause(finite_losses: list[float], inputs_finite: bool | None, learning_rate: str | None) -> str:
    """The likely cause of a loss that became non-finite, in words, from the finite losses before it (the first and the
    latest), whether the failing batch's inputs were finite (``None``: unknown) and the optimizer's
    learning rate (text, ``None``: unknown).

    Example::

        >>> likely_cause([0.7, 5.0, 3e6], inputs_finite=True, learning_rate="SGD lr=1e+06")
        'the learning rate (SGD lr=1e+06) is too high: the loss grew from 0.7 to 3e+06 before it broke.'
        >>> likely_cause([], inputs_finite=False, learning_rate=None)
        "the batch holds NaN or infinite inputs: clean the table or set the data module's `missing` option."
    """
    if inputs_finite is False:
        return "the batch holds NaN or infinite inputs: clean the table or set the data module's `missing` option."
    rate = f" ({learning_rate})" if learning_rate else ""
    if len(finite_losses) >= 2 and finite_losses[-1] > 2 * finite_losses[0]:
        return (
            f"the learning rate{rate} is too high: the loss grew from {finite_losses[0]:.3g} to "
            f"{finite_losses[-1]:.3g} before it broke."
        )
    return f"a learning rate{rate} too high for this net, or inputs or targets of very large values (standardise them)."


def _inputs_finite(batch: Any) -> bool | None:
    """Whether every floating-point tensor of ``batch`` (nested tuples and lists, a BatchGroup) is finite; ``None``
    when it holds none."""
    floats = [t for t in _tensors(batch) if t.is_floating_point()]
    if not floats:
        return None
    return all(bool(torch.isfinite(t).all()) for t in floats)


def _tensors(batch: Any) -> list[Tensor]:
    if isinstance(batch, Tensor):
        return [batch]
    if isinstance(batch, list | tuple):
        return [t for item in batch for t in _tensors(item)]
    return []


def _learning_rate(trainer: L.Trainer) -> str | None:
    optimizers = trainer.optimizers
    if not optimizers or not optimizers[0].param_groups:
        return None
    lr = optimizers[0].param_groups[0].get("lr")
    return f"{type(optimizers[0]).__name__} lr={lr:.3g}" if isinstance(lr, float | int) else None


__all__ = ["NonFiniteLossError", "StopOnNonFiniteLoss", "likely_cause"]
