"""Runs: opening one that ends FAILED if its body fails, logging params, metrics, artifacts and
lineage (datasets with digests, the teacher as a logged-model input), and reading a run back.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.data.pandas_dataset import from_pandas
from mlflow.entities import LoggedModelInput
from mlflow.tracking import MlflowClient

from ..contract.bundle import holds_arrays
from ..contract.names import SCORING_EXPERIMENT, TAG_PREFIX
from .store import short, use_experiment


@dataclass(frozen=True)
class RunRecord:
    """What a run holds, flattened for checks (compliance bundle, reports)."""

    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    artifacts: list[str]
    datasets: list[dict[str, str]]
    model_inputs: list[str]


def run_record(run_id: str) -> RunRecord:
    client = MlflowClient()
    r = client.get_run(run_id)
    inputs = r.inputs
    datasets = [
        {
            "name": d.dataset.name,
            "digest": d.dataset.digest,
            "context": next((t.value for t in d.tags if t.key == "mlflow.data.context"), ""),
        }
        for d in (inputs.dataset_inputs if inputs else [])
    ]
    models = [m.model_id for m in (inputs.model_inputs if inputs and inputs.model_inputs else [])]
    return RunRecord(
        dict(r.data.metrics), dict(r.data.params), dict(r.data.tags), list(_artifacts(client, run_id, "")), datasets, models
    )


def _artifacts(client: MlflowClient, run_id: str, path: str) -> Iterator[str]:
    for item in client.list_artifacts(run_id, path or None):
        if item.is_dir:
            yield from _artifacts(client, run_id, item.path)
        else:
            yield item.path


# --- runs ---------------------------------------------------------------------------------


WRITER_PID_TAG, WRITER_HOST_TAG = f"{TAG_PREFIX}writer.pid", f"{TAG_PREFIX}writer.host"
FAILURE_TAG, ORPHAN_TAG = f"{TAG_PREFIX}failure", f"{TAG_PREFIX}orphan"
REGISTRATION_TAG = f"{TAG_PREFIX}registration"  # "pending" from the run's start until its version exists
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: the UI nests a run under its parent


def writer_tags() -> dict[str, str]:
    """Which process writes a run: a later job finds runs whose writer died (kill -9, a lost
    machine) by these and closes them (:mod:`stillroom.tracking.recovery`)."""
    return {WRITER_PID_TAG: str(os.getpid()), WRITER_HOST_TAG: socket.gethostname()}


_job_runs: ContextVar[list[tuple[str, str]] | None] = ContextVar("stillroom_job_runs", default=None)


@contextmanager
def job() -> Iterator[list[tuple[str, str]]]:
    """Collect ``(run id, role)`` of every run opened inside the block: what a failed job must
    label (a teacher run whose distillation never came is an orphan, and says so)."""
    opened: list[tuple[str, str]] = []
    token = _job_runs.set(opened)
    try:
        yield opened
    finally:
        _job_runs.reset(token)


@contextmanager
def run(experiment: str, run_name: str, tags: dict[str, str]) -> Iterator[str]:
    """An MLflow run that ends FAILED, with a ``stillroom.failure`` tag naming the step and the
    cause, if the body raises or is interrupted; none of its logged models stays PENDING and no
    model version points at it (:func:`fail_run`)."""
    use_experiment(experiment)
    with mlflow.start_run(run_name=run_name, tags={**tags, **writer_tags()}) as active:
        run_id = active.info.run_id
        opened = _job_runs.get()
        if opened is not None:
            opened.append((run_id, tags.get(f"{TAG_PREFIX}role", "")))
        try:
            yield run_id
        except BaseException as exc:
            fail_run(run_id, exc)
            with suppress(Exception):
                mlflow.end_run("FAILED")  # off the stack even if the server is gone
            raise


def failure_text(exc: BaseException, step: str | None = None) -> str:
    """``<step>: <cause>``: where a job stopped and why, for a tag or a log line."""
    from ..progress import current_step

    where = step or current_step() or "logging"
    return f"{where}: {short(exc) if not isinstance(exc, KeyboardInterrupt) else str(exc) or 'interrupted'}"


def fail_run(run_id: str, exc: BaseException | str, step: str | None = None) -> None:
    """Mark a run FAILED whatever state it is in, tagged with the step and the cause; finalize its
    PENDING logged models as FAILED and delete model versions registered from it.

    Best effort, each part on its own: marking must never hide why the run failed (a dead
    server or a 403 refuses these calls too: then the next job's recovery closes the run).
    A second SIGINT/SIGTERM while this runs is held back, so the cleanup is not cut in half."""
    from ..interrupts import Interrupted, deferred

    why = exc if isinstance(exc, str) else failure_text(exc, step)
    client = MlflowClient()
    with suppress(Interrupted), deferred():
        for action in (
            lambda: client.set_tag(run_id, FAILURE_TAG, why[:TAG_VALUE_LIMIT]),
            lambda: client.set_tag(run_id, f"{TAG_PREFIX}error", why[:TAG_VALUE_LIMIT]),
            lambda: _fail_pending_models(client, run_id),
            lambda: _delete_versions_of(client, run_id),
            lambda: client.set_terminated(run_id, "FAILED"),
        ):
            with suppress(Exception):
                action()


TAG_VALUE_LIMIT = 4900


def _fail_pending_models(client: MlflowClient, run_id: str) -> None:
    experiment = client.get_run(run_id).info.experiment_id
    for model in mlflow.search_logged_models([experiment], filter_string=f"source_run_id = '{run_id}'", output_format="list"):
        if str(model.status) in ("PENDING", "LoggedModelStatus.PENDING") or getattr(model.status, "name", "") == "PENDING":
            client.finalize_logged_model(model.model_id, "FAILED")


def _delete_versions_of(client: MlflowClient, run_id: str) -> None:
    for mv in client.search_model_versions(f"run_id = '{run_id}'"):
        client.delete_model_version(mv.name, mv.version)


def label_orphans(opened: list[tuple[str, str]], exc: BaseException) -> None:
    """Teacher runs a failed distillation opened, labelled as orphans (kept: each is the lineage
    of a trained teacher the cache may reuse), saying where the distillation stopped."""
    why = f"its distillation did not complete ({failure_text(exc)}); the teacher is kept as trained"
    client = MlflowClient()
    for run_id, role in opened:
        if role == "teacher":
            with suppress(Exception):
                if PARENT_TAG not in client.get_run(run_id).data.tags:
                    client.set_tag(run_id, ORPHAN_TAG, why[:TAG_VALUE_LIMIT])


def adopt(opened: list[tuple[str, str]], parent_run_id: str) -> None:
    """Runs this job opened before its main run (a teacher's) become its children in the UI."""
    client = MlflowClient()
    for run_id, role in opened:
        if run_id != parent_run_id and role == "teacher":
            client.set_tag(run_id, PARENT_TAG, parent_run_id)


def set_tags(tags: dict[str, Any]) -> None:
    if tags:
        mlflow.set_tags({k: str(v) for k, v in tags.items()})


def finish_run(run_id: str) -> None:
    """End a run FINISHED now (the block that opened it then only leaves it)."""
    MlflowClient().set_terminated(run_id, "FINISHED")


def tag_run(run_id: str, tags: dict[str, Any]) -> None:
    """Tags on a run by id, active or ended (a registered version's number, after the run)."""
    client = MlflowClient()
    for key, value in tags.items():
        client.set_tag(run_id, key, str(value))


def log_params(params: dict[str, Any]) -> None:
    """Params, with values cut to MLflow's limit (the full config is an artifact anyway)."""
    clean = {k: (str(v) if len(str(v)) <= 500 else str(v)[:497] + "...") for k, v in params.items()}
    items = list(clean.items())
    for start in range(0, len(items), 90):
        mlflow.log_params(dict(items[start : start + 90]))


def log_metrics(metrics: dict[str, float], model_id: str | None = None, dataset: Any = None) -> None:
    """Finite metrics, optionally bound to a logged model and a dataset (MLflow 3)."""
    finite = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
    mlflow.log_metrics(finite, model_id=model_id, dataset=dataset)  # one request per 1,000: a team server answers each


def log_artifacts(directory: Path, artifact_path: str | None = None) -> None:
    mlflow.log_artifacts(str(directory), artifact_path=artifact_path)


def log_dict(data: Any, artifact_file: str) -> None:
    mlflow.log_dict(data, artifact_file)


# --- lineage ------------------------------------------------------------------------------


def log_datasets(
    frames: dict[str, pd.DataFrame], digests: dict[str, str], source: str, label: str | list[str] | None
) -> dict[str, Any]:
    """Each split as an ``mlflow.data`` dataset with our digest and its context; returns them.

    Only a schema-sized sample is handed to MLflow (it profiles what it is given); the
    digest is computed by us on the full split. Columns of arrays (images) are described by
    their shape in that sample: MLflow's schema has no type for an array per cell.
    """
    datasets = {}
    for context, frame in frames.items():
        targets = label if isinstance(label, str) and label in frame.columns else None
        # MLflow hints about a free-text source and integer columns concern model signatures,
        # not dataset records; they would only clutter the run's console output
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            sample = _profileable(frame.head(1000))
            ds = from_pandas(sample, source=source, targets=targets, name=context, digest=digests[context])
            mlflow.log_input(ds, context=context, tags={"rows": str(len(frame))})
        datasets[context] = ds
    return datasets


def _profileable(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every array-valued cell replaced by its shape, e.g. ``"(1, 28, 28)"``."""
    arrays = [c for c in frame.columns if holds_arrays(frame[c])]
    if not arrays:
        return frame
    return frame.assign(**{c: frame[c].map(lambda a: str(tuple(np.shape(a)))) for c in arrays})


def log_teacher_input(model_id: str | None) -> None:
    """Record the teacher as a logged-model input of the active run.

    The fluent ``mlflow.log_inputs(models=...)`` is gated to Databricks; the client call
    reaches the store directly, and the SQL and file stores record model inputs.
    """
    if model_id:
        MlflowClient().log_inputs(_active_run_id(), models=[LoggedModelInput(model_id=model_id)])


def _active_run_id() -> str:
    active = mlflow.active_run()
    if active is None:
        raise RuntimeError("no active MLflow run: open one with stillroom.tracking.run()")
    return str(active.info.run_id)


def log_scoring_run(params: dict[str, Any], metrics: dict[str, float], artifacts: dict[str, Any], tags: dict[str, str]) -> str:
    """One run per batch scoring job in the scoring experiment; returns its id."""
    use_experiment(SCORING_EXPERIMENT)
    with mlflow.start_run(run_name=f"score {params.get('model')} v{params.get('model_version')}", tags=tags) as active:
        log_params(params)
        log_metrics(metrics)
        for name, data in artifacts.items():
            mlflow.log_dict(data, name)
        return active.info.run_id


# --- a search: one parent run, a child run per trial ------------------------------------------


def open_parent_run(experiment: str, run_name: str, tags: dict[str, str], resume: str | None = None) -> str:
    """A run held open across a long job and its resumption (a search): created by the client,
    not the fluent stack, so the trials' threads and the final distillation run (fluent) never
    disturb it. ``resume``: the run of an interrupted job, set running again by this process."""
    client = MlflowClient()
    if resume is not None:
        client.update_run(resume, status="RUNNING")
        for key, value in {**tags, **writer_tags()}.items():
            client.set_tag(resume, key, value)
        with suppress(Exception):
            client.delete_tag(resume, FAILURE_TAG)
        return resume
    experiment_id = use_experiment(experiment)
    created = client.create_run(experiment_id, run_name=run_name, tags={**tags, **writer_tags()})
    opened = _job_runs.get()
    if opened is not None:
        opened.append((created.info.run_id, tags.get(f"{TAG_PREFIX}role", "")))
    return str(created.info.run_id)


def log_child_run(
    parent_run_id: str,
    run_name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    status: str = "FINISHED",
    artifacts: Path | None = None,
) -> str:
    """A finished child run of ``parent_run_id`` holding one unit of a job (a search trial):
    written whole in one go by the client, safe from several threads at once; the files under
    ``artifacts`` (a trial's validation predictions) are logged before the run is closed."""
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient()
    parent = client.get_run(parent_run_id)
    child = client.create_run(parent.info.experiment_id, run_name=run_name, tags={**tags, PARENT_TAG: parent_run_id})
    now = int(time.time() * 1000)
    finite = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
    client.log_batch(
        child.info.run_id,
        metrics=[Metric(k, v, now, 0) for k, v in finite.items()],
        params=[Param(k, str(v)[:500]) for k, v in params.items()],
        tags=[RunTag(k, str(v)[:TAG_VALUE_LIMIT]) for k, v in tags.items()],
    )
    if artifacts is not None:
        client.log_artifacts(child.info.run_id, str(artifacts))
    client.set_terminated(child.info.run_id, status)
    return str(child.info.run_id)


def read_run_table(run_id: str, path: str, dst: Path) -> pd.DataFrame:
    """A parquet table a run logged (``predictions/validation.parquet``), read back."""
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(dst))
    return pd.read_parquet(local)


def child_runs(parent_run_id: str) -> list[RunRecord]:
    """The runs nested under ``parent_run_id``, oldest first (reports, tests)."""
    client = MlflowClient()
    parent = client.get_run(parent_run_id)
    found = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
        order_by=["attributes.start_time ASC"],
    )
    return [run_record(r.info.run_id) for r in found]


def log_artifacts_to(run_id: str, directory: Path, artifact_path: str | None = None) -> None:
    """Files into a run by id (a parent run that is not the active one)."""
    MlflowClient().log_artifacts(run_id, str(directory), artifact_path=artifact_path)
