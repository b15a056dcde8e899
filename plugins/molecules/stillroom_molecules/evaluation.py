"""The molecules evaluator: applicability domain, enrichment, task metrics per endpoint.

Adds to the core's generic metrics what a medicinal-chemistry reviewer asks for: where the
student can be trusted (max Tanimoto to its training molecules, coverage, metrics inside vs
outside the domain), how it screens (enrichment factor at the top 1%), RMSE/MAE/R2/Spearman
or ROC-AUC/PR-AUC/MCC per endpoint and role, fidelity to the teacher inside vs outside the
domain, and the split the numbers were measured on (scaffold or random).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from stillroom.contract import EvaluationContext, EvaluationResult, OperatingPointRecord, metric_key, output_kinds

from .conformal import coverage_and_width
from .loaders import SMILES
from .metrics import AD_METHOD, enrichment_factor, enrichment_fractions, enrichment_name, fidelity, max_similarity, task_metrics


def _actives(y: np.ndarray, kind: str, settings: Any) -> np.ndarray:
    if kind != "regression":
        return y == 1
    finite = y[np.isfinite(y)]
    if settings.higher_is_better:
        return y >= np.quantile(finite, settings.active_quantile)
    return y <= np.quantile(finite, 1 - settings.active_quantile)


def evaluate_molecules(ctx: EvaluationContext) -> EvaluationResult:
    settings = ctx.config.molecules
    bundle = ctx.bundle
    task_type = bundle.task_type
    result = EvaluationResult()
    reference = list(bundle.train[SMILES]) + (list(bundle.unlabelled[SMILES]) if bundle.unlabelled is not None else [])
    similarity = max_similarity(ctx.frame[SMILES].tolist(), reference)
    inside = similarity >= settings.ad_threshold
    m = result.metrics
    _ship_run_settings(ctx)
    m["ad.coverage"] = float(inside.mean())
    m["ad.threshold"] = float(settings.ad_threshold)
    m["ad.median_max_similarity"] = float(np.median(similarity))
    m["split.scaffold"] = float(bundle.details.get("split") == "scaffold")
    rows: list[dict[str, Any]] = []
    if task_type != "multiclass":  # per-endpoint domain metrics; multiclass gets the core's generic ones
        y, preds = _truth(ctx), {role: _columns(p) for role, p in ctx.predictions.items()}
        kinds = output_kinds(task_type, y.shape[1], bundle.output_types)
        for j, name in enumerate(bundle.output_names):
            suffix = "" if y.shape[1] == 1 else f".{metric_key(name)}"
            column = {r: p[:, j] for r, p in preds.items()}
            rows += _endpoint_metrics(m, kinds[j], y[:, j], column, list(ctx.judged), inside, suffix, name, settings)
        if y.shape[1] > 1:
            m.update(
                _mean_enrichment(m, list(ctx.judged), [metric_key(n) for n in bundle.output_names], settings.enrichment_fraction)
            )
        result.add_operating_point(_screening_point(settings, kinds, bundle.output_names))
        if "binary" in kinds:  # MCC: the calls at p >= 0.5, whatever evaluation.operating_point says
            binary = [n for n, k in zip(bundle.output_names, kinds, strict=True) if k == "binary"]
            names = ["mcc"] if y.shape[1] == 1 else [f"mcc.{metric_key(n)}" for n in binary]
            result.add_operating_point(OperatingPointRecord("molecules.calls", "probability >= 0.5 for every model", names))
    result.tables["applicability_domain"] = pd.DataFrame(rows)
    m.update(conformal_metrics(ctx, inside))
    selection = student_selection(ctx)
    if not selection.empty:
        result.tables["student_selection"] = selection
    if ctx.artifact_dir is not None:
        result.artifacts += _write_artifacts(ctx, similarity, inside)
        result.artifacts += _write_selection(ctx, selection)
    m.update(analogue_metrics(bundle.details.get("analogues")))
    return result


def analogue_metrics(report: dict[str, Any] | None) -> dict[str, float]:
    """The analogue part of the transfer set: accepted per method, rejected per reason
    (``transfer.analogues.rejected.below_the_band`` ...); the whole report is in the lineage
    (``molecules/data_quality.json``, key ``analogues``)."""
    if not report:
        return {}
    out = {"transfer.analogues.accepted": float(report["accepted"])}
    out |= {f"transfer.analogues.accepted.{k}": float(v) for k, v in report["accepted_by_method"].items()}
    out |= {f"transfer.analogues.rejected.{k.replace(' ', '_')}": float(v) for k, v in report["rejected_by_reason"].items()}
    return out


def conformal_metrics(ctx: EvaluationContext, inside: np.ndarray) -> dict[str, float]:
    """Coverage and mean width (interval length, or set size) of each calibrated student's
    conformal intervals / sets on test, overall and inside vs outside the applicability domain:
    ``conformal.<role>.coverage[.<output>]``, ``ad.inside.conformal.<role>.width`` ..., the
    nominal ``conformal.level`` and the molecules behind each figure (``n_calibration``,
    ``n_test``): at 100 calibration molecules an exact method's coverage spreads over several
    points, so a reader needs the counts to judge a coverage. The guarantee is over molecules like the calibration split;
    outside the domain is where it is most likely not to hold, so it is reported there apart."""
    out: dict[str, float] = {}
    task_type = ctx.bundle.task_type
    for role, model in ctx.models.items():
        calibration = getattr(getattr(model, "scorer", None), "conformal", None)
        if not calibration:
            continue
        out["conformal.level"] = float(calibration["level"])
        q = [float(v) for v in calibration["quantiles"]]
        p = np.asarray(ctx.predictions[role], dtype=float)
        y = np.asarray(ctx.y_true, dtype=float)
        regions = {"": np.ones(len(inside), dtype=bool), "ad.inside.": inside, "ad.outside.": ~inside}
        if task_type == "multiclass":
            columns = [("multiclass", y.ravel(), p, q[0], "")]
        else:
            y, p = _columns(y), _columns(p)
            kinds = output_kinds(task_type, y.shape[1], ctx.bundle.output_types)
            names = ctx.bundle.output_names
            columns = [
                (kinds[j], y[:, j], p[:, j], q[j], "" if y.shape[1] == 1 else f".{metric_key(names[j])}")
                for j in range(y.shape[1])
            ]
        n_calibration = calibration.get("n_calibration") or [math.nan] * len(columns)
        for (kind, yj, pj, qj, suffix), n_cal in zip(columns, n_calibration, strict=True):
            out[f"conformal.{role}.n_calibration{suffix}"] = float(n_cal)
            for prefix, mask in regions.items():
                measured = coverage_and_width(kind, yj[mask], pj[mask], qj)
                for key in ("coverage", "width", "singleton", "n"):
                    if key in measured:
                        out[f"{prefix}conformal.{role}.{'n_test' if key == 'n' else key}{suffix}"] = measured[key]
        if task_type != "multiclass" and len(columns) > 1:  # the macro mean under the unsuffixed name
            for key in ("coverage", "width"):
                values = [out.get(f"conformal.{role}.{key}{c[4]}", np.nan) for c in columns]
                out[f"conformal.{role}.{key}"] = float(np.nanmean(values))
    return out


def student_selection(ctx: EvaluationContext) -> pd.DataFrame:
    """The candidates each role chose among (``molecules.auto``): settings, validation fidelity,
    size, latency, budget, choice."""
    rows = [
        {"role": role, **c, "params": json.dumps(c["params"], sort_keys=True)}
        for role, model in ctx.models.items()
        for c in getattr(model, "selection", [])
    ]
    return pd.DataFrame(rows)


def _write_selection(ctx: EvaluationContext, selection: pd.DataFrame) -> list[str]:
    if selection.empty or ctx.artifact_dir is None:
        return []
    out = ctx.artifact_dir / "molecules"
    out.mkdir(parents=True, exist_ok=True)
    # only the roles that chose (the baseline is the student's choice trained on labels: no choice of its own)
    record = {role: chosen for role, model in ctx.models.items() if (chosen := getattr(model, "selection", []))}
    (out / "student_selection.json").write_text(json.dumps(record, indent=2, default=str))
    return ["molecules/student_selection.json"]


def _screening_point(settings: Any, kinds: tuple[str, ...], outputs: list[str]) -> OperatingPointRecord:
    """Where the enrichment factors hold, with what the scores mean (endpoint and units): the top
    fraction of test molecules by predicted value (or probability), actives by the rule below."""
    fractions = enrichment_fractions(settings.enrichment_fraction)
    top = " and ".join(f"{f:.0%}" for f in fractions)
    direction = "highest" if settings.higher_is_better else "lowest"
    actives = []
    if "regression" in kinds:
        side = "above" if settings.higher_is_better else "below"
        actives.append(f"value outputs: measured {side} the test split's {settings.active_quantile:.0%} quantile")
    if "binary" in kinds:
        actives.append("yes/no outputs: label 1")
    rule = (
        f"the top {top} of test molecules by predicted {settings.endpoint} ({settings.units}), {direction} first; "
        f"actives: {'; '.join(actives)}"
    )
    names = [enrichment_name(f) for f in fractions]
    if len(outputs) > 1:
        names += [f"{n}.{o}" for n in names for o in outputs]
    return OperatingPointRecord("molecules.enrichment", rule, names)


def _ship_run_settings(ctx: EvaluationContext) -> None:
    """The trained students learn the run's domain threshold and SMILES column, which they ship:
    a scored molecule is flagged ``in_domain`` by the threshold this run's coverage used."""
    for model in ctx.models.values():
        ship = getattr(model, "ship_run_settings", None)
        if ship is not None:
            ship(ctx.config.molecules.ad_threshold, getattr(ctx.config.data, "smiles_column", None))


