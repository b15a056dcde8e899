"""Closing what dead jobs left open: runs still RUNNING, logged models still PENDING, teacher
runs whose distillation never came, distillations that ended but were never registered.

SIGINT, SIGTERM and every error are cleaned up by the job itself
(:func:`stillroom.tracking.runs.fail_run`). A job killed with SIGKILL, or whose tracking server
died under it, cannot: its run stays RUNNING and a model it was uploading stays PENDING. Every run
stillroom opens carries its writer's pid and host (:func:`~stillroom.tracking.runs.writer_tags`);
the next ``stillroom distill`` or ``stillroom score`` on the same machine looks for runs of its
experiments whose writer is gone and closes them as the job would have: FAILED, with a
``stillroom.failure`` tag saying so, their PENDING models FAILED, no version pointing at them,
and a teacher run without its distillation labelled an orphan. A distillation run that ended but
whose job died before its student was registered (tag ``stillroom.registration = pending``) is
closed the same way. Runs written from another machine are left alone: their writer cannot be
checked from here.
"""

from __future__ import annotations

import logging
import socket
from contextlib import suppress

import mlflow
from mlflow.tracking import MlflowClient

from .._runtime import pid_alive
from ..contract.names import TAG_PREFIX
from .runs import ORPHAN_TAG, PARENT_TAG, REGISTRATION_TAG, TAG_VALUE_LIMIT, WRITER_HOST_TAG, WRITER_PID_TAG, fail_run

logger = logging.getLogger(__name__)


def _dead_writer(tags: dict[str, str], host: str) -> bool:
    pid = tags.get(WRITER_PID_TAG, "")
    return tags.get(WRITER_HOST_TAG) == host and pid.isdigit() and not pid_alive(int(pid))


def recover(experiments: list[str]) -> list[str]:
    """Close the runs of dead writers in these experiments (those that exist); return their ids."""
    host = socket.gethostname()
    ids = [e.experiment_id for name in experiments if (e := mlflow.get_experiment_by_name(name)) is not None]
    if not ids:
        return []
    client = MlflowClient()
    closed = []
    written_here = f"tags.`{WRITER_HOST_TAG}` = '{host}'"
    for r in client.search_runs(ids, filter_string=f"attributes.status = 'RUNNING' and {written_here}", max_results=1000):
        if _dead_writer(r.data.tags, host):
            pid = r.data.tags[WRITER_PID_TAG]
            fail_run(r.info.run_id, f"killed: its process {pid} ended without closing the run (closed by a later job)")
            closed.append(r.info.run_id)
    unregistered = f"attributes.status = 'FINISHED' and tags.`{REGISTRATION_TAG}` = 'pending' and {written_here}"
    for r in client.search_runs(ids, filter_string=unregistered, max_results=1000):
        if _dead_writer(r.data.tags, host):
            pid = r.data.tags[WRITER_PID_TAG]
            fail_run(
                r.info.run_id, f"registry: its process {pid} ended before the student was registered (closed by a later job)"
            )
            closed.append(r.info.run_id)
    teachers = f"tags.`{TAG_PREFIX}role` = 'teacher' and {written_here}"
    for r in client.search_runs(ids, filter_string=teachers, max_results=1000):
        tags = r.data.tags
        if PARENT_TAG not in tags and ORPHAN_TAG not in tags and _dead_writer(tags, host):
            with suppress(Exception):
                pid = tags[WRITER_PID_TAG]
                why = f"its distillation did not complete: process {pid} ended first; the teacher is kept as trained"
                client.set_tag(r.info.run_id, ORPHAN_TAG, why[:TAG_VALUE_LIMIT])
    if closed:
        logger.warning(f"closed {len(closed)} run(s) left RUNNING by killed jobs: {', '.join(closed)}")
    return closed
