"""Scaffold and random splits; the featuriser (values, cache, processes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stillroom.errors import ConfigError
from stillroom_molecules import embedded
from stillroom_molecules.featurize import Featurizer, FeaturizerConfig, featurize_block
from stillroom_molecules.splits import random_split, scaffold_of, scaffold_split


@pytest.fixture(scope="module")
def smiles() -> list[str]:
    return embedded.freesolv().frame["smiles"].tolist()


def test_scaffold_split_shares_no_scaffold(smiles: list[str]) -> None:
    train, valid, test = scaffold_split(smiles, 0.1, 0.1, seed=0)
    assert len(train) + len(valid) + len(test) == len(smiles)
    assert not set(train) & set(test) and not set(valid) & set(test)
    scaf = [scaffold_of(s) for s in smiles]
    assert not {scaf[i] for i in train} & {scaf[i] for i in test}
    assert not {scaf[i] for i in valid} & {scaf[i] for i in test}
    assert abs(len(test) - 0.1 * len(smiles)) < 0.05 * len(smiles)
    # another seed deals the small scaffold sets differently
    assert not np.array_equal(test, scaffold_split(smiles, 0.1, 0.1, seed=1)[2])


def test_random_split_is_a_seeded_partition() -> None:
    a = random_split(100, 0.1, 0.2, seed=3)
    assert [len(x) for x in a] == [70, 10, 20]
    assert sorted(np.concatenate(a).tolist()) == list(range(100))
    assert all(np.array_equal(x, y) for x, y in zip(a, random_split(100, 0.1, 0.2, seed=3), strict=True))


def test_morgan_counts_and_descriptors() -> None:
    cfg = FeaturizerConfig(n_bits=1024, descriptors=("MolWt", "TPSA"), cache=False)
    rows = Featurizer(cfg).transform(["CCO", "CCCCCCCC", "nonsense("])
    assert rows.shape == (3, 1026) and rows.dtype == np.float32
    X = rows.toarray()
    assert X[1, :1024].sum() > X[0, :1024].sum()  # counts: the octane chain sets the same bits many times
    assert X[1, :1024].max() > 1
    assert X[0, 1024] == pytest.approx(46.07, abs=0.01)  # ethanol's molecular weight
    assert np.isnan(X[2]).all()


def test_descriptor_values_are_finite_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A descriptor that returns NaN, infinity or a huge value, or raises, gives 0, +-LIMIT or
    LIMIT, and the molecule's other features stay; an unparsable SMILES's row stays all NaN."""
    from rdkit.Chem import Descriptors

    from stillroom_molecules.featurize import LIMIT

    def boom(mol: object) -> float:
        raise ValueError("exotic molecule")

    odd = {"MolWt": lambda m: float("nan"), "TPSA": lambda m: float("-inf"), "LabuteASA": lambda m: 1e30, "NOCount": boom}
    monkeypatch.setattr(Descriptors, "_descList", [(n, odd.get(n, f)) for n, f in Descriptors._descList])
    cfg = FeaturizerConfig(n_bits=64, descriptors=("MolWt", "TPSA", "LabuteASA", "NOCount", "HeavyAtomCount"), cache=False)
    X = Featurizer(cfg).transform(["CCO", "nonsense(", "c1ccccc1O"]).toarray()
    assert X[0, 64:].tolist() == [0.0, -LIMIT, LIMIT, 0.0, 3.0]  # HeavyAtomCount is computed even though NOCount raised
    assert X[2, 64:].tolist() == [0.0, -LIMIT, LIMIT, 0.0, 7.0]
    assert X[0, :64].sum() > 0 and np.isnan(X[1]).all()


@pytest.mark.parametrize("counts", [True, False])
def test_features_are_rdkits_own_fingerprints_and_descriptors(counts: bool) -> None:
    """The sparse rows the scorer predicts from hold exactly RDKit's dense fingerprint arrays
    and descriptor values (read here through RDKit's own NumPy and descriptor functions)."""
    from rdkit.Chem import Descriptors, rdFingerprintGenerator

    from stillroom_molecules.chem import to_mols
    from stillroom_molecules.featurize import SCREENING_DESCRIPTORS, feature_rows

    mols = [m for m in to_mols(embedded.nci_pool().frame["smiles"].head(500).tolist()) if m is not None]
    cfg = FeaturizerConfig(n_bits=1024, counts=counts, descriptors="screening", cache=False)
    rows = feature_rows(mols, cfg)
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    as_numpy = gen.GetCountFingerprintAsNumPy if counts else gen.GetFingerprintAsNumPy
    reference = np.array(
        [np.concatenate([as_numpy(m), [getattr(Descriptors, d)(m) for d in SCREENING_DESCRIPTORS]]) for m in mols],
        dtype=np.float32,
    )
    assert rows.shape == reference.shape and rows.has_sorted_indices
    assert np.array_equal(rows.toarray(), reference)
    assert rows.nnz < 0.1 * reference.size  # a molecule sets a few dozen positions


def _same(a, b) -> bool:
    """Two CSR feature matrices hold the same values (NaN rows included)."""
    return a.shape == b.shape and np.array_equal(a.toarray(), b.toarray(), equal_nan=True)


