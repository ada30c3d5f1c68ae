"""``TabularDataModule(table_on_device=…)``: the split loaders gather batches from a copy of the table on the Trainer's
device. Without a GPU the plumbing is checked on PyTorch's ``meta`` device (tensors with shapes and no data), and the
"auto" choice with a stand-in for ``torch.cuda.mem_get_info``; ``tests/test_host_reads.py`` runs a fit on a GPU."""

from __future__ import annotations

import gc
import logging
import weakref
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from nnlit import TabularDataModule
from nnlit.data import loader as loader_module


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
    copies = len(dm.placement.copies)
    loader = dm.train_dataloader()
    with CountTransfers() as transfers:
        batches = sum(1 for _ in loader)
    assert batches == 10  # 160 training rows
    # per epoch: the epoch's row order only (on CUDA through pinned memory, without blocking); no table, statistic
    # or batch
    assert transfers.count == 1
    assert len(dm.placement.copies) == copies
    host = dm.table
    mean = dm.preprocessing.mean
    assert host.x.device.type == "cpu" and mean is not None and mean.device.type == "cpu"  # only copies moved


def test_teardown_points_the_loaders_back_at_the_host_and_frees_the_copy():
    dm = _mixed_module(table_on_device=True)
    dm.setup("fit")
    _attach(dm, "meta")
    train, val = dm.train_dataloader(), dm.val_dataloader()  # the Trainer keeps its loaders after the run
    host_of = {id(copy): host for host, copy in dm.placement.copies.values()}
    host = [host_of[id(t)] for t in train.tensors]
    copy = weakref.ref(train.tensors[0])
    dm.teardown("fit")
    assert all(a is b for a, b in zip(train.tensors, host)) and all(a is b for a, b in zip(val.tensors, host))
    gc.collect()
    assert copy() is None  # nothing holds the device's copy any more
    assert dm.placement.copies == {} and dm.placement.loaders == [] and dm.placement.devices == {}
    x, _ = next(iter(train))  # the loaders still work, from the host
    assert x.device.type == "cpu" and x.shape == (16, 4)


def test_a_run_that_raised_releases_the_copy_too():
    # Lightning calls the datamodule's on_exception, not its teardown, when a run raises
    dm = _mixed_module(table_on_device=True)
    dm.setup("fit")
    _attach(dm, "meta")
    train = dm.train_dataloader()
    dm.on_exception(RuntimeError("CUDA out of memory"))
    assert all(t.device.type == "cpu" for t in train.tensors)
    assert dm.placement.copies == {} and dm.placement.loaders == [] and dm.placement.devices == {}


def test_the_epoch_order_goes_to_a_cuda_device_without_blocking(monkeypatch):
    # no GPU here: what the copy is asked to do is recorded instead
    calls = []

    class Index:
        device = torch.device("cpu")

        def contiguous(self):
            calls.append("contiguous")
            return self

        def pin_memory(self):
            calls.append("pin_memory")
            return self

        def to(self, device, non_blocking=False):
            calls.append(("to", device, non_blocking))
            return self

    loader_module._to_device(Index(), torch.device("cuda:0"))  # type: ignore[arg-type]
    assert calls == ["contiguous", "pin_memory", ("to", torch.device("cuda:0"), True)]
    index = torch.arange(3)
    assert loader_module._to_device(index, torch.device("cpu")) is index


def test_batches_on_the_device_equal_those_on_the_host(monkeypatch):
    # the same module, gathered on the host and through the device path, with the CPU standing in for the device and
    # a clone for each copy to it
    on_host, on_device = _mixed_module(table_on_device=False), _mixed_module(table_on_device=True)
    for dm in (on_host, on_device):
        dm.setup("fit")
        _attach(dm, "cpu")
    clones: list[torch.Tensor] = []

    def clone(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
        clones.append(tensor.clone())
        return clones[-1]

    monkeypatch.setattr(on_device.placement, "device_for", lambda trainer, tensors: torch.device("cpu"))
    monkeypatch.setattr(on_device.placement, "copy", clone)
    host_loader, device_loader = on_host.train_dataloader(), on_device.train_dataloader()
    assert all(any(t is c for c in clones) for t in device_loader.tensors)  # the device path was taken
    batches = 0
    for (xa, ya), (xb, yb) in zip(host_loader, device_loader, strict=True):
        torch.testing.assert_close(xa, xb)
        assert torch.equal(ya, yb)
        batches += 1
    assert batches == 10


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


def _cuda_memory(monkeypatch, free: int, reserved: int = 0, allocated: int = 0) -> list[int]:
    """Stands in for CUDA's memory figures (bytes); what ``mem_get_info`` answers next can be changed in the list."""
    answer = [free]
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (answer[0], 80 * 2**30))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: reserved)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: allocated)
    return answer


