"""Scores written as an SDF file (``stillroom score MODEL in.csv out.sdf``): one record per
scored row, in input order, for the tools a chemist opens a hit list in.

Each record holds the input molecule as RDKit reads it (2D, from the SMILES the model scored;
an SDF input's coordinates are not carried over) and every output column as an SD property:
the identifiers and passthrough columns, the endpoints, ``smiles_valid``, ``reason``,
``max_similarity`` and ``in_domain`` (:mod:`.score_columns`). A row RDKit cannot read gets an
empty molecule with the same properties, so the file still has one record per input row. An
empty value (an invalid row's endpoints) is left out of its record. Chosen by the output's
suffix through the core's output-format hook; the core writes into the output slot's partial
file and publishes it.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path
from typing import Any

import pandas as pd
from rdkit import Chem

from stillroom.contract import OutputFormat

from .formats import NAME_COLUMN

SDF_OUTPUT_SUFFIXES = (".sdf", ".sdf.gz", ".sd", ".sd.gz")


class SdfWriter:
    """An :class:`~stillroom.contract.OutputWriter` of SD records."""

    def __init__(self, path: Path) -> None:
        gz = path.name.lower().endswith(".gz")
        self._stream = gzip.open(path, "wt", encoding="utf-8") if gz else open(path, "w", encoding="utf-8")  # noqa: SIM115
        self._writer = Chem.SDWriter(self._stream)

    def write(self, scores: pd.DataFrame, inputs: pd.DataFrame) -> None:
        structures = inputs.iloc[:, 0].tolist()  # a molecules model's one text input: the SMILES
        for row, text in zip(scores.to_dict("records"), structures, strict=True):
            mol = _molecule(text)
            if NAME_COLUMN in row and isinstance(row[NAME_COLUMN], str):
                mol.SetProp("_Name", row[NAME_COLUMN])
            for column, value in row.items():
                shown = _property(value)
                if shown is not None:
                    mol.SetProp(str(column), shown)
            self._writer.write(mol)

    def close(self) -> None:
        self._writer.close()
        self._stream.close()


def _molecule(text: object) -> Chem.Mol:
    mol = Chem.MolFromSmiles(text) if isinstance(text, str) and text.strip() else None
    return mol if mol is not None else Chem.Mol()


def _property(value: Any) -> str | None:
    """An SD property's text: ``true``/``false`` for flags (as the CSV output writes them),
    full precision for numbers, nothing for an empty value."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return _property(value.item())
    return repr(value) if isinstance(value, float) else str(value)


SDF_OUTPUT = OutputFormat(
    name="molecules.sdf",
    suffixes=SDF_OUTPUT_SUFFIXES,
    open=SdfWriter,
    description="SDF file (.sdf, .sdf.gz): a record per scored molecule, the scores as SD properties",
)
