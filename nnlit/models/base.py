"""The base LightningModule shared by the binary, multiclass and regression heads."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch import Tensor, nn
from torchmetrics import MetricCollection

from nnlit.callbacks.non_finite_loss import StopOnNonFiniteLoss
from nnlit.callbacks.threads import Threads
from nnlit.checked_loading import checked_load_arguments
from nnlit.checkpoint_io import DAMAGED_TENSORS, read_checkpoint
from nnlit.data.loader import BatchGroup
from nnlit.distributed import destroy_process_group_at_exit
from nnlit.lightning_internals import attached_trainer
from nnlit.models.epoch_metrics import EpochMetrics
from nnlit.models.hyperparameters import as_callable, saved_hyperparameters
from nnlit.models.pretrained import load_network_weights
from nnlit.models.weighted_mean import WeightedMean
from nnlit.nn.mlp import MLP
from nnlit.nn.options import MLPOptions
from nnlit.speed.batch_groups import lightning_loop_reason, train_group
from nnlit.speed.step_buffer import StepBuffer
from nnlit.trust import CALLABLE_KINDS, check_declared_sizes, resolve_spec
from nnlit.version import __version__


class MLPModule(L.LightningModule):
    """An :class:`~nnlit.MLP` trained with Lightning; subclassed by :class:`~nnlit.BinaryMLP`,
    :class:`~nnlit.MulticlassMLP` and :class:`~nnlit.RegressionMLP`.

    A step is made of small pieces a subclass can override: :meth:`build_network` (the ``nn.Module``),
    :meth:`compute_loss`, :meth:`metric_inputs` (what the torchmetrics objects are updated with),
    :meth:`predict_outputs` (what ``predict`` returns) and :meth:`check_targets` (a one-off check of the first batch).
    Metrics are updated every step and computed, logged and reset once per epoch as ``train/…``, ``val/…``,
    ``test/…``; the loss is logged as ``<stage>/loss``. The :class:`~nnlit.models.epoch_metrics.EpochMetrics` callback
    that the module adds to its Trainer does it, so a subclass's epoch hooks need no ``super()``, and its own
    ``configure_callbacks`` is Lightning's hook, free (see :func:`add_default_callbacks`).

    The optimizer and scheduler are injected as callables (the LightningCLI way): ``optimizer`` receives only the
    parameters with ``requires_grad``, so frozen layers never reach it. From Python pass a class or a
    ``functools.partial`` (a lambda cannot be pickled into a checkpoint).

    Args:
        in_features: number of input features.
        out_features: number of network outputs.
        optimizer: builds the optimizer from the trainable parameters; default Adam with lr 1e-3. Also accepted:
            ``{"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1}}``, the form saved in checkpoints, for a
            class of ``torch.optim`` or of a module already imported (see :mod:`nnlit.trust`).
        lr_scheduler: builds a scheduler from the optimizer; ``ReduceLROnPlateau`` monitors ``val/loss``.
        pretrained: a checkpoint (an nnlit ``.ckpt``, a saved ``state_dict``, or a run folder: its newest run's)
            whose network weights are loaded when the module is built; see :meth:`load_pretrained`. Saved as ``None``
            in the hyperparameters: the weights it gave are in this module's own checkpoints.
        scheduler_interval: step the scheduler every ``"epoch"`` or every optimizer ``"step"`` (e.g. OneCycleLR).
        **options: the options of the network's body, each declared once in :class:`~nnlit.nn.options.MLPOptions`
            (its docs follow): ``hidden``, ``activation``, ``dropout``, ``norm``, …, kept as :attr:`options`.
    """

    #: the metric shown in the progress bar, next to the loss
    progress_bar_metric = ""
    #: the metric a ``ReduceLROnPlateau`` scheduler watches
    scheduler_monitor = "val/loss"
    #: the last epoch whose validation logged ``val/…`` (a ``ReduceLROnPlateau`` steps only after one)
    validated_epoch = -1
    _loop_choice: bool | None = None  # what `automatic_optimization` was set to by hand

    def __init__(
        self,
        in_features: int,
        out_features: int,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        pretrained: str | None = None,
        scheduler_interval: str = "epoch",
        **options: Any,
    ) -> None:
        super().__init__()
        # nnlit's loop or Lightning's, chosen again when a Trainer is attached (see the `trainer` setter)
        self._lightning_loop = lightning_loop_reason(type(self), MLPModule.training_step, None, None)
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"`scheduler_interval` must be 'epoch' or 'step', got {scheduler_interval!r}")
        MLPOptions.check_names(type(self).__name__, options)
        #: the options of the network's body (widths, activation, norm, …): see :class:`~nnlit.nn.options.MLPOptions`
        self.options = MLPOptions(**options)
        self.in_features = in_features
        self.out_features = out_features
        self.scheduler_interval = scheduler_interval
        self.optimizer = as_callable(optimizer, "optimizer")
        self.lr_scheduler = None if lr_scheduler is None else as_callable(lr_scheduler, "lr_scheduler")
        self.save_hyperparameters(saved_hyperparameters(type(self)))
        self.network = self.build_network()
        # one row (zeros: numbers at the mean, categories unknown), so that Lightning's model summary counts each
        # layer's FLOPs and shows its sizes rather than a FLOPs column of zeros
        self.example_input_array = torch.zeros(1, in_features)
        #: the checkpoint the network weights came from (initialiser callbacks will not overwrite them unasked)
        self.pretrained_from = pretrained
        if pretrained is not None:
            self.load_pretrained(pretrained)
        # Each stage's metrics and loss behind a StepBuffer, which hands them their inputs every 32 steps: built on
        # first use (in `setup` at the latest), after a subclass's __init__ has set what its build_metrics reads
        self._step_buffers: dict[str, StepBuffer] | None = None
        self._checked_stages: set[str] = set()
        #: whether the training split's metrics (beyond its loss) are computed: the estimators read no others
        self.training_metrics = True

    # ---------------------------------------------------------------- pieces a subclass overrides
    def build_network(self) -> nn.Module:
        """The network: by default ``MLP(in_features, hidden, out_features, …)`` built from :attr:`options`, with its
        categorical encoder first when the module has ``categories``."""
        return MLP(self.in_features, out_features=self.out_features, **self.options.as_kwargs())

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
        load_network_weights(self.network, path)

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
        destroy_process_group_at_exit()  # a CPU (gloo) process of a distributed fit can abort at exit otherwise
        self._step_buffer("train")  # the metrics built before the Trainer places the module
        trainer = attached_trainer(self)
        datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
        if datamodule is not None:
            self.check_data(datamodule)
        if trainer is not None and stage == "fit" and self._lightning_loop is not None:
            rank_zero_info(
                f"{type(self).__name__} trains one minibatch per Lightning step (Lightning's loop): "
                f"{self._lightning_loop}"
            )

    @property
    def trainer(self) -> L.Trainer:
        return super().trainer

    @trainer.setter
    def trainer(self, trainer: L.Trainer | None) -> None:
        """Attaches ``trainer`` (Lightning does, before it checks the loop's configuration and asks the module for its
        callbacks), adds nnlit's default callbacks to it (:func:`add_default_callbacks`) and chooses the training loop
        for it, once: :func:`~nnlit.speed.batch_groups.lightning_loop_reason`."""
        L.LightningModule.trainer.fset(self, trainer)  # type: ignore[attr-defined]
        if trainer is not None:
            add_default_callbacks(trainer)
        self._lightning_loop = lightning_loop_reason(type(self), MLPModule.training_step, trainer, self._loop_choice)

    @property
    def automatic_optimization(self) -> bool:
        """``False``: nnlit's :meth:`training_step` runs the optimizer itself, once per minibatch, so that one
        Lightning step can train a whole :class:`~nnlit.data.loader.BatchGroup` (see :mod:`nnlit.speed.batch_groups`,
        the loop's contract).

        ``True`` (Lightning's usual loop, one minibatch per step) when set so explicitly, when a subclass overrides
        ``training_step``, or when the Trainer clips gradients or accumulates batches (Lightning does both only in its
        own loop). Chosen when the module is built and again when a Trainer is attached; the reason is logged once
        per fit.
        """
        return self._lightning_loop is not None

    @automatic_optimization.setter
    def automatic_optimization(self, value: bool) -> None:
        self._loop_choice = value
        self._lightning_loop = lightning_loop_reason(
            type(self), MLPModule.training_step, attached_trainer(self), self._loop_choice
        )

    @property
    def takes_batch_groups(self) -> bool:
        """Whether :meth:`training_step` takes :class:`~nnlit.data.loader.BatchGroup` batches (read by
        :class:`~nnlit.TabularDataModule`)."""
        return not self.automatic_optimization

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        """One minibatch, or each minibatch of a :class:`~nnlit.data.loader.BatchGroup`: forward, backward and an
        optimizer step apiece (:func:`~nnlit.speed.batch_groups.train_group`, whose module says what counts
        minibatches and what counts groups)."""
        if self.automatic_optimization or attached_trainer(self) is None:  # no Trainer: a direct call (a unit test)
            if isinstance(batch, BatchGroup):
                raise ValueError(
                    "A BatchGroup reached a training step outside nnlit's own optimization loop (automatic "
                    "optimization, or no Trainer), which trains one minibatch per step: set the data module's "
                    "`batches_per_step: 1`"
                )
            return self.step_loss(batch, "train")
        return train_group(self, batch)

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self.step_loss(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self.step_loss(batch, "test")

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
        refusal = ": pass trusted=True, for a file you made yourself"
        data, arguments = checked_load_arguments(cls, checkpoint_path, hparams_file, weights_only, kwargs, refusal)
        state_dict = read_checkpoint(checkpoint_path, data=data.getvalue()).get("state_dict")
        built = {key: value for key, value in arguments.items() if key != "_instantiator"}
        check_declared_sizes(lambda: cls(**built), state_dict, str(checkpoint_path))  # before any allocation
        try:
            return super().load_from_checkpoint(data, map_location, None, strict, True, **arguments)
        except RuntimeError as err:
            if "storage" not in str(err):
                raise
            raise ValueError(f"{str(checkpoint_path)!r} {DAMAGED_TENSORS} ({err})") from None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Records the class that saves the checkpoint (``checkpoint["nnlit"]["class_path"]``) and nnlit's version,
        so that :func:`nnlit.load` rebuilds the right class without being told. A subclass overriding this hook calls
        ``super()``."""
        cls = type(self)
        checkpoint["nnlit"] = {"class_path": f"{cls.__module__}.{cls.__qualname__}", "version": __version__}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        _check_state_dict_shapes(self.state_dict(), checkpoint.get("state_dict", {}))

    def stage_metrics(self, stage: str) -> MetricCollection:
        """The torchmetrics objects of ``stage`` (``"train"``, ``"val"`` or ``"test"``), built from
        :meth:`build_metrics` on first use."""
        return self._step_buffer(stage).metrics

    # ---------------------------------------------------------------- internals
    def _step_buffer(self, stage: str) -> StepBuffer:
        if self._step_buffers is None:
            self._step_buffers = self._build_step_buffers()
        return self._step_buffers[stage]

    def _build_step_buffers(self) -> dict[str, StepBuffer]:
        """Each stage's metrics (``train/…``, ``val/…``, ``test/…``) and loss, as submodules on the module's device,
        behind a :class:`StepBuffer` that hands them their inputs every 32 steps.

        The epoch loss is a metric too: a mean weighted by rows and reduced across DDP ranks like the others, so every
        rank sees the same exact value (a ReduceLROnPlateau or early stopping on val/loss decides the same
        everywhere)."""
        metrics = self.build_metrics()
        buffers = {}
        for stage in ("train", "val", "test"):
            kept = metrics if stage != "train" or self.training_metrics else MetricCollection({})  # the loss alone
            setattr(self, f"{stage}_metrics", kept.clone(prefix=f"{stage}/").to(self.device))
            setattr(self, f"{stage}_loss", WeightedMean().to(self.device))
            buffers[stage] = StepBuffer(getattr(self, f"{stage}_metrics"), getattr(self, f"{stage}_loss"))
        return buffers

    def step_loss(self, batch: Any, stage: str) -> Tensor:
        """The loss of one minibatch of ``stage`` (``"train"``, ``"val"``, ``"test"``); its metric inputs are kept for
        the epoch's metrics (checked once per stage: :meth:`check_targets`)."""
        x, target = batch[0], batch[1]
        self._check_width(x)
        if stage not in self._checked_stages:
            self.check_targets(target)
            self._checked_stages.add(stage)
        if stage == "train" and len(x) == 1 and self.options.norm == "batch":
            raise ValueError(
                "A training batch has a single row, and BatchNorm cannot normalise one row: set the data module's "
                "`drop_last: true`, or choose a batch_size that does not leave a last batch of 1 row"
            )
        outputs = self(x)
        loss = self.compute_loss(outputs, target)
        self._step_buffer(stage).add(*self.metric_inputs(outputs, target), loss, len(x))
        return loss

    def _check_width(self, x: Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"Expected a batch of shape (rows, {self.in_features}) for in_features={self.in_features}, "
                f"got {tuple(x.shape)}: the data's feature count does not match the model"
            )


def add_default_callbacks(trainer: L.Trainer) -> None:
    """Adds to ``trainer`` the callbacks every nnlit module trains with, where the Trainer has none of the kind:
    :class:`~nnlit.models.epoch_metrics.EpochMetrics` (the epoch metrics, logged whatever the subclass's epoch hooks
    do), :class:`~nnlit.callbacks.Threads` (torch's CPU threads chosen for the fit's size and the machine's load; pass
    ``Threads(n)`` to the Trainer to choose yourself) and :class:`~nnlit.callbacks.StopOnNonFiniteLoss`.

    Called when a module is attached, before Lightning asks it for ``configure_callbacks``: what a subclass returns
    there is added too, and replaces a default of its kind, as Lightning does with the Trainer's own callbacks.
    Checkpoint callbacks stay last (Lightning's order), so they see the epoch's metrics."""
    callbacks = list(trainer.callbacks)  # type: ignore[attr-defined]
    for kind in (EpochMetrics, Threads, StopOnNonFiniteLoss):
        if not any(isinstance(c, kind) for c in callbacks):
            callbacks.append(kind())
    checkpoints = [c for c in callbacks if isinstance(c, Checkpoint)]
    trainer.callbacks = [c for c in callbacks if not isinstance(c, Checkpoint)] + checkpoints  # type: ignore[attr-defined]


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
