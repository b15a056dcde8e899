"""The default student: the LightGBM or MLP student (and its capacity) that keeps the most of its
reference on validation, within a size and latency budget.

Which fingerprint student keeps more of a teacher depends on the endpoint and the transfer set:
on the ADMET-AI benchmark the multi-task MLP kept more of every endpoint, on small labelled sets
LightGBM often does. Guessing one for every dataset left fidelity on the table, so
``molecules.auto`` trains each candidate on the same feature rows and keeps the one with the
highest validation fidelity among those within the budget (``max_size_mb`` of saved files,
``max_latency_us`` per molecule for the model itself; the featuriser is shared by every candidate
and costs the same for all); candidates within ``fidelity_tolerance`` of the best count as equal
and the fastest of them is kept. Fidelity is R2 against the reference on the validation molecules
held out for early stopping (the calibration molecules of the conformal intervals are not used):
the teacher's outputs for the distilled student. The run's baseline does not choose again: it is
the chosen candidate trained on labels only (``baseline_spec``, logged as ``baseline.name`` and
``baseline.params.*``), the same student without a teacher. (A ``molecules.auto`` trained on labels
alone, outside a run, would choose on labels.)

Every candidate (its settings, validation fidelity, size, latency, whether it was within budget)
is kept in ``selection`` and logged by the evaluator (``molecules/student_selection.json`` and
the ``student_selection`` table); the chosen one is what is shipped, measured and calibrated.

**At scale the candidates are compared on a sample.** Training four candidates on every transfer
row costs four full fits, for the student and again for the baseline: on a 41k-molecule set
(35,800 transfer rows) that was about 20 CPU-minutes, more than the whole run's 15-minute budget
(``bench/results/molecules-scale.md``). Above ``selection_rows`` (10,000) transfer rows the
candidates are trained on a seeded sample of that many rows (validation unchanged) and only the
chosen one is trained again on every row: the choice costs a bounded amount whatever the data's
size, and what is shipped learnt from all of it. The sample size is logged and recorded with the
selection (``trained_rows`` per candidate); ``selection_rows: 0`` compares on every row.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from stillroom.contract import ConfigError, console

from .outputs import Matrix, calibration_reference, subset_matrix
from .scorer import Scorer
from .student import LGBM_DEFAULTS, SmilesStudent

CANDIDATE_KINDS = ("molecules.lightgbm", "molecules.mlp")
SELECTION_DEFAULTS: dict[str, Any] = {
    "candidates": [
        {"name": "molecules.lightgbm", "params": {"num_leaves": 31}},
        {"name": "molecules.lightgbm", "params": {"num_leaves": 63, "min_child_samples": 5}},
        {"name": "molecules.mlp", "params": {"hidden": [512, 128]}},
        {"name": "molecules.mlp", "params": {"hidden": [1024, 256], "dropout": 0.2}},
    ],
    "max_size_mb": 50.0,
    # per molecule, the model alone on a batch of training rows, one thread; generous, because it is
    # measured on whatever machine trains (a loaded one too): it rules out a model far too slow, not 10%
    "max_latency_us": 2000.0,
    "latency_rows": 512,
    # candidates this close to the best validation fidelity count as equal: the fastest of them is
    # chosen (a near-tie, 0.7939 vs 0.7932, chose a LightGBM student 75x slower per molecule than the MLP)
    "fidelity_tolerance": 0.002,
    "selection_rows": 10_000,  # above this many transfer rows, candidates are compared on a seeded sample of it; 0: all
}


def _mlp_defaults() -> dict[str, Any]:
    from .mlp import DEFAULTS

    return DEFAULTS


def kind_defaults(name: str) -> dict[str, Any]:
    return LGBM_DEFAULTS if name == "molecules.lightgbm" else _mlp_defaults()


class SelectedStudent(SmilesStudent):
    """Trains every candidate, ships the best within budget (see the module docstring).

    ``student.params``: ``candidates`` (a list of ``{name, params}``), ``max_size_mb``,
    ``max_latency_us``, ``latency_rows``, ``featurizer`` and ``conformal`` (shared by every
    candidate), and any LightGBM or MLP setting at the top level, which applies to every
    candidate of the kind that has it (``n_estimators=80`` shortens every LightGBM candidate)."""

    kind = "auto"

    def __init__(self, params: dict[str, Any], seed: int) -> None:
        own = {k: params[k] for k in SELECTION_DEFAULTS if k in params}
        shared = {k: v for k, v in params.items() if k not in SELECTION_DEFAULTS}
        known = set(LGBM_DEFAULTS) | set(_mlp_defaults())
        super().__init__(shared, seed, {k: None for k in known})
        self.shared = {k: v for k, v in shared.items() if k not in known}  # featurizer, conformal: as given
        self.routed = {k: v for k, v in self.params.items() if v is not None}  # the top-level settings the user gave
        self.selection_params = SELECTION_DEFAULTS | own
        self.candidates = [_candidate(c, i) for i, c in enumerate(self.selection_params["candidates"])]
        selection_sample(0, int(self.selection_params["selection_rows"]), seed)  # a bad value fails before the teacher
        from .mlp import epoch_budget

        epoch_budget(_mlp_defaults() | self.routed, 0)  # a bad max_row_epochs too
        if not 0 <= float(self.selection_params["fidelity_tolerance"]) < 1:
            raise ConfigError(
                f"student.params.fidelity_tolerance must be in [0, 1) (got {self.selection_params['fidelity_tolerance']})"
            )
        self.selection: list[dict[str, Any]] = []
        self.chosen: dict[str, Any] | None = None

    def _fit(self, F: sparse.csr_matrix, m: Matrix, F_valid: sparse.csr_matrix | None, m_valid: Matrix | None) -> None:
        if F_valid is None or m_valid is None:
            raise ConfigError("molecules.auto chooses its student on validation molecules; the data has none")
        scorer = self._fitted()
        sample = selection_sample(F.shape[0], int(self.selection_params["selection_rows"]), self.seed)
        F_sel, m_sel = (F, m) if sample is None else (F[sample], subset_matrix(m, sample))
        if sample is not None:
            console.log(
                f"student: {F.shape[0]:,} transfer rows: candidates compared on a seeded sample of {len(sample):,}, "
                f"the chosen one trained again on all (student.params.selection_rows={len(sample)}; 0 compares on all)"
            )
        self.selection, fitted = [], []
        for i, (name, params) in enumerate(self.candidates):
            if name == "molecules.lightgbm" and scorer.task_type == "multiclass":
                continue  # multiclass is the MLP's job
            settings = params | {k: v for k, v in self.routed.items() if k in kind_defaults(name)}
            candidate = self._trained(name, settings, F_sel, m_sel, F_valid, m_valid)
            measured = self._measure(name, settings, candidate, F, F_valid, m_valid)
            self.selection.append(measured | {"trained_rows": F_sel.shape[0]})
            fitted.append(candidate)
            c = self.selection[-1]
            console.log(
                f"student candidate {i + 1}/{len(self.candidates)} {name} {params}: validation fidelity "
                f"{c['validation_fidelity']:.4f}, {c['size_bytes'] / 2**20:.2f} MB, "
                f"{c['latency_us_per_molecule']:.1f} us/molecule"
            )
        if not fitted:
            raise ConfigError("molecules.auto has no candidate for a multiclass task: add a molecules.mlp candidate")
        best = self._choose()
        winner = fitted[best]
        if sample is not None:  # what is shipped learns from every row
            chosen = self.selection[best]
            winner = self._trained(chosen["name"], chosen["params"], F, m, F_valid, m_valid)
            chosen["refit_rows"] = F.shape[0]
            console.log(f"student: {chosen['name']} {chosen['params']} trained again on all {F.shape[0]:,} rows")
        self.scorer = winner.scorer
        self.kind = winner.kind  # what is shipped and described: molecules-<kind>-student
        self.chosen = self.selection[best]
        self.training = {
            "chosen": f"{self.chosen['name']} {self.chosen['params']}",
            **{k: v for k, v in winner.training.items()},
        }

    def _trained(
        self, name: str, settings: dict[str, Any], F: sparse.csr_matrix, m: Matrix, F_valid: Any, m_valid: Any
    ) -> SmilesStudent:
        """One candidate of kind ``name`` fitted on ``F`` (stopping early on the validation rows)."""
        from .student import LightGBMStudent, MLPStudent

        scorer = self._fitted()
        candidate = {"molecules.lightgbm": LightGBMStudent, "molecules.mlp": MLPStudent}[name](settings, self.seed)
        candidate.scorer = Scorer(
            candidate.kind, scorer.task_type, scorer.outputs, self.featurizer, output_types=scorer.output_types
        )
        candidate._fit(F, m, F_valid, m_valid)
        return candidate

    def _measure(
        self,
        name: str,
        settings: dict[str, Any],
        candidate: SmilesStudent,
        F: sparse.csr_matrix,
        F_valid: sparse.csr_matrix,
        m_valid: Matrix,
    ) -> dict[str, Any]:
        scorer = candidate._fitted()
        fidelity = validation_fidelity(m_valid, scorer.predict_features(F_valid))
        with tempfile.TemporaryDirectory() as tmp:
            size = sum(p.stat().st_size for p in scorer.save(Path(tmp)).iterdir())
        latency = model_latency_us(scorer, F, int(self.selection_params["latency_rows"]))
        budget = self.selection_params
        within = size <= float(budget["max_size_mb"]) * 2**20 and latency <= float(budget["max_latency_us"])
        return {
            "name": name,
            "params": {k: v for k, v in settings.items()},
            "validation_fidelity": fidelity,
            "reference": "teacher" if m_valid.teacher is not None else "labels",
            "size_bytes": int(size),
            "latency_us_per_molecule": latency,
            "within_budget": bool(within),
            **{k: v for k, v in candidate.training.items() if k in ("trees_per_output", "epochs_run", "epoch_cap")},
        }

    def _choose(self) -> int:
        """The fastest candidate within budget whose validation fidelity is within
        ``fidelity_tolerance`` of the best (see :func:`_cheapest_near_best`). None within budget is
        an error naming the budget and what the candidates measured."""
        fits = [i for i, c in enumerate(self.selection) if c["within_budget"]]
        if not fits:
            measured = "; ".join(
                f"{c['name']} {c['params']}: {c['size_bytes'] / 2**20:.1f} MB, {c['latency_us_per_molecule']:.0f} us"
                for c in self.selection
            )
            raise ConfigError(
                f"no student candidate within the budget (student.params.max_size_mb={self.selection_params['max_size_mb']}, "
                f"max_latency_us={self.selection_params['max_latency_us']}): {measured}"
            )
        best = _cheapest_near_best(self.selection, fits, float(self.selection_params["fidelity_tolerance"]))
        for i, c in enumerate(self.selection):
            c["chosen"] = i == best
        return best

    def baseline_spec(self) -> dict[str, Any]:
        """The chosen candidate as a student config of its own kind (with the shared featuriser
        and conformal settings): the run's baseline is this model trained on labels only, "the
        same student without a teacher", not a second choice among the candidates on labels."""
        if self.chosen is None:
            raise RuntimeError("molecules.auto has not chosen a student yet")
        return {"name": self.chosen["name"], "params": self.shared | self.chosen["params"]}

    def describe(self) -> Any:
        desc = super().describe()
        if self.chosen is not None:
            desc.details["student_selection"] = [
                {
                    k: c[k]
                    for k in (
                        "name",
                        "params",
                        "validation_fidelity",
                        "size_bytes",
                        "latency_us_per_molecule",
                        "within_budget",
                        "chosen",
                        "trained_rows",
                    )
                    if k in c
                }
                for c in self.selection
            ]
        return desc


