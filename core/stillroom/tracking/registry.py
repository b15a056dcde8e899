"""The model registry: resolving an alias to one fixed version, registering a student tagged with
its gate and compliance results, and promotion as a recorded act (who, when, why, any override).
"""

from __future__ import annotations

import json
import re
import time
from contextlib import suppress

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ..contract.names import COMPLIANCE_MISSING_TAG, COMPLIANCE_TAG, INCOMPLETE, PROMOTION_EXPERIMENT, TAG_PREFIX
from ..errors import GateError, ModelLoadError, TrackingError
from .integrity import record_tags
from .runs import run
from .store import as_user_error, check_write_access, short

MODEL_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+|latest))$")


def resolve_registered(uri: str) -> tuple[str, str, str | None]:
    """``models:/name@alias`` or ``models:/name/N`` -> (name, version, logged-model id).

    An alias is resolved once, to one fixed version, so a scoring job can never mix two
    versions when someone promotes a new champion while it runs.
    """
    match = MODEL_ALIAS_URI.match(uri)
    if match is None:
        raise ModelLoadError(
            f"model URI {uri!r} is not of the form models:/NAME@ALIAS, models:/NAME/VERSION or models:/NAME/latest"
        )
    client = MlflowClient()
    name = match.group("name")
    try:
        if match.group("alias"):
            mv = client.get_model_version_by_alias(name, match.group("alias"))
        elif match.group("version") == "latest":
            versions = client.search_model_versions(f"name = '{name}'", order_by=["version_number DESC"], max_results=1)
            if not versions:
                raise ModelLoadError(f"unknown model {uri}: no version of {name!r} is registered")
            mv = versions[0]
        else:
            mv = client.get_model_version(name, match.group("version"))
    except MlflowException as exc:
        raise ModelLoadError(f"unknown model {uri}: {short(exc)}") from None
    return name, str(mv.version), getattr(mv, "model_id", None)


def register(
    model_uri: str,
    name: str,
    tags: dict[str, str],
    description: str,
    run_id: str | None = None,
    files: dict[str, str] | None = None,
) -> str:
    """A new registered model version, created in one call with its tags (gate, compliance, and
    the sha256 of its files, :mod:`stillroom.tracking.integrity`) and description; returns it.

    One call, so an interruption leaves either no version or a complete one, never a version
    without the hashes its loads are checked against. ``files`` are the hashes taken when the
    model was logged (hashed from the store now when not given)."""
    client = MlflowClient()
    if files is None:
        from .models import hash_model_files

        files = hash_model_files(model_uri)
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    try:
        with suppress(MlflowException):  # exists already (or a concurrent job just created it)
            client.create_registered_model(name)
        mv = client.create_model_version(
            name, model_uri, run_id=run_id, tags={**tags, **record_tags(files)}, description=description, model_id=model_id
        )
    except MlflowException as exc:
        raise as_user_error(exc) or TrackingError(f"could not register model {name!r}: {short(exc)}") from None
    return str(mv.version)


def promote(name: str, version: str, approver: str, reason: str, override: str | None, alias: str = "champion") -> dict[str, str]:
    """Set ``@alias`` on a version and record who promoted it, when and why.

    A version whose gate failed, or whose run misses what its compliance profile requires
    (:mod:`stillroom.compliance`), is refused unless an override reason is given, which is
    recorded beside the approver's reason. The record lives on the version (tags), on the
    registered model (latest promotion) and as a run in the promotions experiment.
    """
    client = MlflowClient()
    try:
        mv = client.get_model_version(name, version)
    except MlflowException as exc:
        raise ModelLoadError(f"unknown model version {name} v{version}: {short(exc)}") from None
    _refuse_unfinished(client, name, version, mv.run_id)
    gate = mv.tags.get(f"{TAG_PREFIX}gate", "unknown")
    compliance = mv.tags.get(COMPLIANCE_TAG, "unchecked")  # versions registered before the check existed
    problems = [f"did not pass its gate (gate={gate})"] if gate != "passed" else []
    if compliance == INCOMPLETE:
        problems.append(f"its run misses what its compliance profile requires ({mv.tags.get(COMPLIANCE_MISSING_TAG, '?')})")
    if problems and not override:
        raise GateError(f"{name} v{version} {' and '.join(problems)}; promote only with --override REASON, which is recorded")
    check_write_access(PROMOTION_EXPERIMENT, name)  # a user without the right changes nothing
    record = {
        "alias": alias,
        "version": str(version),
        "approver": approver,
        "reason": reason,
        "gate": gate,
        "compliance": compliance,
        "override": override or "",
        "previous": _current_alias_version(client, name, alias) or "",
        "promoted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    # the record's run is opened first: if even that is refused, the registry is untouched; if
    # the alias is refused, the run ends FAILED with the reason (an attempted promotion, on file)
    run_name = f"promote {name} v{version} -> @{alias}"
    with run(PROMOTION_EXPERIMENT, run_name, {f"{TAG_PREFIX}role": "promotion", f"{TAG_PREFIX}model": name}):
        client.set_registered_model_alias(name, alias, version)
        for key in ("approver", "reason", "override", "promoted_at", "previous"):
            client.set_model_version_tag(name, version, f"{TAG_PREFIX}promotion.{key}", record[key])
        client.set_registered_model_tag(name, f"{TAG_PREFIX}last_promotion", json.dumps(record))
        mlflow.log_params({f"promotion.{k}": v for k, v in record.items()} | {"model": name})
    return record


def _refuse_unfinished(client: MlflowClient, name: str, version: str, run_id: str | None) -> None:
    """A version whose run did not finish (FAILED, KILLED, still RUNNING, or gone) is no model to
    promote, whatever the override: its record is incomplete by definition."""
    if not run_id:
        return  # registered from a file, outside any run: its gate and compliance tags decide
    try:
        status = client.get_run(run_id).info.status
    except MlflowException:
        status = "missing"
    if status != "FINISHED":
        raise GateError(
            f"{name} v{version} cannot be promoted: its run {run_id} is {status}, not FINISHED (no --override for that)"
        )


def promotion_history(name: str) -> list[dict[str, str]]:
    """Every recorded promotion of a registered model, oldest first."""
    exp = mlflow.get_experiment_by_name(PROMOTION_EXPERIMENT)
    if exp is None:
        return []
    runs = mlflow.search_runs([exp.experiment_id], filter_string=f"params.model = '{name}'", output_format="list")
    history = [{k.removeprefix("promotion."): v for k, v in r.data.params.items() if k.startswith("promotion.")} for r in runs]
    return sorted(history, key=lambda r: r.get("promoted_at", ""))


def _current_alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def model_version_tags(name: str, version: str) -> dict[str, str]:
    return dict(MlflowClient().get_model_version(name, version).tags)
