"""The base LightningModule shared by the binary, multiclass and regression heads."""

from __future__ import annotations

import functools
import inspect
import io
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch import Tensor, nn
from torchmetrics import MetricCollection

from nnlit.callbacks.non_finite_loss import StopOnNonFiniteLoss
from nnlit.callbacks.threads import Threads
from nnlit.checkpoint_io import checked_hyperparameters, read_bytes, read_checkpoint
from nnlit.data.loader import BatchGroup
from nnlit.models.batch_groups import lightning_loop_reason, train_group
from nnlit.models.epoch_metrics import EpochMetrics
from nnlit.models.step_buffer import StepBuffer
from nnlit.models.weighted_mean import WeightedMean
from nnlit.nn.mlp import MLP
from nnlit.trust import CALLABLE_KINDS, resolve_spec

#: seconds between the loggers' ``save()`` in a fit (the first epoch's metrics are saved at once, the rest when the fit
#: ends): a CSV logger writes its file and TensorBoard's flushes to disk (``fsync``) at each save
LOGGER_SAVE_SECONDS = 2.0


class MLPModule(L.LightningModule):
    """An :class:`~nnlit.MLP` trained with Lightning; subclassed by :class:`~nnlit.BinaryMLP`,
    :class:`~nnlit.MulticlassMLP` and :class:`~nnlit.RegressionMLP`.

    A step is made of small pieces a subclass can override: :meth:`build_network` (the ``nn.Module``),
    :meth:`compute_loss`, :meth:`metric_inputs` (what the torchmetrics objects are updated with),
    :meth:`predict_outputs` (what ``predict`` returns) and :meth:`check_targets` (a one-off check of the first batch).
    Metrics are updated every step and computed, logged and reset once per epoch as ``train/…``, ``val/…``,
    ``test/…``; the loss is logged as ``<stage>/loss``. The :class:`~nnlit.models.epoch_metrics.EpochMetrics` callback
    that :meth:`configure_callbacks` adds does it, so a subclass's epoch hooks need no ``super()``.

    The optimizer and scheduler are injected as callables (the LightningCLI way): ``optimizer`` receives only the
    parameters with ``requires_grad``, so frozen layers never reach it. From Python pass a class or a
    ``functools.partial`` (a lambda cannot be pickled into a checkpoint).

    Args:
        in_features: number of input features.
        out_features: number of network outputs.
        hidden: hidden layer widths.
        activation: activation name (see :data:`nnlit.nn.ACTIVATIONS`).
        activation_kwargs: keyword arguments of the activation, e.g. ``{"negative_slope": 0.1}``.
        dropout: dropout probability after each hidden activation.
        norm: ``None``, ``"batch"`` or ``"layer"``.
        bias: whether the Linear layers have a bias.
        optimizer: builds the optimizer from the trainable parameters; default Adam with lr 1e-3. Also accepted:
            ``{"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1}}``, the form saved in checkpoints, for a
            class of ``torch.optim`` or of a module already imported (see :mod:`nnlit.trust`).
        lr_scheduler: builds a scheduler from the optimizer; ``ReduceLROnPlateau`` monitors ``val/loss``.
        pretrained: a checkpoint (an nnlit ``.ckpt``, a saved ``state_dict``, or a run folder: its newest run's)
            whose network weights are loaded when the module is built; see :meth:`load_pretrained`. Saved as ``None``
            in the hyperparameters: the weights it gave are in this module's own checkpoints.
        scheduler_interval: step the scheduler every ``"epoch"`` or every optimizer ``"step"`` (e.g. OneCycleLR).
        categories: the number of codes of each categorical input column (the last ``len(categories)`` of the
            ``in_features``; the nnlit CLI links it from the data module): those columns are one-hot encoded or
            embedded inside the network (see :class:`~nnlit.nn.categorical.CategoricalEncoder`). ``None``: every input
            column is numeric.
        max_one_hot: a categorical column of at most this many codes (unknown included) is one-hot encoded; a wider
            one gets a learned embedding. ``0`` embeds every column.
        embedding_dim: the width of every embedding; default ``min(600, round(1.6 · codes^0.56))`` per column.
    """

    #: the metric shown in the progress bar, next to the loss
    progress_bar_metric = ""
    #: the metric a ``ReduceLROnPlateau`` scheduler watches
    scheduler_monitor = "val/loss"
    _automatic_choice: bool | None = None  # set through the `automatic_optimization` setter
    _validated_epoch = -1  # the last epoch whose validation logged val/… (for ReduceLROnPlateau)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (64, 64),
        activation: str | None = "relu",
        activation_kwargs: dict[str, Any] | None = None,
        dropout: float = 0.0,
        norm: str | None = None,
        bias: bool = True,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        pretrained: str | None = None,
        scheduler_interval: str = "epoch",
        categories: Sequence[int] | None = None,
        max_one_hot: int = 16,
        embedding_dim: int | None = None,
    ) -> None:
        super().__init__()
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"`scheduler_interval` must be 'epoch' or 'step', got {scheduler_interval!r}")
        self.scheduler_interval = scheduler_interval
        frame = _outermost_init_frame(self)
        self.save_hyperparameters(frame=frame)  # what the class was built with (or LightningCLI gave it)
        given = dict(self.hparams)
        kept = _own_hparams(type(self), given)  # plain data; a second save replaces the values and drops the rest
        self.save_hyperparameters(kept, ignore=[key for key in given if key not in kept], frame=frame)
        self.in_features = in_features
        self.out_features = out_features
        self.hidden = list(hidden)
        self.activation = activation
        self.activation_kwargs = activation_kwargs
        self.dropout = dropout
        self.norm = norm
        self.bias = bias
        self.categories = None if categories is None else [int(n) for n in categories]
        self.max_one_hot = max_one_hot
        self.embedding_dim = embedding_dim
        self.optimizer = _as_callable(optimizer, "optimizer")
        self.lr_scheduler = None if lr_scheduler is None else _as_callable(lr_scheduler, "lr_scheduler")
        self.network = self.build_network()
        #: the checkpoint the network weights came from (initialiser callbacks will not overwrite them unasked)
        self.pretrained_from = pretrained
        if pretrained is not None:
            self.load_pretrained(pretrained)
        metrics = self.build_metrics()
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        # The epoch loss as a metric: a mean weighted by rows and reduced across DDP ranks like the others, so every
        # rank sees the same exact value (a ReduceLROnPlateau or early stopping on val/loss decides the same
        # everywhere).
        self.train_loss = WeightedMean()
        self.val_loss = WeightedMean()
        self.test_loss = WeightedMean()
        # Metric inputs are handed to torchmetrics every 32 steps, not every step (see StepBuffer)
        self._step_buffers = {
            "train": StepBuffer(self.train_metrics, self.train_loss),
            "val": StepBuffer(self.val_metrics, self.val_loss),
            "test": StepBuffer(self.test_metrics, self.test_loss),
        }
        self._checked_stages: set[str] = set()
        self._loggers_saved_at = float("-inf")  # time.monotonic() of the loggers' last save() in a fit

    # ---------------------------------------------------------------- pieces a subclass overrides
    def build_network(self) -> nn.Module:
        """The network: by default ``MLP(in_features, hidden, out_features, …)``, with its categorical encoder first
        when the module has ``categories``."""
        return MLP(
            self.in_features,
            self.hidden,
            self.out_features,
            activation=self.activation,
            activation_kwargs=self.activation_kwargs,
            dropout=self.dropout,
            norm=self.norm,
            bias=self.bias,
            categories=self.categories,
            max_one_hot=self.max_one_hot,
            embedding_dim=self.embedding_dim,
        )

    def load_pretrained(self, path: str) -> None:
        """Loads the network weights of a pretrained checkpoint (a ``.ckpt`` or ``state_dict`` file, read as checked
        plain data; or a run folder: its newest run's best checkpoint, else its ``last.ckpt``).

        Every tensor of the network must be in the checkpoint with the same shape, except those of the network's
        last layer with parameters (the head): a head of another width (a new task) keeps its fresh weights, with a
        log line. Anything else that differs is an error naming each tensor and both shapes.

        Raises:
            FileNotFoundError: naming the path.
            ValueError: when the body of the network does not match the checkpoint.
        """
        if Path(path).is_dir():
            from nnlit.runs import resolve_checkpoint  # here: nnlit.runs reads checkpoints, a layer above

            path = str(resolve_checkpoint(path))
        if not Path(path).is_file():
            raise FileNotFoundError(f"Pretrained checkpoint not found: {path!r}")
        loaded = read_checkpoint(path, map_location="cpu")
        state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else {}
        prefix = "network."
        source = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)} or dict(state)
        target = self.network.state_dict()
        head = [name for name, m in self.network.named_modules() if any(True for _ in m.parameters(recurse=False))][-1]
        skipped, problems = [], []
        for key in sorted(set(source) - set(target)):
            if not key.startswith(f"{head}."):
                problems.append(f"{prefix}{key}: in the checkpoint, not in the model")
        for key, tensor in target.items():
            if key not in source:
                problems.append(f"{prefix}{key}: missing from the checkpoint")
            elif source[key].shape != tensor.shape:
                if key.startswith(f"{head}."):
                    skipped.append(key)
                else:
                    shapes = f"{tuple(source[key].shape)} in the checkpoint, {tuple(tensor.shape)} in the model"
                    problems.append(f"{prefix}{key}: {shapes}")
        if problems:
            raise ValueError(
                f"The pretrained checkpoint {path!r} does not fit this network (only its head, {prefix}{head}, may "
                "differ):\n  " + "\n  ".join(problems)
            )
        self.network.load_state_dict(
            {k: v for k, v in source.items() if k in target and k not in skipped}, strict=False
        )
        note = f"; new head {prefix}{head} of another shape keeps its fresh weights" if skipped else ""
        rank_zero_info(f"Loaded pretrained weights from {path}{note}")

    def build_metrics(self) -> MetricCollection:
        """The torchmetrics objects of one stage (cloned with a ``train/``, ``val/``, ``test/`` prefix)."""
        raise NotImplementedError

    def compute_loss(self, outputs: Tensor, target: Tensor) -> Tensor:
        """The training loss of a batch from the raw network outputs."""
        raise NotImplementedError

    def metric_inputs(self, outputs: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """``(preds, target)`` passed to the metrics' ``update``."""
        raise NotImplementedError

    def predict_outputs(self, outputs: Tensor) -> dict[str, Tensor]:
        """What ``predict`` returns for a batch of raw network outputs."""
        raise NotImplementedError

    def check_targets(self, target: Tensor) -> None:
        """Checks the targets of the first batch (once: a value check costs a host sync)."""

    def check_data(self, datamodule: Any) -> None:
        """Checks the data module's shape against the network, before anything is trained."""
        num_features = getattr(datamodule, "num_features", None)
        if num_features is not None and num_features != self.in_features:
            raise ValueError(
                f"The data has {num_features} features but the model was built with in_features={self.in_features}:"
                f" set `in_features: {num_features}` (the nnlit CLI links it from the data for you)"
            )

    # ---------------------------------------------------------------- Lightning hooks
    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)

    def setup(self, stage: str) -> None:
        trainer = self._trainer
        datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
        if datamodule is not None:
            self.check_data(datamodule)
        if trainer is None:
            return
        reason = lightning_loop_reason(self, MLPModule.training_step)
        if stage == "fit" and reason is not None:
            rank_zero_info(
                f"{type(self).__name__} trains one minibatch per Lightning step (Lightning's loop): {reason}"
            )

    @property
    def automatic_optimization(self) -> bool:
        """``False``: nnlit's :meth:`training_step` runs the optimizer itself, once per minibatch, so that one
        Lightning step can train a whole :class:`~nnlit.data.loader.BatchGroup` (see :mod:`nnlit.models.batch_groups`,
        the loop's contract).

        ``True`` (Lightning's usual loop, one minibatch per step) when set so explicitly, when a subclass overrides
        ``training_step``, or when the Trainer clips gradients or accumulates batches (Lightning does both only in its
        own loop); the reason is logged once per fit.
        """
        return lightning_loop_reason(self, MLPModule.training_step) is not None

    @automatic_optimization.setter
    def automatic_optimization(self, value: bool) -> None:
        self._automatic_choice = value

    @property
    def takes_batch_groups(self) -> bool:
        """Whether :meth:`training_step` takes :class:`~nnlit.data.loader.BatchGroup` batches (read by
        :class:`~nnlit.TabularDataModule`)."""
        return not self.automatic_optimization

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        """One minibatch, or each minibatch of a :class:`~nnlit.data.loader.BatchGroup`: forward, backward and an
        optimizer step apiece (:func:`~nnlit.models.batch_groups.train_group`, whose module says what counts
        minibatches and what counts groups)."""
        if self.automatic_optimization or self._trainer is None:  # no Trainer: a direct call, as in a unit test
            if isinstance(batch, BatchGroup):
                raise ValueError(
                    "A BatchGroup reached a training step outside nnlit's own optimization loop (automatic "
                    "optimization, or no Trainer), which trains one minibatch per step: set the data module's "
                    "`batches_per_step: 1`"
                )
            return self._shared_step(batch, "train")
        return train_group(self, batch)

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "test")

    def configure_callbacks(self) -> list[Callback]:
        """:class:`~nnlit.models.epoch_metrics.EpochMetrics`, which logs the epoch metrics (a subclass's epoch hooks
        need no ``super()``), and :class:`~nnlit.callbacks.Threads` unless the Trainer has one (torch's CPU threads
        chosen for the fit's size and the machine's load; pass ``Threads(n)`` to the Trainer to choose yourself).
        A subclass's own ``configure_callbacks`` needs no ``super()`` either: whatever it returns (a list or one
        callback), these are added to it unless they are there."""
        return _with_defaults(self, [])

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("configure_callbacks")
        if own is not None and not getattr(own, "keeps_epoch_metrics", False):
            cls.configure_callbacks = _keeping_epoch_metrics(own)  # type: ignore[method-assign,assignment]

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Tensor]:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        self._check_width(x)
        predictions = self.predict_outputs(self(x))
        if isinstance(batch, (tuple, list)) and len(batch) > 1:
            predictions["row"] = batch[1]
        return predictions

    def configure_optimizers(self) -> Any:
        trainable = [p for p in self.parameters() if p.requires_grad]
        if not trainable:
            raise ValueError("Every parameter is frozen (requires_grad=False): there is nothing to optimize")
        optimizer = self.optimizer(trainable)
        if self.lr_scheduler is None:
            return optimizer
        scheduler = self.lr_scheduler(optimizer)
        config = {"scheduler": scheduler, "interval": self.scheduler_interval}
        if self.automatic_optimization:  # under manual optimization Lightning ignores (and warns about) `monitor`
            config["monitor"] = self.scheduler_monitor
        return {"optimizer": optimizer, "lr_scheduler": config}

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls,
        checkpoint_path: str | Path,
        map_location: Any = None,
        hparams_file: str | Path | None = None,
        strict: bool | None = None,
        weights_only: bool | None = None,
        *,
        trusted: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Lightning's ``load_from_checkpoint``, reading the file as plain data checked against nnlit's allowlist
        (see :mod:`nnlit.trust`): the module is built from its hyperparameters with ``cls(**hparams)``, never through
        the ``_instantiator`` a checkpoint names, and an ``optimizer`` / ``lr_scheduler`` only from ``torch.optim``
        or an already-imported module. ``trusted=True`` (for a file you made yourself) is Lightning's own loading:
        pickled objects are built and the modules the file names are imported.

        Raises:
            UntrustedCheckpointError: (a ``ValueError``) naming the key that nnlit refuses to build from.
            ValueError: for ``weights_only=False`` without ``trusted=True``.
        """
        if trusted:
            checkpoint = read_checkpoint(checkpoint_path, trusted=True)  # type: ignore[arg-type]
            hparams = checkpoint.get(cls.CHECKPOINT_HYPER_PARAMS_KEY) or {}
            if "_instantiator" not in hparams:  # else LightningCLI's instantiator builds them
                for key in CALLABLE_KINDS:
                    spec = hparams.get(key)
                    if isinstance(spec, Mapping) and "class_path" in spec and key not in kwargs:
                        kwargs[key] = resolve_spec(spec, key, str(checkpoint_path), (), trusted=True)
            only = False if weights_only is None else weights_only
            return super().load_from_checkpoint(checkpoint_path, map_location, hparams_file, strict, only, **kwargs)
        if weights_only is False:
            raise ValueError(
                "weights_only=False builds the pickled objects of a checkpoint, which runs their code: pass "
                "trusted=True, for a file you made yourself"
            )
        # read once: Lightning builds from exactly the bytes that were checked
        data = read_bytes(checkpoint_path)
        hparams = checked_hyperparameters(checkpoint_path, cls.CHECKPOINT_HYPER_PARAMS_KEY, hparams_file, data)
        return super().load_from_checkpoint(
            io.BytesIO(data), map_location, None, strict, True, **{**hparams, "_instantiator": None, **kwargs}
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Records the class that saves the checkpoint (``checkpoint["nnlit"]["class_path"]``) and nnlit's version,
        so that :func:`nnlit.load` rebuilds the right class without being told. A subclass overriding this hook calls
        ``super()``."""
        from nnlit import __version__  # here, not at the top: nnlit/__init__.py imports this module

        cls = type(self)
        checkpoint["nnlit"] = {"class_path": f"{cls.__module__}.{cls.__qualname__}", "version": __version__}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        _check_state_dict_shapes(self.state_dict(), checkpoint.get("state_dict", {}))

    # ---------------------------------------------------------------- internals
    def _shared_step(self, batch: Any, stage: str) -> Tensor:
        x, target = batch[0], batch[1]
        self._check_width(x)
        if stage not in self._checked_stages:
            self.check_targets(target)
            self._checked_stages.add(stage)
        if stage == "train" and len(x) == 1 and self.norm == "batch":
            raise ValueError(
                "A training batch has a single row, and BatchNorm cannot normalise one row: set the data module's "
                "`drop_last: true`, or choose a batch_size that does not leave a last batch of 1 row"
            )
        outputs = self(x)
        loss = self.compute_loss(outputs, target)
        self._step_buffers[stage].add(*self.metric_inputs(outputs, target), loss, len(x))
        return loss

    def _start_epoch(self, stage: str) -> None:
        """Forgets what an interrupted epoch of the stage left behind."""
        buffer = self._step_buffers[stage]
        buffer.clear()
        buffer.metrics.reset()
        buffer.loss_metric.reset()

    def _log_epoch(self, stage: str) -> None:
        """Computes, logs and resets a stage's loss and metrics: once per epoch, not per step.

        ``self.log`` of a metric in every step costs more Python than a small MLP's forward and backward pass; here it
        runs once per epoch. ``compute`` reduces across DDP ranks (torchmetrics' own sync), so every rank logs the same
        value and ``sync_dist`` is not needed. During ``fit`` the values go to ``trainer.callback_metrics`` (monitors,
        the progress bar) through ``self.log``, and to the loggers directly, at ``step = trainer.global_step``
        (optimizer steps: Lightning's own step counts batch groups under nnlit's loop); ``validate`` and ``test`` log
        as Lightning does, so that they return and print their metrics.
        """
        buffer = self._step_buffers[stage]
        buffer.flush()
        metrics, loss_metric = buffer.metrics, buffer.loss_metric
        if loss_metric.update_count == 0:  # no batch this epoch (e.g. resumed at the end of an epoch)
            return
        trainer = self.trainer
        if stage == "val" and not trainer.sanity_checking:
            self._validated_epoch = trainer.current_epoch
        values = {f"{stage}/loss": loss_metric.compute()}
        for name, value in metrics.compute().items():
            if value.numel() > 1:  # one value per output (a regression of several targets): each, and their mean
                values.update({f"{name}_{j}": part for j, part in enumerate(value.flatten())})
                value = value.mean()
            values[name] = value
        fitting = trainer.state.fn == "fit"
        shown = {f"{stage}/loss"} if stage != "test" else set()
        shown.add(f"val/{self.progress_bar_metric}" if stage == "val" else "")
        for name, value in values.items():
            self.log(name, value, prog_bar=name in shown, logger=not fitting)
        if fitting and not trainer.sanity_checking and trainer.loggers:
            scalars = {name: float(value) for name, value in values.items()}
            now = time.monotonic()
            save = now - self._loggers_saved_at >= LOGGER_SAVE_SECONDS
            for logger in trainer.loggers:
                logger.log_metrics({**scalars, "epoch": trainer.current_epoch}, step=trainer.global_step)
                if save:  # a CSV file rewritten, TensorBoard's events flushed to disk: not every epoch of a small fit
                    logger.save()
            if save:
                self._loggers_saved_at = now
        loss_metric.reset()
        metrics.reset()

    def _check_width(self, x: Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"Expected a batch of shape (rows, {self.in_features}) for in_features={self.in_features}, "
                f"got {tuple(x.shape)}: the data's feature count does not match the model"
            )


