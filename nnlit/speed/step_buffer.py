"""Metric updates batched over several steps: one ``update`` call per ``every`` steps instead of one per step."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection

from nnlit.validation import check_int


class StepBuffer:
    """Keeps what a stage's steps give its metrics, on the device, and hands it over every ``every`` steps.

    A torchmetrics ``update`` costs a fixed amount of Python per call, as much as the forward pass of a small MLP.
    Metrics here are epoch values, so the predictions of ``every`` steps can be concatenated and handed over in one
    call: the result is the same (each metric's state is a sum over rows), the per-step cost is a list append.
    :meth:`flush` before computing.

    Example::

        >>> from torchmetrics import MetricCollection, MeanSquaredError
        >>> from nnlit.models.weighted_mean import WeightedMean  # a mean weighted by rows
        >>> metrics, loss = MetricCollection({"mse": MeanSquaredError()}), WeightedMean()
        >>> buffer = StepBuffer(metrics, loss, every=2)
        >>> buffer.add(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 1.0]), torch.tensor(0.5), rows=2)
        >>> loss.update_count  # still pending
        0
        >>> buffer.add(torch.tensor([3.0]), torch.tensor([1.0]), torch.tensor(2.0), rows=1)
        >>> metrics.compute()["mse"], loss.compute()
        (tensor(1.6667), tensor(1.))
    """

    def __init__(self, metrics: MetricCollection, loss_metric: Metric, every: int = 32) -> None:
        check_int("every", every)
        self.metrics = metrics
        self.loss_metric = loss_metric
        self.every = every
        self._pending: list[tuple[Tensor, Tensor, Tensor, int]] = []

    def add(self, preds: Tensor, target: Tensor, loss: Tensor, rows: int) -> None:
        """Keeps one step's metric inputs and its mean loss over ``rows`` rows."""
        self._pending.append((preds.detach(), target.detach(), loss.detach(), rows))
        if len(self._pending) >= self.every:
            self.flush()

    def flush(self) -> None:
        """Updates the metrics and the loss with every pending step."""
        if not self._pending:
            return
        preds, target, losses, rows = zip(*self._pending)
        self._pending.clear()
        self.metrics.update(torch.cat(preds), torch.cat(target))
        # the row counts as a fill of the device tensor, not `torch.tensor(rows, device=…)`: on a GPU that would be a
        # copy from the host, which waits for the device, every `every` steps
        weights = losses[0].new_full((len(rows),), rows[0], dtype=torch.float32)
        for i, count in enumerate(rows):
            if count != rows[0]:  # an epoch's last, smaller batch
                weights[i].fill_(count)
        self.loss_metric.update(torch.stack(losses), weights)

    def clear(self) -> None:
        """Drops the pending steps (at the start of an epoch, after an interrupted one)."""
        self._pending.clear()

    def untouched(self) -> bool:
        """Whether nothing was added since the metrics and the loss were last reset (or built): no pending step, no
        update. Resetting them again would change nothing.

        Example::

            >>> from torchmetrics import MetricCollection, MeanSquaredError
            >>> from nnlit.models.weighted_mean import WeightedMean
            >>> buffer = StepBuffer(MetricCollection({"mse": MeanSquaredError()}), WeightedMean(), every=2)
            >>> buffer.untouched()
            True
            >>> buffer.add(torch.tensor([1.0]), torch.tensor([1.0]), torch.tensor(0.5), rows=1)
            >>> buffer.untouched()
            False
        """
        if self._pending or self.loss_metric.update_count:
            return False
        return not any(metric.update_count for metric in self.metrics.values(copy_state=False))
