"""Split-conformal uncertainty: the finite-sample quantile, coverage and width against the analytic
values on synthetic data with known noise, prediction sets, and the calibration a student ships."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stillroom.errors import ConfigError
from stillroom.tasks.targets import labels_only, make_targets
from stillroom_molecules import conformal, embedded
from stillroom_molecules.score_columns import SCORING_COLUMNS
from stillroom_molecules.scorer import Scorer
from stillroom_molecules.student import LightGBMStudent, MLPStudent


def test_the_quantile_is_the_finite_sample_rank() -> None:
    scores = np.arange(1.0, 10.0)  # 9 scores: rank ceil(10 * 0.9) = 9, the largest
    assert conformal.conformal_quantile(scores, 0.9) == 9.0
    assert conformal.conformal_quantile(np.arange(1.0, 20.0), 0.9) == 18.0  # ceil(20 * 0.9) = 18
    assert conformal.conformal_quantile(np.arange(1.0, 6.0), 0.9) == math.inf  # 5 scores cannot reach 90%
    assert conformal.conformal_quantile(np.array([1.0, np.nan, 2.0, 3.0]), 0.5) == 2.0  # NaN is no score


def test_too_few_calibration_molecules_ship_a_finite_quantile_without_the_guarantee() -> None:
    """A scoring job refuses non-finite outputs: a model never ships an infinite bound."""
    assert conformal.shippable_quantile("regression", np.arange(1.0, 6.0), 0.9) == (5.0, False)
    assert conformal.shippable_quantile("regression", np.arange(1.0, 10.0), 0.9) == (9.0, True)
    assert conformal.shippable_quantile("binary", np.array([]), 0.9) == (1.0, False)  # every class
    q, guaranteed = conformal.shippable_quantile("regression", np.array([]), 0.9)
    assert np.isfinite(q) and np.isfinite(-q) and not guaranteed
    calibration = conformal.calibrate(("regression", "binary"), np.array([[1.0, np.nan]] * 3), np.zeros((3, 2)), 0.9)
    assert calibration["guaranteed"] == [False, False] and calibration["n_calibration"] == [3, 0]


def test_regression_coverage_and_width_match_the_known_noise() -> None:
    """y = f(x) + N(0, sigma^2) and a model that knows f: the 90% interval is f(x) +- 1.645 sigma."""
    rng = np.random.default_rng(0)
    sigma = 0.7
    x = rng.uniform(-3, 3, 42_000)
    f = np.sin(x) * 2 + x
    y = f + rng.normal(0, sigma, len(x))
    calibration = conformal.calibrate(("regression",), y[:2000, None], f[:2000, None], 0.9)
    q = calibration["quantiles"][0]
    measured = conformal.coverage_and_width("regression", y[2000:], f[2000:], q)
    assert abs(measured["coverage"] - 0.9) < 0.015
    analytic = 2 * 1.6449 * sigma
    assert abs(measured["width"] - analytic) / analytic < 0.05
    assert calibration["n_calibration"] == [2000]


def test_regression_coverage_holds_for_a_misfit_model_by_widening() -> None:
    """The guarantee does not need a good model: a biased one gets wider intervals, same coverage."""
    rng = np.random.default_rng(1)
    x = rng.uniform(-3, 3, 22_000)
    y = x + rng.normal(0, 0.5, len(x))
    biased = x + 0.6
    q = conformal.calibrate(("regression",), y[:2000, None], biased[:2000, None], 0.8)["quantiles"][0]
    measured = conformal.coverage_and_width("regression", y[2000:], biased[2000:], q)
    assert abs(measured["coverage"] - 0.8) < 0.02
    assert measured["width"] > 2 * 1.2816 * 0.5 * 1.3


def test_binary_prediction_sets_cover_at_the_level() -> None:
    rng = np.random.default_rng(2)
    p = rng.beta(0.6, 0.6, 30_000)  # confident and unsure molecules
    y = (rng.uniform(size=len(p)) < p).astype(float)
    q = conformal.calibrate(("binary",), y[:3000, None], p[:3000, None], 0.9)["quantiles"][0]
    measured = conformal.coverage_and_width("binary", y[3000:], p[3000:], q)
    assert abs(measured["coverage"] - 0.9) < 0.015
    assert 1.0 <= measured["width"] <= 2.0 and 0 < measured["singleton"] < 1
    assert conformal.binary_set_texts(np.array([0.02, 0.5, 0.97]), 0.6) == ["{0}", "{0,1}", "{1}"]
    assert conformal.binary_set_texts(np.array([0.5]), 0.2) == ["{}"]


def test_multiclass_sets() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, (20_000, 3))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p], dtype=float)
    q = conformal.calibrate(("multiclass",) * 3, y[:2000], p[:2000], 0.9)["quantiles"][0]
    measured = conformal.coverage_and_width("multiclass", y[2000:], p[2000:], q)
    assert abs(measured["coverage"] - 0.9) < 0.015 and 1 <= measured["width"] <= 3


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="conformal.level must be in"):
        conformal.ConformalSettings.from_params({"level": 1.2})
    with pytest.raises(ConfigError, match="unknown config field 'student.params.conformal.alpha'"):
        LightGBMStudent({"conformal": {"alpha": 0.1}}, 0)


def test_calibration_rows_are_seeded_and_held_out() -> None:
    settings = conformal.ConformalSettings(calibration_fraction=0.5)
    first, again = conformal.calibration_rows(101, settings, 0), conformal.calibration_rows(101, settings, 0)
    assert (first == again).all() and first.sum() == 50
    assert not conformal.calibration_rows(101, conformal.ConformalSettings(enabled=False), 0).any()


@pytest.fixture(scope="module")
def solubility() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    train, test = embedded.solubility()
    frame = train.frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    return frame.iloc[:700], frame.iloc[700:], test.frame


def test_a_student_ships_its_calibration_and_scores_intervals(solubility, tmp_path: Path) -> None:
    fit, valid, test = solubility
    student = LightGBMStudent({"n_estimators": 200}, seed=0).fit(
        fit[["smiles"]],
        labels_only("regression", fit[["SOL"]].to_numpy()),
        valid[["smiles"]],
        labels_only("regression", valid[["SOL"]].to_numpy()),
    )
    calibration = student.scorer.conformal
    assert calibration["level"] == 0.9 and calibration["n_calibration"] == [round(0.5 * len(valid))]
    q = calibration["quantiles"][0]
    assert 0.3 < q < 3.0  # logS residuals of a fingerprint model
    saved = Scorer.load(student.scorer.save(tmp_path / "m"))
    assert saved.conformal == calibration
    frame = saved.frame(test["smiles"].tolist() + ["not a smiles"])
    assert list(frame.columns) == ["score", *SCORING_COLUMNS, "lower", "upper"]  # annotations after the flag
    assert np.allclose((frame["upper"] - frame["score"])[:-1], q)
    assert np.allclose((frame["score"] - frame["lower"])[:-1], q)
    assert frame.iloc[-1][["score", "lower", "upper"]].isna().all()
    covered = ((test["SOL"] >= frame["lower"][:-1]) & (test["SOL"] <= frame["upper"][:-1])).mean()
    assert covered > 0.75  # the embedded test set is another source than training: near, not at, 0.9


def test_binary_and_multi_output_students_write_sets_per_output(solubility) -> None:
    fit, valid, _test = solubility
    y = np.column_stack([(fit["SOL"] > -3).astype(float), fit["SOL"]])
    yv = np.column_stack([(valid["SOL"] > -3).astype(float), valid["SOL"]])
    binary = LightGBMStudent({"n_estimators": 60}, seed=0).fit(
        fit[["smiles"]], labels_only("binary", y[:, 0]), valid[["smiles"]], labels_only("binary", yv[:, 0])
    )
    frame = binary.scorer.frame(["CCO", "c1ccccc1", "(("])
    assert list(frame.columns) == ["score", *SCORING_COLUMNS, "set"]
    assert set(frame["set"][:2]) <= {"{0}", "{1}", "{0,1}", "{}"} and frame["set"].iloc[2] == ""
    mixed_targets = labels_only("mixed", y, ["binary", "regression"])
    mixed_valid = labels_only("mixed", yv, ["binary", "regression"])
    mixed = MLPStudent({"hidden": [32], "epochs": 5}, seed=0)
    mixed.name_outputs(["soluble", "logS"])
    mixed.fit(fit[["smiles"]], mixed_targets, valid[["smiles"]], mixed_valid)
    columns = list(mixed.scorer.frame(["CCO"]).columns)
    assert columns == ["soluble", "logS", *SCORING_COLUMNS, "soluble.set", "logS.lower", "logS.upper"]


def test_without_labels_the_intervals_cover_the_teachers_values(solubility) -> None:
    """``data.reference: teacher``: the calibration reference is the teacher's outputs."""
    fit, valid, _ = solubility
    teacher = fit[["SOL"]].to_numpy() * 0.5
    teacher_valid = valid[["SOL"]].to_numpy() * 0.5
    nan = np.full_like(teacher, np.nan)
    student = LightGBMStudent({"n_estimators": 100}, seed=0).fit(
        fit[["smiles"]],
        make_targets("regression", nan, teacher, 1.0, 0.5),
        valid[["smiles"]],
        make_targets("regression", np.full_like(teacher_valid, np.nan), teacher_valid, 1.0, 0.5),
    )
    q = student.scorer.conformal["quantiles"][0]
    assert np.isfinite(q) and student.scorer.conformal["n_calibration"] == [round(0.5 * len(valid))]


def test_a_teacher_loaded_from_a_frame_model_leaves_the_uncertainty_columns_out() -> None:
    """The core's teacher loader on a pyfunc's frame: the outputs before the validity flag, not
    the bounds or the set after it."""
    from stillroom.tracking.loading import _pyfunc_predict

    class FrameModel:
        def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
            n = len(frame)
            outputs = {"logS": np.arange(n, dtype=float), "soluble": np.full(n, 0.7), "smiles_valid": np.ones(n, dtype=bool)}
            return pd.DataFrame(outputs | {"logS.lower": np.zeros(n), "logS.upper": np.ones(n), "soluble.set": ["{1}"] * n})

    out = _pyfunc_predict(FrameModel())(pd.DataFrame({"smiles": ["C", "CC", "CCC"]}))
    assert out.shape == (3, 2) and np.allclose(out[:, 0], [0, 1, 2]) and np.allclose(out[:, 1], 0.7)
