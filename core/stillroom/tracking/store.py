"""The tracking store: connection, MLflow's client settings, and access control on a team server.

An unreachable store must fail in seconds with one message, before any work starts; on a server
with MLflow's basic-auth app, missing rights must be reported before an hour of training, not at
registration. MLflow reads its client settings (retries, timeouts, async logging) from the
environment; stillroom sets them only for the duration of one of its operations
(:func:`client_settings`) and gives the caller's environment back unchanged.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import socket
import sqlite3
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.tracking import MlflowClient, fluent
from mlflow.tracking._model_registry import utils as registry_utils
from mlflow.tracking._tracking_service import utils as tracking_utils

from ..errors import AccessDeniedError, TrackingError, first_line

CLIENT_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",  # a dead server must fail fast, not after minutes of retries
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",  # a run's record must be stored when the run ends
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # downloads to hash and check a model: not the user's business
}
"""MLflow client settings stillroom runs with, unless the user set them in the environment."""


@contextmanager
def client_settings() -> Iterator[None]:
    """:data:`CLIENT_SETTINGS` in the environment for the block (a user's own values win), then
    the caller's MLflow state exactly as it was: a library must not change its caller's MLflow
    behaviour. Restored on the way out, whatever happened: the whole environment (MLflow's
    ``set_experiment`` exports ``MLFLOW_EXPERIMENT_ID``), the tracking and registry URIs, the
    active experiment, the caller's active run (hidden from stillroom's own runs meanwhile) and
    the level of MLflow's logger (its chatter is quiet while stillroom works)."""
    saved = _MlflowState.capture()
    os.environ.update({k: v for k, v in CLIENT_SETTINGS.items() if k not in os.environ})
    fluent._active_run_stack.set([])
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    try:
        yield
    finally:
        saved.restore()


@dataclass
class _MlflowState:
    """What of MLflow's process-wide state a stillroom call may change, to give it back."""

    environ: dict[str, str]
    tracking_uri: str | None
    registry_uri: str | None
    experiment_id: str | None
    run_stack: list[Any]
    log_level: int

    @classmethod
    def capture(cls) -> _MlflowState:
        return cls(
            dict(os.environ),
            tracking_utils._tracking_uri,
            registry_utils._registry_uri,
            fluent._active_experiment_id,
            list(fluent._active_run_stack.get()),
            logging.getLogger("mlflow").level,
        )

    def restore(self) -> None:
        for key in set(os.environ) - set(self.environ):
            del os.environ[key]
        os.environ.update(self.environ)
        tracking_utils._tracking_uri = self.tracking_uri  # type: ignore[assignment]  # MLflow's own globals, typed None
        registry_utils._registry_uri = self.registry_uri  # type: ignore[assignment]
        fluent._active_experiment_id = self.experiment_id  # type: ignore[assignment]
        fluent._active_run_stack.set(self.run_stack)
        logging.getLogger("mlflow").setLevel(self.log_level)


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


def as_user_error(exc: BaseException) -> TrackingError | None:
    """A 401/403 from the tracking server, or a server that stopped answering, as one clear
    message; ``None`` for anything else.

    MLflow reports all of them as an ``MlflowException`` carrying the raw response body or the
    HTTP library's text; a user needs to know which it is and what to do about it, not the
    endpoint that refused or the connection pool's internals.
    """
    if not isinstance(exc, MlflowException):
        return None
    status = exc.get_http_status_code()
    user = os.environ.get(USERNAME_ENV)
    server = mlflow.get_tracking_uri()
    text = str(exc)
    if "timed out" in text.lower():
        return _no_answer(server, "a request", request_timeout())
    if "Max retries exceeded" in text or "Connection refused" in text:
        return TrackingError(f"tracking server {server} stopped answering (connection refused)")
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


