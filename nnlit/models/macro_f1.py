"""The multiclass head's F1 metric: torchmetrics' macro F1, updated without reading anything on the host."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.classification import MulticlassF1Score


class MacroF1(MulticlassF1Score):
    """``MulticlassF1Score(num_classes, average="macro")`` whose ``update`` never makes the host wait for a GPU.

    torchmetrics counts the ``(target, prediction)`` pairs with ``torch.bincount``, which on CUDA first reads the
    pairs' smallest and largest values on the host: two waits for the device per update. Here the pairs are added
    into ``num_classes²`` bins with ``index_add_``, which gives the same counts with nothing read. The states (true
    and false positives and negatives per class), their DDP reduction and ``compute`` are torchmetrics'. A label
    outside ``[0, num_classes)`` is not counted (its pair goes to a spare bin, dropped): an out-of-range index would
    stop a CUDA device with an assertion, and checking it would read it on the host.

    Args:
        num_classes: the number of classes.

    Example::

        >>> f1 = MacroF1(num_classes=3)
        >>> f1.update(torch.tensor([[2.0, 0.1, 0.0], [0.0, 1.0, 3.0], [0.0, 2.0, 1.0]]), torch.tensor([0, 1, 1]))
        >>> f1.tp.tolist(), f1.fp.tolist(), f1.fn.tolist()
        ([1, 1, 0], [0, 0, 1], [0, 1, 0])
        >>> round(f1.compute().item(), 4)  # class 2 has no support but counts, as in torchmetrics
        0.5556
    """

    # global (not per-sample) averaging: each state is one tensor of num_classes counts
    tp: Tensor
    fp: Tensor
    tn: Tensor
    fn: Tensor

    def __init__(self, num_classes: int) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"`num_classes` must be an integer >= 2, got {num_classes!r}")
        super().__init__(num_classes=num_classes, average="macro", validate_args=False)

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Adds a batch: ``preds`` are scores ``(rows, num_classes)`` (logits or probabilities) or labels ``(rows,)``,
        ``target`` the class labels ``(rows,)``."""
        if preds.ndim == target.ndim + 1:
            preds = preds.argmax(dim=1)
        k = int(self.num_classes or 1)
        target, preds = target.reshape(-1).long(), preds.reshape(-1).long()
        valid = (target >= 0) & (target < k) & (preds >= 0) & (preds < k)
        pairs = torch.where(valid, target * k + preds, k * k)  # the spare bin k²
        counts = torch.zeros(k * k + 1, dtype=torch.long, device=pairs.device)
        confusion = counts.index_add_(0, pairs, torch.ones_like(pairs))[: k * k].view(k, k)  # rows: targets
        tp = confusion.diagonal()
        fp = confusion.sum(0) - tp
        fn = confusion.sum(1) - tp
        self.tp = self.tp + tp
        self.fp = self.fp + fp
        self.fn = self.fn + fn
        self.tn = self.tn + (valid.sum() - tp - fp - fn)
