"""Regression: any number of outputs, MSE / MAE / Huber loss."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score

from nnlit.models.base import MLPModule

LOSSES = ("huber", "mae", "mse")


class RegressionMLP(MLPModule):
    """An MLP with ``out_features`` real outputs.

    Metrics: mean squared error, mean absolute error and R² averaged over outputs (``<stage>/mse``, ``<stage>/mae``,
    ``<stage>/r2``). ``predict`` returns ``{"prediction": (rows, out_features)}``.

    Given the training targets' ``target_mean`` and ``target_std`` (the nnlit CLI links them from the data module),
    the network learns standardised targets and ``forward`` maps its output back: ``network(x) * std + mean``. A
    target in the hundreds then needs no thousands of steps just to reach its mean. Predictions and metrics are in the
    target's own units; the loss is computed on the standardised scale (so ``huber_delta`` is in standard
    deviations).

    Args:
        in_features: number of input features.
        out_features: number of targets.
        loss: ``mse``, ``mae`` or ``huber``.
        huber_delta: the point where the Huber loss turns from quadratic to linear.
        target_mean: mean of each target on the training rows; default 0.
        target_std: standard deviation of each target on the training rows; default 1.
        **kwargs: the arguments of :class:`~nnlit.models.base.MLPModule`: the optimizer, the scheduler, ``pretrained``
            and the network's options (``hidden``, ``activation``, …: :class:`~nnlit.nn.options.MLPOptions`).

    Example::

        >>> model = RegressionMLP(in_features=3, out_features=2, loss="huber")
        >>> model.predict_step(torch.zeros(5, 3), 0)["prediction"].shape
        torch.Size([5, 2])
    """

    progress_bar_metric = "r2"
    target_mean: Tensor
    target_std: Tensor

    def __init__(
        self,
        in_features: int,
        out_features: int = 1,
        loss: str = "mse",
        huber_delta: float = 1.0,
        target_mean: list[float] | None = None,
        target_std: list[float] | None = None,
        **kwargs: Any,
    ) -> None:
        if loss not in LOSSES:
            raise ValueError(f"Unknown loss {loss!r}. Valid losses: {', '.join(LOSSES)}")
        if huber_delta <= 0:
            raise ValueError(f"`huber_delta` must be > 0, got {huber_delta!r}")
        for name, values in (("target_mean", target_mean), ("target_std", target_std)):
            if values is not None and len(values) != out_features:
                raise ValueError(f"`{name}` needs {out_features} values (one per output), got {len(values)}")
        if target_std is not None and any(v <= 0 for v in target_std):
            raise ValueError(f"`target_std` must be > 0, got {target_std}")
        super().__init__(in_features=in_features, out_features=out_features, **kwargs)
        self.loss = loss
        self.huber_delta = huber_delta
        self.register_buffer("target_mean", torch.tensor(target_mean or [0.0] * out_features))
        self.register_buffer("target_std", torch.tensor(target_std or [1.0] * out_features))

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x) * self.target_std + self.target_mean

    def build_metrics(self) -> MetricCollection:
        return MetricCollection(
            {
                "mse": MeanSquaredError(num_outputs=self.out_features),
                "mae": MeanAbsoluteError(num_outputs=self.out_features),
                "r2": R2Score(multioutput="uniform_average"),
            }
        )

    def compute_loss(self, outputs: Tensor, target: Tensor) -> Tensor:
        target = self._as_outputs(outputs, target)
        outputs = (outputs - self.target_mean) / self.target_std
        target = (target - self.target_mean) / self.target_std
        if self.loss == "mse":
            return F.mse_loss(outputs, target)
        if self.loss == "mae":
            return F.l1_loss(outputs, target)
        return F.huber_loss(outputs, target, delta=self.huber_delta)

    def metric_inputs(self, outputs: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        outputs = outputs.detach()
        target = self._as_outputs(outputs, target)
        if self.out_features == 1:
            return outputs.view(-1), target.view(-1)
        return outputs, target

    def predict_outputs(self, outputs: Tensor) -> dict[str, Tensor]:
        return {"prediction": outputs}

    def check_data(self, datamodule: Any) -> None:
        super().check_data(datamodule)
        if getattr(datamodule, "num_classes", None) is not None:
            raise ValueError(
                "RegressionMLP needs a regression data set but the data module poses classification: "
                "set `task: regression` in the data module, or use BinaryMLP / MulticlassMLP"
            )
        num_targets = getattr(datamodule, "num_targets", None)
        if num_targets is not None and num_targets != self.out_features:
            raise ValueError(f"The data has {num_targets} targets but the model has out_features={self.out_features}")

    def _as_outputs(self, outputs: Tensor, target: Tensor) -> Tensor:
        if target.shape != outputs.shape:
            if target.numel() != outputs.numel():
                raise ValueError(
                    f"Targets of shape {tuple(target.shape)} do not fit outputs of shape {tuple(outputs.shape)} "
                    f"(out_features={self.out_features})"
                )
            target = target.reshape(outputs.shape)
        return target.to(outputs.dtype)
