"""Errors a user can cause.

Every error a user can trigger (bad config, missing column, unknown plugin, unreachable
tracking store, corrupted model ...) is a :class:`StillroomError`. The CLI catches exactly
this class, prints its one-line message and exits non-zero; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message (its type name if it has none), cut to ``limit``:
    what a one-line error needs from a library's multi-line traceback text."""
    lines = str(exc).strip().splitlines()
    return lines[0][:limit] if lines else type(exc).__name__


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
