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
from typing import Any

from .. import tracking
from ..contract.names import COMPLETE, COMPLIANCE_MISSING_TAG, COMPLIANCE_TAG, INCOMPLETE, REFERENCE_TAG, TASK_TYPE_TAG
from ..contract.specs import ComplianceProfile
from ..tasks.judging import required_under
from ..tasks.kinds import DEFAULT_TASK_TYPE
from ..tracking import RunRecord

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
        return {COMPLIANCE_TAG: self.status, COMPLIANCE_MISSING_TAG: "; ".join(self.gaps())[:TAG_LIMIT]}

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
    and the baseline's scores, which it cannot have (:func:`stillroom.tasks.judging.required_under`)."""
    task_type = record.tags.get(TASK_TYPE_TAG, DEFAULT_TASK_TYPE)
    reference = record.tags.get(REFERENCE_TAG, "labels")
    names, profile = requirements(registry, profile_name, task_type)
    missing = {
        "metrics": [m for m in required_under(reference, profile.metrics) if m not in record.metrics],
        "params": [p for p in profile.params if p not in record.params],
        "tags": [t for t in profile.tags if t not in record.tags],
        "artifacts": [a for a in profile.artifacts if a not in record.artifacts],
        "datasets": [] if record.datasets else ["no mlflow.data dataset inputs"],
    }
    return ComplianceCheck(names, {k: v for k, v in missing.items() if v})


def check_run(run_id: str, profile_name: str, registry: Any) -> ComplianceCheck:
    """:func:`check` on the run as the tracking server stored it, against the profiles of
    ``registry`` (the registry of the plugin manager that ran the distillation)."""
    return check(tracking.run_record(run_id), registry, profile_name)
