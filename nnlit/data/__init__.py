"""Data modules for in-memory tabular data, batched by slicing tensors."""

from nnlit.data.fitted_preprocessing import FittedPreprocessing
from nnlit.data.loader import ShardedIndexSampler, TensorBatchLoader
from nnlit.data.synthetic import SYNTHETIC
from nnlit.data.table import Table
from nnlit.data.tabular import TabularDataModule

__all__ = ["SYNTHETIC", "FittedPreprocessing", "ShardedIndexSampler", "Table", "TabularDataModule", "TensorBatchLoader"]
