"""Molecule files a scoring job reads: ``.smi`` (one SMILES per line, optionally a name) and
SDF (``.sdf``, ``.sd``, gzipped or not: one record per molecule, its title the name).

Registered through ``stillroom_input_formats``: the core reads CSV and Parquet, and a SMILES
library is the molecules vertical's format, so it is parsed here. Every line is a record, even
an unparsable SMILES or a broken SDF record, so the model can flag it (``smiles_valid = false``,
with its reason) and the job goes on.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from rdkit import Chem

from stillroom.contract import DataError, InputFormat, ModelInputs

NAME_COLUMN = "name"
RECORD_COLUMN = "record"  # 1-based position of an SDF record in its file
SMI_SUFFIXES = (".smi", ".smi.gz", ".smiles", ".smiles.gz")
SDF_SUFFIXES = (".sdf", ".sdf.gz", ".sd", ".sd.gz")
SDF_END = "$$$$"


def read_smi(path: Path, model: ModelInputs, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """A ``.smi`` file (``SMILES [name]``, whitespace separated) for a model whose only input is one
    text column: the first field becomes that column, the rest of the line the ``name`` column
    (written beside the scores). A header line naming the input column is skipped; ``#`` lines
    are comments."""
    column = _single_text_input(path, model, "a .smi file")
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


def read_sdf(path: Path, model: ModelInputs, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """An SDF file, record by record (streamed: a library of millions is never held whole): each
    record's molecule becomes the model's SMILES input, its position the ``record`` column and
    its title the ``name`` column. A record RDKit cannot read becomes a row all the same: one
    whose molecule cannot be sanitised (a valence, an aromaticity that cannot be kekulised)
    gets its unsanitised SMILES (the model flags it ``sanitize``), one that does not parse at
    all a text that is no SMILES (flagged ``parse``); the job goes on."""
    column = _single_text_input(path, model, "an SDF file")
    rows: list[tuple[str, int, str]] = []
    with _open_text(path) as stream:
        for number, block in enumerate(_records(stream), start=1):
            rows.append((_record_smiles(block, number), number, block.split("\n", 1)[0].strip()))
            if len(rows) == chunk_rows:
                yield pd.DataFrame(rows, columns=[column, RECORD_COLUMN, NAME_COLUMN])
                rows = []
    if rows:
        yield pd.DataFrame(rows, columns=[column, RECORD_COLUMN, NAME_COLUMN])


def _records(stream: io.TextIOBase) -> Iterator[str]:
    """The text of each record (up to its ``$$$$`` line); a last record without one counts too."""
    lines: list[str] = []
    for line in stream:
        if line.rstrip() == SDF_END:
            yield "".join(lines)
            lines = []
        else:
            lines.append(line)
    if "".join(lines).strip():
        yield "".join(lines)


def _record_smiles(block: str, number: int) -> str:
    """The record's molecule as SMILES; see :func:`read_sdf` for a broken record."""
    mol = Chem.MolFromMolBlock(block, sanitize=False, removeHs=False)
    if mol is None:
        return f"<SDF record {number} unreadable>"  # '<' is no SMILES: the model says 'parse'
    try:
        Chem.SanitizeMol(mol)
        mol = Chem.RemoveHs(mol)
    except Exception:  # RDKit raises a family of valence/kekulisation errors
        try:
            return Chem.MolToSmiles(mol, canonical=False)
        except Exception:
            return f"<SDF record {number} unreadable>"
    return Chem.MolToSmiles(mol)


def _single_text_input(path: Path, model: ModelInputs, what: str) -> str:
    """The model's one text input (the SMILES a molecule file is read into)."""
    inputs = model.columns
    text_inputs = [c.name for c in inputs if c.dtype == "string"]
    if len(inputs) != 1 or len(text_inputs) != 1:
        raise DataError(f"{path}: {what} needs a model with exactly one text input (this one takes {len(inputs)} columns)")
    return text_inputs[0]


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

SDF = InputFormat(
    name="molecules.sdf",
    suffixes=SDF_SUFFIXES,
    read=read_sdf,
    description="SDF file: one record per molecule (the record and name columns; a broken record is flagged)",
)
