"""nnlit tune: a seeded study is reproducible, workers share one study and run exactly --trials, a killed worker's
trial is run again, best.yaml trains, folds cross-validate, and a bad search space is named; a study keeps its fixed
settings; the progress line. Across machines: workers with their own folders share a study in a real PostgreSQL
server started for the tests (tests/postgres.py; the slow tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

optuna = pytest.importorskip("optuna")

from nnlit.cli import main  # noqa: E402
from nnlit.tune import best_config, read_search  # noqa: E402

pytestmark = pytest.mark.integration  # fits, and some start processes

SEARCH = """
model.init_args.hidden: {choices: [[8], [16, 16]]}
model.init_args.optimizer.init_args.lr: {low: 1.0e-3, high: 0.1, log: true}
"""
SMALL = ["--data.init_args.n_samples=300", "--trainer.max_epochs=2"]


def tune(folder: Path, *extra: str) -> None:
    main(["tune", "--config", "quickstart", "--search", str(folder / "search.yaml"), "--seed", "0", *SMALL, *extra])


def study(out: Path):
    return optuna.load_study(study_name="nnlit", storage=f"sqlite:///{out / 'study.db'}")


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "search.yaml").write_text(SEARCH)
    return tmp_path


def test_a_seeded_study_is_reproducible_and_its_best_config_trains(folder, capsys):
    tune(folder, "--trials", "3", "--out", "a")
    tune(folder, "--trials", "3", "--out", "b")
    a, b = study(folder / "a"), study(folder / "b")
    assert [(t.params, t.value) for t in a.trials] == [(t.params, t.value) for t in b.trials]
    assert len(a.trials) == 3 and all(t.state.name == "COMPLETE" for t in a.trials)
    out = capsys.readouterr().out
    assert "nnlit tune report: 3 complete, 0 pruned, 0 failed" in out
    assert {p.name for p in (folder / "a").iterdir()} >= {"best.yaml", "trials.csv", "study.db", "history.png"}
    best = yaml.safe_load((folder / "a" / "best.yaml").read_text())
    assert best["model"]["init_args"]["hidden"] == yaml.safe_load(a.best_trial.params["model.init_args.hidden"])
    assert (
        best["model"]["init_args"]["optimizer"]["init_args"]["lr"]
        == a.best_trial.params["model.init_args.optimizer.init_args.lr"]
    )
    assert best["trainer"]["max_epochs"] == 2  # the command's overrides are part of it
    for trial in a.trials:  # where each trial's runs are, and its score per fold (one fold here)
        assert list(Path(trial.user_attrs["folder"]).glob("lightning_logs/version_0"))
        assert trial.user_attrs["folds"] == [trial.value]
    main(["fit", "--config", str(folder / "a" / "best.yaml"), "--trainer.default_root_dir=refit"])
    assert list(folder.glob("refit/lightning_logs/version_0/checkpoints/last.ckpt"))


def test_rerunning_continues_the_study(folder):
    tune(folder, "--trials", "2", "--out", "s")
    tune(folder, "--trials", "3", "--out", "s")
    assert len(study(folder / "s").trials) == 3


def test_folds_score_the_mean_of_each_fold(folder, capsys):
    tune(folder, "--trials", "1", "--folds", "3", "--out", "f")
    (trial,) = study(folder / "f").trials
    folds = trial.user_attrs["folds"]
    assert len(folds) == 3 and trial.value == pytest.approx(sum(folds) / 3)
    assert "over 3 folds" in capsys.readouterr().out
    assert len(list(folder.glob("f/trials/trial_0/fold_*/lightning_logs"))) == 3


def test_two_workers_share_the_study_and_run_exactly_the_trials(folder):
    command = [sys.executable, "-m", "nnlit.cli", "tune", "--config", "quickstart", "--search", "search.yaml"]
    command += ["--trials", "4", "--workers", "2", "--seed", "0", "--out", "w", *SMALL]
    done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
    assert "\r" not in done.stdout + done.stderr  # no progress line off a terminal
    trials = study(folder / "w").trials
    assert len(trials) == 4 and all(t.state.name == "COMPLETE" for t in trials)
    assert (
        len({(t.params["model.init_args.hidden"], t.params["model.init_args.optimizer.init_args.lr"]) for t in trials})
        == 4
    )


def kill_mid_trial(command: list[str], folder: Path, out: str) -> None:
    """Starts ``command`` (a worker writing in ``out``) and SIGKILLs it once its first trial's fit is under way."""
    log = (folder / "worker.log").open("w")
    worker = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        # the trial's log folder: its fit has started (not its last.ckpt: the quick start writes the first one 2 s into
        # a fit or at its end). The study's database is not read meanwhile: a reader can hold SQLite's lock when the
        # worker writes
        while time.monotonic() < deadline and worker.poll() is None:
            if list(folder.glob(f"{out}/trials/trial_0/lightning_logs/*")):
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the worker never started a trial: {(folder / 'worker.log').read_text()[-2000:]}")
        time.sleep(1)  # its first heartbeats recorded
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.wait()
        log.close()
    time.sleep(2.5)  # past the grace period of two heartbeats


