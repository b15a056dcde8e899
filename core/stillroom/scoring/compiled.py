"""Compiled LightGBM students: the model's trees turned into native code with lleaves (LLVM).

A distilled LightGBM student is a few dozen small trees; LightGBM's own predictor spends most
of its time walking generic node arrays. lleaves compiles the same model text into straight-line
machine code for this CPU. On the fraud student it scored 2-4x the rows/s of LightGBM with equal
probabilities; treelite + tl2cgen was measured too and was slower
(bench/results/scoring.md has the comparison).

The compiled object is machine code for one CPU and LLVM version, so it is logged with a record
of where it was built (target triple, CPU name and features, lleaves and llvmlite versions) and
of what it was built from (the sha256 of the model text). A scoring machine that differs
recompiles from the model text (seconds), and one without lleaves scores with LightGBM; either
way the scoring run records which engine scored and why. Every load is checked against LightGBM
on rows that sit exactly on the trees' split thresholds, where a wrong comparison would show.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._runtime import package_version, sha256_file, usable_cores
from ..errors import ModelLoadError
from ..scratch import scratch_dir

ENGINE = "lleaves"
COMPILED_DIR = "compiled"  # inside the logged model's artifacts, beside model.lgb
OBJECT_FILE = "student.o"
META_FILE = "compiled.json"
MODEL_FILE = "model.lgb"  # MLflow's LightGBM flavor stores the booster text under this name
TOLERANCE = 1e-6
PROBE_ROWS = 20_000

Predict = Callable[[pd.DataFrame], np.ndarray]


def missing_reason() -> str | None:
    """Why compilation is impossible here, or ``None`` when lleaves can be used."""
    try:
        import lleaves  # noqa: F401
    except Exception as exc:  # an llvmlite too new for lleaves fails at import or compile time
        return f"lleaves is not usable ({type(exc).__name__}: {exc}); install stillroom[compiled]"
    return None


@dataclass(frozen=True)
class Target:
    """Where machine code was built: it runs only where all of these match."""

    machine: str
    system: str
    triple: str
    cpu: str
    cpu_features: str
    lleaves: str
    llvmlite: str

    @classmethod
    def here(cls) -> Target:
        import llvmlite.binding as llvm

        llvm.initialize_native_target()
        try:
            features = llvm.get_host_cpu_features().flatten()
        except RuntimeError:  # LLVM cannot always detect features; lleaves then compiles without them
            features = ""
        return cls(
            machine=platform.machine(),
            system=platform.system(),
            triple=llvm.get_process_triple(),
            cpu=llvm.get_host_cpu_name(),
            cpu_features=features,
            lleaves=package_version("lleaves", missing="not installed"),
            llvmlite=package_version("llvmlite", missing="not installed"),
        )

    def mismatch(self, other: Target) -> str | None:
        """The first difference that makes code built for ``self`` unsafe on ``other``."""
        for name in ("machine", "system", "triple", "cpu", "cpu_features", "lleaves", "llvmlite"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                shown = (mine, theirs) if name != "cpu_features" else ("one feature set", "another")
                return f"{name} {shown[0]} (compiled) vs {shown[1]} (here)"
        return None


def probe_rows(model_file: Path, n: int = PROBE_ROWS, seed: int = 0) -> np.ndarray:
    """Rows whose values sit exactly on, just below and just above the trees' split thresholds.

    Random rows rarely hit a threshold; a compiler that got ``<=`` wrong, or rounded a
    threshold to float32, differs from LightGBM exactly there.
    """
    import lightgbm as lgb

    booster = lgb.Booster(model_file=str(model_file))
    splits = booster.trees_to_dataframe().dropna(subset=["split_feature"])
    names = booster.feature_name()
    rng = np.random.default_rng(seed)
    rows = np.zeros((n, len(names)))
    for j, name in enumerate(names):
        values = splits.loc[splits["split_feature"] == name, "threshold"].to_numpy(dtype=float)
        if values.size == 0:
            continue
        values = np.concatenate([values, np.nextafter(values, -np.inf), np.nextafter(values, np.inf)])
        rows[:, j] = rng.choice(values, size=n)
    return rows


def _lightgbm_scores(model_file: Path, rows: np.ndarray) -> np.ndarray:
    import lightgbm as lgb

    return np.asarray(lgb.Booster(model_file=str(model_file)).predict(rows))


class CompiledModel:
    """An lleaves-compiled student; ``predict`` takes the model's columns in signature order."""

    def __init__(self, model: Any, features: list[str]) -> None:
        self._model = model
        self.features = features
        self.threads = usable_cores()

    def predict_array(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self._model.predict(np.ascontiguousarray(rows, dtype=np.float64), n_jobs=self.threads))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict_array(frame.to_numpy(dtype=np.float64))


