"""Networks, augmentation, training, teachers from files, students of every family, export."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from stillroom import tracking
from stillroom.errors import ConfigError, ModelLoadError
from stillroom.tasks.targets import MulticlassTargets, MultilabelTargets, SoftTargets
from stillroom_medical import export, nets
from stillroom_medical.augment import AugmentSettings, augment, mixup
from stillroom_medical.images import to_bundle
from stillroom_medical.scorer import Scorer, ScoringSpec
from stillroom_medical.student import CNNStudent
from stillroom_medical.synthetic import synthetic_data
from stillroom_medical.teacher import TEACHER_DEFAULTS, load_state_dict_teacher, load_torchscript_teacher, train_resnet_teacher

TINY_TEACHER = {"widths": [8, 16, 32], "blocks": [1, 1, 1], "epochs": 1, "progress": False, "threads": 1}
TINY_STUDENT = {"widths": [4, 8, 8], "epochs": 1, "progress": False, "threads": 1}


@pytest.fixture(scope="module")
def bundle():  # noqa: ANN201
    return to_bundle(synthetic_data(64, 32, 32, size=16, seed=0))


@pytest.fixture(scope="module")
def teacher(bundle, tmp_path_factory):  # noqa: ANN001, ANN201
    mp = pytest.MonkeyPatch()
    mp.setenv("STILLROOM_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield train_resnet_teacher(TINY_TEACHER, bundle, 0)
    mp.undo()


def test_default_student_is_under_five_percent_of_the_default_teacher() -> None:
    teacher = nets.resnet(1, 2, widths=[32, 64, 128], blocks=[1, 1, 1])
    student = nets.separable(1, 2, widths=[16, 32, 64], blocks=[1, 1, 1])
    assert nets.n_parameters(student) <= 0.05 * nets.n_parameters(teacher)
    out = student.forward_features(torch.zeros(3, 1, 28, 28))
    assert out.logits.shape == (3, 2) and [f.shape[-1] for f in out.features] == [28, 14, 7]
    with pytest.raises(ConfigError, match="unknown architecture"):
        nets.build("vgg", 1, 2)


def test_the_default_student_strides_early_and_the_teacher_does_not() -> None:
    """Structure behind the 10x claim (measured in bench/results/efficiency.md, not here): the
    default student's stem halves the image, so each later layer works on a quarter of the pixels."""
    import yaml

    from stillroom_medical import settings

    default = yaml.safe_load(Path(settings.__file__).with_name("default.yaml").read_text())
    student = settings.TrainingParams.parse(default["student"]["params"], "student", 0).build(1, 2)
    teacher_params = TEACHER_DEFAULTS | default["teacher"]["params"]
    teacher = settings.TrainingParams.parse(teacher_params, "teacher", 0).build(1, 2)
    x = torch.zeros(2, 1, 28, 28)
    assert [f.shape[-1] for f in student.forward_features(x).features] == [14, 7, 4]
    assert [f.shape[-1] for f in teacher.forward_features(x).features] == [28, 14, 7]
    assert nets.n_parameters(student) <= 0.02 * nets.n_parameters(teacher)


def test_exports_from_parallel_threads_all_succeed() -> None:
    """A search's trials run in threads and each exports its student (trace, then ONNX): without
    the export lock, torch's process-wide exporter flag and tracer scopes made 6 of these 8 fail."""
    failures: list[str] = []

    def export_four_times(architecture: str) -> None:
        net = nets.build(architecture, 1, 2, widths=[8, 16, 32], blocks=[1, 2, 2])
        for _ in range(4):
            try:
                export.to_torchscript(net, False, (1, 28, 28))
                data = export.to_onnx(net, False, (1, 28, 28))
                assert export.run_onnx(data, export.example_input((1, 28, 28))).shape == (2, 2)
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                failures.append(repr(exc)[:200])

    threads = [threading.Thread(target=export_four_times, args=(a,)) for a in ("resnet", "separable")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_augment_and_mixup() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 1, 10, 10)
    out = augment(x, AugmentSettings(), g)
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1 and not torch.equal(out, x)
    shifted = augment(x, AugmentSettings(flip=False, max_shift=1, intensity=0.0, noise=0.0), torch.Generator().manual_seed(1))
    assert shifted.shape == x.shape  # a shift moves pixels, it does not invent intensities
    assert set(shifted.flatten().tolist()) <= set(x.flatten().tolist())
    y = torch.nn.functional.one_hot(torch.arange(8) % 2, 2).float()
    mx, my = mixup(x, y, 0.4, torch.Generator().manual_seed(2))
    assert torch.allclose(my.sum(dim=1), torch.ones(8)) and (my.max(dim=1).values >= 0.5).all()
    assert mx.shape == x.shape


