"""Callbacks that work on any LightningModule (they depend on torch and lightning only)."""

from nnlit.callbacks.dead_relu import DeadReLUCounter
from nnlit.callbacks.fit_report import FitReport
from nnlit.callbacks.freeze_layers import FreezeLayers
from nnlit.callbacks.gradient_saturation import GradientSaturationMonitor
from nnlit.callbacks.last_checkpoint import LastCheckpoint
from nnlit.callbacks.non_finite_loss import NonFiniteLossError, StopOnNonFiniteLoss
from nnlit.callbacks.prediction_writer import CSVPredictionWriter
from nnlit.callbacks.progress_bar import TimedProgressBar
from nnlit.callbacks.requeue import SLURMRequeue
from nnlit.callbacks.save_plots import SavePlots
from nnlit.callbacks.threads import Threads
from nnlit.callbacks.weight_init import ConstantInit, NegativeInit, UniformInit, WeightInit

__all__ = [
    "CSVPredictionWriter",
    "ConstantInit",
    "DeadReLUCounter",
    "FitReport",
    "FreezeLayers",
    "GradientSaturationMonitor",
    "LastCheckpoint",
    "NegativeInit",
    "NonFiniteLossError",
    "SLURMRequeue",
    "SavePlots",
    "StopOnNonFiniteLoss",
    "Threads",
    "TimedProgressBar",
    "UniformInit",
    "WeightInit",
]
