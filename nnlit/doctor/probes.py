"""The doctor's probes: a config built as ``nnlit fit`` builds it, then the table, the config, the initialisation, one
small batch overfitted, and a short fit with the monitors; each returns plain measurements for the diagnosis rules."""

from __future__ import annotations

import copy
import math
import sys
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import yaml
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ProgressBar
from torch import Tensor, nn
from typing_extensions import override

from nnlit import quiet
from nnlit.callbacks.dead_relu import DeadReLUCounter
from nnlit.callbacks.fit_report import FitReport
from nnlit.callbacks.gradient_saturation import GradientSaturationMonitor, activation_kind, saturated
from nnlit.callbacks.non_finite_loss import NonFiniteLossError, StopOnNonFiniteLoss
from nnlit.callbacks.save_plots import SavePlots
from nnlit.callbacks.weight_init import WeightInit

#: rows of the overfit-one-batch probe, and its optimizer steps (TheDeepChecker: a batch of 16, 1000 steps)
OVERFIT_ROWS = 32
OVERFIT_STEPS = 200
#: at most this many epochs in a probe fit (the config's own max_epochs when fewer)
PROBE_EPOCHS = 15
#: optimizer steps of which the update / weight ratio is read (every ``UPDATE_EVERY``-th step)
UPDATE_EVERY = 4


@dataclass
class Built:
    """A config built as ``nnlit fit`` builds it, with what the rules need to know about it."""

    model: Any
    datamodule: Any
    trainer: L.Trainer
    config: dict[str, Any]  # flat, dotted keys
    callbacks: list[dict[str, Any]]  # the config's trainer.callbacks, as given
    init_callbacks: list[str]  # the class names of the initialisation callbacks
    max_epochs: int


def build_config(config: str, overrides: Sequence[str], root: str) -> Built:
    """Builds ``config`` with ``overrides`` (``--key=value`` strings) through the ``nnlit`` command's parser."""
    from nnlit.lightning_cli import build

    args = ["--config", config, *overrides]
    args += [f"--trainer.default_root_dir={root}", "--report=false", "--trainer.enable_progress_bar=false"]
    args += ["--trainer.enable_model_summary=false", "--trainer.logger=false"]
    argv, sys.argv = sys.argv, sys.argv[:1]  # the parser reads only `args` (LightningCLI warns when both are given)
    try:
        with quiet.inner_fit():
            cli = build(args)
    finally:
        sys.argv = argv
    as_dict = cli.config.as_dict()
    flat = flatten(as_dict)
    callbacks = (as_dict.get("trainer") or {}).get("callbacks") or []
    callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
    written = _written_callbacks(config)
    if written is not None and len(written) == len(callbacks):  # as the user wrote them: no defaults spelt out
        callbacks = written
    trainer_callbacks = cli.trainer.callbacks  # type: ignore[attr-defined]
    init = [type(c).__name__ for c in trainer_callbacks if isinstance(c, WeightInit)]
    max_epochs = cli.trainer.max_epochs if cli.trainer.max_epochs and cli.trainer.max_epochs > 0 else 100
    return Built(cli.model, cli.datamodule, cli.trainer, flat, callbacks, init, max_epochs)


def _written_callbacks(config: str) -> list[dict[str, Any]] | None:
    """The ``trainer.callbacks`` of a config file as written; ``None`` when unreadable."""
    try:
        tree = yaml.safe_load(Path(config).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    callbacks = (tree.get("trainer") or {}).get("callbacks") if isinstance(tree, dict) else None
    if not isinstance(callbacks, list) or not all(isinstance(c, dict | str) for c in callbacks):
        return None
    return [c if isinstance(c, dict) else {"class_path": c} for c in callbacks]


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}`` (lists stay values; every mapping is also kept at its own key)."""
    out: dict[str, Any] = {}
    if isinstance(tree, dict):
        if prefix:
            out[prefix] = tree
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    else:
        out[prefix] = tree
    return out


def callbacks_without_init(built: Built) -> list[dict[str, Any]] | None:
    """The config's ``trainer.callbacks`` without its initialisation callbacks; ``None`` when it has none."""
    if not built.init_callbacks:
        return None
    names = set(built.init_callbacks)
    return [c for c in built.callbacks if str(c.get("class_path", "")).rsplit(".", 1)[-1] not in names]