def _cheapest_near_best(rows: list[dict[str, Any]], fits: list[int], tolerance: float) -> int:
    """Among the candidates ``fits`` (within budget), those whose validation fidelity is within
    ``tolerance`` of the best are equal as far as validation can tell; of those, the lowest
    latency per molecule wins, then the smaller model. Why: a difference of a few thousandths of
    R2 on a few hundred validation molecules is noise, while a student's speed is what it is
    shipped for (the gate's efficiency rule judges it). Decided on validation only."""
    best = max(rows[i]["validation_fidelity"] for i in fits)
    near = [i for i in fits if rows[i]["validation_fidelity"] >= best - tolerance]
    return min(near, key=lambda i: (rows[i]["latency_us_per_molecule"], rows[i]["size_bytes"]))


def _candidate(entry: Any, i: int) -> tuple[str, dict[str, Any]]:
    """One ``{name, params}`` of ``student.params.candidates``, checked now (not after a teacher)."""
    if not isinstance(entry, dict) or entry.get("name") not in CANDIDATE_KINDS or set(entry) - {"name", "params"}:
        raise ConfigError(
            f"student.params.candidates[{i}] must be {{name: one of {', '.join(CANDIDATE_KINDS)}, params: {{...}}}}"
        )
    params = dict(entry.get("params") or {})
    unknown = sorted(set(params) - set(kind_defaults(entry["name"])))
    if unknown:
        raise ConfigError(f"unknown config field 'student.params.candidates[{i}].params.{unknown[0]}' for {entry['name']}")
    return str(entry["name"]), params


