"""pytest plugin for plugin authors (installed as the ``stillroom`` pytest11 entry point).

Fixtures:

* ``tracking_store``: a fresh MLflow SQLite store in a temp dir, set as the tracking URI
  (:func:`temporary_store` gives the same for a module- or package-scoped fixture). Each is a
  copy of a migrated empty store built once per MLflow version, not migrated again.
* ``register_plugin``: register a plugin object for one test, unregistered afterwards.

Helper :func:`assert_compliance_bundle` checks that a run logged everything its vertical's
compliance profile requires (metrics, params, tags, artifacts).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

_TEMPLATE_DIR = Path(tempfile.gettempdir()) / f"stillroom-test-stores-{os.getuid()}"
"""Where the migrated template store lives (one per MLflow version, shared by test workers)."""


@contextmanager
def temporary_store(root: Path) -> Iterator[str]:
    """A real MLflow SQLite store, artifact root and stillroom cache under ``root``.

    Tracking and registry point at it, credentials of a team server are cleared (a test must
    never reach a real server), and the working directory is ``root`` so MLflow's default
    artifact root ``./mlruns`` lands there too; everything is restored on exit. Use it in
    module-scoped fixtures where several tests share one distillation; entering it again on the
    same ``root`` reopens that store.
    """
    from . import tracking

    db = Path(root) / "mlflow.db"
    if not db.exists():  # entering the same root again reopens its store, it does not wipe it
        tracking.copy_migrated_sqlite(db, _TEMPLATE_DIR)
    uri = f"sqlite:///{db}"
    mp = pytest.MonkeyPatch()
    try:
        for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
            mp.setenv(key, uri)
        mp.setenv("STILLROOM_CACHE_DIR", str(Path(root) / "cache"))
        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
            mp.delenv(key, raising=False)
        mp.chdir(root)
        tracking.use_store(uri)
        yield uri
    finally:
        tracking.use_store(None)
        mp.undo()


@pytest.fixture
def tracking_store(tmp_path: Path) -> Iterator[str]:
    """A real MLflow SQLite store and artifact root under ``tmp_path``, for one test."""
    with temporary_store(tmp_path) as uri:
        yield uri


@pytest.fixture
def register_plugin() -> Iterator[Callable[[Any, str], None]]:
    """``register_plugin(obj, name)`` adds a plugin to the process-wide manager for one test."""
    from .api import get_plugin_manager

    pm = get_plugin_manager()
    names: list[str] = []

    def register(plugin: Any, name: str) -> None:
        pm.register_plugin(plugin, name)
        names.append(name)

    yield register
    for name in names:
        pm.unregister_plugin(name)


def missing_from_run(run_id: str, profile_name: str) -> dict[str, list[str]]:
    """What a run lacks against the core profile, its task type's and ``profile_name``, merged
    (:func:`stillroom.audit.compliance.check_run`, the check every run gets when it is logged)."""
    from .api import get_plugin_manager
    from .audit.compliance import check_run

    return check_run(run_id, profile_name, get_plugin_manager().registry).missing


def assert_compliance_bundle(run_id: str, profile: str) -> None:
    """Fail with a readable list if the run misses anything its compliance profile requires."""
    missing = missing_from_run(run_id, profile)
    if missing:
        lines = [f"  {kind}: {', '.join(items)}" for kind, items in missing.items()]
        pytest.fail(f"run {run_id} is missing what profile {profile!r} requires:\n" + "\n".join(lines))
