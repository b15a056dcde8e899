"""The console and the report show retention and gain for every metric that has them, each gain
with its paired interval and only the verdict that interval supports."""

from __future__ import annotations

from stillroom.audit.report import retention_gain_table
from stillroom.audit.summary import retention_and_gain

METRICS = {
    "teacher.roc_auc": 0.90,
    "student.roc_auc": 0.86,
    "baseline.roc_auc": 0.90,
    "retention.roc_auc": 0.9556,
    "gain.roc_auc": -0.0427,
    "retention.average_precision": 0.974,
    "gain.average_precision": -0.0101,
    "retention.rmse": 1.05,
    "gain.rmse": 0.02,
}
INTERVALS = {"gain.roc_auc": (-0.0897, -0.0070), "gain.average_precision": (-0.0395, 0.0334), "gain.rmse": (0.01, 0.03)}


def test_every_metric_with_its_paired_interval_and_verdict_on_the_console() -> None:
    lines = retention_and_gain(METRICS, INTERVALS)
    assert lines == [
        "average_precision: retention 0.9740, gain -0.0101 [-0.0395, +0.0334] (no difference shown)",
        "rmse: retention 1.0500, gain +0.0200 [+0.0100, +0.0300] (better than the baseline)",
        "roc_auc: retention 0.9556, gain -0.0427 [-0.0897, -0.0070] (worse than the baseline)",
    ]


def test_the_report_table_has_a_row_per_metric_from_the_logged_bounds() -> None:
    logged = dict(METRICS)
    for key, (low, high) in INTERVALS.items():
        logged[f"{key}.ci_low"], logged[f"{key}.ci_high"] = low, high
    rows = {row["metric"]: row for row in retention_gain_table(logged)}
    assert set(rows) == {"average_precision", "rmse", "roc_auc"}
    assert rows["roc_auc"]["verdict"] == "worse than the baseline" and rows["roc_auc"]["student"] == 0.86
    assert rows["roc_auc"]["interval"] == "[-0.0897, -0.0070]"
    assert rows["average_precision"]["verdict"] == "no difference shown" and rows["average_precision"]["teacher"] is None
