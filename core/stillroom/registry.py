"""Named components that verticals register, and the registry that holds them.

Verticals yield these dataclasses from the registration hooks (the conda pattern); the
registry indexes them by name and refuses a second component with the same kind and name,
so that two installed plugins can never silently shadow each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import PluginError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .context import EvaluationContext, EvaluationResult
    from .data import DataBundle
    from .protocols import Student, Teacher


@dataclass(frozen=True)
class TaskSpec:
    """A distillation task a vertical offers (``stillroom distill NAME``).

    ``config_model`` validates the run config; ``default_config`` is the YAML file shipped
    with the vertical; ``compliance_profile`` names what every run must log.
    """

    name: str
    description: str
    config_model: type[BaseModel]
    default_config: Path
    compliance_profile: str
    task_type: str = "binary"
    card: dict[str, str] = field(default_factory=dict)
    plugin: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """A named data source: ``load(data_config, seed)`` returns a :class:`DataBundle`."""

    name: str
    task: str
    load: Callable[[Any, int], DataBundle]
    description: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class TeacherSpec:
    """A named teacher factory: ``build(params, bundle, seed)`` trains or loads a teacher."""

    name: str
    task: str
    build: Callable[[dict[str, Any], DataBundle, int], Teacher]
    description: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class StudentSpec:
    """A named student factory: ``build(params, seed)`` returns an untrained student."""

    name: str
    task: str
    build: Callable[[dict[str, Any], int], Student]
    description: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class EvaluatorSpec:
    """A named evaluator: adds metrics and artifacts for a task (``"*"`` for every task)."""

    name: str
    task: str
    evaluate: Callable[[EvaluationContext], EvaluationResult]
    description: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class ComplianceProfile:
    """What a run of a task must log for its reviewers.

    Metric names are MLflow metric keys (``student.average_precision``); artifacts are
    paths inside the run's artifact root; params and tags are keys.
    """

    name: str
    metrics: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    artifacts: tuple[str, ...] = ()
    description: str = ""
    plugin: str = ""

    def merged(self, other: ComplianceProfile) -> ComplianceProfile:
        """This profile plus another's requirements (the core's generic profile + a vertical's)."""
        return ComplianceProfile(
            name=self.name,
            metrics=tuple(dict.fromkeys(self.metrics + other.metrics)),
            params=tuple(dict.fromkeys(self.params + other.params)),
            tags=tuple(dict.fromkeys(self.tags + other.tags)),
            artifacts=tuple(dict.fromkeys(self.artifacts + other.artifacts)),
            description=self.description or other.description,
            plugin=self.plugin,
        )


@dataclass(frozen=True)
class InputFormatSpec:
    """An input `stillroom score` reads through a vertical (images, an archive, a folder).

    ``matches(path)`` says whether a path (a file or a folder) is of this kind, by suffix or
    content. ``reader(model_config)`` binds the reader to the model being scored (the
    ``model_config`` its vertical logged with it: its input size, preprocessing ...) and
    returns ``read(path, chunk_rows) -> Iterator[DataFrame]`` (:data:`stillroom.batch.ReadFn`).
    """

    name: str
    matches: Callable[[Path], bool]
    reader: Callable[[dict[str, Any]], Callable[[Path, int], Iterable[Any]]]
    description: str = ""
    plugin: str = ""


Entry = TypeVar("Entry", TaskSpec, DatasetSpec, TeacherSpec, StudentSpec, EvaluatorSpec, ComplianceProfile, InputFormatSpec)

KINDS: dict[type, str] = {
    TaskSpec: "task",
    DatasetSpec: "dataset",
    TeacherSpec: "teacher",
    StudentSpec: "student",
    EvaluatorSpec: "evaluator",
    ComplianceProfile: "compliance profile",
    InputFormatSpec: "input format",
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

    def for_task(self, kind: str, task: str) -> list[Any]:
        """Entries usable for a task: its own and the generic ones (task ``"*"``)."""
        return [e for e in self.entries[kind].values() if getattr(e, "task", "*") in (task, "*")]


def _with_plugin(entry: Entry, plugin: str) -> Entry:
    """The entry stamped with the name of the plugin that registered it (for the inventory)."""
    from dataclasses import replace

    return entry if entry.plugin else replace(entry, plugin=plugin)
