"""The LightningCLI behind ``nnlit fit`` / ``validate`` / ``test`` / ``predict``: nnlit's heads and data module.

``nnlit fit --config configs/quickstart.yaml`` trains; ``nnlit predict --config … --ckpt_path …`` writes a CSV (with
``--data.init_args.path=null --data.init_args.predict_path=new.csv``, from the checkpoint alone, no training data).
Every class is chosen by ``class_path`` / ``init_args``; the data module's feature and class counts are linked into
the model, so nobody types them twice. :mod:`nnlit.cli` dispatches the command line here (and to the other
subcommands); ``nnlit tune`` and ``nnlit doctor`` build their runs with :func:`build`.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any, Literal

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from nnlit import example_configs, quiet
from nnlit.callbacks.fit_report import FitReport
from nnlit.callbacks.prediction_writer import CSVPredictionWriter
from nnlit.callbacks.progress_bar import TimedProgressBar
from nnlit.callbacks.requeue import SLURMRequeue
from nnlit.callbacks.threads import Threads
from nnlit.checkpoint_io import AtomicCheckpointIO
from nnlit.data.tabular import TabularDataModule
from nnlit.loggers import ResumableCSVLogger
from nnlit.models.base import MLPModule
from nnlit.runs import WHICH, check_resumable, claim_version, resolve_checkpoint, run_checkpoint
from nnlit.speed.precision import StepHooksPrecision
from nnlit.speed.profiler import NullProfiler

DESCRIPTION = (
    "nnlit: multilayer perceptrons on PyTorch Lightning. `nnlit fit --config quickstart` trains the quick start "
    "(a shipped config; any YAML file works). "
    "Besides Lightning's subcommands below: `nnlit plot RUN_DIR` draws a finished run, `nnlit export --ckpt_path X "
    "--format onnx|torchscript` writes a file to serve a model, `nnlit tune --config X --search S` searches "
    "hyperparameters with Optuna, `nnlit doctor --config X` diagnoses a training run and verifies a fix (each has its "
    "own --help)."
)


class NNLitCLI(LightningCLI):
    """LightningCLI with the data → model links and a CSV prediction writer.

    The optimizer and scheduler are arguments of the model (``model.init_args.optimizer``), not the top-level
    ``--optimizer`` of LightningCLI: that one would be built from every parameter, frozen ones included.

    With ``--ckpt_path`` the config stays the source of truth. LightningCLI would replace the model's config with the
    hyperparameters saved in the checkpoint, silently ignoring what the user set (a new ``threshold`` for
    ``predict``, say); nnlit builds the model from the config and, when its layers do not match the checkpoint's,
    stops with an error naming each layer and both shapes.

    ``only_subcommand`` (``"fit"``, say) builds the parser of that subcommand alone: the command line that runs it
    parses as it would with all four, and building each of the others' parsers from the classes' signatures would cost
    as much again (:func:`make` passes it when the arguments start with a subcommand).
    """

    def __init__(self, *args: Any, only_subcommand: str | None = None, **kwargs: Any) -> None:
        every = LightningCLI.subcommands()
        if only_subcommand is not None and only_subcommand not in every:
            raise ValueError(f"`only_subcommand` can be {', '.join(every)} or None, got {only_subcommand!r}")
        self._only_subcommand = only_subcommand
        super().__init__(*args, **kwargs)

    def subcommands(self) -> dict[str, set[str]]:  # type: ignore[override]
        """Lightning's subcommands and the ``Trainer`` method arguments each skips; only ``only_subcommand``'s when it
        is given."""
        every = LightningCLI.subcommands()
        only = getattr(self, "_only_subcommand", None)
        return every if only is None else {only: every[only]}

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The Trainer, with :class:`~nnlit.callbacks.TimedProgressBar` in place of Lightning's default bar (which
        redraws after every batch) unless the config names a progress bar or disables it, and a ``CSVLogger`` as the
        default logger whatever else is installed; for ``fit``, a :class:`~nnlit.callbacks.FitReport` unless the
        config names one or sets ``report: false``; no CSV prediction writer for ``fit``, ``validate`` and ``test``; a
        :class:`~nnlit.NullProfiler` unless the config names a profiler or sets ``barebones`` (which takes
        none); a :class:`~nnlit.StepHooksPrecision` in place of Lightning's 32-bit ``Precision`` plugin (other
        precisions and strategies keep their own); an :class:`~nnlit.checkpoint_io.AtomicCheckpointIO` in place of
        Lightning's default checkpoint IO: atomic saves, checked plain-data loads; under SLURM, for ``fit``, a
        :class:`~nnlit.callbacks.SLURMRequeue` unless the config names one."""
        config = self._chosen("trainer", default={})
        callbacks = config.get("callbacks") or []
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        wants_bar = config.get("enable_progress_bar") is not False
        if wants_bar and "callbacks" not in kwargs and not any(isinstance(c, ProgressBar) for c in callbacks):
            kwargs["callbacks"] = [*callbacks, TimedProgressBar()]
        wants_report = self.subcommand == "fit" and self._chosen("report", default=True)
        if wants_report and not any(isinstance(c, FitReport) for c in kwargs.get("callbacks", callbacks)):
            kwargs["callbacks"] = [*kwargs.get("callbacks", callbacks), FitReport()]
        if self.subcommand == "fit" and not any(isinstance(c, Threads) for c in kwargs.get("callbacks", callbacks)):
            threads = self._chosen("threads", default="auto")
            kwargs["callbacks"] = [*kwargs.get("callbacks", callbacks), Threads(threads)]
        if config.get("logger") in (None, True) and "logger" not in kwargs:
            # Lightning's default logger is TensorBoard's when tensorboard(X) happens to be installed, else a CSV one;
            # nnlit always writes metrics.csv (`nnlit plot` reads it): name a TensorBoardLogger to get TensorBoard's.
            root = config.get("default_root_dir") or os.getcwd()
            version = SLURMEnvironment.job_id()
            if version is None and _is_first_process() and self.subcommand is not None:  # build() runs nothing
                # two runs started together in one folder would both pick the next free version_N
                version = claim_version(os.path.join(root, "lightning_logs"))
            kwargs["logger"] = ResumableCSVLogger(root, version=version)  # a requeued job adds to its metrics.csv
        chosen = kwargs.get("callbacks", callbacks)
        on_slurm = self.subcommand == "fit" and SLURMEnvironment.detect()
        if on_slurm and not any(isinstance(c, SLURMRequeue) for c in chosen):
            kwargs["callbacks"] = [*chosen, SLURMRequeue()]  # saves and requeues at a step, every rank together
        if config.get("profiler") is None and not config.get("barebones") and "profiler" not in kwargs:
            kwargs["profiler"] = NullProfiler()  # Lightning's default, at a lower cost per hook call
        trainer = super().instantiate_trainer(**kwargs)
        if type(trainer.strategy.precision_plugin) is Precision:  # exactly Lightning's 32-bit one, not a subclass
            trainer.strategy.precision_plugin = StepHooksPrecision()
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # Lightning's default, not one the config names
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        if self.subcommand in ("fit", "validate", "test"):
            # The `prediction_writer` arguments build a CSVPredictionWriter for every subcommand; it only writes in
            # `predict`, and in `fit` Lightning would still call it in each of the 3 per-minibatch hooks.
            writer = self._chosen("prediction_writer")
            trainer.callbacks = [c for c in trainer.callbacks if c is not writer]  # type: ignore[attr-defined]
        return trainer

    def _chosen(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` in the config of the subcommand being run (the whole config for :func:`build`)."""
        section = self.config_init.get(str(self.subcommand), self.config_init)
        return section.get(key, default)

    def _parse_ckpt_path(self) -> None:
        """Does not merge the checkpoint's hyperparameters into the config (see the class docstring)."""

    def before_instantiate_classes(self) -> None:
        """Resolves ``--ckpt_path best`` / ``last`` / a run folder to the newest run's file under the trainer's
        ``default_root_dir`` (see :func:`nnlit.runs.resolve_checkpoint`); ``fit --ckpt_path last`` with no run yet
        trains from scratch, saying so. When the run's folder is named (a logger ``version`` in the config, or the
        SLURM job id of the default logger), ``fit --ckpt_path last`` means that run's last checkpoint only, resolved
        in ``before_fit``: a new job trains from scratch beside older runs instead of resuming one of them. For
        ``predict`` with a checkpoint and a data module given no ``dataset`` nor ``path``, or a ``predict_path``, hands
        the checkpoint to the data module (its ``checkpoint`` argument): the feature names, scaler, vocabularies and
        classes come from it, and no training data is read."""
        if self.subcommand is None:  # build(): nothing runs
            return
        config = self.config[self.subcommand]
        ckpt_path = config.get("ckpt_path")
        self._own_run_last = self.subcommand == "fit" and ckpt_path == "last" and _names_its_run(config)
        if self._own_run_last:  # the run's folder is known once the logger is built: before_fit resolves it
            config["ckpt_path"] = None
            return
        if ckpt_path is not None and (ckpt_path in WHICH or os.path.isdir(ckpt_path)):
            root = (config.get("trainer") or {}).get("default_root_dir") or os.getcwd()
            try:
                config["ckpt_path"] = ckpt_path = str(resolve_checkpoint(ckpt_path, root))
            except FileNotFoundError as err:
                if not (self.subcommand == "fit" and ckpt_path == "last"):
                    raise
                rank_zero_info(f"{err}; training from scratch")
                config["ckpt_path"] = ckpt_path = None
        if self.subcommand != "predict":
            return
        data = config.get("data")
        init_args = data.get("init_args") if data is not None and "init_args" in data else data
        if ckpt_path is None or init_args is None or "checkpoint" not in init_args:
            return
        no_source = init_args.get("dataset") is None and init_args.get("path") is None
        if init_args.get("checkpoint") is None and (no_source or init_args.get("predict_path") is not None):
            init_args["checkpoint"] = ckpt_path  # then only predict_path is read

    def before_predict(self) -> None:
        """Lightning's predict loop warns that it cannot infer the batch indices of a loader that is not a
        ``DataLoader``; nnlit's loader carries each row's index in its batches instead. The warning is hidden for the
        command's predict only (``after_predict`` restores the filters)."""
        self._predict_warnings = warnings.catch_warnings()
        self._predict_warnings.__enter__()
        warnings.filterwarnings("ignore", message="Couldn't infer the batch indices fetched from your dataloader")

    def after_predict(self) -> None:
        self._predict_warnings.__exit__(None, None, None)

    def before_fit(self) -> None:
        """Refuses a fit that would train nothing (``max_epochs: 0`` or ``max_steps: 0``), which Lightning ends at once
        with exit status 0. For a module that logs once per epoch (an nnlit head whose ``training_step`` is nnlit's),
        hides Lightning's warning that an epoch has fewer batches than ``log_every_n_steps``. Resolves ``--ckpt_path
        last`` in the run's own folder (see ``before_instantiate_classes``), refusing a checkpoint of another model."""
        if getattr(self, "_own_run_last", False):
            self._resume_own_run()
        for key in ("max_epochs", "max_steps"):
            if getattr(self.trainer, key) == 0:
                raise ValueError(
                    f"`trainer.{key}` is 0, so fit would train nothing: give a positive number (-1: no limit)"
                )
        if isinstance(self.model, MLPModule) and type(self.model).training_step is MLPModule.training_step:
            quiet.hide_log_interval_warning()  # until make returns: it runs the command within catch_warnings

    def _resume_own_run(self) -> None:
        run_dir = str(self.trainer.loggers[0].log_dir)  # named in advance: no version is looked for
        path = run_checkpoint(run_dir, self.trainer.default_root_dir)
        if path is not None:
            check_resumable(self.model, path, run_dir)
        self.config_init[self.subcommand]["ckpt_path"] = None if path is None else str(path)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # A head without the target argument (BinaryMLP has no out_features) ignores that link; the target's
        # training mean and std let RegressionMLP learn standardised targets while reporting in the target's units.
        parser.link_arguments("data.num_features", "model.init_args.in_features", apply_on="instantiate")
        parser.link_arguments("data.categories", "model.init_args.categories", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")
        parser.link_arguments("data.num_targets", "model.init_args.out_features", apply_on="instantiate")
        parser.link_arguments("data.target_mean", "model.init_args.target_mean", apply_on="instantiate")
        parser.link_arguments("data.target_std", "model.init_args.target_std", apply_on="instantiate")
        parser.add_lightning_class_args(CSVPredictionWriter, "prediction_writer")
        parser.add_argument(
            "--report",
            type=bool,
            default=True,
            help="print a report when `fit` ends (capacity, metrics, dead units, saturation, advice): FitReport",
        )
        parser.add_argument(
            "--threads",
            type=int | Literal["auto"],
            default="auto",
            help="CPU threads for `fit` on the CPU: a number, or auto (one for a small training step, else the CPUs "
            "this process may use that others leave idle): nnlit.callbacks.Threads",
        )


def _names_its_run(config: Any) -> bool:
    """Whether the fit's log folder is named in advance: a logger given a ``version``, or the default logger under
    SLURM (its version is the job id)."""
    logger = (config.get("trainer") or {}).get("logger")
    if logger in (None, True):
        return SLURMEnvironment.job_id() is not None
    first = logger[0] if isinstance(logger, list) and logger else logger
    init_args = first.get("init_args") if hasattr(first, "get") else None
    return init_args is not None and init_args.get("version") is not None


def _is_first_process() -> bool:
    """Whether this is the process of global rank 0, or the only one (before Lightning has set up any rank)."""
    return all(os.environ.get(name, "0") == "0" for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def make(args: list[str] | None, run: bool) -> NNLitCLI:
    if args is None:  # LightningCLI reads sys.argv itself (given a list, it warns that it is meant for Python use)
        sys.argv[1:] = example_configs.resolve_arguments(sys.argv[1:])
    else:
        args = example_configs.resolve_arguments(args)
    given = sys.argv[1:] if args is None else args
    # `nnlit fit …` needs fit's parser only; `nnlit --help` or a misspelt subcommand gets all four, to list them
    only = given[0] if run and given and given[0] in LightningCLI.subcommands() else None
    with warnings.catch_warnings():  # what the command's hooks hide (before_fit, before_predict) ends with it
        return _cli(args, run, only)


def _cli(args: list[str] | None, run: bool, only_subcommand: str | None = None) -> NNLitCLI:
    return NNLitCLI(
        MLPModule,
        TabularDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True},
        # allow_abbrev: a misspelt --trainer.max_epoc would otherwise set max_epochs silently (a YAML file refuses it)
        parser_kwargs={"description": DESCRIPTION, "exit_on_error": False, "allow_abbrev": False},
        run=run,
        args=args,
        only_subcommand=only_subcommand,
    )


def build(args: list[str]) -> NNLitCLI:
    """The model, data module and trainer (``.model``, ``.datamodule``, ``.trainer``) that ``nnlit`` builds from
    ``args`` (``--config …`` and overrides, no subcommand), without running anything: for scripts and tests."""
    return make(args, run=False)
