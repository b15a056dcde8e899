"""What a logged model needs installed to load: pinned distributions, read from the model itself.

Why not MLflow's inference: for a model logged without ``pip_requirements`` MLflow loads it again
in a subprocess and records every package that subprocess imported. That took 11 s per model on
an idle 2-core machine (a minute under load), and the list it wrote for a fraud teacher held
pytest, torch and tqdm (imported by the loading process) but not ``stillroom-fraud``, whose
classes the teacher is made of. Here the list is the distributions that define the classes in
the model's own object graph (with their base classes) and what the flavor's loader imports,
pinned to the versions that produced the model. A plugin that passes ``pip_requirements`` (or
``extra_pip_requirements``, or a ``conda_env``) in :attr:`NativeModel.log_kwargs` keeps its own.
"""

from __future__ import annotations

import importlib.metadata as md
import sys
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import numpy as np
from packaging.requirements import Requirement

from .._runtime import pinned_requirements

FLAVOR_LOADERS: dict[str, tuple[str, ...]] = {
    "lightgbm": ("lightgbm",),
    "sklearn": ("scikit-learn", "skops"),  # stillroom logs scikit-learn models in skops format
    "pytorch": ("torch",),
    "onnx": ("onnx", "onnxruntime"),
    "pyfunc": ("cloudpickle",),
}
"""Distributions each MLflow flavor's loader imports, whatever the model holds."""

_OWN_CHOICE = ("pip_requirements", "extra_pip_requirements", "conda_env")
_MAX_OBJECTS = 200_000
"""A bound on the walk: a model is fitted parameters, not an unbounded graph; past this the
classes found so far are the answer (a huge object array adds values, not new classes)."""


def with_requirements(flavor: str, model: Any, log_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``log_kwargs``, with pinned ``pip_requirements`` for ``model`` unless the plugin chose its own."""
    if any(key in log_kwargs for key in _OWN_CHOICE):
        return log_kwargs
    return log_kwargs | {"pip_requirements": model_requirements(flavor, model)}


def model_requirements(flavor: str, model: Any) -> list[str]:
    """Pinned distributions of the flavor's loader and of every class the model is made of,
    then their own runtime dependencies (one level: scikit-learn's numpy, scipy, joblib ...),
    so the environment that loads the model is the one that produced it, not pip's latest."""
    owners = _module_owners()
    found: list[str] = list(FLAVOR_LOADERS.get(flavor, ()))
    for module in sorted(_top_level_modules(model)):
        found.extend(owners.get(module, ()))
    direct = list(dict.fromkeys(found))
    return pinned_requirements([*direct, *(dep for dist in direct for dep in _runtime_dependencies(dist))])


def _runtime_dependencies(distribution: str) -> list[str]:
    """The distributions ``distribution`` requires here (no extras; markers evaluated)."""
    try:
        declared = md.requires(distribution) or []
    except md.PackageNotFoundError:
        return []
    out = []
    for line in declared:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            out.append(requirement.name)
    return out


def _top_level_modules(model: Any) -> set[str]:
    """Top-level packages of the classes (and their bases) of every object reachable from ``model``."""
    modules: set[str] = set()
    for obj in _reachable(model):
        classes = obj.__mro__ if isinstance(obj, type) else type(obj).__mro__
        modules.update(cls.__module__.partition(".")[0] for cls in classes)
    return {m for m in modules if m not in sys.stdlib_module_names and m not in ("builtins", "__main__")}


def _reachable(root: Any) -> Iterator[Any]:
    """Objects reachable through attributes, slots and containers, each once (bounded)."""
    seen: set[int] = set()
    stack = [root]
    while stack and len(seen) < _MAX_OBJECTS:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield obj
        stack.extend(_children(obj))


def _children(obj: Any) -> list[Any]:
    if isinstance(obj, (str, bytes, bytearray, int, float, complex, bool, type(None), type)):
        return []
    if isinstance(obj, np.ndarray):
        return list(obj.ravel()) if obj.dtype == object else []
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    children = list(vars(obj).values()) if hasattr(obj, "__dict__") else []
    for cls in type(obj).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if isinstance(slot, str) and hasattr(obj, slot):
                children.append(getattr(obj, slot))
    return children


@lru_cache(maxsize=1)
def _module_owners() -> dict[str, list[str]]:
    """Top-level module -> the distributions that install it (editable installs included)."""
    return {module: list(dict.fromkeys(dists)) for module, dists in md.packages_distributions().items()}
