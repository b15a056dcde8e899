"""A user's molecule files through the product: a CSV with a ``Smiles`` column and two endpoints
-> ``stillroom distill molecules`` -> registered student -> ``stillroom score`` on a fresh CSV
(its SMILES column in yet another case) and on an SDF with broken records -> one row per input
row with the documented columns: the endpoints by name, ``smiles_valid``, ``reason``,
``max_similarity`` and ``in_domain`` (README, "Scoring output")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem
from typer.testing import CliRunner

import stillroom
from stillroom.cli import app
from stillroom.testing import temporary_store
from stillroom_molecules import embedded
from stillroom_molecules.domain import TrainingDomain
from stillroom_molecules.metrics import max_similarity

pytestmark = pytest.mark.slow
runner = CliRunner()
ENDPOINTS = ["logS", "dG_hyd"]
COLUMNS = [*ENDPOINTS, "smiles_valid", "reason", "max_similarity", "in_domain"]
# a calibrated student adds its split-conformal interval of each value endpoint after those
INTERVALS = {f"{e}.{bound}" for e in ENDPOINTS for bound in ("lower", "upper")}


def documented(columns: list[str], first: list[str]) -> bool:
    """The documented columns in order, then (only) the interval columns of a calibrated student."""
    n = len(first) + len(COLUMNS)
    return columns[:n] == [*first, *COLUMNS] and set(columns[n:]) <= INTERVALS


SMALL = [
    "data.split=random",
    "data.pool_max=200",
    "teacher.name=molecules.descriptor_ensemble",  # the light teacher (the default is chemprop with [gnn])
    "teacher.params.boosters=1",
    "teacher.params.n_estimators=60",
    "teacher.params.forest_trees=30",
    "teacher.params.descriptors=screening",
    "student.params.n_estimators=60",
    "evaluation.bootstrap=10",
    "evaluation.efficiency_rows=100",
    "evaluation.latency_repeats=3",
    "molecules.ad_threshold=0.35",
]
# invalid inputs and the reason each must get
BROKEN = {"C1CC(": "parse", "C(C)(C)(C)(C)C": "sanitize", "": "empty"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with temporary_store(tmp_path_factory.mktemp("mlflow-molecules-files")) as uri:
        yield uri


@pytest.fixture(scope="module")
def training(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Two endpoints with sparse labels, the SMILES column as a user's file names it."""
    sol = embedded.solubility()[0].frame.sample(240, random_state=0).rename(columns={"SOL": "logS"})
    fs = embedded.freesolv().frame.sample(160, random_state=0).rename(columns={"expt": "dG_hyd"})
    frame = pd.concat([sol[["smiles", "logS"]], fs[["smiles", "dG_hyd"]]], ignore_index=True)
    return frame.rename(columns={"smiles": "Smiles"})


