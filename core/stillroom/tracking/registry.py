"""The model registry: resolving an alias to one fixed version, registering a student tagged with
its gate and compliance results, and promotion as a recorded act (who, when, why, any override).
"""

from __future__ import annotations

import json
import re
import time

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ..contract.names import COMPLIANCE_MISSING_TAG, COMPLIANCE_TAG, INCOMPLETE, PROMOTION_EXPERIMENT, TAG_PREFIX
from ..errors import GateError, ModelLoadError, TrackingError
from .runs import run
from .store import check_write_access, short

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


def register(model_uri: str, name: str, tags: dict[str, str], description: str) -> str:
    """A new registered model version tagged with the gate result; returns the version."""
    client = MlflowClient()
    try:
        mv = mlflow.register_model(model_uri, name, tags=tags)
        client.update_model_version(name, mv.version, description=description)
    except MlflowException as exc:
        raise TrackingError(f"could not register model {name!r}: {short(exc)}") from None
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
