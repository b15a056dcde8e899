"""The audit trail in MLflow. The only module that imports mlflow.

Everything a reviewer finds in the MLflow UI is written here: lineage (datasets with
digests, the teacher as a logged-model input of the run), settings, metrics bound to the
student model and the test dataset, artifacts, the registered model version tagged with its
gate result, promotions (who, when, why), and scoring runs.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

import mlflow  # noqa: E402
from mlflow.entities import LoggedModelInput  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from .compliance import INCOMPLETE, MISSING_TAG, STATUS_TAG  # noqa: E402
from .data import holds_arrays  # noqa: E402
from .errors import AccessDeniedError, GateError, ModelLoadError, TrackingError, first_line  # noqa: E402
from .protocols import NativeModel  # noqa: E402

TAG_PREFIX = "stillroom."
PROMOTION_EXPERIMENT = "stillroom-promotions"
SCORING_EXPERIMENT = "stillroom-scoring"
MODEL_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+|latest))$")


# --- connection ---------------------------------------------------------------------------


def connect(uri: str | None = None) -> str:
    """Point MLflow at ``uri`` (or the environment / MLflow default) and check it answers.

    An unreachable store must fail in seconds with one message, before any work starts,
    not after an hour of teacher training.
    """
    if uri:
        mlflow.set_tracking_uri(uri)
    resolved = mlflow.get_tracking_uri()
    parsed = urlparse(resolved)
    if parsed.scheme in ("http", "https"):
        _check_http(resolved, parsed)
    elif parsed.scheme == "sqlite":
        _check_sqlite(resolved)
    elif parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme else resolved)
        if path.exists() and not path.is_dir():
            raise TrackingError(f"tracking URI {resolved} points at a file, not a directory")
    try:
        mlflow.search_experiments(max_results=1)
    except Exception as exc:
        raise as_user_error(exc) or TrackingError(f"tracking store {resolved} is not usable: {_short(exc)}") from None
    return resolved


# --- access control (a team server with MLflow's basic-auth app) ------------------------------

USERNAME_ENV, PASSWORD_ENV = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"


def as_user_error(exc: BaseException) -> AccessDeniedError | None:
    """A 401/403 from the tracking server as one clear message; ``None`` for anything else.

    MLflow reports both as an ``MlflowException`` carrying the raw response body; a user needs
    to know which of the two it is and what to do about it, not the endpoint that refused.
    """
    if not isinstance(exc, MlflowException):
        return None
    status = exc.get_http_status_code()
    user = os.environ.get(USERNAME_ENV)
    server = mlflow.get_tracking_uri()
    if status == 401:
        who = f"as {user!r} (wrong password?)" if user else f"(set {USERNAME_ENV} and {PASSWORD_ENV})"
        return AccessDeniedError(f"tracking server {server} refused to authenticate you {who}")
    if status == 403:
        action = _refused_action(str(exc))
        return AccessDeniedError(
            f"permission denied: user {user!r} may not {action} on {server}; ask an admin for EDIT or MANAGE on it"
        )
    return None


def _refused_action(message: str) -> str:
    """What was refused, read off the endpoint in MLflow's message ("set a model alias", ...)."""
    endpoint = re.search(r"endpoint (\S+)", message)
    path = endpoint.group(1) if endpoint else ""
    for fragment, action in (
        ("registered-models/alias", "set a model alias (promote)"),
        ("model-versions/create", "register a model version"),
        ("registered-models/create", "create a registered model"),
        ("model-versions/set-tag", "tag a model version"),
        ("registered-models/set-tag", "tag a registered model"),
        ("runs/create", "create a run in this experiment"),
        ("experiments/create", "create an experiment"),
    ):
        if fragment in path:
            return action
    return f"call {path or 'this endpoint'}"


