"""Where a data module's loaders gather batches from: the host's table, or one copy of it on the Trainer's device
(``table_on_device``): :class:`TablePlacement`."""

from __future__ import annotations

import weakref
from typing import Any, Literal

import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch import Tensor


class DeviceCopies:
    """One copy of each tensor on each device, made at first use and kept until :meth:`clear`. A tensor is known by
    identity: a new tensor that happens to reuse a freed one's ``id`` gets a copy of its own.

    Example::

        >>> copies = DeviceCopies()
        >>> t = torch.ones(2)
        >>> copies.to(t, torch.device("cpu")) is t  # already there
        True
    """

    def __init__(self) -> None:
        #: (tensor id, device) -> (the tensor, its copy there)
        self.kept: dict[tuple[int, torch.device], tuple[Tensor, Tensor]] = {}

    def to(self, tensor: Tensor, device: torch.device, keep: tuple[Tensor | None, ...] | None = None) -> Tensor:
        """``tensor`` on ``device``: itself when it is there, else its kept copy (made now if needed). ``keep``: the
        only tensors whose copies are worth keeping (others are dropped first), for an owner whose tensors can be
        replaced."""
        if tensor.device == device:
            return tensor
        if keep is not None:
            for key in [k for k, (source, _) in self.kept.items() if not any(source is t for t in keep)]:
                del self.kept[key]
        key = (id(tensor), device)
        kept = self.kept.get(key)
        if kept is None or kept[0] is not tensor:
            kept = (tensor, tensor.to(device))
            self.kept[key] = kept
        return kept[1]

    def host_of(self) -> dict[int, Tensor]:
        """Each copy's source tensor, by the copy's id."""
        return {id(copy): host for host, copy in self.kept.values()}

    def clear(self) -> None:
        self.kept.clear()


class TablePlacement:
    """Decides, once per run, whether the table goes to the Trainer's device, keeps the one copy of each tensor there,
    and releases them when the run ends (:meth:`release`): the Trainer keeps its loaders, so those given a copy are
    pointed back at the host's tensors.

    Args:
        mode: ``"auto"``: on a CUDA device with 4 times the table's size free (PyTorch's unused cache counted as
            free); ``True``: on the Trainer's device whatever its size or kind; ``False``: on the host.
    """

    def __init__(self, mode: bool | Literal["auto"] = "auto") -> None:
        if not (isinstance(mode, bool) or mode == "auto"):
            raise ValueError(f"`table_on_device` must be true, false or 'auto', got {mode!r}")
        self.mode = mode
        # one copy of each tensor per run, shared by the loaders and the transform
        self._copies = DeviceCopies()
        #: the Trainer's device -> where the table is gathered from (that device, or None: the host), decided once per
        #: run: the first loader's copy must not change the free memory the next loader's choice reads
        self.devices: dict[torch.device, torch.device | None] = {}
        #: the loaders given a device copy: at release they go back to the host's tensors
        self.loaders: list[weakref.ref[Any]] = []

    def device_for(self, trainer: Any, tensors: list[Tensor]) -> torch.device | None:
        """The device the split loaders copy ``tensors`` (the table) to; ``None``: they stay on the host."""
        device = None if trainer is None or self.mode is False else trainer.strategy.root_device
        if device is None or device.type == "cpu":
            return None
        if device not in self.devices:  # the first loader of this run decides, and says so
            size = sum(t.numel() * t.element_size() for t in tensors) / 2**20
            chosen: torch.device | None = device
            if self.mode == "auto":
                free = free_memory(device) / 2**20 if device.type == "cuda" else 0.0
                if size > free / 4:
                    chosen = None
                    rank_zero_info(
                        f"nnlit data: the table ({size:.0f} MB) stays on the host and each batch is copied to "
                        f"{device}: table_on_device='auto' copies it to a CUDA device with 4 times its size free"
                        + (f", this one has {free:.0f} MB" if device.type == "cuda" else "")
                        + "; `table_on_device: true` copies it anyway"
                    )
            if chosen is not None:
                rank_zero_info(
                    f"nnlit data: the table ({size:.0f} MB) is copied to {device} once, and batches are gathered there"
                )
            self.devices[device] = chosen
        return self.devices[device]

    @property
    def copies(self) -> dict[tuple[int, torch.device], tuple[Tensor, Tensor]]:
        """(tensor id, device) -> (the tensor, its copy there): the copies of this run."""
        return self._copies.kept

    def copy(self, tensor: Tensor, device: torch.device) -> Tensor:
        """``tensor`` on ``device``: itself when it is there, else a copy made once and kept until :meth:`release`
        (the loaders share one copy of the table, and the transform one of each statistic)."""
        return self._copies.to(tensor, device)

    def register(self, loader: Any) -> None:
        """A loader given device copies, to be pointed back at the host's tensors at :meth:`release`."""
        self.loaders.append(weakref.ref(loader))

    def release(self) -> None:
        """Frees the device's copies: loaders still alive are pointed back at the host's tensors, and the next run
        decides afresh where the table goes."""
        host_of = self._copies.host_of()
        for ref in self.loaders:
            loader = ref()
            if loader is not None:
                loader.tensors = tuple(host_of.get(id(t), t) for t in loader.tensors)
        self.loaders.clear()
        self._copies.clear()
        self.devices.clear()


def free_memory(device: torch.device) -> int:
    """Bytes a new tensor can take on the CUDA ``device``: what the driver has free plus what PyTorch's allocator holds
    in its cache without using (``mem_get_info`` counts the cache as used)."""
    free = torch.cuda.mem_get_info(device)[0]
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


__all__ = ["DeviceCopies", "TablePlacement", "free_memory"]
