"""The molecules evaluator: applicability domain, enrichment, task metrics per endpoint.

Adds to the core's generic metrics what a medicinal-chemistry reviewer asks for: where the
student can be trusted (max Tanimoto to its training molecules, coverage, metrics inside vs
outside the domain), how it screens (enrichment factor at the top 1%), RMSE/MAE/R2/Spearman
or ROC-AUC/PR-AUC/MCC per endpoint and role, fidelity to the teacher inside vs outside the
domain, and the split the numbers were measured on (scaffold or random).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from stillroom.context import EvaluationContext, EvaluationResult

from .loaders import SMILES
from .metrics import AD_METHOD, enrichment_factor, fidelity, max_similarity, task_metrics

ROLES = ("teacher", "student", "baseline")


def _columns(values: np.ndarray, task_type: str) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    return values


def _truth(ctx: EvaluationContext, task_type: str) -> np.ndarray:
    y = np.asarray(ctx.y_true, dtype=float)
    if task_type == "multiclass":
        return y[:, None]
    return y[:, None] if y.ndim == 1 else y


def _actives(y: np.ndarray, task_type: str, settings: Any) -> np.ndarray:
    if task_type != "regression":
        return y == 1
    finite = y[np.isfinite(y)]
    if settings.higher_is_better:
        return y >= np.quantile(finite, settings.active_quantile)
    return y <= np.quantile(finite, 1 - settings.active_quantile)


def evaluate_molecules(ctx: EvaluationContext) -> EvaluationResult:
    settings = ctx.config.molecules
    bundle = ctx.bundle
    task_type = bundle.details.get("task_type", "regression")
    targets = bundle.details.get("targets", [bundle.label])
    result = EvaluationResult()
    y = _truth(ctx, task_type)
    preds = {role: _columns(p, task_type) for role, p in ctx.predictions.items()}
    reference = list(bundle.train[SMILES]) + (list(bundle.unlabelled[SMILES]) if bundle.unlabelled is not None else [])
    similarity = max_similarity(ctx.frame[SMILES].tolist(), reference)
    inside = similarity >= settings.ad_threshold
    m = result.metrics
    m["ad.coverage"] = float(inside.mean())
    m["ad.threshold"] = float(settings.ad_threshold)
    m["ad.median_max_similarity"] = float(np.median(similarity))
    m["split.scaffold"] = float(bundle.details.get("split") == "scaffold")
    rows = []
    outputs = range(1 if task_type == "multiclass" else y.shape[1])
    for j in outputs:
        suffix = "" if len(targets) == 1 else f".{targets[j]}"
        yj = y[:, j]
        for role, p in preds.items():
            pj = p[:, 1] if task_type == "multiclass" and p.shape[1] == 2 else p[:, min(j, p.shape[1] - 1)]
            if task_type == "multiclass":
                continue
            for region, mask in (("all", np.ones_like(inside)), ("inside", inside), ("outside", ~inside)):
                for name, value in task_metrics(task_type, yj[mask], pj[mask]).items():
                    key = f"{role}.{name}{suffix}" if region == "all" else f"ad.{region}.{role}.{name}{suffix}"
                    m[f"molecules.{key}" if region == "all" else key] = value
                    rows.append({"output": targets[j], "role": role, "region": region, "metric": name, "value": value})
            ok = np.isfinite(yj)
            m[f"{role}.ef_{_pct(settings.enrichment_fraction)}{suffix}"] = enrichment_factor(
                _actives(yj[ok], task_type, settings),
                pj[ok] if settings.higher_is_better or task_type != "regression" else -pj[ok],
                settings.enrichment_fraction,
            )
        if "teacher" in preds and task_type != "multiclass":
            t = preds["teacher"][:, j]
            for role in ("student", "baseline"):
                if role not in preds:
                    continue
                prefix = "molecules.fidelity" if role == "student" else "molecules.fidelity.baseline"
                for region, mask in (("all", np.ones_like(inside)), ("inside", inside), ("outside", ~inside)):
                    for name, value in fidelity(task_type, t[mask], preds[role][:, j][mask]).items() if mask.sum() > 2 else []:
                        key = (
                            f"{prefix}.{name}{suffix}"
                            if region == "all"
                            else f"ad.{region}.{prefix.removeprefix('molecules.')}.{name}{suffix}"
                        )
                        m[key] = value
    result.tables["applicability_domain"] = pd.DataFrame(rows)
    if ctx.artifact_dir is not None:
        out = ctx.artifact_dir / "molecules"
        out.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({SMILES: ctx.frame[SMILES], "max_tanimoto_to_training": similarity, "inside_domain": inside}).to_csv(
            out / "applicability_domain.csv", index=False
        )
        (out / "data_quality.json").write_text(json.dumps(bundle.details, indent=2, default=str))
        (out / "ad_method.json").write_text(json.dumps({"method": AD_METHOD, "threshold": settings.ad_threshold}, indent=2))
        result.artifacts += ["molecules/applicability_domain.csv", "molecules/data_quality.json", "molecules/ad_method.json"]
    return result


def _pct(fraction: float) -> str:
    return f"{fraction * 100:g}pct".replace(".", "_")
