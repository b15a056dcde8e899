"""Reading the CSV and Parquet files fraud teams export, and fingerprinting them for lineage.

A fraud team's data arrives as exports of very different quality, so reading a file either
returns a non-empty frame or raises one :class:`~stillroom.errors.DataError` naming the file
and what is wrong with it. A folder (or a list of files and folders) stands for every data
file in it: daily exports and partitioned Parquet directories are the common case.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from stillroom.contract import DataError

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
DATA_SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES

PathLike = str | Path
Paths = PathLike | Sequence[PathLike]


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a .csv, .csv.gz or .parquet file; any reading problem becomes one DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty (0 bytes)")
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        reader = pd.read_csv
    elif name.endswith(PARQUET_SUFFIXES):
        reader = pd.read_parquet
    else:
        raise DataError(f"{path}: unknown file extension; expected one of {', '.join(DATA_SUFFIXES)}")
    try:
        frame = reader(path)
    except (ValueError, OSError, EOFError, ImportError) as exc:  # pandas/pyarrow parse errors are ValueError/OSError
        raise DataError(f"{path}: cannot be read as {name.rsplit('.', 1)[-1]} ({type(exc).__name__}: {exc})") from exc
    if len(frame) == 0:
        raise DataError(f"{path}: file has no data rows (columns: {list(frame.columns)[:10]})")
    return frame


def data_files(paths: Paths) -> list[Path]:
    """The files a path stands for: a file itself, every data file under a folder (sorted by
    path; hidden and ``_``-prefixed files such as ``_SUCCESS`` skipped), or each of a list."""
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    if not items:
        raise DataError("no input files given")
    files: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(
                p
                for p in item.rglob("*")
                if p.is_file() and p.name.lower().endswith(DATA_SUFFIXES) and not p.name.startswith((".", "_"))
            )
            if not found:
                raise DataError(f"{item}: folder holds no {', '.join(DATA_SUFFIXES)} file")
            files += found
        else:
            files.append(item)
    return files


def source_uri(paths: Paths) -> str:
    """An MLflow-resolvable source for lineage: the file or folder as a ``file://`` URI (a list
    of several: the folder they share)."""
    items = [str(Path(p).resolve()) for p in ([paths] if isinstance(paths, str | Path) else paths)]
    return Path(os.path.commonpath(items)).as_uri()


def file_details(path: Path) -> dict[str, Any]:
    """Lineage of a file: its name and content hash (the hash pins the exact export)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"file": str(path), "file_sha256": digest.hexdigest()}
