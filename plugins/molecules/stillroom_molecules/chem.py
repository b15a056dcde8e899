"""RDKit standardisation: one canonical form per molecule, whatever file it came from.

The same molecule arrives as a salt, a charged species or a differently written SMILES in
different files; a model keyed on a non-canonical string learns (and a cache stores) the same
molecule several times, and a scaffold split could put one compound on both sides. Every
SMILES therefore goes through the same steps before anything else sees it:

1. parse (``Chem.MolFromSmiles`` with sanitisation);
2. keep the largest organic fragment (drops counter-ions and solvents);
3. neutralise charges where a neutral form exists (``rdMolStandardize.Uncharger``);
4. write canonical isomeric SMILES.

An unparsable SMILES is never an exception: it comes back as ``None`` with a reason, so a
loader can count, report and drop it and a scoring job can flag it and go on.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import rdkit
from rdkit import Chem, RDLogger
from rdkit.Chem.MolStandardize import rdMolStandardize

RDLogger.DisableLog("rdApp.*")  # parse failures are counted and reported by us, not printed by RDKit

RDKIT_VERSION = rdkit.__version__
STANDARDISATION = "rdkit: parse+sanitize, largest fragment, uncharge, canonical isomeric SMILES"

EXPLICIT_HYDROGEN = re.compile(r"\[\d*H[^a-z]")  # [H], [2H], [H+]; not [Hg], [nH], [NH3+]

_chooser = rdMolStandardize.LargestFragmentChooser(preferOrganic=True)
_uncharger = rdMolStandardize.Uncharger()


def parse(text: str, stereo: bool = True) -> Chem.Mol | None:
    """The sanitised molecule of one SMILES, or ``None`` if RDKit cannot read it.

    ``stereo=False`` skips what ``MolFromSmiles`` does after sanitising: stereo perception, a
    quarter of the parse (about 10 of 37 us per NCI molecule). Morgan fingerprints ignore
    stereo: on 13,174 real molecules (NCI, FreeSolv, solubility, Lipophilicity, BBBP) every
    fingerprint came out identical, and a test keeps it so. A SMILES with explicit hydrogen
    atoms (``[H]``, ``[2H]``) goes the full way, because only ``MolFromSmiles`` removes them.
    """
    if stereo or EXPLICIT_HYDROGEN.search(text):
        return Chem.MolFromSmiles(text)
    mol = Chem.MolFromSmiles(text, sanitize=False)
    if mol is None:
        return None
    try:
        Chem.SanitizeMol(mol)
    except Exception:  # RDKit raises a family of valence/kekulisation errors: MolFromSmiles says None
        return None
    return mol


def standardised_mol(smiles: object, stereo: bool = True) -> tuple[Chem.Mol | None, str | None]:
    """(standardised molecule, None) or (None, reason) for one input value.

    The fragment chooser and the uncharger only run when the SMILES can need them (a ``.``,
    a charge sign): they are most of the cost, and a screening library is mostly neither.
    ``stereo=False``: see :func:`parse`.
    """
    if not isinstance(smiles, str) or not smiles.strip():
        return None, "empty"
    text = smiles.strip()
    mol = parse(text, stereo)
    if mol is None or mol.GetNumAtoms() == 0:
        return None, "unparsable"
    try:
        if "." in text:
            mol = _chooser.choose(mol)
        if "+" in text or "-" in text:
            mol = _uncharger.uncharge(mol)
    except Exception as exc:  # RDKit raises assorted runtime errors on exotic valences
        return None, f"standardisation failed: {type(exc).__name__}"
    return mol, None


def standardise_one(smiles: object) -> tuple[str | None, str | None]:
    """(canonical SMILES, None) or (None, reason) for one input value."""
    mol, reason = standardised_mol(smiles)
    if mol is None:
        return None, reason
    out = Chem.MolToSmiles(mol)
    return (out, None) if out else (None, "empty after standardisation")


@dataclass
class Standardised:
    """Canonical SMILES per input row (``None`` where invalid) and why rows were invalid."""

    smiles: list[str | None]
    reasons: list[str | None]
    examples: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def valid(self) -> np.ndarray:
        return np.array([s is not None for s in self.smiles], dtype=bool)

    @property
    def n_invalid(self) -> int:
        return int((~self.valid).sum())

    def report(self) -> dict[str, object]:
        """Counts by reason and the first few offending rows (for the run's lineage)."""
        counts: dict[str, int] = {}
        for reason in self.reasons:
            if reason:
                counts[reason] = counts.get(reason, 0) + 1
        return {
            "rows": len(self.smiles),
            "valid": int(self.valid.sum()),
            "invalid": self.n_invalid,
            "invalid_by_reason": counts,
            "invalid_examples": [{"row": r, "input": s[:120], "reason": why} for r, s, why in self.examples],
        }


def standardise(smiles: Iterable[object], max_examples: int = 5) -> Standardised:
    """Standardise many SMILES; invalid ones become ``None`` (counted, never raised). A long
    list is spread over worker processes (:func:`~stillroom_molecules.workers.chunked_map`)."""
    from .workers import chunked_map

    values = list(smiles)
    results = chunked_map(standardise_block, values, "data: standardising molecules")
    out = [canonical for canonical, _ in results]
    reasons = [reason for _, reason in results]
    examples = [(row, str(values[row]), reason) for row, reason in enumerate(reasons) if reason][:max_examples]
    return Standardised(out, reasons, examples)


def standardise_block(smiles: list[object]) -> list[tuple[str | None, str | None]]:
    """One worker's share of :func:`standardise`."""
    return [standardise_one(value) for value in smiles]


def to_mols(smiles: Iterable[str], stereo: bool = True) -> Iterator[Chem.Mol | None]:
    """Molecules of already canonical SMILES (no second standardisation), one at a time.

    Lazy on purpose: a caller that featurises each molecule as it comes works on it while it is
    still in the CPU cache. Parsing a whole block into a list first cost about 7 us more per
    molecule (of about 40) in the scoring path (``bench/molecules.py --part budget``)."""
    return (parse(s, stereo) if isinstance(s, str) else None for s in smiles)


def smiles_digest(smiles: Sequence[str]) -> str:
    """A content digest of an ordered SMILES list (cache key for features and teacher outputs)."""
    h = hashlib.sha256()
    for s in smiles:
        h.update(str(s).encode())
        h.update(b"\n")
    return h.hexdigest()[:24]