@pytest.fixture(scope="module")
def run(store: str, training: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("user-files") / "endpoints.csv"
    training.to_csv(path, index=False)
    overrides = [
        "data.dataset=molecules.file",
        "molecules.endpoint=toy endpoints",
        "molecules.units=arbitrary units",
        f"data.path={path}",
        f"data.targets=[{', '.join(ENDPOINTS)}]",
    ]
    return stillroom.distill("molecules", overrides=overrides + SMALL)


def _score(source: Path, out: Path, *extra: str) -> pd.DataFrame:
    result = runner.invoke(app, ["score", "models:/molecules-student/1", str(source), str(out), "--no-progress", *extra])
    assert result.exit_code == 0, result.output
    return pd.read_csv(out) if out.suffix == ".csv" else pd.read_parquet(out)


def test_a_fresh_csv_scores_one_row_per_molecule_with_the_documented_columns(
    run: dict[str, Any], training: pd.DataFrame, tmp_path: Path
) -> None:
    assert run["version"] == "1"
    fresh = ["CCO", "c1ccccc1O", "C[Si](C)(C)O[Si](C)(C)C", *BROKEN]
    source = tmp_path / "fresh.csv"
    pd.DataFrame({"id": range(len(fresh)), "SMILES": fresh}).to_csv(source, index=False)  # another case than training's
    scores = _score(source, tmp_path / "scores.csv", "--passthrough", "id")
    print("COLS", list(scores.columns))
    assert documented(list(scores.columns), ["id"]) and scores["id"].tolist() == list(range(len(fresh)))
    valid = scores["smiles_valid"].to_numpy()
    assert valid.tolist() == [True, True, True, False, False, False]
    assert scores["reason"].fillna("").tolist() == ["", "", "", *BROKEN.values()]
    assert scores.loc[valid, ENDPOINTS].notna().all().all() and scores.loc[~valid, ENDPOINTS].isna().all().all()
    similarity = scores.loc[valid, "max_similarity"].to_numpy()
    assert ((0 <= similarity) & (similarity <= 1)).all() and scores.loc[~valid, "max_similarity"].isna().all()
    # the run's threshold travelled with the model: in_domain is max_similarity >= 0.35
    assert scores.loc[valid, "in_domain"].tolist() == (similarity >= 0.35).tolist()
    assert not scores.loc[~valid, "in_domain"].any()
    # a siloxane is far from every molecule of the file and the pool (0.27 at most)
    assert similarity[2] < 0.35 and not scores["in_domain"].iloc[2]


def test_the_training_molecules_are_their_own_nearest_neighbours(
    run: dict[str, Any], training: pd.DataFrame, tmp_path: Path
) -> None:
    """About 80% of the file trained the student (random split, a tenth each for validation and
    test): those find themselves (similarity 1); the held-out ones mostly find a neighbour."""
    source = tmp_path / "training.csv"
    training[["Smiles"]].to_csv(source, index=False)
    scores = _score(source, tmp_path / "scores.parquet")
    assert len(scores) == len(training) and scores["smiles_valid"].all()
    itself = np.isclose(scores["max_similarity"], 1.0).mean()
    assert 0.75 <= itself <= 0.9, itself
    assert scores["in_domain"].mean() >= itself


def test_the_stored_domain_is_the_evaluators_measure(run: dict[str, Any], training: pd.DataFrame) -> None:
    """The packed fingerprints the student ships give what the run's applicability domain
    measured: the same Tanimoto similarities to the same molecules."""
    reference = training["Smiles"].head(50).tolist()
    queries = ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "CCN(CC)CC", "O=C(O)c1ccccc1"]
    domain = TrainingDomain.of_smiles([Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in reference])
    mols = [Chem.MolFromSmiles(s) for s in queries]
    assert domain.max_similarity(mols) == pytest.approx(max_similarity(queries, reference))
    assert domain.fingerprints.dtype == np.uint8 and domain.fingerprints.shape[1] == 256  # packed 2,048 bits


def test_an_sdf_scores_record_by_record_and_flags_its_broken_records(run: dict[str, Any], tmp_path: Path) -> None:
    source = tmp_path / "library.sdf"
    good = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O"]
    blocks = []
    for i, smi in enumerate(good):
        mol = Chem.MolFromSmiles(smi)
        mol.SetProp("_Name", f"mol-{i}")
        blocks.append(Chem.MolToMolBlock(mol))
    pentavalent = Chem.MolFromSmiles("C(C)(C)(C)(C)C", sanitize=False)
    pentavalent.SetProp("_Name", "too-many-bonds")
    garbage = "garbage\n  no counts line here\n\nthis is not a molfile\n"
    blocks[1:1] = [garbage, Chem.MolToMolBlock(pentavalent, kekulize=False)]
    source.write_text("".join(block + "$$$$\n" for block in blocks))
    scores = _score(source, tmp_path / "scores.parquet")
    assert documented(list(scores.columns), ["record", "name"])
    assert scores["record"].tolist() == [1, 2, 3, 4, 5]  # one row per record, in file order
    assert scores["name"].tolist() == ["mol-0", "garbage", "too-many-bonds", "mol-1", "mol-2"]
    assert scores["smiles_valid"].tolist() == [True, False, False, True, True]
    assert scores["reason"].fillna("").tolist() == ["", "parse", "sanitize", "", ""]
    assert scores.loc[scores["smiles_valid"], ENDPOINTS].notna().all().all()


def test_a_library_scores_the_same_from_a_csv_and_an_sdf(run: dict[str, Any], tmp_path: Path) -> None:
    smiles = [line.split()[0] for line in embedded.nci_pool_path().read_text().splitlines()[:40] if line.strip()]
    csv = tmp_path / "library.csv"
    pd.DataFrame({"smiles": smiles}).to_csv(csv, index=False)
    sdf = tmp_path / "library.sdf.gz"
    import gzip

    with gzip.open(sdf, "wt") as fh:
        for smi in smiles:
            fh.write(Chem.MolToMolBlock(Chem.MolFromSmiles(smi)) + "$$$$\n")
    from_csv = _score(csv, tmp_path / "csv.parquet")
    from_sdf = _score(sdf, tmp_path / "sdf.parquet")
    assert len(from_csv) == len(from_sdf) == len(smiles)
    for column in [*ENDPOINTS, "max_similarity"]:
        np.testing.assert_allclose(from_sdf[column], from_csv[column], rtol=1e-6)  # float32 scores: equal up to their precision
    assert from_sdf["in_domain"].tolist() == from_csv["in_domain"].tolist()


