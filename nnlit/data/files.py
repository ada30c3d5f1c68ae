"""Reading CSV and Parquet files into a table (needs the ``files`` extra: pandas, pyarrow)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

SUFFIXES = (".csv", ".parquet", ".pq")


def read_table(path: str | Path) -> Any:
    """Reads a ``.csv`` (UTF-8) or ``.parquet`` file into a ``pandas.DataFrame``.

    Raises:
        FileNotFoundError: naming the path, if it does not exist.
        ValueError: naming the path, for a folder, another suffix (listing the accepted ones), a file that is empty,
            has no rows, is not UTF-8 text or not valid CSV, or repeats a column name.
        ImportError: naming the extra to install, when pandas (or pyarrow for Parquet) is missing.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder: give a data file ({', '.join(SUFFIXES)})")
    if suffix not in SUFFIXES:
        raise ValueError(f"Cannot read {str(path)!r}: the suffix must be one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise FileNotFoundError(f"Data file not found: {str(path)!r}")
    try:
        import pandas as pd
    except ImportError as err:
        raise ImportError(f"Reading {str(path)!r} needs pandas: pip install 'nnlit[files]'") from err
    if suffix == ".csv":
        frame = _read_csv(path, pd)
    else:
        try:
            frame = pd.read_parquet(path)
        except ImportError as err:
            raise ImportError(f"Reading {str(path)!r} needs pyarrow: pip install 'nnlit[files]'") from err
    if len(frame) == 0:
        raise ValueError(f"{str(path)!r} has no rows (only the columns {', '.join(map(str, frame.columns))})")
    return frame


def _read_csv(path: Path, pd: Any) -> Any:
    try:
        with path.open(newline="", encoding="utf-8") as file:
            header = next(csv.reader(file), None)
        if header is None:
            raise ValueError(f"{str(path)!r} is empty: a CSV file needs a header row of column names, then rows")
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise ValueError(f"{str(path)!r} names columns {repeated} more than once: give each column its own name")
        return pd.read_csv(path, encoding="utf-8")
    except UnicodeDecodeError as err:
        byte = err.object[err.start : err.start + 1]
        raise ValueError(
            f"{str(path)!r} is not UTF-8 text (byte {byte!r} at position {err.start}): save it as UTF-8"
        ) from err
    except (pd.errors.ParserError, csv.Error) as err:
        raise ValueError(f"{str(path)!r} is not valid CSV: {str(err).strip()}") from err


def check_flat(frame: Any, columns: list[str], path: str | Path) -> None:
    """One number, text or gap per cell of ``columns``: a (Parquet) list or struct column is named.

    Raises:
        ValueError: naming the column, the file and what it holds.
    """
    for name in columns:
        column = frame[name]
        if column.dtype != object:
            continue
        values = column.dropna()
        first = values.iloc[0] if len(values) else None
        if isinstance(first, (list, tuple, dict)) or getattr(first, "ndim", 0) > 0:
            raise ValueError(
                f"Column {name!r} of {str(path)!r} holds nested values ({type(first).__name__}s, e.g. {first!r}): "
                "each cell must be one number, text or gap: flatten it, or leave it out of `features`"
            )
