"""Teachers: a ResNet-style CNN trained here on CPU, or the user's own torch model.

Sources (``teacher`` section of the config):

* ``name: medical.resnet``: trained in the plugin (cached under ``run.cache_dir``, keyed by
  :func:`~stillroom.contract.teacher_cache_key`: settings, seed, image and label columns, task
  type, training and validation data, and the training loop's ``REVISION``, so a teacher an
  earlier loop trained is trained again; trying another student costs no teacher time);
* ``name: medical.state_dict`` with ``params.path`` and a named ``params.architecture``
  (``resnet`` or ``separable`` with their widths/blocks): weights loaded with
  ``torch.load(weights_only=True)``, which never runs code from the file;
* ``uri: path/to/model.pt``: a TorchScript file (``torch.jit.save``);
* ``uri: models:/NAME@ALIAS`` or ``runs:/...``: an MLflow ``pytorch`` model, linked as the
  run's input, not copied.

Every teacher maps an image batch ``(n, C, H, W)`` in [0, 1] to logits; a TorchScript or
MLflow model that returns probabilities says so with ``params.outputs: probabilities``. The
teacher runs in inference mode. :meth:`TorchTeacher.features` gives the student what
feature- and relation-based families need (per-stage feature maps, embedding); a TorchScript
file has only its outputs, so it teaches through the response and DKD families.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from stillroom.contract import (
    ConfigError,
    DataBundle,
    ModelDescription,
    ModelLoadError,
    NativeModel,
    TeacherLoader,
    cached_model,
    console,
    default_cache_dir,
    first_line,
    inference_threads,
    sha256_file,
    teacher_cache_key,
)
from stillroom.torchkd import DistillationObjective, ModelOutputs

from . import nets
from .export import Probabilities, onnx_predictor, requirements, to_onnx, torchscript_bytes
from .images import stack
from .settings import TrainingParams, output_count, tensors_for
from .training import REVISION as TRAINING_REVISION
from .training import fit

BATCH = 256
TEACHER_DEFAULTS: dict[str, Any] = {"architecture": "resnet", "widths": [32, 64, 128], "blocks": [2, 2, 2]}


class TorchTeacher:
    """A torch network (module or TorchScript) as a stillroom teacher."""

    def __init__(
        self,
        module: nn.Module,
        name: str,
        kind: str,
        task_type: str,
        *,
        uri: str | None = None,
        identity: str | None = None,
        outputs: str = "logits",
        model_id: str | None = None,
        version: str | None = None,
        details: dict[str, Any] | None = None,
        threads: int = 2,
        shape: tuple[int, ...] | None = None,
    ) -> None:
        if outputs not in ("logits", "probabilities"):
            raise ConfigError("invalid config field 'teacher.params.outputs': use logits or probabilities")
        self.module = module.eval()
        self.name, self.kind, self.task_type = name, kind, task_type
        self.uri, self.identity, self.outputs, self.model_id, self.version = uri, identity, outputs, model_id, version
        self.details = details or {}
        self.threads = threads
        self.shape = shape  # (C, H, W) of one input image: what an ONNX export is traced with
        self._size: int | None = None

    @property
    def has_features(self) -> bool:
        """Whether intermediate features exist (a network built here, not a TorchScript file)."""
        return hasattr(self.module, "forward_features") and not isinstance(self.module, torch.jit.ScriptModule)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            out = self.module(x)
        out = out.clone()  # inference tensors cannot be saved for a student's backward pass
        if self.outputs == "logits":
            return out
        p = out.clamp(1e-7, 1 - 1e-7)
        return torch.log(p / (1 - p)) if self.task_type == "multilabel" else torch.log(p)

    def features(self, x: torch.Tensor) -> ModelOutputs:
        """Logits, per-stage feature maps and embedding of a batch, in inference mode."""
        if not self.has_features:
            logits = self.logits(x)
            return ModelOutputs(logits, [], logits)
        with torch.inference_mode():
            out = self.module.forward_features(x)
        return ModelOutputs(out.logits.clone(), [f.clone() for f in out.features], out.embedding.clone())

    def predict(self, X: Any) -> np.ndarray:
        """Probabilities in the task type's layout (binary: P(positive), shape (n,))."""
        torch.set_num_threads(inference_threads(self.threads))  # the run's budget while it times models
        x = torch.from_numpy(stack(X))
        logits = torch.cat([self.logits(b) for b in x.split(BATCH)]) if len(x) else torch.zeros(0, 1)
        return probabilities(logits, self.task_type)

    def runtimes(self) -> dict[str, Any]:
        """ONNX Runtime (the teacher exported the way the student ships) and torch (``predict``),
        so the run compares teacher and student in the same runtime. A module that cannot be
        exported (a TorchScript file the ONNX exporter refuses) is timed in torch only."""
        out: dict[str, Any] = {}
        if self.shape and not isinstance(self.module, torch.jit.ScriptModule):
            try:
                data = to_onnx(self.module, self.task_type == "multilabel", self.shape)
                out["onnxruntime"] = onnx_predictor(data, self.task_type)
            except Exception as exc:  # the export is for timing only: the run goes on in torch
                console.log(f"teacher: no ONNX export to time ({first_line(exc, 200)}); timed in torch only")
        return out | {"torch": self.predict}

    def describe(self) -> ModelDescription:
        if self._size is None:
            self._size = len(torchscript_bytes(self._scripted()))
        details = dict(self.details)
        if self.identity:
            details["identity"] = self.identity
        return ModelDescription(
            name=self.name,
            kind=self.kind,
            n_parameters=nets.n_parameters(self.module),
            size_bytes=self._size,
            uri=self.uri,
            version=self.version,
            details=details,
        )

    def native_model(self) -> NativeModel | None:
        """A teacher trained here is logged as TorchScript (torch's archive, not a Python pickle)."""
        if self.model_id or (self.uri and not self.kind.startswith("state dict")):
            return None  # already in MLflow or a file the user keeps
        kwargs = {"serialization_format": "pickle", "pip_requirements": requirements("torch")}  # torch.jit.save, no pickle
        return NativeModel("pytorch", self._scripted(), log_kwargs=kwargs)

    def _scripted(self) -> torch.jit.ScriptModule:
        if isinstance(self.module, torch.jit.ScriptModule):
            return self.module
        return torch.jit.script(Probabilities(self.module, self.task_type == "multilabel").eval())


