"""The ``stillroom`` command line: plugins, distill, score, promote, report, ui, server, cache.

Errors a user can cause end in one line on stderr and exit code 2; nothing is started or
half-written before the inputs are known to be good.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .errors import ConfigError, StillroomError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Knowledge distillation for regulated industries, audited in MLflow."
)
console = Console()
err = Console(stderr=True)


def _fail(exc: StillroomError) -> None:
    err.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


@contextmanager
def _user_errors() -> Iterator[None]:
    """User errors, and a tracking server's 401/403 wherever it happens, as one line and exit 2."""
    try:
        yield
    except StillroomError as exc:
        _fail(exc)
    except Exception as exc:
        from .tracking import as_user_error

        user_error = as_user_error(exc)
        if user_error is None:
            raise
        _fail(user_error)


@app.command()
def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="print the inventory as JSON (for scripts and CI checks)")] = False,
) -> None:
    """List installed verticals with versions and the hooks each implements."""
    from .api import get_plugin_manager

    pm = get_plugin_manager()
    try:
        tasks = pm.registry.names("task")
    except StillroomError as exc:
        _fail(exc)
    if as_json:
        inventory = [dataclasses.asdict(info) for info in pm.inventory]
        typer.echo(json.dumps({"plugins": inventory, "tasks": tasks}, indent=2))
        return
    table = Table(title="stillroom plugins")
    for col in ("plugin", "distribution", "version", "status"):
        table.add_column(col, no_wrap=True)
    table.add_column("hooks", overflow="fold")
    for info in pm.inventory:
        status = f"[red]failed: {info.error}[/red]" if info.error else "[green]ok[/green]"
        hooks = ", ".join(h.removeprefix("stillroom_") for h in info.hooks)
        table.add_row(info.name, info.distribution, info.version, status, hooks)
    console.print(table)
    console.print(f"tasks: {', '.join(tasks) or 'none (install a vertical, e.g. stillroom-fraud)'}")


@app.command()
def distill(
    task: Annotated[str, typer.Argument(help="vertical to run, e.g. fraud")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML config (merged over the vertical's default)")
    ] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="override a field: --set recipe.alpha=0.5")] = None,
    print_config: Annotated[bool, typer.Option("--print-config", help="print the resolved config and exit")] = False,
) -> None:
    """Distill the vertical's teacher into a student; log and register it in MLflow."""
    from .api import distill as run_distillation
    from .api import get_plugin_manager
    from .contract import config as config_mod
    from .distillation.pipeline import load_config

    with _user_errors():
        if print_config:
            spec = get_plugin_manager().task(task)
            typer.echo(config_mod.dump(load_config(spec, config, overrides or [])), nl=False)  # plain YAML: pipeable
            return
        summary = run_distillation(task, config, overrides or [])
    console.print(f"open the run in the MLflow UI: [bold]stillroom ui[/bold], then experiment -> run {summary['run_id']}")


@app.command()
def score(
    model_uri: Annotated[str, typer.Argument(help="models:/NAME@ALIAS or models:/NAME/VERSION")],
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="CSV or Parquet")],
    output_path: Annotated[Path, typer.Argument(metavar="OUTPUT", help="CSV or Parquet (written atomically)")],
    engine: Annotated[
        str, typer.Option(help="local: stream through this process (compiled student when logged); spark: a Spark job")
    ] = "local",
    master: Annotated[
        str | None, typer.Option(help="Spark master URL for --engine spark, e.g. spark://host:7077 (default local[*])")
    ] = None,
    compiled: Annotated[
        bool, typer.Option(help="use the compiled student logged with the model, when it runs here (local engine)")
    ] = True,
    chunk_rows: Annotated[int, typer.Option(min=1, help="rows per chunk (bounds memory)")] = 100_000,
    passthrough: Annotated[
        list[str] | None, typer.Option("--passthrough", help="input column copied to the output, e.g. an id")
    ] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI (default: MLFLOW_TRACKING_URI)")] = None,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw", help="INPUT holds raw records (raw transactions with their history): computed into the model's inputs"
        ),
    ] = False,
) -> None:
    """Batch-score a file with a registered student; log the job as a scoring run."""
    from .api import score as run_score

    with _user_errors():
        summary = run_score(
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
        )
    psi = f", PSI vs training {summary['psi_vs_training']:.4f}" if "psi_vs_training" in summary else ""
    console.print(
        f"scored {summary['rows']:,} rows with {summary['model']} v{summary['model_version']} on {summary['engine']} "
        f"({summary['rows_per_second']:,.0f} rows/s{psi}) -> {summary['output']}"
    )


