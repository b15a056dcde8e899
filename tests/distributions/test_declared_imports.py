"""Every package a distribution's code imports is declared in its pyproject.toml: in its
dependencies, in one of its extras (for code that only runs with the extra), or in the
dependencies of a stillroom distribution it depends on. Read from the source (``ast``), so an
import that only runs on some path (a report, a teacher format) is caught too."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = {
    "stillroom": ROOT / "core",
    "stillroom-fraud": ROOT / "plugins" / "fraud",
    "stillroom-medical": ROOT / "plugins" / "medical",
    "stillroom-molecules": ROOT / "plugins" / "molecules",
}
OWN = {"stillroom", "stillroom_fraud", "stillroom_medical", "stillroom_molecules"}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _project(distribution: str) -> dict:
    return tomllib.loads((DISTRIBUTIONS[distribution] / "pyproject.toml").read_text())["project"]


def declared(distribution: str) -> set[str]:
    """Its dependencies and extras, and those of the stillroom distributions it requires."""
    project = _project(distribution)
    requirements = list(project.get("dependencies", []))
    requirements += [r for extra in project.get("optional-dependencies", {}).values() for r in extra]
    names = {_name(r) for r in requirements}
    for other in names & set(DISTRIBUTIONS) - {distribution}:
        names |= declared(other)
    return names


def imported_modules(distribution: str) -> set[str]:
    """Top-level modules imported anywhere in the distribution's package (absolute imports)."""
    found: set[str] = set()
    for path in DISTRIBUTIONS[distribution].rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - OWN - set(sys.stdlib_module_names) - {"__future__"}


@pytest.mark.parametrize("distribution", list(DISTRIBUTIONS))
def test_every_imported_package_is_declared(distribution: str) -> None:
    providers = md.packages_distributions()
    names = declared(distribution)
    missing = {}
    for module in sorted(imported_modules(distribution)):
        owners = {d.lower().replace("_", "-") for d in providers.get(module, [module])}
        if not owners & names:
            missing[module] = sorted(owners)
    assert not missing, f"{distribution} imports packages its pyproject.toml does not declare: {missing}"


@pytest.mark.parametrize("distribution", list(DISTRIBUTIONS))
def test_metadata_for_an_index(distribution: str) -> None:
    """Classifiers and project URLs, and the version in pyproject.toml only (read at run time)."""
    project = _project(distribution)
    assert any(c.startswith("Programming Language :: Python :: 3") for c in project["classifiers"])
    assert {"Homepage", "Documentation", "Source"} <= set(project["urls"])
    package = DISTRIBUTIONS[distribution] / distribution.replace("-", "_")
    assert f'"{project["version"]}"' not in (package / "__init__.py").read_text()  # no second copy of the version
    assert md.version(distribution) == project["version"]
