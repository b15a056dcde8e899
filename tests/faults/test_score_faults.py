"""SIGINT, SIGTERM and SIGKILL at every step boundary of a real ``stillroom score`` (between its
chunks too), on an output that a previous job wrote: the previous output stays as it was, no
partial file or temporary folder survives (after SIGKILL: once the same job is run again), and
the output is always the one its last FINISHED scoring run recorded (sha256 and row count)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from stillroom_fraud.batch import make_batch

from .conftest import DISTILL
from .harness import ForkServer, Tally, inject_everywhere
from .invariants import violations

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scoring_job(server: ForkServer, store: Path) -> list[str]:
    assert server.run(DISTILL).code in (0, 3), (store / "fork-server.log").read_text()[-3000:]
    make_batch(2_500, seed=7, n_customers=150, n_terminals=300).to_parquet(store / "tonight.parquet", index=False)
    outputs = store / "out"
    outputs.mkdir()
    return [
        "score",
        "models:/fraud-student/latest",
        str(store / "tonight.parquet"),
        str(outputs / "scores.parquet"),
        "--passthrough",
        "TRANSACTION_ID",
        "--chunk-rows",
        "1000",
        "--no-progress",
        "--overwrite",
    ]


def test_every_signal_at_every_scoring_step_leaves_the_previous_output_or_the_new_one(
    server: ForkServer,
    store: Path,
    scratch_root: Path,
    recovery: Callable[[str], None],
    scoring_job: list[str],
    record_property,
) -> None:
    outputs = [store / "out"]
    tally = Tally()
    whole = server.run(scoring_job)
    assert whole.code == 0 and whole.seen, (store / "fork-server.log").read_text()[-3000:]
    tally.add("an uninterrupted scoring job", violations(outputs, scratch_root))

    def next_job() -> None:  # the same job again: it cleans up after the dead one
        assert server.run(scoring_job).code == 0
        recovery("stillroom-scoring")

    reached = inject_everywhere(server, scoring_job, whole.seen, tally, lambda: violations(outputs, scratch_root), next_job)
    tally.report(record_property)
    assert any(b.startswith("scoring: 1,000 rows written") for b in reached), reached
    assert any(b.startswith("MLflow: logging the scoring run") for b in reached), reached
    assert not tally.violations, "\n".join(tally.violations)