def probabilities(logits: torch.Tensor, task_type: str) -> np.ndarray:
    """Logits -> the core's output layout: P(positive) (n,) for binary, (n, k) otherwise."""
    if task_type == "multilabel":
        return torch.sigmoid(logits).double().numpy()
    p = torch.softmax(logits.double(), dim=1).numpy()
    return p[:, 1] if task_type == "binary" else p


def train_resnet_teacher(params: dict[str, Any], bundle: DataBundle, seed: int) -> TorchTeacher:
    """The plugin's own teacher: a ResNet-style CNN trained on the train split, cached."""
    settings = TrainingParams.parse({**TEACHER_DEFAULTS, **params}, "teacher", seed)
    shape = tuple(bundle.details["image_shape"])
    k = output_count(bundle)
    # validation too: training stops early on it
    key = teacher_cache_key(
        "medical.resnet", settings.identity(), seed, bundle, splits=("train", "validation"), training=TRAINING_REVISION
    )

    def train() -> dict[str, np.ndarray]:
        torch.manual_seed(seed)
        net = settings.build(shape[0], k)
        x, y = tensors_for(bundle, bundle.train)
        xv, yv = tensors_for(bundle, bundle.validation)
        objective = DistillationObjective({}, multilabel=bundle.task_type == "multilabel")
        history = fit(net, objective, x, y, xv, yv, settings.train, title="teacher: training resnet")
        return {"state": {k_: v.numpy() for k_, v in net.state_dict().items()}, "history": history.as_dict()}

    stored, hit = cached_model(default_cache_dir(), key, train)
    net = settings.build(shape[0], k)
    net.load_state_dict({name: torch.from_numpy(np.asarray(v)) for name, v in stored["state"].items()})  # type: ignore[index]
    history = stored["history"]  # type: ignore[index]
    return TorchTeacher(
        net,
        name="medical-resnet",
        kind=f"ResNet-style CNN {settings.net['widths']} x {settings.net['blocks']} blocks, trained on CPU",
        task_type=bundle.task_type,
        identity=f"medical.resnet|{key}",
        details={"training": history, "cached": hit, **settings.describe()},
        threads=settings.train.threads,
        shape=image_shape(bundle),
    )


