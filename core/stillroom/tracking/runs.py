"""Runs: opening one that ends FAILED if its body fails, logging params, metrics, artifacts and
lineage (datasets with digests, the teacher as a logged-model input), and reading a run back.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
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
from .store import short


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


@contextmanager
def run(experiment: str, run_name: str, tags: dict[str, str]) -> Iterator[str]:
    """An MLflow run that is marked FAILED (with the error as a tag) if the body raises."""
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name, tags=tags) as active:
        try:
            yield active.info.run_id
        except BaseException as exc:
            # marking the run must never hide why it failed (a 403 would refuse the tag too)
            with suppress(Exception):
                mlflow.set_tag(f"{TAG_PREFIX}error", short(exc))
            with suppress(Exception):
                mlflow.end_run("FAILED")
            raise


def set_tags(tags: dict[str, Any]) -> None:
    if tags:
        mlflow.set_tags({k: str(v) for k, v in tags.items()})


def log_params(params: dict[str, Any]) -> None:
    """Params, with values cut to MLflow's limit (the full config is an artifact anyway)."""
    clean = {k: (str(v) if len(str(v)) <= 500 else str(v)[:497] + "...") for k, v in params.items()}
    items = list(clean.items())
    for start in range(0, len(items), 90):
        mlflow.log_params(dict(items[start : start + 90]))


def log_metrics(metrics: dict[str, float], model_id: str | None = None, dataset: Any = None) -> None:
    """Finite metrics, optionally bound to a logged model and a dataset (MLflow 3)."""
    finite = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
    if model_id is None and dataset is None:
        mlflow.log_metrics(finite)
        return
    for key, value in finite.items():
        mlflow.log_metric(key, value, model_id=model_id, dataset=dataset)


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
    mlflow.set_experiment(SCORING_EXPERIMENT)
    with mlflow.start_run(run_name=f"score {params.get('model')} v{params.get('model_version')}", tags=tags) as active:
        log_params(params)
        log_metrics(metrics)
        for name, data in artifacts.items():
            mlflow.log_dict(data, name)
        return active.info.run_id
