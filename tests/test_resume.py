"""A fit killed with SIGKILL and resumed from last.ckpt ends exactly where an uninterrupted fit does."""

import signal
from pathlib import Path

import pytest
import torch
from helpers import run_python

pytestmark = pytest.mark.integration  # every test here starts processes

SCRIPT = Path(__file__).parent / "scripts" / "resume_fit.py"


def run(root: Path, *args: str) -> int:
    result = run_python(SCRIPT, root, *args, ok=False)
    if result.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(result.stderr[-3000:])
    return result.returncode


def load(path: Path) -> dict:
    return torch.load(path, weights_only=False)


def assert_same(a, b, where="checkpoint"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: {sorted(a)} != {sorted(b)}"
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_killed_and_resumed_equals_uninterrupted(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert run(straight, "--max-epochs", "5") == 0
    # killed as epoch 3 starts: after FreezeLayers unfroze linear1 (epoch 2) and epoch 2's checkpoint was written
    assert run(killed, "--max-epochs", "5", "--kill-at-epoch", "3") == -signal.SIGKILL
    assert not (killed / "final.ckpt").exists() and load(killed / "checkpoints" / "last.ckpt")["epoch"] == 2
    assert run(killed, "--max-epochs", "5", "--resume") == 0

    expected, resumed = load(straight / "final.ckpt"), load(killed / "final.ckpt")
    assert_same(resumed["state_dict"], expected["state_dict"], "weights")
    assert_same(resumed["optimizer_states"], expected["optimizer_states"], "optimizer")  # incl. the unfrozen group
    assert len(resumed["optimizer_states"][0]["param_groups"]) == 2
    assert_same(resumed["TabularDataModule"], expected["TabularDataModule"], "data module state")
    for key, state in expected["callbacks"].items():
        if key.startswith(("DeadReLUCounter", "GradientSaturationMonitor", "FreezeLayers")):
            assert_same(resumed["callbacks"][key], state, key)  # histories, unfreeze state, param-group metadata
    assert (resumed["epoch"], resumed["global_step"]) == (expected["epoch"], expected["global_step"])


def test_kill_during_a_checkpoint_save_leaves_the_previous_one_loadable(tmp_path):
    # the 3rd save is epoch 2's last.ckpt: killed after writing the temporary file, before replacing last.ckpt
    assert run(tmp_path, "--max-epochs", "5", "--kill-in-save", "3") == -signal.SIGKILL
    checkpoint = load(tmp_path / "checkpoints" / "last.ckpt")
    assert checkpoint["epoch"] == 1 and "state_dict" in checkpoint
    assert run(tmp_path, "--max-epochs", "3", "--resume") == 0  # resumes from epoch 1's checkpoint
    assert load(tmp_path / "final.ckpt")["epoch"] == 3  # the counter after three finished epochs


def test_killed_mid_epoch_and_resumed_equals_uninterrupted(tmp_path):
    """Checkpoints every 4 steps (10 steps per epoch, 2 per Lightning batch): killed as step 16 starts, just after
    its checkpoint, so the run resumes 6 minibatches (3 groups) into epoch 1."""
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert run(straight, "--max-epochs", "3", "--every-n-steps", "4") == 0
    assert run(killed, "--max-epochs", "3", "--every-n-steps", "4", "--kill-at-step", "16") == -signal.SIGKILL
    assert load(killed / "checkpoints" / "last.ckpt")["global_step"] == 16
    assert run(killed, "--max-epochs", "3", "--every-n-steps", "4", "--resume") == 0
    expected, resumed = load(straight / "final.ckpt"), load(killed / "final.ckpt")
    assert resumed["global_step"] == expected["global_step"]
    assert_same(resumed["state_dict"], expected["state_dict"], "weights")
