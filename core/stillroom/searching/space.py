"""The searched space: the vertical's default (its hook), the user's ``search.space`` over it,
and each trial's values turned into a config validated like any other."""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic import ValidationError

from ..contract import config as config_mod
from ..contract.config import SEARCHABLE_SECTIONS, DistillConfig, SearchDimension, SearchSettings
from ..contract.specs import TaskSpec
from ..errors import ConfigError
from ..plugins import StillroomPluginManager

_UNSET = object()


def resolve_space(pm: StillroomPluginManager, task: TaskSpec, settings: SearchSettings) -> dict[str, SearchDimension]:
    """The vertical's default space with the user's fields over it (``null`` drops one)."""
    declared = pm.search_space(task)
    merged: dict[str, Any] = {} if settings.replace_space else dict(declared)
    merged.update(settings.space)
    opened = tuple(key for key in declared if not config_mod.in_core_section(key))  # never data., teacher. ...
    space = {key: dimension(key, raw, opened) for key, raw in merged.items() if raw is not None}
    if not space:
        raise ConfigError(f"search: the space of task {task.name!r} is empty (set search.space in the config)")
    return space


def dimension(key: str, raw: Any, opened: tuple[str, ...] = ()) -> SearchDimension:
    """One dimension, validated; a bad one is a ConfigError naming ``search.space.<key>``.
    ``opened``: the fields outside the searchable sections that the vertical's space declares."""
    if not key.startswith(SEARCHABLE_SECTIONS) and key not in opened:
        also = f" or the vertical's own {', '.join(opened)}" if opened else ""
        raise ConfigError(
            f"invalid config field 'search.space.{key}': only {', '.join(SEARCHABLE_SECTIONS)}*{also} can be searched"
        )
    if isinstance(raw, SearchDimension):
        return raw
    try:
        return SearchDimension.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid config field 'search.space.{key}': {exc.errors()[0]['msg']}") from None


def encode(choice: Any) -> Any:
    """A choice as Optuna stores it: numbers, strings, booleans as they are, anything else as JSON."""
    return choice if choice is None or isinstance(choice, (bool, int, float, str)) else json.dumps(choice, sort_keys=True)


def suggest(trial: Any, space: dict[str, SearchDimension], base: dict[str, Any]) -> dict[str, Any]:
    """The trial's value of every dimension whose ``when`` holds (on values chosen before it or
    the base config), asked of Optuna (``trial``: an ``optuna.Trial``)."""
    values: dict[str, Any] = {}
    for key, dim in space.items():
        if not _applies(dim, values, base):
            continue
        if dim.choices is not None:
            decoded = {encode(c): c for c in dim.choices}
            values[key] = decoded[trial.suggest_categorical(key, list(decoded))]
        elif dim.integer:
            values[key] = trial.suggest_int(key, int(dim.low), int(dim.high), step=int(dim.step or 1), log=dim.log)  # type: ignore[arg-type]
        else:
            values[key] = trial.suggest_float(key, dim.low, dim.high, step=dim.step, log=dim.log)
    return values


def decode(space: dict[str, SearchDimension], params: dict[str, Any]) -> dict[str, Any]:
    """Optuna's stored params of a trial back to config values (choices from their JSON)."""
    out = {}
    for key, value in params.items():
        dim = space.get(key)
        if dim is not None and dim.choices is not None:
            value = {encode(c): c for c in dim.choices}.get(value, value)
        out[key] = value
    return out


def _applies(dim: SearchDimension, values: dict[str, Any], base: dict[str, Any]) -> bool:
    return all((values[k] if k in values else lookup(base, k)) == v for k, v in dim.when.items())


def lookup(raw: dict[str, Any], key: str) -> Any:
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _UNSET
        node = node[part]
    return node


def default_values(space: dict[str, SearchDimension], base: dict[str, Any]) -> dict[str, Any]:
    """The base config's own value of every dimension that can hold it: the default student,
    enqueued as the first trial so the record compares the choice with it on validation."""
    out: dict[str, Any] = {}
    for key, dim in space.items():
        value = lookup(base, key)
        if value is _UNSET or not _applies(dim, out, base):
            continue
        if dim.choices is not None:
            if any(encode(value) == encode(c) for c in dim.choices):
                out[key] = encode(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and dim.low <= value <= dim.high:  # type: ignore[operator]
            out[key] = int(value) if dim.integer else float(value)
    return out


def probe_values(space: dict[str, SearchDimension], base: dict[str, Any]) -> dict[str, Any]:
    """One value per dimension (first choice, low end) to validate the space before any work."""
    values: dict[str, Any] = {}
    for key, dim in space.items():
        if _applies(dim, values, base):
            values[key] = dim.choices[0] if dim.choices is not None else (int(dim.low) if dim.integer else dim.low)  # type: ignore[arg-type]
    return values


def trial_config(task: TaskSpec, base: dict[str, Any], values: dict[str, Any]) -> DistillConfig:
    """The base config with the trial's values set, validated by the task's model."""
    raw = copy.deepcopy(base)
    for key, value in values.items():
        *sections, leaf = key.split(".")
        node = raw
        for part in sections:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"invalid config field 'search.space.{key}': {part!r} is not a section")
        node[leaf] = copy.deepcopy(value)  # typed values, not --set strings (YAML would read 1e-05 as text)
    return config_mod.validate(task.config_model, raw)
