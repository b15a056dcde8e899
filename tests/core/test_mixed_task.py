"""The mixed task type: one model with regression and binary outputs (logD beside hERG).

Each kind of column must behave exactly as its single-kind task does: the targets of a
mixed panel's regression columns are those of a regression task on those columns, its
evaluation the regression evaluation of those columns, and likewise binary columns and
multilabel; the panel only adds the bookkeeping of which column is which.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.tree import DecisionTreeRegressor

from stillroom.api import get_plugin_manager
from stillroom.contract import hookimpl
from stillroom.contract.bundle import DataBundle, validate_bundle
from stillroom.contract.config import DistillConfig, EvaluationConfig
from stillroom.contract.context import EvaluationContext
from stillroom.contract.protocols import ModelDescription, NativeModel
from stillroom.contract.specs import ComplianceProfile, DatasetSpec, StudentSpec, TaskSpec, TeacherSpec
from stillroom.distillation.evaluation import evaluate_generic, evaluate_outputs
from stillroom.distillation.pipeline import check_outputs, fit_baseline, fit_student
from stillroom.errors import DataError, ModelLoadError
from stillroom.tasks import measures as taskmetrics
from stillroom.tasks.targets import (
    OUTPUT_TYPES,
    TASK_TYPES,
    MixedTargets,
    MultilabelTargets,
    RegressionTargets,
    SoftTargets,
    labels_only,
    make_targets,
    missing_labels,
)
from stillroom.tasks.types import TABLE_METRICS
from stillroom.testing import assert_compliance_bundle

# regression and binary columns interleaved, so every column index is translated somewhere
LABELS = ["logd", "bbb", "solubility", "herg", "ames"]
KINDS = ["regression", "binary", "regression", "binary", "binary"]
REG, BIN = [0, 2], [1, 3, 4]

# --------------------------------------------------------------------------- targets

HARD = np.array([[1.0, 1.0, np.nan], [np.nan, 0.0, 2.0]])
TEACHER = np.array([[2.0, 0.9, 3.0], [4.0, 0.2, 1.0]])
SMALL_KINDS = ("regression", "binary", "regression")


def test_the_task_type_and_output_types_are_declared() -> None:
    assert "mixed" in TASK_TYPES and OUTPUT_TYPES == ("regression", "binary")
    t = MixedTargets(HARD, TEACHER, 1.0, 0.5, list(SMALL_KINDS))  # a list is stored as a tuple
    assert t.task_type == "mixed" and t.output_types == SMALL_KINDS and t.n_outputs == 3
    np.testing.assert_array_equal(t.regression_columns, [0, 2])
    np.testing.assert_array_equal(t.binary_columns, [1])


def test_blended_by_hand() -> None:
    t = MixedTargets(HARD, TEACHER, 1.0, 0.5, SMALL_KINDS)
    # regression: 0.5 * teacher + 0.5 * y where measured, the teacher where not;
    # binary: 0.5 * p + 0.5 * y (0.95 = 0.5 * 0.9 + 0.5 * 1, 0.1 = 0.5 * 0.2 + 0.5 * 0)
    np.testing.assert_allclose(t.blended(), [[1.5, 0.95, 3.0], [4.0, 0.1, 1.5]])
    # the baseline has nothing but the labels, gaps included
    np.testing.assert_array_equal(labels_only("mixed", HARD, SMALL_KINDS).blended(), HARD)


def test_mixed_targets_refuse_bad_output_types_and_teacher_shape() -> None:
    with pytest.raises(ValueError, match=r"2 output type\(s\) for 3 output column"):
        MixedTargets(HARD, TEACHER, output_types=("regression", "binary"))
    with pytest.raises(ValueError, match=r"unknown output type\(s\) \['ordinal'\]"):
        MixedTargets(HARD, TEACHER, output_types=("regression", "ordinal", "binary"))
    with pytest.raises(ValueError, match="differ"):
        MixedTargets(HARD, TEACHER[:, :2], output_types=SMALL_KINDS)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        MixedTargets(HARD, TEACHER, temperature=0.0, output_types=SMALL_KINDS)
    with pytest.raises(ValueError, match="unknown output type 'multiclass'"):
        MixedTargets(HARD, TEACHER, output_types=SMALL_KINDS).part("multiclass")


@pytest.mark.parametrize("teacher", [TEACHER, None], ids=["distilled", "baseline"])
def test_parts_and_columns_are_the_single_kind_targets(teacher: np.ndarray | None) -> None:
    t = make_targets("mixed", HARD, teacher, 2.0, 0.25, SMALL_KINDS)
    reg_teacher, bin_teacher = (None, None) if teacher is None else (teacher[:, [0, 2]], teacher[:, [1]])
    regression = RegressionTargets(HARD[:, [0, 2]], reg_teacher, 2.0, 0.25)
    binary = MultilabelTargets(HARD[:, [1]], bin_teacher, 2.0, 0.25)

    reg_part, bin_part = t.part("regression"), t.part("binary")
    assert type(reg_part) is RegressionTargets and type(bin_part) is MultilabelTargets
    np.testing.assert_array_equal(reg_part.blended(), regression.blended())
    np.testing.assert_array_equal(bin_part.blended(), binary.blended())
    assert (reg_part.temperature, reg_part.alpha, bin_part.has_teacher) == (2.0, 0.25, teacher is not None)

    for j, k in ((0, 0), (2, 1)):  # mixed column j is regression column k
        rows, values = t.column(j)
        expected_rows, expected_values = regression.column(k)
        np.testing.assert_array_equal(rows, expected_rows)
        np.testing.assert_array_equal(values, expected_values)
        np.testing.assert_array_equal(t.rows(j), expected_rows)
    soft, expected = t.column(1), binary.column(0)
    assert isinstance(soft, SoftTargets) and (soft.temperature, soft.alpha) == (expected.temperature, expected.alpha)
    np.testing.assert_array_equal(soft.hard, expected.hard)
    np.testing.assert_array_equal(soft.blended(), expected.blended())
    np.testing.assert_array_equal(t.rows(1), binary.rows(0))


def test_baseline_columns_drop_rows_without_a_value() -> None:
    t = labels_only("mixed", HARD, SMALL_KINDS)
    rows, values = t.column(2)
    np.testing.assert_array_equal(rows, [1])
    np.testing.assert_allclose(values, [2.0])
    np.testing.assert_array_equal(t.rows(0), [0])
    assert len(t.column(1)) == 2  # both rows carry the binary label


def test_a_panel_of_one_kind_is_allowed() -> None:
    t = make_targets("mixed", HARD[:, [0, 2]], TEACHER[:, [0, 2]], alpha=0.5, output_types=("regression", "regression"))
    assert len(t.binary_columns) == 0 and t.part("binary").n_outputs == 0
    np.testing.assert_allclose(t.blended(), [[1.5, 3.0], [4.0, 1.5]])


def test_make_targets_and_labels_only_need_output_types_for_mixed_only() -> None:
    with pytest.raises(ValueError, match="a mixed task needs output_types"):
        make_targets("mixed", HARD, TEACHER)
    with pytest.raises(ValueError, match="a mixed task needs output_types"):
        labels_only("mixed", HARD)
    # other task types do not read it
    assert type(make_targets("regression", HARD, TEACHER, output_types=SMALL_KINDS)) is RegressionTargets
    assert type(labels_only("multilabel", np.array([[1.0, 0.0]]))) is MultilabelTargets
    baseline = labels_only("mixed", HARD, SMALL_KINDS)
    assert isinstance(baseline, MixedTargets) and not baseline.has_teacher
    pool = missing_labels("mixed", 4, 5)
    assert pool.shape == (4, 5) and np.isnan(pool).all()


# --------------------------------------------------------------------------- data


def _panel(n: int, seed: int) -> pd.DataFrame:
    """Features and a panel of two measured values and three yes/no assays, with gaps."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    frame["logd"] = X[:, 0] + 0.5 * X[:, 1] + rng.normal(0, 0.3, n)
    frame["solubility"] = -X[:, 2] + rng.normal(0, 0.5, n)
    for i, name in enumerate(("bbb", "herg", "ames")):
        frame[name] = (X[:, i + 3] + rng.normal(0, 0.7, n) > 0).astype(float)
    for name in ("solubility", "herg"):  # measured for most molecules only
        frame.loc[rng.random(n) < 0.2, name] = np.nan
    return frame


