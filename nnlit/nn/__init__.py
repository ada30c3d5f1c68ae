"""Building blocks in plain PyTorch: the MLP builder, the activation registry, Maxout."""

from nnlit.nn.activations import ACTIVATIONS, get_activation
from nnlit.nn.maxout import Maxout
from nnlit.nn.mlp import MLP

__all__ = ["ACTIVATIONS", "MLP", "Maxout", "get_activation"]
