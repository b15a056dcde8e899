"""Models: students logged in their native flavor (with a compiled LightGBM engine beside them),
teachers a plugin trained logged in their own run, and the sha256 of every model file.

Students must be native and non-pickle (LightGBM text, ONNX, TorchScript, models-from-code);
teachers may use any flavor: they are research artifacts, not what is deployed.
"""

from __future__ import annotations

import importlib
import logging
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from ..contract.names import TAG_PREFIX
from ..contract.protocols import NativeModel
from ..errors import TrackingError
from ..progress import console
from ..scoring import compiled
from ..scratch import scratch_dir
from .integrity import hash_files, record_tags
from .requirements import with_requirements
from .runs import log_params, run, writer_tags


def log_teacher_model(
    native: NativeModel, name: str, experiment: str, description: dict[str, Any], example: pd.DataFrame | None = None
) -> str:
    """Log a teacher trained by a plugin in its own run; return its logged-model id.

    The teacher's own run is its lineage (how it was trained); the distillation run then
    names it as an input. Teachers may use any flavor, pickle-based ones included: they are
    research artifacts; students must be native. A scikit-learn classifier is logged so that
    its pyfunc returns probabilities: then the same logged teacher (``models:/<model id>``) can
    label a large transfer set through Spark (``teacher.spark_master``).
    """
    proba = native.flavor == "sklearn" and hasattr(native.model, "predict_proba")
    if proba:
        native = replace(native, log_kwargs={"pyfunc_predict_fn": "predict_proba", **native.log_kwargs})
    signature = None
    if example is not None and native.signature is None:
        from mlflow.models import infer_signature

        signature = infer_signature(example, native.model.predict_proba(example) if proba else _predict_native(native, example))
    with run(experiment, f"teacher: {name}", {f"{TAG_PREFIX}role": "teacher", **writer_tags()}):
        log_params({f"teacher.{k}": v for k, v in description.items()})
        info = _log_native(native, "teacher", signature=signature, input_example=example)
        _record_hashes(info.model_id, hash_model_files(info.model_uri))
    return info.model_id


# --- models -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoggedStudent:
    model_id: str
    model_uri: str
    files: dict[str, str]
    scoring_engine: str = "native"  # "lleaves" when a compiled artifact was logged beside the model


_MODEL_ARGUMENT = {
    "lightgbm": "lgb_model",
    "sklearn": "sk_model",
    "pytorch": "pytorch_model",
    "onnx": "onnx_model",
    "pyfunc": "python_model",
}
"""The keyword each MLflow flavor's ``log_model`` takes the model object under."""


def _log_native(native: NativeModel, name: str, signature: Any, input_example: Any) -> Any:
    """Log ``native`` with its own MLflow flavor; the model's own signature/example win."""
    if native.flavor not in _MODEL_ARGUMENT:
        raise TrackingError(f"no MLflow flavor {native.flavor!r} known to stillroom (known: {', '.join(_MODEL_ARGUMENT)})")
    module = importlib.import_module(f"mlflow.{native.flavor}")
    own_signature = native.signature
    if isinstance(own_signature, dict):  # MLflow's JSON form, so a plugin need not import mlflow
        from mlflow.models import ModelSignature

        own_signature = ModelSignature.from_dict(own_signature)
    kwargs: dict[str, Any] = {
        "name": name,
        "signature": own_signature if own_signature is not None else signature,
        "input_example": native.input_example if native.input_example is not None else input_example,
        **with_requirements(native.flavor, native.model, native.log_kwargs),
    }
    if native.flavor == "sklearn":
        kwargs.setdefault("skops_trusted_types", _own_skops_types(native.model))
    try:
        with _no_false_pickle_warning(native):
            return module.log_model(**{_MODEL_ARGUMENT[native.flavor]: native.model}, **kwargs)
    finally:  # MLflow has copied the files into the run (or failed): nothing else reads them
        for directory in native.scratch:
            shutil.rmtree(directory, ignore_errors=True)


_PICKLE_WARNING = "Saving pytorch model by Pickle"