def _with_defaults(module: L.LightningModule, callbacks: list[Callback]) -> list[Callback]:
    """``callbacks`` with :class:`EpochMetrics` and :class:`Threads` added where neither they nor the Trainer's
    callbacks have one (Lightning lets a module's callback replace the Trainer's of the same type: a Trainer's
    ``Threads(2)`` must stay)."""
    trainer = module._trainer
    present = [*callbacks, *getattr(trainer, "callbacks", [])]  # set by Lightning's callback connector
    if not any(isinstance(c, EpochMetrics) for c in callbacks):
        callbacks.append(EpochMetrics())
    if not any(isinstance(c, Threads) for c in present):
        callbacks.append(Threads())
    if not any(isinstance(c, StopOnNonFiniteLoss) for c in present):
        callbacks.append(StopOnNonFiniteLoss())
    return callbacks


def _keeping_epoch_metrics(configure: Callable[[Any], Any]) -> Callable[[Any], list[Callback]]:
    """A subclass's ``configure_callbacks``, with :class:`EpochMetrics` added to what it returns when missing."""

    @functools.wraps(configure)
    def configure_callbacks(self: Any) -> list[Callback]:
        returned = configure(self)
        return _with_defaults(self, [returned] if isinstance(returned, Callback) else list(returned or []))

    configure_callbacks.keeps_epoch_metrics = True  # type: ignore[attr-defined]
    return configure_callbacks


