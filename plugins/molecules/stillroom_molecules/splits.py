"""Random and Bemis-Murcko scaffold splits.

A random split puts close analogues of every test molecule in training and flatters any model;
a scaffold split (Bemis and Murcko 1996) keeps whole chemical series out of training, which is
what a prospective screen of new chemistry looks like. Both are offered and the run records
which one it used. The scaffold split is the balanced variant used by Chemprop: scaffold sets
too big for the validation/test share go to training, the rest are shuffled by the seed and
dealt greedily to train, validation and test.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold

SPLITS = ("scaffold", "random")


def scaffold_of(smiles: str) -> str:
    """Bemis-Murcko scaffold SMILES ('' for acyclic molecules)."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return ""
    return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)


def scaffolds_of(smiles: list[str]) -> list[str]:
    """One worker's share of the scaffold split: the scaffold of each SMILES."""
    return [scaffold_of(s) for s in smiles]


def random_split(n: int, valid_fraction: float, test_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """Index arrays (train, validation, test) of a seeded random permutation."""
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_valid = int(round(test_fraction * n)), int(round(valid_fraction * n))
    return np.sort(order[n_test + n_valid :]), np.sort(order[n_test : n_test + n_valid]), np.sort(order[:n_test])


def scaffold_split(
    smiles: Sequence[str], valid_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays (train, validation, test) with no scaffold shared between them."""
    from .workers import chunked_map

    groups: dict[str, list[int]] = defaultdict(list)
    for i, scaffold in enumerate(chunked_map(scaffolds_of, list(smiles), "data: Bemis-Murcko scaffolds")):
        groups[scaffold].append(i)
    n = len(smiles)
    n_valid, n_test = int(round(valid_fraction * n)), int(round(test_fraction * n))
    n_train = n - n_valid - n_test
    big = [g for g in groups.values() if len(g) > n_valid / 2 or len(g) > n_test / 2]
    small = [g for g in groups.values() if not (len(g) > n_valid / 2 or len(g) > n_test / 2)]
    rng = np.random.default_rng(seed)
    rng.shuffle(big)
    rng.shuffle(small)
    train: list[int] = []
    valid: list[int] = []
    test: list[int] = []
    for group in big + small:
        if len(train) + len(group) <= n_train:
            train += group
        elif len(valid) + len(group) <= n_valid:
            valid += group
        else:
            test += group
    return np.sort(np.array(train, dtype=int)), np.sort(np.array(valid, dtype=int)), np.sort(np.array(test, dtype=int))


def split(
    kind: str, smiles: Sequence[str], valid_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if kind == "scaffold":
        return scaffold_split(smiles, valid_fraction, test_fraction, seed)
    if kind == "random":
        return random_split(len(smiles), valid_fraction, test_fraction, seed)
    raise ValueError(f"unknown split {kind!r} (use one of {SPLITS})")
