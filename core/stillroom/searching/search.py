"""A whole search: the study, the trials, the choice, then the chosen student distilled, judged
on test, gated and registered exactly as ``stillroom distill`` does (the pipeline and
:func:`stillroom.audit.record`), under one parent run holding every trial as a child run."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from .. import tracking
from ..audit.predictions import path_for
from ..audit.record import record
from ..cache import cache_key, use_cache_dir
from ..contract.bundle import DataBundle
from ..contract.config import DistillConfig, GateConfig, parse_duration
from ..contract.rules import expand_rules
from ..contract.specs import TaskSpec
from ..distillation.evaluation import metric_named
from ..distillation.pipeline import distill
from ..distillation.session import open_session
from ..errors import ConfigError, GateError
from ..plugins import StillroomPluginManager
from ..progress import logger, step, timed
from ..scratch import scratch_dir
from . import anchor, choice
from . import study as studies
from .front import plot_front, trials_table
from .space import decode, default_values, probe_values, resolve_space, trial_config
from .trials import Objective

TEST_DISCIPLINE = (
    "every choice was made on the validation split (trial metrics, constraints, front, tie-break); "
    "the test split was scored once, for the chosen student, in its distillation run"
)


class SearchInfeasible(GateError):
    """No trial met the constraints: nothing is registered."""


def study_name(task: TaskSpec, cfg: DistillConfig) -> str:
    """The same config (budget, trials and jobs aside) names the same study: running the same
    command again resumes it."""
    raw = cfg.model_dump(mode="json")
    for key in ("budget", "n_trials", "jobs"):
        raw["search"].pop(key, None)
    return f"{task.name}-{cache_key(json.dumps(raw, sort_keys=True))[:12]}"


def run_search(
    pm: StillroomPluginManager, task: TaskSpec, cfg: DistillConfig, tracking_uri: str, jobs_available: int
) -> dict[str, Any]:
    """Trials under the budget, the choice, the chosen student recorded; returns the summary."""
    settings = cfg.search
    if settings.budget is None and settings.n_trials is None:
        raise ConfigError("search needs a budget (--budget 30m, search.budget) or a number of trials (--trials, search.n_trials)")
    base = cfg.model_dump(mode="json")
    space = resolve_space(pm, task, settings)
    with step("search: validating the space"):
        pm.make_student(trial_config(task, base, probe_values(space, base)).student, task, cfg.run.seed)
    rules = list(settings.constraints) + (list(cfg.gate.rules) if settings.gate_as_constraints else [])
    name, storage = study_name(task, cfg), studies.storage_url(settings, tracking_uri)
    study, resumed = studies.open_study(name, storage, settings, cfg.run.seed)
    parent = tracking.open_parent_run(
        cfg.run.experiment,
        f"search {task.name}",
        {"stillroom.role": "search", "stillroom.task": task.name, "stillroom.search.study": name},
        resume=study.user_attrs.get("parent_run_id") if resumed else None,
    )
    study.set_user_attr("parent_run_id", parent)
    jobs = min(settings.jobs or jobs_available, jobs_available)
    logger.info(
        f"search: study {name} in {storage} ({'resumed' if resumed else 'new'}), parent run {parent}, {jobs} trial(s) at once"
    )
    with timed() as timings, tracking.job() as opened:
        try:
            with scratch_dir("search") as tmp, use_cache_dir(cfg.run.cache_dir):
                session = open_session(pm, task, cfg, keep=True, shared=True)
                bundle = session.bundle  # the rules' placeholders written out for this data ({headline} ...)
                written = expand_rules(rules, bundle.task_type, bundle.output_types, list(bundle.output_names))
                constraints = GateConfig(rules=written, non_inferiority_margin=cfg.gate.non_inferiority_margin)
                tracking.adopt(opened, parent)  # a teacher the plugin trained: its run under the search
                objective = Objective(
                    pm,
                    task,
                    base,
                    space,
                    session,
                    parent,
                    constraints,
                    dict(settings.objectives),
                    trial_threads(jobs, jobs_available),
                )
                if not study.trials:
                    studies.enqueue(study, default_values(space, base))
                _optimize(study, objective, settings, jobs)
                trials = studies.views(study)
                trials = [dataclasses.replace(t, params=decode(space, t.params)) for t in trials]
                selection, chosen = _choose(trials, constraints, cfg, bundle, space, (name, storage, jobs, parent), Path(tmp))
                (Path(tmp) / "run").mkdir()
                with step(f"search: distilling the chosen student (trial {chosen.number}) and judging it on test"):
                    d = distill(pm, task, trial_config(task, base, chosen.params), Path(tmp) / "run", session)
                d.selection = selection
                _write_selection(d.artifact_dir, Path(tmp) / "search")
                summary = record(pm, d, timings, tracking_uri, [])
                tracking.tag_run(summary["run_id"], {"mlflow.parentRunId": parent, "stillroom.search.parent": parent})
        except BaseException as exc:
            tracking.fail_run(
                parent,
                exc
                if not isinstance(exc, KeyboardInterrupt)
                else f"{tracking.failure_text(exc)}; run the same command to resume",
            )
            raise
    tracking.tag_run(
        parent,
        {
            "stillroom.search.chosen_trial": str(chosen.number),
            "stillroom.search.chosen_run": summary["run_id"],
            "stillroom.search.test_split": TEST_DISCIPLINE,
            **(
                {"stillroom.registered_version": f"{summary['registered_model']}/{summary['version']}"}
                if summary["version"]
                else {}
            ),
        },
    )
    tracking.finish_run(parent)
    return {
        "run_id": parent,
        "study": name,
        "storage": storage,
        "resumed": resumed,
        "chosen_trial": chosen.number,
        "chosen_params": chosen.params,
        "trials": selection["trials"],
        "constraints_missed": selection["constraints_missed"],
        "front": selection["front"],
        "choice": {"why": selection["chosen"]["why"], "rule": selection["tie_break"], "anchor": selection["anchor"]},
        "distillation": summary,
    }


def trial_threads(jobs: int, cores: int) -> int | None:
    """Each trial's share of the cores when ``jobs`` trials run at once (None for one at a time:
    a lone trial trains as a run would). Why: trials are threads of one process, and two trials
    each training on every core oversubscribe them (see :mod:`stillroom.contract.compute`)."""
    return None if jobs <= 1 else max(1, cores // jobs)


def _optimize(study: Any, objective: Objective, settings: Any, jobs: int) -> None:
    """Trials until the budget left or the trials left run out (a resumed study counts what is done)."""
    left_trials = None if settings.n_trials is None else settings.n_trials - studies.counted(study)
    left_seconds = None if settings.budget is None else parse_duration(settings.budget) - studies.seconds_spent(study)
    if (left_trials is not None and left_trials <= 0) or (left_seconds is not None and left_seconds <= 0):
        logger.info("search: the budget was spent before; choosing among the trials done")
        return
    started = time.monotonic()
    last = [started]

    def spent(study_: Any, _trial: Any) -> None:
        now = time.monotonic()
        studies.add_spent(study_, now - last[0])
        last[0] = now

    limit = "no limit on" if left_trials is None else left_trials
    with step(f"search: trials ({limit} trials, {left_seconds or 0:.0f}s of budget left)"):
        queued = min(studies.waiting(study), left_trials if left_trials is not None else 1_000_000)
        if queued:  # the default student first, alone
            study.optimize(objective, n_trials=queued, timeout=left_seconds, n_jobs=1, catch=(Exception,), callbacks=[spent])
            left_trials = None if left_trials is None else left_trials - queued
            left_seconds = None if left_seconds is None else left_seconds - (time.monotonic() - started)
        if (left_trials is None or left_trials > 0) and (left_seconds is None or left_seconds > 0):
            study.optimize(
                objective, n_trials=left_trials, timeout=left_seconds, n_jobs=jobs, catch=(Exception,), callbacks=[spent]
            )


def _choose(
    trials: list[choice.TrialView],
    rules: GateConfig,
    cfg: DistillConfig,
    bundle: DataBundle,
    space: dict[str, Any],
    study: tuple[str, str, int, str],
    tmp: Path,
) -> tuple[dict[str, Any], choice.TrialView]:
    """The front and the choice, written to the parent run; infeasible: the closest trial named.
    ``study``: its name, storage, trials at once and parent run."""
    settings, (name, storage, jobs, parent) = cfg.search, study
    objectives: dict[str, str] = dict(settings.objectives)
    ok = choice.feasible(trials, rules)
    front = choice.pareto_front(ok, objectives)
    pool, anchoring = _anchor(front, trials, rules, cfg, bundle, tmp / "anchor")
    chosen = choice.choose(pool, objectives, settings.choose, settings.choose_tolerance) if pool else None
    out = tmp / "search"
    out.mkdir(parents=True, exist_ok=True)
    table = trials_table(trials, front, ok, objectives)
    table.to_csv(out / "trials.csv", index=False)
    table[table["pareto_front"]].to_csv(out / "pareto_front.csv", index=False)
    plot_front(trials, front, chosen, objectives, out / "pareto_front.png")
    counts = {state: sum(t.state == state for t in trials) for state in ("complete", "pruned", "failed")}
    among = {"among": anchoring["rule"]} if "rule" in anchoring else {}
    rule = choice.tie_break_rule(objectives, settings.choose, settings.choose_tolerance, **among)
    selection = {
        "study": name,
        "storage": storage,
        "parent_run_id": parent,
        "space": {k: v.model_dump(exclude_defaults=True) for k, v in space.items()},
        "budget": {"wall_time": settings.budget, "n_trials": settings.n_trials, "trials_at_once": jobs},
        "sampler": (
            f"Optuna {settings.sampler} (multi-objective; constraint values steer sampling); "
            "a trial whose fitted student breaks a size constraint is pruned before its baseline and evaluation"
        ),
        "trials": {"total": len(trials), **counts, "feasible": len(ok)},
        "constraints_missed": choice.misses(trials, rules),
        "objectives": objectives,
        "constraints": rules.rules,
        "tie_break": rule,
        "anchor": anchoring,
        "front": [{"trial": t.number, **{m: t.metrics.get(m) for m in objectives}, **t.params} for t in front],
        "default_trial": next(
            (
                {"trial": t.number, **{m: t.metrics.get(m) for m in objectives}}
                for t in trials
                if t.number == 0 and t.state == "complete"
            ),
            None,
        ),
        "test_split": TEST_DISCIPLINE,
    }
    if chosen is not None:
        selection["chosen"] = {
            "trial": chosen.number,
            "params": chosen.params,
            "validation": {m: chosen.metrics.get(m) for m in objectives},
            "why": _why(chosen, pool, rule, anchoring),
        }
    (out / "search.json").write_text(json.dumps(selection, indent=2, default=str))
    tracking.log_artifacts_to(parent, out, "search")
    tracking.tag_run(parent, {"stillroom.search.feasible": str(len(ok)), "stillroom.search.trials": str(len(trials))})
    if chosen is None:
        raise SearchInfeasible(_infeasible_message(trials, rules))
    return selection, chosen


def _anchor(
    front: list[choice.TrialView],
    trials: list[choice.TrialView],
    rules: GateConfig,
    cfg: DistillConfig,
    bundle: DataBundle,
    tmp: Path,
) -> tuple[list[choice.TrialView], dict[str, Any]]:
    """The trials the choice may take: with the anchor (:mod:`stillroom.searching.anchor`), the
    default student and the front trials shown no worse than it; without it, the front. The
    record says which, why when the anchor could not be used, and which constraints the default
    missed on validation only as inconclusive (it stays the anchor, see ``anchor.default_trial``)."""
    settings = cfg.search
    if not settings.anchor.enabled:
        return front, {"note": "off (search.anchor.enabled: false): the plain choice among the front"}
    checked = anchor.default_trial(trials, rules)
    default = checked.trial
    if default is None:
        return front, {"note": f"{checked.refused}: the plain choice among the front"}
    inconclusive = {"default_inconclusive": list(checked.inconclusive)} if checked.inconclusive else {}
    name = anchor.anchor_metric(settings.choose or list(settings.objectives))
    metric = None if name is None else metric_named(bundle.task_type, bundle.output_types, name)
    if name is None or metric is None:
        first = (settings.choose or list(settings.objectives))[0]
        return front, {
            "note": f"the first choose key {first!r} names no metric the evaluation computes: the plain choice among the front"
        }

    def fetch(t: choice.TrialView) -> Any:
        if t.run_id is None:
            raise ValueError("the trial has no child run")
        return tracking.read_run_table(t.run_id, path_for("validation"), tmp / str(t.number))

    try:
        reference = fetch(default)
    except Exception as exc:  # a study resumed from a version that did not log them
        return front, {
            "note": f"the default student's validation predictions could not be read ({exc}): the plain choice among the front"
        }
    margin = cfg.gate.margin_for(name) if settings.anchor.margin is None else settings.anchor.margin
    saturated = anchor.saturation(metric, margin, reference)
    judge = anchor.Judge(
        metric, margin, settings.anchor.slack, dict(settings.objectives), cfg.evaluation.bootstrap, cfg.run.seed, saturated
    )
    if saturated:
        logger.warning(f"search: {saturated}")
    with step(f"search: the front against the default student on validation ({name}, paired, {judge.n_boot} resamples)"):
        pool, compared = anchor.candidates(front, default, reference, fetch, judge)
    logger.info(
        f"search: {len(pool) - 1} of {len(compared)} other front trial(s) shown no worse than the default student; "
        "the tie-break chooses among them and the default"
    )
    return pool, {
        "rule": judge.rule(),
        "default_trial": default.number,
        "metric": name,
        "margin": margin,
        "slack": settings.anchor.slack,
        "resamples": judge.n_boot,
        "comparisons": anchor.as_record(compared),
        **({"saturated": saturated} if saturated else {}),
        **inconclusive,
    }


def _why(chosen: choice.TrialView, pool: list[choice.TrialView], rule: str, anchoring: dict[str, Any]) -> str:
    """Why the chosen trial, in a sentence; without the anchor, why it was not used; for a
    default student kept with inconclusive constraints, which ones."""
    unsettled = anchoring.get("default_inconclusive") if chosen.number == anchoring.get("default_trial") else None
    caveat = f"; on validation it missed constraints only as inconclusive: {'; '.join(unsettled)}" if unsettled else ""
    if "rule" in anchoring and len(pool) == 1:
        if "saturated" in anchoring:
            return (
                "the default student: no other feasible trial of the front was shown better than it; "
                f"{anchoring['saturated']}{caveat}"
            )
        return f"the default student: no other feasible trial of the front was shown no worse than it on validation{caveat}"
    if caveat:
        return f"the default student, first by the rule: {rule}{caveat}"
    unanchored = f" (not compared with the default student: {anchoring['note']})" if "note" in anchoring else ""
    return f"it meets every constraint on validation and is first by the rule: {rule}{unanchored}"


def _infeasible_message(trials: list[choice.TrialView], rules: GateConfig) -> str:
    near = choice.closest(trials, rules)
    if near is None:
        failed = next((t.note for t in trials if t.note), "")
        return f"search: no trial completed ({len(trials)} tried{'; ' + failed if failed else ''}); nothing registered"
    trial, gate = near
    missed = "; ".join(r.reason() for r in gate.rules if not r.passed)
    return (
        f"search: no trial meets the constraints ({len(trials)} trials); the closest is trial {trial.number} "
        f"({', '.join(f'{k}={v}' for k, v in trial.params.items())}): {missed}; nothing registered"
    )


def _write_selection(artifact_dir: Path, search_dir: Path) -> None:
    """The search's table, front plot and record inside the chosen student's run as well."""
    target = artifact_dir / "search"
    target.mkdir(parents=True, exist_ok=True)
    for path in search_dir.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