def _mean_enrichment(m: dict[str, float], roles: list[str], outputs: list[str], configured: float) -> dict[str, float]:
    """Each role's enrichment factors averaged over the endpoints (``<role>.ef_1pct``, as the
    compliance profile asks of every run), beside the per-endpoint values: the unsuffixed name
    is the macro mean on a panel, as the core's RMSE or ROC-AUC are."""
    keys = [enrichment_name(f) for f in enrichment_fractions(configured)]
    return {f"{role}.{key}": float(np.nanmean([m[f"{role}.{key}.{name}"] for name in outputs])) for role in roles for key in keys}


def _columns(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[:, None] if values.ndim == 1 else values


def _truth(ctx: EvaluationContext) -> np.ndarray:
    return _columns(np.asarray(ctx.y_true, dtype=float))


def _endpoint_metrics(
    m: dict[str, float],
    kind: str,
    y: np.ndarray,
    preds: dict[str, np.ndarray],
    judged: list[str],
    inside: np.ndarray,
    suffix: str,
    name: str,
    settings: Any,
) -> list[dict[str, Any]]:
    """Inside vs outside the domain for every role, enrichment, and the metrics the core's
    generic evaluator does not compute (MCC; fidelity as ROC-AUC against the teacher's calls).
    ``kind``: the endpoint's, ``regression`` or ``binary``; ``judged``: the roles measured
    against ``y`` (not the teacher when ``y`` is its own calls)."""
    rows = []
    regions = {"inside": inside, "outside": ~inside}
    for role in judged:
        p = preds[role]
        all_rows = task_metrics(kind, y, p)
        if "mcc" in all_rows:
            m[f"{role}.mcc{suffix}"] = all_rows["mcc"]
        rows += [{"output": name, "role": role, "region": "all", "metric": k, "value": v} for k, v in all_rows.items()]
        for region, mask in regions.items():
            for metric, value in task_metrics(kind, y[mask], p[mask]).items():
                m[f"ad.{region}.{role}.{metric}{suffix}"] = value
                rows.append({"output": name, "role": role, "region": region, "metric": metric, "value": value})
        ok = np.isfinite(y)
        direction = 1.0 if settings.higher_is_better or kind != "regression" else -1.0
        actives = _actives(y[ok], kind, settings)
        for fraction in enrichment_fractions(settings.enrichment_fraction):
            m[f"{role}.{enrichment_name(fraction)}{suffix}"] = enrichment_factor(actives, direction * p[ok], fraction)
    if "teacher" in preds:
        for role, prefix in (("student", "fidelity"), ("baseline", "baseline_fidelity")):
            if role not in preds:
                continue
            for region, mask in {"all": np.ones_like(inside), **regions}.items():
                if mask.sum() < 3:
                    continue
                for metric, value in fidelity(kind, preds["teacher"][mask], preds[role][mask]).items():
                    if region == "all" and kind == "regression":
                        continue  # the core's generic evaluator reports R2 / Spearman to the teacher
                    key = f"{prefix}.{metric}{suffix}" if region == "all" else f"ad.{region}.{prefix}.{metric}{suffix}"
                    m[key] = value
    return rows


def _write_artifacts(ctx: EvaluationContext, similarity: np.ndarray, inside: np.ndarray) -> list[str]:
    out = ctx.artifact_dir / "molecules"
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({SMILES: ctx.frame[SMILES], "max_tanimoto_to_training": similarity, "inside_domain": inside}).to_csv(
        out / "applicability_domain.csv", index=False
    )
    (out / "data_quality.json").write_text(json.dumps(ctx.bundle.details, indent=2, default=str))
    method = {"method": AD_METHOD, "threshold": ctx.config.molecules.ad_threshold}
    (out / "ad_method.json").write_text(json.dumps(method, indent=2))
    return ["molecules/applicability_domain.csv", "molecules/data_quality.json", "molecules/ad_method.json"]
