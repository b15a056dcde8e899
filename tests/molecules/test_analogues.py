"""Generated analogues: valid, standardised, new, inside the similarity band, capped, seeded, and
every candidate accounted for (accepted or rejected for a reason)."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem

from stillroom.errors import ConfigError
from stillroom_molecules import analogues, embedded
from stillroom_molecules.chem import standardise_one
from stillroom_molecules.config import AnalogueSettings
from stillroom_molecules.metrics import max_similarity


@pytest.fixture(scope="module")
def molecules() -> tuple[list[str], set[str], set[str]]:
    train, test = embedded.solubility()
    smiles = train.frame["smiles"].tolist()
    pool = set(embedded.nci_pool().frame["smiles"].head(2000))
    return smiles[:300], set(smiles) | set(test.frame["smiles"]), pool


@pytest.fixture(scope="module")
def made(molecules) -> analogues.AnalogueSet:
    training, known, pool = molecules
    return analogues.generate(training, known, pool, analogues.AnalogueRequest(max_count=160), np.random.default_rng(3))


def test_analogues_are_valid_standardised_and_new(made, molecules) -> None:
    training, known, pool = molecules
    assert len(made.smiles) == 160  # the cap, reached
    for smiles in made.smiles:
        assert Chem.MolFromSmiles(smiles) is not None
        assert standardise_one(smiles)[0] == smiles  # already in the dataset's canonical form
    assert len(set(made.smiles)) == len(made.smiles)
    assert not set(made.smiles) & known and not set(made.smiles) & pool


def test_analogues_lie_in_the_similarity_band(made, molecules) -> None:
    training, _, _ = molecules
    nearest = max_similarity(made.smiles, training)  # the applicability domain's own measure
    assert np.all(nearest >= 0.4) and np.all(nearest <= 0.9)
    assert np.allclose(nearest, made.similarity)
    narrow = analogues.generate(
        training,
        set(),
        set(),
        analogues.AnalogueRequest(max_count=60, similarity_min=0.7, similarity_max=0.8),
        np.random.default_rng(0),
    )
    assert narrow.smiles and np.all(
        (max_similarity(narrow.smiles, training) >= 0.7) & (max_similarity(narrow.smiles, training) <= 0.8)
    )
    assert narrow.rejected["below the band"] > 0 and narrow.rejected["above the band"] > 0


def test_every_method_contributes_and_every_candidate_is_accounted_for(made) -> None:
    request = analogues.AnalogueRequest(max_count=160)
    report = made.report(request)
    by_method = report["accepted_by_method"]
    assert sum(by_method.values()) == 160 and all(n > 0 for n in by_method.values())
    short = [m for m, n in by_method.items() if n < 40]  # a method with few sites leaves its share to the others
    assert all(by_method[m] >= 40 for m in by_method if m not in short)
    assert sum(report["candidates_by_method"].values()) == report["accepted"] + sum(report["rejected_by_reason"].values())
    assert report["rejected_by_reason"]["in a labelled split"] > 0  # edits that undo themselves, swaps onto known molecules
    assert 0.4 <= report["median_nearest_training_similarity"] <= 0.9
    assert set(made.frame()["__origin__"]) == {f"analogue.{m}" for m in analogues.METHODS}


def test_brics_swaps_keep_part_of_a_parent_and_edits_are_one_step(molecules) -> None:
    training, _, _ = molecules
    mols = [Chem.MolFromSmiles(s) for s in training]
    rng = np.random.default_rng(1)
    for product in list(analogues.brics_products(mols, 20, rng)):
        if product is None:
            continue
        Chem.SanitizeMol(product)
        assert not any(a.GetAtomicNum() == 0 for a in product.GetAtoms())  # the cut closed again
    sizes = {Chem.MolToSmiles(m): m.GetNumHeavyAtoms() for m in mols}
    for product in list(analogues.edit_products(mols, "substituent", 30, np.random.default_rng(2))):
        Chem.SanitizeMol(product)
        heavy = product.GetNumHeavyAtoms()
        assert any(abs(heavy - n) <= 2 for n in sizes.values())  # one substituent on or off (OMe is two atoms)


def test_generation_is_seeded(molecules) -> None:
    training, known, pool = molecules
    request = analogues.AnalogueRequest(max_count=40)
    first = analogues.generate(training, known, pool, request, np.random.default_rng(5))
    again = analogues.generate(training, known, pool, request, np.random.default_rng(5))
    other = analogues.generate(training, known, pool, request, np.random.default_rng(6))
    assert first.smiles == again.smiles and first.methods == again.methods
    assert first.smiles != other.smiles


def test_band_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="similarity_min 0.9 must be below similarity_max 0.5"):
        AnalogueSettings(similarity_min=0.9, similarity_max=0.5)
    with pytest.raises(ValueError):
        AnalogueSettings(methods=["teleport"])


def test_a_bad_band_is_one_config_error_before_any_work(tracking_store: str) -> None:
    import stillroom

    with pytest.raises(ConfigError, match="similarity_min"):
        stillroom.distill("molecules", overrides=["molecules.analogues.similarity_min=0.95"])
