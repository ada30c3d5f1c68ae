"""nnlit's version, the one place it is written (pyproject.toml reads it from here; checkpoints record it)."""

__version__ = "0.1.0"
