"""Multiclass classification: K logits, ``CrossEntropyLoss``."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from nnlit.models.base import MLPModule
from nnlit.models.macro_f1 import MacroF1
from nnlit.validation import check_int


class MulticlassMLP(MLPModule):
    """An MLP with ``num_classes`` logits, trained with ``CrossEntropyLoss``; softmax is applied only to report.

    Targets are class indices ``(rows,)`` or one-hot / probability rows ``(rows, num_classes)``. Metrics: accuracy and
    macro-averaged F1 (``<stage>/acc``, ``<stage>/f1``). ``predict`` returns the class probabilities and the label.

    Args:
        in_features: number of input features.
        num_classes: number of classes, at least 2.
        class_weights: per-class weights of the loss, one per class.
        label_smoothing: cross-entropy label smoothing in ``[0, 1)``.
        **kwargs: the arguments of :class:`~nnlit.models.base.MLPModule`: the optimizer, the scheduler, ``pretrained``
            and the network's options (``hidden``, ``activation``, …: :class:`~nnlit.nn.options.MLPOptions`).

    Example::

        >>> model = MulticlassMLP(in_features=4, num_classes=3, hidden=[16])
        >>> out = model.predict_step(torch.zeros(2, 4), 0)
        >>> out["probabilities"].shape, out["probabilities"].sum(dim=1).allclose(torch.ones(2))
        (torch.Size([2, 3]), True)
    """

    progress_bar_metric = "acc"
    class_weights: Tensor | None

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        class_weights: list[float] | None = None,
        label_smoothing: float = 0.0,
        **kwargs: Any,
    ) -> None:
        regression = (
            " (the data module sees a regression target: set its `task: classification` if the target holds class "
            "labels, e.g. 0.0 / 1.0 / 2.0 read as floats; use RegressionMLP for a continuous target)"
        )
        check_int("num_classes", num_classes, minimum=2, hint=regression if num_classes is None else "")
        if class_weights is not None and len(class_weights) != num_classes:
            raise ValueError(f"`class_weights` needs {num_classes} values (one per class), got {len(class_weights)}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"`label_smoothing` must be in [0, 1), got {label_smoothing!r}")
        super().__init__(in_features=in_features, out_features=num_classes, **kwargs)
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", weights)

    def build_metrics(self) -> MetricCollection:
        return MetricCollection(
            {
                "acc": MulticlassAccuracy(num_classes=self.num_classes, average="micro", validate_args=False),
                "f1": MacroF1(num_classes=self.num_classes),  # torchmetrics' F1, no host read per update
            }
        )

    def compute_loss(self, outputs: Tensor, target: Tensor) -> Tensor:
        if target.is_floating_point():  # probability / one-hot rows
            target = target.to(outputs.dtype)
        return F.cross_entropy(outputs, target, weight=self.class_weights, label_smoothing=self.label_smoothing)

    def metric_inputs(self, outputs: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        labels = target.argmax(dim=1) if target.ndim == 2 else target
        return outputs.detach(), labels

    def predict_outputs(self, outputs: Tensor) -> dict[str, Tensor]:
        probabilities = torch.softmax(outputs, dim=1)
        return {"probabilities": probabilities, "label": probabilities.argmax(dim=1)}

    def check_targets(self, target: Tensor) -> None:
        if target.ndim == 2:
            if target.shape[1] != self.num_classes:
                raise ValueError(
                    f"Probability / one-hot targets need {self.num_classes} columns, got shape {tuple(target.shape)}"
                )
            return
        if target.is_floating_point():
            raise ValueError(f"Class-index targets must be integers, got dtype {target.dtype}")
        bad = target[(target < 0) | (target >= self.num_classes)]
        if bad.numel():
            raise ValueError(
                f"Class labels must be in [0, {self.num_classes}) for num_classes={self.num_classes}, "
                f"got {bad[:5].tolist()} in the first batch"
            )

    def check_data(self, datamodule: Any) -> None:
        super().check_data(datamodule)
        num_classes = getattr(datamodule, "num_classes", None)
        if num_classes is not None and num_classes != self.num_classes:
            raise ValueError(
                f"The data has {num_classes} classes but the model was built with num_classes={self.num_classes}"
            )
