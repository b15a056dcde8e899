"""The plugin manager: built-ins, entry points ``stillroom.plugins``, inventory.

Typed forwarding methods (the tox 4 pattern) keep hook calls out of the rest of the code.
A vertical whose import fails is recorded with its error and skipped, so one broken install
never takes the other verticals down.
"""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pluggy

from . import hookspecs
from .errors import PluginError
from .registry import ComplianceProfile, Registry, TaskSpec

if TYPE_CHECKING:
    import pandas as pd

    from .context import RunContext, ScoringContext
    from .data import DataBundle
    from .protocols import Student, Teacher

ENTRY_POINT_GROUP = "stillroom.plugins"
CORE_PLUGIN = "stillroom.builtin"
REGISTRATION_HOOKS = {
    "stillroom_tasks": "task",
    "stillroom_datasets": "dataset",
    "stillroom_teachers": "teacher",
    "stillroom_students": "student",
    "stillroom_evaluators": "evaluator",
    "stillroom_compliance_profiles": "compliance profile",
    "stillroom_input_formats": "input format",
}


@dataclass
class PluginInfo:
    """One line of ``stillroom plugins``: what is installed and what it implements."""

    name: str
    distribution: str
    version: str
    hooks: list[str] = field(default_factory=list)
    error: str | None = None


class StillroomPluginManager(pluggy.PluginManager):
    """pluggy's manager plus the registry built from the registration hooks."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.inventory: list[PluginInfo] = []
        self._registry: Registry | None = None

    # --- loading ------------------------------------------------------------------------

    def load_builtin(self) -> None:
        from . import builtin

        self.register(builtin, name=CORE_PLUGIN)
        self.inventory.append(_info(CORE_PLUGIN, "stillroom", _version("stillroom"), self, builtin))

    def load_entry_points(self) -> None:
        """Register every installed vertical; record (not raise) the ones that fail."""
        for ep in md.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            if self.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
                self.register(plugin, name=ep.name)
            except Exception as exc:  # a broken vertical must not break the others
                self.inventory.append(PluginInfo(ep.name, dist, version, error=f"{type(exc).__name__}: {exc}"))
                continue
            self.inventory.append(_info(ep.name, dist, version, self, plugin))

    def register_plugin(self, plugin: Any, name: str) -> None:
        """Register a plugin object at run time (tests, notebooks) and refresh the registry."""
        self.register(plugin, name=name)
        self.inventory.append(_info(name, name, "local", self, plugin))
        self._registry = None

    def unregister_plugin(self, name: str) -> None:
        self.unregister(name=name)
        self.inventory = [p for p in self.inventory if p.name != name]
        self._registry = None

    # --- registry -----------------------------------------------------------------------

    @property
    def registry(self) -> Registry:
        """Registry built from all registration hooks, each entry stamped with its plugin."""
        if self._registry is None:
            self._registry = self._build_registry()
        return self._registry

    def _build_registry(self) -> Registry:
        registry = Registry()
        for hook_name in REGISTRATION_HOOKS:
            caller = getattr(self.hook, hook_name)
            for impl in caller.get_hookimpls():
                name = self.get_name(impl.plugin) or "?"
                registry.add_all(impl.function(), plugin=name)
        return registry

    def task(self, name: str) -> TaskSpec:
        """The task (vertical) by name, with a helpful error listing installed ones and failures."""
        try:
            return self.registry.get("task", name)
        except PluginError as exc:
            broken = [f"{p.name} ({p.error})" for p in self.inventory if p.error]
            hint = f"; plugins that failed to load: {', '.join(broken)}" if broken else ""
            raise PluginError(f"{exc}{hint}. Install a vertical, e.g. pip install stillroom-{name}") from None

    def input_reader(self, path: Path, model_config: dict[str, Any]) -> Any:
        """The registered reader for ``path`` bound to the model's config, or ``None`` when no
        plugin's input format matches (the core then reads CSV, Parquet or text lines)."""
        formats = [spec for spec in self.registry.entries["input format"].values() if spec.matches(path)]
        if len(formats) > 1:
            names = ", ".join(f"{spec.name} ({spec.plugin})" for spec in formats)
            raise PluginError(f"{path} matches several input formats: {names}")
        return formats[0].reader(model_config) if formats else None

    def compliance_profile(self, task: TaskSpec) -> ComplianceProfile:
        """The task's compliance profile merged with the core's generic one."""
        core = self.registry.get("compliance profile", "core")
        return core.merged(self.registry.get("compliance profile", task.compliance_profile))

    # --- typed forwarding ---------------------------------------------------------------

    def make_teacher(self, spec: Any, task: TaskSpec, bundle: DataBundle, seed: int) -> Teacher:
        teacher = self.hook.stillroom_make_teacher(spec=spec, task=task, bundle=bundle, seed=seed)
        if teacher is None:
            raise PluginError(f"no plugin could build teacher {spec!r}")
        return teacher

    def make_student(self, spec: Any, task: TaskSpec, seed: int) -> Student:
        student = self.hook.stillroom_make_student(spec=spec, task=task, seed=seed)
        if student is None:
            raise PluginError(f"no plugin could build student {spec!r}")
        return student

    def transfer_points(self, bundle: DataBundle, config: Any, rng: np.random.Generator) -> list[pd.DataFrame]:
        frames = self.hook.stillroom_transfer_points(bundle=bundle, config=config, rng=rng)
        return [f for f in frames if f is not None and len(f)]

    def before_run(self, context: RunContext) -> None:
        self.hook.stillroom_before_run(context=context)

    def after_run(self, context: RunContext, summary: dict[str, Any]) -> None:
        self.hook.stillroom_after_run(context=context, summary=summary)

    def before_scoring(self, context: ScoringContext) -> None:
        self.hook.stillroom_before_scoring(context=context)

    def after_scoring(self, context: ScoringContext, summary: dict[str, Any]) -> None:
        self.hook.stillroom_after_scoring(context=context, summary=summary)


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "unknown"


def _info(name: str, dist: str, version: str, pm: pluggy.PluginManager, plugin: Any) -> PluginInfo:
    hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
    return PluginInfo(name, dist, version, hooks=hooks)


def implemented_hooks(pm: pluggy.PluginManager, plugin: Any) -> Iterable[str]:
    return sorted(c.name for c in pm.get_hookcallers(plugin) or [])


@lru_cache(maxsize=1)
def get_plugin_manager() -> StillroomPluginManager:
    """The process-wide manager with built-ins and installed verticals loaded."""
    pm = StillroomPluginManager()
    pm.load_builtin()
    pm.load_entry_points()
    return pm
