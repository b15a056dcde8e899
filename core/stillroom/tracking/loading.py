"""Loading registered models: a student pinned to one version for batch scoring (compiled engine
when one was logged and runs here), Spark UDFs of the same version, and teachers from MLflow.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from mlflow.types.schema import TensorSpec

from ..contract.names import INPUT_FORMAT_SETTINGS_TAG, INPUT_FORMAT_TAG
from ..contract.specs import InputColumn
from ..errors import ModelLoadError, missing_dependency
from ..scoring import compiled
from ..scoring.batch import frame_parts
from ..scratch import scratch_dir
from .integrity import download_checked, logged_model_record, version_record
from .registry import MODEL_ALIAS_URI, resolve_registered
from .store import short

# --- scoring ------------------------------------------------------------------------------


@dataclass
class ScoringModel:
    """A registered model pinned to one version, ready for batch scoring.

    ``engine`` says what computes the scores (``lleaves`` for a compiled student, else the
    flavor through pyfunc, or what a Python model says it runs) and ``engine_note`` why, e.g.
    a fallback; both go into the scoring run. ``columns`` are the signature's inputs (a tensor
    input with the shape of one row's array); ``config`` is the ``model_config`` logged with
    the model (what a vertical's input reader needs to know about it). ``input_format`` and
    ``input_settings`` are what the run recorded when the model was trained from raw records
    (the format that turns a raw batch into the model's inputs, and its settings).
    """

    name: str
    version: str
    uri: str
    predict: Any
    columns: list[InputColumn]
    reference: dict[str, Any] | None
    run_id: str | None
    engine: str = "pyfunc"
    engine_note: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    input_format: str | None = None
    input_settings: dict[str, Any] = field(default_factory=dict)
    integrity: str = ""  # what the files were checked against, or why they were not
    local_dir: Path | None = None  # the checked copy (Spark loads this one, not the store's)


@contextmanager
def scoring_model(uri: str, compiled: bool = True, trust_unverified: bool = False) -> Iterator[ScoringModel]:
    """Resolve the alias once, check the pinned version's files, load it, its signature and
    reference scores; the checked copy stays on disk for the block (a Spark job loads it).

    Every file is checked against the hashes recorded at registration
    (:mod:`stillroom.tracking.integrity`) before MLflow, LightGBM or lleaves reads any of them.
    With ``compiled`` (the default) a compiled student logged beside the model scores instead
    of the flavor's own predictor, when it can run here (see :mod:`stillroom.scoring.compiled`).
    """
    name, version, _ = resolve_registered(uri)
    pinned = f"models:/{name}/{version}"
    label = f"{name} v{version}"
    recorded = version_record(name, version)
    with scratch_dir("model") as tmp:
        local = download_checked(pinned, recorded, Path(tmp), label, trust_unverified)
        integrity = f"verified: every file matches its sha256 recorded {recorded.source}" if recorded else "unverified"
        try:
            model = mlflow.pyfunc.load_model(str(local))
        except ModuleNotFoundError as exc:
            raise missing_dependency(exc, f"loading {label}") from None
        except Exception as exc:
            raise ModelLoadError(f"could not load {pinned}: {short(exc)}") from None
        schema = model.metadata.get_input_schema()
        if schema is None:
            raise ModelLoadError(f"{pinned} has no input signature; stillroom only scores models with one")
        columns = [_input_column(c, pinned) for c in schema.inputs]
        tensors = {c.name: c.shape for c in columns if c.shape is not None}
        predict, engine, note = _pyfunc_scores(model, tensors), _flavor_engine(model), "compiled engine not requested"
        own = _own_engine(model)
        if own is not None:
            engine, note = own
        elif compiled:
            predict, engine, note = _compiled_or(predict, engine, local, [c.name for c in columns])
        client = MlflowClient()
        run_id = client.get_model_version(name, version).run_id
        config = dict(getattr(model, "model_config", None) or {})
        tags = dict(client.get_run(run_id).data.tags) if run_id else {}
        raw_format, raw_settings = tags.get(INPUT_FORMAT_TAG), _settings(tags.get(INPUT_FORMAT_SETTINGS_TAG), pinned)
        yield ScoringModel(
            name,
            version,
            pinned,
            predict,
            columns,
            _reference(run_id),
            run_id,
            engine,
            note,
            config,
            input_format=raw_format,
            input_settings=raw_settings,
            integrity=integrity,
            local_dir=local,
        )


def load_scoring_model(uri: str, compiled: bool = True, trust_unverified: bool = False) -> ScoringModel:
    """:func:`scoring_model` for a caller that needs only the predictor (the local copy is gone)."""
    with scoring_model(uri, compiled, trust_unverified) as model:
        return model


def _settings(text: str | None, pinned: str) -> dict[str, Any]:
    """The input format's settings a run recorded (JSON), or none."""
    if not text:
        return {}
    try:
        settings = json.loads(text)
    except json.JSONDecodeError:
        raise ModelLoadError(f"{pinned}: its run's {INPUT_FORMAT_SETTINGS_TAG} tag is not JSON") from None
    return dict(settings)


def _input_column(spec: Any, pinned: str) -> InputColumn:
    """A signature input: a column, or a named tensor whose rows all have one fixed shape
    (``(-1, C, H, W)``: a batch of images)."""
    if not isinstance(spec, TensorSpec):
        return InputColumn(spec.name, spec.type.name if hasattr(spec.type, "name") else str(spec.type))
    shape = tuple(int(d) for d in spec.shape)
    if not spec.name or len(shape) < 2 or shape[0] != -1 or min(shape[1:]) < 1:
        raise ModelLoadError(
            f"{pinned}: tensor input {spec.name!r} of shape {shape}: stillroom scores named tensors of shape (-1, fixed sizes...)"
        )
    return InputColumn(spec.name, spec.type.name, shape[1:])


def _own_engine(model: Any) -> tuple[str, str] | None:
    """What a Python model says computes its scores (``engine``, ``engine_note`` attributes),
    e.g. ONNX Runtime or the TorchScript it fell back to; ``None`` for other flavors."""
    try:
        own = model.unwrap_python_model()
    except Exception:  # not a Python model: MLflow refuses to unwrap it
        return None
    engine = getattr(own, "engine", None)
    return (f"pyfunc:{engine}", str(getattr(own, "engine_note", ""))) if engine else None


def _flavor_engine(model: Any) -> str:
    """``lightgbm`` for a LightGBM model through pyfunc, else ``pyfunc:<loader>``."""
    loader = str(model.metadata.flavors.get("python_function", {}).get("loader_module", ""))
    return "lightgbm" if loader == "mlflow.lightgbm" else f"pyfunc:{loader}"


def _compiled_or(predict: Any, engine: str, local: Path, columns: list[str]) -> tuple[Any, str, str]:
    """The compiled student if one was logged and can run here, else the given predictor and why."""
    if engine != "lightgbm":
        return predict, engine, "no compiled engine for this flavor"
    loaded = compiled.load_compiled(local, columns)
    if loaded.model is None:
        return predict, engine, loaded.note
    return loaded.model.predict, loaded.engine, loaded.note


def _pyfunc_predict(model: Any) -> Any:
    """Model outputs as an array. A pyfunc that returns a frame (a model of domain objects)
    gives its outputs, (n,) for one and (n, k) for several: the columns before its validity flag
    (:func:`stillroom.scoring.batch.frame_parts`); the flag and the annotations after it are not
    outputs. An array keeps its last column (the positive class of ``predict_proba``)."""

    def predict(frame: pd.DataFrame) -> np.ndarray:
        out = model.predict(frame)
        if isinstance(out, pd.DataFrame):
            values = out[frame_parts(out)[0]].to_numpy(dtype=float)
            return values[:, 0] if values.shape[1] == 1 else values
        return _last_column(out, len(frame))

    return predict


def _pyfunc_scores(model: Any, tensors: dict[str, tuple[int, ...]] | None = None) -> Any:
    """For batch scoring: a frame a pyfunc returns (scores, validity flags) is passed on whole,
    so that ``stillroom.scoring.batch`` writes every output column and leaves flagged rows unscored.

    A model with tensor inputs gets each as one stacked array ``(n, *shape)`` by name; a
    single named output array (``{"probabilities": (n, k)}``) is taken as the model's output."""

    def predict(frame: pd.DataFrame) -> Any:
        data = {n: np.stack(frame[n].to_list()).reshape(-1, *shape) for n, shape in tensors.items()} if tensors else frame
        out = model.predict(data)
        if isinstance(out, dict) and len(out) == 1:
            out = next(iter(out.values()))
        return out.reset_index(drop=True) if isinstance(out, pd.DataFrame) else _last_column(out, len(frame))

    return predict


def _last_column(out: Any, rows: int) -> np.ndarray:
    return np.asarray(out, dtype=float).reshape(rows, -1)[:, -1]


def spark_udf_factory(pinned_uri: str) -> Any:
    """``spark -> UDF`` scoring the pinned model version in Spark's Python workers.

    ``env_manager="local"``: executors use the Python environment they run in (the same
    pinned packages); building a fresh environment per job would need the internet. A model
    that returns a frame of several columns (outputs, a validity flag, annotations) gives a
    struct of them, typed by its output signature, so Spark writes the local engine's columns.
    """
    from mlflow.models import Model

    try:
        outputs = Model.load(pinned_uri).get_output_schema()
    except Exception:
        outputs = None
    columns = outputs is not None and not outputs.is_tensor_spec() and len(outputs.inputs) > 1
    result_type = None if columns else "double"  # None: MLflow types the struct from the signature

    def factory(spark: Any) -> Any:
        try:
            return mlflow.pyfunc.spark_udf(spark, pinned_uri, result_type=result_type, env_manager="local")
        except Exception as exc:
            raise ModelLoadError(f"could not load {pinned_uri} into Spark: {short(exc)}") from None

    return factory


def teacher_spark_udf_factory(uri: str) -> Any:
    """``spark -> UDF`` giving a teacher's positive-class probability, for labelling in Spark.

    Only teachers whose pyfunc returns probabilities qualify: a LightGBM model, or a
    scikit-learn model logged with ``pyfunc_predict_fn="predict_proba"`` (a plain sklearn
    pyfunc predicts hard labels, which would silently teach the wrong thing).
    """
    from mlflow.models import Model

    if uri.startswith("models:/") and MODEL_ALIAS_URI.match(uri):
        name, version, _ = resolve_registered(uri)
        uri = f"models:/{name}/{version}"
    try:
        flavors = Model.load(uri).flavors
    except Exception as exc:
        raise ModelLoadError(f"unknown model URI {uri!r}: {short(exc)}") from None
    proba = flavors.get("python_function", {}).get("predict_fn") == "predict_proba"
    if "lightgbm" not in flavors and not proba:
        raise ModelLoadError(
            f"teacher {uri} cannot label through Spark: its pyfunc does not return probabilities "
            "(use a LightGBM model, or log the scikit-learn model with pyfunc_predict_fn='predict_proba')"
        )

    def factory(spark: Any) -> Any:
        from pyspark.sql import functions as F

        try:
            udf = mlflow.pyfunc.spark_udf(spark, uri, result_type="array<double>" if proba else "double", env_manager="local")
        except Exception as exc:
            raise ModelLoadError(f"could not load teacher {uri} into Spark: {short(exc)}") from None
        return (lambda *cols: F.element_at(udf(*cols), -1)) if proba else udf

    return factory


def _reference(run_id: str | None) -> dict[str, Any] | None:
    """The training score histogram logged by the distillation run (for PSI), if any."""
    if not run_id:
        return None
    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/reference/score_histogram.json")
    except Exception:
        return None


# --- teachers from MLflow -----------------------------------------------------------------


def load_teacher_model(uri: str) -> tuple[Any, dict[str, Any]]:
    """A teacher's probability function and facts about it, from an MLflow model URI.

    scikit-learn and LightGBM teachers are loaded in their own flavor so that we get
    probabilities (a pyfunc sklearn model would predict hard labels); anything else goes
    through pyfunc and must return the positive-class probability. A teacher stillroom logged or
    registered is checked against its recorded hashes before it is loaded, like a student.
    """
    facts: dict[str, Any] = {"uri": uri}
    recorded = None
    if uri.startswith("models:/") and MODEL_ALIAS_URI.match(uri):
        name, version, model_id = resolve_registered(uri)
        uri = f"models:/{name}/{version}"
        facts.update(name=name, version=version, model_id=model_id, pinned_uri=uri)
        recorded = version_record(name, version)
    elif uri.startswith("models:/m-"):
        recorded = logged_model_record(uri.removeprefix("models:/").split("/")[0])
    with scratch_dir("teacher") as tmp:
        if recorded is not None:  # a teacher stillroom logged or registered: checked like a student
            uri = str(download_checked(uri, recorded, Path(tmp), f"teacher {facts['uri']}"))
            facts["integrity"] = f"verified against the sha256 recorded {recorded.source}"
        return _load_teacher(uri, facts)


def _load_teacher(uri: str, facts: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    from mlflow.models import Model

    try:
        meta = Model.load(uri)
    except Exception as exc:
        raise ModelLoadError(f"unknown model URI {uri!r}: {short(exc)}") from None
    facts["model_id"] = facts.get("model_id") or getattr(meta, "model_id", None)
    flavors = set(meta.flavors)
    try:
        if "sklearn" in flavors:
            est = mlflow.sklearn.load_model(uri)
            return (lambda X: np.asarray(est.predict_proba(X))[:, 1]), facts | {"flavor": "sklearn", "object": est}
        if "lightgbm" in flavors:
            booster = mlflow.lightgbm.load_model(uri)
            return (lambda X: np.asarray(booster.predict(X))), facts | {"flavor": "lightgbm", "object": booster}
        if "pytorch" in flavors:  # the module itself: a torch vertical may need its intermediate features
            with _torchscript_quietly():
                module = mlflow.pytorch.load_model(uri, map_location="cpu")
                predict = _pyfunc_predict(mlflow.pyfunc.load_model(uri)) if "python_function" in flavors else None
            return predict, facts | {"flavor": "pytorch", "object": module}
        model = mlflow.pyfunc.load_model(uri)
    except Exception as exc:
        raise ModelLoadError(f"could not load teacher {uri!r}: {short(exc)}") from None
    return _pyfunc_predict(model), facts | {"flavor": "pyfunc", "object": None}


@contextmanager
def _torchscript_quietly() -> Iterator[None]:
    """Load MLflow ``pytorch`` models without one warning that is noise in a user's run log.

    MLflow opens a TorchScript archive with ``torch.load``, which dispatches to
    ``torch.jit.load`` and warns that it did: correct behaviour. Only that warning is dropped."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="'torch.load' received a zip file that looks like a TorchScript archive")
        yield