def selection_sample(n_rows: int, selection_rows: int, seed: int) -> np.ndarray | None:
    """Sorted indices of the seeded sample the candidates are compared on, or ``None`` (every row)
    when there are at most ``selection_rows`` rows or ``selection_rows`` is 0."""
    if selection_rows < 0:
        raise ConfigError(f"student.params.selection_rows must be >= 0 (0: compare on every row), not {selection_rows}")
    if not selection_rows or n_rows <= selection_rows:
        return None
    return np.sort(np.random.default_rng([seed, 10]).choice(n_rows, size=selection_rows, replace=False))


def validation_fidelity(m: Matrix, p: np.ndarray) -> float:
    """Macro R2 of the outputs against the reference: the teacher's outputs where the targets
    carry them (a value, or a probability), else the labels (a probability against 0/1 is the
    Brier skill score)."""
    p = np.asarray(p, dtype=float)
    reference = m.teacher if m.teacher is not None else _label_reference(m)
    p, reference = np.atleast_2d(p.T).T, np.atleast_2d(np.asarray(reference, dtype=float).T).T
    scores = []
    for j in range(reference.shape[1]):
        ok = np.isfinite(reference[:, j]) & np.isfinite(p[:, j])
        if ok.sum() < 3 or np.var(reference[ok, j]) == 0:
            continue
        r = reference[ok, j]
        scores.append(1 - float(np.mean((r - p[ok, j]) ** 2)) / float(np.var(r)))
    return float(np.mean(scores)) if scores else float("nan")


