"""nnlit: multilayer perceptrons on PyTorch Lightning, and the diagnostics that teach and debug them."""

from typing import Any

from nnlit.checkpoint import load
from nnlit.data.fitted_preprocessing import FittedPreprocessing
from nnlit.data.table import Table
from nnlit.data.tabular import TabularDataModule
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
from nnlit.version import __version__

hide_lightning_noise()  # Lightning's product tips and deprecations inside it, in a user's own Trainer calls too


def __getattr__(name: str) -> Any:
    """``nnlit.diagnose``, imported when first asked for: the doctor is not loaded by every ``import nnlit``."""
    if name == "diagnose":
        from nnlit.doctor import diagnose

        return diagnose
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
