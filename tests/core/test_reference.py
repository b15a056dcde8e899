"""A run judged against its teacher's outputs (no labels): calls, checks, what is judged and
what compliance can ask of it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from stillroom.contract.bundle import DataBundle, validate_bundle
from stillroom.contract.config import EvaluationConfig
from stillroom.contract.context import EvaluationContext
from stillroom.distillation.evaluation import evaluate_generic
from stillroom.distillation.reference import with_teacher_reference
from stillroom.errors import ConfigError, DataError
from stillroom.tasks.judging import judged_roles, required_under, scored_roles, teacher_calls


def _bundle(task_type: str, labels: list[str], n: int = 40, output_types: list[str] | None = None) -> DataBundle:
    rng = np.random.default_rng(0)

    def frame(rows: int) -> pd.DataFrame:
        return pd.DataFrame({"x": rng.normal(size=rows)} | {c: np.nan for c in labels})

    return DataBundle(
        frame(n), frame(n), frame(n), ["x"], labels[0] if len(labels) == 1 else labels,
        task_type=task_type, output_types=output_types, reference="teacher",
    )  # fmt: skip


def test_teacher_calls_keep_values_and_call_probabilities_at_one_half() -> None:
    assert teacher_calls("binary", None, np.array([0.2, 0.5, 0.9])).tolist() == [0, 1, 1]
    np.testing.assert_array_equal(teacher_calls("regression", None, np.array([[1.5], [-2.0]])), [[1.5], [-2.0]])
    np.testing.assert_array_equal(teacher_calls("multilabel", None, np.array([[0.4, 0.6]])), [[0.0, 1.0]])
    # a mixed panel: the value column as it is, the probability column called
    panel = teacher_calls("mixed", ["regression", "binary"], np.array([[0.3, 0.7], [2.5, 0.1]]))
    np.testing.assert_array_equal(panel, [[0.3, 1.0], [2.5, 0.0]])


def test_a_bundle_without_labels_passes_only_with_a_teacher_reference() -> None:
    bundle = _bundle("mixed", ["logd", "herg"], output_types=["regression", "binary"])
    validate_bundle(bundle)  # no label anywhere: fine, the teacher will be the reference
    with pytest.raises(DataError, match="label column 'herg' has 40 missing value"):  # the same data stated as labelled
        validate_bundle(DataBundle(**{**vars(_bundle("binary", ["herg"])), "reference": "labels"}))
    with pytest.raises(ConfigError, match="not multiclass"):
        validate_bundle(_bundle("multiclass", ["cls"]))
    with pytest.raises(ConfigError, match="unknown reference 'gold'"):
        validate_bundle(DataBundle(**{**vars(bundle), "reference": "gold"}))


def test_held_out_labels_become_the_teacher_calls_and_train_labels_stay_missing() -> None:
    bundle = _bundle("mixed", ["logd", "herg"], n=4, output_types=["regression", "binary"])
    valid = np.array([[1.0, 0.9], [2.0, 0.1], [3.0, 0.6], [4.0, 0.2]])
    test = valid[::-1].copy()
    out = with_teacher_reference(bundle, valid, test)
    np.testing.assert_array_equal(out.y(out.validation), [[1.0, 1.0], [2.0, 0.0], [3.0, 1.0], [4.0, 0.0]])
    np.testing.assert_array_equal(out.y(out.test)[:, 1], [0.0, 1.0, 0.0, 1.0])
    assert np.isnan(out.y(out.train)).all() and np.isnan(bundle.y(bundle.validation)).all()  # the input is not changed


def test_a_teacher_calling_every_held_out_row_one_way_is_a_data_error() -> None:
    bundle = _bundle("binary", ["herg"], n=5)
    with pytest.raises(DataError, match="the teacher calls every test row 0 for 'herg'"):
        with_teacher_reference(bundle, np.linspace(0.1, 0.9, 5), np.full(5, 0.2))


def test_what_is_judged_and_what_compliance_can_ask() -> None:
    assert judged_roles("labels", ["teacher", "student", "baseline"]) == ["teacher", "student", "baseline"]
    assert judged_roles("teacher", ["teacher", "student"]) == ["student"]
    asked = ["teacher.rmse", "student.rmse", "baseline.rmse", "gain.rmse", "retention.rmse", "fidelity.r2"]
    asked += ["efficiency.teacher.rows_per_second", "efficiency.baseline.rows_per_second", "baseline_fidelity.r2"]
    assert required_under("labels", asked) == asked
    assert required_under("teacher", asked) == ["student.rmse", "fidelity.r2", "efficiency.teacher.rows_per_second"]
    assert scored_roles(["student.rmse", "fidelity.r2", "efficiency.teacher.size"], ["teacher", "student", "baseline"]) == [
        "student"
    ]


def test_a_binary_evaluation_judges_the_student_against_the_teacher_calls(tmp_path: Path) -> None:
    """The generic binary evaluation on a teacher-referenced bundle: the student's ROC-AUC is
    its AUC against the teacher's calls; nothing is computed for the teacher against itself."""
    rng = np.random.default_rng(1)
    teacher_valid, teacher_test = rng.uniform(size=200), rng.uniform(size=200)
    student_test = np.clip(teacher_test + rng.normal(0, 0.15, 200), 0, 1)
    bundle = with_teacher_reference(_bundle("binary", ["herg"], n=200), teacher_valid, teacher_test)
    cfg = SimpleNamespace(evaluation=EvaluationConfig(bootstrap=20))
    ctx = EvaluationContext(
        SimpleNamespace(name="toy"), bundle, bundle.test, bundle.y(bundle.test),
        {"teacher": teacher_test, "student": student_test}, {"teacher": 0.5, "student": 0.5}, cfg, 0, tmp_path,
    )  # fmt: skip
    m = evaluate_generic(ctx).metrics
    assert m["student.roc_auc"] == pytest.approx(roc_auc_score(teacher_test >= 0.5, student_test))
    assert not [k for k in m if k.startswith(("teacher.", "retention.", "gain.", "baseline"))]
    assert m["fidelity.agreement"] == pytest.approx(np.mean((teacher_test >= 0.5) == (student_test >= 0.5)))
