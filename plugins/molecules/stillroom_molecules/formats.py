"""Molecule files a scoring job reads: ``.smi`` (one SMILES per line, optionally a name).

Registered through ``stillroom_input_formats``: the core reads CSV and Parquet, and a SMILES
library is the molecules vertical's format, so it is parsed here. Every line is a record, even
an unparsable SMILES, so the model can flag it (``smiles_valid = false``) and the job goes on.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from stillroom.contract import DataError, InputFormat, ModelInputs

NAME_COLUMN = "name"
SMI_SUFFIXES = (".smi", ".smi.gz", ".smiles", ".smiles.gz")


def read_smi(path: Path, model: ModelInputs, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """A ``.smi`` file (``SMILES [name]``, whitespace separated) for a model whose only input is one
    text column: the first field becomes that column, the rest of the line the ``name`` column
    (written beside the scores). A header line naming the input column is skipped; ``#`` lines
    are comments."""
    inputs = model.columns
    text_inputs = [c.name for c in inputs if c.dtype == "string"]
    if len(inputs) != 1 or len(text_inputs) != 1:
        raise DataError(f"{path}: a .smi file needs a model with exactly one text input (this one takes {len(inputs)} columns)")
    column = text_inputs[0]
    with _open_text(path) as stream:
        first, rows = True, []
        for line in stream:
            parts = line.strip().split(maxsplit=1)
            if not parts or parts[0].startswith("#"):
                continue
            if first and parts[0].lower() == column.lower():
                first = False
                continue
            first = False
            rows.append((parts[0], parts[1] if len(parts) > 1 else ""))
            if len(rows) == chunk_rows:
                yield pd.DataFrame(rows, columns=[column, NAME_COLUMN])
                rows = []
        if rows:
            yield pd.DataFrame(rows, columns=[column, NAME_COLUMN])


def _open_text(path: Path) -> io.TextIOBase:
    """The file as text, gunzipped when its name ends in ``.gz``; undecodable bytes replaced (a
    broken line becomes an unparsable SMILES, flagged, not a crash)."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")  # type: ignore[return-value]
    return open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed by the caller's with


SMI = InputFormat(
    name="molecules.smi",
    suffixes=SMI_SUFFIXES,
    read=read_smi,
    description="SMILES file: one molecule per line, SMILES then an optional name (the name column)",
)
