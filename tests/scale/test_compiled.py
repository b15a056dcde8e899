"""The compiled student: equal to LightGBM, logged beside the native model, used by scoring,
rebuilt for another machine, refused when corrupted, and skipped (with a reason) without lleaves."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from stillroom import tracking
from stillroom.api import score
from stillroom.errors import ModelLoadError
from stillroom.scoring import compiled

from .conftest import FEATURES, Registered, transactions


def _model_dir(registered: Registered, tmp_path: Path) -> Path:
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=registered.uri, dst_path=str(tmp_path / "model")))


def test_compiled_student_equals_lightgbm_probabilities_on_100k_rows(registered: Registered, tmp_path: Path) -> None:
    rows = transactions(100_000, seed=5)[FEATURES]
    loaded = compiled.load_compiled(_model_dir(registered, tmp_path), FEATURES)
    assert loaded.engine == "lleaves" and loaded.model is not None, loaded.note
    expected = registered.booster.predict(rows)  # probabilities: init score in tree 0, binary sigmoid declared
    assert expected.min() >= 0 and expected.max() <= 1 and expected.std() > 0.05
    got = loaded.model.predict(rows)
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= 1e-6


def test_compiled_artifact_is_logged_inside_the_registered_model(registered: Registered, tmp_path: Path) -> None:
    local = _model_dir(registered, tmp_path)
    record = json.loads((local / "compiled" / "compiled.json").read_text())
    assert record["engine"] == "lleaves"
    assert (local / "compiled" / record["object_file"]).stat().st_size > 1000
    assert record["check"]["max_abs_diff_vs_lightgbm"] <= 1e-6 and record["check"]["rows"] == compiled.PROBE_ROWS
    assert record["target"] == compiled.asdict(compiled.Target.here())
    tags = mlflow.MlflowClient().get_logged_model(registered.model_id).tags
    assert tags["stillroom.scoring_engine"] == "lleaves"


def test_score_uses_the_compiled_engine_and_records_it(registered: Registered, tmp_path: Path) -> None:
    frame = transactions(20_000, seed=9)
    src = tmp_path / "batch.parquet"
    frame.to_parquet(src, index=False)
    fast = score(registered.uri, src, tmp_path / "fast.parquet", passthrough=("TRANSACTION_ID",), progress=False)
    slow = score(registered.uri, src, tmp_path / "slow.parquet", passthrough=("TRANSACTION_ID",), progress=False, compiled=False)
    assert (fast["engine"], slow["engine"]) == ("lleaves", "lightgbm")
    a, b = pd.read_parquet(tmp_path / "fast.parquet"), pd.read_parquet(tmp_path / "slow.parquet")
    assert a["TRANSACTION_ID"].tolist() == frame["TRANSACTION_ID"].tolist()
    np.testing.assert_allclose(a["score"], b["score"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(a["score"], registered.booster.predict(frame[FEATURES]), rtol=0, atol=1e-6)
    run = tracking.run_record(fast["run_id"])
    assert run.params["engine"] == "lleaves" and run.tags["stillroom.engine"] == "lleaves"
    assert run.params["engine_note"] == "compiled artifact loaded as logged"
    assert tracking.run_record(slow["run_id"]).params["engine"] == "lightgbm"


def test_an_artifact_built_for_another_machine_is_recompiled_here(registered: Registered, tmp_path: Path) -> None:
    local = _model_dir(registered, tmp_path)
    record_path = local / "compiled" / "compiled.json"
    record = json.loads(record_path.read_text())
    record["target"]["cpu"], record["target"]["machine"] = "znver9", "riscv64"
    record_path.write_text(json.dumps(record))
    logged_object = (local / "compiled" / "student.o").read_bytes()
    loaded = compiled.load_compiled(local, FEATURES)
    assert loaded.engine == "lleaves" and "recompiled here" in loaded.note and "riscv64" in loaded.note
    rows = transactions(5000, seed=3)[FEATURES]
    assert np.max(np.abs(loaded.model.predict(rows) - registered.booster.predict(rows))) <= 1e-6
    assert (local / "compiled" / "student.o").read_bytes() == logged_object  # the logged artifact is left as it was


def test_a_corrupted_compiled_artifact_is_refused(registered: Registered, tmp_path: Path) -> None:
    local = _model_dir(registered, tmp_path)
    obj = local / "compiled" / "student.o"
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0xFF
    obj.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="corrupted"):
        compiled.load_compiled(local, FEATURES)


def test_a_compiled_artifact_from_another_model_is_refused(registered: Registered, tmp_path: Path) -> None:
    local = _model_dir(registered, tmp_path)
    text = (local / "model.lgb").read_text()
    (local / "model.lgb").write_text(text.replace("Tree=0", "Tree=0\n", 1))
    with pytest.raises(ModelLoadError, match="not built from this model"):
        compiled.load_compiled(local, FEATURES)


def test_without_lleaves_scoring_falls_back_to_lightgbm_and_says_why(
    registered: Registered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "lleaves", None)  # as if not installed: importing it fails
    local = _model_dir(registered, tmp_path)
    loaded = compiled.load_compiled(local, FEATURES)
    assert loaded.model is None and loaded.engine == "lightgbm"
    assert "lleaves is not usable" in loaded.note and "stillroom[compiled]" in loaded.note
    shutil.rmtree(local / "compiled")
    assert compiled.load_compiled(local, FEATURES).note == "no compiled artifact was logged with this model"


def test_without_lleaves_a_student_is_registered_natively_with_the_reason(
    registered: Registered, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .conftest import fit_student

    monkeypatch.setitem(sys.modules, "lleaves", None)
    example = transactions(5, 2)[FEATURES]
    with tracking.run("scale-tests", "distill without lleaves", {}):
        logged = tracking.log_student_model(fit_student(seed=4).native_model(), example)
    assert logged.scoring_engine == "lightgbm"
    assert not any(name.startswith("compiled/") for name in logged.files)
    tags = mlflow.MlflowClient().get_logged_model(logged.model_id).tags
    assert tags["stillroom.scoring_engine"] == "lightgbm" and "lleaves" in tags["stillroom.compiled"]
