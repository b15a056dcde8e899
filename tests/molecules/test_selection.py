"""The default student (molecules.auto): every candidate trained and measured, the best validation
fidelity within the budget chosen, the choice and the candidates kept for the record."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from stillroom.errors import ConfigError
from stillroom.tasks.targets import labels_only, make_targets
from stillroom_molecules import embedded
from stillroom_molecules.chem import standardised_mol
from stillroom_molecules.outputs import as_matrix
from stillroom_molecules.selection import (
    SELECTION_DEFAULTS,
    SelectedStudent,
    _cheapest_near_best,
    model_latency_us,
    selection_sample,
    validation_fidelity,
)

CANDIDATES = [
    {"name": "molecules.lightgbm", "params": {"num_leaves": 7}},
    {"name": "molecules.mlp", "params": {"hidden": [32], "epochs": 8}},
]


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    train, _ = embedded.solubility()
    frame = train.frame.sample(frac=1.0, random_state=1).reset_index(drop=True)

    # a smooth teacher the fingerprints capture: heavy atoms and rings
    def teacher(smiles: pd.Series) -> np.ndarray:
        mols = [standardised_mol(s)[0] for s in smiles]
        return np.array([[m.GetNumHeavyAtoms() / 10 - m.GetRingInfo().NumRings() / 3] for m in mols])

    fit, valid = frame.iloc[:600], frame.iloc[600:800]
    return fit, valid, teacher(fit["smiles"]), teacher(valid["smiles"])


def _fit(params: dict, data) -> SelectedStudent:
    fit, valid, t_fit, t_valid = data
    student = SelectedStudent(params, seed=0)
    return student.fit(
        fit[["smiles"]],
        make_targets("regression", fit[["SOL"]].to_numpy(), t_fit, 1.0, 0.5),
        valid[["smiles"]],
        make_targets("regression", valid[["SOL"]].to_numpy(), t_valid, 1.0, 0.5),
    )


def test_the_best_candidate_within_budget_is_chosen_and_recorded(data) -> None:
    student = _fit({"candidates": CANDIDATES, "n_estimators": 150}, data)
    rows = student.selection
    assert [r["name"] for r in rows] == ["molecules.lightgbm", "molecules.mlp"]
    for r in rows:
        assert r["reference"] == "teacher" and np.isfinite(r["validation_fidelity"])
        assert r["size_bytes"] > 0 and r["latency_us_per_molecule"] > 0 and r["within_budget"]
    assert rows[0]["params"]["n_estimators"] == 150 and "n_estimators" not in rows[1]["params"]  # routed by kind
    assert rows[0]["trees_per_output"][0] <= 150
    chosen = [r for r in rows if r["chosen"]]
    best = max(r["validation_fidelity"] for r in rows)
    near = [r for r in rows if r["validation_fidelity"] >= best - SELECTION_DEFAULTS["fidelity_tolerance"]]
    assert len(chosen) == 1 and chosen[0] == min(near, key=lambda r: r["latency_us_per_molecule"])
    assert student.scorer.kind == chosen[0]["name"].split(".")[-1]  # what is shipped is the chosen one
    assert student.scorer.conformal is not None  # calibrated after the choice, on molecules the choice did not see
    desc = student.describe()
    assert desc.name == f"molecules-{student.scorer.kind}-student"
    assert [r["chosen"] for r in desc.details["student_selection"]] == [r["chosen"] for r in rows]


def test_a_budget_excludes_candidates_and_none_within_it_is_one_error(data) -> None:
    sizes = {r["name"]: r["size_bytes"] for r in _fit({"candidates": CANDIDATES, "n_estimators": 150}, data).selection}
    small, large = sorted(sizes, key=sizes.get)
    budget_mb = (sizes[small] + sizes[large]) / 2 / 2**20  # between the two
    student = _fit({"candidates": CANDIDATES, "n_estimators": 150, "max_size_mb": budget_mb}, data)
    by_name = {r["name"]: r for r in student.selection}
    assert by_name[small]["within_budget"] and not by_name[large]["within_budget"]
    assert by_name[small]["chosen"] and not by_name[large]["chosen"]
    with pytest.raises(ConfigError, match=r"no student candidate within the budget \(student.params.max_size_mb=1e-06"):
        _fit({"candidates": CANDIDATES, "n_estimators": 150, "max_size_mb": 1e-6}, data)


def test_on_labels_alone_the_choice_is_made_on_labels(data) -> None:
    fit, valid, _, _ = data
    student = SelectedStudent({"candidates": CANDIDATES, "n_estimators": 100}, seed=0).fit(
        fit[["smiles"]],
        labels_only("regression", fit[["SOL"]].to_numpy()),
        valid[["smiles"]],
        labels_only("regression", valid[["SOL"]].to_numpy()),
    )
    assert {r["reference"] for r in student.selection} == {"labels"}
    assert sum(r["chosen"] for r in student.selection) == 1


@pytest.mark.parametrize("chosen", range(len(CANDIDATES)))
def test_the_baseline_spec_is_the_chosen_candidate_with_the_shared_settings(data, chosen: int) -> None:
    """What a run builds its baseline from: the candidate the student chose (kind, capacity, the
    top-level settings of its kind), the shared featuriser and conformal settings; a student of
    that kind, trained on labels, with no choice of its own."""
    from stillroom.contract import StudentConfig
    from stillroom_molecules.plugin import _lightgbm, _mlp

    featurizer = {"radius": 2, "n_bits": 1024, "counts": True, "descriptors": "none"}
    params = {"candidates": [CANDIDATES[chosen]], "n_estimators": 120, "featurizer": featurizer, "conformal": {"level": 0.8}}
    with pytest.raises(RuntimeError, match="not chosen"):
        SelectedStudent(params, seed=0).baseline_spec()
    student = _fit(params, data)
    spec = StudentConfig.model_validate(student.baseline_spec())
    assert spec.name == CANDIDATES[chosen]["name"]
    expected = CANDIDATES[chosen]["params"] | ({"n_estimators": 120} if spec.name == "molecules.lightgbm" else {})
    assert spec.params == {"featurizer": featurizer, "conformal": {"level": 0.8}} | expected
    fit, valid, _, _ = data
    baseline = {"molecules.lightgbm": _lightgbm, "molecules.mlp": _mlp}[spec.name](spec.params, 0)
    baseline.fit(
        fit[["smiles"]],
        labels_only("regression", fit[["SOL"]].to_numpy()),
        valid[["smiles"]],
        labels_only("regression", valid[["SOL"]].to_numpy()),
    )
    assert baseline.scorer.kind == student.scorer.kind and baseline.featurizer == student.featurizer
    assert not hasattr(baseline, "selection") and baseline.conformal.level == 0.8


def test_a_near_tie_on_validation_goes_to_the_faster_candidate() -> None:
    rows = [
        {"validation_fidelity": 0.7939, "latency_us_per_molecule": 129.0, "size_bytes": 2_000_000},  # LightGBM
        {"validation_fidelity": 0.7932, "latency_us_per_molecule": 1.7, "size_bytes": 4_000_000},  # MLP
        {"validation_fidelity": 0.7000, "latency_us_per_molecule": 0.5, "size_bytes": 100_000},  # fast, clearly worse
    ]
    assert _cheapest_near_best(rows, [0, 1, 2], 0.002) == 1
    assert _cheapest_near_best(rows, [0, 1, 2], 0.0) == 0  # no tolerance: the best fidelity, as before
    assert _cheapest_near_best(rows, [0, 2], 0.002) == 0  # the MLP out of budget
    with pytest.raises(ConfigError, match=r"fidelity_tolerance must be in \[0, 1\) \(got -0.1\)"):
        SelectedStudent({"fidelity_tolerance": -0.1}, 0)


def test_candidates_are_checked_when_the_student_is_built() -> None:
    with pytest.raises(ConfigError, match=r"student.params.candidates\[0\] must be"):
        SelectedStudent({"candidates": [{"name": "molecules.forest"}]}, 0)
    with pytest.raises(ConfigError, match=r"unknown config field 'student.params.candidates\[1\].params.trees'"):
        SelectedStudent({"candidates": [CANDIDATES[0], {"name": "molecules.lightgbm", "params": {"trees": 3}}]}, 0)
    with pytest.raises(ConfigError, match="unknown config field 'student.params.leaves'"):
        SelectedStudent({"leaves": 3}, 0)


def test_validation_fidelity_is_r2_to_the_reference() -> None:
    teacher = np.array([[1.0], [2.0], [3.0], [4.0]])
    m = as_matrix(make_targets("regression", np.full((4, 1), np.nan), teacher, 1.0, 0.5), "regression")
    assert validation_fidelity(m, teacher[:, 0]) == pytest.approx(1.0)
    assert validation_fidelity(m, np.full(4, 2.5)) == pytest.approx(0.0)  # the mean: no skill
    labels = as_matrix(labels_only("binary", np.array([0.0, 1.0, 1.0, 0.0])), "binary")
    assert validation_fidelity(labels, np.array([0.0, 1.0, 1.0, 0.0])) == pytest.approx(1.0)


def test_the_selection_sample_rule() -> None:
    """At most ``selection_rows`` rows: every row; above it, a seeded sample of exactly that many
    (sorted, distinct, the same for the same seed); 0: every row; a negative value is a config error."""
    assert selection_sample(10_000, 10_000, 0) is None
    assert selection_sample(50_000, 0, 0) is None
    sample = selection_sample(35_800, 10_000, 0)
    assert sample is not None and len(sample) == len(np.unique(sample)) == 10_000
    assert np.all(np.diff(sample) > 0) and sample.max() < 35_800
    assert np.array_equal(sample, selection_sample(35_800, 10_000, 0))
    assert not np.array_equal(sample, selection_sample(35_800, 10_000, 1))
    with pytest.raises(ConfigError, match="selection_rows must be >= 0"):
        SelectedStudent({"selection_rows": -1}, 0)


def test_above_selection_rows_candidates_see_a_sample_and_the_chosen_one_is_trained_on_all(data, caplog) -> None:
    caplog.set_level("INFO", logger="stillroom")
    student = _fit({"candidates": CANDIDATES, "n_estimators": 150, "selection_rows": 200}, data)
    # 600 training molecules; calibration molecules are the validation split's, not training rows
    assert [r["trained_rows"] for r in student.selection] == [200, 200]
    chosen = next(r for r in student.selection if r["chosen"])
    assert chosen["refit_rows"] == 600 and all("refit_rows" not in r for r in student.selection if not r["chosen"])
    assert "candidates compared on a seeded sample of 200" in caplog.text and "trained again on all 600 rows" in caplog.text
    assert student.scorer.kind == chosen["name"].split(".")[-1] and student.scorer.conformal is not None
    assert [r["trained_rows"] for r in student.describe().details["student_selection"]] == [200, 200]
    unsampled = _fit({"candidates": CANDIDATES, "n_estimators": 150}, data)  # 600 rows < the default 10,000
    assert [r["trained_rows"] for r in unsampled.selection] == [600, 600]
    assert all("refit_rows" not in r for r in unsampled.selection)


def test_latency_is_the_models_cpu_time_not_its_wait_for_a_core() -> None:
    """A model that waits (here: sleeps, as a thread does on a loaded machine) is not charged for it."""

    class Waiting:
        threads = 1

        def predict_features(self, F: sparse.csr_matrix) -> np.ndarray:
            time.sleep(0.05)  # 50 ms for 100 rows: 500 us a molecule of wall time, no CPU time
            return np.zeros(F.shape[0])

    assert model_latency_us(Waiting(), sparse.csr_matrix(np.ones((100, 4))), 100) < 50
