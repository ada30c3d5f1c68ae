"""Lightning's 32-bit precision plugin, with the hooks of every optimizer step called only where they do something."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.profilers import PassThroughProfiler
from torch import Tensor

from nnlit.lightning_internals import hook_name, set_hook_name


class StepHooksPrecision(Precision):
    """Lightning's ``Precision`` (the Trainer's default, ``precision="32-true"``), calling the three hooks of each
    optimizer step (``on_before_backward``, ``on_after_backward``, ``on_before_optimizer_step``) only on the callbacks,
    and the LightningModule, that override them.

    Lightning calls each of these hooks on every callback, through a loop that reads ``callback.state_key``, formats a
    profiler name and enters a profiler context per callback, then on the LightningModule, even where the hook is
    ``Callback``'s empty method. nnlit's training step takes one optimizer step per minibatch, so with the ``nnlit``
    command's default callbacks that is a noticeable part of a small MLP's step on a CPU (``bench/hooks.py`` measures
    it). This class runs the same hooks, in the same
    order, with the same arguments and the same ``_current_fx_name`` (so ``self.log`` works in them), skipping only
    calls to methods nobody overrode (a hook set on an instance, or a base method patched later, counts as overridden;
    one set to something not callable is skipped, as Lightning skips it). Gradient clipping
    (``configure_gradient_clipping``, automatic optimization) runs as in Lightning. Only Lightning's DEBUG log lines
    naming these hooks are not written. When the Trainer has a profiler that records (anything but Lightning's
    default no-op one), every call goes through Lightning's own dispatch, so the profile names every callback.

    The ``nnlit`` command puts it in place of Lightning's ``Precision`` when that is the Trainer's plugin (the default
    32-bit precision, single device or DDP); mixed precision, FSDP, DeepSpeed and XLA keep their own plugins. With your
    own Trainer, pass ``plugins=[StepHooksPrecision()]`` (and no ``precision``).

    Example::

        >>> import lightning as L
        >>> trainer = L.Trainer(plugins=[StepHooksPrecision()], logger=False, enable_progress_bar=False)
        >>> type(trainer.precision_plugin).__name__, trainer.precision
        ('StepHooksPrecision', '32-true')
    """

    def pre_backward(self, tensor: Tensor, module: L.LightningModule) -> Tensor:  # type: ignore[override]
        trainer = module.trainer
        if _profiled(trainer):
            return super().pre_backward(tensor, module)
        _call_overridden(trainer, "on_before_backward", tensor)
        return tensor

    def post_backward(self, tensor: Tensor, module: L.LightningModule) -> Tensor:  # type: ignore[override]
        trainer = module.trainer
        if _profiled(trainer):
            return super().post_backward(tensor, module)
        closure_loss = tensor.detach()  # releases the graph, as Lightning's plugin does
        _call_overridden(trainer, "on_after_backward")
        return closure_loss

    def _after_closure(self, model: L.LightningModule, optimizer: Any) -> None:
        # Lightning's Precision.optimizer_step runs this after the closure and before `optimizer.step`
        trainer = model.trainer
        if _profiled(trainer):
            return super()._after_closure(model, optimizer)
        _call_overridden(trainer, "on_before_optimizer_step", optimizer)
        self._clip_gradients(
            model, optimizer, trainer.gradient_clip_val, gradient_clip_algorithm=trainer.gradient_clip_algorithm
        )
        return None


def _profiled(trainer: L.Trainer) -> bool:
    """Whether the Trainer's profiler records hook calls (Lightning's default, and nnlit's NullProfiler, do not)."""
    return not isinstance(trainer.profiler, PassThroughProfiler)  # type: ignore[attr-defined]


_STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")
# The base classes' empty methods, read once: a base method patched later (a mock, say) counts as an override and is
# called, as Lightning would call it
_EMPTY_CALLBACK = {hook: getattr(Callback, hook) for hook in _STEP_HOOKS}
_EMPTY_MODULE = {hook: getattr(L.LightningModule, hook) for hook in _STEP_HOOKS}


def _overridden(obj: object, empty: Any, hook: str) -> Any:
    """``obj``'s ``hook`` when it is anything but the base class's ``empty`` method (overridden in its class or set on
    the instance) and callable, else ``None``."""
    if getattr(type(obj), hook, None) is empty and hook not in getattr(obj, "__dict__", ()):
        return None
    fn = getattr(obj, hook)
    return fn if callable(fn) else None  # Lightning skips a hook set to something not callable, too


def _call_overridden(trainer: L.Trainer, hook: str, *args: Any) -> None:
    """Lightning's ``_call_callback_hooks`` then ``_call_lightning_module_hook`` for ``hook``, leaving out the calls to
    ``Callback``'s and ``LightningModule``'s empty methods."""
    module = trainer.lightning_module
    previous = hook_name(module)
    set_hook_name(module, hook)
    empty = _EMPTY_CALLBACK[hook]
    for callback in trainer.callbacks:  # type: ignore[attr-defined]
        fn = _overridden(callback, empty, hook)
        if fn is not None:
            fn(trainer, module, *args)
    fn = _overridden(module, _EMPTY_MODULE[hook], hook)
    if fn is not None:
        fn(*args)
    set_hook_name(module, previous)