def test_teacher_trains_predicts_and_exposes_features(bundle, teacher) -> None:  # noqa: ANN001
    p = teacher.predict(bundle.X(bundle.test))
    assert p.shape == (32,) and np.all((p >= 0) & (p <= 1))
    out = teacher.features(torch.zeros(2, 1, 16, 16))
    assert len(out.features) == 3 and out.embedding.shape == (2, 32)
    desc = teacher.describe()
    assert desc.n_parameters > 1000 and desc.size_bytes > 0 and desc.details["cached"] is False


def _fit(student: CNNStudent, bundle, teacher, task: str = "binary") -> CNNStudent:  # noqa: ANN001
    y, yv = bundle.y(bundle.train), bundle.y(bundle.validation)
    pt, pv = teacher.predict(bundle.X(bundle.train)), teacher.predict(bundle.X(bundle.validation))
    if student.uses_teacher_model:
        student.attach_teacher(teacher)
    return student.fit(
        bundle.X(bundle.train), SoftTargets(y, pt, 4.0, 0.7), bundle.X(bundle.validation), SoftTargets(yv, pv, 4.0, 0.7)
    )


@pytest.mark.parametrize(
    "params",
    [
        {"families": {"response": 1.0}},
        {
            "families": {"response": 1.0, "hints": 1.0, "relation": 1.0, "attention": 10.0, "dkd": 1.0},
            "augment": True,
            "mixup_alpha": 0.2,
        },
        {"families": {"dkd": 1.0}, "born_again": {"generations": 1}},
        {"families": {"response": 1.0}, "born_again": {"generations": 1, "start": "labels"}},
    ],
    ids=["response", "all-families-augmented", "dkd-born-again", "born-again-from-labels"],
)
def test_student_families_train_and_export(bundle, teacher, params: dict) -> None:  # noqa: ANN001
    student = _fit(CNNStudent({**TINY_STUDENT, **params}, 0), bundle, teacher)
    p = student.predict(bundle.X(bundle.test))
    assert p.shape == (32,) and np.all((p >= 0) & (p <= 1))
    assert len(student.histories) == 1 + params.get("born_again", {}).get("generations", 0)
    # the ONNX export computes what the shipped TorchScript computes
    images = export.example_input((1, 16, 16), n=5, seed=3)
    onnx_p = export.run_onnx(student.onnx, images)[:, 1]
    assert np.allclose(onnx_p, student.predict(images), atol=1e-4)
    with pytest.raises(RuntimeError, match="no operating point to ship"):
        student.native_model()  # the medical evaluator hands it over in a run
    student.ship_with(ScoringSpec("binary", ["normal", "lesion"], [0.3], [1, 16, 16], {"size": 16, "channels": 1}))
    native = student.native_model()
    assert native.flavor == "pyfunc" and "[-1, 1, 16, 16]" in native.signature["inputs"]
    assert native.input_example["image"].shape == (2, 1, 16, 16)
    assert native.log_kwargs["model_config"]["thresholds"] == [0.3] and "p_lesion" in native.signature["outputs"]
    loaded = Scorer(Path(native.log_kwargs["artifacts"]["student"]), ScoringSpec.from_config(native.log_kwargs["model_config"]))
    frame = loaded.frame(images)
    assert list(frame.columns) == ["p_lesion", "p_normal", "call"] and np.allclose(frame["p_lesion"], onnx_p, atol=1e-6)
    assert (frame["call"] == np.where(onnx_p >= 0.3, "lesion", "normal")).all()
    extra = student.extra_native_models()
    assert extra["student_torchscript"].flavor == "pytorch" and extra["student_onnx"].flavor == "onnx"
    assert student.describe().n_parameters < teacher.describe().n_parameters


def test_baseline_learns_from_labels_only(bundle) -> None:  # noqa: ANN001
    student = CNNStudent({**TINY_STUDENT, "families": {"response": 1.0, "hints": 1.0}}, 0)
    student.fit(
        bundle.X(bundle.train),
        SoftTargets.labels_only(bundle.y(bundle.train)),
        bundle.X(bundle.validation),
        SoftTargets.labels_only(bundle.y(bundle.validation)),
    )
    assert "no teacher" in student.describe().kind


def test_feature_families_without_the_teacher_model_are_refused(bundle, teacher) -> None:  # noqa: ANN001
    student = CNNStudent({**TINY_STUDENT, "families": {"hints": 1.0}}, 0)
    assert student.uses_teacher_model
    y, pt = bundle.y(bundle.train), teacher.predict(bundle.X(bundle.train))
    with pytest.raises(ConfigError, match="need the teacher model"):
        student.fit(
            bundle.X(bundle.train),
            SoftTargets(y, pt),
            bundle.X(bundle.validation),
            SoftTargets(bundle.y(bundle.validation), teacher.predict(bundle.X(bundle.validation))),
        )
    with pytest.raises(ConfigError, match="unknown family"):
        CNNStudent({"families": {"magic": 1.0}}, 0)
    with pytest.raises(ConfigError, match="student.params.epochz"):
        CNNStudent({"epochz": 3}, 0)


