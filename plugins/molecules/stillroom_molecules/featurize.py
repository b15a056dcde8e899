"""Molecule featurisation: Morgan count fingerprints and RDKit 2D descriptors.

The student's whole speed budget is here: from a SMILES string to a feature row. Morgan
*count* fingerprints (ECFP-like, radius 2, folded) keep how often a substructure occurs,
which matters for properties that add up over a molecule (solubility, lipophilicity); the
optional RDKit 2D descriptors add whole-molecule physics (logP, TPSA ...) at a cost of
roughly 100x per molecule, so a screening student uses a short list or none.

Featurisation is vectorised (one CSR block per batch), runs in several processes for big
batches, and is cached by the featuriser's identity and a digest of the SMILES list, so the
pipeline's repeated calls on the same rows (student, baseline, evaluation, efficiency) and a
second run with another recipe cost no RDKit time.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rdkit import Chem
from rdkit.Chem import Descriptors, rdFingerprintGenerator
from scipy import sparse

from stillroom.contract import ConfigError, mark_used, usable_cores

from .chem import RDKIT_VERSION, smiles_digest, to_mols

ALL_DESCRIPTORS = tuple(name for name, _ in Descriptors._descList)
# a short, informative list (all O(atoms)); about 200 us per molecule on the bench machine, Crippen logP
# (MolLogP) 120 us of it, NumRotatableBonds 44, NumHAcceptors 21, the other nine under 5 each
SCREENING_DESCRIPTORS = (
    "MolWt",
    "MolLogP",
    "MolMR",
    "TPSA",
    "NumHDonors",
    "NumHAcceptors",
    "NumRotatableBonds",
    "RingCount",
    "NumAromaticRings",
    "FractionCSP3",
    "HeavyAtomCount",
    "NumHeteroatoms",
)
# whole-molecule size, polarity and ring counts, each under 5 us per molecule (about 19 us
# together on the bench's held-out molecules, against about 200 for ``screening``); none reads stereo,
# so they leave the parse without stereo perception (values identical, a test checks)
FAST_DESCRIPTORS = (
    "MolWt",
    "HeavyAtomCount",
    "NumHeteroatoms",
    "NOCount",
    "NHOHCount",
    "NumHDonors",
    "TPSA",
    "LabuteASA",
    "HallKierAlpha",
    "FractionCSP3",
    "RingCount",
    "NumAromaticRings",
)
LIMIT = 1e6  # a few descriptors (Ipc ...) explode; features stay finite for every model
PARALLEL_MIN_ROWS = 4000
_ROWS: dict[str, RowCache] = {}  # featuriser identity -> SMILES -> feature row
# per featuriser: rows kept in memory up to this many bytes (over a million molecules' fingerprint
# rows); a row count would let a long fingerprint or a long descriptor list hold many times that
_CACHE_BYTES = 512 * 2**20


@dataclass(frozen=True)
class FeaturizerConfig:
    """``descriptors``: ``none``, ``fast`` (12 at about 19 us per molecule), ``screening`` (12 with
    Crippen logP, about 200 us), ``all`` (RDKit's ~217) or a list."""

    radius: int = 2
    n_bits: int = 2048
    counts: bool = True
    descriptors: str | tuple[str, ...] = "none"
    n_jobs: int = 1
    cache: bool = True

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> FeaturizerConfig:
        params = dict(params or {})
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(f"unknown featurizer field {unknown[0]!r} (known: {sorted(known)})")
        if isinstance(params.get("descriptors"), list):
            params["descriptors"] = tuple(params["descriptors"])
        cfg = cls(**params)
        if not 0 <= cfg.radius <= 6 or not 16 <= cfg.n_bits <= 65536:
            raise ConfigError("featurizer: radius must be 0..6 and n_bits 16..65536")
        cfg.descriptor_names()  # validates names
        return cfg

    def needs_stereo(self) -> bool:
        """Whether molecules must be parsed with stereo perception (see :func:`chem.parse`).

        Not for fingerprints and the ``fast`` descriptors, whose values are the same either way
        (a test checks): fingerprint-only features went from 75 to 61 us per NCI molecule without
        it, ``fast`` from 63 to 48 us per held-out molecule. Other descriptors keep it: SPS reads
        stereo, and the rest were measured slower on such molecules (340 -> 370 us per NCI
        molecule for ``screening``), cancelling the saving.
        """
        return not set(self.descriptor_names()) <= set(FAST_DESCRIPTORS)

    def n_features(self) -> int:
        """Columns of a feature row: fingerprint positions, then descriptors."""
        return self.n_bits + len(self.descriptor_names())

    def descriptor_names(self) -> tuple[str, ...]:
        if self.descriptors == "none":
            return ()
        if self.descriptors == "fast":
            return FAST_DESCRIPTORS
        if self.descriptors == "screening":
            return SCREENING_DESCRIPTORS
        if self.descriptors == "all":
            return ALL_DESCRIPTORS
        if isinstance(self.descriptors, str):
            raise ConfigError(f"featurizer.descriptors {self.descriptors!r}: use none, fast, screening, all or a list of names")
        unknown = [d for d in self.descriptors if d not in ALL_DESCRIPTORS]
        if unknown:
            raise ConfigError(f"featurizer.descriptors: unknown RDKit descriptor(s) {unknown[:5]}")
        return tuple(self.descriptors)


@dataclass
class Featurizer:
    """SMILES (already standardised) -> float32 CSR feature rows."""

    config: FeaturizerConfig = field(default_factory=FeaturizerConfig)
    cache_dir: Path | None = None

    @property
    def n_features(self) -> int:
        return self.config.n_features()

    def feature_names(self) -> list[str]:
        kind = "mc" if self.config.counts else "mb"
        return [f"{kind}{self.config.radius}_{i}" for i in range(self.config.n_bits)] + list(self.config.descriptor_names())

    def identity(self) -> str:
        """What makes two feature matrices interchangeable: settings and the RDKit version."""
        cfg = asdict(self.config) | {"rdkit": RDKIT_VERSION}
        cfg.pop("n_jobs")
        cfg.pop("cache")
        return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def describe(self) -> dict[str, Any]:
        names = self.config.descriptor_names()
        kind = "count" if self.config.counts else "bit"
        which = self.config.descriptors if isinstance(self.config.descriptors, str) else "custom"
        extra = f" + {len(names)} RDKit 2D descriptors ({which})" if names else ""
        return {
            "featurizer": f"Morgan {kind} fingerprint r={self.config.radius} {self.config.n_bits} bits{extra}",
            "rdkit_version": RDKIT_VERSION,
            "n_features": self.n_features,
            "identity": self.identity(),
        }

    def transform(self, smiles: Sequence[str], use_cache: bool | None = None) -> sparse.csr_matrix:
        """Features of every SMILES as float32 CSR rows; the row of an unparsable SMILES is all NaN.

        Sparse because a molecule sets a few dozen of thousands of fingerprint positions: a
        million training molecules at 4,096 positions are about 0.3 GB of rows (about 40 stored
        values a molecule on the NCI pool) instead of 16 GB dense, and the MLP trains through the
        set positions only. Call ``.toarray()`` where a model wants dense input (the descriptor
        teacher does).

        With the cache, rows already computed in this process (for any list holding the same
        molecule) and whole lists stored on disk are reused; ``use_cache=False`` computes
        everything, which is what a timed prediction must do.
        """
        smiles = list(smiles)
        if not (self.config.cache if use_cache is None else use_cache):
            return self._compute(smiles)
        key = f"{self.identity()}-{smiles_digest(smiles)}"
        path = self._cache_path(key)
        if path.is_file():
            try:
                values = sparse.load_npz(path).tocsr()
                if values.shape == (len(smiles), self.n_features) and values.dtype == np.float32:
                    mark_used(path)
                    return values
            except (OSError, ValueError, KeyError, EOFError):
                pass
            path.unlink(missing_ok=True)  # a corrupted entry is recomputed, never trusted
        values = self._from_rows(smiles)
        _store(path, values)
        return values

    def _from_rows(self, smiles: list[str]) -> sparse.csr_matrix:
        """Assemble from the in-process per-molecule cache, computing only the missing rows."""
        rows = _ROWS.setdefault(self.identity(), RowCache())
        missing = list(dict.fromkeys(s for s in smiles if s not in rows.entries))
        if missing:
            rows.put(missing, self._compute(missing))
        out = rows.take(smiles, self.n_features)
        rows.evict(_CACHE_BYTES)
        return out

    def _cache_path(self, key: str) -> Path:
        if self.cache_dir is None:
            from stillroom.contract import default_cache_dir

            root = default_cache_dir()
        else:
            root = self.cache_dir
        return root / "features" / f"{key}.npz"

    def _compute(self, smiles: list[str]) -> sparse.csr_matrix:
        jobs = self.config.n_jobs if self.config.n_jobs > 0 else usable_cores()
        if jobs <= 1 or len(smiles) < PARALLEL_MIN_ROWS:
            return featurize_block(smiles, self.config)
        chunks = np.array_split(np.arange(len(smiles)), jobs * 4)
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            parts = pool.map(featurize_block, [[smiles[i] for i in c] for c in chunks], [self.config] * len(chunks))
            return sparse.vstack(list(parts), format="csr")


@dataclass
class RowCache:
    """One featuriser's rows by SMILES, oldest first, with their size in bytes (what bounds it)."""

    entries: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=OrderedDict)
    nbytes: int = 0

    def put(self, smiles: list[str], rows: sparse.csr_matrix) -> None:
        for i, s in enumerate(smiles):
            part = slice(rows.indptr[i], rows.indptr[i + 1])
            entry = (rows.indices[part].copy(), rows.data[part].copy())
            self.entries[s] = entry
            self.nbytes += entry[0].nbytes + entry[1].nbytes

    def take(self, smiles: list[str], width: int) -> sparse.csr_matrix:
        entries = [self.entries[s] for s in smiles]
        indptr = np.zeros(len(entries) + 1, dtype=np.int64)
        np.cumsum([len(e[0]) for e in entries], out=indptr[1:])
        if not entries:
            return sparse.csr_matrix((0, width), dtype=np.float32)
        indices = np.concatenate([e[0] for e in entries])
        data = np.concatenate([e[1] for e in entries])
        return sparse.csr_matrix((data, indices, indptr), shape=(len(entries), width))

    def evict(self, limit: int) -> None:
        """Drop the oldest rows until the rest fit in ``limit`` bytes (at least one row stays)."""
        while self.nbytes > limit and len(self.entries) > 1:
            indices, data = self.entries.popitem(last=False)[1]
            self.nbytes -= indices.nbytes + data.nbytes


