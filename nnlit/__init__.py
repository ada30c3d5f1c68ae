"""nnlit: multilayer perceptrons on PyTorch Lightning, and the diagnostics that teach and debug them."""

from nnlit.checkpoint import load
from nnlit.data.fitted_preprocessing import FittedPreprocessing
from nnlit.data.table import Table
from nnlit.data.tabular import TabularDataModule
from nnlit.doctor import diagnose
from nnlit.models.base import MLPModule
from nnlit.models.binary import BinaryMLP
from nnlit.models.multiclass import MulticlassMLP
from nnlit.models.regression import RegressionMLP
from nnlit.nn.maxout import Maxout
from nnlit.nn.mlp import MLP
from nnlit.predictor import Predictor
from nnlit.quiet import hide_lightning_noise
from nnlit.speed.precision import StepHooksPrecision
from nnlit.speed.profiler import NullProfiler

__version__ = "0.1.0"

hide_lightning_noise()  # Lightning's product tips and deprecations inside it, in a user's own Trainer calls too

__all__ = [
    "MLP",
    "BinaryMLP",
    "FittedPreprocessing",
    "MLPModule",
    "Maxout",
    "MulticlassMLP",
    "NullProfiler",
    "Predictor",
    "RegressionMLP",
    "StepHooksPrecision",
    "Table",
    "TabularDataModule",
    "__version__",
    "diagnose",
    "load",
]
