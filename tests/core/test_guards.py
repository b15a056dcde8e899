"""The data guards on bundles of every task type: what each guard finds, what it leaves alone,
and how ``data.guards`` turns a finding into an error, a warning or nothing. (The guards on a
real run: tests/e2e/test_data_guards.py, tests/molecules/test_duplicates.py, the medical e2e.)"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stillroom.contract import DataBundle, GuardsConfig
from stillroom.distillation.guards import check_data
from stillroom.errors import DataError
from stillroom.tasks.separation import separation


def _bundle(task_type: str, n: int = 300, seed: int = 0, **columns: np.ndarray) -> DataBundle:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), **columns})
    if task_type == "binary":
        frame["y"] = np.arange(n) % 2
    elif task_type == "multiclass":
        frame["y"] = np.arange(n) % 3
    else:
        frame["y"] = frame["x1"] + rng.normal(scale=1.0, size=n)
    a, b = int(n * 0.6), int(n * 0.8)
    parts = (frame.iloc[:a].copy(), frame.iloc[a:b].copy(), frame.iloc[b:].copy())
    features = [c for c in frame.columns if c != "y"]
    return DataBundle(*parts, features=features, label="y", task_type=task_type, drop_setting="data.drop=[column]")


def _guards(bundle: DataBundle, **settings: object) -> dict[str, list[str]]:
    quality = check_data(bundle, GuardsConfig(**settings))
    out: dict[str, list[str]] = {}
    for f in quality.findings:
        out.setdefault(f.guard, []).append(f"{f.severity}:{f.column}")
    return out


def test_a_copied_label_is_an_error_in_every_task_type() -> None:
    n = 300
    binary = _bundle("binary", leak=(np.arange(n) % 2) * 3.0 + 1)
    assert _guards(binary)["single_feature"] == ["error:leak"]
    multiclass = _bundle("multiclass", code=(np.arange(n) % 3) * 10.0)
    assert _guards(multiclass)["single_feature"] == ["error:code"]
    regression = _bundle("regression")
    regression.train["copy"] = regression.train["y"] * 2 + 1
    for split in (regression.validation, regression.test):
        split["copy"] = split["y"] * 2 + 1
    regression.features.append("copy")
    assert _guards(regression)["single_feature"] == ["error:copy"]
    with pytest.raises(
        DataError, match=r"'leak' alone separates the training labels \(roc_auc 1.000 for 'y'\).*data.drop=\[column\]"
    ):
        check_data(binary, GuardsConfig()).raise_errors()


def test_a_signal_that_is_not_a_leak_passes() -> None:
    # x1 predicts the regression label well (rho about 0.7), far from a copy
    assert "single_feature" not in _guards(_bundle("regression"))
    assert (
        separation("regression", np.ones(10), np.arange(10.0)[:, None], ["y"]).score
        != separation("regression", np.arange(10.0), np.arange(10.0)[:, None], ["y"]).score
    )


def test_severity_accept_and_off() -> None:
    n = 300
    bundle = _bundle("binary", leak=(np.arange(n) % 2) * 1.0)
    assert _guards(bundle, single_feature="warn")["single_feature"] == ["warn:leak"]
    assert _guards(bundle, accept=["leak"])["single_feature"] == ["warn:leak"]
    assert "single_feature" not in _guards(bundle, single_feature="off")


def test_ids_by_values_or_name_and_not_by_accident() -> None:
    n = 300
    rng = np.random.default_rng(1)
    bundle = _bundle(
        "binary",
        row_number=np.arange(n) * 1.0,  # strictly monotonic integers
        ref=rng.permutation(n) + 1000.0,  # unique integers
        PATIENT_ID=rng.integers(0, 20, n) * 1.0,  # named like an id
        CustomerId=rng.integers(0, 20, n) * 1.0,
        valid=rng.integers(0, 3, n) * 1.0,  # ends in "id", is not one
        amount=rng.gamma(2.0, 10.0, n),  # unique, but not integers
    )
    found = _guards(bundle)["id_like"]
    assert sorted(found) == sorted(["warn:row_number", "warn:ref", "warn:PATIENT_ID", "warn:CustomerId"])


def test_a_class_only_training_holds_is_a_stray_label() -> None:
    bundle = _bundle("multiclass")
    bundle.train.loc[bundle.train.index[:2], "y"] = 3
    bundle.class_names = ["a", "b", "c", "d"]
    assert _guards(bundle)["labels"] == ["error:y"]
    message = check_data(bundle, GuardsConfig()).errors[0].message
    assert message.startswith("label 3 (d) of column 'y' is in 2 training row(s) but in neither validation nor test")


def test_conflicting_duplicates_among_numeric_inputs_and_few_test_events() -> None:
    bundle = _bundle("binary", n=120)
    bundle.train.loc[bundle.train.index[1], ["x1", "x2"]] = bundle.train.loc[bundle.train.index[0], ["x1", "x2"]].to_numpy()
    quality = check_data(bundle, GuardsConfig())
    assert quality.duplicates["conflicting"] == 1  # rows 0 and 1: labels 0 and 1
    assert [f.guard for f in quality.findings] == ["conflicting_duplicates", "few_test_events"]
    assert quality.splits["test"]["rarest"] == {"label": "y", "class": "0", "count": 12}
    assert quality.status == "warnings"
