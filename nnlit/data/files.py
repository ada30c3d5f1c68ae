"""Reading CSV and Parquet files into a table (needs the ``files`` extra: pandas, pyarrow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SUFFIXES = (".csv", ".parquet", ".pq")


def read_table(path: str | Path) -> Any:
    """Reads a ``.csv`` or ``.parquet`` file into a ``pandas.DataFrame``.

    Raises:
        FileNotFoundError: naming the path, if it does not exist.
        ValueError: for another suffix, listing the accepted ones.
        ImportError: naming the extra to install, when pandas (or pyarrow for Parquet) is missing.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"Cannot read {str(path)!r}: the suffix must be one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise FileNotFoundError(f"Data file not found: {str(path)!r}")
    try:
        import pandas as pd
    except ImportError as err:
        raise ImportError(f"Reading {str(path)!r} needs pandas: pip install 'nnlit[files]'") from err
    if suffix == ".csv":
        return pd.read_csv(path)
    try:
        return pd.read_parquet(path)
    except ImportError as err:
        raise ImportError(f"Reading {str(path)!r} needs pyarrow: pip install 'nnlit[files]'") from err
