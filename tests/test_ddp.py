"""Every head under 2 CPU processes (gloo, ddp_spawn), compared with one process. Slow: ~1 minute."""

import json
import math
import subprocess
from pathlib import Path

import pytest
from helpers import run_python

pytestmark = pytest.mark.integration  # every test here starts processes

SCRIPT = Path(__file__).parent / "scripts" / "ddp_fit.py"
HEADS = ["binary", "multiclass", "regression"]


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    # a timeout: a collective call made by one rank only would hang, not fail
    return run_python(SCRIPT, *args, timeout=240, cwd=tmp_path, ok=False)


def metrics(result: subprocess.CompletedProcess) -> dict[str, float]:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("head", HEADS)
def test_validation_metrics_equal_one_process(head, tmp_path):
    one, two = metrics(run(tmp_path, head, "1", "validate")), metrics(run(tmp_path, head, "2", "validate"))
    synced = [k for k in one if k.startswith("val/")]
    assert len(synced) >= 3 and "val/loss" in synced
    for key in synced:  # metric states are summed / gathered across ranks: every row counted once, loss included
        assert two[key] == pytest.approx(one[key], rel=1e-6, abs=1e-7), key


@pytest.mark.slow
@pytest.mark.parametrize("head", HEADS)
def test_each_head_trains_under_ddp(head, tmp_path):
    before = metrics(run(tmp_path, head, "2", "validate"))  # the same seeded initial weights
    after = metrics(run(tmp_path, head, "2", "fit"))
    assert math.isfinite(after["train/loss"]) and after["val/loss"] < before["val/loss"]


@pytest.mark.slow
def test_frozen_layers_stay_frozen_on_every_rank(tmp_path):
    logged = metrics(run(tmp_path, "multiclass", "2", "fit", "--freeze"))
    assert math.isfinite(logged["train/loss"])  # and no "parameters did not receive gradients" error


@pytest.mark.slow
def test_unfreezing_under_ddp_fails_with_advice(tmp_path):
    result = run(tmp_path, "multiclass", "2", "fit", "--unfreeze")
    assert result.returncode != 0
    assert "FreezeLayers cannot unfreeze layers under DDP" in result.stderr


def record_rows(tmp_path: Path, seed: int, run: int = 0) -> tuple[list[int], list[list[list[int]]]]:
    out = tmp_path / f"seed{seed}-run{run}"
    out.mkdir()
    script = Path(__file__).parent / "scripts" / "ddp_rows.py"
    run_python(script, seed, out, timeout=240, cwd=tmp_path)
    epochs = [json.loads((out / f"epoch{e}.json").read_text()) for e in range(2)]
    return json.loads((out / "train_rows.json").read_text()), epochs


@pytest.mark.slow
def test_every_training_row_once_per_epoch_across_ranks(tmp_path):
    train_rows, epochs = record_rows(tmp_path, seed=3)
    for rank0, rank1 in epochs:
        assert len(rank0) == len(rank1) == (len(train_rows) + 1) // 2
        seen = rank0 + rank1
        assert sorted(set(seen)) == train_rows  # every training row, no validation row
        assert len(seen) - len(train_rows) == len(train_rows) % 2  # only the padding repeats a row
        assert len(set(rank0) & set(rank1)) <= len(train_rows) % 2  # disjoint shards, but for the padded row
    assert epochs[0][0] != epochs[1][0]  # a new order each epoch
    assert len(train_rows) % 2 == 1  # the padding case is exercised
    assert record_rows(tmp_path, seed=3, run=1)[1] == epochs  # and the same order for the same seed
