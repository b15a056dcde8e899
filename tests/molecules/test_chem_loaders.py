"""Standardisation, molecule file loaders (every format) and their bad-input messages."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from stillroom.errors import DataError
from stillroom_molecules import embedded
from stillroom_molecules.chem import standardise, standardise_one
from stillroom_molecules.loaders import infer_task_type, load_molecules


def test_standardisation_largest_fragment_neutral_canonical() -> None:
    # the sodium salt of acetic acid and the acid written another way become one molecule
    assert standardise_one("CC(=O)[O-].[Na+]") == ("CC(=O)O", None)
    assert standardise_one("OC(C)=O") == ("CC(=O)O", None)
    # a hydrochloride loses its counter-ion; a quaternary ammonium keeps its charge
    assert standardise_one("CCN.Cl")[0] == "CCN"
    assert standardise_one("C[N+](C)(C)C")[0] == "C[N+](C)(C)C"
    assert standardise_one("c1ccccc1(") == (None, "unparsable")
    assert standardise_one("") == (None, "empty")
    assert standardise_one(None) == (None, "empty")


def test_invalid_smiles_are_counted_and_reported() -> None:
    std = standardise(["CCO", "xyz", "C1CC", "c1ccccc1", float("nan")])
    assert std.smiles[0] == "CCO" and std.smiles[3] == "c1ccccc1"
    assert std.n_invalid == 3
    report = std.report()
    assert report["invalid_by_reason"] == {"unparsable": 2, "empty": 1}
    assert [e["row"] for e in report["invalid_examples"]] == [1, 2, 4]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_loader_drops_invalid_and_duplicates(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.csv", "SMILES,logS,name\nCCO,0.1,a\nOCC,0.3,b\nnot_a_smiles,1.0,c\nc1ccccc1,-2,d\nCCN,,e\n")
    table = load_molecules(path, targets=["logS"])
    assert table.task_type == "regression"
    assert table.frame["smiles"].tolist() == ["CCO", "c1ccccc1"]  # OCC == CCO after canonicalisation
    assert table.frame["logS"].tolist() == pytest.approx([0.2, -2.0])  # the two measurements of ethanol, averaged
    assert table.report["invalid"] == 1 and table.report["duplicates"]["rows_merged"] == 1
    assert table.report["duplicates"]["conflicting"] == 1
    assert table.report["unlabelled_rows_dropped"] == 1


def test_parquet_smi_and_gzipped_sdf(tmp_path: Path) -> None:
    pd.DataFrame({"canonical_smiles": ["CCO", "CCC", "CCCl"], "y1": [1, 0, 1], "y2": [0, 0, 1]}).to_parquet(
        tmp_path / "m.parquet"
    )
    table = load_molecules(tmp_path / "m.parquet", targets=["y1", "y2"])
    assert table.task_type == "multilabel" and len(table.frame) == 3
    smi = _write(tmp_path / "pool.smi", "smiles name\nCCO ethanol\nc1ccccc1\tbenzene\nbad(\n")
    pool = load_molecules(smi, require_targets=False)
    assert pool.frame["smiles"].tolist() == ["CCO", "c1ccccc1"] and pool.report["invalid"] == 1
    train, _ = embedded.solubility()
    assert len(train.frame) > 1000 and train.report["invalid"] == 0  # the SDF structure wins over its stale SMILES property
    sdf = tmp_path / "two.sdf.gz"
    with gzip.open(embedded.DATA / "solubility.test.sdf.gz", "rt") as src:
        records = src.read().split("$$$$\n")[:3]
    with gzip.open(sdf, "wt") as fh:
        fh.write("$$$$\n".join(records) + "$$$$\n")
    three = load_molecules(sdf, targets=["SOL"])
    assert len(three.frame) == 3 and three.frame["SOL"].notna().all()
    assert infer_task_type(pd.DataFrame({"a": [0.0, 1.0]})) == "binary"


@pytest.mark.parametrize(
    "content, kwargs, message",
    [
        ("", {"targets": ["y"]}, "is empty"),
        ("name,y\nethanol,1\n", {"targets": ["y"]}, "no SMILES column"),
        ("smiles,y\nxx(,1\nC1C,2\n", {"targets": ["y"]}, "all 2 SMILES are invalid"),
        ("smiles,y\nCCO,1.5\nCCC,high\n", {"targets": ["y"]}, "target column 'y' holds text, e.g. 'high' at row 1"),
        ("smiles,y\nCCO,1\n", {"targets": ["z"]}, "missing target column(s) ['z']"),
        ("smiles,y\nCCO,1\n", {"targets": ["y"], "smiles_column": "SMI"}, "no SMILES column 'SMI'"),
    ],
    ids=["empty", "no-smiles-column", "all-invalid", "text-target", "missing-target", "named-smiles-column"],
)
def test_bad_files_are_one_clear_error(tmp_path: Path, content: str, kwargs: dict, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        load_molecules(path, **kwargs)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_and_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_molecules(tmp_path / "nope.csv", targets=["y"])
    (tmp_path / "m.xlsx").write_text("x")
    with pytest.raises(DataError, match="unknown file type"):
        load_molecules(tmp_path / "m.xlsx", targets=["y"])


def test_a_panel_of_values_and_yes_no_endpoints_is_one_mixed_task(tmp_path: Path) -> None:
    """Some 0/1 targets beside real-valued ones make a mixed task, each target's kind in its
    order; data.output_types states them (a 0/1-valued regression target) and is checked."""
    path = _write(tmp_path / "panel.csv", "smiles,logD,herg,ames\nCCO,0.5,0,\nc1ccccc1,1.9,1,1\nCCN,-0.2,,0\nCCCl,1.1,0,1\n")
    table = load_molecules(path, targets=["logD", "herg", "ames"])
    assert table.task_type == "mixed" and table.output_types == ["regression", "binary", "binary"]
    assert infer_task_type(pd.DataFrame({"a": [0.0, 1.0], "b": [0.3, 2.0]})) == "mixed"
    stated = load_molecules(path, targets=["herg", "ames"], output_types=["regression", "binary"])
    assert stated.task_type == "mixed" and stated.output_types == ["regression", "binary"]
    one_kind = load_molecules(path, targets=["herg", "ames"], output_types=["binary", "binary"])
    assert one_kind.task_type == "multilabel" and one_kind.output_types is None  # a one-kind panel is that kind's task
    with pytest.raises(DataError, match="'logD' is binary in data.output_types but holds values other than 0/1"):
        load_molecules(path, targets=["logD", "herg"], output_types=["binary", "binary"])
    with pytest.raises(DataError, match="data.output_types needs one of regression, binary per target"):
        load_molecules(path, targets=["logD", "herg"], output_types=["regression"])
    with pytest.raises(DataError, match="data.output_types is for task type mixed, not regression"):
        load_molecules(path, targets=["logD", "herg"], task_type="regression", output_types=["regression", "binary"])
