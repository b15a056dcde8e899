"""End to end from a user's files: a folder of DICOM and PNG images with a labels CSV ->
`stillroom distill medical` -> the registered student -> `stillroom score` on fresh batches of
DICOM files, PNG files and an .npz -> one row per image with the documented columns, the call at
the run's operating point, through ONNX Runtime (TorchScript when it cannot run). Bad batches end
in one message, exit code 2, no output and no scoring run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from medical.dicoms import write_dicom
from PIL import Image
from typer.testing import CliRunner

from e2e.test_medical_run import TINY as SYNTHETIC_RUN
from stillroom.cli import app
from stillroom.errors import ModelLoadError
from stillroom_medical import scorer as scorer_mod
from stillroom_medical.synthetic import generate

pytestmark = pytest.mark.slow
runner = CliRunner()
SIZE = 16
SITES = ("North General", "South Clinic")
# the small networks of the synthetic-data run, trained a little longer on files; no gate
TINY = [item for item in SYNTHETIC_RUN if not item.startswith("data.synthetic")] + [
    "teacher.params.epochs=2",
    "student.params.epochs=2",
    "student.params.families={response: 1.0}",
    "gate.rules=[]",
]


def _to_uint16(image: np.ndarray) -> np.ndarray:
    """A [0, 1] image as stored detector values: rescale slope 2, intercept -100 undo it, and
    the window (center 1948, width 4097 over the rescaled values) maps it back to [0, 1]."""
    return ((image * 4096 + 100) / 2).round().astype(np.uint16)


DICOM_WINDOW = {"RescaleSlope": 2, "RescaleIntercept": -100, "WindowCenter": 1948, "WindowWidth": 4097}


def _write_images(folder: Path, n: int, seed: int, dicom_every: int = 2) -> pd.DataFrame:
    """Synthetic scans as files: every ``dicom_every``-th a DICOM (0: none) (with site, sex and age in its
    header), the rest PNG; returns the labels table."""
    folder.mkdir(parents=True, exist_ok=True)
    split = generate(n, size=SIZE, seed=seed)
    rows = []
    for i, (image, label) in enumerate(zip(split.images[:, 0], split.labels, strict=True)):
        if dicom_every and i % dicom_every == 0:
            name = f"scan_{i:03d}.dcm"
            header = DICOM_WINDOW | {
                "InstitutionName": SITES[i % 4 // 2],
                "PatientSex": "FM"[i % 3 % 2],
                "PatientAge": f"0{40 + i % 40}Y",
            }
            write_dicom(folder / name, _to_uint16(image), header=header)
        else:
            name = f"scan_{i:03d}.png"
            Image.fromarray((image * 255).round().astype(np.uint8)).save(folder / name)
        rows.append({"image": name, "label": int(label)})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def run(store: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("user-files")
    _write_images(root / "train", 260, seed=1).to_csv(root / "train" / "labels.csv", index=False)
    args = ["distill", "medical", "--set", "data.dataset=medical.folder", "--set", f"data.path={root / 'train'}"]
    args += ["--set", "data.dicom.modalities=[CR, DX]", "--set", "data.class_names=[normal, lesion]"]
    for item in TINY:
        args += ["--set", item]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    batch = root / "batch"
    _write_images(batch, 30, seed=7, dicom_every=1)  # a fresh batch: DICOM files only
    pngs = root / "pngs"
    _write_images(pngs, 12, seed=8, dicom_every=0)  # and PNG files only
    return {"root": root, "batch": batch, "pngs": pngs, "output": result.output}


def _score(source: Path, out: Path, *extra: str) -> Any:
    return runner.invoke(app, ["score", "models:/medical-student/1", str(source), str(out), "--no-progress", *extra])


def _spec() -> scorer_mod.ScoringSpec:
    import mlflow

    return scorer_mod.ScoringSpec.from_config(mlflow.pyfunc.load_model("models:/medical-student/1").model_config)


def test_the_run_learnt_subgroups_and_preprocessing_from_the_files(run: dict[str, Any]) -> None:
    import mlflow

    client = mlflow.MlflowClient()
    run_id = client.get_model_version("medical-student", "1").run_id
    groups = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="tables/subgroups.csv"))
    assert {"site", "sex", "age_group", "manufacturer"} <= set(groups["column"])  # from the DICOM headers
    assert set(groups.loc[groups["column"] == "site", "group"]) == {*SITES, "unknown"}  # PNG files have no header
    spec = _spec()
    assert spec.shape == [1, SIZE, SIZE] and spec.class_names == ["normal", "lesion"]
    assert spec.preprocessing["dicom"]["modalities"] == ["CR", "DX"] and spec.preprocessing["size"] == SIZE
    metrics = client.get_run(run_id).data.metrics
    assert spec.thresholds == [pytest.approx(metrics["student.operating_threshold"])]  # the run's operating point ships


def test_scoring_dicom_files_gives_one_row_per_image_with_the_documented_columns(run: dict[str, Any]) -> None:
    out = run["root"] / "scores.csv"
    result = _score(run["batch"], out)
    assert result.exit_code == 0, result.output
    assert "engine: pyfunc:onnxruntime" in " ".join(result.output.split())
    scores = pd.read_csv(out)
    expected = ["image_id", "modality", "sex", "age_group", "site", "manufacturer", "p_lesion", "p_normal", "call"]
    assert list(scores.columns) == expected and len(scores) == 30
    assert scores["image_id"].tolist() == sorted(p.name for p in run["batch"].iterdir())
    assert np.allclose(scores["p_lesion"] + scores["p_normal"], 1, atol=1e-5)
    threshold = _spec().thresholds[0]
    assert (scores["call"] == np.where(scores["p_lesion"] >= threshold, "lesion", "normal")).all()
    assert set(scores["site"]) == set(SITES) and set(scores["modality"]) == {"CR"}


def test_png_files_and_an_npz_score_the_same_images_alike(run: dict[str, Any], tmp_path: Path) -> None:
    """The same 12 images as PNG files and as an .npz archive (the MedMNIST layout): the
    probabilities agree to the PNG's 8-bit rounding, and every row is scored."""
    out = tmp_path / "pngs.parquet"
    assert _score(run["pngs"], out).exit_code == 0
    png = pd.read_parquet(out)
    images = np.stack([np.asarray(Image.open(run["pngs"] / name)) for name in png["image_id"]])
    np.savez(tmp_path / "batch.npz", test_images=images, test_labels=np.zeros((12, 1), dtype=np.uint8))
    result = _score(tmp_path / "batch.npz", tmp_path / "npz.csv")
    assert result.exit_code == 0, result.output
    npz = pd.read_csv(tmp_path / "npz.csv")
    assert npz["image_id"].tolist() == [f"test/{i}" for i in range(12)]
    assert np.allclose(npz["p_lesion"], png["p_lesion"], atol=1e-6) and (npz["call"] == png["call"]).all()