def _outermost_init_frame(module: L.LightningModule) -> Any:
    """The frame of the most-derived ``__init__`` running for ``module``.

    Its arguments (``**kwargs`` expanded) are exactly what ``type(module)(**hparams)`` needs; the arguments a subclass
    passes on to its parent (``hidden=[width]``) are derived, and saving them too would pass them twice on loading.
    """
    frame = inspect.currentframe()
    outermost = None
    while frame is not None:
        if frame.f_code.co_name == "__init__" and frame.f_locals.get("self") is module:
            outermost = frame
        frame = frame.f_back
    return outermost


def _own_hparams(cls: type, hparams: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters to save: without those the class does not accept (LightningCLI adds linked values such as
    ``num_classes`` even for a head without that argument, which would make ``load_from_checkpoint`` call the class
    with an argument it rejects) nor LightningCLI's ``_class_path`` (nnlit records the class itself); the injected
    optimizer and scheduler as ``{"class_path", "init_args"}`` data; ``pretrained`` as ``None`` (the weights it gave
    are in the checkpoint)."""
    accepted: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(vars(klass)["__init__"]).parameters.values()
        accepted |= {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    accepted.discard("self")
    kept = {k: v for k, v in hparams.items() if k in accepted or (k.startswith("_") and k != "_class_path")}
    for key in ("optimizer", "lr_scheduler"):
        if key in kept:
            kept[key] = _describe_callable(kept[key])
    if "pretrained" in kept:
        kept["pretrained"] = None
    return kept


def _describe_callable(obj: Any) -> Any:
    """A class or ``functools.partial`` of a class as ``{"class_path", "init_args"}``: plain data, so checkpoints load
    with ``weights_only=True``. Anything else is kept as it is."""
    func, kwargs = (obj.func, dict(obj.keywords)) if isinstance(obj, functools.partial) else (obj, {})
    if isinstance(obj, functools.partial) and obj.args:
        return obj
    if isinstance(func, type):
        return {"class_path": f"{func.__module__}.{func.__qualname__}", "init_args": kwargs}
    return obj


def _as_callable(spec: Any, key: str) -> Callable[..., Any]:
    """The inverse of :func:`_describe_callable`: a ``{"class_path", "init_args"}`` dict becomes a partial of a class
    of ``torch.optim`` or of an already-imported module, of the kind ``key`` takes (see :mod:`nnlit.trust`)."""
    if not isinstance(spec, Mapping):
        return spec
    if "class_path" not in spec:
        raise ValueError(f"An optimizer / scheduler given as a dict needs a 'class_path' key, got {sorted(spec)}")
    return resolve_spec(spec, key, None, CALLABLE_KINDS[key])


def _check_state_dict_shapes(model_state: dict[str, Tensor], ckpt_state: dict[str, Tensor]) -> None:
    """Raises one readable error when a checkpoint was trained with another network shape than the config's."""
    problems = []
    for name, tensor in ckpt_state.items():
        if name in model_state and tuple(model_state[name].shape) != tuple(tensor.shape):
            problems.append(
                f"{name}: {tuple(tensor.shape)} in the checkpoint, {tuple(model_state[name].shape)} in the model"
            )
    missing = sorted(set(model_state) - set(ckpt_state))
    unexpected = sorted(set(ckpt_state) - set(model_state))
    if missing:
        problems.append(f"missing from the checkpoint: {', '.join(missing)}")
    if unexpected:
        problems.append(f"not in the model: {', '.join(unexpected)}")
    if problems:
        raise ValueError(
            "The checkpoint does not fit the network built from the config (hidden, activation, norm, in/out "
            "features must match the run that saved it):\n  " + "\n  ".join(problems)
        )