def check_run_again(trials) -> None:
    """One trial failed (the killed worker's), run again once with its values; two complete."""
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert len(failed) == 1
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == failed[0].number]
    assert len(retried) == 1 and retried[0].state.name == "COMPLETE"
    assert retried[0].params == failed[0].params
    assert sum(t.state.name == "COMPLETE" for t in trials) == 2


#: trials long enough to be killed in, with the same fixed settings in every worker of the study
#: a trial of about 3 s on an idle machine: the kill, 1 s into its fit, finds it running
LONGER = ["--trials", "2", "--heartbeat", "1", *SMALL, "--trainer.max_epochs=300"]


def test_a_killed_workers_trial_is_run_again(folder):
    command = [sys.executable, "-m", "nnlit.cli", "tune", "--config", "quickstart", "--search", "search.yaml"]
    kill_mid_trial([*command, "--seed", "0", "--out", "k", *LONGER], folder, "k")
    tune(folder, "--out", "k", *LONGER)
    check_run_again(study(folder / "k").trials)


# ---------------------------------------------------------------------------------------------------- PostgreSQL
@pytest.fixture(scope="module")
def server():
    """A PostgreSQL server of the tests' own (tests/postgres.py), for the tests of this file that need one."""
    from postgres import postgres_server

    with postgres_server() as url:
        yield url


def worker(url: str, study_name: str, out: str, *extra: str) -> list[str]:
    """The command of a worker on a machine of its own: its own --out, the study in the server."""
    command = [sys.executable, "-m", "nnlit.cli", "tune", "--config", "quickstart", "--search", "search.yaml"]
    return [*command, "--storage", url, "--study", study_name, "--out", out, *extra]


@pytest.mark.slow
def test_workers_with_their_own_folders_share_a_postgres_study(server, folder):
    workers = [
        subprocess.Popen(
            worker(server, "shared", f"w{i}", "--trials", "6", "--seed", str(i), *SMALL), stderr=subprocess.PIPE
        )
        for i in range(3)
    ]
    errors = [w.communicate(timeout=600)[1].decode()[-2000:] for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], errors
    trials = optuna.load_study(study_name="shared", storage=server).trials
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") + states.count("PRUNED") == 6, states  # exactly --trials, none over
    assert "RUNNING" not in states
    best = [(folder / f"w{i}" / "best.yaml").read_text() for i in range(3)]
    assert best[0] == best[1] == best[2]  # the study's best, whichever worker wrote it


@pytest.mark.slow
def test_a_killed_workers_trial_is_run_again_by_another_machine(server, folder):
    kill_mid_trial(worker(server, "killed", "a", "--seed", "0", *LONGER), folder, "a")
    done = subprocess.run(worker(server, "killed", "b", "--seed", "1", *LONGER), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    check_run_again(optuna.load_study(study_name="killed", storage=server).trials)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("lr: 0.1", r"Search key 'lr': expected \{choices: \[...\]\} or \{low: ..., high: ...\[, log: true"),
        ("lr: {choices: []}", r"Search key 'lr': `choices` must be a non-empty list alone"),
        ("lr: {low: 1, high: 0.1}", r"Search key 'lr': `low` and `high` must be numbers with low < high"),
        ("lr: {low: 0, high: 1, log: true}", r"Search key 'lr': a log range needs low > 0, got 0"),
        ("lr: {low: 0.1, high: 1, spread: 2}", r"Search key 'lr': expected"),
        ("b: {low: 16, high: 256, log: true, step: 16}", r"Search key 'b': give `log: true` or a `step`, not both"),
        ("[]", r"must map config keys to ranges"),
    ],
)
def test_a_bad_search_space_is_named(text, match, tmp_path):
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(ValueError, match=match):
        read_search(tmp_path / "s.yaml")


