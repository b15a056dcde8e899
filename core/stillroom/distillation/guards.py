"""Data guards: what is wrong with the data itself, found at load, before the teacher trains.

A run on a leaked column scores 1.000 for teacher, student and baseline alike and passes every
gate; a stray label turns a binary task into a 3-class one; conflicting duplicates are
resolved silently. None of that is a model problem, and none of it can be seen in the
verdicts afterwards, so the data is checked once the dataset hook returned its bundle:

* ``single_feature``: one input column alone separates the training labels (univariate ROC-AUC,
  or |Spearman| for values, at least ``single_feature_auc``; :mod:`stillroom.tasks.separation`);
* ``id_like``: an input column of unique or strictly monotonic integers, or named like an id;
* ``labels``: a class of the training labels that neither validation nor test holds;
* ``conflicting_duplicates``: the same inputs with different labels (numeric inputs here; a
  vertical whose inputs are domain objects merges them in its loader and reports the counts in
  ``details["duplicates"]``);
* ``few_test_events``: the test split's rarest class (or value count) below ``evaluation.min_events``,
  the same threshold below which evaluation calls a metric not estimable (one setting, not two).

Each finding is an error or a warning as ``data.guards`` says; the record (findings, class
balance and events per split, duplicates) is printed, logged as ``data_quality.json`` and shown
in the model card and the report. Errors stop the run in one message, before any training.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..contract.bundle import DataBundle
from ..contract.config import GuardsConfig
from ..errors import DataError
from ..progress import console, step
from ..tasks.balance import label_counts, rarest_events
from ..tasks.kinds import has_class_labels
from ..tasks.separation import separation

MAX_ROWS = 200_000
"""Training rows a guard looks at (the first ones, in order, so monotonic ids still show): a
leak shows on far fewer."""
ID_NAME = re.compile(r"(?i:^id$|[_\-\s.]id$)|[a-z0-9]I[dD]$")
"""``id``, ``*_id``, ``*-id``, ``CustomerId``, ``TX_ID``; not ``valid`` or ``acid``."""


@dataclass
class Finding:
    """One thing a guard found: which guard, how serious (``error`` / ``warn``), what, where."""

    guard: str
    severity: str
    message: str
    column: str | None = None
    value: float | None = None


@dataclass
class DataQuality:
    """The data-quality record of a run: findings, class balance and events per split, duplicates."""

    findings: list[Finding] = field(default_factory=list)
    splits: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warn"]

    @property
    def status(self) -> str:
        return "error" if self.errors else ("warnings" if self.warnings else "clean")

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "findings": [asdict(f) for f in self.findings],
            "splits": self.splits,
            "duplicates": self.duplicates,
            "settings": self.settings,
        }

    def summary_lines(self) -> list[str]:
        """One line per finding (errors first), for the console, the card and the report."""
        return [f"{f.severity}: {f.message}" for f in sorted(self.findings, key=lambda f: f.severity != "error")]

    def raise_errors(self) -> None:
        """Stop the run when a guard set to ``error`` fired: one message naming every problem."""
        if self.errors:
            problems = "; ".join(f.message for f in self.errors)
            raise DataError(f"data guard(s) failed before any training: {problems}")


def check_data(bundle: DataBundle, guards: GuardsConfig, min_events: int = 30) -> DataQuality:
    """Run every guard on a validated bundle; findings get the severity the config gives them.

    ``min_events`` is ``evaluation.min_events``: a test split the guard calls too small is one
    whose thresholded metrics evaluation will call not estimable, so both read one setting."""
    quality = DataQuality(settings={**guards.model_dump(mode="json"), "min_events": min_events})
    quality.splits = _split_profile(bundle)
    labelled = bundle.reference == "labels"
    train = bundle.train.iloc[:MAX_ROWS]
    numeric = [c for c in bundle.features if c not in bundle.opaque_features]
    found: list[tuple[str, Finding]] = []
    for col in numeric:
        values = train[col].to_numpy(dtype=float)
        found += [("id_like", f) for f in _id_like(col, values)]
        if labelled:
            found += [("single_feature", f) for f in _single_feature(bundle, train, col, values, guards, _how_to_drop(bundle))]
    if labelled:
        found += [("labels", f) for f in _stray_classes(bundle)]
        dup, dup_findings = _duplicates(bundle, train, numeric)
        quality.duplicates = dup
        found += [("conflicting_duplicates", f) for f in dup_findings]
        found += [("few_test_events", f) for f in _few_events(quality.splits.get("test", {}), min_events)]
    for guard, finding in found:
        severity = getattr(guards, guard)
        if severity == "off":
            continue
        if finding.column is not None and finding.column in guards.accept:
            severity, finding.message = "warn", f"{finding.message} (accepted in data.guards.accept)"
        finding.severity = severity
        quality.findings.append(finding)
    return quality


def run_guards(bundle: DataBundle, cfg: Any) -> DataQuality:
    """The data guards of a run's config (``data.guards``), printed; a guard set to ``error``
    that fired stops the run here, before the teacher: nothing trained, nothing logged."""
    settings = getattr(cfg.data, "guards", None) or GuardsConfig()
    with step("data: guards (leaks, ids, stray labels, duplicates, events)"):
        quality = check_data(bundle, settings, cfg.evaluation.min_events)
    report(quality)
    quality.raise_errors()
    return quality


def report(quality: DataQuality) -> None:
    """Print the findings (the record itself goes to ``data_quality.json``)."""
    if not quality.findings:
        console.log("data guards: no finding")
        return
    console.log(f"data guards: {len(quality.errors)} error(s), {len(quality.warnings)} warning(s)")
    for line in quality.summary_lines():
        console.log(f"  {line}")


def _how_to_drop(bundle: DataBundle) -> str:
    if bundle.drop_setting:
        return f"leave it out of the model with {bundle.drop_setting}"
    return "leave it out of the model's input columns"


def _id_like(col: str, values: np.ndarray) -> list[Finding]:
    """Unique or strictly monotonic integers, or an integer column named like an id."""
    finite = values[np.isfinite(values)]
    if len(finite) < 20 or not np.all(finite == np.round(finite)):
        return []
    diffs = np.diff(finite)
    why = []
    if len(np.unique(finite)) == len(finite):
        why.append("every value unique")
    if (diffs > 0).all() or (diffs < 0).all():
        why.append("strictly monotonic in row order")
    if ID_NAME.search(col):
        why.append("named like an id")
    if not why:
        return []
    message = (
        f"input column {col!r} looks like an identifier ({', '.join(why)}): an id carries no signal that "
        "generalises and lets a model memorise rows; leave it out unless it is a genuine input"
    )
    return [Finding("id_like", "warn", message, col)]


def _single_feature(
    bundle: DataBundle, train: pd.DataFrame, col: str, values: np.ndarray, guards: GuardsConfig, how: str
) -> list[Finding]:
    """The column alone separates the training labels at least as well as ``single_feature_auc``."""
    sep = separation(bundle.task_type, values, bundle.y(train), bundle.labels, bundle.output_types)
    if not math.isfinite(sep.score) or sep.score < guards.single_feature_auc:
        return []
    message = (
        f"input column {col!r} alone separates the training labels ({sep.measure} {sep.score:.3f} for {sep.label!r}): "
        f"a label leak or a label-derived column; {how}, or, if it is a genuine input, list it under "
        "data.guards.accept (or set data.guards.single_feature: warn)"
    )
    return [Finding("single_feature", "error", message, col, round(sep.score, 6))]


def _stray_classes(bundle: DataBundle) -> list[Finding]:
    """Classes of the training labels that no held-out split holds: a stray label, not a class."""
    if not has_class_labels(bundle.task_type):
        return []
    held_out = set(np.unique(bundle.y(bundle.validation))) | set(np.unique(bundle.y(bundle.test)))
    train = bundle.y(bundle.train)
    out = []
    for cls in sorted(set(np.unique(train)) - held_out):
        n = int(np.sum(train == cls))
        names = bundle.class_names or []
        name = f" ({names[int(cls)]})" if 0 <= int(cls) < len(names) else ""
        message = (
            f"label {int(cls)}{name} of column {bundle.labels[0]!r} is in {n} training row(s) but in neither validation "
            f"nor test: a stray label, not a class the model can be judged on; fix or remove those rows, or declare the "
            "task's classes (data.task_type, data.class_names) and give every split examples of each"
        )
        out.append(Finding("labels", "error", message, bundle.labels[0], float(n)))
    return out


def _duplicates(bundle: DataBundle, train: pd.DataFrame, numeric: list[str]) -> tuple[dict[str, Any], list[Finding]]:
    """Rows with the same inputs and different labels: merged by the loader (its report), or
    found here among numeric inputs."""
    reported = dict(bundle.details.get("duplicates") or {})
    if reported:
        record = {"found_by": "loader", **reported}
        conflicting = int(reported.get("conflicting", 0))
        if not conflicting:
            return record, []
        message = (
            f"{conflicting} group(s) of duplicate inputs had conflicting labels; merged by the loader "
            f"({reported.get('rule', 'its rule')}), {int(reported.get('rows_merged', 0))} row(s) merged in all"
        )
        return record, [Finding("conflicting_duplicates", "warn", message, None, float(conflicting))]
    if bundle.opaque_features or not numeric:
        return {"found_by": "none: the inputs are domain objects the loader checks"}, []
    keys = pd.util.hash_pandas_object(train[numeric], index=False).to_numpy()
    labels = pd.util.hash_pandas_object(train[bundle.labels], index=False).to_numpy()
    table = pd.DataFrame({"key": keys, "label": labels})
    sizes = table.groupby("key")["label"].agg(["size", "nunique"])
    groups, conflicting = int((sizes["size"] > 1).sum()), int((sizes["nunique"] > 1).sum())
    record = {"found_by": "guards (training split, numeric inputs)", "groups": groups, "conflicting": conflicting}
    if not conflicting:
        return record, []
    rows = int(sizes.loc[sizes["nunique"] > 1, "size"].sum())
    message = (
        f"{conflicting} group(s) of training rows ({rows} rows) have identical inputs and different labels: "
        "the labels contradict each other; merge or remove them"
    )
    return record, [Finding("conflicting_duplicates", "warn", message, None, float(conflicting))]


def _split_profile(bundle: DataBundle) -> dict[str, dict[str, Any]]:
    """Rows, class balance (or value counts) and the rarest event of every labelled split."""
    out: dict[str, dict[str, Any]] = {}
    for name, frame in bundle.splits().items():
        entry: dict[str, Any] = {"rows": int(len(frame))}
        if name != "unlabelled" and bundle.reference == "labels":
            counts = label_counts(bundle.task_type, bundle.y(frame), bundle.labels, bundle.output_types)
            label, cls, n = rarest_events(counts)
            entry |= {"labels": counts, "rarest": {"label": label, "class": cls, "count": n}}
        out[name] = entry
    return out


def _few_events(test: dict[str, Any], minimum: int) -> list[Finding]:
    rarest = test.get("rarest")
    if not rarest or rarest["count"] >= minimum:
        return []
    what = "values" if rarest["class"] == "values" else f"rows of class {rarest['class']}"
    message = (
        f"the test split has {rarest['count']} {what} for {rarest['label']!r} (fewer than {minimum}): "
        "metrics at an operating point (sensitivity, alert overlap, enrichment) are not estimable on so few events"
    )
    return [Finding("few_test_events", "warn", message, rarest["label"], float(rarest["count"]))]
