"""The descriptor-ensemble teacher is cached under the core's teacher key: another target column
trains a new teacher, the same settings reuse it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from stillroom.cache import use_cache_dir
from stillroom.contract import DataBundle
from stillroom_molecules import embedded
from stillroom_molecules.teacher import train_descriptor_teacher

TINY = {"boosters": 1, "n_estimators": 10, "forest_trees": 0, "descriptors": "none", "n_bits": 256, "n_jobs": 1}


def _bundle(frame: pd.DataFrame, label: str) -> DataBundle:
    parts = frame.iloc[:60], frame.iloc[60:80], frame.iloc[80:100]
    details = {"task_type": "regression", "targets": [label]}
    return DataBundle(
        *(p.reset_index(drop=True) for p in parts),
        features=["smiles"],
        label=label,
        task_type="regression",
        opaque_features=["smiles"],
        details=details,
    )


def test_another_target_column_trains_a_new_teacher(tmp_path: Path) -> None:
    train, _ = embedded.solubility()
    frame = train.frame.iloc[:100].assign(NEG=lambda f: -f["SOL"])
    with use_cache_dir(tmp_path):
        first = train_descriptor_teacher(TINY, _bundle(frame, "SOL"), 0)
        again = train_descriptor_teacher(TINY, _bundle(frame, "SOL"), 0)
        other = train_descriptor_teacher(TINY, _bundle(frame, "NEG"), 0)
    assert again.identity == first.identity != other.identity
    assert len(list((tmp_path / "teachers").glob("model-*.joblib"))) == 2
    # the new teacher learned the other target: its predictions are of the opposite sign
    rows = frame.iloc[80:100][["smiles"]]
    assert (first.predict(rows)[:, 0] * other.predict(rows)[:, 0] < 0).mean() > 0.8