def test_torchscript_scores_when_onnx_runtime_cannot(run: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    onnx = mlflow.pyfunc.load_model("models:/medical-student/1").unwrap_python_model().scorer

    def refuse(data: bytes) -> Any:
        raise RuntimeError("no CPU provider here")

    monkeypatch.setattr(scorer_mod, "onnx_runner", refuse)
    fallback = mlflow.pyfunc.load_model("models:/medical-student/1").unwrap_python_model().scorer
    assert fallback.engine == "torchscript" and "no CPU provider here" in fallback.engine_note
    images = np.random.default_rng(0).random((9, 1, SIZE, SIZE), dtype=np.float32)
    assert np.allclose(fallback.probabilities(images), onnx.probabilities(images), atol=1e-4)


def test_a_tampered_export_is_refused(run: dict[str, Any], tmp_path: Path) -> None:
    import shutil

    import mlflow

    local = Path(mlflow.artifacts.download_artifacts("models:/medical-student/1", dst_path=str(tmp_path)))
    directory = next(p.parent for p in local.rglob(scorer_mod.ONNX_FILE))
    spec = _spec()
    shutil.copy(directory / scorer_mod.TORCHSCRIPT_FILE, tmp_path / "keep.pt")
    (directory / scorer_mod.ONNX_FILE).write_bytes((directory / scorer_mod.ONNX_FILE).read_bytes()[:-8] + b"tampered")
    with pytest.raises(ModelLoadError, match="model.onnx differs from what was logged"):
        scorer_mod.Scorer(directory, spec)


def _fails(source: Path, out: Path, message: str) -> None:
    import mlflow

    before = len(mlflow.search_runs(experiment_names=["stillroom-scoring"], output_format="list"))
    result = _score(source, out)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "error:" in text and message in text and "Traceback" not in result.output, result.output
    assert not out.exists() and not any(p.name.startswith(f".{out.name}") for p in out.parent.iterdir())
    assert len(mlflow.search_runs(experiment_names=["stillroom-scoring"], output_format="list")) == before


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda d: write_dicom(d / "scan_900.dcm", np.zeros((SIZE, SIZE), np.uint16), pixel_data=False),
            "scan_900.dcm has no pixel data",
        ),
        (
            lambda d: write_dicom(d / "scan_900.dcm", np.zeros((SIZE, SIZE), np.uint16), modality="CT"),
            "modality CT, but this model takes CR, DX",
        ),
        (
            lambda d: write_dicom(d / "scan_900.dcm", np.zeros((2, SIZE, SIZE), np.uint16), header={"NumberOfFrames": 2}),
            "scan_900.dcm holds 2 frames",
        ),
        (lambda d: (d / "scan_900.png").write_bytes(b"\x89PNG not really"), "image scan_900.png is not a readable PNG/JPEG"),
    ],
    ids=["dicom-without-pixels", "wrong-modality", "multi-frame", "unreadable-png"],
)
def test_a_bad_file_in_a_batch_is_named_and_nothing_is_written(run: dict[str, Any], tmp_path: Path, make, message: str) -> None:  # noqa: ANN001
    import shutil

    batch = shutil.copytree(run["batch"], tmp_path / "batch")
    make(batch)
    _fails(batch, tmp_path / "scores.csv", message)


def test_an_archive_of_another_size_or_channels_is_refused_before_scoring(run: dict[str, Any], tmp_path: Path) -> None:
    np.savez(tmp_path / "big.npz", images=np.zeros((4, 20, 20), dtype=np.uint8))
    _fails(tmp_path / "big.npz", tmp_path / "out.csv", "images are 20 x 20 pixels; the model takes 16 x 16")
    np.savez(tmp_path / "rgb.npz", images=np.zeros((4, SIZE, SIZE, 3), dtype=np.uint8))
    _fails(tmp_path / "rgb.npz", tmp_path / "out.csv", "images have 3 channel(s); the model takes 1")
