"""Models registered before the core's restructure still load and score the same.

The artifacts under ``tests/data/legacy_models`` were written by stillroom at 248fc66, the flat
layout (see the README there): a fraud LightGBM student and a molecules models-from-code
student. They are registered in a fresh store as they are and scored with today's
``stillroom score``; the scores must equal what the old code gave. Registered from a folder,
outside any run, they carry no recorded file hashes: scoring them takes ``--trust-unverified``,
and the scoring run says they were not verified.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from stillroom.cli import app

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy_models"
runner = CliRunner()


def _register(folder: str, name: str, root: Path) -> str:
    """Copy a legacy model folder into the store's root and register it as version 1."""
    local = root / "legacy" / folder
    shutil.copytree(LEGACY / folder, local)
    version = mlflow.register_model(local.as_uri(), name)
    return f"models:/{name}/{version.version}"


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "lightgbm"])
def test_a_fraud_student_registered_before_the_restructure_scores_the_same(
    tracking_store: str, tmp_path: Path, compiled: bool
) -> None:
    uri = _register("fraud_student", "legacy-fraud", tmp_path)
    out = tmp_path / "scores.csv"
    flags = [] if compiled else ["--no-compiled"]
    args = ["score", uri, str(LEGACY / "fraud_batch.csv"), str(out), "--passthrough", "TRANSACTION_ID", "--no-progress"]
    refused = runner.invoke(app, args + ["--no-compiled"])
    assert refused.exit_code == 2 and "no recorded file hashes" in refused.output and not out.exists()
    args.append("--trust-unverified")
    result = runner.invoke(app, args + flags)
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out)
    expected = pd.read_csv(LEGACY / "fraud_expected.csv")
    assert list(scored["TRANSACTION_ID"]) == list(expected["TRANSACTION_ID"])
    np.testing.assert_allclose(scored["score"], expected["score"], rtol=0, atol=1e-6 if compiled else 1e-12)


def test_a_molecules_student_registered_before_the_restructure_scores_the_same(tracking_store: str, tmp_path: Path) -> None:
    uri = _register("molecules_student", "legacy-molecules", tmp_path)
    out = tmp_path / "scores.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # today's vertical loads it through the plugin API only
        result = runner.invoke(
            app, ["score", uri, str(LEGACY / "molecules_batch.csv"), str(out), "--no-progress", "--trust-unverified"]
        )
    assert result.exit_code == 0, result.output
    scored, expected = pd.read_csv(out), pd.read_csv(LEGACY / "molecules_expected.csv")
    assert len(scored) == len(expected) == 10
    valid = expected["smiles_valid"].to_numpy(dtype=bool)
    assert list(scored["smiles_valid"]) == list(valid)
    np.testing.assert_allclose(scored["score"][valid], expected["score"][valid], rtol=0, atol=1e-12)
    assert scored["score"][~valid].isna().all()


def test_the_old_module_paths_still_import_with_a_deprecation_warning() -> None:
    """A vertical written for the flat layout imports ``stillroom.data`` and friends."""
    import importlib
    import sys

    from stillroom.contract import DataBundle, SoftTargets, usable_cores

    for name in ("stillroom.data", "stillroom.targets", "stillroom.environment"):
        sys.modules.pop(name, None)
    with pytest.warns(DeprecationWarning, match="stillroom.data is deprecated: import from stillroom.contract"):
        data = importlib.import_module("stillroom.data")
    with pytest.warns(DeprecationWarning):
        targets = importlib.import_module("stillroom.targets")
        environment = importlib.import_module("stillroom.environment")
    assert data.DataBundle is DataBundle and callable(data.label_kinds)
    assert targets.SoftTargets is SoftTargets and targets.OUTPUT_TYPES == ("regression", "binary")
    assert environment.usable_cores is usable_cores
