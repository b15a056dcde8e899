"""The compact CNN student, distilled by any combination of the families in the config.

The core hands the student the transfer set and the teacher's cached outputs (``targets``).
Families that need more than outputs (hints, RKD, attention transfer) and augmentation or
mixup (new images the cache has never seen) need the teacher itself: the student then says
``uses_teacher_model = True`` and the pipeline hands the teacher over with
:meth:`CNNStudent.attach_teacher` before ``fit`` (never to the baseline). A teacher used that
way needs ``features(x)``: a batch tensor ``(n, C, H, W)`` -> :class:`stillroom.torchkd.ModelOutputs`
(logits, per-stage feature maps, embedding).

Born-again generations (``born_again.generations``) train more students of the same
architecture, each taught by the one before; the last is the one shipped.

What ships, is measured and is logged is the same thing: ``predict`` runs the frozen
TorchScript export; ``native_model`` is the registered model a scoring job runs (both exports
behind ONNX Runtime, with the class names, the operating thresholds the medical evaluator chose
on validation and the preprocessing of the training images: :func:`ship_with` hands them over,
:mod:`.scorer`); ``extra_native_models`` adds the ONNX export (``mlflow.onnx``: onnxruntime
runs it without stillroom or torch) and the TorchScript export as further logged models of the
run. Both exports are checked against the trained network when exported.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from stillroom.contract import ConfigError, ModelDescription, NativeModel, inference_threads
from stillroom.torchkd import DistillationObjective, ModelOutputs, born_again

from . import export, nets
from .images import stack
from .scorer import ScoringSpec
from .settings import TrainingParams
from .teacher import BATCH, probabilities
from .training import History, Teaching, fit

EPS = 1e-7


class CNNStudent:
    """A depthwise-separable CNN (or any architecture of :mod:`.nets`) trained by distillation."""

    def __init__(self, params: dict[str, Any], seed: int) -> None:
        self.settings = TrainingParams.parse(dict(params), "student", seed)
        self.params = self.settings.parsed
        self.seed = seed
        self.teacher: Any = None
        self.net: nets.StagedNet | None = None
        self.scripted: torch.jit.ScriptModule | None = None
        self.onnx: bytes | None = None
        self.histories: list[History] = []
        self.loss = "not fitted"
        self.task_type = "binary"
        self.shape: tuple[int, ...] = ()
        self.shipping: ScoringSpec | None = None

    @property
    def feature_families(self) -> list[str]:
        return sorted({"hints", "relation", "attention"} & {k for k, v in self.params.families.items() if v > 0})

    @property
    def uses_teacher_model(self) -> bool:
        """The teacher itself is needed: feature families, or new images (augmentation, mixup)."""
        return bool(self.feature_families) or self.settings.train.augment.enabled or self.params.mixup_alpha > 0

    def attach_teacher(self, teacher: Any) -> None:
        if not hasattr(teacher, "features"):
            raise ConfigError(
                f"the student's settings ({self._needs()}) need the teacher model's features(x); "
                f"teacher {type(teacher).__name__} has none: use the response/dkd families without augmentation"
            )
        if self.feature_families and not getattr(teacher, "has_features", False):
            raise ConfigError(
                f"families {self.feature_families} need the teacher's intermediate features; "
                "this teacher (a TorchScript file or MLflow model) only gives outputs: use response/dkd"
            )
        self.teacher = teacher

    def _needs(self) -> str:
        needs = list(self.feature_families)
        if self.settings.train.augment.enabled:
            needs.append("augmentation")
        if self.params.mixup_alpha > 0:
            needs.append("mixup")
        return ", ".join(needs)

    # --- training -----------------------------------------------------------------------

    def fit(self, X: Any, targets: Any, X_valid: Any | None = None, targets_valid: Any | None = None) -> CNNStudent:
        x = torch.from_numpy(stack(X))
        self.shape = tuple(x.shape[1:])
        self.task_type = task_type_of(targets)
        y = label_tensor(targets)
        k = n_logits(targets, y)
        if X_valid is None or targets_valid is None:
            raise ConfigError("the CNN student needs a validation split for early stopping")
        xv, yv = torch.from_numpy(stack(X_valid)), label_tensor(targets_valid)
        teacher_logits = teacher_logit_tensor(targets)
        multilabel = self.task_type == "multilabel"
        ba = self.params.born_again

        def one_generation(teacher: Any, g: int) -> nets.StagedNet:
            torch.manual_seed(self.seed + g)
            net = self.settings.build(self.shape[0], k)
            if teacher is None:
                objective = DistillationObjective({}, multilabel=multilabel)
                teaching = None
            else:
                objective = self._objective(dict(self.params.families), targets, multilabel, net, teacher)
                teaching = self._teaching(teacher, x, teacher_logits, objective, g)
            label = "student" if teacher is not None else "baseline"
            history = fit(net, objective, x, y, xv, yv, self._train_settings(g), teaching, title=f"{label}: generation {g}")
            self.histories.append(history)
            return net

        has_teacher = teacher_logits is not None
        if has_teacher and ba.start == "teacher" and self.uses_teacher_model and self.teacher is None:
            raise ConfigError(f"the student's settings ({self._needs()}) need the teacher model: call attach_teacher first")
        if not has_teacher:
            generations = [one_generation(None, 0)]
        else:
            first = (self.teacher or _CachedTeacher()) if ba.start == "teacher" else None
            generations = born_again(one_generation, first, ba.generations + 1)
        self.net = generations[-1].eval()
        self.loss = self._describe_loss(targets, has_teacher)
        self._export(multilabel)
        return self

    def _objective(
        self, families: dict[str, float], targets: Any, multilabel: bool, net: nets.StagedNet, teacher: Any
    ) -> DistillationObjective:
        t_channels = getattr(getattr(teacher, "module", teacher), "stage_channels", None)
        try:
            return DistillationObjective(
                families,
                temperature=float(targets.temperature),
                alpha=float(targets.alpha),
                multilabel=multilabel,
                student_channels=net.stage_channels,
                teacher_channels=t_channels,
                hint_stage=self.params.hint_stage,
                rkd_distance=self.params.rkd_distance,
                rkd_angle=self.params.rkd_angle,
                dkd_alpha=self.params.dkd_alpha,
                dkd_beta=self.params.dkd_beta,
            )
        except ValueError as exc:
            raise ConfigError(f"invalid config field 'student.params.families': {exc}") from None

    def _teaching(self, teacher: Any, x: torch.Tensor, cached: torch.Tensor | None, objective: Any, g: int) -> Teaching:
        """Generation 0 uses the teacher's cached outputs when valid; later ones their predecessor."""
        if isinstance(teacher, _CachedTeacher):
            return Teaching(cached_logits=cached)
        if isinstance(teacher, nets.StagedNet):
            teacher.eval()

            def forward(xb: torch.Tensor) -> ModelOutputs:
                with torch.inference_mode():
                    out = teacher.forward_features(xb)
                return ModelOutputs(out.logits.clone(), [f.clone() for f in out.features], out.embedding.clone())

            return Teaching(cached_features=self._cache(forward, x, objective), forward=forward)
        return Teaching(
            cached_logits=cached, cached_features=self._cache(teacher.features, x, objective), forward=teacher.features
        )

    def _cache(self, features: Any, x: torch.Tensor, objective: Any) -> ModelOutputs | None:
        """The teacher's view of every training image, computed once, when the images never change."""
        if self.settings.train.augment.enabled or self.params.mixup_alpha > 0:
            return None
        parts = [features(b) for b in x.split(BATCH)]
        if not objective.needs_teacher_features:
            return ModelOutputs(torch.cat([p.logits for p in parts]), [], torch.cat([p.logits for p in parts]))
        stages = [torch.cat([p.features[i] for p in parts]) for i in range(len(parts[0].features))]
        return ModelOutputs(torch.cat([p.logits for p in parts]), stages, torch.cat([p.embedding for p in parts]))

    def _train_settings(self, g: int) -> Any:
        from dataclasses import replace

        return replace(self.settings.train, seed=self.seed + g)

    def _describe_loss(self, targets: Any, has_teacher: bool) -> str:
        if not has_teacher:
            return "cross-entropy to hard labels (no teacher)"
        fam = ", ".join(f"{k} x{v:g}" for k, v in self.params.families.items() if v > 0)
        ba = self.params.born_again
        extra = f", {ba.generations} born-again generation(s) from {ba.start}" if ba.generations else ""
        return f"distillation: {fam} (T {targets.temperature:g}, alpha {targets.alpha:g}){extra}"

    def _export(self, multilabel: bool) -> None:
        assert self.net is not None
        self.scripted = export.to_torchscript(self.net, multilabel, self.shape)
        self.onnx = export.to_onnx(self.net, multilabel, self.shape)

    # --- inference and description -----------------------------------------------------

    def _fitted(self) -> torch.jit.ScriptModule:
        if self.scripted is None:
            raise RuntimeError("student is not fitted")
        return self.scripted

    def predict(self, X: Any) -> np.ndarray:
        """Probabilities from the shipped (frozen TorchScript) model, in the core's layout."""
        model = self._fitted()
        torch.set_num_threads(inference_threads(self.settings.train.threads))  # the run's budget while it times models
        x = torch.from_numpy(stack(X))
        with torch.inference_mode():
            p = torch.cat([model(b) for b in x.split(BATCH)])
        logits = (
            torch.logit(p.double().clamp(EPS, 1 - EPS))
            if self.task_type == "multilabel"
            else torch.log(p.double().clamp(min=1e-300))
        )
        return probabilities(logits, self.task_type)

    def runtimes(self) -> dict[str, Any]:
        """ONNX Runtime (what a scoring job runs: the registered model's engine) first, then
        torch (the TorchScript export ``predict`` uses): the run times both."""
        self._fitted()
        assert self.onnx is not None
        return {"onnxruntime": export.onnx_predictor(self.onnx, self.task_type), "torch": self.predict}

    def describe(self) -> ModelDescription:
        self._fitted()
        assert self.net is not None and self.onnx is not None
        return ModelDescription(
            name="cnn-student",
            kind=f"{self.settings.net['architecture']} CNN {self.settings.net['widths']}, {self.loss}",
            n_parameters=nets.n_parameters(self.net),
            size_bytes=len(self.onnx),
            details={
                "generations": [h.as_dict() for h in self.histories],
                "input_shape": list(self.shape),
                **self.settings.describe(),
            },
        )

    def ship_with(self, spec: ScoringSpec) -> None:
        """What the registered model needs besides the network: class names, operating
        thresholds (chosen by the medical evaluator on validation), preprocessing."""
        if tuple(spec.shape) != tuple(self.shape):
            raise ValueError(f"scoring spec for images {spec.shape} handed to a student of input {self.shape}")
        self.shipping = spec

    def native_model(self) -> NativeModel:
        """The scoring model (:func:`export.scoring_model`): ONNX Runtime, TorchScript fallback."""
        scripted = self._fitted()
        if self.shipping is None or self.onnx is None:
            raise RuntimeError("the student has no operating point to ship: the medical evaluator hands it over (ship_with)")
        return export.scoring_model(self.onnx, scripted, self.shipping, self.seed)

    def _onnx_model(self) -> NativeModel:
        """The ONNX export with a tensor signature and a synthetic (noise) input example."""
        import onnx

        self._fitted()
        assert self.onnx is not None
        k = int(self.net.head.out_features)  # type: ignore[union-attr]
        return NativeModel(
            "onnx",
            onnx.load_from_string(self.onnx),
            signature=export.signature(self.shape, k),
            input_example={"image": export.example_input(self.shape, seed=self.seed)},
            log_kwargs={"onnx_execution_providers": ["CPUExecutionProvider"], "pip_requirements": export.requirements("onnx")},
        )

    def extra_native_models(self) -> dict[str, NativeModel]:
        """The ONNX export (``mlflow.onnx``) and the TorchScript export (torch's own archive
        format), logged beside the scoring model."""
        k = int(self.net.head.out_features)  # type: ignore[union-attr]
        return {
            "student_onnx": self._onnx_model(),
            "student_torchscript": NativeModel(
                "pytorch",
                self._fitted(),
                signature=export.signature(self.shape, k),
                # for a ScriptModule MLflow calls torch.jit.save: torch's archive, no Python pickle
                log_kwargs={"serialization_format": "pickle", "pip_requirements": export.requirements("torch")},
            ),
        }


