"""Precision plugins: StepHooksPrecision against Lightning's 32-bit one; bf16 on CPU end to end; fp16 with a gradient
scaler on a GPU (skipped without one)."""

import functools
import math
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.profilers import SimpleProfiler

from nnlit import MulticlassMLP, RegressionMLP, StepHooksPrecision, TabularDataModule
from nnlit.callbacks import GradientSaturationMonitor
from nnlit.cli import build, main
from nnlit.runs import find_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def grad_norms(precision: str, accelerator: str = "cpu") -> dict[str, float]:
    """Per-layer gradient norms of one epoch with fixed weights (lr 0), so every precision sees the same model."""
    L.seed_everything(0)
    model = RegressionMLP(
        in_features=2, hidden=[16, 16], activation="tanh", optimizer=functools.partial(torch.optim.SGD, lr=0.0)
    )
    monitor = GradientSaturationMonitor()
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[monitor],
    )
    trainer.fit(model, datamodule=TabularDataModule(dataset="sine", n_samples=512, batch_size=64, seed=0))
    return monitor.history[-1]["grad_norm"]


STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")


class Recorder(Callback):
    """Records each step hook's call: its name, the optimizer step, the name Lightning's logging sees, and a
    summary of the argument (the loss, or the gradient norm Lightning's clipping has or has not touched)."""

    def __init__(self, calls: list) -> None:
        self.calls = calls

    def record(self, hook: str, module: L.LightningModule, value: float | None) -> None:
        self.calls.append((f"callback.{hook}", module.trainer.global_step, module._current_fx_name, value))

    def on_before_backward(self, trainer, pl_module, loss):
        self.record("on_before_backward", pl_module, float(loss))

    def on_after_backward(self, trainer, pl_module):
        self.record("on_after_backward", pl_module, None)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.record("on_before_optimizer_step", pl_module, grad_norm(pl_module))


class EpochsOnly(Callback):
    """Overrides none of the step hooks."""

    def on_train_epoch_start(self, trainer, pl_module):
        pass


class Logging(MulticlassMLP):
    """A user's subclass overriding two step hooks on the module, and logging from one."""

    def __init__(self, calls: list, automatic: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.calls = calls
        if automatic:
            self.automatic_optimization = True

    def on_after_backward(self):
        self.calls.append(("module.on_after_backward", self.trainer.global_step, self._current_fx_name, None))
        self.log("grad_norm_after_backward", grad_norm(self), on_step=True, on_epoch=False)

    def on_before_optimizer_step(self, optimizer):
        self.calls.append(("module.on_before_optimizer_step", self.trainer.global_step, self._current_fx_name, None))

    def compute_loss(self, outputs, target):
        # after the previous minibatch's hooks: the hook name must be back to the step's
        self.calls.append(("module.compute_loss", self.trainer.global_step, self._current_fx_name, None))
        return super().compute_loss(outputs, target)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        self.calls.append(("module.configure_gradient_clipping", self.trainer.global_step, self._current_fx_name, None))
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)


def grad_norm(module: L.LightningModule) -> float:
    return float(torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None]).norm())


def fit_recording(
    make_trainer, plugin: Precision, automatic: bool = False, profiler=None
) -> tuple[list, dict, L.Trainer]:
    L.seed_everything(0)
    calls: list = []
    model = Logging(calls, automatic=automatic, in_features=2, num_classes=2, hidden=[8])
    on_instance, not_callable = EpochsOnly(), EpochsOnly()
    on_instance.on_after_backward = lambda trainer, module: calls.append(("instance.on_after_backward",))
    not_callable.on_before_backward = "off"  # Lightning skips a hook that is not callable
    trainer = make_trainer(
        max_epochs=2,
        callbacks=[Recorder(calls), EpochsOnly(), on_instance, not_callable],
        plugins=[plugin],
        gradient_clip_val=0.05 if automatic else None,
        profiler=profiler,
    )
    data = TabularDataModule(dataset="xor", n_samples=200, batch_size=16, batches_per_step=4, seed=0)
    trainer.fit(model, datamodule=data)
    return calls, {k: v.clone() for k, v in model.state_dict().items()}, trainer


@pytest.mark.parametrize("automatic", [False, True], ids=["nnlit_step", "lightning_loop_with_clipping"])
def test_step_hooks_precision_calls_the_hooks_lightning_calls(automatic, make_trainer):
    """The same calls, in the same order, with the same arguments and hook names, the same logged values and the same
    trained weights as under Lightning's own Precision plugin; under automatic optimization, gradient clipping runs
    after the hooks."""
    expected, expected_weights, lightning = fit_recording(make_trainer, Precision(), automatic)
    calls, weights, trainer = fit_recording(make_trainer, StepHooksPrecision(), automatic)
    steps = trainer.global_step
    assert steps == 2 * 10  # 160 training rows in batches of 16, two epochs: every minibatch is an optimizer step
    assert calls == expected
    hooks = [c[0] for c in calls]
    assert hooks.count("callback.on_before_backward") == hooks.count("module.on_before_optimizer_step") == steps
    assert hooks.count("instance.on_after_backward") == steps
    named = [c for c in calls if len(c) == 4 and c[0].split(".")[1] in STEP_HOOKS]
    assert named and all(name == hook.split(".")[1] for hook, _, name, _ in named)
    assert {c[2] for c in calls if c[0] == "module.compute_loss"} == {"training_step", "validation_step"}
    assert hooks.count("module.configure_gradient_clipping") == (steps if automatic else 0)
    assert "grad_norm_after_backward" in trainer.callback_metrics  # self.log inside the hook
    assert trainer.callback_metrics.keys() == lightning.callback_metrics.keys()
    for key, value in lightning.callback_metrics.items():
        torch.testing.assert_close(trainer.callback_metrics[key], value, rtol=0, atol=0)
    for key in expected_weights:
        torch.testing.assert_close(weights[key], expected_weights[key], rtol=0, atol=0)