def _build(model_file: Path, object_file: Path) -> CompiledModel:
    """Compile (or, if ``object_file`` exists, load) the model; lleaves caches at that path."""
    import lightgbm as lgb
    import lleaves

    model = lleaves.Model(model_file=str(model_file))
    model.compile(cache=str(object_file))
    return CompiledModel(model, lgb.Booster(model_file=str(model_file)).feature_name())


def _max_gap(compiled: CompiledModel, model_file: Path, rows: np.ndarray) -> float:
    return float(np.max(np.abs(compiled.predict_array(rows) - _lightgbm_scores(model_file, rows))))


def compile_student(model_file: Path, out_dir: Path) -> dict[str, Any]:
    """Compile ``model_file`` into ``out_dir`` (object file + build record); return the record.

    Raises :class:`ModelLoadError` if the compiled model disagrees with LightGBM, so a
    wrong artifact is never logged.
    """
    reason = missing_reason()
    if reason:
        raise ModelLoadError(reason)
    out_dir.mkdir(parents=True, exist_ok=True)
    object_file = out_dir / OBJECT_FILE
    object_file.unlink(missing_ok=True)
    compiled = _build(model_file, object_file)
    gap = _max_gap(compiled, model_file, probe_rows(model_file))
    if gap > TOLERANCE:
        raise ModelLoadError(f"compiled student differs from LightGBM by {gap:.3g} (> {TOLERANCE:g}); not logged")
    record = {
        "engine": ENGINE,
        "object_file": OBJECT_FILE,
        "object_sha256": sha256_file(object_file),
        "model_file": MODEL_FILE,
        "model_sha256": sha256_file(model_file),
        "target": asdict(Target.here()),
        "check": {"rows": PROBE_ROWS, "max_abs_diff_vs_lightgbm": gap, "tolerance": TOLERANCE},
    }
    (out_dir / META_FILE).write_text(json.dumps(record, indent=2))
    return record


@dataclass
class Loaded:
    """The outcome of looking for a compiled student: a model, or why LightGBM scores instead."""

    model: CompiledModel | None
    engine: str  # "lleaves" or "lightgbm"
    note: str


def load_compiled(model_dir: Path, columns: list[str]) -> Loaded:
    """The compiled student beside the native model in ``model_dir``, ready for this machine.

    Falls back to LightGBM (``model=None``) when there is nothing compiled or lleaves is
    missing; recompiles when the object was built for another machine. A compiled artifact
    that does not belong to the model, or whose bytes changed, is an error: it was tampered
    with or corrupted, and a reviewer must hear about it.
    """
    folder, model_file = model_dir / COMPILED_DIR, model_dir / MODEL_FILE
    if not (folder / META_FILE).is_file():
        return Loaded(None, "lightgbm", "no compiled artifact was logged with this model")
    reason = missing_reason()
    if reason:
        return Loaded(None, "lightgbm", f"{reason}; scoring with LightGBM")
    record = _read_record(folder)
    if record.get("model_sha256") != sha256_file(model_file):
        raise ModelLoadError(f"compiled artifact in {folder} was not built from this model's {MODEL_FILE}")
    object_file = folder / str(record.get("object_file", OBJECT_FILE))
    if not object_file.is_file() or sha256_file(object_file) != record.get("object_sha256"):
        raise ModelLoadError(f"compiled artifact {object_file.name} is corrupted (sha256 differs from its record)")
    mismatch = _built_elsewhere(record)
    with scratch_dir("compile") as tmp:
        note = "compiled artifact loaded as logged"
        if mismatch:
            object_file = Path(tmp) / OBJECT_FILE  # fresh build for this machine; the logged one is left as is
            note = f"compiled artifact was built for another machine ({mismatch}): recompiled here from {MODEL_FILE}"
        compiled = _build(model_file, object_file)
    if compiled.features != columns:
        return Loaded(None, "lightgbm", "compiled model's features differ from the signature; scoring with LightGBM")
    gap = _max_gap(compiled, model_file, probe_rows(model_file, n=2_000, seed=1))
    if gap > TOLERANCE:
        return Loaded(None, "lightgbm", f"compiled model differs from LightGBM by {gap:.3g}; scoring with LightGBM")
    return Loaded(compiled, ENGINE, note)


def _built_elsewhere(record: dict[str, Any]) -> str | None:
    """Why the logged object may not run here, or ``None`` when it was built for this machine."""
    try:
        built = Target(**record["target"])
    except (KeyError, TypeError):
        return "its build target is not recorded in a form this version reads"
    return built.mismatch(Target.here())


def _read_record(folder: Path) -> dict[str, Any]:
    try:
        record = json.loads((folder / META_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"compiled artifact record {folder / META_FILE} is unreadable: {exc}") from None
    if not isinstance(record, dict):
        raise ModelLoadError(f"compiled artifact record {folder / META_FILE} is not a JSON object")
    return record
