"""``TabularDataModule(table_on_device=…)``: the split loaders gather batches from a copy of the table on the Trainer's
device. Without a GPU the plumbing is checked on PyTorch's ``meta`` device (tensors with shapes and no data), and the
"auto" choice with a stand-in for ``torch.cuda.mem_get_info``; ``tests/test_host_reads.py`` runs a fit on a GPU."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from nnlit import TabularDataModule


class CountTransfers(TorchDispatchMode):
    """Counts copies of tensors to another device."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is torch.ops.aten._to_copy.default and kwargs.get("device") not in (None, args[0].device):
            self.count += 1
        return func(*args, **kwargs)


def _attach(dm: TabularDataModule, device: str) -> None:
    """What the split loaders read of a Trainer, on ``device``."""
    dm.trainer = SimpleNamespace(  # type: ignore[assignment]
        strategy=SimpleNamespace(root_device=torch.device(device)),
        global_rank=0,
        world_size=1,
        lightning_module=None,
        fit_loop=SimpleNamespace(restarting=False),
    )


def _mixed_module(**kwargs: object) -> TabularDataModule:
    """200 rows: two numeric columns (one with missing values, imputed with a was-missing column) and a categorical
    one: every tensor the transform uses."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    x[::7, 1] = np.nan
    import pandas as pd

    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "colour": rng.choice(["red", "green", "blue"], 200)})
    return TabularDataModule.from_arrays(
        frame, rng.integers(0, 2, 200), batch_size=16, missing="median_indicator", **kwargs
    )


def test_the_table_is_copied_to_the_device_once_and_batches_are_gathered_there():
    dm = _mixed_module(table_on_device=True)
    dm.setup("fit")
    _attach(dm, "meta")
    train, val = dm.train_dataloader(), dm.val_dataloader()
    assert all(t.device.type == "meta" for t in train.tensors)
    assert all(a is b for a, b in zip(train.tensors, val.tensors))  # one copy, shared by the loaders
    x, y = next(iter(train))
    assert x.device.type == "meta" and x.shape == (16, 4)  # 2 numeric columns, 1 was-missing, 1 category code
    assert y.device.type == "meta" and y.shape == (16,)
    copies = len(dm._device_copies)
    loader = dm.train_dataloader()
    with CountTransfers() as transfers:
        batches = sum(1 for _ in loader)
    assert batches == 10  # 160 training rows
    assert transfers.count == 1  # per epoch: the epoch's row order only; no table, statistic or batch
    assert len(dm._device_copies) == copies
    host = dm._load()
    assert host.x.device.type == "cpu" and dm.mean is not None and dm.mean.device.type == "cpu"  # only copies moved
    dm.teardown("fit")
    assert dm._device_copies == {}


def test_batches_on_the_device_equal_those_on_the_host():
    # the same module, gathered on the host and through the device path (the CPU standing in for the device: the
    # copy is skipped, so this checks that the device path transforms nothing differently)
    on_host, on_device = _mixed_module(table_on_device=False), _mixed_module(table_on_device=True)
    for dm in (on_host, on_device):
        dm.setup("fit")
        _attach(dm, "cpu")
    for (xa, ya), (xb, yb) in zip(on_host.train_dataloader(), on_device.train_dataloader()):
        torch.testing.assert_close(xa, xb)
        assert torch.equal(ya, yb)
    assert on_device._device_copies == {}


@pytest.mark.parametrize(("setting", "device"), [(False, "meta"), ("auto", "meta"), (True, "cpu"), ("auto", "cpu")])
def test_the_table_stays_on_the_host(setting, device, caplog):
    dm = TabularDataModule(dataset="xor", n_samples=100, table_on_device=setting)
    dm.setup("fit")
    _attach(dm, device)
    with caplog.at_level(logging.INFO):
        loader = dm.train_dataloader()
    assert all(t.device.type == "cpu" for t in loader.tensors)
    if setting == "auto" and device == "meta":  # "auto" copies to CUDA devices only, and says so
        assert "stays on the host" in caplog.text and "CUDA device" in caplog.text


@pytest.mark.parametrize(("free_mb", "copied"), [(4096, True), (1, False)])
def test_auto_copies_to_a_cuda_device_with_four_times_the_table_free(free_mb, copied, monkeypatch, caplog):
    dm = TabularDataModule(dataset="xor", n_samples=40_000)  # 40k × (2 floats + 1 int64 label): about 0.6 MB
    dm.setup("fit")
    _attach(dm, "cuda:0")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (free_mb * 2**20, 80 * 2**30))
    tensors = [dm._load().x, dm._load().y]
    with caplog.at_level(logging.INFO):
        chosen = dm._table_device(tensors)
    assert chosen == (torch.device("cuda:0") if copied else None)
    assert ("copied to cuda:0" if copied else "this one has 1 MB") in caplog.text


def test_no_trainer_no_copy():
    dm = TabularDataModule(dataset="xor", n_samples=100, table_on_device=True)
    dm.setup("fit")
    assert all(t.device.type == "cpu" for t in dm.train_dataloader().tensors)


@pytest.mark.parametrize("value", ["yes", 1, None, "true"])
def test_bad_table_on_device(value):
    with pytest.raises(ValueError, match=f"`table_on_device` must be true, false or 'auto', got {value!r}"):
        TabularDataModule(dataset="xor", table_on_device=value)
