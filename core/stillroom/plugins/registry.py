"""The registry of named components (:mod:`stillroom.contract.specs`) that plugins register.

It indexes them by kind and name and refuses a second component with the same kind and name,
so that two installed plugins can never silently shadow each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from ..contract.specs import (
    ComplianceProfile,
    DatasetSpec,
    EvaluatorSpec,
    InputFormat,
    OutputFormat,
    StudentSpec,
    TaskSpec,
    TeacherSpec,
)
from ..errors import PluginError

Entry = TypeVar(
    "Entry", TaskSpec, DatasetSpec, TeacherSpec, StudentSpec, EvaluatorSpec, ComplianceProfile, InputFormat, OutputFormat
)

KINDS: dict[type, str] = {
    TaskSpec: "task",
    DatasetSpec: "dataset",
    TeacherSpec: "teacher",
    StudentSpec: "student",
    EvaluatorSpec: "evaluator",
    ComplianceProfile: "compliance profile",
    InputFormat: "input format",
    OutputFormat: "output format",
}


@dataclass
class Registry:
    """Every registered component, by kind and name."""

    entries: dict[str, dict[str, Any]] = field(default_factory=lambda: {k: {} for k in KINDS.values()})

    def add(self, entry: Any, plugin: str) -> None:
        """Register one entry; a duplicate kind+name is a :class:`PluginError`."""
        kind = KINDS.get(type(entry))
        if kind is None:
            raise PluginError(f"plugin {plugin!r} registered an unknown kind of entry: {entry!r}")
        table = self.entries[kind]
        if entry.name in table:
            first = table[entry.name].plugin
            raise PluginError(f"duplicate {kind} name {entry.name!r}: registered by {first!r} and {plugin!r}")
        table[entry.name] = _with_plugin(entry, plugin)

    def add_all(self, entries: Iterable[Any], plugin: str) -> None:
        for entry in entries or ():
            self.add(entry, plugin)

    def get(self, kind: str, name: str) -> Any:
        """The entry of a kind by name, or a :class:`PluginError` listing what exists."""
        table = self.entries[kind]
        if name not in table:
            known = ", ".join(sorted(table)) or "none installed"
            raise PluginError(f"unknown {kind} {name!r} (known: {known})")
        return table[name]

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def all(self, kind: str) -> list[Any]:
        """Every entry of a kind, in registration order."""
        return list(self.entries[kind].values())

    def for_task(self, kind: str, task: str) -> list[Any]:
        """Entries usable for a task: its own and the generic ones (task ``"*"``)."""
        return [e for e in self.entries[kind].values() if getattr(e, "task", "*") in (task, "*")]


def _with_plugin(entry: Entry, plugin: str) -> Entry:
    """The entry stamped with the name of the plugin that registered it (for the inventory)."""
    return entry if entry.plugin else replace(entry, plugin=plugin)
