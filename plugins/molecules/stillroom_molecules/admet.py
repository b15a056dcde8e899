"""ADMET-AI (Swanson et al. 2024) as a teacher: a published Chemprop ensemble, any endpoint.

The ``admet-ai`` wheel (optional extra ``stillroom-molecules[admet]``) ships two ensembles of
five Chemprop D-MPNN models each, one for its classification and one for its regression
endpoints, trained on the TDC ADMET benchmark group; it runs offline. This teacher loads the
ensemble(s) that hold the requested endpoints and runs them directly in torch (inference
mode, no Lightning trainer, batched), averaging the five models as ADMET-AI does. Regression
and classification endpoints together make a mixed task: one student learns the whole panel.

Endpoint names are ADMET-AI's ids (``Solubility_AqSolDB``, ``BBB_Martins``, ``hERG`` ...);
their task type and units come from ADMET-AI's own ``admet.csv`` and are logged with the run.
An unknown name is a :class:`~stillroom.errors.ConfigError` listing the known ones.
"""

from __future__ import annotations

import importlib.metadata as md
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stillroom.contract import (
    ConfigError,
    ModelDescription,
    ModelLoadError,
    NativeModel,
    as_task_output,
    inference_threads,
    single_kind_task_type,
)

from .loaders import SMILES

DEFAULTS: dict[str, Any] = {"endpoints": ["Solubility_AqSolDB"], "batch_size": 256, "threads": 2}


def _resources() -> Path:
    try:
        dist = md.distribution("admet-ai")
    except md.PackageNotFoundError:
        raise ConfigError("teacher molecules.admet needs ADMET-AI: pip install 'stillroom-molecules[admet]'") from None
    return Path(str(dist.locate_file("admet_ai/resources")))


@lru_cache(maxsize=1)
def endpoint_table() -> pd.DataFrame:
    """ADMET-AI's endpoint list (id, name, task_type, units ...), model endpoints only."""
    table = pd.read_csv(_resources() / "data" / "admet.csv")
    return table[table["category"] != "Physicochemical"].set_index("id")


def check_endpoints(endpoints: list[str]) -> tuple[list[str], str, list[str] | None]:
    """The endpoints if all are known; their task type (regression, binary, multilabel, or
    mixed for a panel of both kinds) and, for mixed, each endpoint's kind."""
    if not endpoints:
        raise ConfigError("teacher.params.endpoints: name at least one ADMET-AI endpoint")
    table = endpoint_table()
    unknown = [e for e in endpoints if e not in table.index]
    if unknown:
        raise ConfigError(f"unknown ADMET-AI endpoint {unknown[0]!r} (known: {', '.join(sorted(table.index))})")
    kinds = ["regression" if table.loc[e, "task_type"] == "regression" else "binary" for e in endpoints]
    if len(set(kinds)) > 1:
        return list(endpoints), "mixed", kinds
    return list(endpoints), single_kind_task_type(kinds[0], len(endpoints)), None


def endpoint_facts(endpoints: list[str]) -> dict[str, dict[str, str]]:
    table = endpoint_table()
    return {
        e: {"name": str(table.loc[e, "name"]), "units": str(table.loc[e, "units"]), "task": str(table.loc[e, "task_type"])}
        for e in endpoints
    }


