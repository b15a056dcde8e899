"""``stillroom server``: the checks that run before the team server starts, and its command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from stillroom.cli import app
from stillroom.server import ServerSettings


@pytest.fixture
def auth_ini(tmp_path: Path) -> Path:
    path = tmp_path / "basic_auth.ini"
    result = CliRunner().invoke(
        app, ["server", "auth-config", "--database-uri", f"sqlite:///{tmp_path / 'auth.db'}", "--output", str(path)]
    )
    assert result.exit_code == 0, result.output
    return path


def start(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> object:
    args = ["server", "start", "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    args += ["--artifacts-destination", str(tmp_path / "artifacts"), "--check", *extra]
    base = {"MLFLOW_FLASK_SERVER_SECRET_KEY": "", "MLFLOW_AUTH_ADMIN_PASSWORD": "", "MLFLOW_AUTH_CONFIG_PATH": ""}
    return CliRunner().invoke(app, args, env=base | (env or {}))


def test_auth_config_template_names_the_user_store_and_holds_no_password(auth_ini: Path, tmp_path: Path) -> None:
    text = auth_ini.read_text()
    assert f"database_uri = sqlite:///{tmp_path / 'auth.db'}" in text
    assert "default_permission = READ" in text and "admin_username = admin" in text
    assert "admin_password =" not in text.replace("# admin_password", "")
    assert auth_ini.stat().st_mode & 0o777 == 0o600


def test_auth_config_caches_a_successful_password_check_for_a_minute_as_mlflow_reads_it(
    auth_ini: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.server.auth.config import read_auth_config

    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(auth_ini))
    assert read_auth_config().auth_cache_ttl_seconds == 60
    off = tmp_path / "off.ini"
    args = ["server", "auth-config", "--database-uri", "sqlite:///a.db", "--auth-cache-seconds", "0", "--output", str(off)]
    assert CliRunner().invoke(app, args).exit_code == 0
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(off))
    assert read_auth_config().auth_cache_ttl_seconds == 0
    result = CliRunner().invoke(app, [*args[:-4], "--auth-cache-seconds", "-1"])
    assert result.exit_code == 2 and "'--auth-cache-seconds': Input should be greater than or equal to 0" in result.output


def test_a_team_server_needs_auth_unless_told_otherwise(tmp_path: Path) -> None:
    result = start(tmp_path)
    assert result.exit_code == 2 and "needs --auth-config FILE (or --no-auth" in result.output
    assert start(tmp_path, "--no-auth").exit_code == 0


def test_secret_key_and_first_start_admin_password_are_required(auth_ini: Path, tmp_path: Path) -> None:
    no_secret = start(tmp_path, "--auth-config", str(auth_ini))
    assert no_secret.exit_code == 2 and "MLFLOW_FLASK_SERVER_SECRET_KEY is not set" in no_secret.output
    no_admin = start(tmp_path, "--auth-config", str(auth_ini), env={"MLFLOW_FLASK_SERVER_SECRET_KEY": "k"})
    assert no_admin.exit_code == 2 and "set MLFLOW_AUTH_ADMIN_PASSWORD" in no_admin.output
    ok = start(
        tmp_path,
        "--auth-config",
        str(auth_ini),
        env={"MLFLOW_FLASK_SERVER_SECRET_KEY": "k", "MLFLOW_AUTH_ADMIN_PASSWORD": "p"},
    )
    assert ok.exit_code == 0, ok.output
    assert "--app-name basic-auth" in ok.output and "--serve-artifacts" in ok.output


def test_missing_auth_config_and_file_store_are_refused(tmp_path: Path) -> None:
    missing = start(tmp_path, "--auth-config", str(tmp_path / "nope.ini"), env={"MLFLOW_FLASK_SERVER_SECRET_KEY": "k"})
    assert missing.exit_code == 2 and "nope.ini does not exist" in missing.output
    result = CliRunner().invoke(
        app, ["server", "start", "--backend-store-uri", str(tmp_path), "--artifacts-destination", "x", "--no-auth", "--check"]
    )
    assert result.exit_code == 2 and "a team server needs a database URI" in result.output


def test_unreachable_database_is_named_without_its_password(tmp_path: Path) -> None:
    args = ["server", "start", "--backend-store-uri", "postgresql://mlflow:s3cret@127.0.0.1:9/mlflow"]
    result = CliRunner().invoke(app, [*args, "--artifacts-destination", str(tmp_path), "--no-auth", "--check"])
    assert result.exit_code == 2 and "is unreachable" in result.output
    assert "s3cret" not in result.output and "mlflow:***@127.0.0.1:9" in result.output


def test_command_line_and_environment(tmp_path: Path) -> None:
    settings = ServerSettings("postgresql://u:p@db/mlflow", "s3://bucket", tmp_path / "a.ini", port=5050, workers=2)
    cmd = settings.command("mlflow")
    assert cmd[:2] == ["mlflow", "server"]
    assert cmd[cmd.index("--backend-store-uri") + 1] == "postgresql://u:p@db/mlflow"
    assert cmd[cmd.index("--artifacts-destination") + 1] == "s3://bucket"
    assert cmd[cmd.index("--port") + 1] == "5050" and cmd[cmd.index("--workers") + 1] == "2"
    assert settings.environment()["MLFLOW_AUTH_CONFIG_PATH"] == str(tmp_path / "a.ini")
    assert "--app-name" not in ServerSettings("postgresql://db/x", "/srv", None).command("mlflow")
