"""The applicability domain a student ships with: its training molecules' fingerprints.

A scored molecule is only as trustworthy as it is close to what the student learnt from, so
every scored row carries ``max_similarity`` (its nearest neighbour's Tanimoto similarity among
the student's training molecules) and ``in_domain`` (that similarity at or above the run's
``molecules.ad_threshold``). The measure is the evaluator's (:data:`~.metrics.AD_METHOD`: Morgan
radius 2, 2,048 bits), so the coverage a run reports is what scoring flags.

Memory stays bounded whatever the library: the training fingerprints are stored once, packed
(2,048 bits = 256 bytes a molecule, ``domain.npy``), and held as a sparse bit matrix (a
molecule sets about 45 of the 2,048 bits). A chunk of query molecules is compared with all of
them at once as a sparse product (shared bits), in blocks of at most ``BLOCK_CELLS``
similarities. RDKit's ``BulkTanimotoSimilarity``, one molecule against every training bit
vector, gave the same values at about 700 molecules/s on ClinTox's 2,544 (2 busy cores): a
hundred times slower than the rest of scoring.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator
from scipy import sparse

from .chem import to_mols

FINGERPRINT_BITS = 2048
FINGERPRINT_RADIUS = 2
DEFAULT_THRESHOLD = 0.4  # molecules.ad_threshold's default; a run sets its own (see :meth:`TrainingDomain.with_threshold`)
FILE = "domain.npy"
SETTINGS_FILE = "domain.json"
BLOCK_CELLS = 1 << 22  # similarities computed at once (x 4 bytes): 16 MiB whatever the training set

_generator = rdFingerprintGenerator.GetMorganGenerator(radius=FINGERPRINT_RADIUS, fpSize=FINGERPRINT_BITS)


def bit_rows(mols: Iterable[Chem.Mol]) -> sparse.csr_matrix:
    """(n, 2,048) 0/1 CSR rows: each molecule's applicability-domain fingerprint (Morgan ignores
    stereo)."""
    columns = [np.flatnonzero(_generator.GetFingerprintAsNumPy(m)) for m in mols]
    indptr = np.concatenate([[0], np.cumsum([len(c) for c in columns])])
    data = np.ones(int(indptr[-1]), dtype=np.float32)
    indices = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64)
    return sparse.csr_matrix((data, indices, indptr), shape=(len(columns), FINGERPRINT_BITS))


def packed(mols: Iterable[Chem.Mol | None]) -> np.ndarray:
    """(n, 256) uint8: each valid molecule's fingerprint, bits packed little-endian (RDKit's FPS
    byte order); invalid ones are skipped."""
    rows = [np.packbits(_generator.GetFingerprintAsNumPy(m).astype(bool), bitorder="little") for m in mols if m is not None]
    return np.vstack(rows) if rows else np.zeros((0, FINGERPRINT_BITS // 8), dtype=np.uint8)


@dataclass
class TrainingDomain:
    """The training molecules' packed fingerprints and the similarity that counts as inside."""

    fingerprints: np.ndarray  # (n, 256) uint8, packed
    threshold: float = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        bits = np.unpackbits(self.fingerprints, axis=1, bitorder="little")
        self._columns = sparse.csr_matrix(bits.T, dtype=np.float32)  # (2,048, n): bit -> training molecules
        self._counts = bits.sum(axis=1).astype(np.float32)  # bits set per training molecule

    @classmethod
    def of_smiles(cls, smiles: Sequence[str], threshold: float = DEFAULT_THRESHOLD) -> TrainingDomain:
        """The domain of canonical SMILES (a student's training rows), duplicates kept once."""
        return cls(np.unique(packed(to_mols(list(dict.fromkeys(smiles)), stereo=False)), axis=0), threshold)

    def with_threshold(self, threshold: float) -> TrainingDomain:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"an applicability-domain threshold is a Tanimoto similarity in (0, 1), not {threshold}")
        domain = TrainingDomain.__new__(TrainingDomain)
        domain.__dict__.update(self.__dict__)
        domain.threshold = float(threshold)
        return domain

    def __len__(self) -> int:
        return len(self.fingerprints)

    def max_similarity(self, mols: Iterable[Chem.Mol]) -> np.ndarray:
        """Each molecule's highest Tanimoto similarity to a training molecule (0 with none):
        shared bits / (bits of one + bits of the other - shared), exactly as RDKit computes it."""
        queries = bit_rows(mols)
        out = np.zeros(queries.shape[0])
        if not len(self) or not queries.shape[0]:
            return out
        counts = np.asarray(queries.sum(axis=1), dtype=np.float32).ravel()
        step = max(1, BLOCK_CELLS // len(self))
        for start in range(0, queries.shape[0], step):
            shared = (queries[start : start + step] @ self._columns).toarray().astype(np.float64)  # counts: exact
            union = counts[start : start + step, None] + self._counts[None, :] - shared
            out[start : start + step] = (shared / np.maximum(union, 1.0)).max(axis=1)
        return out

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
