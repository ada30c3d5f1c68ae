"""The multiclass head's F1 metric: the macro F1, counted without reading anything on the host."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from nnlit.validation import check_int


def macro_f1(tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
    r"""The mean over classes of :math:`F1_c = 2\,tp_c / (2\,tp_c + fp_c + fn_c)`, leaving out the classes that are
    neither predicted nor a target (:math:`tp_c + fp_c + fn_c = 0`), as torchmetrics' ``MulticlassF1Score(average=
    "macro")`` and scikit-learn's ``f1_score(average="macro", labels=<the classes seen>)`` do.

    Example::

        >>> macro_f1(torch.tensor([1, 1, 0]), torch.tensor([0, 0, 1]), torch.tensor([0, 1, 0]))
        tensor(0.5556)
    """
    denominator = 2 * tp + fp + fn
    present = denominator > 0
    scores = torch.where(present, 2 * tp / denominator.clamp(min=1), torch.zeros_like(tp, dtype=torch.float32))
    return scores.sum() / present.sum().clamp(min=1)


class MacroF1(Metric):
    """The macro F1 of a multiclass classifier, whose ``update`` never makes the host wait for a GPU.

    torchmetrics' ``MulticlassF1Score`` counts the ``(target, prediction)`` pairs with ``torch.bincount``, which on CUDA
    first reads the pairs' smallest and largest values on the host: two waits for the device per update. Here the pairs
    are added into ``num_classes²`` bins with ``index_add_``, which gives the same counts with nothing read. The states
    are the true and false positives and negatives per class, summed across DDP ranks (``dist_reduce_fx="sum"``);
    :func:`macro_f1` computes the score from them. A label outside ``[0, num_classes)`` is not counted (its pair goes to
    a spare bin, dropped): an out-of-range index would stop a CUDA device with an assertion, and checking it would read
    it on the host.

    Args:
        num_classes: the number of classes.

    Example::

        >>> f1 = MacroF1(num_classes=3)
        >>> f1.update(torch.tensor([[2.0, 0.1, 0.0], [0.0, 1.0, 3.0], [0.0, 2.0, 1.0]]), torch.tensor([0, 1, 1]))
        >>> f1.tp.tolist(), f1.fp.tolist(), f1.fn.tolist()
        ([1, 1, 0], [0, 0, 1], [0, 1, 0])
        >>> round(f1.compute().item(), 4)  # class 2 has no support but is predicted: it counts, as in torchmetrics
        0.5556
    """

    full_state_update = False
    tp: Tensor
    fp: Tensor
    tn: Tensor
    fn: Tensor

    def __init__(self, num_classes: int) -> None:
        check_int("num_classes", num_classes, minimum=2)
        super().__init__()
        self.num_classes = num_classes
        for name in ("tp", "fp", "tn", "fn"):
            self.add_state(name, default=torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Adds a batch: ``preds`` are scores ``(rows, num_classes)`` (logits or probabilities) or labels ``(rows,)``,
        ``target`` the class labels ``(rows,)``."""
        if preds.ndim == target.ndim + 1:
            preds = preds.argmax(dim=1)
        k = self.num_classes
        target, preds = target.reshape(-1).long(), preds.reshape(-1).long()
        valid = (target >= 0) & (target < k) & (preds >= 0) & (preds < k)
        pairs = torch.where(valid, target * k + preds, k * k)  # the spare bin k²
        counts = torch.zeros(k * k + 1, dtype=torch.long, device=pairs.device)
        confusion = counts.index_add_(0, pairs, torch.ones_like(pairs))[: k * k].view(k, k)  # rows: targets
        tp = confusion.diagonal()
        fp = confusion.sum(0) - tp
        fn = confusion.sum(1) - tp
        self.tp += tp
        self.fp += fp
        self.fn += fn
        self.tn += valid.sum() - tp - fp - fn

    def compute(self) -> Tensor:
        return macro_f1(self.tp, self.fp, self.fn)
