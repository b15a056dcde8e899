"""stillroom: knowledge distillation for regulated industries.

For users: :func:`distill`, :func:`score` and :func:`verify` (:mod:`stillroom.api`) and the
``stillroom`` CLI (also ``python -m stillroom``). Progress goes to the ``stillroom`` logger, which
shows nothing until the caller configures logging (or passes ``verbose=True``).
For plugin authors: :mod:`stillroom.contract` is the whole plugin API (``hookimpl`` is also
here, as it always was). The map of the package is in docs/architecture.md.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pluggy

from . import _compat
from ._runtime import package_version

_compat.install()  # the flat layout's module paths, deprecated (stillroom.data, stillroom.targets ...)
__version__ = package_version("stillroom")
hookimpl = pluggy.HookimplMarker("stillroom")
"""The hook implementation marker (the same as :data:`stillroom.contract.hookimpl`)."""
logging.getLogger("stillroom").addHandler(logging.NullHandler())  # a library: the caller decides what is shown

if TYPE_CHECKING:
    from .api import DistillResult, ScoreResult, SearchResult
    from .tracking import Verification


def distill(task: str, config: Any = None, overrides: list[str] | None = None, *, verbose: bool = False) -> DistillResult:
    """Run one distillation of ``task`` and return its result (see :func:`stillroom.api.distill`)."""
    from .api import distill as run

    return run(task, config, overrides, verbose=verbose)


def score(model_uri: str, input_path: Any, output_path: Any, **options: Any) -> ScoreResult:
    """Batch-score a file with a registered student (see :func:`stillroom.api.score`)."""
    from .api import score as run

    return run(model_uri, input_path, output_path, **options)


def verify(model_uri: str, **options: Any) -> Verification:
    """Check a registered version's files against their recorded hashes (see :func:`stillroom.api.verify`)."""
    from .api import verify as run

    return run(model_uri, **options)


def search(task: str, config: Any = None, overrides: list[str] | None = None, **options: Any) -> SearchResult:
    """Search the student and the recipe under a budget (see :func:`stillroom.api.search`)."""
    from .api import search as run

    return run(task, config, overrides, **options)


__all__ = ["__version__", "distill", "hookimpl", "score", "search", "verify"]
