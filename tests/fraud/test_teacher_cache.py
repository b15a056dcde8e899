"""The fraud ensemble teacher is cached under the core's teacher key: another label or feature
list trains a new teacher instead of reusing one trained on something else."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from stillroom.cache import use_cache_dir
from stillroom.contract import DataBundle
from stillroom_fraud.teacher import train_ensemble_teacher

SMALL = {"members": ["random_forest", "logistic"], "n_trees": 5, "n_jobs": 1}


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["amount", "velocity", "risk"])
    return frame.assign(TX_FRAUD=(frame["amount"] > 0.5).astype(int), OTHER=(frame["risk"] < 0).astype(int))


def test_another_label_or_feature_list_trains_a_new_teacher(tmp_path: Path) -> None:
    bundle = DataBundle(_frame(120, 0), _frame(40, 1), _frame(40, 2), features=["amount", "velocity", "risk"], label="TX_FRAUD")
    models = tmp_path / "teachers"
    with use_cache_dir(tmp_path):
        first = train_ensemble_teacher(SMALL, bundle, 0)
        again = train_ensemble_teacher(SMALL, bundle, 0)
        assert again.describe().details["identity"] == first.describe().details["identity"]
        assert len(list(models.glob("model-*.joblib"))) == 1  # the second was taken from the cache
        relabelled = train_ensemble_teacher(SMALL, replace(bundle, label="OTHER"), 0)
        fewer = train_ensemble_teacher(SMALL, replace(bundle, features=["amount", "velocity"]), 0)
    keys = {t.describe().details["identity"] for t in (first, relabelled, fewer)}
    assert len(keys) == 3 and len(list(models.glob("model-*.joblib"))) == 3
    # the relabelled teacher learned the other label: it ranks OTHER, which the first one cannot
    test = bundle.test
    assert _auc(test["OTHER"], relabelled.predict(bundle.X(test))) > 0.8 > _auc(test["OTHER"], first.predict(bundle.X(test)))


def _auc(y: pd.Series, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))