def check_write_access(experiment: str, registered_model: str | None) -> None:
    """Before any work: may the current user write to this experiment and registered model?

    On a server with basic auth, a distillation that ends in 403 at registration would waste
    its whole training; the auth app answers "what is my permission on X" for oneself, so we
    ask it first. Resources that do not exist yet are created (and owned) by the user, so only
    existing ones are checked. Without auth (no user, or no auth app) there is nothing to ask.
    """
    uri = mlflow.get_tracking_uri()
    user = os.environ.get(USERNAME_ENV)
    if urlparse(uri).scheme not in ("http", "https") or not user:
        return
    resources: list[tuple[str, str, str]] = []
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is not None:
        resources.append(("experiment", exp.experiment_id, f"experiment {experiment!r}"))
    if registered_model and _registered_model_exists(registered_model):
        resources.append(("registered_model", registered_model, f"registered model {registered_model!r}"))
    for resource_type, resource_id, label in resources:
        permission = _my_permission(uri, user, resource_type, resource_id)
        if permission is not None and permission not in ("EDIT", "MANAGE"):
            raise AccessDeniedError(
                f"permission denied: user {user!r} has {permission} on {label} at {uri}; "
                "writing needs EDIT or MANAGE (ask an admin to grant it)"
            )


def _registered_model_exists(name: str) -> bool:
    try:
        MlflowClient().get_registered_model(name)
    except MlflowException as exc:
        if exc.get_http_status_code() == 404:
            return False
        raise as_user_error(exc) or TrackingError(f"could not look up registered model {name!r}: {_short(exc)}") from None
    return True


def _my_permission(uri: str, user: str, resource_type: str, resource_id: str) -> str | None:
    """The auth app's answer for ``user`` on one resource; ``None`` when the server has no auth app."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    response = http_request(
        get_default_host_creds(uri),
        "/api/3.0/mlflow/users/permissions/get",
        "GET",
        params={"username": user, "resource_type": resource_type, "resource_id": resource_id},
    )
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise AccessDeniedError(f"tracking server {uri} refused the permission check for {user!r} (HTTP {response.status_code})")
    return str(response.json().get("permission", ""))


def use_store(uri: str | None) -> None:
    """Point tracking and registry at ``uri`` (``None``: back to the environment/default)."""
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if uri is None and mlflow.active_run():
        mlflow.end_run()


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


def _check_http(uri: str, parsed: Any) -> None:
    host = parsed.hostname or "localhost"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=5):
            pass
    except OSError as exc:
        raise TrackingError(f"tracking server {uri} is unreachable: {exc}") from None


def _check_sqlite(uri: str) -> None:
    path = uri.split("sqlite:///", 1)[-1]
    if path and path != ":memory:":
        parent = Path(path).expanduser().resolve().parent
        if not parent.is_dir():
            raise TrackingError(f"tracking store {uri}: directory {parent} does not exist")


def _short(exc: Exception) -> str:
    return first_line(exc, 300)


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
                mlflow.set_tag(f"{TAG_PREFIX}error", _short(exc))
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
            ds = mlflow.data.from_pandas(sample, source=source, targets=targets, name=context, digest=digests[context])
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
        MlflowClient().log_inputs(mlflow.active_run().info.run_id, models=[LoggedModelInput(model_id=model_id)])


def log_teacher_model(
    native: NativeModel, name: str, experiment: str, description: dict[str, Any], example: pd.DataFrame | None = None
) -> str:
    """Log a teacher trained by a plugin in its own run; return its logged-model id.

    The teacher's own run is its lineage (how it was trained); the distillation run then
    names it as an input. Teachers may use any flavor, pickle-based ones included: they are
    research artifacts; students must be native. A scikit-learn classifier is logged so that
    its pyfunc returns probabilities: then the same logged teacher (``models:/<model id>``) can
    label a large transfer set through Spark (``teacher.spark_master``).
    """
    proba = native.flavor == "sklearn" and hasattr(native.model, "predict_proba")
    if proba:
        native = replace(native, log_kwargs={"pyfunc_predict_fn": "predict_proba", **native.log_kwargs})
    signature = None
    if example is not None and native.signature is None:
        from mlflow.models import infer_signature

        signature = infer_signature(example, native.model.predict_proba(example) if proba else _predict_native(native, example))
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=f"teacher: {name}", tags={f"{TAG_PREFIX}role": "teacher"}):
        log_params({f"teacher.{k}": v for k, v in description.items()})
        info = _log_native(native, "teacher", signature=signature, input_example=example)
    return info.model_id


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
        raise ModelLoadError(f"unknown model {uri}: {_short(exc)}") from None
    return name, str(mv.version), getattr(mv, "model_id", None)


# --- models -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoggedStudent:
    model_id: str
    model_uri: str
    files: dict[str, str]
    scoring_engine: str = "native"  # "lleaves" when a compiled artifact was logged beside the model


_MODEL_ARGUMENT = {
    "lightgbm": "lgb_model",
    "sklearn": "sk_model",
    "pytorch": "pytorch_model",
    "onnx": "onnx_model",
    "pyfunc": "python_model",
}
"""The keyword each MLflow flavor's ``log_model`` takes the model object under."""


