"""Each part of Optuna that nnlit reaches without a public API (nnlit/optuna_internals.py) still does what nnlit
relies on. A failure names the Optuna change to follow."""

from __future__ import annotations

import warnings

import pytest

optuna = pytest.importorskip("optuna")

from nnlit import optuna_internals  # noqa: E402

MOVED = f"Optuna {optuna.__version__} moved %s: update nnlit/optuna_internals.py to follow it"


@pytest.fixture
def study():
    return optuna.create_study(storage=optuna.storages.InMemoryStorage(), direction="maximize")


def test_the_storage_and_trial_id_address_the_trial_the_study_reads(study):
    study.ask()
    trial = study.ask()
    try:
        storage = optuna_internals.study_storage(study)
        storage.set_trial_system_attr(optuna_internals.trial_id(trial), "nnlit:probe", 1.5)
    except AttributeError as err:
        pytest.fail(MOVED % "Study._storage or Trial._trial_id" + f" ({err})")
    assert isinstance(storage, optuna.storages.BaseStorage), MOVED % "Study._storage"
    seen = {t.number: t.system_attrs.get("nnlit:probe") for t in study.get_trials(deepcopy=False)}
    assert seen == {0: None, 1: 1.5}, MOVED % "the trial Trial._trial_id names in the storage"


def test_a_running_trial_failed_through_the_storage_is_failed_for_the_study(study):
    trial = study.ask()
    frozen = study.get_trials(deepcopy=False)[0]
    assert optuna_internals.trial_id(frozen) == optuna_internals.trial_id(trial), MOVED % "FrozenTrial._trial_id"
    storage = optuna_internals.study_storage(study)
    assert storage.set_trial_state_values(optuna_internals.trial_id(trial), state=optuna.trial.TrialState.FAIL)
    assert study.get_trials(deepcopy=False)[0].state == optuna.trial.TrialState.FAIL
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):  # a second worker's try: refused, not repeated
        storage.set_trial_state_values(optuna_internals.trial_id(trial), state=optuna.trial.TrialState.FAIL)


def test_quiet_optuna_is_scoped_to_its_block():
    level = optuna.logging.get_verbosity()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with optuna_internals.quiet_optuna():
            assert optuna.logging.get_verbosity() == optuna.logging.WARNING
            warnings.warn("inside", optuna.exceptions.ExperimentalWarning, stacklevel=1)
        warnings.warn("outside", optuna.exceptions.ExperimentalWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["outside"]
    assert optuna.logging.get_verbosity() == level
