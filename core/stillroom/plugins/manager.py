"""The plugin manager: the core's own plugin, entry points ``stillroom.plugins``, inventory.

Typed forwarding methods (the tox 4 pattern) keep hook calls out of the rest of the code.
A vertical whose import fails is recorded with its error and skipped, so one broken install
never takes the other verticals down. Every registered plugin is checked against the hook
specifications (``check_pending``): an implementation of a hook that does not exist (a typo)
is an error at registration, not code that silently never runs.
"""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pluggy

from .. import tracking
from .._runtime import package_version
from ..contract import hookspecs
from ..contract.specs import ComplianceProfile, InputFormat, OutputFormat, TaskSpec
from ..errors import PluginError
from .registry import Registry

if TYPE_CHECKING:
    import pandas as pd

    from ..contract.bundle import DataBundle
    from ..contract.context import RunContext, ScoringContext
    from ..contract.protocols import Student, Teacher, TeacherLoader

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
    "stillroom_output_formats": "output format",
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

    def load_core(self, plugin: Any) -> None:
        """Register the core's own hook implementations (:mod:`stillroom.builtin`)."""
        self._register_checked(plugin, CORE_PLUGIN)
        self.inventory.append(_info(CORE_PLUGIN, "stillroom", package_version("stillroom"), self, plugin))

    def load_entry_points(self) -> None:
        """Register every installed vertical; record (not raise) the ones that fail."""
        for ep in md.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            if self.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
                self._register_checked(plugin, ep.name)
            except Exception as exc:  # a broken vertical must not break the others
                self.inventory.append(PluginInfo(ep.name, dist, version, error=f"{type(exc).__name__}: {exc}"))
                continue
            self.inventory.append(_info(ep.name, dist, version, self, plugin))

    def register_plugin(self, plugin: Any, name: str) -> None:
        """Register a plugin object at run time (tests, notebooks) and refresh the registry."""
        self._register_checked(plugin, name)
        self.inventory.append(_info(name, name, "local", self, plugin))
        self._registry = None

    def _register_checked(self, plugin: Any, name: str) -> None:
        """Register ``plugin``; if any of its hook implementations matches no hook spec, undo
        and raise (pluggy's ``check_pending``), naming the plugin and the hook."""
        try:
            self.register(plugin, name=name)
            self.check_pending()
        except pluggy.PluginValidationError as exc:
            if self.has_plugin(name):
                self.unregister(name=name)
            raise PluginError(f"plugin {name!r} does not match the stillroom hook specifications: {exc}") from None

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

    def compliance_profile(self, task: TaskSpec) -> ComplianceProfile:
        """The task's compliance profile merged with the core's generic one."""
        core = self.registry.get("compliance profile", "core")
        return core.merged(self.registry.get("compliance profile", task.compliance_profile))

    # --- typed forwarding ---------------------------------------------------------------

    def make_teacher(
        self, spec: Any, task: TaskSpec, bundle: DataBundle, seed: int, load_model: TeacherLoader | None = None
    ) -> Teacher:
        """The teacher the config's ``teacher`` section describes; hooks receive ``load_model``
        (default: the core's MLflow loader) to wrap an MLflow model themselves."""
        loader = load_model or tracking.load_teacher_model
        teacher = self.hook.stillroom_make_teacher(spec=spec, task=task, bundle=bundle, seed=seed, load_model=loader)
        if teacher is None:
            raise PluginError(f"no plugin could build teacher {spec!r}")
        return teacher

    def make_student(self, spec: Any, task: TaskSpec, seed: int) -> Student:
        student = self.hook.stillroom_make_student(spec=spec, task=task, seed=seed)
        if student is None:
            raise PluginError(f"no plugin could build student {spec!r}")
        return student

    def input_formats(self) -> list[InputFormat]:
        """Every input format a plugin registered (for batch scoring)."""
        return list(self.registry.all("input format"))

    def output_formats(self) -> list[OutputFormat]:
        """Every output format a plugin registered (for batch scoring)."""
        return list(self.registry.all("output format"))

    def transfer_points(self, bundle: DataBundle, config: Any, rng: np.random.Generator) -> list[pd.DataFrame]:
        frames = self.hook.stillroom_transfer_points(bundle=bundle, config=config, rng=rng)
        return [f for f in frames if f is not None and len(f)]

    def search_space(self, task: TaskSpec) -> dict[str, Any]:
        """The default search space of ``task``: every plugin's answer merged (a field claimed by
        two plugins is an error, like a duplicate registration)."""
        space: dict[str, Any] = {}
        for answer in self.hook.stillroom_search_space(task=task):
            for key, dimension in (answer or {}).items():
                if key in space:
                    raise PluginError(f"search space field {key!r} of task {task.name!r} is declared by two plugins")
                space[key] = dimension
        return space

    def before_run(self, context: RunContext) -> None:
        self.hook.stillroom_before_run(context=context)

    def after_run(self, context: RunContext, summary: dict[str, Any]) -> None:
        self.hook.stillroom_after_run(context=context, summary=summary)

    def before_scoring(self, context: ScoringContext) -> None:
        self.hook.stillroom_before_scoring(context=context)

    def after_scoring(self, context: ScoringContext, summary: dict[str, Any]) -> None:
        self.hook.stillroom_after_scoring(context=context, summary=summary)


def _info(name: str, dist: str, version: str, pm: pluggy.PluginManager, plugin: Any) -> PluginInfo:
    hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
    return PluginInfo(name, dist, version, hooks=hooks)


def implemented_hooks(pm: pluggy.PluginManager, plugin: Any) -> Iterable[str]:
    return sorted(c.name for c in pm.get_hookcallers(plugin) or [])
