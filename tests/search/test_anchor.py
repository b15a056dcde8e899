"""The default student as the anchor of the choice: a trial replaces it only when the paired
validation comparison shows it no worse, and it is no worse on the other objectives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stillroom.contract.config import AnchorSettings, GateConfig, SearchSettings
from stillroom.distillation.evaluation import metric_named
from stillroom.searching import anchor
from stillroom.searching.choice import TrialView, choose

OBJ = {"retention.roc_auc": "max", "efficiency.speedup_rows_per_second": "max", "efficiency.size_ratio": "min"}
ORDER = ["retention.roc_auc", "efficiency.size_ratio", "efficiency.speedup_rows_per_second"]
SLACK = {"efficiency.speedup_rows_per_second": 0.2}


def _judge(
    task_type: str = "binary",
    name: str = "roc_auc",
    margin: float = 0.01,
    objectives: dict | None = None,
    reference: pd.DataFrame | None = None,
) -> anchor.Judge:
    """``reference``: the default's validation predictions, judged for saturation as the search does."""
    metric = metric_named(task_type, None, name)
    assert metric is not None
    saturated = None if reference is None else anchor.saturation(metric, margin, reference)
    return anchor.Judge(metric, margin, SLACK, objectives or OBJ, n_boot=400, seed=0, saturated=saturated)


def _table(y: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"row": np.arange(len(y)).astype(str), "label": y, "student": scores})


def _trial(number: int, speed: float, size: float) -> TrialView:
    metrics = {"retention.roc_auc": 1.0, "efficiency.speedup_rows_per_second": speed, "efficiency.size_ratio": size}
    return TrialView(number, "complete", {}, metrics, run_id=f"run-{number}")


@pytest.fixture(scope="module")
def binary() -> tuple[np.ndarray, dict[int, pd.DataFrame]]:
    """A default student and four trials scored on the same 2,000 validation rows."""
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.4).astype(int)
    signal = y + rng.normal(0, 0.6, len(y))
    scores = {
        0: signal,
        1: signal + rng.normal(0, 0.05, len(y)),  # the default's ranking, barely perturbed
        2: y + rng.normal(0, 1.6, len(y)),  # clearly worse
        3: signal + rng.normal(0, 0.05, len(y)),  # as good, but slower beyond the slack
        4: signal + rng.normal(0, 0.05, len(y)),  # as good, smaller, a little slower (within the slack)
    }
    return y, {k: _table(y, v) for k, v in scores.items()}


def test_only_trials_shown_no_worse_than_the_default_join_it_and_the_tie_break_decides_among_them(binary) -> None:  # noqa: ANN001
    y, tables = binary
    default = _trial(0, speed=80.0, size=0.014)
    front = [_trial(1, 82.0, 0.010), _trial(2, 95.0, 0.004), _trial(3, 50.0, 0.005), _trial(4, 70.0, 0.006)]
    pool, compared = anchor.candidates(front, default, tables[0], lambda t: tables[t.number], _judge())
    assert [t.number for t in pool] == [0, 1, 4]
    by_trial = {c.trial: c for c in compared}
    assert not by_trial[2].kept and "not shown non-inferior" in by_trial[2].why
    assert by_trial[2].high < 0  # the worse trial's whole interval is below the default
    assert not by_trial[3].kept and "efficiency.speedup_rows_per_second (50 vs 80)" in by_trial[3].why
    assert by_trial[4].kept and by_trial[4].low >= -0.01
    # the paired difference is the AUC difference on these rows
    from sklearn.metrics import roc_auc_score

    expected = roc_auc_score(y, tables[2]["student"]) - roc_auc_score(y, tables[0]["student"])
    assert by_trial[2].difference == pytest.approx(expected, abs=1e-12)
    assert choose(pool, OBJ, ORDER, {"retention.roc_auc": 0.01}).number == 4  # the smallest of the three


def test_with_no_trial_shown_no_worse_the_default_is_the_only_candidate(binary) -> None:  # noqa: ANN001
    _, tables = binary
    default = _trial(0, 80.0, 0.014)
    pool, _ = anchor.candidates([_trial(2, 95.0, 0.004)], default, tables[0], lambda t: tables[t.number], _judge())
    assert [t.number for t in pool] == [0]
    # a trial whose validation outputs cannot be read is not kept, and says why
    pool, compared = anchor.candidates([_trial(7, 95.0, 0.004)], default, tables[0], lambda t: tables[t.number], _judge())
    assert [t.number for t in pool] == [0] and "could not be read" in compared[0].why