def test_the_best_config_sets_nested_keys_and_keeps_the_rest(tmp_path):
    (tmp_path / "base.yaml").write_text("model:\n  class_path: nnlit.BinaryMLP\n  init_args: {hidden: [4]}\n")
    tree = best_config(str(tmp_path / "base.yaml"), ["--trainer.max_epochs=3"], {"model.init_args.dropout": 0.1})
    assert tree == {
        "model": {"class_path": "nnlit.BinaryMLP", "init_args": {"hidden": [4], "dropout": 0.1}},
        "trainer": {"max_epochs": 3},
    }


def test_the_pruner_stops_an_unpromising_fit(make_trainer):
    from nnlit import MulticlassMLP, TabularDataModule
    from nnlit.tune import TrialReport

    class Trial:
        def __init__(self):
            self.reported = []

        def report(self, value, step):
            self.reported.append((step, value))

        def should_prune(self):
            return len(self.reported) >= 2  # as a pruner would after the second epoch

    trial = Trial()
    report = TrialReport(trial, "val/acc", maximize=True, step_offset=100_000)
    trainer = make_trainer(max_epochs=10, callbacks=[report])
    with pytest.raises(optuna.TrialPruned, match="epoch 1: val/acc"):
        trainer.fit(
            MulticlassMLP(in_features=2, num_classes=2, hidden=[4]), datamodule=TabularDataModule(dataset="xor")
        )
    assert [step for step, _ in trial.reported] == [100_000, 100_001] and report.best == max(
        v for _, v in trial.reported
    )


def test_string_choices_a_failing_trial_and_a_changed_space(folder, capsys):
    (folder / "search.yaml").write_text(
        "model.init_args.activation: {choices: [relu, tanh]}\nmodel.init_args.norm: {choices: [null, batch]}\n"
        "model.init_args.hidden: {choices: [[8], [0]]}\n"  # a width of 0 fails its trial
    )
    tune(folder, "--trials", "4", "--out", "c")
    trials = study(folder / "c").trials
    states = {t.number: t.state.name for t in trials}
    zero = [t.number for t in trials if t.params["model.init_args.hidden"] == "[0]"]
    assert zero and all(states[n] == "FAIL" for n in zero)  # recorded, and the sweep went on
    assert sum(s == "COMPLETE" for s in states.values()) == 4
    assert {t.params["model.init_args.activation"] for t in trials} <= {'"relu"', '"tanh"'}
    assert "failed: `hidden[0]` must be a positive" in capsys.readouterr().err
    best = yaml.safe_load((folder / "c" / "best.yaml").read_text())["model"]["init_args"]
    assert best["activation"] in ("relu", "tanh") and best["norm"] in (None, "batch") and best["hidden"] == [8]
    (folder / "search.yaml").write_text("model.init_args.activation: {low: 1, high: 2}\n")
    with pytest.raises(SystemExit):
        tune(folder, "--trials", "5", "--out", "c")
    assert "Search key 'model.init_args.activation' was choices in the earlier trials" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("metric", "direction"), [("val/mae", "minimize"), ("val/r2", "maximize"), ("train/loss", "minimize")]
)
def test_the_direction_of_known_metrics(metric, direction):
    from nnlit.tune import metric_direction

    assert metric_direction(metric) == direction


def test_an_unknown_metric_needs_a_direction():
    from nnlit.tune import metric_direction

    with pytest.raises(ValueError, match=r"--metric 'val/custom': say whether to maximize or minimize it"):
        metric_direction("val/custom")


def test_a_rerun_with_other_fixed_settings_refuses_and_best_yaml_keeps_the_trained_ones(folder, capsys):
    tune(folder, "--trials", "1", "--out", "s")  # trains 2 epochs (SMALL)
    with pytest.raises(SystemExit):
        tune(folder, "--trials", "2", "--out", "s", "--trainer.max_epochs=1", "--folds", "2")
    err = capsys.readouterr().err
    assert (
        "Study 'nnlit' was started with other fixed settings than this command's: --trainer.max_epochs: 2 then, 1 now; "
        "--folds: null then, 2 now. Rerun with the study's settings to continue it, or give a new --study"
    ) in err
    assert len(study(folder / "s").trials) == 1  # nothing ran
    stored = study(folder / "s").user_attrs["settings"]
    assert stored["config"]["trainer"]["max_epochs"] == 2 and stored["folds"] is None
    assert stored["metric"] == "val/acc" and stored["direction"] == "maximize"
    tune(folder, "--trials", "2", "--out", "s")  # the same settings continue it
    assert yaml.safe_load((folder / "s" / "best.yaml").read_text())["trainer"]["max_epochs"] == 2
    tune(folder, "--trials", "1", "--out", "s", "--study", "short", "--trainer.max_epochs=1")  # a new study, asked for
    assert yaml.safe_load((folder / "s" / "best.yaml").read_text())["trainer"]["max_epochs"] == 1