def _bundle(output_types: list[str] | None = KINDS, seed: int = 0) -> DataBundle:
    frame = _panel(1600, seed)
    parts = [frame.iloc[a:b].reset_index(drop=True) for a, b in ((0, 600), (600, 800), (800, 1100), (1100, 1600))]
    return DataBundle(
        parts[0],
        parts[1],
        parts[2],
        [f"x{i}" for i in range(6)],
        list(LABELS),
        unlabelled=parts[3].drop(columns=LABELS),
        source="toy",
        task_type="mixed",
        output_types=None if output_types is None else list(output_types),
    )


def test_bundle_layout_and_lineage() -> None:
    bundle = _bundle()
    validate_bundle(bundle)  # regression values far from 0/1 and NaN in both kinds are fine
    y = bundle.y(bundle.test)
    assert bundle.n_outputs == 5 and bundle.output_names == LABELS
    assert y.shape == (300, 5) and y.dtype == float
    assert np.isnan(y[:, [2, 3]]).any() and not np.isnan(y[:, [0, 1, 4]]).any()
    assert bundle.lineage()["output_types"] == KINDS
    assert "output_types" not in DataBundle(bundle.train, bundle.validation, bundle.test, ["x0"], "bbb").lineage()


@pytest.mark.parametrize(
    ("output_types", "message"),
    [
        (None, r"a mixed task needs output_types: one of regression or binary per label column \['logd'"),
        (KINDS[:4], r"output_types has 4 entries for 5 label column\(s\)"),
        (["regression", "binary", "regression", "binary", "count"], r"unknown output type\(s\) \['count'\]"),
        # a "panel" of one kind would be judged (and checked for compliance) as a panel of both
        (["regression"] * 5, r"every output of this mixed task is regression: .* use task type regression"),
        (["binary"] * 5, r"every output of this mixed task is binary: .* use task type multilabel"),
    ],
)
def test_bundle_refuses_missing_or_wrong_output_types(output_types: list[str] | None, message: str) -> None:
    with pytest.raises(DataError, match=message):
        validate_bundle(_bundle(output_types))


