"""A process of a distributed fit destroys its process group before Python shuts down (nnlit/distributed.py): the
``setup`` of nnlit's modules and of its data module registers it. Each case runs in a fresh process with a one-process
gloo group; a handler registered before the group reports whether the group is still alive when Python exits."""

from __future__ import annotations

import pytest

from nnlit import distributed
from tests.helpers import run_python

SCRIPT = """
import atexit, sys
import torch.distributed as dist
atexit.register(lambda: print("group alive at exit:", dist.is_initialized()))  # runs after handlers added later
dist.init_process_group("gloo", init_method="file://" + sys.argv[1], rank=0, world_size=1)
import numpy as np
from nnlit import BinaryMLP, TabularDataModule
{setup}
"""

SETUPS = {
    "module": 'BinaryMLP(in_features=2, hidden=[4]).setup("fit")',
    "data module": 'TabularDataModule.from_arrays(np.zeros((20, 2), "float32"), np.arange(20) % 2).setup("fit")',
    "nothing of nnlit": "pass",
}


@pytest.mark.integration
@pytest.mark.parametrize("what", SETUPS)
def test_setup_has_the_group_destroyed_at_exit(tmp_path, what):
    result = run_python("-c", SCRIPT.format(setup=SETUPS[what]), tmp_path / "store", cwd=tmp_path)
    alive = what == "nothing of nnlit"  # the control: the check sees a group nobody destroyed
    assert f"group alive at exit: {alive}" in result.stdout, result.stdout + result.stderr[-2000:]


@pytest.mark.parametrize("group", [False, True])
def test_one_handler_a_process_and_none_without_a_group(monkeypatch, group):
    registered = []
    monkeypatch.setattr(distributed, "_registered", False)
    monkeypatch.setattr(distributed.atexit, "register", registered.append)
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: group)
    for _ in range(3):  # the module's and the data module's setup, fit then test
        distributed.destroy_process_group_at_exit()
    assert registered == ([distributed._destroy] if group else [])
