"""stillroom: knowledge distillation for regulated industries.

Public surface for plugin authors: :data:`hookimpl` and the dataclasses in
:mod:`stillroom.registry`. For users: :func:`distill` and the ``stillroom`` CLI.
"""

from __future__ import annotations

from typing import Any

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("stillroom")


def distill(task: str, config: Any = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """Run one distillation of ``task`` and return its summary (run id, gate, version).

    ``config`` is a path to a YAML file, a dict, or ``None`` for the vertical's default.
    """
    from .pipeline import run_distillation

    return run_distillation(task, config, overrides or [])


__all__ = ["__version__", "distill", "hookimpl"]
