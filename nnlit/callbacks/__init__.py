"""Callbacks that work on any LightningModule (they depend on torch and lightning only)."""

from nnlit.callbacks.dead_relu import DeadReLUCounter
from nnlit.callbacks.gradient_saturation import GradientSaturationMonitor
from nnlit.callbacks.prediction_writer import CSVPredictionWriter

__all__ = ["CSVPredictionWriter", "DeadReLUCounter", "GradientSaturationMonitor"]
