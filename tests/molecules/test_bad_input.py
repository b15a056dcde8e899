"""Every bad molecule input ends in one clear message, exit code 2, and nothing run or registered."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from stillroom.cli import app

runner = CliRunner()


def _fails(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def _nothing_written() -> None:
    import mlflow

    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []
    assert mlflow.MlflowClient().search_registered_models() == []


def _file_args(path: Path, target: str = "y", described: bool = True) -> list[str]:
    args = ["distill", "molecules", "--set", "data.dataset=molecules.file", "--set", f"data.path={path}"]
    args += ["--set", f"data.targets=[{target}]"]
    return args + (["--set", "molecules.endpoint=test endpoint", "--set", "molecules.units=test units"] if described else [])


def test_a_users_file_without_endpoint_and_units_is_refused_up_front(tracking_store: str, tmp_path: Path) -> None:
    """A user's file is never labelled with the embedded set's endpoint: without its own
    endpoint and units the config is refused before the file is even read (it does not exist)."""
    _fails(_file_args(tmp_path / "never-read.csv", described=False), "molecules.endpoint and molecules.units required")
    _fails(
        _file_args(tmp_path / "never-read.csv", described=False) + ["--set", "molecules.endpoint=logD"],
        "molecules.units required for dataset 'molecules.file'",
    )
    _nothing_written()


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "is empty"),
        ("name,y\nethanol,1.0\nbenzene,2.0\n", "no SMILES column"),
        ("smiles,y\nC1CC,1.0\nxx((,2.0\n", "all 2 SMILES are invalid"),
        ("smiles,y\nCCO,1.0\nCCC,soluble\n", "target column 'y' holds text"),
    ],
    ids=["empty-file", "no-smiles-column", "all-invalid-smiles", "text-target"],
)
def test_bad_molecule_files(tracking_store: str, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    _fails(_file_args(path), message)
    _nothing_written()


def test_unknown_admet_endpoint(tracking_store: str) -> None:
    _fails(
        [
            "distill",
            "molecules",
            "--set",
            "teacher.name=molecules.admet",
            "--set",
            "teacher.params.endpoints=[Solubility_Nonsense]",
        ],
        "unknown ADMET-AI endpoint 'Solubility_Nonsense'",
    )
    _nothing_written()


def test_a_mixed_panel_stating_a_real_valued_target_as_binary(tracking_store: str, tmp_path: Path) -> None:
    path = tmp_path / "panel.csv"
    path.write_text("smiles,logd,herg\nCCO,0.5,0\nc1ccccc1,1.9,1\nCCN,-0.2,0\n")
    args = _file_args(path, "logd, herg") + ["--set", "data.output_types=[binary, binary]"]
    _fails(args, "target column 'logd' is binary in data.output_types but holds values other than 0/1")
    _nothing_written()