def _label_reference(m: Matrix) -> np.ndarray:
    if m.kinds and m.kinds[0] == "multiclass":
        return m.hard  # one-hot rows, NaN where unlabelled
    return calibration_reference(m)


def model_latency_us(scorer: Scorer, F: sparse.csr_matrix, rows: int) -> float:
    """Microseconds per molecule of the model on a batch of feature rows (best of three; what
    the candidates differ in), one thread as each scoring worker runs.

    Measured as this thread's CPU time, not wall time: the model runs on this one thread
    (LightGBM's and torch's single thread), so its CPU time is what an idle core would take. Wall
    time also counts the time the thread waited for a core: on the shared 2-core bench VM (load
    average 13) a LightGBM candidate measured 2,850 us a molecule and fell out of the 2,000 us
    budget, a choice made by the machine's load rather than by the model."""
    from stillroom.torchkd.threads import torch_threads

    batch = F[: max(1, min(rows, F.shape[0]))]
    threads, scorer.threads = scorer.threads, 1
    try:
        with torch_threads(1):
            best = float("inf")
            for _ in range(3):
                start = time.thread_time()
                scorer.predict_features(batch)
                best = min(best, time.thread_time() - start)
    finally:
        scorer.threads = threads
    return best / batch.shape[0] * 1e6
