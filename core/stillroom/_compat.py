"""Deprecated module paths of stillroom 0.1's flat layout, kept importable.

Before the core was split into subpackages, verticals imported ``stillroom.data``,
``stillroom.targets``, ``stillroom.environment`` ... and a registered model loads through a
vertical's code: a model registered with an older vertical installed beside a newer core must
still load. Each old path is a thin module that re-exports the public names of the modules that
now hold them, and warns (``DeprecationWarning``) that the plugin API is :mod:`stillroom.contract`.
No core module imports these paths.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from collections.abc import Sequence

MOVED: dict[str, tuple[str, ...]] = {
    "stillroom.data": ("stillroom.contract.bundle", "stillroom.tasks.kinds"),
    "stillroom.registry": ("stillroom.contract.specs", "stillroom.plugins.registry"),
    "stillroom.protocols": ("stillroom.contract.protocols",),
    "stillroom.config": ("stillroom.contract.config",),
    "stillroom.context": ("stillroom.contract.context",),
    "stillroom.hookspecs": ("stillroom.contract.hookspecs",),
    "stillroom.targets": ("stillroom.tasks.targets", "stillroom.tasks.kinds"),
    "stillroom.taskmetrics": ("stillroom.tasks.measures",),
    "stillroom.reference": ("stillroom.tasks.judging", "stillroom.distillation.reference"),
    "stillroom.environment": ("stillroom._runtime", "stillroom.audit.environment"),
    "stillroom.manifest": ("stillroom._runtime", "stillroom.audit.manifest"),
    "stillroom.teachers": ("stillroom.contract.estimator", "stillroom.distillation.teachers"),
    "stillroom.plots": ("stillroom.metrics.plots",),
    "stillroom.compliance": ("stillroom.audit.compliance",),
    "stillroom.modelcard": ("stillroom.audit.modelcard",),
    "stillroom.batch": ("stillroom.scoring.formats", "stillroom.scoring.batch"),
    "stillroom.compiled": ("stillroom.scoring.compiled",),
    "stillroom.spark": ("stillroom.scoring.spark",),
}
"""Old module path -> the modules whose public names it re-exports (first one wins on a clash)."""


class _Shim(importlib.abc.Loader):
    """Builds an old module from the public names of its new homes."""

    def __init__(self, targets: Sequence[str]) -> None:
        self.targets = targets

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        warnings.warn(
            f"{module.__name__} is deprecated: import from stillroom.contract (the plugin API) instead",
            DeprecationWarning,
            stacklevel=2,
        )
        for target in reversed(self.targets):
            new = importlib.import_module(target)
            names = getattr(new, "__all__", None) or [n for n in vars(new) if not n.startswith("_")]
            module.__dict__.update({name: getattr(new, name) for name in names})
        module.__dict__["__deprecated_for__"] = tuple(self.targets)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the old paths of :data:`MOVED` (asked last, after the real modules)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None):  # type: ignore[override]
        targets = MOVED.get(fullname)
        if targets is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Shim(targets))


def install() -> None:
    """Make the old paths importable (once per process)."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.append(_Finder())
