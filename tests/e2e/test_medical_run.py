"""End to end: `stillroom distill medical` on the embedded synthetic images into a real MLflow
store: registered ONNX student, TorchScript beside it, the medical compliance bundle; and
every bad input ends in one message, exit code 2, nothing run or registered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from medical.npz import write_npz
from typer.testing import CliRunner

from stillroom import tracking
from stillroom.cli import app
from stillroom.testing import assert_compliance_bundle

pytestmark = pytest.mark.slow
runner = CliRunner()

TINY = [
    "data.synthetic.n_train=120",
    "data.synthetic.n_validation=80",
    "data.synthetic.n_test=90",
    "data.synthetic.size=16",
    "teacher.params.widths=[8, 16, 32]",
    "teacher.params.epochs=1",
    "student.params.widths=[4, 8, 8]",
    "student.params.epochs=1",
    "student.params.families={response: 1.0, hints: 0.5}",
    "student.params.progress=false",
    "teacher.params.progress=false",
    "evaluation.bootstrap=20",
    "evaluation.efficiency_rows=60",
    "evaluation.latency_repeats=10",
    "medical.min_subgroup_size=5",
]


def _args(extra: list[str] | None = None) -> list[str]:
    out = ["distill", "medical"]
    for item in TINY + (extra or []):
        out += ["--set", item]
    return out


@pytest.fixture(scope="module")
def run(store: str) -> dict[str, Any]:
    result = runner.invoke(app, _args())
    assert result.exit_code in (0, 3), result.output  # 3: the gate failed (one epoch each), the run is kept
    import mlflow

    runs = mlflow.search_runs(
        search_all_experiments=True, filter_string="tags.`stillroom.task` = 'medical'", output_format="list"
    )
    assert len(runs) == 1
    assert result.exit_code == (0 if runs[0].data.tags["stillroom.gate"] == "passed" else 3)
    return {"run_id": runs[0].info.run_id, "output": result.output}


def test_run_registers_a_scoring_student_with_a_tensor_signature_and_an_onnx_model_beside_it(run: dict[str, Any]) -> None:
    import mlflow

    client = mlflow.MlflowClient()
    version = client.get_model_version("medical-student", "1")
    assert version.run_id == run["run_id"]
    model = mlflow.pyfunc.load_model("models:/medical-student/1")
    spec = model.metadata.get_input_schema().inputs[0]
    assert spec.name == "image" and tuple(spec.shape) == (-1, 1, 16, 16)
    images = np.random.default_rng(0).random((3, 1, 16, 16), dtype=np.float32)
    out = model.predict({"image": images})
    assert list(out.columns) == ["p_lesion", "p_normal", "call"] and np.allclose(out["p_lesion"] + out["p_normal"], 1, atol=1e-5)
    assert model.model_config["thresholds"] == [tracking.run_record(run["run_id"]).metrics["student.operating_threshold"]]
    onnx_id = tracking.run_record(run["run_id"]).tags["stillroom.extra_model.student_onnx"]
    plain = mlflow.pyfunc.load_model(f"models:/{onnx_id}").predict({"image": images})
    probs = np.asarray(plain["probabilities"] if isinstance(plain, dict) else plain)
    assert probs.shape == (3, 2) and np.allclose(probs[:, 1], out["p_lesion"], atol=1e-6)
    assert "onnx" in mlflow.models.Model.load(f"models:/{onnx_id}").flavors


# MLflow opens the TorchScript archive with torch.load, which dispatches to torch.jit.load and says so
@pytest.mark.filterwarnings("ignore:'torch.load' received a zip file")
def test_torchscript_student_is_logged_beside_it(run: dict[str, Any]) -> None:
    import mlflow

    record = tracking.run_record(run["run_id"])
    model_id = record.tags["stillroom.extra_model.student_torchscript"]
    module = mlflow.pytorch.load_model(f"models:/{model_id}")
    assert isinstance(module, torch.jit.ScriptModule)
    assert module(torch.zeros(2, 1, 16, 16)).shape == (2, 2)


def test_medical_compliance_bundle(run: dict[str, Any]) -> None:
    assert_compliance_bundle(run["run_id"], "medical")
    record = tracking.run_record(run["run_id"])
    m = record.metrics
    for role in ("teacher", "student", "baseline"):
        assert 0 <= m[f"{role}.sensitivity"] <= 1 and 0 <= m[f"{role}.specificity"] <= 1
        assert m[f"{role}.roc_auc.ci_low"] <= m[f"{role}.roc_auc"] <= m[f"{role}.roc_auc.ci_high"]
    assert m["efficiency.student.n_parameters"] < m["efficiency.teacher.n_parameters"]
    assert (
        m["efficiency.student.latency_p50_ms"] > 0
        and m["efficiency.student.latency_p99_ms"] >= m["efficiency.student.latency_p50_ms"]
    )
    assert "plots/subgroup_sensitivity.png" in record.artifacts and "tables/subgroups.csv" in record.artifacts
    assert 0 <= m["student.worst_subgroup_sensitivity"] <= m["student.sensitivity"] + 1e-9
    assert record.params["student.params.families.hints"] == "0.5"


def test_teacher_student_and_baseline_are_timed_interleaved_in_onnx_runtime_and_torch(run: dict[str, Any]) -> None:
    """Structure, not speed: every model in both runtimes, the same rounds, per-round ratios logged."""
    import json

    import mlflow

    record = tracking.run_record(run["run_id"])
    m = record.metrics
    for runtime in ("onnxruntime", "torch"):
        for role in ("teacher", "student", "baseline"):
            assert m[f"efficiency.{role}.{runtime}.rows_per_second"] > 0
        for key in ("speedup_rows_per_second", "speedup_latency"):
            ratio = m[f"efficiency.{runtime}.{key}"]
            assert m[f"efficiency.{runtime}.{key}.min"] <= ratio <= m[f"efficiency.{runtime}.{key}.max"]
    # what the speed rule reads: the first runtime the student offers, the one it ships in
    assert m["efficiency.speedup_rows_per_second"] == m["efficiency.onnxruntime.speedup_rows_per_second"]
    assert "efficiency.json" in record.artifacts
    timing = json.loads(
        Path(mlflow.artifacts.download_artifacts(run_id=run["run_id"], artifact_path="efficiency.json")).read_text()
    )
    assert timing["rows"] == {"batch_1": 1, "batch_n": 60} and timing["rounds"] == m["efficiency.student.rounds"] >= 3
    assert len(timing["order"]) == timing["rounds"] and len({tuple(o) for o in timing["order"]}) == timing["rounds"]
    compute = timing["compute"]  # every model on one pinned CPU, one thread per pool (evaluation.efficiency_cores: 1)
    assert compute["cores"] == compute["threads"] == 1 and compute["pinned"] and len(compute["cpus"]) == 1
    for entry in timing["runtimes"].values():  # one core: a model cannot burn more CPU seconds than wall seconds
        assert all(share < 1.1 for share in entry["cpu_per_wall"].values()), entry["cpu_per_wall"]
    for entry in timing["runtimes"].values():
        for role in ("student", "baseline"):
            for size in ("batch_1", "batch_n"):
                ratios = entry["ratios"][role][size]
                assert len(ratios["per_round"]) == timing["rounds"]
                assert ratios["min"] == min(ratios["per_round"]) and ratios["max"] == max(ratios["per_round"])
                t, s = (sorted(entry["seconds_per_call"][r][size]) for r in ("teacher", role))
                assert ratios["ratio_of_medians"] == pytest.approx(float(np.median(t) / np.median(s)))


def _fails(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output


def _nothing_written() -> None:
    import mlflow

    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []
    assert mlflow.MlflowClient().search_registered_models() == []


NPZ_SPLITS = (("train", 40), ("val", 20), ("test", 20))  # the bad arrays below are sized for these


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train_images": np.zeros((40, 16, 16, 5), dtype=np.uint8)}, "images must be"),
        ({"test_labels": np.full((20, 1), 9, dtype=np.uint8)}, "out of range"),
        ({"val_images": np.zeros((0, 16, 16), dtype=np.uint8), "val_labels": np.zeros((0, 1), dtype=np.uint8)}, "split is empty"),
    ],
    ids=["wrong-image-shape", "label-out-of-range", "empty-split"],
)
def test_bad_npz_input(tracking_store: str, tmp_path: Path, overrides: dict, message: str) -> None:
    path = write_npz(tmp_path / "scans.npz", NPZ_SPLITS, **overrides)
    _fails(_args(["data.dataset=medical.npz", f"data.path={path}"]), message)
    _nothing_written()


def test_corrupt_npz(tracking_store: str, tmp_path: Path) -> None:
    bad = tmp_path / "scans.npz"
    bad.write_bytes(b"\x00" * 64)
    _fails(_args(["data.dataset=medical.npz", f"data.path={bad}"]), "is not a readable .npz file")
    _nothing_written()


def test_torchscript_teacher_that_is_not_a_model(tracking_store: str, tmp_path: Path) -> None:
    bad = tmp_path / "teacher.pt"
    bad.write_bytes(b"PK\x03\x04 not torchscript")
    _fails(
        _args(["teacher.name=null", f"teacher.uri={bad}", "student.params.families={response: 1.0}"]),
        "is not a TorchScript model",
    )
    _nothing_written()


def test_feature_families_need_a_teacher_with_features(tracking_store: str, tmp_path: Path) -> None:
    from stillroom_medical import nets

    path = tmp_path / "teacher.pt"
    torch.jit.save(torch.jit.trace(nets.resnet(1, 2, [8, 16, 32], [1, 1, 1]).eval(), torch.zeros(1, 1, 16, 16)), str(path))
    _fails(_args(["teacher.name=null", f"teacher.uri={path}"]), "need the teacher's intermediate features")
    _nothing_written()


def _artifact_json(run_id: str, name: str) -> Any:
    import json

    import mlflow

    return json.loads(Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name)).read_text())


def test_the_card_states_the_screening_operating_point_and_lists_its_rates_with_intervals(run: dict[str, Any]) -> None:
    """The card says the rates hold at the sensitivity-targeted point this run chose (not the
    core's fpr 0.1 fidelity point), with each model's threshold, and lists sensitivity,
    specificity, PPV, NPV and accuracy with intervals for every model."""
    card = _artifact_json(run["run_id"], "model_card.json")
    m = tracking.run_record(run["run_id"]).metrics
    points = card["metrics"]["operating points"]
    screening = points["medical.operating_point"]
    assert screening["rule"].startswith("sensitivity 0.9 on validation (the highest threshold reaching it)")
    assert screening["rule"].endswith("positive class: 'lesion'")  # the data's class name, not class_1
    for role in ("teacher", "student", "baseline"):
        assert screening["thresholds"][role] == pytest.approx(m[f"{role}.operating_threshold"], abs=1e-6)
    rows = {row["metric"]: row for row in screening["metrics at this point"]["table"]}
    assert set(rows) == {"sensitivity", "specificity", "ppv", "npv", "accuracy"}
    for rate, row in rows.items():
        for role in ("teacher", "student", "baseline"):
            value, interval = row[role].split(" ", 1)
            assert float(value) == pytest.approx(m[f"{role}.{rate}"], abs=1e-4) and interval.startswith("[")
            low, high = m[f"{role}.{rate}.ci_low"], m[f"{role}.{rate}.ci_high"]
            assert low <= m[f"{role}.{rate}"] + 1e-9 and m[f"{role}.{rate}"] <= high + 1e-9
    core = points["evaluation.operating_point"]
    assert core["rule"].startswith("fpr 0.1") and {r["metric"] for r in core["metrics at this point"]["table"]} <= {
        "fidelity.alert_overlap",
        "fidelity.agreement",
    }
    assert 0 <= m["student.argmax_accuracy"] <= 1 and "student.argmax_accuracy.ci_low" in m
    assert points["argmax"]["metrics at this point"]["table"][0]["metric"] == "argmax_accuracy"
    assert any("synthetic" in c for c in card["caveats_and_recommendations"])  # this run is on the embedded data
    quality = _artifact_json(run["run_id"], "data_quality.json")
    assert sum(quality["splits"]["test"]["labels"]["label"].values()) == 90 and quality["status"] in ("clean", "warnings")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "label 2 (class 2) of column 'label' is in 1 training row(s) but in neither validation nor test"),
        (["data.task_type=binary"], "train split: label column 'label' must be 0/1, found ['0', '1', '2']"),
    ],
    ids=["inferred-classes", "declared-binary"],
)
def test_a_stray_label_in_a_binary_training_split_is_an_error(
    tracking_store: str, tmp_path: Path, extra: list[str], message: str
) -> None:
    """One image labelled 2 in a 0/1 archive: an error before any training, never 3-class training."""
    labels = (np.arange(40) % 2).reshape(40, 1).astype(np.uint8)
    labels[7] = 2
    path = write_npz(tmp_path / "scans.npz", NPZ_SPLITS, train_labels=labels)
    _fails(_args(["data.dataset=medical.npz", f"data.path={path}", *extra]), message)
    _nothing_written()
