"""Callbacks that work on any LightningModule (they depend on torch and lightning only)."""

from nnlit.callbacks.prediction_writer import CSVPredictionWriter

__all__ = ["CSVPredictionWriter"]
