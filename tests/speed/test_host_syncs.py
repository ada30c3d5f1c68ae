"""HostSyncs puts each host sync down to the innermost line of nnlit's code and tells how often it happens. CUDA's
sync warnings are stood in for by warnings of the same text raised from functions that claim to live in torch,
Lightning or nnlit. It runs in a fresh process: on a machine with a GPU, the recorder turns CUDA's sync debug mode on,
and nothing but the scenario may warn there."""

from __future__ import annotations

import json

import pytest
from helpers import run_python

SCENARIO = r"""
import functools, json, sys, warnings
from types import SimpleNamespace
import torch
from nnlit.speed.host_syncs import HostSyncs


def function(path, name, body):
    scope = {"warnings": warnings}
    exec(compile(f"def {name}(inner):\n    {body}\n", path, "exec"), scope)
    return scope[name]


def warn_from(path, name, inner=None):
    if inner is None:
        warn = "warnings.warn('called a synchronizing CUDA operation')"
        inner = functools.partial(function(torch.__file__.replace("__init__.py", "cuda/op.py"), "op", warn), None)
    function(path, name, "inner()")(inner)


trainer = SimpleNamespace(state=SimpleNamespace(stage=SimpleNamespace(value="train")), current_epoch=1, global_step=7)
hook, other = "/site/nnlit/callbacks/x.py", "/site/nnlit/callbacks/epoch_end.py"
with HostSyncs(trainer, package="/site/nnlit/") as recorder:
    warn_from(hook, "hook", lambda: warn_from("/site/lightning/y.py", "log"))  # nnlit's hook calls Lightning
    warn_from("/site/lightning/y.py", "loop")  # no nnlit frame: the innermost frame outside torch
    recorder.paused = True
    warn_from(hook, "hook")  # not recorded
    recorder.paused = False
    for step in (8, 9, 10):  # one place at three steps of an epoch: per step
        trainer.global_step = step
        warn_from(hook, "hook")
    for epoch in (1, 2):  # one place three times (a loop over layers) at one step of each epoch: per epoch
        trainer.current_epoch, trainer.global_step = epoch, 10 * epoch
        for _ in range(3):
            warn_from(other, "layers")
    warnings.warn("something else", UserWarning, stacklevel=1)  # shown as usual, not recorded
found = {"syncs": [list(s) for s in recorder.syncs], "table": recorder.table(), "ours": recorder.from_nnlit()}
print(json.dumps(found))
"""


@pytest.mark.integration
def test_each_sync_is_put_down_to_nnlits_line_and_told_how_often():
    result = run_python("-c", SCENARIO, timeout=120)
    assert "something else" in result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    hook, layers = "/site/nnlit/callbacks/x.py:2 (hook)", "/site/nnlit/callbacks/epoch_end.py:2 (layers)"
    assert found["syncs"][:2] == [
        [hook, True, "/site/lightning/y.py:2 (log)", "train", 1, 7],
        ["/site/lightning/y.py:2 (loop)", False, "/site/lightning/y.py:2 (loop)", "train", 1, 7],
    ]
    assert found["table"] == [
        [6, "per epoch", "train", layers],
        [3, "per step", "train", hook],
        [1, "once", "train", f"{hook} <- /site/lightning/y.py:2 (log)"],
        [1, "once", "train", "/site/lightning/y.py:2 (loop)"],
    ]
    assert found["ours"] == {"per epoch": 6, "per step": 3, "once": 1}
