"""The README's "Using it" runs as written, from a fresh copy of the repository, on small settings.

Its shell blocks are joined into one bash script and run with ``set -e`` in a copy of the tracked
files (no ``.venv``, no store, no cache: what a fresh clone has). Two things differ from a user's
machine, both said here: the fraud run is small (``--set`` overrides appended to the ``distill``
line, the batch cut to 2,000 rows, a gate any small run passes so the promotion step runs), and
the third-party packages come from this checkout's environment through ``PYTHONPATH`` (pip sees
them installed, so ``pip install -c constraints.txt ./core ./plugins/fraud`` builds and installs
only stillroom's two distributions)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from .test_declared_imports import ROOT

pytestmark = pytest.mark.slow
SMALL = [
    "data.simulation.n_customers=300",
    "data.simulation.n_terminals=600",
    "data.simulation.n_days=87",  # 37 days of feature history, then 49 days of periods
    "data.simulation.train_days=21",
    "teacher.params.n_trees=20",
    "teacher.params.boosting_iterations=20",
    "student.params.n_estimators=30",
    "evaluation.bootstrap=20",
    "evaluation.efficiency_rows=2000",
    'gate.rules=["efficiency.size_ratio <= 1"]',
]


def using_it_script() -> str:
    """The shell blocks of the README's "Using it" section, in order, as one script."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Using it\n") :]
    section = section[: section.index("\n## ", 1)]
    return "\n".join(re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL))


def small(script: str) -> str:
    overrides = " ".join(f"--set '{s}'" for s in SMALL)
    script = script.replace("stillroom distill fraud --config run.yaml", f"stillroom distill fraud --config run.yaml {overrides}")
    return script.replace("--rows 200000", "--rows 2000")


def _fresh_copy(target: Path) -> Path:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in filter(None, tracked.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def test_the_readme_using_it_runs_as_written(tmp_path: Path, third_party: Path) -> None:
    script = using_it_script()
    assert "pip install -c constraints.txt ./core ./plugins/fraud" in script and "@champion" in script
    assert script.index("stillroom promote") < script.index("@champion")  # promoted before it is scored as champion
    clone = _fresh_copy(tmp_path / "clone")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "STILLROOM_", "VIRTUAL_ENV"))}
    env |= {"PYTHONPATH": str(third_party), "STILLROOM_CACHE_DIR": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    env["PATH"] = ":".join(p for p in env["PATH"].split(":") if ".venv" not in p)
    done = subprocess.run(
        ["bash", "-c", "set -eo pipefail\n" + small(script)], cwd=clone, env=env, capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-5000:]}"
    assert "stillroom 0.1.0" in done.stdout and "is now @champion" in done.stdout
    scores = pd.read_parquet(clone / "scores.parquet")
    assert len(scores) == 2000 and list(scores.columns) == ["TRANSACTION_ID", "score"]
    assert (clone / "review.html").stat().st_size > 10_000 and (clone / "mlflow.db").is_file()
    assert (clone / "mlruns" / "stillroom-fraud").is_dir()  # artifacts beside the store
    assert not [p.name for p in clone.iterdir() if ".partial-" in p.name or p.name.endswith(".lock")]
