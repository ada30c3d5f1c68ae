"""AtomicCheckpointIO: a save is all or nothing wherever TMPDIR is, no temporary file outlives its process, and a
truncated checkpoint is named with the newest readable one next to it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nnlit import checkpoint_io
from nnlit.checkpoint_io import AtomicCheckpointIO, read_checkpoint, remove_orphans

HOST = checkpoint_io._HOST


def test_a_save_replaces_the_file_whole_and_leaves_no_temporary_file(tmp_path):
    io = AtomicCheckpointIO()
    target = tmp_path / "run" / "last.ckpt"
    version = {"pytorch-lightning_version": "2.6.6"}
    io.save_checkpoint({"epoch": 1, "state_dict": {"w": torch.ones(3)}, **version}, target)
    io.save_checkpoint({"epoch": 2, "state_dict": {"w": torch.zeros(3)}, **version}, target)
    assert io.load_checkpoint(target)["epoch"] == 2
    del version["pytorch-lightning_version"]
    io.save_checkpoint({"epoch": 3, "state_dict": {"w": torch.zeros(3)}}, target)
    with pytest.raises(ValueError, match=r"has a 'state_dict' but no 'pytorch-lightning_version' .* `pretrained`"):
        io.load_checkpoint(target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]
    assert (target.stat().st_mode & 0o777) == (0o666 & ~_umask())  # as a plain open() would make it


def test_a_save_that_fails_keeps_the_previous_file(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1}, target)

    def disk_full(obj, file):
        file.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match=r"Could not write the checkpoint '.*last\.ckpt': No space left on device"):
        io.save_checkpoint({"epoch": 2}, target)
    monkeypatch.undo()
    assert read_checkpoint(target)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_temporary_files_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = tmp_path / f".last.ckpt.{HOST}.{dead.pid}.0123abcd.tmp"
    live = tmp_path / f".last.ckpt.{HOST}.{os.getpid()}.0123abcd.tmp"
    other_host = tmp_path / f".last.ckpt.elsewhere.{dead.pid}.0123abcd.tmp"
    for path in (orphan, live, other_host):
        path.write_bytes(b"partial")
    assert remove_orphans(tmp_path) == [orphan]
    AtomicCheckpointIO().save_checkpoint({"epoch": 0}, tmp_path / "last.ckpt")
    assert not orphan.exists() and live.exists() and other_host.exists()


def test_a_truncated_checkpoint_is_named_with_the_newest_readable_one(tmp_path):
    io = AtomicCheckpointIO()
    good = tmp_path / "epoch=1.ckpt"
    io.save_checkpoint({"epoch": 1, "state_dict": {"w": torch.ones(100)}}, good)
    last = tmp_path / "last.ckpt"
    last.write_bytes(good.read_bytes()[:200])
    with pytest.raises(
        ValueError,
        match=r"'.*last\.ckpt' is not an nnlit checkpoint: it is a truncated checkpoint .*"
        r"the newest readable checkpoint next to it is '.*epoch=1\.ckpt'",
    ):
        io.load_checkpoint(last)
    last.write_bytes(b"")
    with pytest.raises(ValueError, match=r"it is an empty file; the newest readable checkpoint next to it is"):
        io.load_checkpoint(last)


#: saves a 24 MB checkpoint over and over: the parent kills it during a save
_SAVER = """
import sys, torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from nnlit.checkpoint_io import AtomicCheckpointIO
io = AtomicCheckpointIO() if sys.argv[2] == "atomic" else TorchCheckpointIO()
weights = torch.randn(6_000_000)
print("ready", flush=True)
for epoch in range(10**6):
    io.save_checkpoint({"epoch": epoch, "state_dict": {"w": weights}}, sys.argv[1])
"""


def kill_during_saves(folder: Path, kind: str, kills: int) -> list[str]:
    """Kills a saver ``kills`` times at random moments, with TMPDIR on another filesystem; returns what each
    ``last.ckpt`` was after a kill ("ok" or the error)."""
    env = {**os.environ, "TMPDIR": "/dev/shm"}
    target = folder / "last.ckpt"
    results, rng = [], random.Random(0)
    for _ in range(kills):
        saver = subprocess.Popen(
            [sys.executable, "-c", _SAVER, str(target), kind], env=env, stdout=subprocess.PIPE, text=True
        )
        assert saver.stdout is not None and saver.stdout.readline().strip() == "ready"
        time.sleep(0.3 + rng.random() * 0.7)
        saver.send_signal(signal.SIGKILL)
        saver.wait()
        try:
            torch.load(target, map_location="meta", weights_only=True)
            results.append("ok")
        except Exception as err:
            results.append(type(err).__name__)
    return results


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs /dev/shm, a filesystem apart from the tests' own")
def test_every_last_ckpt_loads_after_kills_during_saves(tmp_path):
    if os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("/dev/shm is on the same filesystem as the test folder here")
    assert kill_during_saves(tmp_path, "atomic", kills=8) == ["ok"] * 8
    AtomicCheckpointIO().save_checkpoint({"epoch": -1}, tmp_path / "last.ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # the killed saves' temporary files are gone


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
