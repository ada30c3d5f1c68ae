"""The loaders of a data module's splits and of its prediction rows: which rows, in what order, on which rank and
device."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from nnlit.data.fitted_preprocessing import FittedPreprocessing
from nnlit.data.loader import ShardedIndexSampler, TensorBatchLoader
from nnlit.data.placement import TablePlacement

Transform = Callable[[tuple[Tensor, ...]], tuple[Tensor, ...]]


def batch_transform(prep: FittedPreprocessing, placement: TablePlacement, copied: bool) -> Transform:
    """What turns a batch's tensors (numeric features, their codes with categorical features, then the rest) into the
    model's input and the rest, by ``prep`` (fill, append the codes, standardise), its statistics on the batch's
    device. ``copied``: the loader gathered the batch (through ``rows``: always a copy), so it is standardised in
    place, without a second buffer of its size; rows read in order are views of the table."""
    has_codes = bool(prep.categorical)

    def transform(tensors: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        x, device = tensors[0], tensors[0].device
        x = prep.transform(x, tensors[1] if has_codes else None, copied, on=lambda t: placement.copy(t, device))
        return (x, *tensors[1 + has_codes :])

    return transform


def rank_and_world_size(trainer: Any) -> tuple[int, int]:
    """This process's rank and the number of processes (``0, 1`` without a Trainer)."""
    return (0, 1) if trainer is None else (trainer.global_rank, trainer.world_size)


def split_loader(
    tensors: Sequence[Tensor],
    rows: Tensor,
    batch_size: int,
    *,
    shuffle: bool,
    pad: bool,
    drop_last: bool,
    seed: int,
    trainer: Any,
    placement: TablePlacement,
    transform: Transform,
) -> TensorBatchLoader:
    """Batches of the split's ``rows`` gathered from the whole table's ``tensors`` (no copy of the split), each
    transformed as it is cut; under DDP each rank takes its stride of the same seeded permutation. The table is copied
    to the Trainer's device when ``placement`` says so, and the loader registered with it."""
    rank, world_size = rank_and_world_size(trainer)
    sampler = ShardedIndexSampler(len(rows), shuffle=shuffle, seed=seed, rank=rank, world_size=world_size, pad=pad)
    device = placement.device_for(trainer, list(tensors))
    loader = TensorBatchLoader(
        list(tensors) if device is None else [placement.copy(t, device) for t in tensors],
        batch_size,
        sampler=sampler,
        drop_last=drop_last,
        rows=rows,
        transform=transform,
    )
    if device is not None:
        placement.register(loader)
    return loader


def predict_loader(tensors: Sequence[Tensor], batch_size: int, trainer: Any, transform: Transform) -> TensorBatchLoader:
    """Batches of every row of ``tensors`` in order, each with its row numbers last, split among the ranks."""
    rows = torch.arange(len(tensors[0]))
    rank, world_size = rank_and_world_size(trainer)
    sampler = ShardedIndexSampler(len(rows), shuffle=False, rank=rank, world_size=world_size, pad=False)
    return TensorBatchLoader([*tensors, rows], batch_size, sampler=sampler, transform=transform)


__all__ = ["batch_transform", "predict_loader", "rank_and_world_size", "split_loader"]
