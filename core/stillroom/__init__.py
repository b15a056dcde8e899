"""stillroom: knowledge distillation for regulated industries.

For users: :func:`distill` and :func:`score` (:mod:`stillroom.api`) and the ``stillroom`` CLI.
For plugin authors: :mod:`stillroom.contract` is the whole plugin API (``hookimpl`` is also
here, as it always was). The map of the package is in docs/architecture.md.
"""

from __future__ import annotations

from typing import Any

import pluggy

from . import _compat
from ._runtime import package_version

_compat.install()  # the flat layout's module paths, deprecated (stillroom.data, stillroom.targets ...)
__version__ = package_version("stillroom")
hookimpl = pluggy.HookimplMarker("stillroom")
"""The hook implementation marker (the same as :data:`stillroom.contract.hookimpl`)."""


def distill(task: str, config: Any = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """Run one distillation of ``task`` and return its summary (see :func:`stillroom.api.distill`)."""
    from .api import distill as run

    return run(task, config, overrides)


def score(model_uri: str, input_path: Any, output_path: Any, **options: Any) -> dict[str, Any]:
    """Batch-score a file with a registered student (see :func:`stillroom.api.score`)."""
    from .api import score as run

    return run(model_uri, input_path, output_path, **options)


__all__ = ["__version__", "distill", "hookimpl", "score"]