def _log_native(native: NativeModel, name: str, signature: Any, input_example: Any) -> Any:
    """Log ``native`` with its own MLflow flavor; the model's own signature/example win."""
    if native.flavor not in _MODEL_ARGUMENT:
        raise TrackingError(f"no MLflow flavor {native.flavor!r} known to stillroom (known: {', '.join(_MODEL_ARGUMENT)})")
    import importlib

    module = importlib.import_module(f"mlflow.{native.flavor}")
    own_signature = native.signature
    if isinstance(own_signature, dict):  # MLflow's JSON form, so a plugin need not import mlflow
        from mlflow.models import ModelSignature

        own_signature = ModelSignature.from_dict(own_signature)
    kwargs: dict[str, Any] = {
        "name": name,
        "signature": own_signature if own_signature is not None else signature,
        "input_example": native.input_example if native.input_example is not None else input_example,
        **native.log_kwargs,
    }
    if native.flavor == "sklearn":
        kwargs.setdefault("skops_trusted_types", _own_skops_types(native.model))
    return module.log_model(**{_MODEL_ARGUMENT[native.flavor]: native.model}, **kwargs)


def _own_skops_types(model: Any) -> list[str]:
    """Types skops does not trust by default, for a model this process built itself.

    skops refuses e.g. tree node arrays because a *foreign* file could hold out-of-range
    indices; a teacher we just trained is not foreign, so its own types are trusted, and
    only those (never a blanket allow-list).
    """
    import skops.io as sio

    return list(sio.get_untrusted_types(data=sio.dumps(model)))


def log_student_model(native: NativeModel, example: pd.DataFrame | None) -> LoggedStudent:
    """Log the student natively with a signature and a synthetic input example.

    A student that knows its own signature (a tensor input, say) brings it in ``native``;
    otherwise it is inferred from the synthetic example and the model's output on it.
    """
    from mlflow.models import infer_signature

    signature = None
    if native.signature is None and example is not None:
        signature = infer_signature(example, _predict_native(native, example))
    info = _log_native(native, "student", signature=signature, input_example=example)
    engine = _log_compiled(info.model_id, info.model_uri) if native.flavor == "lightgbm" else "native"
    files = hash_model_files(info.model_uri)  # after compiling: the manifest covers the compiled code too
    return LoggedStudent(model_id=info.model_id, model_uri=info.model_uri, files=files, scoring_engine=engine)


