"""Real searches on each vertical's embedded data (few trials, tiny settings): the parent run
with a child run per trial, the front, the chosen student registered like a distillation and
the report's section; an interrupted search (a real SIGINT to a subprocess) resumed without
repeating finished trials; an infeasible constraint set ending in one message, nothing registered."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from e2e.conftest import SMALL_MODELS
from mlflow.tracking import MlflowClient

import stillroom
from stillroom import tracking
from stillroom.audit.report import write_report
from stillroom.errors import GateError
from stillroom.testing import temporary_store

pytestmark = pytest.mark.slow

FRAUD = [
    "data.simulation.n_customers=300",
    "data.simulation.n_terminals=600",
    "data.simulation.n_days=87",
    "data.simulation.train_days=21",
    *SMALL_MODELS,
    "student.params.n_estimators=40",
    "search.space={student.params.n_estimators: {low: 10, high: 60, integer: true}}",  # over the default space
    "gate.rules=['retention.average_precision >= 0.5']",
    "evaluation.min_events=20",  # a week of this small simulation holds ~27 frauds: AP estimable from 20 here
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One store and cache for the fraud searches: the teacher is trained once for all of them."""
    with temporary_store(tmp_path_factory.mktemp("mlflow-search")) as uri:
        yield uri


@pytest.fixture(scope="module")
def fraud(store: str) -> stillroom.api.SearchResult:
    return stillroom.search("fraud", overrides=FRAUD, trials=3, jobs=2)


def _children(parent: str) -> list[tracking.RunRecord]:
    return tracking.child_runs(parent)


def test_fraud_search_has_a_parent_run_a_child_per_trial_and_the_front(fraud: stillroom.api.SearchResult) -> None:
    parent = tracking.run_record(fraud.run_id)
    assert parent.tags["stillroom.role"] == "search"
    assert "search/pareto_front.png" in parent.artifacts and "search/trials.csv" in parent.artifacts
    assert parent.tags["stillroom.search.chosen_run"] == fraud.distillation.run_id
    assert "test split was scored once, for the chosen student" in parent.tags["stillroom.search.test_split"]
    assert MlflowClient().get_run(fraud.run_id).info.status == "FINISHED"
    children = _children(fraud.run_id)
    trials = [c for c in children if c.tags.get("stillroom.role") == "search-trial"]
    assert fraud.trials["total"] == 3 == len(trials)
    for child in trials:
        assert child.tags["stillroom.evaluated_on"] == "validation"
        assert "student.params.n_estimators" in child.params and "recipe.alpha" in child.params
        if child.tags["stillroom.search.state"] == "complete":
            assert 0 < child.metrics["retention.average_precision"] <= 1.5
            assert child.metrics["efficiency.speedup_rows_per_second"] > 0
    # the first trial is the default student (values of the config within the space)
    first = next(c for c in trials if c.tags["stillroom.search.trial"] == "0")
    assert first.params["student.params.n_estimators"] == "40" and first.params["recipe.alpha"] == "0.7"
    # the chosen trial is on the front, or the default student the anchor keeps when no front trial
    # was shown no worse than it (trial 0 need not be on the front); its values are what the
    # registered student was trained with
    front = {row["trial"] for row in fraud.front}
    assert fraud.chosen_trial in front | {0}
    if fraud.chosen_trial not in front:
        assert fraud.choice["why"].startswith("the default student: no other feasible trial of the front")
    distilled = tracking.run_record(fraud.distillation.run_id)
    assert distilled.tags["mlflow.parentRunId"] == fraud.run_id
    for key, value in fraud.chosen_params.items():
        assert distilled.params[key] == str(value)