def test_a_wider_margin_keeps_what_a_narrower_one_refuses(binary) -> None:  # noqa: ANN001
    y, tables = binary
    somewhat_worse = _table(y, tables[0]["student"].to_numpy() + np.random.default_rng(5).normal(0, 0.3, len(y)))
    default, trial = _trial(0, 80.0, 0.014), _trial(5, 95.0, 0.004)
    narrow = _judge(margin=0.01, reference=tables[0]).compare(trial, default, somewhat_worse, tables[0])
    wide_judge = _judge(margin=abs(narrow.low) + 1e-9, reference=tables[0])
    wide = wide_judge.compare(trial, default, somewhat_worse, tables[0])
    assert wide_judge.saturated is None  # the margin is below the room left
    assert not narrow.kept and wide.kept and (narrow.difference, narrow.low) == (wide.difference, wide.low)


def test_a_lower_is_better_metric_is_oriented_so_a_larger_error_is_worse() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(0, 1, 1500)
    default_pred, worse_pred = y + rng.normal(0, 0.3, len(y)), y + rng.normal(0, 0.6, len(y))
    metric = metric_named("regression", None, "rmse")
    assert metric is not None and not metric.higher_is_better
    tables = {0: _table(y, default_pred), 1: _table(y, worse_pred)}
    obj = {"retention.rmse": "max", "efficiency.size_ratio": "min"}
    d = TrialView(0, "complete", {}, {"retention.rmse": 1.0, "efficiency.size_ratio": 0.1})
    t = TrialView(1, "complete", {}, {"retention.rmse": 0.5, "efficiency.size_ratio": 0.05})
    c = _judge("regression", "rmse", 0.05, obj).compare(t, d, tables[1], tables[0])
    rmse = lambda p: float(np.sqrt(np.mean((y - p) ** 2)))  # noqa: E731
    assert c.difference == pytest.approx(-(rmse(worse_pred) - rmse(default_pred)), abs=1e-12)
    assert c.difference < 0 and c.high < 0 and not c.kept


def test_trials_judged_on_other_rows_are_refused(binary) -> None:  # noqa: ANN001
    _, tables = binary
    shuffled = tables[1].sample(frac=1.0, random_state=0)
    with pytest.raises(ValueError, match="same validation rows"):
        _judge().compare(_trial(1, 80, 0.01), _trial(0, 80, 0.01), shuffled, tables[0])


def test_the_anchor_metric_is_the_first_choose_keys_and_the_slack_must_name_an_objective() -> None:
    assert anchor.anchor_metric(ORDER) == "roc_auc"
    assert anchor.anchor_metric(["efficiency.size_ratio", "retention.roc_auc"]) is None
    assert metric_named("binary", None, "brier") is None
    with pytest.raises(ValueError, match="not one of search.objectives"):
        SearchSettings(objectives=OBJ, anchor={"slack": {"efficiency.latency": 0.2}})
    with pytest.raises(ValueError, match="fraction"):
        AnchorSettings(slack={"efficiency.speedup_rows_per_second": 1.5})
    # no margin of its own: the gate's non-inferiority margin for the metric
    assert AnchorSettings().margin is None and GateConfig().margin_for("roc_auc") == 0.01


