"""Shared fixtures. The ``stillroom.testing`` pytest plugin (tracking_store, register_plugin)
is loaded through its pytest11 entry point, as it would be for a plugin author."""

from __future__ import annotations

import json
import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


# --- the fault-injection suite's report (tests/faults): faults injected, invariants violated ------
# Each fault test records its counts as user properties; they reach this process from the xdist
# workers with the test reports, and are printed at the end of the run.
_fault_totals = {"tests": 0, "faults": 0, "violations": 0}


def pytest_runtest_logreport(report):  # type: ignore[no-untyped-def]
    module = report.nodeid.split("::")[0]
    _module_seconds[module] = _module_seconds.get(module, 0.0) + report.duration
    if report.when != "call":
        return
    props = dict(report.user_properties)
    if "stillroom_faults" in props:
        _fault_totals["tests"] += 1
        _fault_totals["faults"] += int(props["stillroom_faults"])
        _fault_totals["violations"] += int(props["stillroom_violations"])


def pytest_terminal_summary(terminalreporter):  # type: ignore[no-untyped-def]
    if _fault_totals["tests"]:
        terminalreporter.write_sep("=", "fault injection (tests/faults)")
        terminalreporter.write_line(
            f"faults injected: {_fault_totals['faults']}, invariants violated: {_fault_totals['violations']} "
            f"({_fault_totals['tests']} fault tests)"
        )


# --- the slowest modules first ----------------------------------------------------------------------
# Why: `make test` runs `--dist loadscope` (a module runs whole on one worker: module fixtures
# such as a team server or a shared distillation are set up once). xdist hands modules out in
# order, by default the most tests first, so the slow few-test modules (the team server, the
# fault suites, the README run) came last and one worker ran them alone while the other idled.
# Longest first (`--no-loadscope-reorder` + this order) keeps both workers busy to the end.
# Seconds per module: this checkout's last run (pytest's cache), else tests/module_seconds.json
# (committed from a full run: `make test-order` refreshes it); an unknown module counts 0.
_ORDER_KEY = "stillroom/module_seconds"
_ORDER_FILE = os.path.join(os.path.dirname(__file__), "module_seconds.json")
_module_seconds: dict[str, float] = {}


def _known_module_seconds(config) -> dict[str, float]:  # type: ignore[no-untyped-def]
    cached = config.cache.get(_ORDER_KEY, None) if getattr(config, "cache", None) else None
    if cached:
        return dict(cached)
    try:
        with open(_ORDER_FILE) as handle:
            return dict(json.load(handle))
    except (OSError, ValueError):
        return {}


def pytest_collection_modifyitems(session, config, items):  # type: ignore[no-untyped-def]
    seconds = _known_module_seconds(config)
    modules: dict[str, list] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    order = sorted(modules, key=lambda module: -seconds.get(module, 0.0))  # stable: ties keep file order
    items[:] = [item for module in order for item in modules[module]]


def pytest_sessionfinish(session, exitstatus):  # type: ignore[no-untyped-def]
    """In the controlling process of a whole-suite run, every module's seconds merged into the cache
    (a run of a few tests would make its modules look fast)."""
    config = session.config
    if hasattr(config, "workerinput") or not _module_seconds or not _whole_suite(config):
        return
    known = dict(config.cache.get(_ORDER_KEY, None) or {})
    known.update({module: round(total, 1) for module, total in _module_seconds.items()})
    config.cache.set(_ORDER_KEY, dict(sorted(known.items(), key=lambda kv: -kv[1])))


def _whole_suite(config) -> bool:  # type: ignore[no-untyped-def]
    here = os.path.dirname(os.path.abspath(__file__))
    selected = config.option.keyword or config.option.markexpr or getattr(config.option, "lf", False)
    args = [os.path.abspath(str(arg)) for arg in config.args]
    return bool(getattr(config, "cache", None)) and not selected and args == [here]
