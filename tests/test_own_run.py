"""A run whose folder is named resumes its own last checkpoint only, and refuses a checkpoint of another model."""

from __future__ import annotations

import logging

import pytest
import torch

from nnlit import BinaryMLP, MulticlassMLP
from nnlit.runs import check_resumable, run_checkpoint


def save(path, model):
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {"state_dict": model.state_dict(), "pytorch-lightning_version": "2.6"}
    model.on_save_checkpoint(checkpoint)  # records the class, as a Trainer's save does
    torch.save(checkpoint, path)
    return path


def test_a_run_without_a_checkpoint_trains_from_scratch_naming_the_runs_beside_it(tmp_path, caplog):
    logs = tmp_path / "lightning_logs"
    older = save(logs / "version_1001" / "checkpoints" / "last.ckpt", BinaryMLP(in_features=2, hidden=[4]))
    with caplog.at_level(logging.INFO):
        assert run_checkpoint(logs / "version_1002", tmp_path) is None
    assert "No checkpoint in this run's folder" in caplog.text and "training from scratch" in caplog.text
    assert "runs with checkpoints beside it: version_1001" in caplog.text
    assert run_checkpoint(logs / "version_1001", tmp_path) == older


def test_a_hpc_checkpoint_newer_than_last_is_the_runs_last(tmp_path):
    folder = tmp_path / "run" / "checkpoints"
    save(folder / "last.ckpt", BinaryMLP(in_features=2, hidden=[4]))
    newer = save(folder / "hpc_ckpt_1.ckpt", BinaryMLP(in_features=2, hidden=[4]))
    assert run_checkpoint(tmp_path / "run") == newer


def test_a_checkpoint_of_another_model_is_refused_naming_each_difference(tmp_path):
    path = save(tmp_path / "last.ckpt", MulticlassMLP(in_features=2, num_classes=3, hidden=[16]))
    check_resumable(MulticlassMLP(in_features=2, num_classes=3, hidden=[16]), path, tmp_path)  # the same: no error
    with pytest.raises(ValueError, match=r"trained another model than this config, so it cannot be continued") as err:
        check_resumable(MulticlassMLP(in_features=2, num_classes=3, hidden=[8, 8]), path, tmp_path)
    assert "(16, 2) in the checkpoint, (8, 2) in the config" in str(err.value)
    assert "only in the config" in str(err.value) and "start a new run" in str(err.value)
    with pytest.raises(ValueError, match=r"the class: \S*MulticlassMLP in the checkpoint, \S*BinaryMLP in the config"):
        check_resumable(BinaryMLP(in_features=2, hidden=[16]), path, tmp_path)