def test_bundle_checks_each_column_by_its_kind() -> None:
    bundle = _bundle()
    bundle.validation.loc[3, "herg"] = 2.0
    with pytest.raises(DataError, match=r"validation split: label column 'herg' must be 0/1, found \['0.0', '1.0', '2.0'\]"):
        validate_bundle(bundle)
    bundle = _bundle()
    bundle.test.loc[5, "solubility"] = np.inf
    with pytest.raises(DataError, match="test split: label column 'solubility' has inf value"):
        validate_bundle(bundle)
    # the same 0/1 columns declared as regression outputs are valid (values are not checked as 0/1)
    as_values = _bundle(["regression"] * 4 + ["binary"])
    as_values.train["bbb"] = as_values.train["bbb"] * 3.5
    validate_bundle(as_values)


def test_check_outputs_takes_an_n_by_k_panel() -> None:
    bundle = _bundle()
    assert check_outputs(np.zeros((7, 5)), bundle, "student", "test").shape == (7, 5)
    with pytest.raises(ModelLoadError, match=r"shape \(7, 3\); a mixed task with 5 output\(s\) needs \(7, 5\)"):
        check_outputs(np.zeros((7, 3)), bundle, "teacher", "test")
    one = _bundle()
    one.label, one.output_types = ["logd"], ["regression"]
    assert check_outputs(np.arange(3.0), one, "student", "test").shape == (3, 1)