def featurize_block(smiles: list[str], config: FeaturizerConfig) -> sparse.csr_matrix:
    """One process's share: RDKit parse, fingerprint and descriptors into float32 CSR rows."""
    return feature_rows(to_mols(smiles, stereo=config.needs_stereo()), config)


def feature_rows(mols: Iterable[Chem.Mol | None], config: FeaturizerConfig) -> sparse.csr_matrix:
    """Features of parsed molecules as a float32 CSR matrix: fingerprint, then descriptors;
    the row of a ``None`` molecule is all NaN (stored, so it reads NaN in every position).

    Training, the disk cache and the scorer all use this one function, so a trained model and
    the scorer see the very same values. Sparse because a molecule sets a few dozen of the
    2,048+ fingerprint positions: the scorer predicts from this form directly (LightGBM reads
    CSR; the MLP sums the input weights of the set positions), where a dense row cost a memset
    and a scan of every position, and the MLP's first layer a full matrix product (47 -> 5 us
    per molecule). Fingerprints are taken through their non-zero entries: RDKit's
    ``...AsNumPy`` builds and copies a full array per molecule. Descriptor values are made
    finite once per block (:func:`_finite_descriptors`), not once per value.
    """
    names = config.descriptor_names()
    functions = [dict(Descriptors._descList)[n] for n in names]
    width = config.n_features()
    tail = list(range(config.n_bits, width))
    nonzero = _nonzero_fingerprint(config)
    indptr, indices, data, parsed = [0], [], [], []
    for mol in mols:
        parsed.append(mol is not None)
        if mol is None:
            indices += range(width)
            data += [math.nan] * width
        else:
            positions, values = nonzero(mol)  # ascending positions: the rows are canonical CSR
            indices += positions
            data += values
            if functions:
                indices += tail
                data += _descriptors(functions, mol)
        indptr.append(len(indices))
    columns, starts = np.asarray(indices, dtype=np.int32), np.asarray(indptr, dtype=np.int64)
    values = np.asarray(data, dtype=np.float64)
    if functions:
        _finite_descriptors(values, columns, starts, parsed, config.n_bits)
    return sparse.csr_matrix(
        (values.astype(np.float32), columns, starts),
        shape=(len(parsed), width),
    )


