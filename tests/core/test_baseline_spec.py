"""The baseline is "the same student without a teacher": ``cfg.student`` built again, unless the
fitted student names what it shipped (``baseline_spec()``), as a student choosing among
candidates does; then the baseline is built from that, and the run records which."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from stillroom.contract import StudentConfig
from stillroom.distillation.pipeline import baseline_after


class Manager:
    """Builds a stand-in student per config and keeps what it was asked for."""

    def __init__(self) -> None:
        self.built: list[StudentConfig] = []

    def make_student(self, spec: StudentConfig, task: Any, seed: int) -> Any:
        self.built.append(spec)
        return SimpleNamespace(spec=spec, seed=seed)


class Choosing:
    def baseline_spec(self) -> dict[str, Any]:
        return {"name": "toy.small", "params": {"depth": 2}}


CFG = SimpleNamespace(student=StudentConfig(name="toy.auto", params={"budget": 1}), run=SimpleNamespace(seed=7))


def test_a_student_without_a_spec_keeps_the_baseline_built_from_the_config() -> None:
    pm, default = Manager(), object()
    assert baseline_after(pm, None, CFG, object(), default) == (default, CFG.student)  # type: ignore[arg-type]
    assert pm.built == []


def test_a_student_that_chose_names_its_baseline(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="stillroom")
    pm = Manager()
    baseline, spec = baseline_after(pm, None, CFG, Choosing(), object())  # type: ignore[arg-type]
    assert spec == StudentConfig(name="toy.small", params={"depth": 2}) and pm.built == [spec]
    assert baseline.spec == spec and baseline.seed == 7
    assert "baseline: toy.small {'depth': 2}, the student's choice, trained without a teacher" in caplog.text


def test_no_baseline_stays_none() -> None:
    """A teacher-referenced run has no baseline, whatever the student offers."""
    pm = Manager()
    assert baseline_after(pm, None, CFG, Choosing(), None) == (None, CFG.student)  # type: ignore[arg-type]
    assert pm.built == []