def test_each_trial_logs_its_validation_outputs_and_the_choice_compares_the_front_with_the_default(
    fraud: stillroom.api.SearchResult, tmp_path: Path
) -> None:
    from sklearn.metrics import average_precision_score

    client = MlflowClient()
    children = client.search_runs(
        [client.get_run(fraud.run_id).info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{fraud.run_id}' and tags.`stillroom.role` = 'search-trial'",
    )
    trials = {c.data.tags["stillroom.search.trial"]: c for c in children}
    tables = {
        int(n): pd.read_parquet(client.download_artifacts(c.info.run_id, "predictions/validation.parquet", str(tmp_path / n)))
        for n, c in trials.items()
        if c.data.tags["stillroom.search.state"] == "complete"
    }
    assert 0 in tables and len({len(t) for t in tables.values()}) == 1  # the same validation rows for every trial
    for number, table in tables.items():  # the logged validation AP is recomputed from the file
        assert {"row", "label", "teacher", "student", "baseline"} <= set(table.columns)
        ap = average_precision_score(table["label"], table["student"])
        assert trials[str(number)].data.metrics["student.average_precision"] == pytest.approx(ap, abs=1e-12)
    selection = json.loads(Path(client.download_artifacts(fraud.run_id, "search/search.json", str(tmp_path))).read_text())
    anchoring = selection["anchor"]
    assert anchoring["default_trial"] == 0 and anchoring["metric"] == "average_precision"
    assert anchoring["margin"] == 0.01  # fraud's gate.non_inferiority_margin (search.anchor.margin is null)
    assert selection["tie_break"].startswith("the default student (trial 0) unless")
    assert {c["trial"] for c in anchoring["comparisons"]} == {row["trial"] for row in fraud.front} - {0}
    for c in anchoring["comparisons"]:
        mine, default = tables[c["trial"]], tables[0]
        expected = average_precision_score(mine["label"], mine["student"]) - average_precision_score(
            default["label"], default["student"]
        )
        assert c["difference"] == pytest.approx(expected, abs=1e-12)
        assert c["low"] <= c["difference"] <= c["high"] and c["kept"] == ("no worse on the other objectives" in c["why"])
    kept = {0} | {c["trial"] for c in anchoring["comparisons"] if c["kept"]}
    assert fraud.chosen_trial in kept and np.isfinite(fraud.front[0]["retention.average_precision"])


def test_the_chosen_student_is_judged_on_test_gated_registered_and_reported(
    fraud: stillroom.api.SearchResult, tmp_path: Path
) -> None:
    d = fraud.distillation
    assert d.version is not None and d.registered_model == "fraud-student" and d.gate == "passed"
    assert d.compliance["status"] == "complete"
    run = tracking.run_record(d.run_id)
    assert "model_card.md" in run.artifacts and "search/search.json" in run.artifacts
    card = Path(MlflowClient().download_artifacts(d.run_id, "model_card.md", str(tmp_path))).read_text()
    assert "## How this student was chosen" in card
    assert f"trial {fraud.chosen_trial}:" in card and "the test split was scored once" in card
    html = write_report(d.run_id, tmp_path / "report.html").read_text()
    assert 'id="search"' in html and "How this student was chosen" in html and 'id="front-table"' in html
    compared = fraud.choice["anchor"]["comparisons"]  # the front's other trials against the default student
    assert ('id="anchor-table"' in html) == bool(compared)
    assert ("front trials against the default student (average_precision, validation, paired)" in card) == bool(compared)
    assert fraud.choice["why"] in card


def test_with_the_anchor_off_the_choice_says_it_did_not_compare_with_the_default(fraud: stillroom.api.SearchResult) -> None:
    off = stillroom.search("fraud", overrides=[*FRAUD, "search.anchor.enabled=false", "search.n_trials=2"])
    assert off.choice["anchor"] == {"note": "off (search.anchor.enabled: false): the plain choice among the front"}
    assert off.choice["why"].endswith(
        "(not compared with the default student: off (search.anchor.enabled: false): the plain choice among the front)"
    )
    assert off.choice["rule"].startswith("among the feasible trials on the Pareto front")


def test_a_margin_beyond_the_room_left_on_validation_keeps_the_default_unless_a_trial_is_shown_better(
    fraud: stillroom.api.SearchResult, tmp_path: Path
) -> None:
    """A margin of 1 in average precision: every default is within it of the best value 1, so
    validation is saturated for the anchor; the warning reaches the record, card and report."""
    wide = stillroom.search("fraud", overrides=[*FRAUD, "search.anchor.margin=1.0", "search.n_trials=3"])
    anchoring = wide.choice["anchor"]
    assert anchoring["margin"] == 1.0 and "within the margin 1 of its best value 1" in anchoring["saturated"]
    for c in anchoring["comparisons"]:
        assert c["kept"] == (c["low"] > 0 and "no worse on the other objectives" in c["why"])
    if wide.chosen_trial == 0:
        assert "was shown better than it; validation is saturated: the default" in wide.choice["why"]
    card = Path(MlflowClient().download_artifacts(wide.distillation.run_id, "model_card.md", str(tmp_path))).read_text()
    html = write_report(wide.distillation.run_id, tmp_path / "report.html").read_text()
    shown = bool(anchoring["comparisons"])
    assert ("validation saturated" in card) == shown and ('id="anchor-saturated"' in html) == shown


def test_a_default_that_misses_noninferiority_only_as_inconclusive_on_validation_stays_the_anchor(
    fraud: stillroom.api.SearchResult, tmp_path: Path
) -> None:
    """noninferior(roc_auc) with the gate's margin set to 0: the constraints take the configured
    margin (not the default 0.01), and a default whose validation interval holds 0 has not been
    shown to break it; it stays the anchor, and the record, why, card and report say so."""
    strict = [
        *FRAUD,
        "gate.rules=['retention.average_precision >= 0.5', 'noninferior(roc_auc)']",
        "gate.non_inferiority_margin=0.0",
        "search.n_trials=3",
    ]
    found = stillroom.search("fraud", overrides=strict)
    (default,) = [c for c in _children(found.run_id) if c.tags.get("stillroom.search.trial") == "0"]
    low, high = default.metrics["gain.roc_auc.ci_low"], default.metrics["gain.roc_auc.ci_high"]
    assert low < 0 <= high, "this small simulation's validation split cannot tell the default from its baseline"
    assert "noninferior(roc_auc) (gain.roc_auc.ci_low >= -0; inconclusive" in default.tags["stillroom.search.constraints"]
    anchoring = found.choice["anchor"]
    assert anchoring["default_trial"] == 0 and "note" not in anchoring
    (unsettled,) = anchoring["default_inconclusive"]
    assert unsettled.startswith("FAIL noninferior(roc_auc) (gain.roc_auc.ci_low >= -0; inconclusive")
    for c in anchoring["comparisons"]:  # any other front trial met the constraint outright and was compared
        assert found.front and c["trial"] in [row["trial"] for row in found.front]
    if found.chosen_trial == 0:
        assert "only as inconclusive: FAIL noninferior(roc_auc)" in found.choice["why"]
    card = Path(MlflowClient().download_artifacts(found.distillation.run_id, "model_card.md", str(tmp_path))).read_text()
    html = write_report(found.distillation.run_id, tmp_path / "report.html").read_text()
    assert "constraints missed on validation only as inconclusive" in card and 'id="anchor-inconclusive"' in html
    # the record counts, per constraint, the completed trials that missed it and how many only as inconclusive
    missed = found.constraints_missed["noninferior(roc_auc)"]
    assert 1 <= missed["inconclusive"] <= missed["missed"] <= found.trials["complete"]
    assert "completed trials missing each constraint (validation)" in card and 'id="search-missed"' in html
    assert f"<code>noninferior(roc_auc)</code>: {missed['missed']}, {missed['inconclusive']} only inconclusive" in html
    assert ('id="front-empty"' in html) == (not found.front)  # no trial feasible: the default is still the answer


def test_the_cli_exits_3_when_the_chosen_students_gate_fails_on_test(store: str) -> None:
    """As ``stillroom distill``: a batch job that ships what ``stillroom search`` chose must see a
    failed gate in the exit code (the search itself succeeded: every trial was feasible)."""
    from typer.testing import CliRunner

    from stillroom.cli import app

    settings = [*FRAUD, "search.gate_as_constraints=false", "gate.rules=['retention.average_precision >= 5']"]
    args = ["search", "fraud", "--trials", "2", "--jobs", "1"] + [a for item in settings for a in ("--set", item)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 3, result.output
    assert "chosen: trial" in result.output and "FAIL retention.average_precision >= 5" in result.output
    as_json = CliRunner().invoke(app, [*args, "--json"])  # the same study, resumed: its two trials are done
    assert as_json.exit_code == 3, as_json.output
    assert json.loads(as_json.stdout)["distillation"]["gate"] == "failed"


def test_infeasible_constraints_name_the_closest_trial_and_register_nothing(fraud: stillroom.api.SearchResult) -> None:
    client = MlflowClient()
    before = len(client.search_model_versions("name = 'fraud-student'"))
    impossible = [*FRAUD, "search.constraints=['retention.average_precision >= 1.5']", "search.n_trials=2"]
    with pytest.raises(
        GateError,
        match=r"no trial meets the constraints \(2 trials\); the closest is trial \d+ .*"
        r"FAIL retention.average_precision >= 1.5 \(observed .*nothing registered",
    ):
        stillroom.search("fraud", overrides=impossible)
    assert len(client.search_model_versions("name = 'fraud-student'")) == before
    failed = client.search_runs(
        [client.get_experiment_by_name("stillroom-fraud").experiment_id],
        filter_string="tags.`stillroom.role` = 'search' and attributes.status = 'FAILED'",
    )
    assert len(failed) == 1 and "closest is trial" in failed[0].data.tags["stillroom.failure"]


def _completed(storage: str) -> dict[int, tuple[dict, tuple]]:
    summaries = optuna.get_all_study_summaries(storage) if Path(storage.removeprefix("sqlite:///")).exists() else []
    out: dict[int, tuple[dict, tuple]] = {}
    for summary in summaries:
        if summary.study_name.startswith("fraud-"):
            for t in optuna.load_study(study_name=summary.study_name, storage=storage).trials:
                if t.state == optuna.trial.TrialState.COMPLETE:
                    out[t.number] = (t.params, tuple(t.values))
    return out


def _finished_trials(path: Path) -> int:
    """Complete trials in the study file, read-only: opening it through Optuna while the search
    creates it would race the search's own schema migration."""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return int(db.execute("select count(*) from trials where state = 'COMPLETE'").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet, or its tables not yet
        return 0


def test_an_interrupted_search_resumes_without_repeating_finished_trials(tmp_path: Path) -> None:
    with temporary_store(tmp_path) as uri:
        storage = f"sqlite:///{tmp_path / 'stillroom-search.db'}"
        args = [sys.executable, "-m", "stillroom", "search", "fraud", "--trials", "4", "--jobs", "1"]
        for item in FRAUD:
            args += ["--set", item]
        env = os.environ | {"MLFLOW_TRACKING_URI": uri}
        proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 900
        while not _finished_trials(tmp_path / "stillroom-search.db") and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(1)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 130, err[-2000:]
        assert "interrupted by SIGINT" in err
        done = _completed(storage)
        assert 1 <= len(done) < 4

        again = subprocess.run(args + ["--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
        assert again.returncode == 0, again.stderr[-2000:]
        after = _completed(storage)
        for number, record in done.items():  # kept as they were, not run again
            assert after[number] == record
        study = next(s for s in optuna.get_all_study_summaries(storage) if s.study_name.startswith("fraud-"))
        trials = optuna.load_study(study_name=study.study_name, storage=storage).trials
        interrupted = [t for t in trials if t.user_attrs.get("note") == "interrupted"]
        assert len(trials) - len(interrupted) == 4  # the budget counts finished trials only
        parent = (
            trials[0].user_attrs["run_id"]
            and MlflowClient().get_run(trials[0].user_attrs["run_id"]).data.tags["mlflow.parentRunId"]
        )
        children = [c for c in tracking.child_runs(parent) if c.tags.get("stillroom.role") == "search-trial"]
        numbers = [c.tags["stillroom.search.trial"] for c in children if c.tags["stillroom.search.state"] == "complete"]
        assert sorted(numbers) == sorted(set(numbers))  # no finished trial logged twice
        assert MlflowClient().get_run(parent).info.status == "FINISHED"


MEDICAL = [
    "data.synthetic.n_train=120",
    "data.synthetic.n_validation=80",
    "data.synthetic.n_test=90",
    "data.synthetic.size=16",
    "teacher.params.widths=[8, 16, 32]",
    "teacher.params.epochs=1",
    "student.params.epochs=1",
    "student.params.progress=false",
    "teacher.params.progress=false",
    "evaluation.bootstrap=20",
    "evaluation.efficiency_rows=60",
    "evaluation.latency_repeats=10",
    "medical.min_subgroup_size=5",
    "search.gate_as_constraints=false",
    "search.constraints=['efficiency.size_ratio <= 1']",
]

MOLECULES = [
    "data.max_rows=300",
    "data.pool_max=400",
    "teacher.name=molecules.descriptor_ensemble",  # the light teacher (the default is chemprop)
    "teacher.params.boosters=1",
    "teacher.params.n_estimators=80",
    "teacher.params.forest_trees=40",
    "teacher.params.descriptors=screening",
    "student.params.n_estimators=80",
    "evaluation.bootstrap=20",
    "evaluation.efficiency_rows=200",
    "evaluation.latency_repeats=5",
    "search.gate_as_constraints=false",
    # the vertical's own transfer-set fields, narrowed: every trial generates a few analogues
    "search.space={molecules.analogues.enabled: {choices: [true]},"
    " molecules.analogues.max_count: {low: 20, high: 60, integer: true}}",
]


@pytest.mark.parametrize(("task", "overrides"), [("medical", MEDICAL), ("molecules", MOLECULES)])
def test_a_small_search_on_each_verticals_embedded_data(task: str, overrides: list[str], tmp_path: Path) -> None:
    with temporary_store(tmp_path):
        result = stillroom.search(task, overrides=overrides, trials=2, jobs=1)
        children = [c for c in tracking.child_runs(result.run_id) if c.tags.get("stillroom.role") == "search-trial"]
        assert len(children) == 2 == result.trials["total"]
        assert result.trials["complete"] >= 1 and result.front
        assert result.distillation.version is not None
        assert "search/pareto_front.png" in tracking.run_record(result.run_id).artifacts
        html = write_report(result.distillation.run_id, tmp_path / "report.html").read_text()
        assert "How this student was chosen" in html
        space_keys = set(result.chosen_params)
        declared = {"medical": "student.params.widths", "molecules": "student.name"}[task]
        assert declared in space_keys  # the vertical's default space was searched
        if task == "molecules":  # the chosen trial's analogues went into the registered student's transfer set
            assert 20 <= result.chosen_params["molecules.analogues.max_count"] <= 60
            assert 0 < result.distillation.metrics["transfer.analogues.accepted"] <= 60


def test_a_trials_transfer_set_and_its_record_follow_its_own_vertical_settings(tmp_path: Path) -> None:
    """The session is shared by every trial; a trial that asks for analogues gets a transfer set
    with them and a record of them, and a trial (or the chosen run) that does not ask gets
    neither, whatever ran before it."""
    from stillroom.api import plugin_manager
    from stillroom.distillation.pipeline import load_config
    from stillroom.distillation.session import open_session

    pm = plugin_manager()
    task = pm.task("molecules")
    base = [o for o in MOLECULES if not o.startswith("search.")] + [f"run.cache_dir={tmp_path / 'cache'}"]
    plain = load_config(task, None, base)
    with_analogues = load_config(task, None, [*base, "molecules.analogues.enabled=true", "molecules.analogues.max_count=30"])
    with temporary_store(tmp_path):
        session = open_session(pm, task, plain, keep=True, shared=True)
        bundle, transfer, outputs, _ = session.for_config(pm, with_analogues, needs_model=False)
        assert 0 < bundle.details["analogues"]["accepted"] <= 30
        assert {o for o in transfer.origin if o.startswith("analogue.")} and len(outputs.transfer_teacher) == len(transfer.X)
        again, plain_transfer, _, _ = session.for_config(pm, plain, needs_model=False)
        assert "analogues" not in again.details and "analogues" not in session.bundle.details
        assert not any(o.startswith("analogue.") for o in plain_transfer.origin)
