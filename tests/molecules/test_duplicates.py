"""Rows of the same molecule with different labels are merged by the configured rule and
counted, never resolved by file order: in the loader, and through a real small run whose
``data_quality.json`` and model card carry the counts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import stillroom
from stillroom_molecules import embedded
from stillroom_molecules.loaders import load_molecules

from .test_multitask_run import SMALL_MLP_RUN


def test_yes_no_duplicates_by_majority_or_any(tmp_path: Path) -> None:
    # ethanol measured 1, 0, 0 (written three ways); benzene 1, 0 (a tie); propane 0 once
    path = tmp_path / "m.csv"
    path.write_text("smiles,active\nCCO,1\nOCC,0\nC(C)O,0\nc1ccccc1,1\nC1=CC=CC=C1,0\nCCC,0\n")
    by_majority = load_molecules(path, targets=["active"])
    assert dict(zip(by_majority.frame["smiles"], by_majority.frame["active"], strict=True)) == {
        "CCO": 0.0,  # one active in three
        "c1ccccc1": 1.0,  # a tie counts as active
        "CCC": 0.0,
    }
    assert by_majority.report["duplicates"] == {
        "rule": "values: mean, classes: majority",
        "groups": 2,
        "rows_merged": 3,
        "conflicting": 2,
        "conflicting_per_target": {"active": 2},
    }
    by_any = load_molecules(path, targets=["active"], duplicate_rule=("mean", "any"))
    assert by_any.frame.set_index("smiles")["active"].to_dict() == {"CCO": 1.0, "c1ccccc1": 1.0, "CCC": 0.0}


def test_value_duplicates_by_median_ignore_missing_measurements(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("smiles,logS,logD\nCCO,1.0,\nOCC,2.0,0.5\nC(C)O,6.0,\nCCN,0.3,0.1\n")
    table = load_molecules(path, targets=["logS", "logD"], duplicate_rule=("median", "majority"))
    ethanol = table.frame.set_index("smiles").loc["CCO"]
    assert ethanol["logS"] == 2.0 and ethanol["logD"] == 0.5  # median of 1, 2, 6; the one logD
    assert table.report["duplicates"]["conflicting_per_target"] == {"logS": 1, "logD": 0}


@pytest.mark.slow
def test_a_run_on_conflicting_duplicates_records_the_merge(tracking_store: str, tmp_path: Path) -> None:
    """FreeSolv molecules, 25 of them written twice with another measurement (+2 kcal/mol) and
    10 twice with the same one: the run merges them by their mean and says so."""
    import mlflow

    base = embedded.freesolv().frame.sample(300, random_state=0).reset_index(drop=True)
    conflicting = base.iloc[:25].assign(expt=lambda f: f["expt"] + 2.0)
    agreeing = base.iloc[25:35]
    frame = pd.concat([base, conflicting, agreeing], ignore_index=True).sample(frac=1.0, random_state=1)
    path = tmp_path / "freesolv_dupes.csv"
    frame.to_csv(path, index=False)
    overrides = ["data.dataset=molecules.file", f"data.path={path}", "data.targets=[expt]"]
    overrides += ["molecules.endpoint=hydration free energy", "molecules.units=kcal/mol", *SMALL_MLP_RUN]
    result = stillroom.distill("molecules", overrides=overrides)
    dup = result.data_quality["duplicates"]
    assert dup["found_by"] == "loader" and dup["rule"] == "values: mean, classes: majority"
    assert (dup["groups"], dup["rows_merged"], dup["conflicting"]) == (35, 35, 25)
    finding = [f for f in result.data_quality["findings"] if f["guard"] == "conflicting_duplicates"]
    assert len(finding) == 1 and finding[0]["severity"] == "warn" and finding[0]["value"] == 25
    assert sum(s["rows"] for n, s in result.data_quality["splits"].items() if n != "unlabelled") == 300
    card = json.loads(
        Path(mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="model_card.json")).read_text()
    )
    assert card["data_quality"]["duplicates"].startswith("35 group(s) of duplicate inputs merged (35 rows), 25 with conflicting")
    params = mlflow.get_run(result.run_id).data.params
    assert (params["molecules.endpoint"], params["molecules.units"]) == ("hydration free energy", "kcal/mol")
    # each merged molecule carries the mean of its two measurements
    merged = load_molecules(path, targets=["expt"]).frame.set_index("smiles")["expt"]
    originals = embedded.freesolv().frame.set_index("smiles")["expt"]
    smiles = base.iloc[:25]["smiles"]
    assert np.allclose(merged.loc[smiles].to_numpy(), originals.loc[smiles].to_numpy() + 1.0)
