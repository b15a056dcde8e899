"""Dataset hooks of the molecules vertical: the config's ``data`` section -> a DataBundle.

The model input is one text column, ``smiles`` (standardised, canonical); targets keep their
names. Lineage carries what was dropped on the way (invalid SMILES by reason, duplicates),
the split kind, the pool and the RDKit version.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stillroom.contract import DataBundle

from . import embedded
from .chem import RDKIT_VERSION, STANDARDISATION
from .config import MoleculesDataConfig
from .loaders import SMILES, MoleculeTable, load_molecules
from .splits import split


def hard_matrix(bundle: DataBundle, frame: pd.DataFrame) -> np.ndarray:
    """Labels as (n, k) floats, NaN = missing (multiclass: (n, 1) class index)."""
    return frame[bundle.details["targets"]].to_numpy(dtype=float)


def _subsample(frame: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    if max_rows is None or len(frame) <= max_rows:
        return frame
    return frame.sample(n=max_rows, random_state=seed).reset_index(drop=True)


def _pool(cfg: MoleculesDataConfig, exclude: set[str], seed: int) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    if cfg.pool == "none":
        return None, {"pool": "none"}
    table = embedded.nci_pool() if cfg.pool == "nci5k" else load_molecules(cfg.pool_path, require_targets=False)
    frame = embedded.pool_frame(table, exclude, cfg.pool_max, seed)
    source = "rdkit/Data/NCI/first_5K.smi" if cfg.pool == "nci5k" else cfg.pool_path
    return frame, {"pool": source, "pool_report": table.report, "pool_rows": len(frame)}


def bundle_from_tables(
    cfg: MoleculesDataConfig, train_table: MoleculeTable, test_table: MoleculeTable | None, seed: int, source: str
) -> DataBundle:
    """Split (scaffold or random), attach the pool, and record the lineage."""
    targets, task_type = train_table.targets, train_table.task_type or "regression"
    if cfg.reference == "teacher":  # the labels, if any, are not the reference: none are kept
        train_table, test_table = without_labels(train_table), (without_labels(test_table) if test_table is not None else None)
    frame = _subsample(train_table.frame, cfg.max_rows, seed)
    if test_table is None:
        tr, va, te = split(cfg.split, frame[SMILES].tolist(), cfg.valid_fraction, cfg.test_fraction, seed)
        train, valid, test = (frame.iloc[i].reset_index(drop=True) for i in (tr, va, te))
    else:
        tr, va, _ = split(cfg.split, frame[SMILES].tolist(), cfg.valid_fraction, 0.0, seed)
        train, valid = (frame.iloc[i].reset_index(drop=True) for i in (tr, va))
        test = test_table.frame[~test_table.frame[SMILES].isin(set(frame[SMILES]))].reset_index(drop=True)
    seen = set(train[SMILES]) | set(valid[SMILES]) | set(test[SMILES])
    pool, pool_facts = _pool(cfg, seen, seed)
    report = {"train_file": train_table.report} | ({"test_file": test_table.report} if test_table is not None else {})
    return DataBundle(
        train=train,
        validation=valid,
        test=test,
        features=[SMILES],
        label=targets[0] if len(targets) == 1 else list(targets),
        unlabelled=pool,
        source=source,
        task_type=task_type,
        output_types=train_table.output_types,
        reference=cfg.reference,
        opaque_features=[SMILES],  # checked (standardised) by our loaders, not as numbers by the core
        details={
            "task_type": task_type,
            "targets": list(targets),
            **({"output_types": train_table.output_types} if train_table.output_types else {}),
            "split": cfg.split,
            "standardisation": STANDARDISATION,
            "rdkit_version": RDKIT_VERSION,
            "invalid_smiles": report,
            "duplicates": _duplicates(train_table, test_table),
            **pool_facts,
        },
    )


def _duplicates(train: MoleculeTable, test: MoleculeTable | None) -> dict[str, Any]:
    """The loader's merge of duplicate molecules, summed over the files read (the data guards
    judge it: ``details["duplicates"]`` of :class:`~stillroom.contract.DataBundle`)."""
    records = [t.report.get("duplicates") or {} for t in (train, test) if t is not None]
    if not records or not records[0]:
        return {}
    out: dict[str, Any] = {"rule": records[0]["rule"]}
    for key in ("groups", "rows_merged", "conflicting"):
        out[key] = int(sum(r.get(key, 0) for r in records))
    per_target: dict[str, int] = {}
    for r in records:
        for target, n in r.get("conflicting_per_target", {}).items():
            per_target[target] = per_target.get(target, 0) + int(n)
    out["conflicting_per_target"] = per_target
    return out


def load_solubility(cfg: MoleculesDataConfig, seed: int) -> DataBundle:
    """The embedded default: RDKit's solubility set (logS), its own test set, NCI pool."""
    train, test = embedded.solubility()
    return bundle_from_tables(cfg, train, test, seed, str(embedded.DATA / "solubility.train.sdf.gz"))


def load_freesolv(cfg: MoleculesDataConfig, seed: int) -> DataBundle:
    return bundle_from_tables(cfg, embedded.freesolv(), None, seed, str(embedded.DATA / "freesolv.csv"))


def load_file(cfg: MoleculesDataConfig, seed: int) -> DataBundle:
    if cfg.reference == "teacher":
        table = load_molecules(cfg.path, smiles_column=cfg.smiles_column, require_targets=False)
        table = replace(table, targets=list(cfg.targets or []), task_type=cfg.task_type, output_types=cfg.output_types)
    else:
        table = load_molecules(
            cfg.path,
            smiles_column=cfg.smiles_column,
            targets=cfg.targets,
            task_type=cfg.task_type,
            output_types=cfg.output_types,
            duplicate_rule=(cfg.duplicates.values, cfg.duplicates.classes),
        )
    return bundle_from_tables(cfg, table, None, seed, str(Path(cfg.path).resolve()))


def without_labels(table: MoleculeTable) -> MoleculeTable:
    """The table with its target columns emptied (NaN): molecules the teacher will label."""
    frame = table.frame[[SMILES]].assign(**{t: np.nan for t in table.targets})
    return replace(table, frame=frame)
