"""The shipped forms of a network: TorchScript and ONNX, each checked against the trained net.

What ships takes an image tensor ``image`` of shape ``(batch, C, H, W)``, float32 in [0, 1],
and returns ``probabilities`` ``(batch, k)``: softmax for binary/multiclass (binary: column 1
is P(positive)), sigmoid per label for multilabel. No Python object is pickled: TorchScript
is torch's own archive (``torch.jit.save``) and ONNX a protobuf graph, each loadable without
stillroom (onnxruntime alone runs the ONNX model on a laptop beside the scanner).

The signature is written in MLflow's own JSON form (tensor specs with the image shape) so
the tracking module can hand it to ``mlflow.onnx`` / ``mlflow.pytorch`` unchanged; the input
example is seeded uniform noise of that shape: never a patient image.

:func:`scoring_model` packages both exports as the model a scoring job runs (a model-from-code
pyfunc, :mod:`stillroom_medical.scorer`): per-class probabilities and the call at the operating
point, through ONNX Runtime.
"""

from __future__ import annotations

import io
import json
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from stillroom.contract import NativeModel, inference_threads, pinned_requirements

from . import scorer

EXPORT_TOLERANCE = 1e-4
ONNX_OPSET = 17

_EXPORT = threading.Lock()
"""One trace or ONNX export at a time per process. Why: torch's tracer and its TorchScript-based
ONNX exporter keep process-wide state (the exporter's "an export is running" flag, the tracer's
module scopes), so two exports in threads (a search's parallel trials) break each other: the
ONNX exporter's assertion (``GLOBALS.in_onnx_export must be False``) and the tracer's own
sanity check (``Graphs differed across invocations``, scopes of the other thread's network) each
lost a trial of a 30-minute medical search. An export takes about a second; the lock costs the
search nothing it would notice."""


class Probabilities(nn.Module):
    """A network's logits turned into the probabilities a scoring job needs."""

    def __init__(self, net: nn.Module, multilabel: bool) -> None:
        super().__init__()
        self.net = net
        self.multilabel = multilabel

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.net(image)
        return torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=1)


def example_input(shape: tuple[int, ...], n: int = 2, seed: int = 0) -> np.ndarray:
    """Synthetic input: uniform noise of the image shape (batch of ``n``), never a real scan."""
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def to_torchscript(net: nn.Module, multilabel: bool, shape: tuple[int, ...]) -> torch.jit.ScriptModule:
    """Traced and frozen ``Probabilities(net)``: a graph with the weights baked in."""
    model = Probabilities(net, multilabel).eval()
    x = torch.from_numpy(example_input(shape))
    with _EXPORT, torch.no_grad():
        traced = torch.jit.trace(model, x)
        frozen = torch.jit.freeze(traced)
    _check(frozen(x).numpy(), model(x).detach().numpy(), "TorchScript")
    return frozen


def torchscript_bytes(module: torch.jit.ScriptModule) -> bytes:
    buf = io.BytesIO()
    torch.jit.save(module, buf)
    return buf.getvalue()


def to_onnx(net: nn.Module, multilabel: bool, shape: tuple[int, ...]) -> bytes:
    """The ONNX graph (legacy TorchScript-based exporter: no onnxscript needed), batch axis dynamic."""
    model = Probabilities(net, multilabel).eval()
    x = torch.from_numpy(example_input(shape))
    buf = io.BytesIO()
    with _EXPORT, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notice that a newer exporter exists
        torch.onnx.export(
            model,
            (x,),
            buf,
            dynamo=False,
            input_names=["image"],
            output_names=["probabilities"],
            dynamic_axes={"image": {0: "batch"}, "probabilities": {0: "batch"}},
            opset_version=ONNX_OPSET,
        )
    data = buf.getvalue()
    with torch.no_grad():
        expected = model(x).numpy()
    _check(run_onnx(data, x.numpy()), expected, "ONNX")
    return data


def onnx_predictor(data: bytes, task_type: str) -> Callable[[Any], np.ndarray]:
    """``predict`` through ONNX Runtime, as a scoring job runs the export (the scorer's session
    settings and batches), in the core's output layout (binary: P(positive), shape (n,)).

    It is how the run times a network in the runtime that ships (teacher and student alike),
    beside torch. A session's thread count is fixed when it is created, so there is one per
    count asked (:func:`~stillroom.contract.inference_threads`: 1 while the run times models on
    one core); the first is created here, so an export ONNX Runtime refuses fails now.
    """
    from .images import stack

    sessions = {inference_threads(): scorer.onnx_runner(data, inference_threads())}

    def predict(X: Any) -> np.ndarray:
        threads = inference_threads()
        if threads not in sessions:
            sessions[threads] = scorer.onnx_runner(data, threads)
        run = sessions[threads]
        x = np.ascontiguousarray(stack(X), dtype=np.float32)
        p = np.concatenate([run(x[i : i + scorer.BATCH]) for i in range(0, len(x), scorer.BATCH)]).astype(np.float64)
        return p[:, 1] if task_type == "binary" else p

    return predict


def run_onnx(data: bytes, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {"image": images.astype(np.float32)})[0]


def requirements(form: str) -> list[str]:
    """What a scoring environment installs for each form, pinned to what exported it.

    Given explicitly, MLflow need not infer them (a subprocess per logged model), and the
    CPU build's local version label (``+cpu``) is not written where pip could not resolve it.
    """
    if form == "onnx":
        return pinned_requirements(("onnx", "onnxruntime"))
    if form == "scoring":  # the scorer's code, ONNX Runtime, and torch for the TorchScript fallback
        return pinned_requirements(("stillroom-medical", "onnxruntime", "torch"))
    return pinned_requirements(("torch",))


def signature(shape: tuple[int, ...], n_outputs: int) -> dict[str, str]:
    """MLflow's JSON signature: ``image`` float32 ``(-1, C, H, W)`` -> ``probabilities`` ``(-1, k)``."""
    inputs = [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, *shape]}, "name": "image"}]
    outputs = [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, n_outputs]}, "name": "probabilities"}]
    return {"inputs": json.dumps(inputs), "outputs": json.dumps(outputs)}


def scoring_model(onnx_model: bytes, scripted: torch.jit.ScriptModule, spec: scorer.ScoringSpec, seed: int = 0) -> NativeModel:
    """The model a scoring job runs: both exports as artifacts, the spec as ``model_config``,
    image tensor in, the spec's columns out (probabilities are doubles, calls text or 0/1)."""
    directory = Path(tempfile.mkdtemp(prefix="stillroom-medical-model-"))
    spec = scorer.save(directory, onnx_model, torchscript_bytes(scripted), spec)
    shape = tuple(spec.shape)
    outputs = [
        {"type": "double" if c.startswith("p_") else "string" if c == "call" else "integer", "name": c} for c in spec.columns()
    ]
    return NativeModel(
        "pyfunc",
        str(Path(__file__).with_name("pyfunc_student.py")),
        signature={"inputs": signature(shape, 1)["inputs"], "outputs": json.dumps(outputs)},
        input_example={"image": example_input(shape, seed=seed)},
        log_kwargs={
            "artifacts": {"student": str(directory)},
            "model_config": spec.as_config(),
            "pip_requirements": requirements("scoring"),
        },
        scratch=(str(directory),),
    )


def _check(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    """What ships must compute what was trained; a mismatch is a bug, never shipped."""
    gap = float(np.max(np.abs(got - expected)))
    if gap > EXPORT_TOLERANCE:
        raise RuntimeError(f"{what} export differs from the trained network by {gap:.3g}")