def _log_compiled(model_id: str, model_uri: str) -> str:
    """Compile a LightGBM student and add it to the same logged model, under ``compiled/``.

    Beside ``model.lgb`` in the model's own artifacts, an auditor finds the compiled code, what
    it was built from and where (``compiled/compiled.json``) with the model that was reviewed,
    and the registered version carries it. Without lleaves the model is logged as is and the
    reason is tagged: scoring then uses LightGBM.
    """
    from . import compiled
    from .progress import console

    client = MlflowClient()
    with tempfile.TemporaryDirectory(prefix="stillroom-compile-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        try:
            compiled.compile_student(local / compiled.MODEL_FILE, Path(tmp) / compiled.COMPILED_DIR)
        except Exception as exc:  # no compiler, or LLVM refused: the native model still ships
            console.log(f"compiled scoring engine not logged: {exc}; scoring will use LightGBM")
            client.set_logged_model_tags(model_id, {f"{TAG_PREFIX}scoring_engine": "lightgbm", f"{TAG_PREFIX}compiled": str(exc)})
            return "lightgbm"
        client.log_model_artifacts(model_id, str(Path(tmp) / compiled.COMPILED_DIR), compiled.COMPILED_DIR)
    client.set_logged_model_tags(
        model_id,
        {
            f"{TAG_PREFIX}scoring_engine": compiled.ENGINE,
            f"{TAG_PREFIX}compiled": f"{compiled.COMPILED_DIR}/{compiled.META_FILE}",
        },
    )
    return compiled.ENGINE


def log_extra_model(native: NativeModel, name: str) -> LoggedStudent:
    """Another logged model of the active run (e.g. the student's TorchScript beside its ONNX)."""
    info = _log_native(native, name, signature=None, input_example=None)
    return LoggedStudent(model_id=info.model_id, model_uri=info.model_uri, files=hash_model_files(info.model_uri))


def _predict_native(native: NativeModel, X: pd.DataFrame) -> np.ndarray:
    model = native.model
    if native.flavor == "sklearn" and hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(X))[:, 1]
    return np.asarray(model.predict(X))


def hash_model_files(model_uri: str) -> dict[str, str]:
    """sha256 of every file of a logged model, as stored (for the compliance manifest)."""
    from .manifest import sha256_file

    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        return {str(p.relative_to(local)): sha256_file(p) for p in sorted(local.rglob("*")) if p.is_file()}


def register(model_uri: str, name: str, tags: dict[str, str], description: str) -> str:
    """A new registered model version tagged with the gate result; returns the version."""
    client = MlflowClient()
    try:
        mv = mlflow.register_model(model_uri, name, tags=tags)
        client.update_model_version(name, mv.version, description=description)
    except MlflowException as exc:
        raise TrackingError(f"could not register model {name!r}: {_short(exc)}") from None
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
        raise ModelLoadError(f"unknown model version {name} v{version}: {_short(exc)}") from None
    gate = mv.tags.get(f"{TAG_PREFIX}gate", "unknown")
    compliance = mv.tags.get(STATUS_TAG, "unchecked")  # versions registered before the check existed
    problems = [f"did not pass its gate (gate={gate})"] if gate != "passed" else []
    if compliance == INCOMPLETE:
        problems.append(f"its run misses what its compliance profile requires ({mv.tags.get(MISSING_TAG, '?')})")
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


# --- scoring ------------------------------------------------------------------------------


@dataclass
class ScoringModel:
    """A registered model pinned to one version, ready for batch scoring.

    ``engine`` says what computes the scores (``lleaves`` for a compiled student, else the
    flavor through pyfunc, or what a Python model says it runs) and ``engine_note`` why, e.g.
    a fallback; both go into the scoring run. ``columns`` are the inputs: name, type and, for
    a tensor input, the shape of one row's array. ``config`` is the ``model_config`` logged
    with the model (what a vertical's input reader needs to know about it).
    """

    name: str
    version: str
    uri: str
    predict: Any
    columns: list[tuple[str, str, tuple[int, ...] | None]]
    reference: dict[str, Any] | None
    run_id: str | None
    engine: str = "pyfunc"
    engine_note: str = ""
    config: dict[str, Any] = field(default_factory=dict)


