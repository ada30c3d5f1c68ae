"""What the ``nnlit`` command leaves out of its output: lines about Lightning's own products and deprecations inside
Lightning, which say nothing about the run.

:func:`command_output` wraps one command (``nnlit.cli.main``); a Python session that imports nnlit keeps every line.
What stays: nnlit's lines, Lightning's lines about the run (device, seed, why the fit stopped), the model summary,
the progress bar and the report. ``tests/test_cli_output.py`` checks a quick start's stderr against that list.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

#: Lightning's informational loggers (``rank_zero_info``)
LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")

#: the starts of Lightning's lines left out: advertisements of its cloud products; a TPU line on a machine with none
DROPPED_LINES = ("💡 Tip:", "TPU available: False")

#: warnings raised inside Lightning that a user cannot act on (torch deprecated an API Lightning calls)
DROPPED_WARNINGS = (r"`isinstance\(treespec, LeafSpec\)` is deprecated",)


class _DropLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(DROPPED_LINES)


@contextmanager
def command_output() -> Iterator[None]:
    """Within the block, Lightning's lines in :data:`DROPPED_LINES` and the warnings in :data:`DROPPED_WARNINGS` are
    not shown; both are restored afterwards."""
    dropper = _DropLines()
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    for logger in loggers:
        logger.addFilter(dropper)
    try:
        with warnings.catch_warnings():
            for message in DROPPED_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(dropper)


@contextmanager
def per_epoch_logging() -> Iterator[None]:
    """Within the block, Lightning's warning that an epoch has fewer training batches than ``log_every_n_steps`` is not
    shown: for a module that logs once per epoch (nnlit's heads) it does not apply."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the logging")
        yield
