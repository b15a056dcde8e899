"""What a logged student is: a featuriser plus a model, saved natively, scoring SMILES.

The same object scores inside the distillation run (so what is measured is what is shipped)
and inside MLflow's pyfunc loader at batch-scoring time. It is saved as plain files, no
pickled Python objects: ``student.json`` (kind, task type, output names, featuriser
settings, RDKit version, starting logits), LightGBM boosters in LightGBM's text format, or a
torch ``state_dict`` loaded with ``weights_only=True``.

From SMILES to score: standardise (invalid SMILES are flagged, never raised), featurise the
valid ones, predict; an invalid row gets NaN outputs and ``smiles_valid = False``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from stillroom.errors import ModelLoadError

from .chem import RDKIT_VERSION, standardised_mol
from .featurize import Featurizer, FeaturizerConfig, featurize_mols

SPEC_FILE = "student.json"
VALID_COLUMN = "smiles_valid"


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

    def features(self, smiles: list[str], use_cache: bool = False) -> np.ndarray:
        return Featurizer(self.featurizer).transform(smiles, use_cache=use_cache)

    def predict_features(self, F: np.ndarray) -> np.ndarray:
        """(n, k) outputs: values for regression, probabilities otherwise."""
        if len(F) == 0:
            return np.zeros((0, len(self.outputs)))
        if self.kind == "lightgbm":
            raw = np.column_stack([b.predict(F, raw_score=True) + i for b, i in zip(self.boosters, self.init, strict=True)])
            return raw if self.task_type == "regression" else expit(raw)
        from .mlp import network_predict

        return network_predict(self.network, F, self.task_type)

    def predict_smiles(self, smiles: list[object]) -> tuple[np.ndarray, np.ndarray]:
        """(outputs (n, k) with NaN rows for invalid SMILES, valid mask (n,)).

        Each SMILES is parsed once: the standardised molecule is featurised directly (its
        fingerprint equals that of its canonical SMILES, which is what training used; a test
        checks this on the NCI pool)."""
        mols = [standardised_mol(s)[0] for s in smiles]
        valid = np.array([m is not None for m in mols], dtype=bool)
        out = np.full((len(mols), len(self.outputs)), np.nan)
        if valid.any():
            out[valid] = self.predict_features(featurize_mols([m for m in mols if m is not None], self.featurizer))
        return out, valid

    def frame(self, smiles: list[object]) -> pd.DataFrame:
        """The scoring output: one column per output (``score`` for a binary task) and the flag."""
        out, valid = self.predict_smiles(smiles)
        frame = pd.DataFrame(out, columns=self.output_columns())
        frame[VALID_COLUMN] = valid
        return frame

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
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Scorer:
        directory = Path(directory)
        try:
            spec = json.loads((directory / SPEC_FILE).read_text())
            featurizer = FeaturizerConfig.from_params(spec["featurizer"])
            scorer = cls(spec["kind"], spec["task_type"], list(spec["outputs"]), featurizer, init=list(spec["init"]))
            if scorer.kind == "lightgbm":
                import lightgbm as lgb

                scorer.boosters = [lgb.Booster(model_file=str(directory / f"booster_{j}.txt")) for j in range(len(scorer.init))]
            else:
                from .mlp import load_network

                scorer.network_config = dict(spec["network"])
                scorer.network = load_network(directory / "mlp.pt", scorer.network_config)
        except (OSError, KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise ModelLoadError(f"student files in {directory} are missing or corrupted: {type(exc).__name__}: {exc}") from None
        return scorer

    def n_parameters(self) -> int:
        if self.kind == "lightgbm":
            leaves = sum(sum(t["num_leaves"] for t in b.dump_model()["tree_info"]) for b in self.boosters)
            trees = sum(b.num_trees() for b in self.boosters)
            return int(2 * leaves - trees)
        return int(sum(p.numel() for p in self.network.parameters()))