def _descriptors(functions: list[Callable[[Chem.Mol], float]], mol: Chem.Mol) -> list[Any]:
    """The raw descriptor values of one molecule; one that RDKit fails on (an exotic molecule)
    becomes NaN, which :func:`_finite_descriptors` then sets to 0."""
    try:
        return [fn(mol) for fn in functions]
    except Exception:
        return [_guarded(fn, mol) for fn in functions]


def _guarded(fn: Callable[[Chem.Mol], float], mol: Chem.Mol) -> Any:
    try:
        return fn(mol)
    except Exception:
        return math.nan


def _finite_descriptors(values: np.ndarray, columns: np.ndarray, indptr: np.ndarray, valid: list[bool], first: int) -> None:
    """In place: every descriptor value of a parsed molecule finite and within +-LIMIT (NaN -> 0,
    +-inf -> +-LIMIT), so every model sees finite features; an unparsable molecule's row stays
    NaN (that is how it is recognised). Once per block: per value, in Python, it cost about a
    quarter of the descriptors' own time."""
    parsed = np.repeat(np.asarray(valid, dtype=bool), np.diff(indptr))
    where = parsed & (columns >= first)
    values[where] = np.clip(np.nan_to_num(values[where], nan=0.0, posinf=LIMIT, neginf=-LIMIT), -LIMIT, LIMIT)


def _nonzero_fingerprint(config: FeaturizerConfig) -> Callable[[Chem.Mol], tuple[Iterable[int], Iterable[int]]]:
    """mol -> (positions, values) of its folded Morgan fingerprint: counts or on-bits."""
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=config.radius, fpSize=config.n_bits)
    if config.counts:

        def counts(mol: Chem.Mol) -> tuple[Iterable[int], Iterable[int]]:
            entries = gen.GetCountFingerprint(mol).GetNonzeroElements()
            return entries.keys(), entries.values()  # views: the caller extends its lists from them

        return counts

    def bits(mol: Chem.Mol) -> tuple[Iterable[int], Iterable[int]]:
        on = list(gen.GetFingerprint(mol).GetOnBits())
        return on, [1] * len(on)

    return bits


def _store(path: Path, values: sparse.csr_matrix) -> None:
    """Write a cache entry whole or not at all (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".partial")
    with os.fdopen(fd, "wb") as fh:
        sparse.save_npz(fh, values, compressed=False)
    os.replace(tmp, path)
