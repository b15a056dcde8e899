"""Everything the compliance report shows about one distillation run, read from the store once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ..contract.names import TAG_PREFIX
from ..errors import TrackingError
from .registry import promotion_history
from .runs import RunRecord, run_record
from .store import as_user_error, short


@dataclass(frozen=True)
class ReportSource:
    """Everything the compliance report shows about one distillation run, fetched once."""

    run_id: str
    run_name: str
    experiment: str
    status: str
    user: str
    start_time_ms: int
    end_time_ms: int | None
    tracking_uri: str
    record: RunRecord
    artifact_dir: Path
    teacher_models: list[dict[str, str]]
    registered: dict[str, Any] | None


def fetch_report_source(run_id: str, dst: Path) -> ReportSource:
    """Read a distillation run, its artifacts (into ``dst``) and its registered version's promotions.

    A run id that is unknown, or a run that is not a stillroom distillation, is one clear error.
    """
    client = MlflowClient()
    uri = mlflow.get_tracking_uri()
    try:
        r = client.get_run(run_id)
    except MlflowException as exc:
        raise as_user_error(exc) or TrackingError(f"no run {run_id!r} in tracking store {uri}: {short(exc)}") from None
    role = r.data.tags.get(f"{TAG_PREFIX}role")
    if role != "distillation":
        raise TrackingError(f"run {run_id} is not a stillroom distillation run (role: {role or 'none'}); report needs one")
    local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(dst)))
    record = run_record(run_id)
    experiment = client.get_experiment(r.info.experiment_id).name
    return ReportSource(
        run_id=run_id,
        run_name=r.info.run_name or run_id,
        experiment=experiment,
        status=r.info.status,
        user=r.info.user_id or "",
        start_time_ms=r.info.start_time,
        end_time_ms=r.info.end_time,
        tracking_uri=uri,
        record=record,
        artifact_dir=local,
        teacher_models=[_logged_model_facts(model_id) for model_id in record.model_inputs],
        registered=_registered_facts(client, r.data.tags.get(f"{TAG_PREFIX}registered_version")),
    )


def _logged_model_facts(model_id: str) -> dict[str, str]:
    try:
        model = mlflow.get_logged_model(model_id)
    except MlflowException:
        return {"model_id": model_id}
    return {"model_id": model_id, "name": model.name, "source_run": model.source_run_id or "", "uri": model.model_uri}


def _registered_facts(client: MlflowClient, registered: str | None) -> dict[str, Any] | None:
    """The registered version (tags, current aliases) and every promotion of it, oldest first."""
    if not registered or "/" not in registered:
        return None
    name, version = registered.rsplit("/", 1)
    try:
        mv = client.get_model_version(name, version)
        aliases = [a for a, v in client.get_registered_model(name).aliases.items() if str(v) == version]
    except MlflowException as exc:
        raise as_user_error(exc) or TrackingError(f"registered version {registered} is unreadable: {short(exc)}") from None
    history = [p for p in promotion_history(name) if p.get("version") == version]
    return {"name": name, "version": version, "tags": dict(mv.tags), "aliases": aliases, "promotions": history}
