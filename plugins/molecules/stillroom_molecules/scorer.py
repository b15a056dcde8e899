"""What a logged student is: a featuriser plus a model, saved natively, scoring SMILES.

The same object scores inside the distillation run (so what is measured is what is shipped)
and inside MLflow's pyfunc loader at batch-scoring time. It is saved as plain files, no
pickled Python objects: ``student.json`` (kind, task type, output names, featuriser
settings, RDKit version, starting logits), LightGBM boosters in LightGBM's text format, or a
torch ``state_dict`` loaded with ``weights_only=True``.

From SMILES to score: standardise (invalid SMILES are flagged, never raised), featurise the
valid ones, predict; an invalid row gets NaN outputs, ``smiles_valid = False`` and a reason. A
scoring job also gets each molecule's nearest-neighbour similarity to the training molecules
(``domain.npy``, :mod:`stillroom_molecules.domain`); the columns are :mod:`.score_columns`'.

A big batch (a screening library streamed in chunks by ``stillroom score``) is scored by a
pool of worker processes, one per core: RDKit's SMILES parser holds the GIL, so threads do not
help, and parsing is most of the cost. The pool is started once per loaded model and reused for
every chunk; ``STILLROOM_MOLECULES_JOBS`` sets its size (``1``: score in this process).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import tempfile
import warnings
import weakref
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rdkit import Chem
from scipy import sparse
from scipy.special import expit

from stillroom.contract import ConfigError, ModelLoadError, output_kinds, usable_cores

from .chem import RDKIT_VERSION, standardised_mol
from .domain import TrainingDomain
from .featurize import Featurizer, FeaturizerConfig, feature_rows
from .score_columns import VALID_COLUMN, Scored, output_frame, reason_of

SPEC_FILE = "student.json"
__all__ = ["VALID_COLUMN", "Scorer", "scoring_jobs"]
JOBS_VARIABLE = "STILLROOM_MOLECULES_JOBS"
PARALLEL_MIN_SMILES = 20_000  # below this, starting workers (importing RDKit, LightGBM) costs more than it saves
_WORKER: Scorer | None = None  # the scorer a worker process loaded once


def scoring_jobs() -> int:
    """Worker processes for a big batch: ``STILLROOM_MOLECULES_JOBS`` or the usable cores."""
    value = os.environ.get(JOBS_VARIABLE, "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ConfigError(f"{JOBS_VARIABLE}={value!r}: give a number of processes (1 = no workers)") from None
    return usable_cores()


@dataclass
class Scorer:
    """A featuriser and a fitted model (LightGBM boosters or a torch MLP) for (n, k) outputs."""

    kind: str  # lightgbm | mlp
    task_type: str
    outputs: list[str]
    featurizer: FeaturizerConfig
    boosters: list[Any] = field(default_factory=list)
    init: list[float] = field(default_factory=list)  # per booster: starting logit (0 for regression)
    network: Any = None  # torch module for kind == "mlp"
    network_config: dict[str, Any] = field(default_factory=dict)
    threads: int = 0  # LightGBM prediction threads (0: its default, every core); a pool worker uses 1
    output_types: list[str] | None = None  # a mixed task's kind per output (regression | binary)
    domain: TrainingDomain | None = None  # the training molecules' fingerprints (None: saved before they were)
    _pool: ProcessPoolExecutor | None = field(default=None, init=False, repr=False, compare=False)
    _pool_jobs: int = field(default=0, init=False, repr=False, compare=False)
    _in_process_only: bool = field(default=False, init=False, repr=False, compare=False)
    _cleanup: weakref.finalize | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def kinds(self) -> tuple[str, ...]:
        """What each output is (a value or a probability): see :func:`output_kinds`."""
        return output_kinds(self.task_type, len(self.outputs), self.output_types)

    def features(self, smiles: list[str], use_cache: bool = False) -> sparse.csr_matrix:
        return Featurizer(self.featurizer).transform(smiles, use_cache=use_cache)

    def predict_features(self, F: np.ndarray | sparse.csr_matrix) -> np.ndarray:
        """(n, k) outputs: values for regression, probabilities otherwise; dense or CSR rows."""
        if F.shape[0] == 0:
            return np.zeros((0, len(self.outputs)))
        if self.kind == "lightgbm":
            threads = {"num_threads": self.threads} if self.threads else {}
            raw = np.column_stack(
                [b.predict(F, raw_score=True, **threads) + i for b, i in zip(self.boosters, self.init, strict=True)]
            )
            return np.where(np.asarray(self.kinds) == "regression", raw, expit(raw))
        from .mlp import network_predict

        return network_predict(self.network, F, self.kinds)

    def predict_smiles(self, smiles: list[object]) -> tuple[np.ndarray, np.ndarray]:
        """(outputs (n, k) with NaN rows for invalid SMILES, valid mask (n,)): what the
        distillation times and evaluates. See :meth:`score` for what a scoring job writes."""
        scored = self._map(smiles, False)
        return scored.values, scored.valid

    def score(self, smiles: list[object]) -> Scored:
        """Outputs, validity, reasons and (with a stored domain) the domain columns' values."""
        return self._map(smiles, self.domain is not None)

    def _map(self, smiles: list[object], with_domain: bool) -> Scored:
        """A batch of at least ``PARALLEL_MIN_SMILES`` goes to the worker pool in order-preserving
        slices; the result is the same as in this process (a test checks it)."""
        jobs = scoring_jobs()
        if jobs <= 1 or len(smiles) < PARALLEL_MIN_SMILES or self._in_process_only:
            return self.score_block(smiles, with_domain)
        slices = [list(part) for part in np.array_split(np.asarray(smiles, dtype=object), jobs * 4)]
        try:
            parts = list(self._workers(jobs).map(_score_in_worker, slices, [with_domain] * len(slices)))
        except BrokenProcessPool:
            # a spawned worker re-imports the caller's script: without `if __name__ == "__main__":`
            # it dies; scoring still completes, in this process
            warnings.warn(
                "molecule scoring workers could not start (a script that loads the model needs an "
                f'`if __name__ == "__main__":` guard); scoring in one process. {JOBS_VARIABLE}=1 silences this.',
                RuntimeWarning,
                stacklevel=3,
            )
            self.close()
            self._in_process_only = True
            return self.score_block(smiles, with_domain)
        return Scored.concat(parts)

    def _workers(self, jobs: int) -> ProcessPoolExecutor:
        """The pool, started on first use: each worker loads this model from its saved files.

        Workers are spawned, not forked: a fork after LightGBM's or torch's OpenMP threads have
        run can deadlock the child."""
        if self._pool is None or self._pool_jobs != jobs:  # (re)started when the setting changes
            self.close()
            self._pool_jobs = jobs
            directory = Path(tempfile.mkdtemp(prefix="stillroom-molecules-scorer-"))
            self.save(directory)
            self._pool = ProcessPoolExecutor(
                max_workers=jobs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_load_worker,
                initargs=(str(directory),),
            )
            self._cleanup = weakref.finalize(self, _shutdown, self._pool, directory)
        return self._pool

    def close(self) -> None:
        """Stop the worker pool and remove the model copy its workers loaded (a loaded model
        otherwise keeps both until it is garbage)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._cleanup is not None:
            self._cleanup()  # runs once: the pool is already down, the directory goes
            self._cleanup = None

    def predict_block(self, smiles: list[object]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict_smiles` in this process."""
        scored = self.score_block(smiles, False)
        return scored.values, scored.valid

    def score_block(self, smiles: list[object], with_domain: bool) -> Scored:
        """:meth:`score` (``with_domain``) or :meth:`predict_smiles` in this process.

        Each SMILES is parsed once: the standardised molecule is featurised directly (its
        fingerprint equals that of its canonical SMILES, which is what training used; a test
        checks this on the NCI pool), into sparse rows that both model kinds predict from. One
        molecule at a time, from parse to feature row, while it is in the CPU cache: standardising
        the whole batch into a list first cost 46.9 against 39.6-40.3 us per molecule. The domain
        fingerprint is taken from the same molecule."""
        stereo = self.featurizer.needs_stereo()
        reasons: list[str | None] = []
        kept: list[Chem.Mol] = []

        def valid_molecules() -> Iterator[Chem.Mol]:
            for text in smiles:
                mol, why = standardised_mol(text, stereo)
                reasons.append(None if mol is not None else reason_of(text, why))
                if mol is not None:
                    if with_domain:
                        kept.append(mol)
                    yield mol

        rows = feature_rows(valid_molecules(), self.featurizer)
        valid = np.array([r is None for r in reasons], dtype=bool)
        out = np.full((len(smiles), len(self.outputs)), np.nan)
        if valid.any():
            out[valid] = self.predict_features(rows)
        if not with_domain or self.domain is None:
            return Scored(out, valid, reasons)
        similarity = np.full(len(smiles), np.nan)
        similarity[valid] = self.domain.max_similarity(kept)
        inside = np.zeros(len(smiles), dtype=bool)
        inside[valid] = self.domain.inside(similarity[valid])
        return Scored(out, valid, reasons, similarity, inside)

    def frame(self, smiles: list[object]) -> pd.DataFrame:
        """The scoring output (:func:`~.score_columns.output_frame`)."""
        return output_frame(self.score(smiles), self.output_columns())

    def output_columns(self) -> list[str]:
        return ["score"] if self.task_type == "binary" else list(self.outputs)

    # --- files ---------------------------------------------------------------------------

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        spec = {
            "format": 1,
            "kind": self.kind,
            "task_type": self.task_type,
            "outputs": self.outputs,
            "output_types": self.output_types,
            "featurizer": {k: v for k, v in self.featurizer.__dict__.items() if k not in ("n_jobs", "cache")},
            "rdkit_version": RDKIT_VERSION,
            "init": self.init,
            "network": self.network_config,
        }
        (directory / SPEC_FILE).write_text(json.dumps(spec, indent=2, default=list))
        if self.kind == "lightgbm":
            for j, booster in enumerate(self.boosters):
                booster.save_model(str(directory / f"booster_{j}.txt"))
        else:
            import torch

            torch.save(self.network.state_dict(), directory / "mlp.pt")
        if self.domain is not None:
            self.domain.save(directory)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Scorer:
        directory = Path(directory)
        try:
            spec = json.loads((directory / SPEC_FILE).read_text())
            featurizer = FeaturizerConfig.from_params(spec["featurizer"])
            types = spec.get("output_types")  # absent in models saved before mixed tasks
            scorer = cls(
                spec["kind"], spec["task_type"], list(spec["outputs"]), featurizer, init=list(spec["init"]), output_types=types
            )
            output_kinds(scorer.task_type, len(scorer.outputs), scorer.output_types)  # a mixed spec needs its types
            if scorer.kind == "lightgbm":
                import lightgbm as lgb

                scorer.boosters = [lgb.Booster(model_file=str(directory / f"booster_{j}.txt")) for j in range(len(scorer.init))]
            else:
                from .mlp import load_network

                scorer.network_config = dict(spec["network"])
                scorer.network = load_network(directory / "mlp.pt", scorer.network_config)
            scorer.domain = TrainingDomain.load(directory)
        except (OSError, KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise ModelLoadError(f"student files in {directory} are missing or corrupted: {type(exc).__name__}: {exc}") from None
        return scorer

    def n_parameters(self) -> int:
        if self.kind == "lightgbm":
            leaves = sum(sum(t["num_leaves"] for t in b.dump_model()["tree_info"]) for b in self.boosters)
            trees = sum(b.num_trees() for b in self.boosters)
            return int(2 * leaves - trees)
        return int(sum(p.numel() for p in self.network.parameters()))


def _load_worker(directory: str) -> None:
    """Worker start: load the model once, one thread per process (the pool is the parallelism)."""
    global _WORKER
    os.environ[JOBS_VARIABLE] = "1"
    _WORKER = Scorer.load(directory)
    _WORKER.threads = 1  # LightGBM's OpenMP threads in every worker would fight over the same cores
    if _WORKER.network is not None:
        import torch

        torch.set_num_threads(1)


def _score_in_worker(smiles: list[object], with_domain: bool) -> Scored:
    if _WORKER is None:
        raise RuntimeError("scoring worker started without a model")
    return _WORKER.score_block(smiles, with_domain)


def _shutdown(pool: ProcessPoolExecutor, directory: Path) -> None:
    pool.shutdown(wait=False, cancel_futures=True)
    shutil.rmtree(directory, ignore_errors=True)
