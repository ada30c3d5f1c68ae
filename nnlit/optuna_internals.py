"""The parts of Optuna that ``nnlit tune`` reaches that are not public API, in one place, and Optuna itself imported
with an error naming the extra.

A study's storage (``Study._storage``) and a trial's id in it (``Trial._trial_id``): Optuna's public study API
cannot write a trial's system attributes (the heartbeat, the surplus mark) nor fail a running trial of another worker,
which the storage's public methods do given these two. ``tests/test_optuna_internals.py`` fails, naming the change,
the day Optuna moves either.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any


def load_optuna() -> Any:
    """The ``optuna`` module.

    Raises:
        ImportError: Optuna is not installed, naming the extra that installs it.
    """
    try:
        import optuna
    except ImportError as err:
        raise ImportError("nnlit tune searches with Optuna, which is not installed: pip install 'nnlit[tune]'") from err
    return optuna


@contextlib.contextmanager
def quiet_optuna() -> Iterator[Any]:
    """Within the block: Optuna's log at ``WARNING`` (nnlit prints a line per trial and a report) and its
    ``ExperimentalWarning`` hidden (the stale-trial retry nnlit relies on knowingly is marked experimental); both as
    they were afterwards. Gives the ``optuna`` module."""
    optuna = load_optuna()
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            yield optuna
    finally:
        optuna.logging.set_verbosity(level)


def study_storage(study: Any) -> Any:
    """The storage ``study`` reads and writes (an ``optuna.storages.BaseStorage``)."""
    return study._storage


def trial_id(trial: Any) -> int:
    """The id of ``trial`` (a ``Trial`` or a ``FrozenTrial``) in its study's storage, which the storage's methods
    take (the trial's ``number`` counts within the study)."""
    return int(trial._trial_id)


__all__ = ["load_optuna", "quiet_optuna", "study_storage", "trial_id"]
