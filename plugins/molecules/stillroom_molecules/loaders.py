"""Molecule files -> one standardised table: a ``smiles`` column and 1..k target columns.

Formats: CSV / TSV (optionally gzipped), Parquet, SDF (optionally gzipped; targets are SD
properties) and SMILES files (``.smi``: SMILES, optional name, whitespace separated). Every
SMILES is standardised (:mod:`stillroom_molecules.chem`); invalid ones are counted, reported
in the table's ``report`` and left out, never a crash. What a user gets wrong about the file
itself (missing, empty, no SMILES column, a target column holding text, every SMILES
invalid) is one :class:`~stillroom.errors.DataError` naming the file and the problem.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rdkit import Chem

from stillroom.contract import OUTPUT_TYPES, TASK_TYPES, DataError

from .chem import standardise

SMILES = "smiles"  # the model input column of every molecules bundle
SMILES_CANDIDATES = ("smiles", "canonical_smiles", "smi", "mol_smiles", "structure")


@dataclass
class MoleculeTable:
    """Standardised molecules with their targets, and what was dropped on the way."""

    frame: pd.DataFrame  # columns: smiles, *targets
    targets: list[str]
    task_type: str | None
    source: str
    report: dict[str, Any] = field(default_factory=dict)
    output_types: list[str] | None = None  # mixed: regression | binary per target


def read_raw(path: str | Path) -> pd.DataFrame:
    """The file as a frame of text/number columns (SDF: SMILES + SD properties)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"molecule file {p} does not exist")
    if p.stat().st_size == 0:
        raise DataError(f"molecule file {p} is empty")
    name = p.name.lower().removesuffix(".gz")
    try:
        if name.endswith(".parquet") or name.endswith(".pq"):
            frame = pd.read_parquet(p)
        elif name.endswith(".sdf") or name.endswith(".sd"):
            frame = _read_sdf(p)
        elif name.endswith((".smi", ".smiles", ".ism", ".txt")):
            frame = _read_smi(p)
        elif name.endswith(".tsv"):
            frame = pd.read_csv(p, sep="\t")
        elif name.endswith(".csv"):
            frame = pd.read_csv(p)
        else:
            raise DataError(f"molecule file {p}: unknown file type (use .csv, .tsv, .parquet, .sdf or .smi, optionally .gz)")
    except DataError:
        raise
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataError(f"molecule file {p} is not readable: {type(exc).__name__}: {str(exc).strip()[:200]}") from None
    if frame.empty:
        raise DataError(f"molecule file {p} holds no rows")
    return frame


def _open_text(p: Path) -> Any:
    return gzip.open(p, "rb") if p.name.lower().endswith(".gz") else open(p, "rb")


def _read_sdf(p: Path) -> pd.DataFrame:
    """One row per record: SMILES written from the record's molecule (``None`` if it does not
    parse) and every SD property as a column."""
    rows: list[dict[str, Any]] = []
    with _open_text(p) as fh:
        for mol in Chem.ForwardSDMolSupplier(fh, sanitize=True, removeHs=True):
            if mol is None:
                rows.append({SMILES: None})
                continue
            props = mol.GetPropsAsDict(includePrivate=False, includeComputed=False)
            props.pop(SMILES, None)  # the structure is the truth; a SMILES property may be stale or malformed
            rows.append({SMILES: Chem.MolToSmiles(mol), **props})
    if not rows:
        raise DataError(f"molecule file {p} holds no SDF records")
    return pd.DataFrame(rows)


def _read_smi(p: Path) -> pd.DataFrame:
    """SMILES [whitespace name]; a first line that is a header (``smiles name``) is skipped."""
    with _open_text(p) as fh:
        lines = [line.decode("utf-8", errors="replace").strip() for line in fh]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines:
        raise DataError(f"molecule file {p} holds no SMILES lines")
    first = lines[0].split()[0]
    if first.lower() in SMILES_CANDIDATES:
        lines = lines[1:]
    parts = [line.split(maxsplit=1) for line in lines]
    return pd.DataFrame({SMILES: [x[0] for x in parts], "name": [x[1] if len(x) > 1 else "" for x in parts]})


def find_smiles_column(frame: pd.DataFrame, requested: str | None, where: str) -> str:
    """The SMILES column: the requested one, else the first conventional name, in any case (a
    scoring job looks the same way: :func:`~.student.smiles_aliases`)."""
    lowered = {str(c).lower(): c for c in reversed(list(frame.columns))}
    if requested:
        if requested in frame.columns:
            return requested
        if requested.lower() not in lowered:
            raise DataError(f"{where}: no SMILES column {requested!r} (columns: {list(frame.columns)[:20]})")
        return lowered[requested.lower()]
    for candidate in SMILES_CANDIDATES:
        if candidate in lowered:
            return lowered[candidate]
    raise DataError(
        f"{where}: no SMILES column (looked for {', '.join(SMILES_CANDIDATES)}; columns: {list(frame.columns)[:20]}); "
        "name it with data.smiles_column"
    )