class RecordingStudent:
    """Keeps the targets it was fitted on."""

    def __init__(self) -> None:
        self.targets: list[Any] = []

    def fit(self, X: Any, targets: Any, X_valid: Any = None, targets_valid: Any = None) -> RecordingStudent:
        self.targets += [targets, targets_valid]
        return self


def test_the_pipeline_hands_students_mixed_targets() -> None:
    bundle = _bundle()
    y = bundle.y(bundle.train)
    transfer = SimpleNamespace(X=bundle.X(bundle.train), hard=y)
    outputs = SimpleNamespace(transfer_teacher=np.nan_to_num(y), valid={"teacher": np.nan_to_num(bundle.y(bundle.validation))})
    cfg = SimpleNamespace(recipe=SimpleNamespace(temperature=2.0, alpha=0.4), student=SimpleNamespace(name="recorder"))
    student, baseline = RecordingStudent(), RecordingStudent()
    fit_student(cfg, bundle, transfer, outputs, student)  # type: ignore[arg-type]
    fit_baseline(cfg, bundle, baseline)  # type: ignore[arg-type]
    for targets in student.targets + baseline.targets:
        assert isinstance(targets, MixedTargets) and targets.output_types == tuple(KINDS)
    assert [t.has_teacher for t in student.targets + baseline.targets] == [True, True, False, False]
    assert (student.targets[0].temperature, student.targets[0].alpha) == (2.0, 0.4)


# --------------------------------------------------------------------------- evaluation