def test_on_a_saturated_validation_set_only_a_trial_shown_better_replaces_the_default() -> None:
    """The default at ROC-AUC ~0.993 with a margin of 0.01: non-inferiority would admit a trial
    twice as far from 1, so a trial as good is not kept, one shown better is."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    y = (rng.random(2000) < 0.4).astype(int)
    default_scores = y + rng.normal(0, 0.287, len(y))
    tables = {
        0: _table(y, default_scores),
        1: _table(y, default_scores + rng.normal(0, 0.03, len(y))),  # as good
        2: _table(y, y + rng.normal(0, 0.12, len(y))),  # near-perfect: shown better
    }
    value = roc_auc_score(y, default_scores)
    assert 0.99 < value < 0.997
    judge = _judge(reference=tables[0])
    message = judge.saturated
    assert message is not None and f"roc_auc {value:.4f}" in message and "within the margin 0.01 of its best value 1" in message
    front = [_trial(1, 80.0, 0.010), _trial(2, 80.0, 0.010)]
    pool, compared = anchor.candidates(front, _trial(0, 80.0, 0.014), tables[0], lambda t: tables[t.number], judge)
    by_trial = {c.trial: c for c in compared}
    assert by_trial[1].low >= -0.01 and not by_trial[1].kept  # non-inferior, but that says nothing here
    assert "not shown better than the default on a saturated validation set" in by_trial[1].why
    assert by_trial[2].low > 0 and by_trial[2].kept
    assert [t.number for t in pool] == [0, 2]
    # a margin below the room left compares as usual
    assert _judge(margin=0.001, reference=tables[0]).saturated is None


def test_saturation_is_judged_toward_the_metrics_best_value_both_ways() -> None:
    y = np.linspace(0.0, 1.0, 200)
    regression = _judge("regression", "rmse", margin=0.01)
    assert regression.metric.best == 0.0
    assert anchor.saturation(regression.metric, 0.01, _table(y, y + 0.005)) is not None  # RMSE 0.005: within 0.01 of 0
    assert anchor.saturation(regression.metric, 0.01, _table(y, y + 0.05)) is None


def _default_with(gain_low: float, gain_high: float, speed: float = 80.0) -> TrialView:
    """Trial 0 with the validation metrics the constraints below read."""
    metrics = {
        "retention.roc_auc": 1.0,
        "efficiency.speedup_rows_per_second": speed,
        "efficiency.size_ratio": 0.01,
        "gain.roc_auc": (gain_low + gain_high) / 2,
        "gain.roc_auc.ci_low": gain_low,
        "gain.roc_auc.ci_high": gain_high,
    }
    return TrialView(0, "complete", {}, metrics, run_id="run-0")


RULES = ["noninferior(roc_auc)", "efficiency.speedup_rows_per_second >= 20"]


def test_a_default_that_misses_a_constraint_only_as_inconclusive_stays_the_anchor_with_the_reason() -> None:
    # the gain's interval holds 0 and is wider than the margin (0.03 > 0.01): validation cannot tell
    checked = anchor.default_trial([_default_with(-0.03, 0.03), _trial(1, 90.0, 0.01)], RULES)
    assert checked.trial is not None and checked.trial.number == 0 and checked.refused is None
    (unsettled,) = checked.inconclusive
    assert "noninferior(roc_auc)" in unsettled and "inconclusive" in unsettled
    # met outright: the anchor, nothing to report
    assert anchor.default_trial([_default_with(-0.005, 0.02)], RULES) == anchor.DefaultCheck(_default_with(-0.005, 0.02))


@pytest.mark.parametrize(
    ("low", "high", "speed", "broken"),
    [
        (-0.03, -0.001, 80.0, "noninferior(roc_auc)"),  # the whole interval below 0: shown worse than the baseline
        (-0.015, 0.004, 80.0, "noninferior(roc_auc)"),  # narrow enough to judge (half-width 0.0095 <= 0.01), beyond the margin
        (-0.03, 0.03, 12.0, "efficiency.speedup_rows_per_second >= 20"),  # inconclusive, but shown too slow
    ],
)
def test_a_default_shown_to_break_a_constraint_is_no_anchor_and_the_record_names_it(
    low: float, high: float, speed: float, broken: str
) -> None:
    checked = anchor.default_trial([_default_with(low, high, speed)], RULES)
    assert checked.trial is None and not checked.inconclusive
    assert checked.refused is not None and checked.refused.startswith("the default student (trial 0) was shown to break")
    assert f"FAIL {broken}" in checked.refused and checked.refused.count("FAIL") == 1  # only what it broke


def test_a_default_that_did_not_complete_is_no_anchor() -> None:
    failed = TrialView(0, "failed", {}, {}, note="boom")
    checked = anchor.default_trial([failed, _trial(1, 90.0, 0.01)], RULES)
    assert checked == anchor.DefaultCheck(None, refused="the default student (trial 0) did not complete (failed)")
    assert anchor.default_trial([_trial(1, 90.0, 0.01)], RULES).refused == "the default student (trial 0) was not run"


def test_the_why_of_a_kept_default_names_the_constraints_it_missed_only_as_inconclusive() -> None:
    from stillroom.searching.search import _why

    checked = anchor.default_trial([_default_with(-0.03, 0.03)], RULES)
    default = checked.trial
    assert default is not None
    anchoring = {"rule": "r", "default_trial": 0, "default_inconclusive": list(checked.inconclusive)}
    alone = _why(default, [default], "rule", anchoring)
    assert alone.startswith("the default student: no other feasible trial") and "only as inconclusive" in alone
    assert "noninferior(roc_auc)" in alone
    tied = _why(default, [default, _trial(4, 90.0, 0.01)], "the rule", anchoring)
    assert tied.startswith("the default student, first by the rule") and "meets every constraint" not in tied
    other = _why(_trial(4, 90.0, 0.01), [default, _trial(4, 90.0, 0.01)], "the rule", anchoring)
    assert other.startswith("it meets every constraint") and "inconclusive" not in other
