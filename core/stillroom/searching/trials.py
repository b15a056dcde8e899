"""One trial: the pipeline with the trial's config, judged on validation, logged as a child run.

Each finished trial logs its validation outputs (every model's, beside the labels) as
``predictions/validation.parquet`` in its child run: the choice compares trials with the default
student on them (:mod:`stillroom.searching.anchor`), and a reviewer can recompute any figure.

A trial is pruned as soon as its student is fitted when it already breaks a constraint on its
size (known from the fitted model: no baseline, evaluation or timing is spent on it); a trial
that fails is recorded (its child run FAILED with the cause) and the search goes on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from .. import tracking
from ..audit.predictions import write_predictions
from ..contract.compute import thread_budget
from ..contract.config import GateConfig, SearchDimension
from ..contract.protocols import Student
from ..contract.specs import TaskSpec
from ..distillation.gate import evaluate_gate
from ..distillation.pipeline import distill
from ..distillation.result import TeacherRecord
from ..distillation.session import TeacherSession
from ..plugins import StillroomPluginManager
from ..progress import logger
from ..scratch import scratch_dir
from .choice import shortfall
from .space import suggest, trial_config
from .study import INTERRUPTED

SIZE_METRICS = ("efficiency.size_ratio", "efficiency.student.size_bytes", "efficiency.student.n_parameters")


@dataclass
class Objective:
    """The function Optuna calls per trial (from several threads when trials run in parallel)."""

    pm: StillroomPluginManager
    task: TaskSpec
    base: dict[str, Any]
    space: dict[str, SearchDimension]
    session: TeacherSession
    parent_run_id: str
    rules: GateConfig
    objectives: dict[str, str]
    threads: int | None = None  # each trial's share of the cores when trials run at once (None: no cap)

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        values = suggest(trial, self.space, self.base)
        tags = {
            "stillroom.role": "search-trial",
            "stillroom.search.trial": str(trial.number),
            "stillroom.evaluated_on": "validation",
        }
        early: dict[str, float] = {}
        try:
            cfg = trial_config(self.task, self.base, values)
            with scratch_dir("trial") as tmp, thread_budget(self.threads):
                d = distill(
                    self.pm, self.task, cfg, Path(tmp), self.session, split="validation", after_student=self._pruner(early)
                )
        except optuna.TrialPruned as exc:
            self._record(
                trial, values, early, tags | {"stillroom.search.state": "pruned", "stillroom.search.note": str(exc)}, "KILLED"
            )
            trial.set_user_attr("note", str(exc))
            raise
        except KeyboardInterrupt:  # SIGINT/SIGTERM: not a failure of the trial; a resumed search runs it again
            trial.set_user_attr("note", INTERRUPTED)
            raise
        except Exception as exc:
            why = tracking.failure_text(exc)
            logger.warning(f"search: trial {trial.number} failed ({why}); the search goes on")
            trial.set_user_attr("note", f"failed: {why}"[:1000])
            self._record(trial, values, early, tags | {"stillroom.search.state": "failed", tracking.FAILURE_TAG: why}, "FAILED")
            raise
        measured = d.result.with_intervals()  # interval bounds too: noninferior(...) reads gain.<metric>.ci_low
        metrics = {k: float(v) for k, v in measured.items() if v is not None and math.isfinite(float(v))}
        level = cfg.evaluation.ci_level
        gate = evaluate_gate(self.rules, metrics, d.result.not_estimable, level=level, split="validation")
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("not_estimable", dict(d.result.not_estimable))  # the choice judges as this trial did
        trial.set_user_attr("ci_level", level)
        for rule in gate.rules:  # > 0: violated; the sampler steers toward feasible trials
            trial.set_constraint(rule.rule, min(shortfall(rule), 1e9))
        tags |= {"stillroom.search.state": "complete", "stillroom.search.feasible": str(gate.passed).lower()}
        with scratch_dir("trial-record") as out:
            write_predictions(d.bundle, d.outputs.valid, Path(out), split="validation")
            tags |= {"stillroom.search.constraints": "; ".join(gate.reasons())}
            self._record(trial, values, metrics, tags, "FINISHED", Path(out))
        missing = [m for m in self.objectives if m not in metrics]
        if missing:
            raise ValueError(f"objective metric {missing[0]!r} was not computed by this task's evaluators")
        return tuple(metrics[m] for m in self.objectives)

    def _pruner(self, early: dict[str, float]) -> Any:
        size_rules = [r for r in self.rules.rules if r.split()[0].startswith(SIZE_METRICS)]

        def prune_if_too_big(student: Student, teacher: TeacherRecord) -> None:
            desc = student.describe()
            early.update(
                {
                    "efficiency.student.size_bytes": float(desc.size_bytes),
                    "efficiency.student.n_parameters": float(desc.n_parameters),
                }
            )
            if teacher.efficiency.get("size_bytes"):
                early["efficiency.size_ratio"] = desc.size_bytes / teacher.efficiency["size_bytes"]
            broken = [r.reason() for r in evaluate_gate(size_rules, early).rules if not r.passed and r.observed is not None]
            if broken:
                raise optuna.TrialPruned(f"pruned after the student's fit: {'; '.join(broken)}")

        return prune_if_too_big

    def _record(
        self,
        trial: optuna.Trial,
        values: dict[str, Any],
        metrics: dict[str, float],
        tags: dict[str, str],
        status: str,
        artifacts: Path | None = None,
    ) -> None:
        try:
            run_id = tracking.log_child_run(self.parent_run_id, f"trial {trial.number}", values, metrics, tags, status, artifacts)
        except Exception as exc:  # the record of one trial must not stop the search
            logger.warning(f"search: trial {trial.number} could not be logged: {exc}")
            return
        trial.set_user_attr("run_id", run_id)
