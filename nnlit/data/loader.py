"""Batches cut from in-memory tensors by a shuffled index: no per-row ``__getitem__``, no collate."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from nnlit.validation import check_int


class ShardedIndexSampler:
    """The row indices one process visits in one epoch.

    The permutation depends only on ``seed + epoch``, so every rank draws the same one and takes its own stride of it
    (rank ``r`` of ``w`` gets positions ``r, r + w, …``): across ranks every row is seen once per epoch. Lightning calls
    :meth:`set_epoch` at the start of each epoch (it looks for ``loader.sampler.set_epoch``), so a resumed run
    continues with the order it would have had.

    With ``pad=True`` (training) the index is padded by repeating its first rows until it divides evenly, so every
    rank takes the same number of steps, as ``torch.utils.data.DistributedSampler`` does; with ``pad=False``
    (evaluation) shards may differ by one row and no row is counted twice.

    Example::

        >>> s = ShardedIndexSampler(5, shuffle=False, rank=1, world_size=2)
        >>> s.indices().tolist(), len(s)
        ([1, 3, 0], 3)
        >>> ShardedIndexSampler(5, shuffle=False, rank=1, world_size=2, pad=False).indices().tolist()
        [1, 3]
    """

    def __init__(
        self,
        num_rows: int,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        pad: bool = True,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"`rank` must be in [0, world_size={world_size}), got {rank}")
        self.num_rows = num_rows
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.pad = pad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.pad:
            return math.ceil(self.num_rows / self.world_size)
        return len(range(self.rank, self.num_rows, self.world_size))

    def indices(self) -> Tensor | None:
        """The index tensor for this epoch, or ``None`` when it is simply ``0, 1, …, num_rows - 1``."""
        if not self.shuffle and self.world_size == 1:
            return None
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_rows, generator=g, dtype=torch.int32)  # the same order as int64's
        else:
            order = torch.arange(self.num_rows, dtype=torch.int32)
        if self.pad and self.num_rows % self.world_size:
            total = math.ceil(self.num_rows / self.world_size) * self.world_size
            order = order.repeat(math.ceil(total / self.num_rows))[:total]  # fewer rows than ranks: repeat more
        return order[self.rank :: self.world_size]


class BatchGroup(NamedTuple):
    """Several consecutive minibatches handed to one training step, as one slice of rows.

    ``tensors`` hold up to ``count × batch_size`` rows; :meth:`split` gives the minibatches as views (no copy). One
    slice instead of ``count`` batches means one device transfer and one pass through Lightning's batch handling.

    Example::

        >>> group = BatchGroup((torch.arange(5.0), torch.arange(5)), batch_size=2)
        >>> [b[1].tolist() for b in group.split()]
        [[0, 1], [2, 3], [4]]
    """

    tensors: tuple[Tensor, ...]
    batch_size: int

    def split(self) -> Iterator[tuple[Tensor, ...]]:
        rows = len(self.tensors[0])
        for start in range(0, rows, self.batch_size):
            yield tuple(t[start : start + self.batch_size] for t in self.tensors)

    def __len__(self) -> int:  # type: ignore[override]
        """The number of minibatches (not the tuple's two fields)."""
        return math.ceil(len(self.tensors[0]) / self.batch_size)


class TensorBatchLoader:
    """Iterates over batches ``tuple(t[idx] for t in tensors)``; a drop-in for a ``DataLoader`` in Lightning.

    Args:
        tensors: tensors with the same first dimension (features, targets, …).
        batch_size: rows per batch.
        sampler: which rows this process sees, in which order; default all rows in order.
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        group: minibatches per item: with ``group > 1`` the loader yields :class:`BatchGroup` items of up to
            ``group`` minibatches each (for a training step that takes several optimizer steps, see
            :class:`~nnlit.models.base.MLPModule`); its length and ``skip_batches`` count groups.
        rows: the rows of ``tensors`` this loader serves (a split of a larger table, without copying it); the
            sampler's positions index this. Default: every row. With ``rows``, every batch is a gathered copy; without
            it, batches in order on one process are views of ``tensors``.
        transform: applied to each batch's tuple of tensors after it is gathered (e.g. standardisation), so the
            table is never transformed, nor copied, as a whole.

    Example::

        >>> x, y = torch.arange(10.0).view(5, 2), torch.arange(5)
        >>> [b[1].tolist() for b in TensorBatchLoader([x, y], batch_size=2)]
        [[0, 1], [2, 3], [4]]
        >>> [len(g) for g in TensorBatchLoader([x, y], batch_size=2, group=2)]
        [2, 1]
    """

    def __init__(
        self,
        tensors: Sequence[Tensor],
        batch_size: int,
        sampler: ShardedIndexSampler | None = None,
        drop_last: bool = False,
        group: int = 1,
        rows: Tensor | None = None,
        transform: Callable[[tuple[Tensor, ...]], tuple[Tensor, ...]] | None = None,
    ) -> None:
        if not tensors:
            raise ValueError("`tensors` must hold at least one tensor")
        if any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError(f"All tensors need the same number of rows, got {[len(t) for t in tensors]}")
        num_rows = len(tensors[0]) if rows is None else len(rows)
        check_int("batch_size", batch_size)
        check_int("group", group)
        self.group = group
        self.rows = None if rows is None else torch.as_tensor(rows)
        self.transform = transform
        self.tensors = tuple(tensors)
        self.batch_size = batch_size
        self.sampler = sampler if sampler is not None else ShardedIndexSampler(num_rows, shuffle=False)
        self.drop_last = drop_last
        #: batches to leave out at the start of the next iteration only: a run resumed from a mid-epoch checkpoint
        #: must not see the epoch's first batches again (set by :meth:`load_state_dict`)
        self.skip_batches = 0
        self._yielded = 0  # batches (groups) handed out in the current iteration
        # Lightning inspects these DataLoader attributes: `sampler.set_epoch` is called every epoch, and
        # `batch_sampler` is read (None: batching is done here, not by a sampler).
        self.batch_sampler = None

    def state_dict(self) -> dict[str, int]:
        """How many batches (groups) of the current epoch were handed out: Lightning saves it in checkpoints (the
        loader is stateful). It reads the loader's length, so it takes no batch ahead: at a checkpoint taken after a
        batch, the count is the batches trained on."""
        return {"batches": self._yielded}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resumes mid-epoch: the next iteration skips the batches a checkpoint's epoch had trained on. A count of
        0 or of the whole epoch (a checkpoint at an epoch's end) skips nothing: the next epoch starts afresh."""
        batches = int(state_dict.get("batches", 0))
        self.skip_batches = batches if 0 < batches < len(self) else 0

    def __len__(self) -> int:
        return math.ceil(self.num_minibatches / self.group)

    @property
    def num_minibatches(self) -> int:
        """Minibatches per epoch (the loader's length counts groups of ``group``)."""
        rows = len(self.sampler)
        return rows // self.batch_size if self.drop_last else math.ceil(rows / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, ...] | BatchGroup]:
        index = self.sampler.indices()
        rows = len(self.sampler)
        stop = (rows // self.batch_size) * self.batch_size if self.drop_last else rows
        step = self.batch_size * self.group
        first = self.skip_batches * step
        self._yielded = self.skip_batches
        self.skip_batches = 0
        if self.rows is not None:  # positions in the split -> rows of the table
            index = self.rows if index is None else _take(self.rows, index)
        if index is not None:  # to the table's device once per epoch, not once per batch and tensor
            index = _to_device(index, self.tensors[0].device)
        for start in range(first, stop, step):
            end = min(start + step, stop)
            if index is None:  # contiguous views, no copy
                tensors = tuple(t[start:end] for t in self.tensors)
            else:
                rows_idx = index[start:end]
                tensors = tuple(_take(t, rows_idx) for t in self.tensors)
            if self.transform is not None:
                tensors = self.transform(tensors)
            self._yielded += 1  # before the yield: the count includes the batch being trained on
            yield tensors if self.group == 1 else BatchGroup(tensors, self.batch_size)


def _take(tensor: Tensor, index: Tensor) -> Tensor:
    """``tensor[index]`` for a 1-D integer ``index``, through ``index_select``: on CPU it gathers a batch of rows
    faster than indexing with ``[]``, which goes through the general advanced-indexing kernel."""
    return tensor.index_select(0, _to_device(index, tensor.device))


def _to_device(index: Tensor, device: torch.device) -> Tensor:
    """``index`` on ``device``. To a CUDA device the copy goes through pinned memory without blocking: a copy from
    pageable memory would make the host wait for the device once per epoch (``set_sync_debug_mode`` flags it)."""
    if index.device == device:
        return index
    if device.type == "cuda":
        return index.contiguous().pin_memory().to(device, non_blocking=True)
    return index.to(device)
