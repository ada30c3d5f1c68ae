"""The LightningModules: binary, multiclass and regression heads over an MLP."""

from nnlit.models.base import MLPModule
from nnlit.models.binary import BinaryMLP
from nnlit.models.multiclass import MulticlassMLP
from nnlit.models.regression import RegressionMLP

__all__ = ["BinaryMLP", "MLPModule", "MulticlassMLP", "RegressionMLP"]