def test_step_hooks_precision_skips_the_empty_hooks(make_trainer):
    """Callback's and LightningModule's empty step hooks never run (Lightning runs them on every callback)."""
    empty = {getattr(base, hook).__code__ for hook in STEP_HOOKS for base in (Callback, L.LightningModule)}

    def empty_calls(plugin: Precision) -> list[str]:
        seen: list[str] = []

        def profile(frame, event, arg):
            if event == "call" and frame.f_code in empty:
                seen.append(frame.f_code.co_name)

        sys.setprofile(profile)
        try:
            fit_recording(make_trainer, plugin)
        finally:
            sys.setprofile(None)
        return seen

    assert set(empty_calls(Precision())) == set(STEP_HOOKS)
    assert empty_calls(StepHooksPrecision()) == []


def test_step_hooks_precision_calls_a_patched_base_hook(monkeypatch, make_trainer):
    """A base class method replaced after import (a mock, say) is called on every callback, as Lightning calls it."""

    def calls_of_patched(plugin: Precision) -> int:
        seen = []
        monkeypatch.setattr(Callback, "on_after_backward", lambda self, trainer, module: seen.append(type(self)))
        fit_recording(make_trainer, plugin)
        return len(seen)

    assert calls_of_patched(StepHooksPrecision()) == calls_of_patched(Precision()) > 0


def test_step_hooks_precision_releases_the_graph_after_backward(make_trainer):
    _, _, trainer = fit_recording(make_trainer, StepHooksPrecision())
    trainer.lightning_module.on_after_backward = lambda: None  # the recording hook reads gradients, gone after fit
    loss = torch.ones(1, requires_grad=True) * 2.0
    released = trainer.precision_plugin.post_backward(loss, trainer.lightning_module)
    assert not released.requires_grad and float(released) == 2.0


def test_step_hooks_precision_leaves_profiled_runs_to_lightning(make_trainer):
    _, _, trainer = fit_recording(make_trainer, StepHooksPrecision(), profiler=SimpleProfiler())
    # a profiler that records sees every callback's hook, as with Lightning's plugin
    assert "[Callback]EpochsOnly.on_before_backward" in trainer.profiler.recorded_durations


def test_the_nnlit_command_takes_step_hooks_precision_for_32_bit_only(tmp_path):
    config = ["--config", str(ROOT / "configs/quickstart.yaml"), f"--trainer.default_root_dir={tmp_path}"]
    assert type(build(config).trainer.precision_plugin) is StepHooksPrecision
    assert build(config).trainer.precision == "32-true"
    mixed = build([*config, "--trainer.precision=bf16-mixed"]).trainer.precision_plugin
    assert type(mixed) is MixedPrecision


def test_bf16_gradient_norms_match_fp32():
    fp32, bf16 = grad_norms("32-true"), grad_norms("bf16-mixed")
    assert fp32.keys() == bf16.keys()
    for name in fp32:
        assert bf16[name] == pytest.approx(fp32[name], rel=0.05), name


def test_bf16_end_to_end_from_the_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(
        [
            "fit",
            "--config",
            str(ROOT / "configs/quickstart.yaml"),
            "--trainer.precision=bf16-mixed",
            "--trainer.max_epochs=3",
            "--data.n_samples=600",
            "--trainer.enable_progress_bar=false",
            "--trainer.callbacks+=nnlit.callbacks.DeadReLUCounter",
            "--trainer.callbacks+=nnlit.callbacks.GradientSaturationMonitor",
        ]
    )
    checkpoint = torch.load(find_checkpoint(tmp_path / "runs/quickstart", "last"), weights_only=True)
    assert checkpoint["epoch"] == 2
    histories = {k: v["history"] for k, v in checkpoint["callbacks"].items() if "history" in v}
    assert len(histories) == 2 and all(len(h) == 3 for h in histories.values())
    assert all(
        math.isfinite(v) for v in histories[next(k for k in histories if "Gradient" in k)][-1]["grad_norm"].values()
    )
    assert all(torch.isfinite(t).all() for t in checkpoint["state_dict"].values())


@pytest.mark.gpu
def test_fp16_gradient_norms_are_read_after_unscaling():
    # the GradScaler multiplies the loss by 2**16; norms read before unscaling would be that much larger
    fp32, fp16 = grad_norms("32-true", "gpu"), grad_norms("16-mixed", "gpu")
    for name in fp32:
        assert fp16[name] == pytest.approx(fp32[name], rel=0.05), name


@pytest.mark.gpu
def test_quickstart_on_one_gpu(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(
        [
            "fit",
            "--config",
            str(ROOT / "configs/quickstart.yaml"),
            "--trainer.accelerator=gpu",
            "--trainer.devices=1",
            "--trainer.enable_progress_bar=false",
        ]
    )
    best = torch.load(find_checkpoint(tmp_path / "runs/quickstart", "best"), weights_only=True)
    score = next(v["best_model_score"] for k, v in best["callbacks"].items() if "val/acc" in k)
    assert float(score) >= 0.95
