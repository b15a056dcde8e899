"""The ADMET-AI teacher: same numbers as ADMET-AI's own predictor, endpoint checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stillroom.errors import ConfigError

pytest.importorskip("admet_ai")

from stillroom_molecules.admet import AdmetTeacher, check_endpoints  # noqa: E402

SMILES = ["CCO", "CC(=O)Oc1ccccc1C(=O)O", "CN1CCC[C@H]1c1cccnc1", "c1ccc2ccccc2c1", "O=C(O)CCCCC(=O)O"]


def test_reproduces_admet_ai_predictions() -> None:
    from admet_ai import ADMETModel

    reference = ADMETModel(include_physchem=False, drugbank_path=None, num_workers=0).predict(SMILES)
    regression = AdmetTeacher(["Solubility_AqSolDB", "Lipophilicity_AstraZeneca"]).predict(pd.DataFrame({"smiles": SMILES}))
    assert regression.shape == (5, 2)
    assert np.allclose(regression, reference[["Solubility_AqSolDB", "Lipophilicity_AstraZeneca"]].to_numpy(), atol=1e-5)
    teacher = AdmetTeacher(["BBB_Martins"])
    binary = teacher.predict(pd.DataFrame({"smiles": SMILES}))
    assert binary.shape == (5,) and np.allclose(binary, reference["BBB_Martins"].to_numpy(), atol=1e-5)
    desc = teacher.describe()
    assert desc.n_parameters > 100_000 and desc.version == "2.0.1" and "BBB_Martins" in desc.details["identity"]
    panel = AdmetTeacher(["hERG", "Solubility_AqSolDB"])  # a mixed panel: a probability and a value, in this order
    assert panel.task_type == "mixed" and panel.output_types == ["binary", "regression"]
    both = panel.predict(pd.DataFrame({"smiles": SMILES}))
    assert both.shape == (5, 2) and np.allclose(both, reference[["hERG", "Solubility_AqSolDB"]].to_numpy(), atol=1e-5)


@pytest.mark.parametrize("n", [1, 257])
def test_a_last_batch_of_one_molecule_is_predicted(n: int) -> None:
    """Chemprop's data loader drops a last batch of one by default: one molecule (a latency
    probe) or 257 (batches of 256) must still get every prediction."""
    teacher = AdmetTeacher(["Solubility_AqSolDB"], batch_size=256)
    smiles = (SMILES * 60)[:n]
    out = teacher.predict(pd.DataFrame({"smiles": smiles}))
    assert out.shape == (n, 1) and np.isfinite(out).all()
    assert np.allclose(out[:5, 0], teacher.predict(pd.DataFrame({"smiles": smiles[:5]}))[:5, 0], atol=1e-6)


def test_a_mixed_panel_must_match_the_data_target_by_target() -> None:
    """One endpoint per target column, of the same kind in the same order: a panel whose
    kinds are swapped against the data's is refused before anything runs."""
    from types import SimpleNamespace

    from stillroom_molecules.admet import build_admet_teacher

    data = SimpleNamespace(details={"task_type": "mixed", "output_types": ["regression", "binary"], "targets": ["logS", "herg"]})
    assert build_admet_teacher({"endpoints": ["Solubility_AqSolDB", "hERG"]}, data, 0).output_types == ["regression", "binary"]
    swapped = r"are mixed \(binary, regression\) but the data's targets are mixed \(regression, binary\)"
    with pytest.raises(ConfigError, match=swapped):
        build_admet_teacher({"endpoints": ["hERG", "Solubility_AqSolDB"]}, data, 0)


def test_endpoint_checks() -> None:
    assert check_endpoints(["hERG", "AMES"]) == (["hERG", "AMES"], "multilabel", None)
    assert check_endpoints(["Caco2_Wang"])[1:] == ("regression", None)
    # a panel of both kinds is one mixed task, each endpoint's kind in its order
    assert check_endpoints(["hERG", "Caco2_Wang"]) == (["hERG", "Caco2_Wang"], "mixed", ["binary", "regression"])
    with pytest.raises(ConfigError, match="unknown ADMET-AI endpoint 'LogP_Magic' \\(known: .*AMES"):
        check_endpoints(["LogP_Magic"])
