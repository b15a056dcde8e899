"""The team server for real: PostgreSQL store, served artifacts, MLflow's basic-auth app.

An authenticated data scientist distills and scores through the stillroom CLI; a client
without credentials, and a user without a grant, can neither register nor promote a model,
and each refusal is one clear line with nothing changed in the registry; an approver the
admin granted MANAGE promotes, and the record lands in PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
import pytest
from e2e.conftest import SMALL
from typer.testing import CliRunner

from stillroom import tracking
from stillroom.cli import app
from stillroom.contract.names import SCORING_EXPERIMENT

from .conftest import ADMIN, TeamServer

pytestmark = pytest.mark.slow

MODEL = "fraud-student"


@contextmanager
def acting_as(server: TeamServer, user: str | None) -> Iterator[None]:
    """Point this process's MLflow client at the server with ``user``'s credentials."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in server.env(user).items():
            mp.setenv(key, value)
        tracking.use_store(server.url)
        try:
            yield
        finally:
            tracking.use_store(None)


def cli(server: TeamServer, user: str | None, *args: str) -> Any:
    with acting_as(server, user):
        return CliRunner().invoke(app, list(args), env=server.env(user))


def versions(server: TeamServer) -> list[str]:
    import mlflow

    with acting_as(server, ADMIN[0]):
        return sorted(v.version for v in mlflow.MlflowClient().search_model_versions(f"name = '{MODEL}'"))


def assert_one_line_refusal(result: Any, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)


