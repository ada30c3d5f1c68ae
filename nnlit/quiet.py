"""What the ``nnlit`` command leaves out of its output: lines about Lightning's own products and deprecations inside
Lightning, which say nothing about the run.

:func:`command_output` wraps one command (``nnlit.cli.main``). What stays: nnlit's lines, Lightning's lines about
the run (device, seed, why the fit stopped), the model summary, the progress bar and the report.
``tests/test_cli_output.py`` checks a quick start's stderr against that list.

A Python session that imports nnlit keeps every line but three kinds, which come from Lightning's own calls a user
makes (``L.Trainer(...)``, ``trainer.fit``, ``trainer.save_checkpoint``) and say nothing they can act on:
:func:`hide_lightning_noise` drops them, narrowly (:data:`PRODUCT_TIPS`, :data:`SAVE_LINES`, and
:data:`DROPPED_WARNINGS` raised inside Lightning's own modules). The rest is scoped: :func:`inner_fit`,
:func:`watched_fit`, :func:`quiet_library_warnings`, :func:`quiet_onnx_exporter`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Lightning's informational loggers (``rank_zero_info``)
LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")

#: the starts of Lightning's lines left out: advertisements of its cloud products; a TPU line on a machine with none
DROPPED_LINES = ("💡 Tip:", "TPU available: False")

#: warnings raised inside Lightning that a user cannot act on (torch deprecated an API Lightning calls)
DROPPED_WARNINGS = (r"`isinstance\(treespec, LeafSpec\)` is deprecated",)

#: ModelCheckpoint's note, on loading a checkpoint from another run's folder, that it will not track that run's best
#: files: every run has its own folder, and validate / test / predict track none
OTHER_RUNS_FOLDER = r"The dirpath has changed from .* won't be reloaded"

#: the start of Lightning's advertisements of its cloud products, dropped wherever nnlit is imported
PRODUCT_TIPS = "💡 Tip:"

#: the logger of Lightning's checkpoint saving, and its line on every ``trainer.save_checkpoint(path)`` that the full
#: checkpoint is written: it reads as a warning about loading, which nnlit always does as plain data (docs: Trust)
CHECKPOINT_LOGGER = "lightning.pytorch.trainer.connectors.checkpoint_connector"
SAVE_LINES = ("`weights_only` was not set, defaulting to `False`.",)

_PACKAGE = str(Path(__file__).resolve().parent)


class _DropLines(logging.Filter):
    """Drops a logger's records whose message starts with one of ``starts``."""

    def __init__(self, starts: tuple[str, ...] = DROPPED_LINES) -> None:
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.starts)


#: the filters :func:`hide_lightning_noise` installed, by logger name (installed once per process)
_INSTALLED: dict[str, _DropLines] = {}


def hide_lightning_noise() -> None:
    """Drops, in this process, Lightning's product tips, its ``weights_only`` line on saving a checkpoint, and the
    deprecations in :data:`DROPPED_WARNINGS` that torch raises inside Lightning's own modules (a user's own code still
    gets them). ``import nnlit`` calls it; calling it again changes nothing.

    Example::

        >>> hide_lightning_noise()
        >>> logger = logging.getLogger(LIGHTNING_LOGGERS[0])
        >>> [bool(logger.filter(logging.makeLogRecord({"msg": m}))) for m in ("💡 Tip: try our cloud", "GPU available")]
        [False, True]
    """
    wanted = {name: (PRODUCT_TIPS,) for name in LIGHTNING_LOGGERS} | {CHECKPOINT_LOGGER: SAVE_LINES}
    for name, starts in wanted.items():
        if name not in _INSTALLED:
            _INSTALLED[name] = _DropLines(starts)
            logging.getLogger(name).addFilter(_INSTALLED[name])
    for message in DROPPED_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=FutureWarning, module=r"lightning\.")


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    """A warning as one line, ``nnlit: warning: …`` (or ``warning: …`` from another package), without the file, line
    number and source line Python prints."""
    prefix = "nnlit: warning: " if str(Path(filename).resolve()).startswith(_PACKAGE) else "warning: "
    (file or sys.stderr).write(f"{prefix}{message}\n")


