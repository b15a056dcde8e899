"""SIGINT, SIGTERM and SIGKILL at every step boundary of a real ``stillroom distill``.

After each fault (and, for SIGKILL, the recovery the next job runs first): no READY version
with an unfinished run, no PENDING logged model, no RUNNING run, every FAILED run says at which
step it failed, every teacher run belongs to its distillation or is labelled an orphan, no
temporary folder of the job is left."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import DISTILL
from .harness import ForkServer, Tally, inject_everywhere
from .invariants import violations

pytestmark = pytest.mark.slow


def test_every_signal_at_every_distillation_step_leaves_a_consistent_record(
    server: ForkServer, store: Path, scratch_root: Path, recovery: Callable[[str], None], record_property
) -> None:
    tally = Tally()
    whole = server.run(DISTILL)  # uninterrupted: how many boundaries there are, and the record it leaves
    assert whole.code in (0, 3) and whole.seen, (store / "fork-server.log").read_text()[-3000:]
    tally.add("an uninterrupted distillation", violations([], scratch_root))
    reached = inject_everywhere(
        server, DISTILL, whole.seen, tally, lambda: violations([], scratch_root), lambda: recovery("stillroom-fraud")
    )
    tally.report(record_property)
    assert any(b.startswith("teacher:") for b in reached) and any(b.startswith("registry:") for b in reached), reached
    assert not tally.violations, "\n".join(tally.violations)