def test_scores_written_as_an_sdf_one_record_per_row(run: dict[str, Any], tmp_path: Path) -> None:
    """The output's suffix chooses SDF: every input row is a record, in order, with the scores as
    SD properties; an invalid row is an empty molecule carrying its reason."""
    source = tmp_path / "hits.smi"
    source.write_text("smiles name\nCCO ethanol\nC1CC( broken\nc1ccccc1O phenol\n")
    out = tmp_path / "hits.sdf"
    result = runner.invoke(app, ["score", "models:/molecules-student/1", str(source), str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    records = list(Chem.SDMolSupplier(str(out), sanitize=False))
    assert len(records) == 3 and [r.GetProp("_Name") for r in records] == ["ethanol", "broken", "phenol"]
    assert [r.GetNumAtoms() for r in records] == [3, 0, 7]
    props = [r.GetPropsAsDict() for r in records]
    assert [p["smiles_valid"] for p in props] == ["true", "false", "true"]
    assert props[1]["reason"] == "parse" and "logS" not in props[1] and "max_similarity" not in props[1]
    for p in (props[0], props[2]):
        assert set(ENDPOINTS) <= set(p) and 0 <= float(p["max_similarity"]) <= 1 and p["in_domain"] in ("true", "false")
    # the same numbers as the CSV output of the same input
    table = _score(source, tmp_path / "hits.csv")
    assert float(props[0]["logS"]) == pytest.approx(table["logS"].iloc[0], rel=1e-9)
    assert float(props[2]["max_similarity"]) == pytest.approx(table["max_similarity"].iloc[2], rel=1e-9)


def test_spark_writes_the_local_engines_columns(run: dict[str, Any], tmp_path: Path) -> None:
    """``--engine spark`` runs the same version as a Spark UDF: every column of the contract (not
    only the first endpoint, renamed), invalid rows flagged rather than failing the job."""
    pytest.importorskip("pyspark")
    source = tmp_path / "library.sdf"
    source.write_text(
        "".join(Chem.MolToMolBlock(Chem.MolFromSmiles(s)) + "$$$$\n" for s in ["CCO", "c1ccccc1O"]) + "broken\n\n\n$$$$\n"
    )
    local = _score(source, tmp_path / "local.parquet")
    spark = _score(source, tmp_path / "spark.parquet", "--engine", "spark", "--master", "local[2]")
    assert list(spark.columns) == list(local.columns) and documented(list(local.columns), ["record", "name"])
    assert spark["record"].tolist() == local["record"].tolist() == [1, 2, 3]
    assert spark["smiles_valid"].tolist() == [True, True, False]
    assert spark["reason"].tolist() == local["reason"].tolist() == ["", "", "parse"]
    assert spark["in_domain"].tolist() == local["in_domain"].tolist()
    for column in [*ENDPOINTS, "max_similarity"]:
        np.testing.assert_allclose(spark[column], local[column], rtol=1e-6)  # float32 scores: equal up to their precision


def test_the_smiles_column_is_found_alike_in_distill_and_score() -> None:
    """distill's lookup (data.smiles_column, else the conventional names, any case) and the
    aliases the student ships for scoring name the same columns, the configured one first."""
    from stillroom.contract import DataError
    from stillroom_molecules.loaders import SMILES_CANDIDATES, find_smiles_column
    from stillroom_molecules.student import smiles_aliases

    frame = pd.DataFrame({"ID": [1], "MyStructure": ["CCO"], "Canonical_SMILES": ["CCO"]})
    assert find_smiles_column(frame, "mystructure", "f") == "MyStructure"  # the configured name, any case
    assert find_smiles_column(frame, None, "f") == "Canonical_SMILES"
    assert smiles_aliases("MyStructure") == ["MyStructure", *SMILES_CANDIDATES] and smiles_aliases(None) == list(
        SMILES_CANDIDATES
    )
    with pytest.raises(DataError, match="no SMILES column 'structures'"):
        find_smiles_column(frame, "structures", "f")
