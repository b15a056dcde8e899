"""The teacher side of a distillation, prepared once and reused: data, teacher, its outputs.

A single ``stillroom distill`` prepares it and uses it once. ``stillroom search`` prepares it
once for every trial: the teacher is trained or loaded a single time, its outputs on the
validation and test rows are computed once, and a trial whose transfer settings differ (pool
on or off, MUNGE points, a vertical's own, such as the molecules analogues) gets its own
transfer set labelled by the same teacher, remembered by the rows' digest so two trials with the
same settings never label twice.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..contract.bundle import DataBundle, frame_digest, validate_bundle
from ..contract.config import DistillConfig
from ..contract.protocols import Teacher
from ..contract.specs import TaskSpec
from ..plugins import StillroomPluginManager
from ..progress import step
from .applicability import check_gate
from .guards import DataQuality, run_guards
from .result import Outputs, TeacherRecord, TransferSet


@dataclass
class TeacherSession:
    """Data, teacher record and outputs; the teacher model itself only when kept (``model``)."""

    bundle: DataBundle
    teacher: TeacherRecord
    transfer: TransferSet
    outputs: Outputs
    model: Teacher | None
    config: DistillConfig
    shared: bool = False  # used by several runs (a search's trials, some at once)
    data_quality: DataQuality = field(default_factory=DataQuality)  # the data guards' record
    _labelled: dict[str, tuple[TransferSet, np.ndarray]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def for_config(
        self, pm: StillroomPluginManager, cfg: DistillConfig, needs_model: bool
    ) -> tuple[DataBundle, TransferSet, Outputs, Teacher | None]:
        """The data as this run sees it, the transfer set of ``cfg`` with the teacher's outputs on
        it, fresh output dicts (a run adds its students' outputs to them), and the teacher model
        when the student learns from its internals: a private copy when the session is shared
        (trials in parallel must not share its hooks).

        A transfer set built for ``cfg`` comes with its own copy of the bundle's ``details``:
        the hooks record what they added there (the molecules analogues' composition), and a
        trial's record must hold its own, not the last trial's."""
        from .pipeline import build_transfer_set, label_rows  # the pipeline imports this module

        bundle = self.bundle
        if transfer_inputs(cfg) == transfer_inputs(self.config):
            transfer, transfer_teacher = self.transfer, self.outputs.transfer_teacher
        else:
            bundle = dataclasses.replace(self.bundle, details=copy.deepcopy(self.bundle.details))
            transfer = build_transfer_set(pm, bundle, cfg, cfg.run.seed)
            key = frame_digest(transfer.X)
            with self._lock:
                if key not in self._labelled:
                    if self.model is None:
                        raise RuntimeError("this teacher session did not keep its teacher: it cannot label a new transfer set")
                    with step(f"teacher: labelling a transfer set of {len(transfer.X):,} rows for these transfer settings"):
                        self._labelled[key] = (transfer, label_rows(self.model, transfer.X, self.bundle, cfg))
                transfer, transfer_teacher = self._labelled[key]
        outputs = Outputs(transfer_teacher, dict(self.outputs.valid), dict(self.outputs.test))
        model = None
        if needs_model:
            if self.model is None:
                raise RuntimeError("this teacher session did not keep its teacher model")
            model = copy.deepcopy(self.model) if self.shared else self.model
        return bundle, transfer, outputs, model


def transfer_inputs(cfg: DistillConfig) -> dict[str, Any]:
    """What a transfer set may depend on: the config but the student, the recipe and the search.

    Why not ``cfg.transfer`` alone: the transfer hooks read vertical sections too (molecules:
    ``molecules.analogues``); a trial that changes one must get its own transfer set, or its
    record would claim analogues its student never saw. A needless rebuild costs the hooks' time
    only: equal rows have the same digest and are not labelled again."""
    return cfg.model_dump(mode="json", exclude={"student", "recipe", "search"})


def open_session(
    pm: StillroomPluginManager, task: TaskSpec, cfg: DistillConfig, keep: bool, shared: bool = False
) -> TeacherSession:
    """Steps 2-4: the data (checked by the data guards), the transfer set of ``cfg``, the teacher
    and its outputs (cached).

    ``keep``: hold the teacher model for later (a student learning from its internals, or a
    search labelling other transfer sets); otherwise it is released here. ``shared``: for
    several runs (a search), each then gets its own copy of the teacher model."""
    from .pipeline import build_transfer_set, teacher_phase

    with step("data: loading splits"):
        bundle = pm.registry.get("dataset", cfg.data.dataset).load(cfg.data, cfg.run.seed)
        validate_bundle(bundle)
    # a gate rule this data cannot produce a value for must not cost a teacher training
    check_gate(cfg, bundle, pm.registry.for_task("evaluator", task.name))
    quality = run_guards(bundle, cfg)  # before the teacher: a leak or a stray label costs no training
    transfer = build_transfer_set(pm, bundle, cfg, cfg.run.seed)
    teacher, outputs, model = teacher_phase(pm, task, cfg, bundle, transfer, keep=keep)
    return TeacherSession(bundle, teacher, transfer, outputs, model, cfg, shared, data_quality=quality)
