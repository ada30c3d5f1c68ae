"""Each run keeps its own checkpoints; `best` / `last` / a run folder find the newest run's; a shared folder warns."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from helpers import quiet_trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from nnlit import BinaryMLP, TabularDataModule
from nnlit.checkpoint_io import AtomicCheckpointIO
from nnlit.cli import main
from nnlit.runs import find_checkpoint, resolve_checkpoint

ROOT = Path(__file__).resolve().parents[1]
QUICK = [
    "--config",
    str(ROOT / "configs/quickstart.yaml"),
    "--data.init_args.n_samples=200",
    "--trainer.max_epochs=1",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--report=false",
]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_runs_in_one_folder_keep_their_own_checkpoints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["fit", *QUICK, f"--trainer.default_root_dir={tmp_path}"])
    first = tmp_path / "lightning_logs/version_0/checkpoints"
    before = {p.name: digest(p) for p in first.glob("*.ckpt")}
    assert set(before) == {"best.ckpt", "last.ckpt"}
    main(["fit", *QUICK, f"--trainer.default_root_dir={tmp_path}", "--seed_everything=7"])
    second = tmp_path / "lightning_logs/version_1/checkpoints"
    assert {p.name: digest(p) for p in first.glob("*.ckpt")} == before  # untouched by the second run
    assert {p.name for p in second.glob("*.ckpt")} == {"best.ckpt", "last.ckpt"}
    assert find_checkpoint(tmp_path, "best") == second / "best.ckpt"
    assert find_checkpoint(tmp_path, "last") == second / "last.ckpt"
    assert resolve_checkpoint(tmp_path) == second / "best.ckpt"  # a folder: its newest run's best
    # `--ckpt_path best` on the command line means the newest run's best, under the config's default_root_dir
    out = tmp_path / "predictions.csv"
    args = ["predict", *QUICK, f"--trainer.default_root_dir={tmp_path}", "--ckpt_path=best"]
    main([*args, f"--prediction_writer.output_path={out}"])
    assert len(out.read_text().splitlines()) == 201


def test_default_root_dir_moves_the_checkpoints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["fit", *QUICK, "--trainer.default_root_dir=elsewhere"])
    assert (tmp_path / "elsewhere/lightning_logs/version_0/checkpoints/best.ckpt").is_file()
    assert not (tmp_path / "runs").exists()


def test_fit_with_last_and_no_run_trains_from_scratch(tmp_path, caplog):
    with caplog.at_level("INFO"):
        main(["fit", *QUICK, f"--trainer.default_root_dir={tmp_path}", "--ckpt_path=last"])
    assert "No last checkpoint under" in caplog.text and "training from scratch" in caplog.text
    assert (tmp_path / "lightning_logs/version_0/checkpoints/last.ckpt").is_file()


def test_predict_with_best_and_no_run_is_an_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["predict", *QUICK, f"--trainer.default_root_dir={tmp_path}", "--ckpt_path=best"])
    assert exited.value.code == 2
    assert f"No best checkpoint under '{tmp_path}' (no .ckpt file)" in capsys.readouterr().err


def touch(path: Path, age: float, callbacks: dict | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}, "callbacks": callbacks or {}}, path)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def test_last_is_a_requeue_checkpoint_when_newer(tmp_path):
    last = touch(tmp_path / "lightning_logs/7/checkpoints/last.ckpt", age=60)
    assert find_checkpoint(tmp_path, "last") == last
    hpc = touch(tmp_path / "hpc_ckpt_1.ckpt", age=10)
    assert find_checkpoint(tmp_path, "last") == hpc


def test_best_is_what_the_monitoring_checkpoint_recorded(tmp_path):
    folder = tmp_path / "lightning_logs/version_0/checkpoints"
    chosen = touch(folder / "epoch=3-step=40.ckpt", age=30)
    state = {"ModelCheckpoint{'monitor': 'val/acc'}": {"monitor": "val/acc", "best_model_path": str(chosen)}}
    touch(folder / "epoch=5-step=60.ckpt", age=5, callbacks=state)
    assert find_checkpoint(tmp_path, "best") == chosen
    with pytest.raises(ValueError, match=r"`which` must be one of best, last, got 'first'"):
        find_checkpoint(tmp_path, "first")


def test_a_shared_folder_says_when_it_replaces_another_runs_checkpoint(tmp_path, recwarn):
    shared = tmp_path / "shared"

    def fit(seed: int) -> None:
        L.seed_everything(seed)
        trainer = quiet_trainer(
            tmp_path,
            max_epochs=2,  # two saves of the same file by the same run: no warning
            enable_checkpointing=True,
            callbacks=[ModelCheckpoint(dirpath=shared, filename="last", enable_version_counter=False)],
            plugins=[AtomicCheckpointIO()],
        )
        trainer.fit(BinaryMLP(in_features=2, hidden=[4]), datamodule=TabularDataModule(dataset="xor", n_samples=64))

    fit(1)
    assert not [w for w in recwarn if "Replacing" in str(w.message)]
    with pytest.warns(UserWarning, match=r"Replacing '.*shared/last.ckpt', a checkpoint this run did not write"):
        fit(2)


def test_runs_started_together_claim_distinct_versions(tmp_path):
    import concurrent.futures

    from nnlit.runs import claim_version

    (tmp_path / "version_0").mkdir()  # another run's, not yet written to
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        claimed = list(pool.map(lambda _: claim_version(tmp_path), range(40)))
    assert sorted(claimed) == list(range(1, 41))


def test_a_run_without_a_monitoring_checkpoint_names_the_file_to_give(tmp_path):
    """A config of one's own without ModelCheckpoint callbacks: Lightning's default checkpoint is no `best`."""
    written = touch(tmp_path / "lightning_logs/version_0/checkpoints/epoch=9-step=130.ckpt", age=5)
    with pytest.raises(FileNotFoundError, match=r"a ModelCheckpoint with a `monitor` records the best one") as caught:
        find_checkpoint(tmp_path, "best")
    assert f"such as the newest, {str(written)!r}" in str(caught.value)
    with pytest.raises(FileNotFoundError, match=r"`save_last: true` or `filename: last` writes last.ckpt"):
        find_checkpoint(tmp_path, "last")
