"""The applicability domain a student ships with: its training molecules' fingerprints.

A scored molecule is only as trustworthy as it is close to what the student learnt from, so
every scored row carries ``max_similarity`` (its nearest neighbour's Tanimoto similarity among
the student's training molecules) and ``in_domain`` (that similarity at or above the run's
``molecules.ad_threshold``). The measure is the evaluator's (:data:`~.metrics.AD_METHOD`: Morgan
radius 2, 2,048 bits), so the coverage a run reports is what scoring flags.

Memory stays bounded whatever the library: the training fingerprints are stored once, packed
(2,048 bits = 256 bytes a molecule, ``domain.npy``), and loaded as RDKit bit vectors (about the
same size); a batch is compared one molecule at a time against them with
``BulkTanimotoSimilarity`` (C++, no n x m matrix), in the chunks ``stillroom score`` streams.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from .chem import to_mols

FINGERPRINT_BITS = 2048
FINGERPRINT_RADIUS = 2
DEFAULT_THRESHOLD = 0.4  # molecules.ad_threshold's default; a run sets its own (see :meth:`TrainingDomain.with_threshold`)
FILE = "domain.npy"
SETTINGS_FILE = "domain.json"

_generator = rdFingerprintGenerator.GetMorganGenerator(radius=FINGERPRINT_RADIUS, fpSize=FINGERPRINT_BITS)


def fingerprint(mol: Chem.Mol) -> DataStructs.ExplicitBitVect:
    """The applicability-domain fingerprint of one molecule (Morgan ignores stereo)."""
    return _generator.GetFingerprint(mol)


def packed(mols: Iterable[Chem.Mol | None]) -> np.ndarray:
    """(n, 256) uint8: each valid molecule's fingerprint, bits packed little-endian (RDKit's FPS
    byte order, so a row converts to a bit vector without unpacking); invalid ones are skipped."""
    rows = [np.packbits(_generator.GetFingerprintAsNumPy(m).astype(bool), bitorder="little") for m in mols if m is not None]
    return np.vstack(rows) if rows else np.zeros((0, FINGERPRINT_BITS // 8), dtype=np.uint8)


@dataclass
class TrainingDomain:
    """The training molecules' packed fingerprints and the similarity that counts as inside."""

    fingerprints: np.ndarray  # (n, 256) uint8, packed
    threshold: float = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        self._vectors = [DataStructs.CreateFromFPSText(row.tobytes().hex()) for row in self.fingerprints]

    @classmethod
    def of_smiles(cls, smiles: Sequence[str], threshold: float = DEFAULT_THRESHOLD) -> TrainingDomain:
        """The domain of canonical SMILES (a student's training rows), duplicates kept once."""
        return cls(np.unique(packed(to_mols(list(dict.fromkeys(smiles)), stereo=False)), axis=0), threshold)

    def with_threshold(self, threshold: float) -> TrainingDomain:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"an applicability-domain threshold is a Tanimoto similarity in (0, 1), not {threshold}")
        domain = TrainingDomain.__new__(TrainingDomain)
        domain.fingerprints, domain.threshold, domain._vectors = self.fingerprints, float(threshold), self._vectors
        return domain

    def __len__(self) -> int:
        return len(self._vectors)

    def max_similarity(self, mols: Iterable[Chem.Mol]) -> np.ndarray:
        """Each molecule's highest Tanimoto similarity to a training molecule (0 with none)."""
        if not self._vectors:
            return np.zeros(sum(1 for _ in mols))
        return np.array([max(DataStructs.BulkTanimotoSimilarity(fingerprint(m), self._vectors)) for m in mols], dtype=float)

    def inside(self, similarity: np.ndarray) -> np.ndarray:
        return np.asarray(similarity) >= self.threshold

    # --- files -----------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        np.save(directory / FILE, self.fingerprints, allow_pickle=False)
        (directory / SETTINGS_FILE).write_text(
            json.dumps(
                {"threshold": self.threshold, "bits": FINGERPRINT_BITS, "radius": FINGERPRINT_RADIUS, "molecules": len(self)}
            )
        )

    @classmethod
    def load(cls, directory: Path) -> TrainingDomain | None:
        """The stored domain, or ``None`` for a student saved before domains were stored."""
        if not (directory / FILE).exists():
            return None
        settings = json.loads((directory / SETTINGS_FILE).read_text())
        fingerprints = np.load(directory / FILE, allow_pickle=False)
        if fingerprints.dtype != np.uint8 or fingerprints.ndim != 2 or fingerprints.shape[1] != FINGERPRINT_BITS // 8:
            raise ValueError(
                f"{FILE} holds {fingerprints.dtype} {fingerprints.shape}, not packed {FINGERPRINT_BITS}-bit fingerprints"
            )
        return cls(fingerprints, float(settings["threshold"]))