def load_scoring_model(uri: str, compiled: bool = True) -> ScoringModel:
    """Resolve the alias once, load the pinned version, its signature and reference scores.

    With ``compiled`` (the default) a compiled student logged beside the model scores instead
    of the flavor's own predictor, when it can run here (see :mod:`stillroom.compiled`).
    """
    name, version, _ = resolve_registered(uri)
    pinned = f"models:/{name}/{version}"
    with tempfile.TemporaryDirectory(prefix="stillroom-model-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=pinned, dst_path=tmp))
            model = mlflow.pyfunc.load_model(str(local))
        except Exception as exc:
            raise ModelLoadError(f"could not load {pinned}: {_short(exc)}") from None
        schema = model.metadata.get_input_schema()
        if schema is None:
            raise ModelLoadError(f"{pinned} has no input signature; stillroom only scores models with one")
        columns = [_input_column(c, pinned) for c in schema.inputs]
        tensors = {c: shape for c, _, shape in columns if shape is not None}
        predict, engine, note = _pyfunc_scores(model, tensors), _flavor_engine(model), "compiled engine not requested"
        own = _own_engine(model)
        if own is not None:
            engine, note = own
        elif compiled:
            predict, engine, note = _compiled_or(predict, engine, local, [c for c, _, _ in columns])
    run_id = MlflowClient().get_model_version(name, version).run_id
    config = dict(getattr(model, "model_config", None) or {})
    return ScoringModel(name, version, pinned, predict, columns, _reference(run_id), run_id, engine, note, config)


def _input_column(spec: Any, pinned: str) -> tuple[str, str, tuple[int, ...] | None]:
    """A signature input as (name, type, shape): a column, or a named tensor whose rows all have
    one fixed shape (``(-1, C, H, W)``: a batch of images)."""
    from mlflow.types.schema import TensorSpec

    if not isinstance(spec, TensorSpec):
        return spec.name, spec.type.name if hasattr(spec.type, "name") else str(spec.type), None
    shape = tuple(int(d) for d in spec.shape)
    if not spec.name or len(shape) < 2 or shape[0] != -1 or min(shape[1:]) < 1:
        raise ModelLoadError(
            f"{pinned}: tensor input {spec.name!r} of shape {shape}: stillroom scores named tensors of shape (-1, fixed sizes...)"
        )
    return spec.name, spec.type.name, shape[1:]


def _own_engine(model: Any) -> tuple[str, str] | None:
    """What a Python model says computes its scores (``engine``, ``engine_note`` attributes),
    e.g. ONNX Runtime or the TorchScript it fell back to; ``None`` for other flavors."""
    try:
        own = model.unwrap_python_model()
    except Exception:  # not a Python model: MLflow refuses to unwrap it
        return None
    engine = getattr(own, "engine", None)
    return (f"pyfunc:{engine}", str(getattr(own, "engine_note", ""))) if engine else None


def _flavor_engine(model: Any) -> str:
    """``lightgbm`` for a LightGBM model through pyfunc, else ``pyfunc:<loader>``."""
    loader = str(model.metadata.flavors.get("python_function", {}).get("loader_module", ""))
    return "lightgbm" if loader == "mlflow.lightgbm" else f"pyfunc:{loader}"


def _compiled_or(predict: Any, engine: str, local: Path, columns: list[str]) -> tuple[Any, str, str]:
    """The compiled student if one was logged and can run here, else the given predictor and why."""
    from . import compiled

    if engine != "lightgbm":
        return predict, engine, "no compiled engine for this flavor"
    loaded = compiled.load_compiled(local, columns)
    if loaded.model is None:
        return predict, engine, loaded.note
    return loaded.model.predict, loaded.engine, loaded.note


def _pyfunc_predict(model: Any) -> Any:
    """Model outputs as an array. A pyfunc that returns a frame (a model of domain objects)
    gives its numeric columns, (n,) for one and (n, k) for several; boolean validity flags
    are not outputs. An array keeps its last column (the positive class of ``predict_proba``)."""

    def predict(frame: pd.DataFrame) -> np.ndarray:
        out = model.predict(frame)
        if isinstance(out, pd.DataFrame):
            values = out[[c for c in out.columns if not pd.api.types.is_bool_dtype(out[c])]].to_numpy(dtype=float)
            return values[:, 0] if values.shape[1] == 1 else values
        return _last_column(out, len(frame))

    return predict


def _pyfunc_scores(model: Any, tensors: dict[str, tuple[int, ...]] | None = None) -> Any:
    """For batch scoring: a frame a pyfunc returns (scores, validity flags) is passed on whole,
    so that ``stillroom.batch`` writes every output column and leaves flagged rows unscored.

    A model with tensor inputs gets each as one stacked array ``(n, *shape)`` by name; a
    single named output array (``{"probabilities": (n, k)}``) is taken as the model's output."""

    def predict(frame: pd.DataFrame) -> Any:
        data = {n: np.stack(frame[n].to_list()).reshape(-1, *shape) for n, shape in tensors.items()} if tensors else frame
        out = model.predict(data)
        if isinstance(out, dict) and len(out) == 1:
            out = next(iter(out.values()))
        return out.reset_index(drop=True) if isinstance(out, pd.DataFrame) else _last_column(out, len(frame))

    return predict


def _last_column(out: Any, rows: int) -> np.ndarray:
    return np.asarray(out, dtype=float).reshape(rows, -1)[:, -1]


def spark_udf_factory(pinned_uri: str) -> Any:
    """``spark -> UDF`` scoring the pinned model version in Spark's Python workers.

    ``env_manager="local"``: executors use the Python environment they run in (the same
    pinned packages); building a fresh environment per job would need the internet.
    """

    def factory(spark: Any) -> Any:
        try:
            return mlflow.pyfunc.spark_udf(spark, pinned_uri, result_type="double", env_manager="local")
        except Exception as exc:
            raise ModelLoadError(f"could not load {pinned_uri} into Spark: {_short(exc)}") from None

    return factory


def teacher_spark_udf_factory(uri: str) -> Any:
    """``spark -> UDF`` giving a teacher's positive-class probability, for labelling in Spark.

    Only teachers whose pyfunc returns probabilities qualify: a LightGBM model, or a
    scikit-learn model logged with ``pyfunc_predict_fn="predict_proba"`` (a plain sklearn
    pyfunc predicts hard labels, which would silently teach the wrong thing).
    """
    from mlflow.models import Model

    if uri.startswith("models:/") and MODEL_ALIAS_URI.match(uri):
        name, version, _ = resolve_registered(uri)
        uri = f"models:/{name}/{version}"
    try:
        flavors = Model.load(uri).flavors
    except Exception as exc:
        raise ModelLoadError(f"unknown model URI {uri!r}: {_short(exc)}") from None
    proba = flavors.get("python_function", {}).get("predict_fn") == "predict_proba"
    if "lightgbm" not in flavors and not proba:
        raise ModelLoadError(
            f"teacher {uri} cannot label through Spark: its pyfunc does not return probabilities "
            "(use a LightGBM model, or log the scikit-learn model with pyfunc_predict_fn='predict_proba')"
        )

    def factory(spark: Any) -> Any:
        from pyspark.sql import functions as F

        try:
            udf = mlflow.pyfunc.spark_udf(spark, uri, result_type="array<double>" if proba else "double", env_manager="local")
        except Exception as exc:
            raise ModelLoadError(f"could not load teacher {uri} into Spark: {_short(exc)}") from None
        return (lambda *cols: F.element_at(udf(*cols), -1)) if proba else udf

    return factory


def _reference(run_id: str | None) -> dict[str, Any] | None:
    """The training score histogram logged by the distillation run (for PSI), if any."""
    if not run_id:
        return None
    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/reference/score_histogram.json")
    except Exception:
        return None


def log_scoring_run(params: dict[str, Any], metrics: dict[str, float], artifacts: dict[str, Any], tags: dict[str, str]) -> str:
    """One run per batch scoring job in the scoring experiment; returns its id."""
    mlflow.set_experiment(SCORING_EXPERIMENT)
    with mlflow.start_run(run_name=f"score {params.get('model')} v{params.get('model_version')}", tags=tags) as active:
        log_params(params)
        log_metrics(metrics)
        for name, data in artifacts.items():
            mlflow.log_dict(data, name)
        return active.info.run_id


def model_version_tags(name: str, version: str) -> dict[str, str]:
    return dict(MlflowClient().get_model_version(name, version).tags)


# --- teachers from MLflow -----------------------------------------------------------------


def load_teacher_model(uri: str) -> tuple[Any, dict[str, Any]]:
    """A teacher's probability function and facts about it, from an MLflow model URI.

    scikit-learn and LightGBM teachers are loaded in their own flavor so that we get
    probabilities (a pyfunc sklearn model would predict hard labels); anything else goes
    through pyfunc and must return the positive-class probability.
    """
    from mlflow.models import Model

    facts: dict[str, Any] = {"uri": uri}
    if uri.startswith("models:/"):
        name, version, model_id = resolve_registered(uri)
        uri = f"models:/{name}/{version}"
        facts.update(name=name, version=version, model_id=model_id, pinned_uri=uri)
    try:
        meta = Model.load(uri)
    except Exception as exc:
        raise ModelLoadError(f"unknown model URI {uri!r}: {_short(exc)}") from None
    facts["model_id"] = facts.get("model_id") or getattr(meta, "model_id", None)
    flavors = set(meta.flavors)
    try:
        if "sklearn" in flavors:
            est = mlflow.sklearn.load_model(uri)
            return (lambda X: np.asarray(est.predict_proba(X))[:, 1]), facts | {"flavor": "sklearn", "object": est}
        if "lightgbm" in flavors:
            booster = mlflow.lightgbm.load_model(uri)
            return (lambda X: np.asarray(booster.predict(X))), facts | {"flavor": "lightgbm", "object": booster}
        if "pytorch" in flavors:  # the module itself: a torch vertical may need its intermediate features
            with _torchscript_quietly():
                module = mlflow.pytorch.load_model(uri, map_location="cpu")
                predict = _pyfunc_predict(mlflow.pyfunc.load_model(uri)) if "python_function" in flavors else None
            return predict, facts | {"flavor": "pytorch", "object": module}
        model = mlflow.pyfunc.load_model(uri)
    except Exception as exc:
        raise ModelLoadError(f"could not load teacher {uri!r}: {_short(exc)}") from None
    return _pyfunc_predict(model), facts | {"flavor": "pyfunc", "object": None}


@contextmanager
def _torchscript_quietly() -> Iterator[None]:
    """Load MLflow ``pytorch`` models without one warning that is noise in a user's run log.

    MLflow opens a TorchScript archive with ``torch.load``, which dispatches to
    ``torch.jit.load`` and warns that it did: correct behaviour. Only that warning is dropped."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="'torch.load' received a zip file that looks like a TorchScript archive")
        yield


# --- compliance report --------------------------------------------------------------------


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
        raise as_user_error(exc) or TrackingError(f"no run {run_id!r} in tracking store {uri}: {_short(exc)}") from None
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
        raise as_user_error(exc) or TrackingError(f"registered version {registered} is unreadable: {_short(exc)}") from None
    history = [p for p in promotion_history(name) if p.get("version") == version]
    return {"name": name, "version": version, "tags": dict(mv.tags), "aliases": aliases, "promotions": history}
