"""The audit trail of one distillation: what a reviewer finds in MLflow, written from the record.

:mod:`stillroom.tracking` is the MLflow adapter (the only package importing mlflow); this
module decides what goes where. Everything was computed before the run is opened, so a run
either holds the whole record or, if logging itself fails, is marked FAILED with the error:

* lineage: datasets with digests and contexts, the teacher as a logged-model input, the
  flattened config, transfer composition, plugin inventory;
* metrics for teacher, student and baseline with confidence intervals, bound to the
  student's logged model and the test dataset; step timings;
* the student in its native flavor with signature and a synthetic input example;
* artifacts: config, lineage, environment, metrics, gate, reference scores, the vertical's
  tables and plots, the model card, and a manifest hashing all of them and the model files;
* the run as stored, checked against its compliance profiles (:mod:`stillroom.audit.compliance`):
  tagged on the run and the version;
* last, once the run is logged completely and ended FINISHED, the registered model version,
  created in one call with the gate and compliance results and the sha256 of the model's files
  (what every later load is checked against). A failure or an interruption at any point before
  that ends the run FAILED with a ``stillroom.failure`` tag naming the step
  (:func:`stillroom.tracking.fail_run`), and no version ever points at an unfinished run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics, tracking
from .._runtime import package_version
from ..contract import config as config_mod
from ..contract.bundle import frame_digest, synthetic_example
from ..contract.context import RunContext
from ..distillation.result import Distillation
from ..interrupts import deferred
from ..plugins import StillroomPluginManager
from ..progress import step
from ..tasks import kinds
from .compliance import ComplianceCheck, check_run
from .environment import environment, plugin_inventory
from .manifest import build_manifest
from .modelcard import build_card, describe_model, render_markdown
from .predictions import write_predictions


def record(
    pm: StillroomPluginManager,
    d: Distillation,
    timings: dict[str, float],
    tracking_uri: str,
    opened: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Log the distillation as one MLflow run, then register the student; return the run summary.

    ``opened``: runs this job opened before (a plugin-trained teacher's), nested under this one."""
    task, cfg = d.task, d.config
    tags = {
        "stillroom.task": task.name,
        "stillroom.task_type": d.bundle.task_type,
        "stillroom.reference": d.bundle.reference,
        "stillroom.version": package_version("stillroom"),
        "stillroom.role": "distillation",
    }
    if cfg.run.register_student:  # until the version exists: a job killed before that is found and closed
        tags[tracking.REGISTRATION_TAG] = "pending"
    name = f"distill {task.name}: {d.teacher.description.name} -> {cfg.student.name}"
    with tracking.run(cfg.run.experiment, name, tags) as run_id:
        tracking.adopt(opened or [], run_id)
        context = RunContext(task=task, config=cfg, run_id=run_id)
        pm.before_run(context)
        with step("MLflow: logging lineage, params and tags"):
            lineage = d.bundle.lineage()  # digests every split: once per run, shared below
            datasets = _log_lineage(pm, d, lineage)
            tracking.log_params(context.params)  # what lifecycle plugins added
            tracking.set_tags(context.tags)
        with step("MLflow: logging the student model"):
            logged = tracking.log_student_model(d.student.native_model(), _input_example(d))
            extra = _log_extra_models(d)
        with step("MLflow: logging metrics and artifacts"):
            tracking.log_metrics(d.result.with_intervals(), model_id=logged.model_id, dataset=datasets["test"])
            write_artifacts(pm, d, lineage)
            files = logged.files | {f"{name}/{path}": digest for name, m in extra.items() for path, digest in m.files.items()}
            manifest = build_manifest(d.artifact_dir, files, {"run_id": run_id, "model_uri": logged.model_uri})
            (d.artifact_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
            tracking.log_artifacts(d.artifact_dir)
            tracking.set_tags({"stillroom.gate": d.gate.status, "stillroom.student_model_id": logged.model_id})
        checked = _check_compliance(pm, run_id, task.compliance_profile)
        tracking.log_metrics({f"timing.{k}_seconds": v for k, v in timings.items()})
    # the run is complete and FINISHED: only now may a version point at it
    version = _register(d, logged, run_id, checked) if cfg.run.register_student else None
    summary = {
        "run_id": run_id,
        "task": task.name,
        "task_type": d.bundle.task_type,
        "reference": d.bundle.reference,
        "gate": d.gate.status,
        "gate_verdict": d.gate.verdict(),
        "gate_undecided": d.gate.undecided,
        "gate_reasons": d.gate.reasons(),
        "compliance": checked.as_dict(),
        "registered_model": cfg.run.registered_model if version else None,
        "version": version,
        "model_uri": logged.model_uri,
        "metrics": d.result.metrics,
        "intervals": d.result.intervals,
        "not_estimable": d.result.not_estimable,
        "lineage": lineage,
        "timings": dict(timings),
        "tracking_uri": tracking_uri,
        "data_quality": d.data_quality.as_dict(),
    }
    pm.after_run(context, summary)
    return summary


def _log_lineage(pm: StillroomPluginManager, d: Distillation, lineage: dict[str, Any]) -> dict[str, Any]:
    """Datasets with digests, the teacher as an input, params and tags; returns the datasets."""
    bundle, transfer, cfg = d.bundle, d.transfer, d.config
    frames = bundle.splits()
    transfer_frame = transfer.X.assign(origin=transfer.origin)
    frames["transfer"] = transfer_frame
    digests = {k: split["digest"] for k, split in lineage["splits"].items()} | {"transfer": frame_digest(transfer_frame)}
    datasets = tracking.log_datasets(frames, digests, bundle.source, bundle.label)
    tracking.log_teacher_input(d.teacher.model_id)
    params = config_mod.flatten(cfg) | {
        "teacher.source": d.teacher.source,
        "teacher.kind": d.teacher.description.kind,
        "transfer.rows": len(transfer.X),
        **{f"transfer.rows.{k}": v for k, v in transfer.composition().items()},
        # the baseline's own config when the student named it (baseline_spec): "the same student"
        # is then what the student chose, not cfg.student
        **(config_mod.flatten(d.baseline_config, "baseline.") if d.baseline_config is not None else {}),
    }
    tracking.log_params(params)
    tracking.set_tags({"stillroom.plugins": plugin_inventory(pm), "stillroom.teacher": d.teacher.description.name})
    return datasets


def _log_extra_models(d: Distillation) -> dict[str, tracking.LoggedStudent]:
    """Further native forms of the student (``extra_native_models()``, optional): e.g. its
    TorchScript beside the registered ONNX model. Each is a logged model of the run, tagged."""
    extra = getattr(d.student, "extra_native_models", None)
    logged = {name: tracking.log_extra_model(native, name) for name, native in (extra() if extra else {}).items()}
    tracking.set_tags({f"stillroom.extra_model.{name}": m.model_id for name, m in logged.items()})
    return logged


def _input_example(d: Distillation) -> Any:
    """A synthetic example of the model input for the signature, or ``None`` when the inputs
    are domain objects (molecules, images): then the student brings its own public example."""
    if d.bundle.opaque_features:
        return None
    return synthetic_example(d.bundle.X(d.bundle.train), seed=d.config.run.seed)


def _check_compliance(pm: StillroomPluginManager, run_id: str, profile_name: str) -> ComplianceCheck:
    """The run as stored, against its compliance profiles; the result tagged on the run.

    After everything a profile can ask for is logged (metrics, params, tags, artifacts,
    datasets) and before registration, so the version carries the result from its creation."""
    with step(f"compliance: checking the run against profile {profile_name!r}"):
        checked = check_run(run_id, profile_name, pm.registry)
    tracking.set_tags(checked.tags())
    return checked


def _register(d: Distillation, logged: tracking.LoggedStudent, run_id: str, checked: ComplianceCheck) -> str:
    """A new version of the registered model, tagged with the gate and compliance results and the
    hashes of the model's files, pointing at the finished run; the run is tagged with it.

    A signal arriving meanwhile is held back until both are done (the version then exists, whole,
    and the job stops right after); a failure before the version exists ends the run FAILED."""
    cfg = d.config
    version: str | None = None
    try:
        with step(f"registry: registering {cfg.run.registered_model}"), deferred():
            version = _create_version(d, logged, run_id, checked)
            registered = f"{cfg.run.registered_model}/{version}"
            tracking.tag_run(run_id, {"stillroom.registered_version": registered, tracking.REGISTRATION_TAG: "done"})
    except BaseException as exc:
        if version is None:
            tracking.fail_run(run_id, exc, step="registry")
        raise
    assert version is not None
    return version


def _create_version(d: Distillation, logged: tracking.LoggedStudent, run_id: str, checked: ComplianceCheck) -> str:
    cfg = d.config
    return tracking.register(
        logged.model_uri,
        cfg.run.registered_model,
        tags={
            "stillroom.gate": d.gate.status,
            "stillroom.task": d.task.name,
            "stillroom.run_id": run_id,
            "stillroom.gate_reasons": "; ".join(d.gate.reasons())[:4900],
            **checked.tags(),
        },
        description=(
            f"{d.task.name} student distilled from {d.teacher.description.name}; "
            f"gate {d.gate.status}; compliance {checked.status}."
        ),
        run_id=run_id,
        files=logged.files,
    )


def write_artifacts(pm: StillroomPluginManager, d: Distillation, lineage: dict[str, Any]) -> None:
    """Config, lineage (``bundle.lineage()``, computed once by the caller), environment, metrics,
    gate, the test split's predictions, reference scores, tables and the model card."""
    root: Path = d.artifact_dir
    (root / "config.yaml").write_text(config_mod.dump(d.config))
    record_ = lineage | {"transfer": d.transfer.composition(), "teacher": describe_model(d.teacher.description)}
    (root / "lineage.json").write_text(json.dumps(record_, indent=2, default=str))
    (root / "environment.json").write_text(json.dumps(environment(pm), indent=2))
    (root / "metrics.json").write_text(
        json.dumps(
            {"metrics": d.result.metrics, "intervals": d.result.intervals, "not_estimable": d.result.not_estimable}, indent=2
        )
    )
    gate = d.gate.as_dict() | {"not_estimable": d.result.not_estimable}
    (root / "gate.json").write_text(json.dumps(gate, indent=2))
    (root / "data_quality.json").write_text(json.dumps(d.data_quality.as_dict(), indent=2, default=_jsonable))
    write_predictions(d.bundle, d.outputs.test, root)
    if kinds.has_scalar_output(d.bundle.task_type):  # the reference a scoring job's PSI is measured against
        reference = root / "reference"
        reference.mkdir(exist_ok=True)
        train_scores = d.student.predict(d.bundle.X(d.bundle.train))
        (reference / "score_histogram.json").write_text(json.dumps(metrics.histogram(train_scores), default=_jsonable))
    for name, table in d.result.tables.items():
        (root / "tables").mkdir(exist_ok=True)
        table.to_csv(root / "tables" / f"{name}.csv", index=False)
    card = build_card(d)
    (root / "model_card.json").write_text(json.dumps(card, indent=2, default=_jsonable))
    (root / "model_card.md").write_text(render_markdown(card))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)
