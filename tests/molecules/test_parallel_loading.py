"""Standardisation and scaffolds of a long list run in worker processes and give exactly what
one process gives, in input order."""

from __future__ import annotations

from stillroom_molecules import embedded, workers
from stillroom_molecules.chem import standardise, standardise_one
from stillroom_molecules.splits import scaffold_of, scaffold_split


def _library() -> list[object]:
    raw = embedded.nci_pool().frame["smiles"].tolist()
    values: list[object] = [*raw, "not a smiles", "", None, *[s + ".[Na+]" for s in raw[:1500]]]
    assert len(values) > workers.PARALLEL_MIN_ITEMS
    return values


def test_parallel_standardisation_matches_one_process() -> None:
    values = _library()
    parallel = standardise(values)
    assert parallel.smiles == [standardise_one(v)[0] for v in values]
    assert parallel.n_invalid == 3 and [e[1] for e in parallel.examples] == ["not a smiles", "", "None"]


def test_parallel_scaffolds_match_one_process() -> None:
    smiles = [s for s in standardise(_library()).smiles if s]
    assert workers.chunked_map(workers_scaffolds, smiles, "scaffolds", jobs=2) == [scaffold_of(s) for s in smiles]
    train, valid, test = scaffold_split(smiles, 0.1, 0.1, seed=0)
    sides = [{scaffold_of(smiles[i]) for i in part} for part in (train, valid, test)]
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])


def workers_scaffolds(block: list[str]) -> list[str]:
    return [scaffold_of(s) for s in block]
