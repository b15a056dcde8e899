"""Whether a distillation run holds what its compliance profiles ask, read back from MLflow.

A compliance profile (``core``, ``core.<task type>``, the vertical's) lists the metrics,
params, tags and artifacts a reviewer needs. Checking it only in a plugin's tests proves the
code *can* log them; a configuration a test never tried (another enrichment fraction, a
mixed task, a run without labels) could still leave a gap that nobody sees until an audit.
So every run is checked when it is logged, against what the tracking server actually stored
(not what the code meant to send), and the result travels with the model:

* tag ``stillroom.compliance`` (``complete`` / ``incomplete``) on the run and on the
  registered version, and ``stillroom.compliance_missing`` listing the gaps;
* the console and the HTML report say what is missing;
* ``stillroom promote`` refuses an incomplete version unless an override reason is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .reference import required_under
from .registry import ComplianceProfile

if TYPE_CHECKING:  # tracking reads this module's tag names: no import cycle at run time
    from .tracking import RunRecord

COMPLETE = "complete"
INCOMPLETE = "incomplete"
STATUS_TAG = "stillroom.compliance"
MISSING_TAG = "stillroom.compliance_missing"
TAG_LIMIT = 4900  # MLflow tag values hold 5,000 characters (8,000 on newer stores)


@dataclass(frozen=True)
class ComplianceCheck:
    """The profiles a run was checked against and, per kind of record, what it lacks."""

    profiles: tuple[str, ...]
    missing: dict[str, list[str]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def status(self) -> str:
        return COMPLETE if self.complete else INCOMPLETE

    def gaps(self) -> list[str]:
        """``kind: item`` per missing item, in the profile's order."""
        return [f"{kind}: {item}" for kind, items in self.missing.items() for item in items]

    def tags(self) -> dict[str, str]:
        """The tags that carry this result on the run and the registered version."""
        return {STATUS_TAG: self.status, MISSING_TAG: "; ".join(self.gaps())[:TAG_LIMIT]}

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "profiles": list(self.profiles), "missing": self.missing}


def requirements(registry: Any, profile_name: str, task_type: str) -> tuple[tuple[str, ...], ComplianceProfile]:
    """The names checked and their merged profile: ``core``, ``core.<task type>``, the vertical's."""
    names = ("core", f"core.{task_type}", profile_name)
    profile = registry.get("compliance profile", names[0])
    for name in names[1:]:
        profile = profile.merged(registry.get("compliance profile", name))
    return names, profile


def check(record: RunRecord, registry: Any, profile_name: str) -> ComplianceCheck:
    """What ``record`` lacks against its profiles. The task type and the reference come from the
    run's own tags; a run judged against its teacher's outputs is not asked for the teacher's
    and the baseline's scores, which it cannot have (:func:`stillroom.reference.required_under`)."""
    task_type = record.tags.get("stillroom.task_type", "binary")
    reference = record.tags.get("stillroom.reference", "labels")
    names, profile = requirements(registry, profile_name, task_type)
    missing = {
        "metrics": [m for m in required_under(reference, profile.metrics) if m not in record.metrics],
        "params": [p for p in profile.params if p not in record.params],
        "tags": [t for t in profile.tags if t not in record.tags],
        "artifacts": [a for a in profile.artifacts if a not in record.artifacts],
        "datasets": [] if record.datasets else ["no mlflow.data dataset inputs"],
    }
    return ComplianceCheck(names, {k: v for k, v in missing.items() if v})


def check_run(run_id: str, profile_name: str, registry: Any = None) -> ComplianceCheck:
    """:func:`check` on the run as the tracking server stored it (``registry``: the profiles
    known to this plugin manager's registry; default, the process-wide one)."""
    from . import tracking
    from .plugins import get_plugin_manager

    return check(tracking.run_record(run_id), registry or get_plugin_manager().registry, profile_name)