@pytest.mark.parametrize("task_type", ["multiclass", "multilabel"])
def test_multiclass_and_multilabel_students(task_type: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STILLROOM_CACHE_DIR", str(tmp_path))
    b = to_bundle(synthetic_data(64, 32, 32, size=16, task_type=task_type, seed=0))
    t = train_resnet_teacher(TINY_TEACHER, b, 0)
    k = 3 if task_type == "multiclass" else 2
    pt, pv = t.predict(b.X(b.train)), t.predict(b.X(b.validation))
    assert pt.shape == (64, k)
    kind = MulticlassTargets if task_type == "multiclass" else MultilabelTargets
    student = CNNStudent({**TINY_STUDENT, "families": {"response": 1.0, "attention": 1.0}}, 0)
    student.attach_teacher(t)
    student.fit(b.X(b.train), kind(b.y(b.train), pt, 2.0, 0.5), b.X(b.validation), kind(b.y(b.validation), pv, 2.0, 0.5))
    p = student.predict(b.X(b.test))
    assert p.shape == (32, k)
    if task_type == "multiclass":
        assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_torchscript_and_state_dict_teachers(bundle, teacher, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "teacher.pt"
    torch.jit.save(torch.jit.trace(teacher.module, torch.zeros(1, 1, 16, 16)), str(path))
    loaded = load_torchscript_teacher(str(path), {}, bundle)
    assert np.allclose(loaded.predict(bundle.X(bundle.test)), teacher.predict(bundle.X(bundle.test)), atol=1e-5)
    assert not loaded.has_features
    state = tmp_path / "teacher_state.pt"
    torch.save(teacher.module.state_dict(), state)
    again = load_state_dict_teacher(
        {"path": str(state), "architecture": "resnet", "widths": [8, 16, 32], "blocks": [1, 1, 1]}, bundle, 0
    )
    assert np.allclose(again.predict(bundle.X(bundle.test)), teacher.predict(bundle.X(bundle.test)), atol=1e-5)
    with pytest.raises(ModelLoadError, match="does not fit architecture"):
        load_state_dict_teacher({"path": str(state), "architecture": "resnet"}, bundle, 0)


def test_a_torchscript_file_that_is_not_a_model(bundle, tmp_path: Path) -> None:  # noqa: ANN001
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a model")
    with pytest.raises(ModelLoadError, match="is not a TorchScript model"):
        load_torchscript_teacher(str(junk), {}, bundle)
    state = tmp_path / "state.pt"
    torch.save({"weight": torch.zeros(2)}, state)  # a state dict, not TorchScript
    with pytest.raises(ModelLoadError, match="is not a TorchScript model"):
        load_torchscript_teacher(str(state), {}, bundle)
    wrong = tmp_path / "wrong.pt"
    torch.jit.save(torch.jit.trace(torch.nn.Flatten(), torch.zeros(1, 1, 16, 16)), str(wrong))
    with pytest.raises(ModelLoadError, match="needs"):
        load_torchscript_teacher(str(wrong), {}, bundle)


def test_mlflow_pytorch_teacher_is_linked_not_copied(bundle, teacher, tracking_store: str) -> None:  # noqa: ANN001
    import mlflow

    from stillroom_medical.teacher import mlflow_teacher

    scripted = torch.jit.trace(teacher.module, torch.zeros(1, 1, 16, 16))
    mlflow.set_experiment("scan-teachers")  # not whatever experiment an earlier test left active
    with mlflow.start_run():
        info = mlflow.pytorch.log_model(scripted, name="teacher", serialization_format="pickle", pip_requirements=["torch"])
    mlflow.register_model(info.model_uri, "scan-teacher")
    # MLflow's note that it dispatched a TorchScript archive to torch.jit.load is not the user's concern
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = mlflow_teacher("models:/scan-teacher/1", {}, bundle, tracking.load_teacher_model)
    assert not [w for w in caught if "torch.load" in str(w.message)]
    assert loaded.model_id == info.model_id and loaded.native_model() is None
    assert np.allclose(loaded.predict(bundle.X(bundle.test)), teacher.predict(bundle.X(bundle.test)), atol=1e-5)
    with pytest.raises(ModelLoadError, match="no-such-teacher"):
        mlflow_teacher("models:/no-such-teacher/1", {}, bundle, tracking.load_teacher_model)
