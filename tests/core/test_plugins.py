"""The plugin system, tested the way pytest/tox test theirs: a fake installed distribution
announces a plugin through the entry-point group, a broken one is reported and skipped."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from stillroom.api import plugin_manager
from stillroom.contract import ComplianceProfile, StudentSpec, TaskSpec, hookimpl, hookspecs
from stillroom.errors import PluginError
from stillroom.plugins import ENTRY_POINT_GROUP, Registry, StillroomPluginManager

GOOD = """
from pathlib import Path
from stillroom.contract import ComplianceProfile, DistillConfig, TaskSpec, hookimpl

@hookimpl
def stillroom_tasks():
    yield TaskSpec("toy", "a toy task", DistillConfig, Path("toy.yaml"), "toy")

@hookimpl
def stillroom_compliance_profiles():
    yield ComplianceProfile("toy", metrics=("student.roc_auc",))
"""


def _fake_distribution(root: Path, dist: str, module: str, source: str) -> None:
    """A module and a dist-info folder with entry points: what pip install would leave."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-0.3.dist-info"  # wheel naming: name_with_underscores-version
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{module} = {module}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield tmp_path
    for name in ("toyplug", "brokenplug"):
        sys.modules.pop(name, None)


def _manager() -> StillroomPluginManager:
    importlib.invalidate_caches()  # the fake distributions were written after the last scan
    return plugin_manager()


def test_entry_point_plugin_is_found_with_version_and_hooks(site: Path) -> None:
    _fake_distribution(site, "stillroom-toy", "toyplug", GOOD)
    pm = _manager()
    info = next(p for p in pm.inventory if p.name == "toyplug")
    assert (info.distribution, info.version, info.error) == ("stillroom-toy", "0.3", None)
    assert info.hooks == ["stillroom_compliance_profiles", "stillroom_tasks"]
    assert pm.task("toy").plugin == "toyplug"
    assert "student.roc_auc" in pm.registry.get("compliance profile", "toy").metrics


def test_broken_plugin_is_reported_and_others_still_work(site: Path) -> None:
    _fake_distribution(site, "stillroom-toy", "toyplug", GOOD)
    _fake_distribution(site, "stillroom-broken", "brokenplug", "raise ImportError('needs libfoo')\n")
    pm = _manager()
    broken = next(p for p in pm.inventory if p.name == "brokenplug")
    assert broken.error == "ImportError: needs libfoo"
    assert pm.task("toy").name == "toy"
    with pytest.raises(PluginError, match=r"unknown task 'nope'.*brokenplug \(ImportError: needs libfoo\)"):
        pm.task("nope")


MISSPELT = """
from stillroom.contract import hookimpl

@hookimpl
def stillroom_task():  # should be stillroom_tasks
    return []
"""


def test_a_misspelt_hook_is_refused_at_registration_and_named(site: Path) -> None:
    _fake_distribution(site, "stillroom-toy", "toyplug", GOOD)
    _fake_distribution(site, "stillroom-typo", "typoplug", MISSPELT)
    pm = _manager()
    typo = next(p for p in pm.inventory if p.name == "typoplug")
    assert typo.error is not None and "stillroom_task" in typo.error and "hook specifications" in typo.error
    assert not pm.has_plugin("typoplug")
    assert pm.task("toy").name == "toy"  # the others still load


def test_a_misspelt_hook_registered_at_run_time_is_refused() -> None:
    class Typo:
        @hookimpl
        def stillroom_evaluator(self):  # noqa: ANN201 - should be stillroom_evaluators
            return []

    pm = plugin_manager()
    with pytest.raises(PluginError, match="stillroom_evaluator"):
        pm.register_plugin(Typo(), "typo")
    assert not pm.has_plugin("typo")


def test_core_hooks_read_the_registry_of_the_manager_that_called_them() -> None:
    """Two managers in one process: a student registered in one is unknown to the other."""

    class Extra:
        @hookimpl
        def stillroom_students(self):  # noqa: ANN201
            yield StudentSpec("extra.student", "*", lambda params, seed: ("built", params, seed))

    first, second = plugin_manager(), plugin_manager()
    first.register_plugin(Extra(), "extra")
    spec = type("Spec", (), {"name": "extra.student", "params": {"k": 1}})()
    assert first.make_student(spec, first.task("fraud"), seed=3) == ("built", {"k": 1}, 3)
    with pytest.raises(PluginError, match="unknown student 'extra.student'"):
        second.make_student(spec, second.task("fraud"), seed=3)


def test_duplicate_names_are_an_error() -> None:
    registry = Registry()
    spec = StudentSpec("s", "t", lambda params, seed: None)
    registry.add(spec, "first")
    with pytest.raises(PluginError, match="duplicate student name 's': registered by 'first' and 'second'"):
        registry.add(spec, "second")


def test_duplicate_task_across_plugins_fails_registry(register_plugin) -> None:  # noqa: ANN001
    class Twin:
        @hookimpl
        def stillroom_tasks(self):  # noqa: ANN201
            yield TaskSpec("fraud", "impostor", object, Path("x"), "fraud")

    from stillroom.api import get_plugin_manager

    register_plugin(Twin(), "twin")
    with pytest.raises(PluginError, match="duplicate task name 'fraud'"):
        _ = get_plugin_manager().registry


def test_unknown_component_lists_known_ones() -> None:
    registry = Registry()
    registry.add(ComplianceProfile("a"), "p")
    with pytest.raises(PluginError, match=r"unknown compliance profile 'b' \(known: a\)"):
        registry.get("compliance profile", "b")


def test_every_hook_is_documented_and_tested() -> None:
    """Each hookspec has a docstring, a section in docs/plugins.md and a test naming it."""
    root = Path(__file__).resolve().parents[2]
    docs = (root / "docs" / "plugins.md").read_text()
    tests = "\n".join(p.read_text() for p in (root / "tests").rglob("test_*.py"))
    hooks = [n for n in dir(hookspecs) if n.startswith("stillroom_")]
    assert len(hooks) >= 12
    for name in hooks:
        assert getattr(hookspecs, name).__doc__, f"{name} has no docstring"
        assert f"`{name}" in docs, f"{name} is not documented in docs/plugins.md"
        assert name in tests, f"{name} has no test"
