"""Each part of Lightning that nnlit reaches without a public API (nnlit/lightning_internals.py, and the precision
plugin's overrides) is still where nnlit expects it. A failure names the Lightning change to follow."""

from __future__ import annotations

import inspect

import lightning as L
import pytest
from lightning.pytorch.plugins.precision import Precision

from nnlit import BinaryMLP, TabularDataModule, lightning_internals

MOVED = f"Lightning {L.__version__} moved %s: update nnlit/lightning_internals.py (or the code named) to follow it"


def test_jit_is_scripting_lets_a_trace_read_a_module_without_a_trainer():
    module = BinaryMLP(in_features=2, hidden=[4])
    with pytest.raises(RuntimeError):
        _ = module.trainer  # what a trace would hit without the flag
    try:
        with lightning_internals.jit_is_scripting():
            assert module.trainer is None
    except ImportError as err:
        pytest.fail(MOVED % "lightning.pytorch.core.module._jit_is_scripting" + f" ({err})")


def test_resume_progress_is_where_the_data_module_reads_it(make_trainer):
    trainer = make_trainer(max_steps=3)
    trainer.fit(BinaryMLP(in_features=2, hidden=[4]), datamodule=TabularDataModule(dataset="xor", batches_per_step=1))
    loop = trainer.fit_loop
    assert hasattr(loop, "restarting"), MOVED % "Trainer.fit_loop.restarting"
    progress = getattr(getattr(loop.epoch_loop, "batch_progress", None), "current", None)
    assert hasattr(progress, "processed"), MOVED % "fit_loop.epoch_loop.batch_progress.current.processed"
    assert lightning_internals.batches_done_in_resumed_epoch(trainer, 10) == 0  # not resuming


def test_the_hook_name_self_log_checks_is_an_attribute_of_the_module():
    module = BinaryMLP(in_features=2, hidden=[4])
    assert "_current_fx_name" in vars(module) or hasattr(module, "_current_fx_name"), MOVED % "_current_fx_name"
    lightning_internals.set_hook_name(module, "on_after_backward")
    assert lightning_internals.hook_name(module) == "on_after_backward"
    source = inspect.getsource(L.LightningModule.log)
    assert "_current_fx_name" in source, MOVED % "the hook name LightningModule.log reads (_current_fx_name)"


@pytest.mark.parametrize("name", ["_after_closure", "_clip_gradients"])
def test_the_precision_plugin_methods_step_hooks_precision_overrides(name):
    assert callable(getattr(Precision, name, None)), MOVED % f"Precision.{name} (nnlit/precision.py overrides it)"
    calls = inspect.getsource(Precision._wrap_closure if name == "_after_closure" else Precision._after_closure)
    assert f"self.{name}(" in calls, MOVED % f"the call of Precision.{name} (nnlit/precision.py relies on it)"