def test_cache_and_processes_give_identical_features(tmp_path: Path, smiles: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = FeaturizerConfig(n_bits=512, descriptors="screening")
    first = Featurizer(cfg, cache_dir=tmp_path).transform(smiles + ["nonsense("])
    files = list((tmp_path / "features").glob("*.npz"))
    assert len(files) == 1 and np.isnan(first[-1].toarray()).all()
    again = Featurizer(FeaturizerConfig(n_bits=512, descriptors="screening", n_jobs=2), cache_dir=tmp_path).transform(
        smiles + ["nonsense("]
    )
    assert _same(first, again)
    # two processes, no cache: the same numbers as one process
    import stillroom_molecules.featurize as fz

    monkeypatch.setattr(fz, "PARALLEL_MIN_ROWS", 10)
    parallel = Featurizer(FeaturizerConfig(n_bits=512, descriptors="screening", n_jobs=2, cache=False)).transform(smiles)
    assert _same(parallel, featurize_block(smiles, FeaturizerConfig(n_bits=512, descriptors="screening")))
    files[0].write_bytes(b"corrupted")  # a corrupted entry is recomputed, never trusted
    fz._ROWS.clear()
    assert _same(Featurizer(cfg, cache_dir=tmp_path).transform(smiles + ["nonsense("]), first)


def test_in_memory_rows_are_bounded_in_bytes(tmp_path: Path, smiles: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-process row cache holds a byte budget of stored entries: it keeps the newest
    rows that fit, so rows with more entries (descriptors, longer fingerprints) keep fewer."""
    import stillroom_molecules.featurize as fz

    monkeypatch.setattr(fz, "_ROWS", {})
    monkeypatch.setattr(fz, "_CACHE_BYTES", 8 * 400)  # 400 stored entries (int32 position, float32 value)
    batch = list(dict.fromkeys(smiles))[:30]
    kept_by = {}
    for descriptors in ("none", "screening", "all"):
        featurizer = Featurizer(FeaturizerConfig(n_bits=1024, descriptors=descriptors), cache_dir=tmp_path)
        expected = featurize_block(batch, featurizer.config)
        assert _same(featurizer.transform(batch), expected)
        cache = fz._ROWS[featurizer.identity()]
        sizes = 8 * np.diff(expected.indptr)
        fits = int((np.cumsum(sizes[::-1]) <= fz._CACHE_BYTES).sum())  # newest rows first
        assert list(cache.entries) == batch[len(batch) - max(fits, 1) :]
        assert cache.nbytes == sizes[len(batch) - max(fits, 1) :].sum()
        kept_by[descriptors] = len(cache.entries)
    assert kept_by["none"] > kept_by["screening"] > kept_by["all"] >= 1


def test_featurizer_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown featurizer field 'bits'"):
        FeaturizerConfig.from_params({"bits": 3})
    with pytest.raises(ConfigError, match="unknown RDKit descriptor"):
        FeaturizerConfig.from_params({"descriptors": ["NotADescriptor"]})


EDGE_CASES = [
    "[H]C([H])([H])O",  # explicit hydrogens: only MolFromSmiles removes them
    "[2H]C([2H])([2H])O",
    "C1=CC=CC=C1",  # Kekulé benzene: aromaticity is perceived either way
    "C[C@H](N)C(=O)O",
    "F/C=C/F",
    "[NH4+].[Cl-]",
    "CC(=O)[O-].[Na+]",
    "c1cc[nH]c1",
    "C(C)(C)(C)(C)C",  # pentavalent carbon: invalid on both paths
    "c1ccccc1(",
]


def test_parsing_without_stereo_perception_changes_no_feature_that_skips_it() -> None:
    """Fingerprints and the ``fast`` descriptors skip stereo perception (a quarter of the
    parse); their values must equal those of the full parse, on real raw SMILES with salts,
    charges, stereo. Descriptors that read stereo keep it."""
    from stillroom_molecules.chem import standardised_mol
    from stillroom_molecules.featurize import feature_rows

    raw = [line.split()[0] for line in embedded.nci_pool_path().read_text().splitlines()[:1500] if line.strip()]
    raw += EDGE_CASES
    full = [standardised_mol(s)[0] for s in raw]
    fast = [standardised_mol(s, stereo=False)[0] for s in raw]
    assert [m is None for m in fast] == [m is None for m in full]
    assert sum(m is None for m in full) >= 2
    for counts, descriptors in ((True, "none"), (False, "none"), (True, "fast")):
        cfg = FeaturizerConfig(n_bits=1024, counts=counts, descriptors=descriptors, cache=False)
        assert not cfg.needs_stereo()
        assert _same(feature_rows(full, cfg), feature_rows(fast, cfg))
    assert FeaturizerConfig(descriptors="screening").needs_stereo()
    # the comparison sees a descriptor that reads stereo: SPS of a macrolide with E/Z bonds and
    # stereocentres (from the Lipophilicity set) differs without perception, so SPS keeps it
    macrolide = "COc1cc(O)c2C(=O)O[C@@H](C)C\\C=C/C(=O)[C@@H](O)[C@@H](O)C\\C=C\\c2c1"
    sps = FeaturizerConfig(n_bits=16, descriptors=("SPS",), cache=False)
    with_stereo, without = (feature_rows([standardised_mol(macrolide, stereo=s)[0]], sps).toarray() for s in (True, False))
    assert with_stereo[0, -1] != without[0, -1] and sps.needs_stereo()
    explicit_h = fast[raw.index("[H]C([H])([H])O")]
    assert explicit_h.GetNumAtoms() == 2  # the hydrogens were removed, as MolFromSmiles does