@pytest.fixture(scope="module")
def distilled(team_server: TeamServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """alice, authenticated, distills the fraud vertical against the team server."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STILLROOM_CACHE_DIR", str(cache))
        result = cli(team_server, "alice", "distill", "fraud", *[a for o in SMALL for a in ("--set", o)])
    assert result.exit_code in (0, 3), result.output  # 3: the gate failed, the run is kept (checked below)
    import mlflow

    with acting_as(team_server, "alice"):
        run = mlflow.search_runs(
            experiment_names=["stillroom-fraud"], filter_string="tags.`stillroom.role` = 'distillation'", output_format="list"
        )[0]
    gate = run.data.tags["stillroom.gate"]
    assert result.exit_code == (0 if gate == "passed" else 3), result.output
    return {"run_id": run.info.run_id, "gate": gate, "output": result.output}


def test_authenticated_distillation_lands_in_postgres_and_served_artifacts(team_server: TeamServer, distilled: dict) -> None:
    import sqlalchemy

    assert versions(team_server) == ["1"]
    engine = sqlalchemy.create_engine(team_server.cluster.uri("mlflow"))
    with engine.connect() as conn:
        rows = conn.execute(
            sqlalchemy.text("select version, t.value from model_versions v join model_version_tags t using (name, version) "
                            "where v.name = :n and t.key = 'stillroom.gate'"),
            {"n": MODEL},
        ).all()  # fmt: skip
        owner = conn.execute(sqlalchemy.text("select user_id from runs where run_uuid = :r"), {"r": distilled["run_id"]}).scalar()
    engine.dispose()
    assert rows == [(1, distilled["gate"])]
    assert owner == "alice"  # the run records who ran it (the authenticated user)
    cards = list(team_server.artifacts.rglob("model_card.md"))
    assert len(cards) == 1 and "## Release gate" in cards[0].read_text()


def test_authenticated_scoring_job(team_server: TeamServer, distilled: dict, tmp_path: Any) -> None:
    from stillroom_fraud.batch import make_batch

    src, out = tmp_path / "batch.parquet", tmp_path / "scores.parquet"
    make_batch(rows=3000, seed=5, n_customers=300, n_terminals=600).to_parquet(src)
    result = cli(
        team_server,
        "alice",
        "score",
        f"models:/{MODEL}/1",
        str(src),
        str(out),
        "--passthrough",
        "TRANSACTION_ID",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(out)) == 3000
    import mlflow

    with acting_as(team_server, "alice"):
        runs = mlflow.search_runs(experiment_names=[SCORING_EXPERIMENT], output_format="list")
    assert [r.data.metrics["rows"] for r in runs] == [3000.0]


def test_unauthenticated_client_cannot_distill_register_or_promote(team_server: TeamServer, distilled: dict) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    refused = cli(team_server, None, "distill", "fraud", *[a for o in SMALL for a in ("--set", o)])
    assert_one_line_refusal(refused, "refused to authenticate you (set MLFLOW_TRACKING_USERNAME")
    promote = cli(team_server, None, "promote", MODEL, "--version", "1", "--approver", "x", "--reason", "y", "--override", "z")
    assert_one_line_refusal(promote, "refused to authenticate you")
    # alice's right password is in the workers' credential cache by now: a wrong one still fails
    wrong_password = team_server.env("alice") | {"MLFLOW_TRACKING_PASSWORD": "guess"}
    with acting_as(team_server, "alice"):
        guessed = CliRunner().invoke(
            app, ["promote", MODEL, "--version", "1", "--approver", "x", "--reason", "y"], env=wrong_password
        )
    assert_one_line_refusal(guessed, "refused to authenticate you as 'alice' (wrong password?)")
    with acting_as(team_server, None), pytest.raises(MlflowException) as exc:
        mlflow.register_model(f"runs:/{distilled['run_id']}/student", MODEL)
    assert exc.value.get_http_status_code() == 401
    assert versions(team_server) == ["1"]
    with acting_as(team_server, ADMIN[0]):
        assert mlflow.MlflowClient().get_registered_model(MODEL).aliases == {}


def test_user_without_permission_cannot_register_or_promote(team_server: TeamServer, distilled: dict) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    promote = cli(
        team_server, "bob", "promote", MODEL, "--version", "1", "--approver", "bob", "--reason", "why not", "--override", "x"
    )
    assert_one_line_refusal(promote, "permission denied: user 'bob' has READ on registered model 'fraud-student'")
    # the pre-flight check refuses before the data is even loaded, let alone a teacher trained
    distill = cli(team_server, "bob", "distill", "fraud", *[a for o in SMALL for a in ("--set", o)])
    assert_one_line_refusal(distill, "permission denied: user 'bob' has READ on experiment 'stillroom-fraud'")
    assert "teacher" not in distill.output
    with acting_as(team_server, "bob"), pytest.raises(MlflowException) as exc:
        mlflow.register_model(f"runs:/{distilled['run_id']}/student", MODEL)
    assert exc.value.get_http_status_code() == 403
    assert tracking.as_user_error(exc.value) is not None
    assert versions(team_server) == ["1"]
    with acting_as(team_server, ADMIN[0]):
        client = mlflow.MlflowClient()
        assert client.get_registered_model(MODEL).aliases == {}
        assert not any(k.startswith("stillroom.promotion.") for k in client.get_model_version(MODEL, "1").tags)


def test_approver_granted_manage_promotes_and_the_record_is_kept(team_server: TeamServer, distilled: dict) -> None:
    import mlflow
    from mlflow.server import get_app_client

    with acting_as(team_server, ADMIN[0]):
        get_app_client("basic-auth", tracking_uri=team_server.url).grant_user_permission(
            "carol", "registered_model", MODEL, "MANAGE"
        )
    override = [] if distilled["gate"] == "passed" else ["--override", "pilot on the team server"]
    result = cli(
        team_server,
        "carol",
        "promote",
        MODEL,
        "--version",
        "1",
        "--approver",
        "Carol Risk",
        "--reason",
        "MRM-7 review",
        *override,
    )
    assert result.exit_code == 0, result.output
    with acting_as(team_server, "bob"):  # READ is enough to audit
        assert str(mlflow.MlflowClient().get_model_version_by_alias(MODEL, "champion").version) == "1"
        history = tracking.promotion_history(MODEL)
    assert [(h["approver"], h["reason"], h["version"]) for h in history] == [("Carol Risk", "MRM-7 review", "1")]