def _table_bytes(dm: TabularDataModule) -> int:
    return sum(t.numel() * t.element_size() for t in (dm.table.x, dm.table.y))


@pytest.mark.parametrize(("times", "copied"), [(4, True), (3.99, False), (100, True), (0, False)])
def test_auto_copies_to_a_cuda_device_with_four_times_the_table_free(times, copied, monkeypatch, caplog):
    dm = TabularDataModule(dataset="xor", n_samples=40_000)  # 40k × (2 floats + 1 int64 label): about 0.6 MB
    dm.setup("fit")
    _attach(dm, "cuda:0")
    _cuda_memory(monkeypatch, free=int(times * _table_bytes(dm)))
    with caplog.at_level(logging.INFO):
        chosen = dm.placement.device_for(dm.trainer, [dm.table.x, dm.table.y])
    assert chosen == (torch.device("cuda:0") if copied else None)
    if copied:
        assert "copied to cuda:0" in caplog.text
    else:
        assert "stays on the host" in caplog.text and "`table_on_device: true` copies it anyway" in caplog.text


def test_auto_counts_the_allocators_unused_cache_as_free(monkeypatch):
    dm = TabularDataModule(dataset="xor", n_samples=40_000)
    dm.setup("fit")
    _attach(dm, "cuda:0")
    size = _table_bytes(dm)
    # the driver sees 1 table's size free; PyTorch holds 5 more in its cache, of which 1 is in use
    _cuda_memory(monkeypatch, free=size, reserved=5 * size, allocated=size)
    assert dm.placement.device_for(dm.trainer, [dm.table.x, dm.table.y]) == torch.device("cuda:0")


def test_auto_decides_once_per_run(monkeypatch, caplog):
    # Lightning asks for the validation loader first (the sanity check); its copy takes free memory, and the training
    # loader must not then decide the table stays on the host
    dm = TabularDataModule(dataset="xor", n_samples=40_000)
    dm.setup("fit")
    _attach(dm, "cuda:0")
    size = _table_bytes(dm)
    free = _cuda_memory(monkeypatch, free=5 * size)
    copies: list[torch.Tensor] = []
    monkeypatch.setattr(dm.placement, "copy", lambda tensor, device: copies.append(tensor) or tensor)
    with caplog.at_level(logging.INFO):
        dm.val_dataloader()
        free[0] = 3 * size  # what the driver would say after the copy
        dm.train_dataloader()
    assert len(copies) == 4  # features and targets, for each loader
    assert caplog.text.count("copied to cuda:0") == 1  # said once
    dm.teardown("fit")
    dm.train_dataloader()  # the next run decides afresh
    assert len(copies) == 4


def test_no_trainer_no_copy():
    dm = TabularDataModule(dataset="xor", n_samples=100, table_on_device=True)
    dm.setup("fit")
    assert all(t.device.type == "cpu" for t in dm.train_dataloader().tensors)


@pytest.mark.parametrize("value", ["yes", 1, None, "true"])
def test_bad_table_on_device(value):
    with pytest.raises(ValueError, match=f"`table_on_device` must be true, false or 'auto', got {value!r}"):
        TabularDataModule(dataset="xor", table_on_device=value)


def test_table_on_device_can_be_changed_after_construction():
    dm = TabularDataModule(dataset="xor", table_on_device=False)
    dm.table_on_device = True
    assert dm.table_on_device is True and dm.placement.mode is True
    with pytest.raises(ValueError, match=r"`table_on_device` must be true, false or 'auto', got 'gpu'"):
        dm.table_on_device = "gpu"
