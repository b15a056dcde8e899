"""The descriptor-ensemble teacher, made fast: one multi-output forest where labels allow it,
saved without pickle (LightGBM text + skops) and read back to the same numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stillroom_molecules import embedded
from stillroom_molecules.featurize import Featurizer, FeaturizerConfig
from stillroom_molecules.teacher import DEFAULTS, DescriptorEnsemble, SavedEnsemble

LIGHT = DEFAULTS | {"n_estimators": 20, "forest_trees": 10, "descriptors": "fast", "n_jobs": 1}


def _data(rows: int = 120) -> tuple[list[str], np.ndarray, np.ndarray]:
    smiles = embedded.nci_pool().frame["smiles"].tolist()[:rows]
    X = Featurizer(FeaturizerConfig(descriptors="fast")).transform(smiles, use_cache=False).toarray()
    size = np.array([len(s) for s in smiles], dtype=float)
    Y = np.column_stack([0.1 * size, -0.05 * size + np.sin(size), (size > np.median(size)).astype(float)])
    return smiles, X, Y


def test_complete_labels_give_one_multi_output_forest() -> None:
    _, X, Y = _data()
    model = DescriptorEnsemble(LIGHT, "regression", 0).fit(X, Y[:, :2])
    assert [cols for _, cols in model.forests] == [[0, 1]]  # one forest for both outputs
    pred = model.predict(X)
    assert pred.shape == (len(X), 2)
    assert np.corrcoef(pred[:, 0], Y[:, 0])[0, 1] > 0.9


def test_missing_labels_give_a_forest_per_output() -> None:
    _, X, Y = _data()
    Y = Y[:, :2].copy()
    Y[::3, 1] = np.nan
    model = DescriptorEnsemble(LIGHT, "regression", 0).fit(X, Y)
    assert [cols for _, cols in model.forests] == [[0], [1]]
    assert np.isfinite(model.predict(X)).all()


def test_saved_files_predict_the_same_smiles_without_pickle(tmp_path: Path) -> None:
    smiles, X, Y = _data()
    model = DescriptorEnsemble(LIGHT, "mixed", 0, ["regression", "regression", "binary"]).fit(X, Y)
    config = FeaturizerConfig(descriptors="fast")
    model.save(tmp_path, ["a", "b", "active"], config)
    assert not any(p.suffix in (".pkl", ".joblib") for p in tmp_path.iterdir())
    saved = SavedEnsemble.load(tmp_path)
    out = saved.frame([*smiles[:5], "not a smiles"])
    assert list(out.columns) == ["a", "b", "active", "smiles_valid"]
    assert out["smiles_valid"].tolist() == [True] * 5 + [False]
    np.testing.assert_allclose(out.iloc[:5, :3].to_numpy(), model.predict(X[:5]), rtol=1e-6)
    assert ((out["active"].iloc[:5] >= 0) & (out["active"].iloc[:5] <= 1)).all()
    assert pd.isna(out.iloc[5, :3]).all()