def _predictions(y: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Teacher close to the truth, student close to the teacher, baseline further off; binary
    columns as probabilities."""
    rng = np.random.default_rng(seed)
    truth = np.nan_to_num(y, nan=0.5)
    out = {}
    for role, noise in (("teacher", 0.3), ("student", 0.5), ("baseline", 0.9)):
        values = truth + rng.normal(0, noise, truth.shape)
        values[:, BIN] = 1 / (1 + np.exp(-4 * (values[:, BIN] - 0.5)))
        out[role] = values
    return out


def _context(bundle: DataBundle, y: np.ndarray, predictions: dict[str, np.ndarray], artifact_dir: Path | None = None) -> Any:
    task = TaskSpec("toy-mixed", "toy", DistillConfig, Path("toy.yaml"), "core", task_type=bundle.task_type)
    config = SimpleNamespace(evaluation=EvaluationConfig(bootstrap=60, ci_level=0.9))
    return EvaluationContext(task, bundle, bundle.test, y, predictions, {}, config, seed=3, artifact_dir=artifact_dir)


def _single_kind(bundle: DataBundle, task_type: str, columns: list[int]) -> DataBundle:
    return DataBundle(
        bundle.train, bundle.validation, bundle.test, bundle.features, [LABELS[j] for j in columns], task_type=task_type
    )


def test_evaluation_is_regression_plus_multilabel_on_their_columns(tmp_path: Path) -> None:
    bundle = _bundle()
    y = bundle.y(bundle.test)
    predictions = _predictions(y, seed=1)
    mixed = evaluate_generic(_context(bundle, y, predictions, tmp_path))
    alone = {}
    for kind, columns in (("regression", REG), ("multilabel", BIN)):
        single = _single_kind(bundle, kind, columns)
        alone[kind] = evaluate_outputs(_context(single, y[:, columns], {r: p[:, columns] for r, p in predictions.items()}))

    m = mixed.metrics
    assert all(np.isfinite(v) for v in m.values())
    # exactly the two single-kind evaluations, metrics, per-output values and intervals alike
    assert m == alone["regression"].metrics | alone["multilabel"].metrics
    assert mixed.intervals == alone["regression"].intervals | alone["multilabel"].intervals
    assert {"student.rmse.logd", "student.r2.solubility", "teacher.roc_auc.herg", "baseline.average_precision.ames"} <= set(m)
    assert "student.rmse.bbb" not in m and "student.roc_auc.logd" not in m

    # the macro RMSE and R2 by hand over the regression columns, NaN rows skipped
    student = predictions["student"]
    per_target = []
    for j in REG:
        keep = ~np.isnan(y[:, j])
        err = y[keep, j] - student[keep, j]
        per_target.append((np.sqrt(np.mean(err**2)), 1 - np.sum(err**2) / np.sum((y[keep, j] - y[keep, j].mean()) ** 2)))
    assert m["student.rmse"] == pytest.approx(np.mean([r for r, _ in per_target]))
    assert m["student.r2"] == pytest.approx(np.mean([r2 for _, r2 in per_target]))
    assert m["retention.rmse"] == pytest.approx(m["teacher.rmse"] / m["student.rmse"])
    assert m["gain.roc_auc"] == pytest.approx(m["student.roc_auc"] - m["baseline.roc_auc"])
    assert 0.7 < m["teacher.roc_auc"] <= 1.0 and m["student.roc_auc"] > m["baseline.roc_auc"]
    low, high = mixed.intervals["gain.rmse"]
    assert low <= m["gain.rmse"] <= high

    fidelity = {k.split(".", 1)[1] for k in m if k.startswith("fidelity.")}
    assert fidelity == {"r2", "spearman", "mae", "roc_auc", "agreement", "mean_abs_gap"}
    assert mixed.artifacts == ["plots/fidelity_scatter.png"] and (tmp_path / "plots" / "fidelity_scatter.png").exists()


def test_every_output_of_a_panel_is_found_by_its_name_even_alone_in_its_kind() -> None:
    """One value endpoint beside two yes/no ones: its RMSE is the panel's ``student.rmse`` and is
    also kept as ``student.rmse.logd``, as every endpoint of a panel is."""
    columns = [0, 1, 3]  # logd (a value), bbb and herg (yes/no)
    full = _bundle()
    bundle = _single_kind(full, "mixed", columns)
    bundle.output_types = [KINDS[j] for j in columns]
    y = bundle.y(bundle.test)
    predictions = {r: p[:, columns] for r, p in _predictions(full.y(full.test), seed=1).items()}
    m = evaluate_outputs(_context(bundle, y, predictions)).metrics
    for role in ("teacher", "student", "baseline"):
        assert m[f"{role}.rmse.logd"] == pytest.approx(m[f"{role}.rmse"])
        assert m[f"{role}.r2.logd"] == pytest.approx(m[f"{role}.r2"])
        assert {f"{role}.roc_auc.bbb", f"{role}.roc_auc.herg"} <= set(m)
    assert "student.rmse.bbb" not in m


def test_a_binary_only_panel_is_evaluated_as_multilabel(tmp_path: Path) -> None:
    bundle = _single_kind(_bundle(), "mixed", BIN)
    bundle.output_types = ["binary"] * 3
    y = bundle.y(bundle.test)
    predictions = {r: p[:, BIN] for r, p in _predictions(_bundle().y(bundle.test), seed=1).items()}
    mixed = evaluate_outputs(_context(bundle, y, predictions, tmp_path))
    multilabel = evaluate_outputs(_context(_single_kind(bundle, "multilabel", BIN), y, predictions))
    assert mixed.metrics == multilabel.metrics and "student.rmse" not in mixed.metrics
    assert mixed.artifacts == [] and not any(tmp_path.iterdir())  # no regression output to plot


def test_fidelity_of_a_mixed_panel() -> None:
    teacher = np.array([[1.0, 0.9, 2.0], [2.0, 0.2, 3.0], [3.0, 0.7, 5.0], [4.0, 0.4, 4.0]])
    student = teacher + np.array([[0.5, -0.1, 0.5], [0.5, 0.1, 0.5], [0.5, -0.3, 0.5], [0.5, 0.2, 0.5]])
    fid = taskmetrics.fidelity("mixed", teacher, student, SMALL_KINDS)
    assert set(fid) == {"r2", "spearman", "mae", "roc_auc", "agreement", "mean_abs_gap"}
    assert fid["mae"] == pytest.approx(0.5) and fid["spearman"] == pytest.approx(1.0)
    # binary column: calls 1, 0, 1, 0 against 0.8, 0.3, 0.4, 0.6 -> 3 of 4 pairs ranked right, 2 calls of 4 equal
    assert fid["roc_auc"] == pytest.approx(0.75) and fid["agreement"] == pytest.approx(0.5)
    assert fid["mean_abs_gap"] == pytest.approx(np.mean([0.1, 0.1, 0.3, 0.2]))
    with pytest.raises(ValueError, match="a mixed task needs output_types"):
        taskmetrics.fidelity("mixed", teacher, student)


@pytest.mark.parametrize("columns", [[0, 1, 2, 3, 4], [0, 1, 3]])
def test_the_card_names_the_outputs_each_metric_covers(columns: list[int]) -> None:
    """An unsuffixed ``student.rmse`` on a panel is the macro mean over the value outputs, or, with
    one value output, that output's own RMSE: the card says which, and lists every output's
    metrics one by one."""
    from stillroom.audit.modelcard import _covered_outputs, _per_output_table, render_markdown

    full = _bundle()
    names, kinds = [LABELS[j] for j in columns], [KINDS[j] for j in columns]
    bundle = DataBundle(full.train, full.validation, full.test, full.features, names, task_type="mixed", output_types=kinds)
    y_all = full.y(full.test)
    predictions = {r: p[:, columns] for r, p in _predictions(y_all, seed=2).items()}
    result = evaluate_generic(_context(bundle, y_all[:, columns], predictions))
    d = SimpleNamespace(bundle=bundle, result=result)
    values, binary = (
        [n for n, k in zip(names, kinds, strict=True) if k == "regression"],
        [n for n in names if n in ("bbb", "herg", "ames")],
    )
    covered = _covered_outputs(d)["outputs covered"]
    if len(values) > 1:
        assert covered["rmse, mae, r2, spearman"] == "macro mean over logd, solubility"
    else:
        assert covered["rmse, mae, r2, spearman"] == "computed on logd"
    assert covered["roc_auc, average_precision"] == f"macro mean over {', '.join(binary)}"

    rows = _per_output_table(d, ["teacher", "student", "baseline"])
    assert [(r["output"], r["metric"]) for r in rows] == [(n, m) for n in values for m in ("rmse", "mae", "r2", "spearman")] + [
        (n, m) for n in binary for m in ("roc_auc", "average_precision")
    ]
    logd = next(r for r in rows if r["output"] == "logd" and r["metric"] == "rmse")
    keep = ~np.isnan(y_all[:, 0])
    by_hand = float(np.sqrt(np.mean((y_all[keep, 0] - predictions["student"][keep, 0]) ** 2)))
    assert float(logd["student"]) == pytest.approx(by_hand, abs=1e-4)
    herg = next(r for r in rows if r["output"] == "herg" and r["metric"] == "roc_auc")
    assert float(herg["baseline"]) == pytest.approx(result.metrics["baseline.roc_auc.herg"], abs=1e-4)
    assert "| herg | roc_auc |" in render_markdown({"quantitative_analyses": {"per output": {"table": rows}}})


def test_table_metrics_and_compliance_profile() -> None:
    assert TABLE_METRICS["mixed"] == ("rmse", "mae", "r2", "spearman", "roc_auc", "average_precision")
    profile = get_plugin_manager().registry.get("compliance profile", "core.mixed")
    registry = get_plugin_manager().registry
    for kind in ("regression", "multilabel"):
        assert set(registry.get("compliance profile", f"core.{kind}").metrics) <= set(profile.metrics)
    assert {"student.rmse", "gain.roc_auc", "fidelity.r2", "fidelity.agreement"} <= set(profile.metrics)
    assert profile.artifacts == ("plots/fidelity_scatter.png",)


# --------------------------------------------------------------------------- a whole run


class PanelTeacher:
    """A random forest on the measured rows: values for regression outputs, clipped to [0, 1]
    (probabilities) for binary ones."""

    def __init__(self, bundle: DataBundle, seed: int) -> None:
        y = bundle.y(bundle.train)
        rows = ~np.isnan(y).any(axis=1)
        self.model = RandomForestRegressor(100, min_samples_leaf=5, random_state=seed, n_jobs=1)
        self.model.fit(bundle.X(bundle.train)[rows], y[rows])

    def predict(self, X: Any) -> np.ndarray:
        out = self.model.predict(X)
        out[:, BIN] = np.clip(out[:, BIN], 0.01, 0.99)
        return out

    def describe(self) -> ModelDescription:
        return ModelDescription("panel forest", "random forest", 100, 1_000_000, details={"identity": None})

    def native_model(self) -> NativeModel | None:
        return None


class PanelStudent:
    """A multi-output tree fit to the blended targets where every output has one."""

    def __init__(self, params: dict[str, Any], seed: int) -> None:
        self.model = DecisionTreeRegressor(max_depth=5, random_state=seed)

    def fit(self, X: Any, targets: MixedTargets, X_valid: Any = None, targets_valid: Any = None) -> PanelStudent:
        y = targets.blended()
        rows = ~np.isnan(y).any(axis=1)
        self.model.fit(X[rows], y[rows])
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self.model.predict(X)

    def describe(self) -> ModelDescription:
        return ModelDescription("panel tree", "decision tree", int(self.model.tree_.node_count), 10_000)

    def native_model(self) -> NativeModel:
        return NativeModel("sklearn", self.model)


class PanelVertical:
    def __init__(self, config: Path) -> None:
        self.config = config

    @hookimpl
    def stillroom_tasks(self) -> Iterable[TaskSpec]:
        yield TaskSpec("toy-panel", "toy ADMET panel", DistillConfig, self.config, "core", task_type="mixed")

    @hookimpl
    def stillroom_datasets(self) -> Iterable[DatasetSpec]:
        yield DatasetSpec("toy.panel", "toy-panel", lambda cfg, seed: _bundle(seed=seed))

    @hookimpl
    def stillroom_teachers(self) -> Iterable[TeacherSpec]:
        yield TeacherSpec("toy.panel-forest", "toy-panel", lambda params, bundle, seed: PanelTeacher(bundle, seed))

    @hookimpl
    def stillroom_students(self) -> Iterable[StudentSpec]:
        yield StudentSpec("toy.panel-tree", "toy-panel", PanelStudent)

    @hookimpl
    def stillroom_compliance_profiles(self) -> Iterable[ComplianceProfile]:
        return ()


CONFIG = """
task: toy-panel
run: {experiment: toy-panel, registered_model: toy-panel-student, seed: 0}
data: {dataset: toy.panel}
teacher: {name: toy.panel-forest}
student: {name: toy.panel-tree}
recipe: {alpha: 0.5}
evaluation: {bootstrap: 30, efficiency_rows: 300, latency_repeats: 3, ci_level: 0.9}
gate: {rules: ["fidelity.r2 >= 0.3", "fidelity.roc_auc >= 0.6"]}
"""


@pytest.mark.slow
def test_a_mixed_run_is_audited(tmp_path: Path, tracking_store: str, register_plugin: Any) -> None:
    from stillroom.api import run_distillation

    config = tmp_path / "panel.yaml"
    config.write_text(CONFIG)
    register_plugin(PanelVertical(config), "toy-panel")
    summary = run_distillation("toy-panel", config)
    m = summary["metrics"]
    assert summary["task_type"] == "mixed" and summary["gate"] == "passed"
    assert summary["lineage"]["output_types"] == KINDS
    assert m["student.rmse"] > 0 and 0.5 < m["student.roc_auc"] <= 1.0 and "student.rmse.logd" in m
    assert_compliance_bundle(summary["run_id"], "core")
    import mlflow

    card = mlflow.artifacts.load_text(f"runs:/{summary['run_id']}/model_card.md")
    assert "**rmse, mae, r2, spearman**: macro mean over logd, solubility" in card
    assert "**per output**" in card and "| ames | average_precision |" in card
    # the card labels intervals with the level they were computed at (evaluation.ci_level), not a fixed 95%
    assert "90% percentile bootstrap, 30 resamples" in card and "| metric | value | 90% interval |" in card
    assert "95%" not in card
