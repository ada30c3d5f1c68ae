"""Where ``nnlit tune`` keeps a study, and how workers share it: the storage, the study's creation, heartbeats,
stale trials run again, and the trial budget reserved in the storage.

Everything here goes through Optuna's storage API, so it holds for every storage nnlit opens: SQLite in the sweep's
folder (the default), a journal file on a shared filesystem (``--storage journal:PATH``: SLURM array tasks with no
database server), or a database URL. The heartbeat is a trial attribute written every ``--heartbeat`` seconds
(Optuna's own heartbeats exist for database storages only); a trial whose heartbeat is older than twice that is a
killed worker's: it is marked failed and queued to run again with the same values.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from nnlit import optuna_internals
from nnlit.optuna_internals import load_optuna

#: the storage forms ``--storage`` takes, for error messages
STORAGE_FORMS = "journal:PATH (a file on a shared filesystem), sqlite:///PATH, postgresql://..., mysql://..."
#: the trial attribute that holds the time of a running trial's last heartbeat (seconds since the epoch)
HEARTBEAT = "nnlit:heartbeat"
#: the trial attribute that marks a trial asked beyond the budget (told failed at once; not a result)
SURPLUS = "nnlit:surplus"
#: times a trial is run again after its worker died, before it is left failed
MAX_RERUNS = 3


def open_storage(spec: str | None, out: str | Path) -> Any:
    """The Optuna storage ``spec`` names: ``None`` for ``study.db`` (SQLite) in ``out``; ``journal:PATH`` for a
    journal file; an ``sqlite:``, ``postgresql`` or ``mysql`` URL for a database.

    Raises:
        ValueError: another form, naming it and the accepted ones.
    """
    optuna = load_optuna()
    if spec is None:
        Path(out).mkdir(parents=True, exist_ok=True)
        spec = f"sqlite:///{Path(out).resolve() / 'study.db'}"
    if spec.startswith("journal:"):
        # absolute: Optuna's file lock links names relative to the working directory it finds at each write
        path = Path(spec[len("journal:") :]).expanduser().absolute()
        if spec == "journal:" or spec.endswith("/"):
            raise ValueError(f"--storage {spec!r}: give the journal file's path, as journal:runs/tune/study.journal")
        path.parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if spec.startswith(("sqlite:", "postgresql", "mysql")):
        # SQLite: a writer waits up to a minute for another worker's lock instead of failing after 5 s
        engine = {"connect_args": {"timeout": 60}} if spec.startswith("sqlite:") else None
        return optuna.storages.RDBStorage(spec, engine_kwargs=engine)
    raise ValueError(f"--storage {spec!r} is not a storage nnlit opens: give {STORAGE_FORMS}")


def create_or_load_study(
    spec: str | None, out: str | Path, name: str, direction: str, sampler: Any, pruner: Any, tries: int = 5
) -> Any:
    """The study ``name`` in the storage ``spec`` names (see :func:`open_storage`), created when it does not exist
    yet. Workers that start together on a fresh storage race to create its tables and the study (Optuna #1092: one of
    ten SQLite workers failed with "UNIQUE constraint failed: alembic_version"): a worker that loses opens the storage
    again and loads what the winner made."""
    optuna = load_optuna()
    for attempt in range(tries):
        try:
            storage = open_storage(spec, out)
            return optuna.create_study(
                storage=storage,
                study_name=name,
                direction=direction,
                sampler=sampler,
                pruner=pruner,
                load_if_exists=True,
            )
        except ValueError:  # a storage nnlit does not open: no race to wait for
            raise
        except Exception:  # tables, version rows or the study created by another worker meanwhile
            if attempt == tries - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def counted(study: Any) -> list[Any]:
    """The trials that use the budget: finished (complete or pruned), running, or waiting to run."""
    states = load_optuna().trial.TrialState
    return study.get_trials(deepcopy=False, states=(states.COMPLETE, states.PRUNED, states.RUNNING, states.WAITING))


def reserve(study: Any, trials: int) -> Any | None:
    """A trial of the study's budget of ``trials``, or ``None`` when the budget is used.

    The storage numbers trials in the order they are asked, so a trial is within the budget when fewer than ``trials``
    of those before it use the budget; one asked beyond it by a worker that raced another is told failed at once and
    marked, so that workers on several machines run exactly ``trials`` between them."""
    taken = counted(study)
    waiting = any(t.state == load_optuna().trial.TrialState.WAITING for t in taken)
    if len(taken) >= trials and not waiting:  # a queued trial (a rerun) is within the budget: it is run
        return None
    trial = study.ask()
    before = sum(1 for t in counted(study) if t.number < trial.number)
    if before < trials:
        record_heartbeat(study, optuna_internals.trial_id(trial))
        return trial
    optuna_internals.study_storage(study).set_trial_system_attr(optuna_internals.trial_id(trial), SURPLUS, True)
    study.tell(trial, state=load_optuna().trial.TrialState.FAIL)
    return None


def record_heartbeat(study: Any, trial_id: int) -> None:
    """Records that the trial's worker is alive, now."""
    optuna_internals.study_storage(study).set_trial_system_attr(trial_id, HEARTBEAT, time.time())


def fail_stale_trials(study: Any, grace: float | None) -> list[int]:
    """Marks failed the running trials whose last heartbeat is older than ``grace`` seconds (``None``: every running
    trial, when every worker has ended) and queues each to run again with the same values; returns their numbers."""
    optuna = load_optuna()
    now, failed = time.time(), []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        beat = trial.system_attrs.get(HEARTBEAT, trial.datetime_start.timestamp() if trial.datetime_start else now)
        if grace is not None and now - float(beat) <= grace:
            continue
        if fail_and_rerun(study, trial):
            failed.append(trial.number)
    return failed


def fail_and_rerun(study: Any, trial: Any) -> bool:
    """Marks the running ``trial`` failed and queues a trial with its values, unless another worker did it first
    (then ``False``). The new trial's ``failed_trial`` attribute is the failed one's number (as Optuna's own
    ``RetryFailedTrialCallback`` writes it)."""
    optuna = load_optuna()
    try:
        if not optuna_internals.study_storage(study).set_trial_state_values(
            optuna_internals.trial_id(trial), state=optuna.trial.TrialState.FAIL
        ):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    frozen = optuna_internals.study_storage(study).get_trial(optuna_internals.trial_id(trial))
    retry_class = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)  # Optuna 4.9's name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental / deprecated, by version
        retry = (retry_class or optuna.storages.RetryFailedTrialCallback)(max_retry=MAX_RERUNS)
    retry(study, frozen)
    return True


def surplus(trial: Any) -> bool:
    """Whether the trial was asked beyond the budget (not a result: reports leave it out)."""
    return bool(trial.system_attrs.get(SURPLUS))


__all__ = [
    "HEARTBEAT",
    "STORAGE_FORMS",
    "counted",
    "create_or_load_study",
    "fail_and_rerun",
    "fail_stale_trials",
    "open_storage",
    "record_heartbeat",
    "reserve",
    "surplus",
]
