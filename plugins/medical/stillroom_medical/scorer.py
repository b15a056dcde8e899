"""What a registered medical model runs when it scores: images in, per-class probabilities and the
call at the operating point out, through ONNX Runtime (TorchScript as fallback).

The registered model is an MLflow model-from-code (:mod:`stillroom_medical.pyfunc_student`)
whose artifacts are the network's two exports, ``model.onnx`` and ``model.pt`` (TorchScript),
and whose ``model_config`` is a :class:`ScoringSpec`: the task, the class names, the operating
thresholds chosen on validation by the run's evaluator, how files become inputs
(:class:`~stillroom_medical.imagefiles.Preprocessing`) and the sha256 of both exports.

ONNX Runtime is the engine (a declared dependency; no torch needed). If it cannot run here (not
installed, or it refuses the graph), the TorchScript export scores instead and
:attr:`Scorer.engine_note` says why; the scoring run records both. An export whose bytes differ
from what was logged is refused: a tampered or corrupted model is for a reviewer, not a fallback.

Output columns (one row per image):

* binary: ``p_<positive class>`` (first: the score whose distribution the scoring run logs),
  ``p_<negative class>``, ``call`` (the positive class name at ``p >= threshold``, else the other);
* multiclass: ``p_<class>`` per class, ``call`` (the most probable class);
* multilabel: ``p_<label>`` per label, ``call_<label>`` (1 at ``p >= that label's threshold``, else 0).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stillroom.contract import ModelLoadError

ONNX_FILE = "model.onnx"
TORCHSCRIPT_FILE = "model.pt"
BATCH = 512


@dataclass(frozen=True)
class ScoringSpec:
    """Everything a scoring job needs besides the network (stored as the model's ``model_config``)."""

    task_type: str
    class_names: list[str]
    thresholds: list[float]  # binary: one, on P(positive); multilabel: one per label; multiclass: none (argmax)
    shape: list[int]  # (C, H, W) of one input image
    preprocessing: dict[str, Any]
    operating_point: dict[str, Any] = field(default_factory=dict)  # how the thresholds were chosen (kind, value)
    sha256: dict[str, str] = field(default_factory=dict)

    def as_config(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ScoringSpec:
        try:
            return cls(**{k: config[k] for k in cls.__dataclass_fields__ if k in config})
        except TypeError as exc:
            raise ModelLoadError(f"the model's scoring settings are incomplete ({exc}); register it again") from None

    def columns(self) -> list[str]:
        """The output columns, in order (see the module docstring)."""
        probs = [f"p_{name}" for name in self.class_names]
        if self.task_type == "binary":
            return [probs[1], probs[0], "call"]
        if self.task_type == "multiclass":
            return [*probs, "call"]
        return [*probs, *(f"call_{name}" for name in self.class_names)]

    def frame(self, p: np.ndarray) -> pd.DataFrame:
        """Probabilities ``(n, k)`` (softmax, or sigmoid per label) -> the output columns."""
        names = self.class_names
        out = pd.DataFrame({f"p_{name}": p[:, j].astype(np.float64) for j, name in enumerate(names)})
        if self.task_type == "binary":
            out = out[[f"p_{names[1]}", f"p_{names[0]}"]]
            out["call"] = np.where(p[:, 1] >= self.thresholds[0], names[1], names[0])
        elif self.task_type == "multiclass":
            out["call"] = np.asarray(names, dtype=object)[p.argmax(axis=1)]
        else:
            for j, name in enumerate(names):
                out[f"call_{name}"] = (p[:, j] >= self.thresholds[j]).astype(np.int8)
        return out


def save(directory: Path, onnx_model: bytes, torchscript: bytes, spec: ScoringSpec) -> ScoringSpec:
    """Write both exports into ``directory``; the spec gains their sha256."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ONNX_FILE).write_bytes(onnx_model)
    (directory / TORCHSCRIPT_FILE).write_bytes(torchscript)
    digests = {ONNX_FILE: _sha256(onnx_model), TORCHSCRIPT_FILE: _sha256(torchscript)}
    return ScoringSpec(**{**asdict(spec), "sha256": digests})


class Scorer:
    """The loaded network (ONNX Runtime, else TorchScript) and its scoring spec."""

    def __init__(self, directory: Path, spec: ScoringSpec, prefer: str = "onnx") -> None:
        self.spec = spec
        blobs = {name: _checked(directory / name, spec.sha256.get(name)) for name in (ONNX_FILE, TORCHSCRIPT_FILE)}
        self._run, self.engine, self.engine_note = None, "", ""
        if prefer == "onnx":
            try:
                self._run = onnx_runner(blobs[ONNX_FILE])
                self.engine, self.engine_note = _onnx_engine(), "the ONNX export"
            except Exception as exc:  # not installed, or it cannot run this graph here: the other export can
                self.engine_note = f"ONNX Runtime could not run the ONNX export ({type(exc).__name__}: {str(exc)[:200]}); "
        if self._run is None:
            self._run = _torchscript_runner(blobs[TORCHSCRIPT_FILE])
            self.engine, self.engine_note = "torchscript", self.engine_note + "the TorchScript export"

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(images, dtype=np.float32)
        if x.ndim != 4 or list(x.shape[1:]) != list(self.spec.shape):
            raise ModelLoadError(f"images of shape {x.shape[1:]} given to a model of input {tuple(self.spec.shape)}")
        return np.concatenate([self._run(x[i : i + BATCH]) for i in range(0, len(x), BATCH)]) if len(x) else np.zeros((0, 0))

    def frame(self, images: np.ndarray) -> pd.DataFrame:
        return self.spec.frame(self.probabilities(images))


def _checked(path: Path, expected: str | None) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"model file {path.name} is missing: {exc}") from None
    if expected and _sha256(data) != expected:
        raise ModelLoadError(f"model file {path.name} differs from what was logged (sha256 mismatch): refusing to score with it")
    return data


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _onnx_engine() -> str:
    import onnxruntime as ort

    return f"onnxruntime {ort.__version__}"


def onnx_runner(data: bytes, threads: int = 0) -> Any:
    """An ONNX Runtime session on the CPU: image batch in, the graph's first output out.

    ``threads``: its intra-op threads (0: ONNX Runtime's default, one per physical core); a run
    timing models on one core asks for 1 (:func:`stillroom.contract.inference_threads`).

    Its worker threads do not spin while they wait: on a machine shared with other jobs (a
    scoring job always is) a spinning thread burns the core its partner needs, and a small
    network, many short operators each ending in a wait, lost half its images/s to it
    (measured: bench/results/efficiency-all-cores.md).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def _torchscript_runner(data: bytes) -> Any:
    import io

    import torch

    module = torch.jit.load(io.BytesIO(data), map_location="cpu").eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()

    return run
