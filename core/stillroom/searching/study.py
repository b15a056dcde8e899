"""The Optuna study of a search, in an RDB storage beside the tracking store.

The same command run again finds its study by name and goes on: finished trials stay, a trial
left running by a killed job is marked failed (interrupted), and the budget left is what the
earlier runs did not spend. Multi-objective TPE or NSGA-II with the constraints (each trial's
``Trial.set_constraint``: a violation > 0 per constraint) steering sampling toward feasible trials.
"""

from __future__ import annotations

import fcntl
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import optuna
from optuna.trial import TrialState

from .. import tracking
from ..cache import default_cache_dir
from ..contract.config import SearchSettings
from .choice import TrialView

STUDY_FILE = "stillroom-search.db"
INTERRUPTED = "interrupted"


def storage_url(settings: SearchSettings, tracking_uri: str) -> str:
    """``search.storage``, else SQLite beside a local tracking store, else in the cache folder."""
    if settings.storage:
        return settings.storage
    folder = tracking.store_directory(tracking_uri) or default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(folder) / STUDY_FILE}"


def open_study(name: str, storage: str, settings: SearchSettings, seed: int) -> tuple[optuna.Study, bool]:
    """The study ``name`` (created, or loaded to resume); whether it was resumed."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions: list[Literal["minimize", "maximize"]] = [
        "maximize" if d == "max" else "minimize" for d in settings.objectives.values()
    ]
    with _creation_lock(storage):
        existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage)} if _exists(storage) else {}
        resumed = name in existing
        done = existing[name].n_trials if resumed else 0
        sampler = _sampler(settings, seed + done)  # a resumed study does not replay the first session's draws
        study = optuna.create_study(study_name=name, storage=storage, directions=directions, sampler=sampler, load_if_exists=True)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        study._storage.set_trial_user_attr(trial._trial_id, "note", INTERRUPTED)
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # its job was killed
    return study, resumed


@contextmanager
def _creation_lock(storage: str) -> Iterator[None]:
    """Serialise opening a SQLite study file across processes.

    Optuna migrates a new SQLite storage with Alembic on first open; two searches (or a search
    and a reader) opening the same new file at once both insert the schema version and one dies
    with ``UNIQUE constraint failed: alembic_version``. A server database migrates once, by its
    operator, so only SQLite files are locked."""
    if not storage.startswith("sqlite:///"):
        yield
        return
    path = Path(storage.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


def _exists(storage: str) -> bool:
    return not storage.startswith("sqlite:///") or Path(storage.removeprefix("sqlite:///")).is_file()


def _sampler(settings: SearchSettings, seed: int) -> optuna.samplers.BaseSampler:
    """Both read each trial's constraint values (``Trial.set_constraint``, Optuna 5)."""
    if settings.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, multivariate=True)


def counted(study: optuna.Study) -> int:
    """Trials that count against ``n_trials``: finished ones, not those cut by an interruption."""
    return sum(1 for t in study.get_trials(deepcopy=False) if t.state.is_finished() and t.user_attrs.get("note") != INTERRUPTED)


def views(study: optuna.Study) -> list[TrialView]:
    """Every trial as the choice sees it."""
    states = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}
    out = []
    for t in study.get_trials(deepcopy=False):
        if t.state not in states:
            continue
        metrics = {k: float(v) for k, v in t.user_attrs.get("metrics", {}).items() if v is not None and math.isfinite(v)}
        out.append(
            TrialView(
                t.number,
                states[t.state],
                dict(t.params),
                metrics,
                t.user_attrs.get("run_id"),
                t.user_attrs.get("note", ""),
                dict(t.user_attrs.get("not_estimable", {})),
                float(t.user_attrs.get("ci_level", 0.95)),
            )
        )
    return out


def seconds_spent(study: optuna.Study) -> float:
    return float(study.user_attrs.get("seconds_spent", 0.0))


def add_spent(study: optuna.Study, seconds: float) -> None:
    study.set_user_attr("seconds_spent", seconds_spent(study) + seconds)


def enqueue(study: optuna.Study, params: dict[str, Any]) -> None:
    """The default student's values as the next trial (run alone: see :func:`waiting`)."""
    if params:
        study.enqueue_trial(params, user_attrs={"default": True}, skip_if_exists=True)


def waiting(study: optuna.Study) -> int:
    """Enqueued trials not yet started: run one thread at a time, since two threads can pop the
    same waiting trial from an RDB storage."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
