"""Domain metrics for molecule models: applicability domain, enrichment, task metrics.

* Applicability domain (AD): a model is trusted where a molecule resembles what it was trained
  on. The measure is the maximum Tanimoto similarity (Morgan radius-2 bit fingerprints,
  2048 bits) of a molecule to the training molecules; at or above the threshold it is inside
  the domain. Reported: coverage (share inside) and every metric inside vs outside.
* Enrichment factor at x% (screening): the hit rate among the top-x% ranked molecules over
  the hit rate of the whole library. For regression, "hits" are molecules whose true value
  is beyond a quantile (screening direction configurable).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rdkit import DataStructs
from rdkit.Chem import rdFingerprintGenerator
from scipy.stats import spearmanr
from sklearn.metrics import (
    average_precision_score,
    matthews_corrcoef,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)

from .chem import to_mols

SCREENING_FRACTION = 0.01

AD_METHOD = "max Tanimoto similarity to the training molecules (Morgan r=2, 2048 bits)"


def bit_fingerprints(smiles: Sequence[str]) -> list[DataStructs.ExplicitBitVect]:
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    return [gen.GetFingerprint(m) for m in to_mols(smiles, stereo=False) if m is not None]  # Morgan ignores stereo


def max_similarity(query: Sequence[str], reference: Sequence[str]) -> np.ndarray:
    """For each query molecule, its highest Tanimoto similarity to any reference molecule."""
    ref = bit_fingerprints(reference)
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    out = np.zeros(len(query))
    for i, mol in enumerate(to_mols(query, stereo=False)):
        if mol is not None and ref:
            out[i] = max(DataStructs.BulkTanimotoSimilarity(gen.GetFingerprint(mol), ref))
    return out


def enrichment_fractions(configured: float) -> tuple[float, ...]:
    """The screened fractions a run reports: 1% always (the screening figure every molecules run
    owes its compliance profile, comparable across runs), and the configured one if it differs
    (a team screening its top 5% reads that too)."""
    return tuple(dict.fromkeys((SCREENING_FRACTION, configured)))


def enrichment_name(fraction: float) -> str:
    """The enrichment factor's metric name at a screened fraction: ``ef_1pct`` for 0.01."""
    return f"ef_{fraction * 100:g}pct".replace(".", "_")


def enrichment_factor(y_active: np.ndarray, score: np.ndarray, fraction: float) -> float:
    """(hits in the top ``fraction`` by score / screened) / (hits / library); NaN without hits."""
    y_active = np.asarray(y_active, dtype=bool)
    n = len(score)
    if n == 0 or not y_active.any():
        return float("nan")
    k = max(1, int(np.ceil(fraction * n)))
    top = np.argsort(-np.asarray(score), kind="stable")[:k]
    return float(y_active[top].mean() / y_active.mean())


def regression_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    ok = np.isfinite(y) & np.isfinite(p)
    y, p = y[ok], p[ok]
    if len(y) < 2:
        return {}
    return {
        "rmse": float(np.sqrt(mean_squared_error(y, p))),
        "mae": float(mean_absolute_error(y, p)),
        "r2": float(r2_score(y, p)),
        "spearman": float(spearmanr(y, p).statistic),
    }


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    ok = np.isfinite(y) & np.isfinite(p)
    y, p = y[ok].astype(int), p[ok]
    if len(np.unique(y)) < 2:
        return {}
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "mcc": float(matthews_corrcoef(y, (p >= threshold).astype(int))),
    }


def task_metrics(task_type: str, y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Metrics per output: regression RMSE/MAE/R2/Spearman, classification ROC-AUC/PR-AUC/MCC."""
    return regression_metrics(y, p) if task_type == "regression" else classification_metrics(y, p)


def fidelity(task_type: str, teacher: np.ndarray, student: np.ndarray) -> dict[str, float]:
    """Regression: R2 and Spearman to the teacher; classification: ROC-AUC against the
    teacher's calls (teacher p >= 0.5) and agreement of the calls."""
    ok = np.isfinite(teacher) & np.isfinite(student)
    t, s = teacher[ok], student[ok]
    if task_type == "regression":
        return {"r2_to_teacher": float(r2_score(t, s)), "spearman_to_teacher": float(spearmanr(t, s).statistic)}
    calls = (t >= 0.5).astype(int)
    out = {"agreement": float(np.mean(calls == (s >= 0.5)))}
    if len(np.unique(calls)) == 2:
        out["auc_to_teacher_calls"] = float(roc_auc_score(calls, s))
    return out
