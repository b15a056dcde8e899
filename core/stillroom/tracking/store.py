"""The tracking store: connection, MLflow's client settings, and access control on a team server.

An unreachable store must fail in seconds with one message, before any work starts; on a server
with MLflow's basic-auth app, missing rights must be reported before an hour of training, not at
registration. MLflow reads its client settings (retries, timeouts, async logging) from the
environment; stillroom sets them only for the duration of one of its operations
(:func:`client_settings`) and gives the caller's environment back unchanged.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import socket
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.tracking import MlflowClient

from ..errors import AccessDeniedError, TrackingError, first_line

CLIENT_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",  # a dead server must fail fast, not after minutes of retries
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",  # a run's record must be stored when the run ends
}
"""MLflow client settings stillroom runs with, unless the user set them in the environment."""


@contextmanager
def client_settings() -> Iterator[None]:
    """:data:`CLIENT_SETTINGS` in the environment for the block (a user's own values win), then
    the environment exactly as it was: a library must not change its caller's MLflow behaviour."""
    added = {k: v for k, v in CLIENT_SETTINGS.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


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
        raise as_user_error(exc) or TrackingError(f"tracking store {resolved} is not usable: {short(exc)}") from None
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
        raise as_user_error(exc) or TrackingError(f"could not look up registered model {name!r}: {short(exc)}") from None
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


def copy_migrated_sqlite(db_path: Path, template_dir: Path) -> None:
    """Create an empty MLflow SQLite store at ``db_path`` by copying a migrated template.

    A new SQLite store runs MLflow's whole chain of schema migrations, seconds of CPU; a test
    suite or a tool that makes many throwaway stores pays it once per MLflow version instead: the
    template (tables at the current schema, no experiment) is built under ``template_dir`` the
    first time, under a file lock so parallel workers build it once, and copied afterwards. MLflow
    then creates the Default experiment in the copy with the copy's own artifact root.
    """
    template = template_dir / f"mlflow-{mlflow.__version__}-schema.db"
    if not template.exists():
        _build_template(template)
    shutil.copyfile(template, db_path)


def _build_template(template: Path) -> None:
    template.parent.mkdir(parents=True, exist_ok=True)
    with open(template.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if template.exists():
            return
        with tempfile.TemporaryDirectory(dir=template.parent) as tmp:
            building = Path(tmp) / "schema.db"
            store = SqlAlchemyStore(f"sqlite:///{building}", str(Path(tmp) / "mlruns"))
            store.engine.dispose()
            with closing(sqlite3.connect(building)) as db, db:
                db.execute("DELETE FROM experiments WHERE experiment_id = 0")  # recreated per copy, with its own root
            os.replace(building, template)


def current_uri() -> str:
    """The tracking URI MLflow would use now (the environment's, else MLflow's default)."""
    return str(mlflow.get_tracking_uri())


def use_store(uri: str | None) -> None:
    """Point tracking and registry at ``uri`` (``None``: back to the environment/default)."""
    mlflow.set_tracking_uri(uri)  # type: ignore[arg-type]  # None is MLflow's reset to the environment's URI
    mlflow.set_registry_uri(uri)  # type: ignore[arg-type]
    if uri is None and mlflow.active_run():
        mlflow.end_run()


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


def short(exc: BaseException) -> str:
    return first_line(exc, 300)
