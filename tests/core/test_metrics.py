"""Generic metrics against values computed by hand on tiny arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from stillroom import metrics as m
from stillroom.contract import metric_key


def _toy(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.3 * y + rng.normal(0.35, 0.2, n), 0, 1)
    return y, p


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_contains_point_and_is_deterministic_by_seed() -> None:
    y, p = _toy(300)
    point, low, high = m.bootstrap_ci(roc_auc_score, y, p, n_boot=100, seed=3)
    assert point == pytest.approx(roc_auc_score(y, p))
    assert low < point < high
    assert m.bootstrap_ci(roc_auc_score, y, p, n_boot=100, seed=3) == (point, low, high)
    assert m.bootstrap_ci(roc_auc_score, y, p, n_boot=100, seed=4) != (point, low, high)


def test_bootstrap_ci_narrows_with_more_data() -> None:
    def width(n: int) -> float:
        y, p = _toy(n)
        _, low, high = m.bootstrap_ci(roc_auc_score, y, p, n_boot=100)
        return high - low

    assert width(4000) < width(200) / 2


def test_bootstrap_skips_undefined_resamples() -> None:
    y = np.array([0, 0, 0, 0, 0, 0, 0, 1])
    p = np.linspace(0.1, 0.8, 8)
    values = m.bootstrap_distribution(roc_auc_score, y, {"x": p}, n_boot=200)["x"]
    assert np.isnan(values).any() and np.isfinite(values).any()  # one-class resamples are skipped
    point, low, high = m.bootstrap_ci(roc_auc_score, y, p, n_boot=200)
    assert point == 1.0 and (low, high) == pytest.approx((1.0, 1.0))


def test_bootstrap_all_undefined_gives_nan() -> None:
    point, low, high = m.bootstrap_ci(roc_auc_score, np.zeros(5), np.linspace(0, 1, 5), n_boot=20)
    assert math.isnan(point) and math.isnan(low) and math.isnan(high)


def test_bootstrap_many_uses_the_same_resamples_for_every_model() -> None:
    y, p = _toy(200)
    q = np.clip(p + 0.05, 0, 1)
    out = m.bootstrap_many(average_precision_score, y, {"a": p, "twin": p.copy(), "b": q}, n_boot=50, seed=7)
    assert out["a"] == out["twin"]
    assert out["a"] == m.bootstrap_ci(average_precision_score, y, p, n_boot=50, seed=7)
    assert out["b"] == m.bootstrap_ci(average_precision_score, y, q, n_boot=50, seed=7)


def test_bootstrap_passes_extra_arrays_resampled_with_rows() -> None:
    y, p = _toy(200)
    w = np.ones(len(y))

    def weighted_auc(yy: np.ndarray, pp: np.ndarray, ww: np.ndarray) -> float:
        return roc_auc_score(yy, pp, sample_weight=ww)

    assert m.bootstrap_ci(weighted_auc, y, p, w, n_boot=30) == pytest.approx(m.bootstrap_ci(roc_auc_score, y, p, n_boot=30))


@pytest.mark.parametrize("metric", [roc_auc_score, average_precision_score])
def test_ranking_metrics_from_row_counts_equal_sklearn_on_the_resampled_rows(metric: m.Metric) -> None:
    rng = np.random.default_rng(5)
    y = np.zeros(100, dtype=int)
    y[rng.choice(100, 3, replace=False)] = 1  # rare events: some resamples have no positive
    p = np.round(rng.random(100) + 0.4 * y, 1)  # coarse scores: many ties
    fast = m.bootstrap_distribution(metric, y, {"p": p}, n_boot=300, seed=2)["p"]
    by_rows = np.array([m.safe_metric(metric, y[i], p[i]) for i in m.resample_indices(len(y), 300, seed=2)])
    assert np.isnan(by_rows).any()
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(by_rows))
    np.testing.assert_allclose(fast, by_rows, rtol=0, atol=1e-12)


def test_ranking_metrics_from_row_counts_by_hand() -> None:
    from stillroom.metrics.ranked import counts_metric

    y, p = np.array([1, 0, 1, 0]), np.array([0.9, 0.9, 0.5, 0.1])
    counts = np.array([2, 1, 0, 1])  # rows (1, .9) twice, (0, .9), (0, .1)
    auc, ap = counts_metric(roc_auc_score, y, p), counts_metric(average_precision_score, y, p)
    assert auc is not None and ap is not None
    assert auc(counts) == pytest.approx(0.75)  # 2 positives x 2 negatives: 2 pairs won, 2 tied at 0.9
    assert ap(counts) == pytest.approx(2 / 3)  # one threshold holds both positives among 3 rows
    assert math.isnan(auc(np.array([0, 1, 0, 1]))) and math.isnan(ap(np.array([0, 1, 0, 1])))


def test_anything_but_plain_binary_ranking_goes_to_sklearn() -> None:
    from stillroom.metrics.ranked import counts_metric

    y, p = np.array([0, 1, 1]), np.array([0.2, 0.7, 0.9])
    assert counts_metric(roc_auc_score, y, p) is not None
    assert counts_metric(roc_auc_score, np.array([0, 1, 2]), p) is None  # not 0/1 labels
    assert counts_metric(roc_auc_score, y, np.array([0.2, np.nan, 0.9])) is None  # sklearn raises on NaN
    assert counts_metric(roc_auc_score, y, np.c_[p, p]) is None  # one score per row only
    assert counts_metric(lambda a, b: 0.0, y, p) is None  # any other metric


def test_bootstrap_difference_is_paired() -> None:
    y, p = _toy(300)
    assert m.bootstrap_difference(roc_auc_score, y, p, p, n_boot=50) == (0.0, 0.0, 0.0)
    noisy = np.clip(p + np.random.default_rng(0).normal(0, 0.3, len(p)), 0, 1)
    point, low, high = m.bootstrap_difference(roc_auc_score, y, p, noisy, n_boot=100)
    assert point == pytest.approx(roc_auc_score(y, p) - roc_auc_score(y, noisy))
    assert 0 < low < point < high


def test_the_gain_read_from_the_shared_resamples_equals_scoring_both_models_again() -> None:
    y, p = _toy(300)
    noisy = np.clip(p + np.random.default_rng(1).normal(0, 0.3, len(p)), 0, 1)
    scores = {"teacher": p, "student": noisy, "baseline": np.clip(noisy + 0.1, 0, 1)}
    intervals, gain = m.bootstrap_with_gain(roc_auc_score, y, scores, ("student", "baseline"), n_boot=80, seed=3)
    assert intervals == m.bootstrap_many(roc_auc_score, y, scores, n_boot=80, seed=3)
    assert gain == m.bootstrap_difference(roc_auc_score, y, noisy, scores["baseline"], n_boot=80, seed=3)
    # by hand: the paired difference on each resample of rows, its percentile interval
    diffs = np.array(
        [roc_auc_score(y[i], noisy[i]) - roc_auc_score(y[i], scores["baseline"][i]) for i in m.resample_indices(300, 80, seed=3)]
    )
    point = roc_auc_score(y, noisy) - roc_auc_score(y, scores["baseline"])
    assert gain == pytest.approx((point, *np.quantile(diffs, [0.025, 0.975])), abs=1e-12)
    assert m.bootstrap_with_gain(roc_auc_score, y, scores, None, n_boot=80, seed=3) == (intervals, None)


def test_resample_indices_are_vectorized_blocks_of_the_same_stream() -> None:
    blocks = list(m.resample_indices(10, 5, seed=0))
    assert len(blocks) == 5 and all(b.shape == (10,) and b.max() < 10 for b in blocks)
    again = list(m.resample_indices(10, 5, seed=0))
    assert all(np.array_equal(a, b) for a, b in zip(blocks, again, strict=True))


def test_misaligned_arrays_are_rejected() -> None:
    with pytest.raises(ValueError, match="rows"):
        m.bootstrap_ci(roc_auc_score, [0, 1, 0], [0.1, 0.2], n_boot=2)


# --------------------------------------------------------------------------- fidelity / calibration


def test_fidelity_by_hand() -> None:
    out = m.fidelity([0.2, 0.6, 0.7, 0.4], [0.3, 0.4, 0.8, 0.45], threshold=0.5)
    assert out["agreement"] == 0.75  # row 2 flips: 0.6 >= 0.5 but 0.4 < 0.5
    assert out["alert_overlap"] == 0.5  # the teacher alerts rows 2 and 3; the student only row 3
    assert out["spearman"] == pytest.approx(0.8)  # ranks 1342 vs 1243: 1 - 6*2/(4*15)
    assert out["mean_abs_gap"] == pytest.approx(0.1125)
    assert out["max_abs_gap"] == pytest.approx(0.2)


def test_fidelity_constant_side_has_nan_spearman() -> None:
    assert math.isnan(m.fidelity([0.5, 0.5], [0.1, 0.9])["spearman"])
    assert math.isnan(m.fidelity([0.1, 0.2], [0.1, 0.9])["alert_overlap"])  # the teacher raises no alert


def test_ece_and_brier_by_hand() -> None:
    y, p = [0, 1, 0, 1], [0.1, 0.2, 0.3, 0.9]
    # bin [0, .5): mean .2, positives 1/3, gap 2/15, weight 3/4; bin [.5, 1]: gap .1, weight 1/4
    out = m.calibration(y, p, n_bins=2)
    assert out["ece"] == pytest.approx(0.75 * 2 / 15 + 0.25 * 0.1)
    assert out["brier"] == pytest.approx((0.01 + 0.64 + 0.09 + 0.01) / 4)


def test_reliability_curve_keeps_empty_bins() -> None:
    curve = m.reliability_curve([0, 1, 1], [0.05, 0.95, 1.0], n_bins=4)
    assert list(curve.columns) == ["bin_lower", "bin_upper", "mean_predicted", "fraction_positive", "count"]
    assert curve["count"].tolist() == [1, 0, 0, 2]  # 1.0 falls in the last bin
    assert curve["bin_upper"].iloc[-1] == 1.0
    assert math.isnan(curve["mean_predicted"].iloc[1])
    assert curve["mean_predicted"].iloc[3] == pytest.approx(0.975)
    assert curve["fraction_positive"].iloc[3] == 1.0


# --------------------------------------------------------------------------- stability


def test_psi_identical_is_zero_and_shifted_is_large() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 5000)
    assert m.psi(base, base) == pytest.approx(0.0, abs=1e-12)
    assert m.psi(base, rng.uniform(0, 1, 5000)) < 0.02
    assert m.psi(base, rng.uniform(0.4, 1.4, 5000)) > 0.25


def test_psi_from_counts_by_hand() -> None:
    # shares .5/.5 -> .25/.75: (-.25)ln(.5) + (.25)ln(1.5) = .25 ln 3
    assert m.psi_from_counts([50, 50], [25, 75]) == pytest.approx(0.25 * math.log(3))


def test_psi_handles_ties_in_expected() -> None:
    expected = np.r_[np.zeros(80), np.linspace(0.5, 1, 20)]  # most quantile edges are 0
    assert m.psi(expected, expected) == pytest.approx(0.0, abs=1e-12)
    assert math.isfinite(m.psi(expected, np.ones(10)))
    assert m.psi(np.full(10, 0.3), np.full(10, 0.3)) == pytest.approx(0.0, abs=1e-12)


def test_histogram_and_psi_from_histogram() -> None:
    ref = m.histogram([0.05, 0.5, 0.95, 1.2, -0.1], n_bins=2)
    assert ref["edges"] == [0.0, 0.5, 1.0]
    assert ref["counts"] == [2, 3]  # out-of-range values are clipped in, 0.5 goes up
    rng = np.random.default_rng(0)
    train = rng.beta(2, 5, 10_000)
    stored = m.histogram(train)
    assert m.psi_from_histogram(stored["counts"], stored["edges"], train) == pytest.approx(0.0, abs=1e-12)
    assert m.psi_from_histogram(stored["counts"], stored["edges"], rng.beta(5, 2, 10_000)) > 0.25


# --------------------------------------------------------------------------- operating points


def test_threshold_for_alert_rate() -> None:
    scores = np.linspace(0.1, 1.0, 10)
    assert m.threshold_for_alert_rate(scores, 0.2) == pytest.approx(0.9)
    tied = np.array([1.0, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert m.threshold_for_alert_rate(tied, 0.2) == 1.0  # taking 0.9 would alert 3 > 2 rows
    too_tied = np.array([0.9, 0.9, 0.9, 0.1, 0.1])
    t = m.threshold_for_alert_rate(too_tied, 0.2)
    assert t > 0.9 and (too_tied >= t).sum() == 0


def test_threshold_at_fpr() -> None:
    negatives = 0.05 + 0.1 * np.arange(10)
    positives = np.array([0.99, 0.9, 0.5, 0.02])
    y = np.r_[np.zeros(10), np.ones(4)]
    s = np.r_[negatives, positives]
    assert m.threshold_at_fpr(y, s, 0.1) == pytest.approx(0.9)
    assert m.operating_point_at_fpr(y, s, 0.5) == pytest.approx((0.5, 0.75, 0.5))
    assert m.threshold_at_fpr(y, s, 0.0) == pytest.approx(0.99)


def test_classification_summary() -> None:
    out = m.classification_summary([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert out["roc_auc"] == pytest.approx(0.75)
    assert out["average_precision"] == pytest.approx(average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]))
    expected_ll = -np.mean(np.log([0.9, 0.6, 0.35, 0.8]))
    assert out["log_loss"] == pytest.approx(expected_ll)
    one_class = m.classification_summary([1, 1], [0.2, 0.9])
    assert math.isnan(one_class["roc_auc"]) and math.isfinite(one_class["log_loss"])


def test_metric_key() -> None:
    assert metric_key("recall@fpr 0.1%") == "recall_fpr 0.1_"


def test_fidelity_with_a_threshold_per_side() -> None:
    # teacher alerts at >= .5 (F T T F), student at >= .35 (F T T T): row 2 now agrees, row 4 flips
    out = m.fidelity([0.2, 0.6, 0.7, 0.4], [0.3, 0.4, 0.8, 0.45], threshold=0.5, student_threshold=0.35)
    assert out["agreement"] == 0.75
    assert out["alert_overlap"] == 1.0  # both teacher alerts (rows 2, 3) are student alerts too