@contextmanager
def _no_false_pickle_warning(native: NativeModel) -> Iterator[None]:
    """Drop MLflow's "saving by Pickle can execute arbitrary code" line for a TorchScript module.

    Why: MLflow prints it for every ``serialization_format="pickle"`` log, but writes a
    ``ScriptModule`` with ``torch.jit.save`` (TorchScript's archive, no Python pickle). An
    auditor reading the job's log would be told the opposite of what was written. The line
    stays for any other torch object, which MLflow does pickle."""
    torch = sys.modules.get("torch")
    if native.flavor != "pytorch" or torch is None or not isinstance(native.model, torch.jit.ScriptModule):
        yield
        return
    logger = logging.getLogger("mlflow.pytorch")
    drop = _DropMessage(_PICKLE_WARNING)
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


class _DropMessage(logging.Filter):
    """A logging filter that drops the records starting with one message."""

    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.start)


def _own_skops_types(model: Any) -> list[str]:
    """Types skops does not trust by default, for a model this process built itself.

    skops refuses e.g. tree node arrays because a *foreign* file could hold out-of-range
    indices; a teacher we just trained is not foreign, so its own types are trusted, and
    only those (never a blanket allow-list).
    """
    import skops.io as sio

    return list(sio.get_untrusted_types(data=sio.dumps(model)))


def log_student_model(native: NativeModel, example: pd.DataFrame | None) -> LoggedStudent:
    """Log the student natively with a signature and a synthetic input example.

    A student that knows its own signature (a tensor input, say) brings it in ``native``;
    otherwise it is inferred from the synthetic example and the model's output on it.
    """
    from mlflow.models import infer_signature

    signature = None
    if native.signature is None and example is not None:
        signature = infer_signature(example, _predict_native(native, example))
    info = _log_native(native, "student", signature=signature, input_example=example)
    engine = _log_compiled(info.model_id, info.model_uri) if native.flavor == "lightgbm" else "native"
    files = hash_model_files(info.model_uri)  # after compiling: the manifest covers the compiled code too
    _record_hashes(info.model_id, files)
    return LoggedStudent(model_id=info.model_id, model_uri=info.model_uri, files=files, scoring_engine=engine)


def _log_compiled(model_id: str, model_uri: str) -> str:
    """Compile a LightGBM student and add it to the same logged model, under ``compiled/``.

    Beside ``model.lgb`` in the model's own artifacts, an auditor finds the compiled code, what
    it was built from and where (``compiled/compiled.json``) with the model that was reviewed,
    and the registered version carries it. Without lleaves the model is logged as is and the
    reason is tagged: scoring then uses LightGBM.
    """
    client = MlflowClient()
    with scratch_dir("compile") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        try:
            compiled.compile_student(local / compiled.MODEL_FILE, Path(tmp) / compiled.COMPILED_DIR)
        except Exception as exc:  # no compiler, or LLVM refused: the native model still ships
            console.log(f"compiled scoring engine not logged: {exc}; scoring will use LightGBM")
            client.set_logged_model_tags(model_id, {f"{TAG_PREFIX}scoring_engine": "lightgbm", f"{TAG_PREFIX}compiled": str(exc)})
            return "lightgbm"
        client.log_model_artifacts(model_id, str(Path(tmp) / compiled.COMPILED_DIR), compiled.COMPILED_DIR)
    client.set_logged_model_tags(
        model_id,
        {
            f"{TAG_PREFIX}scoring_engine": compiled.ENGINE,
            f"{TAG_PREFIX}compiled": f"{compiled.COMPILED_DIR}/{compiled.META_FILE}",
        },
    )
    return compiled.ENGINE


def log_extra_model(native: NativeModel, name: str) -> LoggedStudent:
    """Another logged model of the active run (e.g. the student's TorchScript beside its ONNX)."""
    info = _log_native(native, name, signature=None, input_example=None)
    files = hash_model_files(info.model_uri)
    _record_hashes(info.model_id, files)
    return LoggedStudent(model_id=info.model_id, model_uri=info.model_uri, files=files)


def _record_hashes(model_id: str, files: dict[str, str]) -> None:
    """The files' hashes as tags of the logged model, in the tracking database
    (:mod:`stillroom.tracking.integrity`): what a later load checks the files against."""
    MlflowClient().set_logged_model_tags(model_id, record_tags(files))


def _predict_native(native: NativeModel, X: pd.DataFrame) -> np.ndarray:
    model = native.model
    if native.flavor == "sklearn" and hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(X))[:, 1]
    return np.asarray(model.predict(X))


def hash_model_files(model_uri: str) -> dict[str, str]:
    """sha256 of every file of a logged model, as stored (for the compliance manifest and the
    integrity tags)."""
    with tempfile.TemporaryDirectory() as tmp:
        return hash_files(Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp)))