def use_experiment(name: str) -> str:
    """Make ``name`` the active experiment, creating it if needed; returns its id.

    MLflow puts a new experiment's artifacts under ``./mlruns`` of the working directory of
    whichever command created it; for a local SQLite store they go beside the database file
    instead (``<store dir>/mlruns/<experiment>``), wherever the command runs from."""
    if mlflow.get_experiment_by_name(name) is None:
        location = default_artifact_location(name)
        try:
            mlflow.create_experiment(name, artifact_location=location)
        except MlflowException as exc:
            if mlflow.get_experiment_by_name(name) is None:  # not a race with another job creating it
                raise as_user_error(exc) or TrackingError(f"could not create experiment {name!r}: {short(exc)}") from None
    return str(mlflow.set_experiment(name).experiment_id)


def default_artifact_location(experiment: str) -> str | None:
    """``<store dir>/mlruns/<experiment>`` for a local SQLite store; ``None`` (the server's own
    default) for anything else."""
    root = artifact_root(mlflow.get_tracking_uri())
    if root is None:
        return None
    folder = re.sub(r"[^\w.-]+", "_", experiment).strip("._") or "experiment"
    return f"{root}/{folder}"


def artifact_root(uri: str) -> str | None:
    """The ``mlruns`` directory beside a local SQLite store's file (as a URI); ``None`` otherwise."""
    if not uri.startswith("sqlite:///") or uri.endswith(":memory:"):
        return None
    return (Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent / "mlruns").as_uri()


def store_directory(uri: str) -> Path | None:
    """The folder of a local store (a SQLite file's, a file store's), where files that belong
    beside it go (a search's study); ``None`` for a server."""
    if uri.startswith("sqlite:///") and not uri.endswith(":memory:"):
        return Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent
    if uri.startswith("file:"):
        return Path(uri.removeprefix("file://").removeprefix("file:")).expanduser().resolve()
    if "://" not in uri:
        return Path(uri).expanduser().resolve()
    return None


def current_uri() -> str:
    """The tracking URI MLflow would use now (the environment's, else MLflow's default)."""
    return str(mlflow.get_tracking_uri())


def use_store(uri: str | None) -> None:
    """Point tracking and registry at ``uri`` (``None``: back to the environment/default)."""
    mlflow.set_tracking_uri(uri)  # type: ignore[arg-type]  # None is MLflow's reset to the environment's URI
    mlflow.set_registry_uri(uri)  # type: ignore[arg-type]
    if uri is None and mlflow.active_run():
        mlflow.end_run()


CONNECT_SECONDS = 5.0


def request_timeout() -> float:
    """Seconds MLflow waits for one answer of the tracking server (``MLFLOW_HTTP_REQUEST_TIMEOUT``)."""
    try:
        return float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", CLIENT_SETTINGS["MLFLOW_HTTP_REQUEST_TIMEOUT"]))
    except ValueError:
        return float(CLIENT_SETTINGS["MLFLOW_HTTP_REQUEST_TIMEOUT"])


def _check_http(uri: str, parsed: Any) -> None:
    """The server accepts a connection and answers its health check, within stated times.

    A server that accepts connections but never answers (hung, or a port something else
    listens on) would otherwise cost every retry of MLflow's client before one vague line."""
    host = parsed.hostname or "localhost"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_SECONDS):
            pass
    except TimeoutError:
        raise TrackingError(f"tracking server {uri} is unreachable: no connection within {CONNECT_SECONDS:g} s") from None
    except OSError as exc:
        raise TrackingError(f"tracking server {uri} is unreachable: {exc}") from None
    wait = request_timeout()
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=wait).close()  # noqa: S310 - the user's own URI
    except urllib.error.HTTPError:
        return  # it answered; what it thinks of us is for the real request to say (401, 403 ...)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise _no_answer(uri, "its health check (GET /health)", wait) from None
        raise TrackingError(f"tracking server {uri} is unreachable: {reason}") from None


def _no_answer(uri: str, what: str, seconds: float) -> TrackingError:
    return TrackingError(f"tracking server {uri} did not answer {what} within {seconds:g} s (MLFLOW_HTTP_REQUEST_TIMEOUT)")


def _check_sqlite(uri: str) -> None:
    path = uri.split("sqlite:///", 1)[-1]
    if path and path != ":memory:":
        parent = Path(path).expanduser().resolve().parent
        if not parent.is_dir():
            raise TrackingError(f"tracking store {uri}: directory {parent} does not exist")


def short(exc: BaseException) -> str:
    return first_line(exc, 300)
