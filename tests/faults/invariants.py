"""What must hold in a tracking store and an output directory after any fault, once the job and
the next job's recovery are done: read from the store and the file system, never from the job.

* no READY model version whose run is not FINISHED;
* no logged model left PENDING; no run left RUNNING;
* every FAILED run says why (``stillroom.failure``);
* no teacher run without its distillation run, unless labelled an orphan (``stillroom.orphan``);
* no partial output, no leftover lock or set-aside file beside an output;
* an output file is claimed by exactly the last FINISHED scoring run that wrote it (its sha256 and
  row count), and no FINISHED scoring run claims an output that is not there as it recorded;
* no temporary folder of a stillroom job (``stillroom-*`` in the jobs' temp folder) once the job
  ended, or, after a SIGKILL, once the next job's recovery ran.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.parquet as pq
from mlflow.tracking import MlflowClient

from stillroom._runtime import sha256_file
from stillroom.scratch import PREFIX

LEFTOVER = re.compile(r"^\..+\.(partial|previous)-\d+-[0-9a-f]+$|^\..+\.lock$")


def violations(output_dirs: list[Path], scratch_root: Path | None = None) -> list[str]:
    """Every broken invariant, one line each (empty: all hold); ``scratch_root``: the jobs' temp
    folder (their ``TMPDIR``), checked for folders they left."""
    client = MlflowClient()
    problems: list[str] = []
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = {r.info.run_id: r for r in client.search_runs(experiments, max_results=5000)} if experiments else {}
    for mv in [v for m in client.search_registered_models() for v in client.search_model_versions(f"name = '{m.name}'")]:
        status = runs[mv.run_id].info.status if mv.run_id in runs else "missing"
        if mv.status == "READY" and mv.run_id and status != "FINISHED":
            problems.append(f"version {mv.name} v{mv.version} is READY but its run {mv.run_id} is {status}")
    for model in client.search_logged_models(experiments) if experiments else []:
        if getattr(model.status, "name", str(model.status)).endswith("PENDING"):
            problems.append(f"logged model {model.model_id} ({model.name}) is PENDING")
    for run_id, r in runs.items():
        tags, status = r.data.tags, r.info.status
        if status == "RUNNING":
            problems.append(f"run {run_id} ({r.info.run_name}) is still RUNNING")
        if status == "FINISHED" and tags.get("stillroom.registration") == "pending":
            problems.append(f"run {run_id} ({r.info.run_name}) FINISHED but its student was never registered")
        if status == "FAILED" and "stillroom.failure" not in tags:
            problems.append(f"run {run_id} ({r.info.run_name}) is FAILED without a stillroom.failure tag")
        if tags.get("stillroom.role") == "teacher":
            parent = tags.get("mlflow.parentRunId")
            if (parent is None or parent not in runs) and "stillroom.orphan" not in tags:
                problems.append(f"teacher run {run_id} has no distillation run and is not labelled an orphan")
    problems += _output_violations(output_dirs, runs.values())
    if scratch_root is not None:
        problems += [f"leftover temporary folder {path.name}" for path in sorted(scratch_root.glob(f"{PREFIX}*"))]
    return problems


def _output_violations(output_dirs: list[Path], runs: object) -> list[str]:
    problems = []
    claims: dict[str, tuple[int, str, str]] = {}  # output -> (end time, sha256, rows) of its last FINISHED scoring run
    for r in runs:  # type: ignore[attr-defined]
        if r.data.tags.get("stillroom.role") == "scoring" and r.info.status == "FINISHED":
            output = r.data.params.get("output", "")
            when = r.info.end_time or 0
            if output not in claims or when > claims[output][0]:
                claims[output] = (when, r.data.params.get("output_digest", ""), str(int(r.data.metrics.get("output_rows", -1))))
    for folder in output_dirs:
        for path in folder.iterdir():
            if LEFTOVER.match(path.name):
                problems.append(f"leftover {path.name} in {folder}")
    for output, (_, digest, rows) in claims.items():
        path = Path(output)
        if not path.is_file():
            problems.append(f"a FINISHED scoring run claims {output}, which is not there")
        elif sha256_file(path) != digest or str(pq.ParquetFile(path).metadata.num_rows) != rows:
            problems.append(f"{output} is not what its last FINISHED scoring run recorded (sha256, rows)")
    for folder in output_dirs:
        for path in folder.glob("*.parquet"):
            if path.name.startswith("scores") and str(path) not in claims:
                problems.append(f"output {path} exists but no FINISHED scoring run claims it")
    return problems
