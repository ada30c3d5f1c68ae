"""Binary classification: one logit, ``BCEWithLogitsLoss``."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC, BinaryF1Score

from nnlit.models.base import MLPModule


class BinaryMLP(MLPModule):
    """An MLP with one output logit, trained with ``BCEWithLogitsLoss``; the sigmoid is applied only to report.

    Metrics: accuracy, F1 and AUROC (``<stage>/acc``, ``<stage>/f1``, ``<stage>/auroc``). ``predict`` returns the
    probability of class 1 and the label ``probability >= threshold``. Targets are 0 / 1 (integers, floats or bools).

    Args:
        in_features: number of input features.
        num_classes: must be 2; it is here so the CLI can link the data's class count and catch a mismatch.
        pos_weight: weight of the positive class in the loss (e.g. ``negatives / positives`` for imbalanced data).
        threshold: probability at or above which a row is labelled 1.
        **kwargs: the arguments of :class:`~nnlit.models.base.MLPModule`: the optimizer, the scheduler, ``pretrained``
            and the network's options (``hidden``, ``activation``, …: :class:`~nnlit.nn.options.MLPOptions`).

    Example::

        >>> model = BinaryMLP(in_features=2, hidden=[8])
        >>> model.predict_step(torch.zeros(3, 2), 0)["label"].shape
        torch.Size([3])
    """

    progress_bar_metric = "acc"
    pos_weight: Tensor | None

    def __init__(
        self,
        in_features: int,
        num_classes: int = 2,
        pos_weight: float | None = None,
        threshold: float = 0.5,
        **kwargs: Any,
    ) -> None:
        if num_classes is None:
            raise ValueError(
                "BinaryMLP needs exactly 2 classes, got num_classes=None: the data module sees a regression target. "
                "Set its `task: classification` if the target holds class labels (0.0 / 1.0 read as floats), or use "
                "RegressionMLP for a continuous target"
            )
        if num_classes != 2:
            raise ValueError(
                f"BinaryMLP needs exactly 2 classes, got num_classes={num_classes!r}: use MulticlassMLP for more"
            )
        if pos_weight is not None and pos_weight <= 0:
            raise ValueError(f"`pos_weight` must be > 0, got {pos_weight!r}")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"`threshold` must be in (0, 1), got {threshold!r}")
        super().__init__(in_features=in_features, out_features=1, **kwargs)
        self.num_classes = num_classes
        self.threshold = threshold
        self.register_buffer("pos_weight", None if pos_weight is None else torch.tensor([float(pos_weight)]))

    def build_metrics(self) -> MetricCollection:
        return MetricCollection(
            {
                "acc": BinaryAccuracy(threshold=self.threshold, validate_args=False),
                "f1": BinaryF1Score(threshold=self.threshold, validate_args=False),
                "auroc": BinaryAUROC(validate_args=False),
            }
        )

    def compute_loss(self, outputs: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(
            outputs.view(-1), target.view(-1).to(outputs.dtype), pos_weight=self.pos_weight
        )

    def metric_inputs(self, outputs: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        return torch.sigmoid(outputs.detach().view(-1)), target.view(-1).long()

    def predict_outputs(self, outputs: Tensor) -> dict[str, Tensor]:
        probability = torch.sigmoid(outputs.view(-1))
        return {"probability": probability, "label": (probability >= self.threshold).long()}

    def check_targets(self, target: Tensor) -> None:
        if target.numel() and not torch.isin(target.float(), torch.tensor([0.0, 1.0], device=target.device)).all():
            bad = target[~torch.isin(target.float(), torch.tensor([0.0, 1.0], device=target.device))]
            raise ValueError(f"BinaryMLP targets must be 0 or 1, got {bad[:5].tolist()} in the first batch")

    def check_data(self, datamodule: Any) -> None:
        super().check_data(datamodule)
        num_classes = getattr(datamodule, "num_classes", None)
        if num_classes is not None and num_classes != 2:
            raise ValueError(f"BinaryMLP needs 2 classes but the data has {num_classes}: use MulticlassMLP")
