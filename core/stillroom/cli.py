"""The ``stillroom`` command line: plugins, distill, score, verify, promote, report, ui, server, cache.

Conventions a batch job and a person can rely on:

* a command's own result goes to stdout (a table, a line, or JSON with ``--json``); everything
  else (progress, notes) is logged on stderr through the ``logging`` module (``-q``/``-v``);
* a user error is one line ``error: ...`` on stderr, printed as is (no markup: brackets in a
  message survive), with exit code 2, and nothing half-written; an optional dependency that is
  missing says the exact install command;
* ``distill`` and ``search`` exit 3 when the run completed but its gate failed (logged and
  registered, tagged failed), so a pipeline can stop before promoting it;
* SIGINT and SIGTERM are handled alike: the job cleans up (partial output removed, MLflow runs
  ended FAILED with the step) and exits 130 or 143;
* ``stillroom --version``, ``python -m stillroom``, and shell completion
  (``stillroom --install-completion``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .errors import ConfigError, StillroomError, missing_dependency

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Knowledge distillation for regulated industries, audited in MLflow.",
)
console = Console(markup=False, highlight=False, soft_wrap=True)
GATE_FAILED = 3
"""``stillroom distill``'s exit status when the run completed but its gate failed."""


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _user_errors() -> Iterator[None]:
    """User errors, a missing optional dependency, a tracking server's refusal or silence, and
    SIGINT/SIGTERM, wherever they happen, as one line on stderr and a non-zero exit."""
    from .interrupts import Interrupted, handling_signals

    try:
        with handling_signals():
            yield
    except StillroomError as exc:
        _fail(str(exc), exc.exit_code)
    except Interrupted as exc:
        _fail(f"{exc}; stopped, nothing left half-written", exc.exit_code)
    except ModuleNotFoundError as exc:
        _fail(str(missing_dependency(exc)))
    except Exception as exc:
        from .tracking import as_user_error

        user_error = as_user_error(exc)
        if user_error is None:
            raise
        _fail(str(user_error), user_error.exit_code)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"stillroom {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="log only warnings and errors on stderr")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log debug detail on stderr")] = False,
) -> None:
    """Knowledge distillation for regulated industries, audited in MLflow."""
    from .progress import live_display, logger, show_on_stderr

    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    if not any(getattr(h, "_stillroom_cli", False) for h in logger.handlers):
        handler = show_on_stderr(level)
        handler._stillroom_cli = True  # type: ignore[attr-defined]
    else:
        logger.setLevel(level)
    live_display(not quiet and sys.stderr.isatty())


