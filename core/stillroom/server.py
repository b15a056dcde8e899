"""The team server: MLflow's tracking server with a PostgreSQL store, served artifacts and basic auth.

``stillroom server start`` is what a platform team runs: it checks everything it can before
the server starts (driver installed, databases reachable, auth config readable, secrets set)
so a misconfiguration is one clear line instead of a gunicorn worker traceback, then hands
over to ``mlflow server --app-name basic-auth``. It adds no server code of its own: the
process that serves the team is MLflow's, configured, not wrapped.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .errors import ConfigError, TrackingError

SECRET_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"
ADMIN_PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"
AUTH_CONFIG_ENV = "MLFLOW_AUTH_CONFIG_PATH"


@dataclass(frozen=True)
class ServerSettings:
    """How the team server runs; every field maps to one ``mlflow server`` option."""

    backend_store_uri: str
    artifacts_destination: str
    auth_config: Path | None
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 4
    allowed_hosts: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def command(self, mlflow_exe: str | None = None) -> list[str]:
        """The ``mlflow server`` command line these settings stand for."""
        exe = mlflow_exe or shutil.which("mlflow") or str(Path(sys.executable).with_name("mlflow"))
        cmd = [exe, "server", "--backend-store-uri", self.backend_store_uri, "--serve-artifacts"]
        cmd += ["--artifacts-destination", self.artifacts_destination]
        cmd += ["--host", self.host, "--port", str(self.port), "--workers", str(self.workers)]
        if self.allowed_hosts:
            cmd += ["--allowed-hosts", self.allowed_hosts]
        if self.auth_config is not None:
            cmd += ["--app-name", "basic-auth"]
        return cmd

    def environment(self) -> dict[str, str]:
        """The process environment: the auth config path on top of the caller's environment."""
        env = dict(os.environ) | self.extra_env
        if self.auth_config is not None:
            env[AUTH_CONFIG_ENV] = str(self.auth_config)
        return env


def auth_config_template(database_uri: str, admin_username: str = "admin", auth_cache_seconds: int = 60) -> str:
    """The basic-auth config file a platform team starts from (no password in it, by design).

    ``auth_cache_seconds``: how long a worker remembers a successful password check (MLflow's
    ``auth_cache_ttl_seconds``; 0 checks every request). Each check is a slow salted hash, so
    without the cache a team server spends about 0.25 s of CPU on every request of every job.
    """
    if auth_cache_seconds < 0:
        raise ConfigError(f"--auth-cache-seconds must be 0 (off) or more, got {auth_cache_seconds}")
    text = resources.files("stillroom").joinpath("deploy/basic_auth.ini").read_text()
    values = {"database_uri": database_uri, "admin_username": admin_username, "auth_cache_seconds": str(auth_cache_seconds)}
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def read_auth_database(auth_config: Path) -> str:
    """The user-store URI of a basic-auth config file, or one clear error."""
    if not auth_config.is_file():
        raise ConfigError(f"auth config {auth_config} does not exist (write one with: stillroom server auth-config)")
    parser = configparser.ConfigParser()
    try:
        parser.read(auth_config)
        return parser["mlflow"]["database_uri"]
    except (configparser.Error, KeyError) as exc:
        raise ConfigError(f"auth config {auth_config} has no [mlflow] database_uri: {exc}") from None


def check(settings: ServerSettings, first_start: bool | None = None) -> None:
    """Fail with one message on anything that would break the server after it started.

    ``first_start`` (None: find out) says whether the auth store has no users yet, in which
    case MLflow needs the admin password from the environment to create the admin.
    """
    if settings.backend_store_uri.startswith(("file:", "/")) or "://" not in settings.backend_store_uri:
        raise ConfigError(f"backend store {settings.backend_store_uri!r}: a team server needs a database URI (postgresql://...)")
    check_database(settings.backend_store_uri, "backend store")
    if settings.auth_config is None:
        return
    if importlib.util.find_spec("flask_wtf") is None:
        raise ConfigError("MLflow's basic-auth app needs Flask-WTF: pip install 'stillroom[server]'")
    env = settings.environment()
    if not env.get(SECRET_ENV):
        raise ConfigError(f"{SECRET_ENV} is not set: the auth app needs it for CSRF protection (the same value on every server)")
    auth_db = read_auth_database(settings.auth_config)
    check_database(auth_db, "auth user store")
    if first_start is None:
        first_start = not _has_users(auth_db)
    if first_start and not env.get(ADMIN_PASSWORD_ENV):
        raise ConfigError(f"first start of the auth app: set {ADMIN_PASSWORD_ENV} so MLflow can create the admin user")


def check_database(uri: str, what: str) -> None:
    """Connect once: a missing driver or an unreachable database is named before the server starts."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(uri)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"{what} {_redact(uri)}: database driver {exc.name!r} missing (pip install 'stillroom[server]')"
        ) from None
    except sqlalchemy.exc.ArgumentError as exc:
        raise ConfigError(f"{what} {_redact(uri)} is not a database URI: {exc}") from None
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise TrackingError(f"{what} {_redact(uri)} is unreachable: {first}") from None
    finally:
        engine.dispose()


def _has_users(auth_db: str) -> bool:
    import sqlalchemy

    engine = sqlalchemy.create_engine(auth_db)
    try:
        with engine.connect() as conn:
            if not sqlalchemy.inspect(conn).has_table("users"):
                return False
            return (conn.execute(sqlalchemy.text("select count(*) from users")).scalar() or 0) > 0
    finally:
        engine.dispose()


def _redact(uri: str) -> str:
    """A database URI without its password, for messages and logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(uri).render_as_string(hide_password=True)
    except Exception:
        return uri