def load_state_dict_teacher(params: dict[str, Any], bundle: DataBundle, seed: int) -> TorchTeacher:
    """Weights from a state-dict file into a named architecture (``params.path``, ``params.architecture``)."""
    path = params.get("path")
    if not path:
        raise ConfigError("missing config field 'teacher.params.path' (the state dict file)")
    p = Path(str(path))
    if not p.is_file():
        raise ModelLoadError(f"teacher state dict {p} does not exist")
    arch = {k: v for k, v in params.items() if k in ("architecture", "widths", "blocks", "stem_stride")}
    arch.setdefault("architecture", "resnet")
    net = nets.build(arch.pop("architecture"), bundle.details["image_shape"][0], output_count(bundle), **arch)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except Exception as exc:
        raise ModelLoadError(
            f"teacher state dict {p} does not fit architecture {params.get('architecture', 'resnet')!r}: {first_line(exc, 300)}"
        ) from None
    return TorchTeacher(
        net,
        name=p.stem,
        kind=f"state dict -> {params.get('architecture', 'resnet')}",
        task_type=bundle.task_type,
        uri=str(p.resolve()),
        identity=sha256_file(p),
        threads=int(params.get("threads", 2)),
        shape=image_shape(bundle),
    )


def load_torchscript_teacher(path: str, params: dict[str, Any], bundle: DataBundle) -> TorchTeacher:
    """A TorchScript file; anything else (a pickle, a state dict, random bytes) is refused clearly."""
    p = Path(path)
    if not p.is_file():
        raise ModelLoadError(f"teacher file {p} does not exist")
    try:
        module = torch.jit.load(str(p), map_location="cpu")
    except Exception as exc:
        raise ModelLoadError(f"teacher file {p} is not a TorchScript model (torch.jit.save): {first_line(exc, 300)}") from None
    teacher = TorchTeacher(
        module,
        name=p.stem,
        kind="TorchScript file",
        task_type=bundle.task_type,
        uri=str(p.resolve()),
        identity=sha256_file(p),
        outputs=str(params.get("outputs", "logits")),
        threads=int(params.get("threads", 2)),
    )
    _probe(teacher, bundle)
    return teacher


def mlflow_teacher(uri: str, params: dict[str, Any], bundle: DataBundle, load_model: TeacherLoader) -> TorchTeacher:
    """An MLflow ``pytorch`` model (``models:/`` or ``runs:/``), linked as the run's input;
    ``load_model`` is the core's MLflow loader the teacher hook receives."""
    _, facts = load_model(uri)
    module = facts.get("object")
    if not isinstance(module, nn.Module):
        raise ModelLoadError(f"teacher {uri} is not an MLflow pytorch model (flavor {facts.get('flavor')!r})")
    teacher = TorchTeacher(
        module,
        name=str(facts.get("name", uri)),
        kind="mlflow:pytorch",
        task_type=bundle.task_type,
        uri=facts.get("pinned_uri", uri),
        outputs=str(params.get("outputs", "logits")),
        model_id=facts.get("model_id"),
        version=facts.get("version"),
        identity=f"{facts.get('pinned_uri', uri)}|{facts.get('model_id')}",
        threads=int(params.get("threads", 2)),
        shape=image_shape(bundle),
    )
    _probe(teacher, bundle)
    return teacher


def image_shape(bundle: DataBundle) -> tuple[int, ...] | None:
    """(C, H, W) of the bundle's images, when its loader recorded it."""
    shape = bundle.details.get("image_shape")
    return tuple(int(d) for d in shape) if shape else None


def _probe(teacher: TorchTeacher, bundle: DataBundle) -> None:
    """Run the model on two training images: it must accept them and give one output per class."""
    x = torch.from_numpy(stack(bundle.X(bundle.train.iloc[:2])))
    try:
        out = teacher.logits(x)
    except Exception as exc:
        shape = tuple(x.shape[1:])
        raise ModelLoadError(f"teacher {teacher.name} fails on images of shape {shape}: {first_line(exc, 300)}") from None
    k = output_count(bundle)
    if out.dim() != 2 or out.shape[1] != k:
        raise ModelLoadError(
            f"teacher {teacher.name} returns shape {tuple(out.shape)}; this {bundle.task_type} task needs (n, {k})"
        )