JsonOption = Annotated[bool, typer.Option("--json", help="print the result as JSON on stdout (for scripts)")]
TrackingUriOption = Annotated[str | None, typer.Option(metavar="URI", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI)")]


@app.command()
def plugins(as_json: JsonOption = False) -> None:
    """List installed verticals with versions and the hooks each implements."""
    from .api import get_plugin_manager

    pm = get_plugin_manager()
    with _user_errors():
        tasks = pm.registry.names("task")
    if as_json:
        inventory = [dataclasses.asdict(info) for info in pm.inventory]
        _print_json({"plugins": inventory, "tasks": tasks})
        return
    table = Table(title="stillroom plugins")
    for col in ("plugin", "distribution", "version", "status"):
        table.add_column(col, no_wrap=True)
    table.add_column("hooks", overflow="fold")
    for info in pm.inventory:
        status = f"failed: {info.error}" if info.error else "ok"
        hooks = ", ".join(h.removeprefix("stillroom_") for h in info.hooks)
        table.add_row(info.name, info.distribution, info.version, status, hooks, style="red" if info.error else None)
    console.print(table)
    console.print(f"tasks: {', '.join(tasks) or 'none (install a vertical, e.g. stillroom-fraud)'}")


@app.command()
def distill(
    task: Annotated[str, typer.Argument(metavar="TASK", help="vertical to run, e.g. fraud")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", metavar="FILE", help="YAML config (merged over the vertical's default)")
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="override a field: --set recipe.alpha=0.5")
    ] = None,
    print_config: Annotated[bool, typer.Option("--print-config", help="print the resolved config and exit")] = False,
    as_json: JsonOption = False,
) -> None:
    """Distill the vertical's teacher into a student; log and register it in MLflow.

    Exit status: 0 when the gate passed; 3 when it failed (the run is logged and the version
    registered, tagged stillroom.gate=failed, for review); 2 on an error (bad config, a gate rule
    this data cannot apply, bad data: nothing trained or logged); 130/143 when interrupted.
    """
    from . import tracking
    from .api import DistillResult, get_plugin_manager, run_distillation
    from .audit.summary import print_summary
    from .contract import config as config_mod
    from .distillation.pipeline import load_config

    with _user_errors():
        if print_config:
            spec = get_plugin_manager().task(task)
            typer.echo(config_mod.dump(load_config(spec, config, overrides or [])), nl=False)  # plain YAML: pipeable
            return
        with tracking.client_settings():
            summary = run_distillation(task, config, overrides or [])
    if as_json:
        _print_json(DistillResult.from_summary(summary).to_dict())
    else:
        print_summary(summary)
        console.print(f"open the run in the MLflow UI: stillroom ui, then experiment -> run {summary['run_id']}")
    if summary["gate"] != "passed":
        raise typer.Exit(GATE_FAILED)


@app.command()
def search(
    task: Annotated[str, typer.Argument(metavar="TASK", help="vertical to search, e.g. fraud")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", metavar="FILE", help="YAML config (merged over the vertical's default)")
    ] = None,
    budget: Annotated[str | None, typer.Option(metavar="DURATION", help="wall time for trials: 30m, 2h, 90s")] = None,
    trials: Annotated[int | None, typer.Option(min=1, metavar="N", help="at most N trials (with or without --budget)")] = None,
    jobs: Annotated[int | None, typer.Option(min=1, metavar="N", help="trials at once (default: the usable cores)")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="override a field: --set search.sampler=nsga2")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Search the student and the recipe under a budget; distill, gate and register the chosen one.

    Trials are judged on validation; the chosen student is scored on test once. Run the same
    command again to resume an interrupted search (finished trials are kept). Exit status: 0 when
    the chosen student's gate passed; 3 when it failed on test (registered for review); 2 on an
    error or when no trial met the constraints (nothing registered); 130/143 when interrupted.
    """
    from . import tracking
    from .api import SearchResult, run_search_job
    from .audit.summary import print_summary

    with _user_errors():
        with tracking.client_settings():
            summary = run_search_job(task, config, overrides or [], budget, trials, jobs)
    if as_json:
        _print_json(SearchResult.from_summary(summary).to_dict())
    else:
        t = summary["trials"]
        console.print(
            f"search {summary['study']}: {t['total']} trials ({t['complete']} complete, {t['pruned']} pruned, "
            f"{t['failed']} failed), {t['feasible']} feasible, {len(summary['front'])} on the front; "
            f"chosen: trial {summary['chosen_trial']} {summary['chosen_params']}"
        )
        print_summary(summary["distillation"])
        console.print(f"open the search in the MLflow UI: stillroom ui, then experiment -> run {summary['run_id']}")
    if summary["distillation"]["gate"] != "passed":  # as distill: a batch job must not ship a student the gate failed
        raise typer.Exit(GATE_FAILED)


@app.command()
def score(
    model_uri: Annotated[str, typer.Argument(metavar="MODEL_URI", help="models:/NAME@ALIAS or models:/NAME/VERSION")],
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="CSV or Parquet")],
    output_path: Annotated[Path, typer.Argument(metavar="OUTPUT", help="CSV or Parquet (written atomically)")],
    engine: Annotated[
        str,
        typer.Option(
            metavar="local|spark", help="local: stream through this process (compiled student when logged); spark: a Spark job"
        ),
    ] = "local",
    master: Annotated[
        str | None,
        typer.Option(metavar="URL", help="Spark master URL for --engine spark, e.g. spark://host:7077 (default local[*])"),
    ] = None,
    compiled: Annotated[
        bool, typer.Option(help="use the compiled student logged with the model, when it runs here (local engine)")
    ] = True,
    chunk_rows: Annotated[int, typer.Option(min=1, metavar="N", help="rows per chunk (bounds memory)")] = 100_000,
    passthrough: Annotated[
        list[str] | None, typer.Option("--passthrough", metavar="COLUMN", help="input column copied to the output, e.g. an id")
    ] = None,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw", help="INPUT holds raw records (raw transactions with their history): computed into the model's inputs"
        ),
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace OUTPUT if it exists (refused otherwise)")] = False,
    trust_unverified: Annotated[
        bool,
        typer.Option(
            "--trust-unverified", help="score a version that has no recorded file hashes (recorded as unverified on the run)"
        ),
    ] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar on a terminal")] = True,
    tracking_uri: TrackingUriOption = None,
    as_json: JsonOption = False,
) -> None:
    """Batch-score a file with a registered student; log the job as a scoring run."""
    from .api import score as run_score

    with _user_errors():
        result = run_score(
            model_uri,
            input_path,
            output_path,
            chunk_rows=chunk_rows,
            passthrough=tuple(passthrough or ()),
            progress=progress,
            tracking_uri=tracking_uri,
            engine=engine,
            master=master,
            compiled=compiled,
            raw=raw,
            overwrite=overwrite,
            trust_unverified=trust_unverified,
        )
    if as_json:
        _print_json(result.to_dict())
        return
    psi = f", PSI vs training {result.psi_vs_training:.4f}" if result.psi_vs_training is not None else ""
    console.print(
        f"scored {result.rows:,} rows with {result.model} v{result.model_version} on {result.engine} "
        f"({result.rows_per_second:,.0f} rows/s{psi}) -> {result.output} (sha256 {result.output_digest[:16]}...)"
    )


@app.command()
def verify(
    model_uri: Annotated[str, typer.Argument(metavar="MODEL_URI", help="models:/NAME@ALIAS or models:/NAME/VERSION")],
    tracking_uri: TrackingUriOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check a registered version's files against the sha256 recorded at registration, and its run.

    Nothing is loaded or deserialised. Exit 0 when every file matches and the run is FINISHED;
    otherwise one error line naming the first problem, exit 2 (for a scheduled check)."""
    from .api import verify as run_verify

    with _user_errors():
        found = run_verify(model_uri, tracking_uri=tracking_uri)
    if as_json:
        _print_json(found.as_dict())
    else:
        for check in found.files:
            console.print(f"  {check.status:<10} {check.path}")
    if found.source is None:
        _fail(f"{found.name} v{found.version} has no recorded file hashes: nothing to verify it against")
    bad = next((c for c in found.files if c.status != "ok"), None)
    if bad is not None:
        _fail(f"{found.name} v{found.version}: file {bad.path} is {bad.status} (recorded {found.source})")
    if found.run_status != "FINISHED":
        _fail(f"{found.name} v{found.version}: its run {found.run_id} is {found.run_status}, not FINISHED")
    if not as_json:
        console.print(f"{found.name} v{found.version}: {len(found.files)} files match their sha256 recorded {found.source}")


@app.command()
def promote(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="registered model name")],
    version: Annotated[str, typer.Option("--version", metavar="N", help="model version to promote")],
    approver: Annotated[str, typer.Option(metavar="NAME", help="who approves (recorded)")],
    reason: Annotated[str, typer.Option(metavar="TEXT", help="why (recorded)")],
    override: Annotated[
        str | None,
        typer.Option(
            metavar="REASON", help="promote a version that failed its gate or its compliance check; the reason is recorded"
        ),
    ] = None,
    alias: Annotated[str, typer.Option(metavar="ALIAS", help="alias to set")] = "champion",
    tracking_uri: TrackingUriOption = None,
    as_json: JsonOption = False,
) -> None:
    """Point @champion at a model version, recording approver and reason."""
    from . import tracking

    with _user_errors(), tracking.client_settings():
        tracking.connect(tracking_uri)
        record = tracking.promote(model, version, approver, reason, override, alias)
    if as_json:
        _print_json(record)
        return
    checks = f"gate {record['gate']}; compliance {record['compliance']}"
    console.print(f"{model} v{record['version']} is now @{alias} (approved by {approver}; {checks})")


@app.command()
def report(
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="the distillation run (its id is printed at the end of stillroom distill)")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", metavar="FILE", help="HTML file (default: stillroom-report-RUNID.html)")
    ] = None,
    tracking_uri: TrackingUriOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write a standalone HTML compliance report of a run, readable offline."""
    from . import tracking
    from .audit.report import write_report

    with _user_errors(), tracking.client_settings():
        tracking.connect(tracking_uri)
        path = write_report(run_id, output)
    if as_json:
        _print_json({"run_id": run_id, "report": str(path)})
        return
    console.print(f"compliance report: {path}")


@app.command()
def ui(
    port: Annotated[int, typer.Option(metavar="PORT", help="port")] = 5000,
    host: Annotated[str, typer.Option(metavar="HOST", help="interface")] = "127.0.0.1",
    tracking_uri: Annotated[
        str | None, typer.Option(metavar="URI", help="backend store (default: MLFLOW_TRACKING_URI or MLflow's default)")
    ] = None,
) -> None:
    """Open the MLflow UI on the tracking store, to audit runs and models.

    The MLflow server runs in this process's place (exec): its pid is the one to stop, and
    stopping it stops the server and its workers."""
    from . import tracking

    store = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or tracking.current_uri()
    exe = shutil.which("mlflow") or str(Path(sys.executable).with_name("mlflow"))
    command = [exe, "ui", "--backend-store-uri", store, "--host", host, "--port", str(port)]
    artifacts = tracking.artifact_root(store)
    if artifacts is not None:  # runs created from the UI land beside the store, like stillroom's own
        command += ["--default-artifact-root", artifacts]
    console.print(f"MLflow UI on http://{host}:{port} (store {store}); Ctrl+C to stop")
    sys.stdout.flush()
    os.execv(command[0], command)


cache_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="The disk cache of teacher outputs, plugin-trained teachers and features."
)
app.add_typer(cache_app, name="cache")


CacheDirOption = Annotated[
    Path | None,
    typer.Option("--dir", metavar="DIR", help="cache directory (default: STILLROOM_CACHE_DIR or ~/.cache/stillroom)"),
]


@cache_app.command("info")
def cache_info(directory: CacheDirOption = None) -> None:
    """What the cache holds: files and size per kind, and when it was last used."""
    from .cache import default_cache_dir, entries, format_size

    root = directory or default_cache_dir()
    found = entries(root)
    table = Table(title=f"stillroom cache: {root}")
    for column in ("kind", "files", "size", "last used"):
        table.add_column(column, justify="right" if column in ("files", "size") else "left")
    for kind in sorted({e.kind for e in found}):
        part = [e for e in found if e.kind == kind]
        last = max(e.last_used for e in part)
        table.add_row(kind, f"{len(part):,}", format_size(sum(e.size for e in part)), _when(last))
    table.add_row("total", f"{len(found):,}", format_size(sum(e.size for e in found)), "", style="bold")
    console.print(table)


def _when(timestamp: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


@cache_app.command("prune")
def cache_prune(
    max_size: Annotated[
        str | None,
        typer.Option(
            metavar="SIZE", help="keep at most this much, least recently used go first: 500MB, 5GB (a unit is required)"
        ),
    ] = None,
    older_than: Annotated[
        float | None, typer.Option(min=0, metavar="DAYS", help="remove entries unused for this many days")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="list what would go, remove nothing")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="remove without asking")] = False,
    directory: CacheDirOption = None,
) -> None:
    """Reclaim disk: entries unused for a while, or the least recently used beyond a budget.

    What would go is listed and confirmed first (or give --yes). A pruned entry is recomputed by
    the next run that needs it (a teacher retrained, outputs relabelled); only files stillroom
    writes are ever removed."""
    from .cache import format_size, parse_size, prune

    with _user_errors():
        if max_size is None and older_than is None:
            raise ConfigError("stillroom cache prune: give --max-size and/or --older-than (or see stillroom cache info)")
        limit = parse_size(max_size) if max_size is not None else None
        planned = prune(directory, max_bytes=limit, older_than_days=older_than, dry_run=True)
        for entry in planned:
            console.print(f"  {entry.kind}: {entry.path} ({format_size(entry.size)}, last used {_when(entry.last_used)})")
        total = format_size(sum(e.size for e in planned))
        if dry_run or not planned:
            console.print(f"would remove {len(planned):,} file(s), {total}" if dry_run else "nothing to remove")
            return
        if not yes:
            if not sys.stdin.isatty():
                raise ConfigError(
                    f"would remove {len(planned):,} file(s), {total}; add --yes to do it without a terminal to ask on"
                )
            if not typer.confirm(f"remove {len(planned):,} file(s), {total}?", default=False):
                console.print("nothing removed")
                return
        removed = prune(directory, max_bytes=limit, older_than_days=older_than)
    console.print(f"removed {len(removed):,} file(s), {format_size(sum(e.size for e in removed))}")


server_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="The team server: MLflow with a PostgreSQL store, served artifacts and basic auth.",
)
app.add_typer(server_app, name="server")


@server_app.command("start")
def server_start(
    backend_store_uri: Annotated[
        str, typer.Option(envvar="STILLROOM_BACKEND_STORE_URI", help="runs and registry: postgresql://USER:PASS@HOST:PORT/DB")
    ],
    artifacts_destination: Annotated[
        str, typer.Option(envvar="STILLROOM_ARTIFACTS_DESTINATION", help="where served artifacts live: a directory or s3://...")
    ],
    auth_config: Annotated[
        Path | None,
        typer.Option(envvar="MLFLOW_AUTH_CONFIG_PATH", help="basic-auth config (stillroom server auth-config writes one)"),
    ] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="run without authentication (a trusted network only)")] = False,
    host: Annotated[str, typer.Option(help="interface to bind (0.0.0.0: every interface)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 5000,
    workers: Annotated[int, typer.Option(min=1, help="server worker processes")] = 4,
    allowed_hosts: Annotated[str | None, typer.Option(help="Host headers to accept, e.g. mlflow.bank.internal")] = None,
    check_only: Annotated[bool, typer.Option("--check", help="check the settings, print the command, do not start")] = False,
) -> None:
    """Check the team server's settings, then run ``mlflow server --app-name basic-auth`` in this process."""
    from .server import ServerSettings, check

    with _user_errors():
        if auth_config is None and not no_auth:
            raise ConfigError("a team server needs --auth-config FILE (or --no-auth, for a trusted network only)")
        settings = ServerSettings(
            backend_store_uri,
            artifacts_destination,
            None if no_auth else auth_config,
            host=host,
            port=port,
            workers=workers,
            allowed_hosts=allowed_hosts,
        )
        check(settings)
    command = settings.command()
    if check_only:
        console.print("settings ok; the server would run:", " ".join(_redacted(command)), soft_wrap=True, highlight=False)
        return
    console.print(f"stillroom team server on http://{host}:{port} (auth: {'off' if no_auth else 'basic'})")
    sys.stdout.flush()
    os.execve(command[0], command, settings.environment())  # MLflow's process, so signals reach it directly


def _redacted(command: list[str]) -> list[str]:
    from .server import _redact

    return [_redact(arg) if "://" in arg and "@" in arg else arg for arg in command]


@server_app.command("auth-config")
def server_auth_config(
    database_uri: Annotated[str, typer.Option(help="user store: postgresql://USER:PASS@HOST:PORT/mlflow_auth")],
    admin_username: Annotated[str, typer.Option(help="the admin created on first start")] = "admin",
    output: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
    auth_cache_seconds: Annotated[
        int, typer.Option(min=0, help="remember a successful password check this long per worker (0: check every request)")
    ] = 60,
) -> None:
    """Write a basic-auth config file for the team server (no password in it: see the README)."""
    from .server import auth_config_template

    text = auth_config_template(database_uri, admin_username, auth_cache_seconds)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text)
    output.chmod(0o600)  # it names the user store, credentials included
    console.print(f"wrote {output}")


def main() -> None:
    """The ``stillroom`` command (console script and ``python -m stillroom``)."""
    from .progress import own_stderr

    own_stderr()
    app()


if __name__ == "__main__":
    main()