@app.command()
def promote(
    model: Annotated[str, typer.Argument(help="registered model name")],
    version: Annotated[str, typer.Option("--version", help="model version to promote")],
    approver: Annotated[str, typer.Option(help="who approves (recorded)")],
    reason: Annotated[str, typer.Option(help="why (recorded)")],
    override: Annotated[
        str | None, typer.Option(help="promote a version that failed its gate or its compliance check; the reason is recorded")
    ] = None,
    alias: Annotated[str, typer.Option(help="alias to set")] = "champion",
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI")] = None,
) -> None:
    """Point @champion at a model version, recording approver and reason."""
    from . import tracking

    with _user_errors(), tracking.client_settings():
        tracking.connect(tracking_uri)
        record = tracking.promote(model, version, approver, reason, override, alias)
    checks = f"gate {record['gate']}; compliance {record['compliance']}"
    console.print(f"{model} v{record['version']} is now @{alias} (approved by {approver}; {checks})")


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="the distillation run (its id is printed at the end of stillroom distill)")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="HTML file (default: stillroom-report-RUNID.html)")
    ] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI (default: MLFLOW_TRACKING_URI)")] = None,
) -> None:
    """Write a standalone HTML compliance report of a run, readable offline."""
    from . import tracking
    from .audit.report import write_report

    with _user_errors(), tracking.client_settings():
        tracking.connect(tracking_uri)
        path = write_report(run_id, output)
    console.print(f"compliance report: {path}")


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="port")] = 5000,
    host: Annotated[str, typer.Option(help="interface")] = "127.0.0.1",
    tracking_uri: Annotated[
        str | None, typer.Option(help="backend store (default: MLFLOW_TRACKING_URI or MLflow's default)")
    ] = None,
) -> None:
    """Open the MLflow UI on the tracking store, to audit runs and models."""
    from . import tracking

    store = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or tracking.current_uri()
    exe = shutil.which("mlflow") or str(Path(sys.executable).with_name("mlflow"))
    console.print(f"MLflow UI on http://{host}:{port} (store {store}); Ctrl+C to stop")
    raise typer.Exit(subprocess.call([exe, "ui", "--backend-store-uri", store, "--host", host, "--port", str(port)]))


cache_app = typer.Typer(no_args_is_help=True, help="The disk cache of teacher outputs, plugin-trained teachers and features.")
app.add_typer(cache_app, name="cache")


CacheDirOption = Annotated[
    Path | None, typer.Option("--dir", help="cache directory (default: STILLROOM_CACHE_DIR or ~/.cache/stillroom)")
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
    max_size: Annotated[str | None, typer.Option(help="keep at most this much, least recently used go first: 2GB")] = None,
    older_than: Annotated[float | None, typer.Option(min=0, help="remove entries unused for this many days")] = None,
    dry_run: Annotated[bool, typer.Option(help="list what would go, remove nothing")] = False,
    directory: CacheDirOption = None,
) -> None:
    """Reclaim disk: entries unused for a while, or the least recently used beyond a budget.

    A pruned entry is recomputed by the next run that needs it (a teacher retrained, outputs
    relabelled); only files stillroom writes are ever removed."""
    from .cache import format_size, parse_size, prune

    with _user_errors():
        if max_size is None and older_than is None:
            raise ConfigError("stillroom cache prune: give --max-size and/or --older-than (or see stillroom cache info)")
        limit = parse_size(max_size) if max_size is not None else None
        removed = prune(directory, max_bytes=limit, older_than_days=older_than, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for entry in removed if dry_run else []:
        console.print(
            f"  {entry.kind}: {entry.path} ({format_size(entry.size)}, last used {_when(entry.last_used)})",
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"{verb} {len(removed):,} file(s), {format_size(sum(e.size for e in removed))}", highlight=False)


server_app = typer.Typer(
    no_args_is_help=True, help="The team server: MLflow with a PostgreSQL store, served artifacts and basic auth."
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
) -> None:
    """Write a basic-auth config file for the team server (no password in it: see the README)."""
    from .server import auth_config_template

    text = auth_config_template(database_uri, admin_username)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text)
    output.chmod(0o600)  # it names the user store, credentials included
    console.print(f"wrote {output}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