class AdmetTeacher:
    """The five-model Chemprop ensemble(s) of ADMET-AI restricted to some endpoints."""

    def __init__(self, endpoints: list[str], batch_size: int = 256, threads: int = 2) -> None:
        import torch
        from chemprop.models import load_model
        from chemprop.models.utils import load_output_columns

        self.endpoints, self.task_type, self.output_types = check_endpoints(endpoints)
        self.batch_size, self.threads = int(batch_size), int(threads)
        self.members: list[tuple[list[Any], list[int], list[str]]] = []  # (models, column indices, endpoint names)
        self.paths: list[Path] = []
        for ensemble_dir in sorted((_resources() / "models").iterdir()):
            paths = sorted(ensemble_dir.glob("*.pt"))
            if not paths:
                continue
            columns = list(load_output_columns(paths[0]))
            wanted = [e for e in self.endpoints if e in columns]
            if not wanted:
                continue
            try:
                models = [load_model(p, multicomponent=False).eval() for p in paths]
            except Exception as exc:
                raise ModelLoadError(f"ADMET-AI model {ensemble_dir.name} does not load: {type(exc).__name__}: {exc}") from None
            self.members.append((models, [columns.index(e) for e in wanted], wanted))
            self.paths += paths
        self._torch = torch

    def _batches(self, smiles: list[str]) -> Any:
        from chemprop.data import MoleculeDatapoint, MoleculeDataset, build_dataloader
        from rdkit import Chem

        points = [MoleculeDatapoint(mol=Chem.MolFromSmiles(s)) for s in smiles]
        # drop_last=False: left to itself, chemprop drops a last batch of one molecule (a guard for
        # batch norm in training), i.e. a prediction for 1, 257, 513 ... molecules lost one
        return build_dataloader(
            MoleculeDataset(points), batch_size=self.batch_size, num_workers=0, shuffle=False, drop_last=False
        )

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        smiles = X[SMILES].tolist()
        out = pd.DataFrame(index=range(len(smiles)), columns=self.endpoints, dtype=float)
        if not smiles:
            return as_task_output(out.to_numpy(), self.task_type)
        torch = self._torch
        from stillroom.torchkd.threads import torch_threads

        with torch_threads(inference_threads(self.threads)), torch.inference_mode():  # the run's budget while timed
            loader = self._batches(smiles)
            for models, idx, names in self.members:
                preds = []
                for batch in loader:
                    bmg, V_d, X_d = batch[0], batch[1], batch[2]
                    preds.append(torch.stack([m(bmg, V_d, X_d)[:, idx] for m in models]).mean(0))
                out[names] = torch.cat(preds).numpy()
        return as_task_output(out[self.endpoints].to_numpy(dtype=float), self.task_type)

    def describe(self) -> ModelDescription:
        n_params = sum(sum(p.numel() for p in m.parameters()) for models, _, _ in self.members for m in models)
        facts = endpoint_facts(self.endpoints)
        return ModelDescription(
            name="admet-ai",
            kind=f"ADMET-AI Chemprop D-MPNN ensemble ({sum(len(m) for m, _, _ in self.members)} models)",
            n_parameters=int(n_params),
            size_bytes=int(sum(p.stat().st_size for p in self.paths)),
            uri=f"admet-ai=={md.version('admet-ai')}",
            version=md.version("admet-ai"),
            details={
                "identity": f"admet-ai=={md.version('admet-ai')}|{','.join(self.endpoints)}",
                "endpoints": ",".join(self.endpoints),
                "units": "; ".join(f"{e}: {f['units']}" for e, f in facts.items()),
            },
        )

    def native_model(self) -> NativeModel | None:
        return None  # a published model, pinned by its package version


def build_admet_teacher(params: dict[str, Any], bundle: Any, seed: int) -> AdmetTeacher:
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown config field 'teacher.params.{unknown[0]}' (known: {sorted(DEFAULTS)})")
    p = DEFAULTS | params
    endpoints = [p["endpoints"]] if isinstance(p["endpoints"], str) else list(p["endpoints"])
    teacher = AdmetTeacher(endpoints, p["batch_size"], p["threads"])
    details = bundle.details if bundle is not None else {}
    data_type, data_kinds = details.get("task_type"), details.get("output_types")
    if data_type and (data_type, data_kinds) != (teacher.task_type, teacher.output_types):
        theirs = f"{teacher.task_type}" + (f" ({', '.join(teacher.output_types)})" if teacher.output_types else "")
        ours = f"{data_type}" + (f" ({', '.join(data_kinds)})" if data_kinds else "")
        raise ConfigError(f"ADMET-AI endpoint(s) {endpoints} are {theirs} but the data's targets are {ours}")
    n_targets = len(bundle.details.get("targets", [])) if bundle is not None else 0
    if n_targets and n_targets != len(endpoints):
        raise ConfigError(f"{len(endpoints)} ADMET-AI endpoint(s) for {n_targets} target column(s): give one endpoint per target")
    return teacher
