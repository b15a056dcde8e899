"""A multi-task run through the product: two regression endpoints with sparse labels (each
molecule measured for one of them), the MLP student with one output per endpoint, logged as
a torch state dict inside the pyfunc."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import stillroom
from stillroom_molecules import embedded

pytestmark = pytest.mark.slow


def test_multitask_mlp_student_on_sparse_endpoints(tracking_store: str, tmp_path: Path) -> None:
    import mlflow

    sol = embedded.solubility()[0].frame.sample(250, random_state=0).rename(columns={"SOL": "logS"})
    fs = embedded.freesolv().frame.sample(150, random_state=0).rename(columns={"expt": "dG_hyd"})
    frame = pd.concat([sol[["smiles", "logS"]], fs[["smiles", "dG_hyd"]]], ignore_index=True)
    path = tmp_path / "two_endpoints.csv"
    frame.to_csv(path, index=False)
    summary = stillroom.distill(
        "molecules",
        overrides=[
            "data.dataset=molecules.file",
            f"data.path={path}",
            "data.targets=[logS, dG_hyd]",
            "data.split=random",
            "data.pool_max=200",
            "teacher.params.boosters=1",
            "teacher.params.n_estimators=60",
            "teacher.params.forest_trees=30",
            "teacher.params.descriptors=screening",
            "student.name=molecules.mlp",
            "student.params.hidden=[64]",
            "student.params.epochs=20",
            "evaluation.bootstrap=10",
            "evaluation.efficiency_rows=100",
            "evaluation.latency_repeats=3",
            "molecules.units=logS: log10(mol/L); dG_hyd: kcal/mol",
        ],
    )
    m = summary["metrics"]
    assert summary["task_type"] == "regression" and summary["version"] == "1"
    for name in ("logS", "dG_hyd"):
        assert np.isfinite(m[f"student.rmse.{name}"]) and f"student.ef_1pct.{name}" in m
        assert m[f"teacher.r2.{name}"] > 0.2  # each endpoint learnt from its own sparse labels
    model = mlflow.pyfunc.load_model("models:/molecules-student/1")
    out = model.predict(pd.DataFrame({"smiles": ["CCO", "c1ccccc1", "???"]}))
    assert list(out.columns) == ["logS", "dG_hyd", "smiles_valid"]  # named after the data's target columns
    assert out["smiles_valid"].tolist() == [True, True, False]
    files = [p.name for p in Path(mlflow.artifacts.download_artifacts("models:/molecules-student/1")).rglob("*")]
    assert "mlp.pt" in files