class _CachedTeacher:
    """Stands for the teacher when only its cached outputs are used (no model attached)."""


def task_type_of(targets: Any) -> str:
    """The targets' task type, if the CNN student handles it (classification only)."""
    kind = getattr(targets, "task_type", None)
    if kind not in ("binary", "multiclass", "multilabel"):
        raise ConfigError(f"the CNN student handles binary, multiclass and multilabel tasks, not {kind or type(targets)}")
    return str(kind)


def label_tensor(targets: Any) -> torch.Tensor:
    """Hard labels: class index with -1 = none (binary/multiclass), or (n, k) float with NaN."""
    hard = np.asarray(targets.hard)
    if targets.task_type == "multilabel":
        return torch.from_numpy(hard.astype(np.float32))
    hard = np.where(np.isnan(hard.astype(float)), -1, hard).astype(np.int64)
    return torch.from_numpy(hard)


def teacher_logit_tensor(targets: Any) -> torch.Tensor | None:
    """The teacher's cached probabilities as logits for the torch losses (``None``: baseline)."""
    if getattr(targets, "teacher", None) is None:
        return None
    p = np.clip(np.asarray(targets.teacher, dtype=np.float64), EPS, 1 - EPS)
    kind = task_type_of(targets)
    if kind == "binary":
        z = np.stack([np.log1p(-p), np.log(p)], axis=1)
    elif kind == "multilabel":
        z = np.log(p) - np.log1p(-p)
    else:
        z = np.log(p)
    return torch.from_numpy(z.astype(np.float32))


def n_logits(targets: Any, y: torch.Tensor) -> int:
    kind = task_type_of(targets)
    if kind == "binary":
        return 2
    if getattr(targets, "teacher", None) is not None:
        return int(np.asarray(targets.teacher).shape[1])
    if kind == "multilabel":
        return int(y.shape[1])
    return int(getattr(targets, "n_classes", None) or int(y.max()) + 1)