# ---------------------------------------------------------------- the table
@dataclass
class TableView:
    """The raw table as numpy arrays, split as the data module splits it."""

    x: np.ndarray
    y: np.ndarray
    names: list[str]
    task: str
    train: np.ndarray
    val: np.ndarray
    standardize: bool
    features_fix: bool


def table_view(built: Built) -> TableView:
    dm = built.datamodule
    table = dm.table
    x = table.x.numpy().astype(np.float64)
    y = table.y.numpy()
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    features_fix = built.config.get("data.init_args.path") is not None or bool(
        built.config.get("data.init_args.features")
    )
    return TableView(
        x,
        y,
        list(table.numeric),
        table.task,
        dm.split_indices("train").numpy(),
        dm.split_indices("val").numpy(),
        bool(getattr(dm, "standardize", True)),
        features_fix,
    )


# ---------------------------------------------------------------- the model
def head_task(model: Any) -> str:
    from nnlit.models.binary import BinaryMLP
    from nnlit.models.regression import RegressionMLP

    if isinstance(model, BinaryMLP):
        return "binary"
    if isinstance(model, RegressionMLP):
        return "regression"
    return "multiclass"


def optimizer_of(model: Any) -> tuple[str, float | None, float]:
    """The optimizer class name, learning rate and coupled weight decay (added to the gradient, an L2 penalty; 0 when
    it has none, or when it is decoupled: AdamW's, or ``decoupled_weight_decay=True``) the model's
    ``configure_optimizers`` would use."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    try:
        optimizer = model.optimizer(trainable) if hasattr(model, "optimizer") else None
    except Exception:  # a user's optimizer that needs more than the parameters: no static learning-rate rule
        return "", None, 0.0
    if optimizer is None:
        return "", None, 0.0
    group = optimizer.param_groups[0]
    lr, decay = group.get("lr"), group.get("weight_decay")
    decoupled = type(optimizer).__name__.lower() == "adamw" or bool(group.get("decoupled_weight_decay"))
    decay = float(decay) if isinstance(decay, float | int) and not decoupled else 0.0
    return type(optimizer).__name__, float(lr) if isinstance(lr, float | int) else None, decay


def activation_kinds(model: nn.Module) -> dict[str, str]:
    """Each activation module of ``model``, by name, with its kind (``"relu"``, ``"sigmoid"`` …)."""
    return {name: kind for name, m in model.named_modules() if (kind := activation_kind(m))}


def prior_loss(view: TableView) -> float:
    """The loss of predicting the prior on the training rows: the entropy of the labels (cross-entropy), or 1 for
    regression (nnlit's regression head learns standardised targets, whose variance is 1)."""
    y = view.y[view.train]
    if view.task != "classification" or y.ndim != 1:
        return 1.0
    shares = np.bincount(y.astype(np.int64)) / len(y)
    shares = shares[shares > 0]
    return float(-(shares * np.log(shares)).sum())


def chance_score(view: TableView) -> float:
    """Accuracy of always predicting the training majority class, on the validation rows; 0 (R²) for regression."""
    if view.task != "classification" or view.y.ndim != 1:
        return 0.0
    majority = np.bincount(view.y[view.train].astype(np.int64)).argmax()
    return float(np.mean(view.y[view.val] == majority)) if len(view.val) else 0.0


# ---------------------------------------------------------------- probing a fit
@dataclass
class InitMeasurements:
    first_loss: float | None = None
    spreads: dict[str, float] = field(default_factory=dict)
    dead: dict[str, tuple[int, int]] = field(default_factory=dict)
    saturation: dict[str, float] = field(default_factory=dict)
    overfit: tuple[float, float] | None = None  # first and last loss of the overfit-one-batch probe
    initial_state: dict[str, Tensor] | None = None


class ProbeRecorder(Callback):
    """Measures the initialisation (after every initialiser callback, before the first step), overfits one small
    batch on a copy, and reads the update / weight ratio of the weights every few optimizer steps."""

    def __init__(self, rows: tuple[Tensor, Tensor], measure_init: bool) -> None:
        self.rows = rows
        self.measure_init = measure_init
        self.init = InitMeasurements()
        self.update_ratios: dict[str, list[float]] = {}
        self._before: dict[str, Tensor] = {}
        self._steps = 0
        self._handles: list[Any] = []

    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.init.initial_state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        if self.measure_init:
            measure_init(pl_module, self.rows, self.init)
        weights = {n: m.weight for n, m in pl_module.named_modules() if isinstance(m, nn.Linear)}
        for optimizer in trainer.optimizers:
            self._handles.append(optimizer.register_step_pre_hook(lambda *_: self._pre(weights)))
            self._handles.append(optimizer.register_step_post_hook(lambda *_: self._post(weights)))

    def _pre(self, weights: dict[str, Tensor]) -> None:
        self._steps += 1
        if self._steps % UPDATE_EVERY == 0:
            self._before = {n: w.detach().clone() for n, w in weights.items()}

    def _post(self, weights: dict[str, Tensor]) -> None:
        if not self._before:
            return
        with torch.no_grad():
            for name, weight in weights.items():
                size = float(weight.norm())
                if size > 0 and math.isfinite(size):
                    change = float((weight - self._before[name]).norm())
                    self.update_ratios.setdefault(name, []).append(change / size)
        self._before = {}

    @override
    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def median_update_ratios(self) -> dict[str, float]:
        """Each weight's median update / weight ratio over the second half of the readings."""
        return {n: float(np.median(v[len(v) // 2 :])) for n, v in self.update_ratios.items() if v}


def measure_init(module: Any, rows: tuple[Tensor, Tensor], out: InitMeasurements) -> None:
    """The first loss, the spread of each Linear's weight rows, the dead and saturated units on ``rows``, and the
    overfit-one-batch probe on a copy of ``module``."""
    x, y = rows
    x, y = x.to(module.device), y.to(module.device)
    for name, m in module.named_modules():
        if isinstance(m, nn.Linear) and m.out_features > 1 and m.weight.requires_grad:
            w = m.weight.detach()
            out.spreads[name] = float((w - w.mean(0, keepdim=True)).norm() / (w.norm() + 1e-12))
    outputs: dict[str, Tensor] = {}
    handles = [
        m.register_forward_hook(lambda mod, _, o, n=name: outputs.__setitem__(n, o.detach()))
        for name, m in module.named_modules()
        if activation_kind(m)
    ]
    try:
        with torch.no_grad():
            logits = module(x)
            if hasattr(module, "compute_loss"):
                out.first_loss = float(module.compute_loss(logits, y))
    finally:
        for handle in handles:
            handle.remove()
    kinds = {name: activation_kind(m) for name, m in module.named_modules() if activation_kind(m)}
    for name, output in outputs.items():
        if kinds[name] in ("relu", "relu6") and output.ndim == 2:
            out.dead[name] = (int((output.amax(0) <= 0).sum()), output.shape[1])
        if kinds[name] in ("sigmoid", "tanh"):
            layer = dict(module.named_modules())[name]
            out.saturation[name] = float(saturated(layer, output).float().mean())
    out.overfit = overfit_batch(module, x[:OVERFIT_ROWS], y[:OVERFIT_ROWS])


def overfit_batch(module: Any, x: Tensor, y: Tensor) -> tuple[float, float] | None:
    """Trains a copy of ``module`` on ``x`` alone for :data:`OVERFIT_STEPS` steps with Adam (lr 1e-2: the question is
    whether the net, its loss and the labels allow learning, not whether the config's learning rate is right); returns
    its first and last loss."""
    if not hasattr(module, "compute_loss") or len(x) < 2:
        return None
    twin = copy.deepcopy(module.network if hasattr(module, "network") else module)
    twin.train()
    loss_of = module.compute_loss
    params = [p for p in twin.parameters() if p.requires_grad]
    if not params:
        return None
    optimizer = torch.optim.Adam(params, lr=1e-2)
    first = last = math.nan
    with torch.enable_grad():
        for step in range(OVERFIT_STEPS):
            loss = loss_of(twin(x), y)
            if step == 0:
                first = float(loss)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            twin.eval()
            last = float(loss_of(twin(x), y))
    return first, last


@dataclass
class FitMeasurements:
    """What one probe fit measured."""

    epochs: list[dict[str, float]]
    grad_norms: dict[str, float]
    dead: dict[str, tuple[int, int]]
    saturation: dict[str, float]
    update_ratios: dict[str, float]
    init: InitMeasurements
    nan: NonFiniteLossError | None = None
    seconds: float = 0.0
    dead_history: list[dict[str, float]] = field(default_factory=list)
    saturation_history: list[dict[str, float]] = field(default_factory=list)
    grad_history: list[dict[str, float]] = field(default_factory=list)

    def metric(self, name: str) -> float | None:
        """The last epoch's value of ``name`` (``val/acc`` …)."""
        values = [e[name] for e in self.epochs if name in e]
        return values[-1] if values else None


def probe_fit(built: Built, epochs: int, measure_init: bool = True, seed: int = 0) -> FitMeasurements:
    """A short fit of ``built``'s model and data with its own callbacks (initialisers included; checkpoints, pictures
    and the progress bar left out), the monitors, a :class:`ProbeRecorder` and an epoch-metric recorder."""
    import time

    dm, model = built.datamodule, built.model
    train_x, train_y = dm.split_tensors("train")
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(train_x), generator=gen)[:1024]
    recorder = ProbeRecorder((train_x[pick], train_y[pick]), measure_init)
    counter, monitor, report = DeadReLUCounter(), GradientSaturationMonitor(grad_norm_steps=8), FitReport(False)
    dropped: tuple[type, ...] = (ModelCheckpoint, ProgressBar, SavePlots, FitReport, StopOnNonFiniteLoss)
    dropped += (DeadReLUCounter, GradientSaturationMonitor)
    own = [c for c in built.trainer.callbacks if not isinstance(c, dropped)]  # type: ignore[attr-defined]
    original = built.trainer
    with tempfile.TemporaryDirectory() as scratch:
        trainer = L.Trainer(
            accelerator="cpu",
            devices=1,
            max_epochs=epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            default_root_dir=scratch,
            gradient_clip_val=original.gradient_clip_val,
            accumulate_grad_batches=original.accumulate_grad_batches,
            callbacks=[*own, StopOnNonFiniteLoss(), recorder, counter, monitor, report],
        )
        nan = None
        start = time.perf_counter()
        with quiet.inner_fit(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            L.seed_everything(seed, verbose=False)
            try:
                trainer.fit(model, datamodule=dm)
            except NonFiniteLossError as err:
                nan = err
        seconds = time.perf_counter() - start
    last_grad = monitor.history[-1] if monitor.history else {}
    last_dead = counter.history[-1] if counter.history else {}
    dead = {n: (c, last_dead["units"][n]) for n, c in last_dead.get("dead", {}).items()}
    return FitMeasurements(
        epochs=report.epochs,
        grad_norms=dict(last_grad.get("grad_norm", {})),
        dead=dead,
        saturation=dict(last_grad.get("saturation", {})),
        update_ratios=recorder.median_update_ratios(),
        init=recorder.init,
        nan=nan,
        seconds=seconds,
        dead_history=[{n: c / h["units"][n] for n, c in h["dead"].items()} for h in counter.history],
        saturation_history=[dict(h["saturation"]) for h in monitor.history],
        grad_history=[dict(h["grad_norm"]) for h in monitor.history],
    )
