"""The study's storage shared by workers: the forms --storage takes, the budget reserved in the storage when workers
race, and stale trials failed and queued again with their values."""

from __future__ import annotations

import time

import pytest

optuna = pytest.importorskip("optuna")

from nnlit.tune import storage as tune_storage  # noqa: E402

States = optuna.trial.TrialState


@pytest.fixture
def study(tmp_path):
    sampler = optuna.samplers.RandomSampler(seed=0)
    spec = f"journal:{tmp_path / 'study.journal'}"
    return tune_storage.create_or_load_study(spec, tmp_path, "s", "minimize", sampler, None)


@pytest.mark.parametrize("spec", ["study.db", "redis://host", "journal:"])
def test_a_storage_nnlit_does_not_open_is_named(spec, tmp_path):
    with pytest.raises(ValueError, match=r"--storage '.*'"):
        tune_storage.open_storage(spec, tmp_path)


def test_the_default_and_the_journal_storages(tmp_path):
    assert isinstance(tune_storage.open_storage(None, tmp_path), optuna.storages.RDBStorage)
    assert (tmp_path / "study.db").is_file()
    journal = tune_storage.open_storage(f"journal:{tmp_path / 'sub' / 'j.journal'}", tmp_path)
    assert isinstance(journal, optuna.storages.JournalStorage)


def test_a_second_worker_loads_the_study_the_first_created(study, tmp_path):
    again = tune_storage.create_or_load_study(
        f"journal:{tmp_path / 'study.journal'}", tmp_path, "s", "minimize", None, None
    )
    assert again._study_id == study._study_id


def test_a_trial_asked_beyond_the_budget_by_a_racing_worker_is_given_up(study, monkeypatch):
    study.tell(study.ask(), 1.0)
    asked = study.ask

    def raced():  # another worker asks between this worker's count and its own ask
        asked()
        return asked()

    monkeypatch.setattr(study, "ask", raced)
    assert tune_storage.reserve(study, trials=2) is None
    assert len(tune_storage.counted(study)) == 2
    given_up = study.trials[-1]
    assert given_up.state == States.FAIL and tune_storage.surplus(given_up)
    monkeypatch.undo()
    assert tune_storage.reserve(study, trials=2) is None  # the budget is used: nothing is asked


def test_the_budget_counts_running_and_queued_trials(study):
    first = tune_storage.reserve(study, trials=2)
    study.enqueue_trial({"x": 1.0})
    queued = tune_storage.reserve(study, trials=2)  # the budget is full, but a queued trial is part of it
    assert first is not None and queued is not None and queued.number == 1
    assert tune_storage.reserve(study, trials=2) is None
    assert [t.state for t in study.trials] == [States.RUNNING, States.RUNNING]


def test_a_stale_trial_is_failed_and_queued_again_with_its_values(study):
    dead, alive = study.ask(), study.ask()
    dead.suggest_float("x", 0.0, 1.0)
    alive.suggest_float("x", 0.0, 1.0)
    study._storage.set_trial_system_attr(dead._trial_id, tune_storage.HEARTBEAT, time.time() - 100)
    tune_storage.record_heartbeat(study, alive._trial_id)
    assert tune_storage.fail_stale_trials(study, grace=10) == [dead.number]
    trials = study.trials
    assert [t.state for t in trials] == [States.FAIL, States.RUNNING, States.WAITING]
    assert trials[2].params == trials[0].params and trials[2].system_attrs["failed_trial"] == dead.number
    assert tune_storage.fail_stale_trials(study, grace=10) == []  # failed once, queued once
    rerun = study.ask()
    assert rerun.number == trials[2].number and rerun.suggest_float("x", 0.0, 1.0) == trials[0].params["x"]
    assert tune_storage.fail_stale_trials(study, grace=None) == [alive.number, rerun.number]  # every worker ended


def test_a_worker_starts_no_trial_that_the_longest_so_far_says_would_not_end_in_time(study, capsys):
    import datetime

    from nnlit.tune.worker import _out_of_time

    assert not _out_of_time(study, left=1.0)  # no trial yet: nothing to go by
    start = datetime.datetime(2026, 1, 1, 12, 0, 0)
    for minutes in (10, 30):  # two finished trials, of 10 and 30 minutes
        study.add_trial(
            optuna.trial.FrozenTrial(
                number=0,
                trial_id=0,
                state=States.COMPLETE,
                value=0.5,
                values=None,
                datetime_start=start,
                datetime_complete=start + datetime.timedelta(minutes=minutes),
                params={"x": 0.1},
                distributions={"x": optuna.distributions.FloatDistribution(0.0, 1.0)},
                user_attrs={},
                system_attrs={},
                intermediate_values={},
            )
        )
    assert not _out_of_time(study, left=31 * 60)
    assert _out_of_time(study, left=29 * 60)
    assert "1740 s left of --timeout, the longest trial took 1800 s: stopping" in capsys.readouterr().out