def test_other_settings_are_named(tmp_path):
    import argparse

    from nnlit.tune import check_settings

    (tmp_path / "base.yaml").write_text("trainer: {max_epochs: 4}\nmodel: {init_args: {dropout: 0.1}}\n")
    options = argparse.Namespace(config=str(tmp_path / "base.yaml"), folds=None, metric="val/acc", direction="maximize")
    started = optuna.create_study(study_name="s", direction="maximize")
    check_settings(started, options, ["--model.init_args.norm=batch"])
    check_settings(started, options, ["--model.init_args.norm", "batch"])  # the same, written otherwise
    match = (
        r"Study 's' was started with other fixed settings than this command's: --model.init_args.dropout: 0.1 then, "
        r"0.2 now; --model.init_args.norm: \"batch\" then, unset now; --trainer.max_epochs: 4 then, 1 now\. Rerun"
    )
    with pytest.raises(ValueError, match=match):
        check_settings(started, options, ["--trainer.max_epochs=1", "--model.init_args.dropout=0.2"])


class Terminal:
    """A stream that says it is a terminal, and keeps what is written."""

    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def sweep_states():
    """A study with 2 complete trials (values 0.8, 0.9), 1 pruned, 1 failed and 1 running."""
    states = optuna.trial.TrialState
    started = optuna.create_study(direction="maximize")
    for value in (0.8, 0.9):
        started.tell(started.ask(), value)
    started.tell(started.ask(), state=states.PRUNED)
    started.tell(started.ask(), state=states.FAIL)
    started.ask()
    return started


def test_the_progress_line_on_a_terminal():
    import argparse

    from nnlit.tune import Progress

    terminal = Terminal()
    options = argparse.Namespace(trials=20, metric="val/acc")
    with Progress(options, terminal, every=3600) as progress:
        echo = progress.watch(sweep_states())
        assert (
            terminal.text
            == "\r\033[Knnlit tune: 3/20 done (1 pruned), 1 running, 1 failed, best val/acc 0.9 (trial 1), 0:00"
        )
        echo("nnlit tune: trial 5 complete", sys.stdout)
    # the line is cleared before another line is printed, drawn again after it, and cleared at the end
    assert terminal.text.count("\r\033[K") == 4 and terminal.text.endswith("(trial 1), 0:00\r\033[K")


def test_no_progress_line_off_a_terminal(capsys):
    import argparse
    import io

    from nnlit.tune import Progress

    stream = io.StringIO()
    with Progress(argparse.Namespace(trials=20, metric="val/acc"), stream, every=0.01) as progress:
        echo = progress.watch(sweep_states())
        echo("nnlit tune: trial 5 complete", sys.stdout)
        time.sleep(0.05)  # time for readings, were there a reader
    assert stream.getvalue() == "" and capsys.readouterr().out == "nnlit tune: trial 5 complete\n"


def test_the_docs_show_the_shipped_iris_search_space():
    from doc_blocks import ROOT, blocks

    shown = [yaml.safe_load(text) for text in blocks(ROOT / "docs" / "sweeps.md", "yaml")]
    assert yaml.safe_load((ROOT / "configs" / "search" / "real" / "iris.yaml").read_text()) in shown
    assert "nnlit tune --config real/iris --search real/iris\n" in (ROOT / "docs" / "sweeps.md").read_text()


def test_the_report_and_best_yaml_name_the_trials_still_running(tmp_path, capsys):
    import argparse

    from nnlit.tune import write_outputs

    (tmp_path / "base.yaml").write_text("model: {init_args: {dropout: 0.0}}\n")
    (tmp_path / "search.yaml").write_text("model.init_args.dropout: {low: 0.0, high: 0.5}\n")
    options = argparse.Namespace(
        config=str(tmp_path / "base.yaml"), search=str(tmp_path / "search.yaml"), out=str(tmp_path), metric="val/acc",
        folds=None, storage=None,
    )  # fmt: skip
    started = optuna.create_study(direction="maximize")
    for value in (0.8, 0.9):
        trial = started.ask()
        trial.suggest_float("model.init_args.dropout", 0.0, 0.5)
        started.tell(trial, value)
    started.ask()  # another worker's, still running
    write_outputs(started, options, [])
    best = (tmp_path / "best.yaml").read_text()
    assert best.startswith("# nnlit tune: trial 1, val/acc 0.9; trial(s) 2 still running, which may beat it\n")
    assert "nnlit tune report: 2 complete, 0 pruned, 0 failed, 1 running (2)" in capsys.readouterr().out
