"""Errors a user can cause.

Every error a user can trigger (bad config, missing column, unknown plugin, unreachable
tracking store, corrupted model ...) is a :class:`StillroomError`. The CLI catches exactly
this class, prints its one-line message and exits non-zero; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message (its type name if it has none), cut to ``limit``
    at a word boundary (never mid-word, marked with ``...``): what a one-line error needs from a
    library's multi-line traceback text."""
    lines = str(exc).strip().splitlines()
    line = lines[0] if lines else type(exc).__name__
    if limit is None or len(line) <= limit:
        return line
    cut = line[: limit - 3]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + "..."


EXTRAS: dict[str, str] = {
    "pyspark": "spark",
    "py4j": "spark",
    "lleaves": "compiled",
    "llvmlite": "compiled",
    "lightgbm": "compiled",
    "torch": "torch",
    "psycopg": "server",
    "flask_wtf": "server",
}
"""Top-level module -> the extra of the ``stillroom`` distribution that installs it."""


class StillroomError(Exception):
    """Base class of user-facing errors: the message is shown to the user as is."""

    exit_code: int = 2


class ConfigError(StillroomError):
    """The run configuration is malformed or invalid."""


class DataError(StillroomError):
    """Input data is unusable: missing/extra columns, NaN/inf, wrong dtype, empty file."""


class PluginError(StillroomError):
    """A vertical or component is unknown, or two plugins registered the same name."""


class ModelLoadError(StillroomError):
    """A model URI or file cannot be resolved or loaded."""


class TrackingError(StillroomError):
    """The MLflow tracking store is unreachable or refused an operation."""


class GateError(StillroomError):
    """A promotion was refused because of the gate result."""


class AccessDeniedError(TrackingError):
    """The tracking server refused the credentials (401) or the operation (403)."""


class IntegrityError(ModelLoadError):
    """A model's files differ from the hashes recorded when it was logged or registered."""


class OutputError(StillroomError):
    """An output path is taken: it exists (no ``--overwrite``) or another job is writing it."""


class MissingDependencyError(StillroomError):
    """An optional dependency is not installed; the message carries the exact install command."""


def missing_dependency(exc: ModuleNotFoundError, purpose: str | None = None) -> MissingDependencyError:
    """A missing optional module as one line with the command that installs it: the extra of
    ``stillroom`` that brings it when there is one (``pip install 'stillroom[spark]'``), else the
    module's own package."""
    module = (exc.name or str(exc)).split(".")[0]
    extra = EXTRAS.get(module)
    command = f"pip install 'stillroom[{extra}]'" if extra else f"pip install {module}"
    need = f"{purpose} needs" if purpose else "this needs"
    return MissingDependencyError(f"{need} the Python package {module!r}, which is not installed: {command}")
