"""Each part of Lightning that nnlit reaches without a public API (nnlit/lightning_internals.py, and the precision
plugin's overrides) is still where nnlit expects it. A failure names the Lightning change to follow."""

from __future__ import annotations

import inspect

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
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


def test_lightning_saves_and_restores_a_stateful_loader_without_prefetching(make_trainer):
    """The data module's loader is stateful (its state_dict counts the batches of the epoch handed out), which is
    exact only because Lightning does not fetch ahead from a loader that has a length."""
    from lightning.fabric.utilities.types import _Stateful
    from lightning.pytorch.loops.fetchers import _PrefetchDataFetcher

    data = TabularDataModule(dataset="xor", batches_per_step=1)
    data.setup("fit")
    assert isinstance(data.train_dataloader(), _Stateful), MOVED % "the stateful-loader protocol"
    source = inspect.getsource(_PrefetchDataFetcher.__iter__)
    assert "self.length is not None" in source, MOVED % "the prefetching of loaders with a length"


def test_the_hook_name_self_log_checks_is_the_one_lightning_sets_around_each_hook(make_trainer):
    seen = {}

    class Recording(BinaryMLP):
        def on_train_start(self):
            seen["on_train_start"] = lightning_internals.hook_name(self)

        def on_after_backward(self):
            seen["on_after_backward"] = lightning_internals.hook_name(self)

    make_trainer(max_steps=1).fit(Recording(in_features=2, hidden=[4]), datamodule=TabularDataModule(dataset="xor"))
    assert seen == {"on_train_start": "on_train_start", "on_after_backward": "on_after_backward"}, (
        MOVED % "the hook name Lightning sets on the module around each hook (_current_fx_name)"
    )
    source = inspect.getsource(L.LightningModule.log)
    assert "_current_fx_name" in source, MOVED % "the hook name LightningModule.log reads (_current_fx_name)"


@pytest.mark.parametrize("name", ["_after_closure", "_clip_gradients"])
def test_the_precision_plugin_methods_step_hooks_precision_overrides(name):
    assert callable(getattr(Precision, name, None)), MOVED % f"Precision.{name} (nnlit/speed/precision.py overrides it)"
    calls = inspect.getsource(Precision._wrap_closure if name == "_after_closure" else Precision._after_closure)
    assert f"self.{name}(" in calls, MOVED % f"the call of Precision.{name} (nnlit/speed/precision.py relies on it)"


def test_the_cli_still_parses_a_checkpoint_through_the_method_nnlit_overrides():
    """LightningCLI merges a checkpoint's hyperparameters into the config (its class_path included) in
    _parse_ckpt_path; nnlit's CLI makes that a no-op, so the config stays the source of truth and a checkpoint never
    names the class the command builds."""
    from lightning.pytorch.cli import LightningCLI

    from nnlit.lightning_cli import NNLitCLI

    assert "self._parse_ckpt_path()" in inspect.getsource(LightningCLI.__init__), (
        MOVED % "LightningCLI._parse_ckpt_path"
    )
    assert NNLitCLI._parse_ckpt_path is not LightningCLI._parse_ckpt_path


def test_the_arguments_lightningcli_builds_a_module_with_are_readable_in_its_init():
    """An nnlit module saves the arguments LightningCLI built it with (its config, the linked values): read from the
    context Lightning's ``save_hyperparameters`` reads them from."""
    from nnlit.cli import build

    seen = []

    class Recording(BinaryMLP):
        def __init__(self, **kwargs):
            seen.append(lightning_internals.given_hyperparameters())
            super().__init__(**kwargs)

    assert lightning_internals.given_hyperparameters() is None
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setitem(globals(), "Recording", Recording)
            build(["--config", "configs/heads/binary.yaml", f"--model={__name__}.Recording"])
    except ImportError as err:
        pytest.fail(MOVED % "lightning.pytorch.core.mixins.hparams_mixin._given_hyperparameters" + f" ({err})")
    given = seen[0]
    assert isinstance(given, dict), MOVED % "the hyperparameters LightningCLI gives the module it builds"
    assert given["_class_path"] == f"{__name__}.Recording" and given["in_features"] == 2


def test_the_attached_trainer_is_read_without_the_property_that_raises(make_trainer):
    module = BinaryMLP(in_features=2, hidden=[4])
    with pytest.raises(RuntimeError, match="not attached to a `Trainer`"):
        _ = module.trainer  # why nnlit reads the attribute behind it
    assert lightning_internals.attached_trainer(module) is None, MOVED % "LightningModule._trainer"
    trainer = make_trainer(max_steps=1)
    trainer.fit(module, datamodule=TabularDataModule(dataset="xor", n_samples=40))  # Lightning attaches it
    assert lightning_internals.attached_trainer(module) is trainer, MOVED % "LightningModule._trainer"


class _Publishing(L.Callback):
    """Publishes a value at each training epoch's end and reads what callbacks see afterwards."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = torch.tensor(float(trainer.current_epoch))
        values = {"probe/epoch": value, "probe/hidden": value}
        lightning_internals.publish_epoch_values(trainer, values, ["probe/epoch"])

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch > 0:  # the previous epoch's value, still there after Lightning's epoch-end work
            self.seen.append((trainer.current_epoch, float(trainer.callback_metrics["probe/epoch"])))


def test_values_put_in_callback_metrics_stay_there_for_the_fit(make_trainer):
    probe = _Publishing()
    best = ModelCheckpoint(dirpath=make_trainer().default_root_dir, monitor="probe/epoch", mode="min", filename="b")
    trainer = make_trainer(max_epochs=3, callbacks=[probe, best], enable_checkpointing=True)
    trainer.fit(BinaryMLP(in_features=2, hidden=[4]), datamodule=TabularDataModule(dataset="xor", n_samples=40))
    assert probe.seen == [(1, 0.0), (2, 1.0)], MOVED % "the dict `Trainer.callback_metrics` returns and keeps"
    assert float(trainer.callback_metrics["probe/epoch"]) == 2.0, MOVED % "Trainer.callback_metrics"
    assert float(trainer.progress_bar_metrics["probe/epoch"]) == 2.0, MOVED % "Trainer.progress_bar_metrics"
    assert "probe/hidden" not in trainer.progress_bar_metrics and "probe/hidden" in trainer.callback_metrics
    assert best.best_model_score == 0.0, MOVED % "the metrics ModelCheckpoint monitors (`callback_metrics`)"
