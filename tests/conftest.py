"""Shared fixtures. The ``stillroom.testing`` pytest plugin (tracking_store, register_plugin)
is loaded through its pytest11 entry point, as it would be for a plugin author."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


# --- the fault-injection suite's report (tests/faults): faults injected, invariants violated ------
# Each fault test records its counts as user properties; they reach this process from the xdist
# workers with the test reports, and are printed at the end of the run.
_fault_totals = {"tests": 0, "faults": 0, "violations": 0}


def pytest_runtest_logreport(report):  # type: ignore[no-untyped-def]
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