@contextmanager
def command_output(subcommand: str | None = None) -> Iterator[None]:
    """Within the block, Lightning's lines in :data:`DROPPED_LINES` and the warnings in :data:`DROPPED_WARNINGS` are
    not shown (nor :data:`OTHER_RUNS_FOLDER` outside ``fit``), and each warning is one line; all is restored
    afterwards."""
    dropper = _DropLines()
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    for logger in loggers:
        logger.addFilter(dropper)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            for message in DROPPED_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            if subcommand != "fit":
                warnings.filterwarnings("ignore", message=OTHER_RUNS_FOLDER)
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(dropper)


def hide_log_interval_warning() -> None:
    """Hides Lightning's warning that an epoch has fewer training batches than ``log_every_n_steps``: for a module that
    logs once per epoch (nnlit's heads) it does not apply. Call it within ``warnings.catch_warnings()``, which ends
    it."""
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the logging")


#: the loggers of Lightning's and nnlit's informational lines, hushed in a fit run for someone else (a trial, an
#: estimator's fit)
FIT_LOGGERS = ("lightning.pytorch", "lightning.fabric", "nnlit")


@contextmanager
def watched_fit(*messages: str) -> Iterator[None]:
    """A fit whose output someone asked to see (an estimator's ``verbose=True``): the bar, the summary and Lightning's
    lines about the run stay; the lines in :data:`DROPPED_LINES`, the warnings in :data:`DROPPED_WARNINGS`, the
    log-interval warning and the warnings matching ``messages`` go; all is restored afterwards."""
    dropper = _DropLines()
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    for logger in loggers:
        logger.addFilter(dropper)
    try:
        with quiet_library_warnings(*messages):
            hide_log_interval_warning()  # inside the block's warning filters, so restored with them
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(dropper)


@contextmanager
def quiet_library_warnings(*messages: str) -> Iterator[None]:
    """Within the block, the warnings in :data:`DROPPED_WARNINGS` and those matching ``messages`` are not shown,
    wherever they are raised (torch's exporter copies tree specs inside torch too); all is restored afterwards."""
    with warnings.catch_warnings():
        for message in (*DROPPED_WARNINGS, *messages):
            warnings.filterwarnings("ignore", message=message)
        yield


@contextmanager
def inner_fit(*messages: str) -> Iterator[None]:
    """A fit that is a step of something larger (a sweep's trial, an sklearn estimator's ``fit``): Lightning's and
    nnlit's informational lines are hushed (warnings still show), as are :data:`DROPPED_WARNINGS`, the log-interval
    warning and the warnings matching ``messages``; all is restored afterwards."""
    loggers = [logging.getLogger(name) for name in FIT_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with quiet_library_warnings(*messages):
            hide_log_interval_warning()  # inside the block's warning filters, so restored with them
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class CommandParser(argparse.ArgumentParser):
    """The argument parser of a subcommand (``nnlit plot``, ``export``, ``tune``): a refused argument ends with the
    usage and one line, ``nnlit: error: <what>``, exit status 2, as every other error of the command."""

    def error(self, message: str) -> Any:  # argparse's own says "<prog>: error:"
        self.print_usage(sys.stderr)
        self.exit(2, f"nnlit: error: {message} (see {self.prog} --help)\n")


@contextmanager
def quiet_onnx_exporter() -> Iterator[None]:
    """Hides what ``torch.onnx.export`` says about an MLP that is no news: that torchvision's operators are skipped when
    it is absent (an MLP never uses them), the version converter's traceback for an opset it cannot convert to
    (checked after the export), and a deprecation inside torch."""
    with (
        _quiet("torch.onnx._internal.exporter._registration"),
        _quiet("onnxscript.version_converter", logging.CRITICAL),
        quiet_library_warnings(),  # torch.export copies Lightning's tree specs: torch's LeafSpec deprecation
    ):
        yield


@contextmanager
def _quiet(logger_name: str, level_shown: int = logging.ERROR) -> Iterator[None]:
    """Hides a logger's records below ``level_shown`` (its warnings, by default) for the duration."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(level_shown)
    try:
        yield
    finally:
        logger.setLevel(level)