def numeric_targets(frame: pd.DataFrame, targets: list[str], where: str) -> pd.DataFrame:
    """Target columns as floats (NaN = missing label); a column holding text is an error."""
    missing = [t for t in targets if t not in frame.columns]
    if missing:
        raise DataError(f"{where}: missing target column(s) {missing} (columns: {list(frame.columns)[:20]})")
    out = {}
    for t in targets:
        raw = frame[t]
        values = pd.to_numeric(raw, errors="coerce")
        text = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
        if text.any():
            row = int(np.flatnonzero(text.to_numpy())[0])
            raise DataError(f"{where}: target column {t!r} holds text, e.g. {str(raw.iloc[row])[:40]!r} at row {row}")
        values = values.astype(float)
        if not np.isfinite(values.fillna(0.0)).all():
            raise DataError(f"{where}: target column {t!r} holds infinite values")
        if values.notna().sum() == 0:
            raise DataError(f"{where}: target column {t!r} has no values")
        out[t] = values.to_numpy()
    return pd.DataFrame(out, index=frame.index)


def output_types_of(y: pd.DataFrame) -> list[str]:
    """Per target column: ``binary`` when it holds only 0/1, else ``regression``."""
    return ["binary" if _zero_one(y[c]) else "regression" for c in y.columns]


def _zero_one(values: pd.Series) -> bool:
    v = values.to_numpy(dtype=float)
    return set(np.unique(v[~np.isnan(v)])) <= {0.0, 1.0}


def infer_task_type(y: pd.DataFrame) -> str:
    """Binary (one 0/1 target), multilabel (several 0/1 targets), regression (no 0/1 target)
    or mixed (some of each: a panel of values and yes/no endpoints)."""
    kinds = set(output_types_of(y))
    if kinds == {"binary"}:
        return "binary" if y.shape[1] == 1 else "multilabel"
    return "regression" if kinds == {"regression"} else "mixed"


def _mixed_types(y: pd.DataFrame, output_types: list[str] | None, where: str) -> list[str]:
    """A mixed task's kind per target: as given (checked) or inferred from the values."""
    if output_types is None:
        return output_types_of(y)
    if len(output_types) != y.shape[1] or not set(output_types) <= set(OUTPUT_TYPES):
        raise DataError(f"{where}: data.output_types needs one of {', '.join(OUTPUT_TYPES)} per target {list(y.columns)}")
    for column, kind in zip(y.columns, output_types, strict=True):
        if kind == "binary" and not _zero_one(y[column]):
            raise DataError(f"{where}: target column {column!r} is binary in data.output_types but holds values other than 0/1")
    return list(output_types)


def load_molecules(
    path: str | Path,
    *,
    smiles_column: str | None = None,
    targets: list[str] | None = None,
    task_type: str | None = None,
    output_types: list[str] | None = None,
    require_targets: bool = True,
) -> MoleculeTable:
    """Read, check, standardise and de-duplicate a molecule file."""
    raw = read_raw(path)
    return table_from_frame(
        raw,
        str(path),
        smiles_column=smiles_column,
        targets=targets,
        task_type=task_type,
        output_types=output_types,
        require_targets=require_targets,
    )


def table_from_frame(
    raw: pd.DataFrame,
    source: str,
    *,
    smiles_column: str | None = None,
    targets: list[str] | None = None,
    task_type: str | None = None,
    output_types: list[str] | None = None,
    require_targets: bool = True,
) -> MoleculeTable:
    """The checks and standardisation of :func:`load_molecules`, for a frame already in memory.
    ``output_types`` (one per target) makes the task mixed; a mixed task without them infers
    each target's kind from its values."""
    where = f"molecule file {source}"
    col = find_smiles_column(raw, smiles_column, where)
    targets = list(targets or [])
    if require_targets and not targets:
        raise DataError(f"{where}: name the target column(s) with data.targets")
    y = numeric_targets(raw, targets, where) if targets else pd.DataFrame(index=raw.index)
    if task_type is not None and task_type not in TASK_TYPES:
        raise DataError(f"{where}: unknown task type {task_type!r} (use one of {', '.join(TASK_TYPES)})")
    if output_types is not None and task_type not in (None, "mixed"):
        raise DataError(f"{where}: data.output_types is for task type mixed, not {task_type}")
    if targets and task_type is None:
        task_type = "mixed" if output_types is not None else infer_task_type(y)
    types = _mixed_types(y, output_types, where) if task_type == "mixed" else None
    if types is not None and len(set(types)) == 1:  # a "panel" of one kind is that kind's task
        task_type, types = ("regression" if types[0] == "regression" else infer_task_type(y)), None
    std = standardise(raw[col].tolist())
    if std.n_invalid == len(raw):
        raise DataError(f"{where}: all {len(raw):,} SMILES are invalid (e.g. {std.examples[0][1][:60]!r}: {std.examples[0][2]})")
    frame = pd.DataFrame({SMILES: std.smiles}, index=raw.index).join(y)
    frame = frame[std.valid]
    labelled = frame[targets].notna().any(axis=1) if targets else pd.Series(True, index=frame.index)
    unlabelled_rows = int((~labelled).sum())
    frame = frame[labelled]
    before = len(frame)
    frame = frame.drop_duplicates(SMILES, keep="first").reset_index(drop=True)
    report = std.report() | {"duplicates_dropped": before - len(frame), "unlabelled_rows_dropped": unlabelled_rows}
    if targets and frame.empty:
        raise DataError(f"{where}: no row has both a valid SMILES and a target value")
    if task_type in ("binary", "multilabel"):
        values = frame[targets].to_numpy(dtype=float)
        if not set(np.unique(values[~np.isnan(values)])) <= {0.0, 1.0}:
            raise DataError(f"{where}: task type {task_type} needs 0/1 targets")
    return MoleculeTable(frame, targets, task_type, source, report, types)
