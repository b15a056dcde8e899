"""Students on every task type, the shipped files, the SMILES scoring path, the ADMET-AI teacher."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stillroom.errors import ConfigError
from stillroom.tasks.targets import labels_only, make_targets
from stillroom_molecules import embedded
from stillroom_molecules.chem import standardise, standardised_mol
from stillroom_molecules.featurize import Featurizer, FeaturizerConfig, feature_rows
from stillroom_molecules.metrics import enrichment_factor, enrichment_fractions, enrichment_name, max_similarity
from stillroom_molecules.score_columns import SCORING_COLUMNS
from stillroom_molecules.scorer import Scorer
from stillroom_molecules.student import LightGBMStudent, MLPStudent

SMALL_MLP = {"hidden": [64], "epochs": 15, "patience": 5}


def _mlp_params() -> dict:
    from stillroom_molecules.mlp import DEFAULTS

    return DEFAULTS | SMALL_MLP


@pytest.fixture(scope="module")
def solubility() -> tuple[pd.DataFrame, pd.DataFrame]:
    train, test = embedded.solubility()
    return train.frame.sample(500, random_state=0).reset_index(drop=True), test.frame


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.ravel(a) - np.ravel(b)) ** 2)))


@pytest.mark.parametrize(
    "cls, params", [(LightGBMStudent, {"n_estimators": 120}), (MLPStudent, SMALL_MLP)], ids=["lightgbm", "mlp"]
)
def test_regression_students_learn_and_ship_what_they_measure(cls, params, solubility, tmp_path: Path) -> None:
    train, test = solubility
    y = train[["SOL"]].to_numpy()
    student = cls(params, seed=0).fit(train[["smiles"]], labels_only("regression", y))
    pred = student.predict(test[["smiles"]])
    assert pred.shape == (len(test), 1)
    spread = float(test["SOL"].std())
    assert _rmse(pred, test["SOL"]) < 0.75 * spread  # far better than predicting the mean
    saved = Scorer.load(student.scorer.save(tmp_path / "m"))
    frame = saved.frame(test["smiles"].tolist() + ["(((", ""])
    assert np.allclose(frame["score"].to_numpy()[: len(test)], pred[:, 0])
    assert frame["smiles_valid"].tolist()[-2:] == [False, False] and frame["score"].isna().sum() == 2
    assert not any(p.suffix in (".pkl", ".joblib") for p in (tmp_path / "m").iterdir())


def test_distilled_regression_student_follows_its_teacher(solubility) -> None:
    """Teacher values on pool molecules with no label: the student learns them (blended targets)."""
    train, _ = solubility
    pool = embedded.nci_pool().frame.head(400)
    X = pd.concat([train[["smiles"]], pool], ignore_index=True)
    # a synthetic but smooth 'teacher': heavy-atom count, which fingerprints capture well
    teacher = np.array([[standardised_mol(s)[0].GetNumHeavyAtoms() / 10.0] for s in X["smiles"]])
    hard = np.vstack([train[["SOL"]].to_numpy(), np.full((len(pool), 1), np.nan)])
    student = LightGBMStudent({"n_estimators": 150}, 0).fit(X, make_targets("regression", hard, teacher, 1.0, 1.0))
    fitted = student.predict(X)[:, 0]
    assert np.corrcoef(fitted, teacher[:, 0])[0, 1] > 0.95
    assert "distillation" in student.describe().kind


def test_binary_and_multilabel_students(solubility) -> None:
    train, test = solubility
    y = (train["SOL"] > train["SOL"].median()).astype(int).to_numpy()
    binary = LightGBMStudent({"n_estimators": 80}, 0).fit(train[["smiles"]], labels_only("binary", y))
    p = binary.predict(test[["smiles"]])
    assert p.shape == (len(test),) and ((p >= 0) & (p <= 1)).all()
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(test["SOL"] > train["SOL"].median(), p) > 0.85
    # two labels, one of them missing for a third of the rows: the multi-task MLP
    Y = np.column_stack([y, (train["SOL"] > train["SOL"].quantile(0.25)).astype(float)])
    Y[::3, 1] = np.nan
    teacher = np.clip(Y + 0.1 * np.random.default_rng(0).normal(size=Y.shape), 0.01, 0.99)
    teacher[::3, 1] = 0.5
    mlp = MLPStudent(SMALL_MLP, 0).fit(train[["smiles"]], make_targets("multilabel", Y, teacher, 2.0, 0.5))
    probs = mlp.predict(test[["smiles"]])
    assert probs.shape == (len(test), 2) and roc_auc_score(test["SOL"] > train["SOL"].median(), probs[:, 0]) > 0.8


def test_multiclass_is_the_mlps_job(solubility) -> None:
    train, test = solubility
    y = np.digitize(train["SOL"], np.quantile(train["SOL"], [1 / 3, 2 / 3]))
    mlp = MLPStudent(SMALL_MLP, 0).fit(train[["smiles"]], labels_only("multiclass", y))
    probs = mlp.predict(test[["smiles"]])
    assert probs.shape == (len(test), 3) and np.allclose(probs.sum(1), 1.0)
    truth = np.digitize(test["SOL"], np.quantile(train["SOL"], [1 / 3, 2 / 3]))
    assert (probs.argmax(1) == truth).mean() > 0.55  # three balanced classes: chance is 1/3
    with pytest.raises(ConfigError, match="use molecules.mlp for multiclass"):
        LightGBMStudent({}, 0).fit(train[["smiles"]], labels_only("multiclass", y))


def test_student_params_are_checked() -> None:
    with pytest.raises(ConfigError, match="unknown config field 'student.params.trees'"):
        LightGBMStudent({"trees": 3}, 0)
    with pytest.raises(ConfigError, match="unknown featurizer field"):
        MLPStudent({"featurizer": {"size": 3}}, 0)


@pytest.mark.parametrize("descriptors", ["none", "fast", "screening"])  # without, without, with stereo perception
def test_scoring_parses_once_and_matches_training_features(descriptors: str) -> None:
    """The fused scoring path (standardised molecule -> features) equals featurising the
    canonical SMILES, as training does, on real raw NCI SMILES."""
    raw = [line.split()[0] for line in embedded.nci_pool_path().read_text().splitlines()[:800] if line.strip()]
    cfg = FeaturizerConfig(descriptors=descriptors, cache=False)
    mols = [standardised_mol(s, cfg.needs_stereo())[0] for s in raw]
    fused = feature_rows([m for m in mols if m is not None], cfg)  # as the scorer does
    canonical = Featurizer(cfg).transform(standardise(raw).smiles).toarray()
    assert np.isnan(canonical).all(axis=1).sum() == sum(m is None for m in mols)
    assert np.array_equal(fused.toarray(), canonical[~np.isnan(canonical).all(axis=1)])


def test_mlp_predicts_through_the_set_positions_exactly_as_the_dense_network(solubility, tmp_path: Path) -> None:
    """The network sums the folded first-layer weights of each molecule's set positions instead
    of multiplying the whole standardised row: the same outputs as the dense formula
    ``body((signed_log(x) - mean) / std)``, also after the weights change (the folded copy
    must follow them)."""
    import torch

    from stillroom_molecules.mlp import network_predict

    train, test = solubility
    student = MLPStudent(SMALL_MLP | {"featurizer": {"descriptors": "screening"}}, 0)
    student.fit(train[["smiles"]], labels_only("regression", train[["SOL"]].to_numpy()))
    net = student.scorer.network
    F = student.scorer.features(test["smiles"].tolist())

    def dense(F) -> np.ndarray:
        x = torch.from_numpy(F.toarray())
        with torch.no_grad():
            z = net.body((torch.sign(x) * torch.log1p(x.abs()) - net.x_mean) / net.x_std)
            return (z * net.y_std + net.y_mean).double().numpy()

    assert np.allclose(network_predict(net, F, student.scorer.kinds), dense(F), rtol=1e-5, atol=1e-5)
    assert np.allclose(student.predict(test[["smiles"]]), dense(F), rtol=1e-5, atol=1e-5)
    before = network_predict(net, F[:5], student.scorer.kinds)
    with torch.no_grad():
        net.body[0].weight.mul_(2.0)
        net.x_std.add_(1.0)
    after = network_predict(net, F[:5], student.scorer.kinds)
    assert not np.allclose(after, before) and np.allclose(after, dense(F[:5]), rtol=1e-5, atol=1e-5)
    assert network_predict(net, F[:0], student.scorer.kinds).shape == (0, 1)
    student.scorer.save(tmp_path / "m")
    with torch.inference_mode():  # a batch job that loads the model in inference mode: no version counters
        loaded = Scorer.load(tmp_path / "m")
    assert np.allclose(loaded.predict_features(F[:5]), after, rtol=1e-5, atol=1e-5)


def test_mlp_trains_through_the_set_positions_with_the_dense_networks_gradients() -> None:
    """Training reads CSR rows and never builds the dense matrix: the moments of the inputs
    and every parameter's gradient must be those of the dense formula on real fingerprints."""
    import torch

    from stillroom_molecules.mlp import Network, SparseRows, input_moments

    smiles = embedded.nci_pool().frame["smiles"].head(300).tolist()
    F = Featurizer(FeaturizerConfig(n_bits=1024, descriptors="fast", cache=False)).transform(smiles)
    assert F.nnz < 0.1 * F.shape[0] * F.shape[1]
    dense = F.toarray().astype(np.float64)
    logx = np.sign(dense) * np.log1p(np.abs(dense))
    mean, std = input_moments(F)
    assert np.allclose(mean, logx.mean(0), atol=1e-6)
    assert np.allclose(std, np.maximum(logx.std(0), 1.0), atol=1e-5) and (std >= 1.0).all()
    assert (std > 1.0).any()  # the descriptors spread wider than the floor

    def gradients(sparse_path: bool) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        net = Network(F.shape[1], 2, [32, 8], dropout=0.0)
        net.x_mean.copy_(torch.from_numpy(mean))
        net.x_std.copy_(torch.from_numpy(std))
        if sparse_path:
            z = net(SparseRows.of(F))
        else:
            z = net.body((torch.from_numpy(logx.astype(np.float32)) - net.x_mean) / net.x_std)
        (z**2).mean().backward()
        return {name: p.grad.clone() for name, p in net.named_parameters()}

    through_rows, reference = gradients(True), gradients(False)
    assert set(through_rows) == set(reference)
    for name, grad in reference.items():
        assert grad.abs().sum() > 0
        assert torch.allclose(through_rows[name], grad, rtol=1e-4, atol=1e-6), name


def test_zero_training_threads_means_the_usable_cores(solubility, monkeypatch) -> None:
    """``num_threads: 0`` / ``threads: 0``: the cores this process may use (its affinity), not
    OpenMP's or torch's guess from the machine; a number given is kept."""
    import torch

    from stillroom.contract import usable_cores
    from stillroom_molecules.mlp import train_network
    from stillroom_molecules.outputs import as_matrix

    assert LightGBMStudent({"num_threads": 0}, 0)._lgb_params()["num_threads"] == usable_cores()
    assert LightGBMStudent({"num_threads": 1}, 0)._lgb_params()["num_threads"] == 1
    train, _ = solubility
    F = Featurizer(FeaturizerConfig(n_bits=256, cache=False)).transform(train["smiles"].head(50).tolist())
    m = as_matrix(labels_only("regression", train[["SOL"]].head(50).to_numpy()), "regression")
    seen: list[int] = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), real(n)))
    for threads in (0, 1):
        train_network(F, m, "regression", {**_mlp_params(), "epochs": 1, "threads": threads}, 0, None, None)
    assert seen[0] == usable_cores() and seen[2] == 1  # each call sets, then gives back, the threads


def test_the_mlp_epoch_budget_rule() -> None:
    """Rows x epochs at most ``max_row_epochs``: sets up to 10,000 rows keep the default 80 epochs,
    a bigger one gets fewer (never below 3); 0 lifts the cap; a negative cap is a config error,
    found when the student is built."""
    from stillroom_molecules.mlp import DEFAULTS, epoch_budget

    assert DEFAULTS["epochs"] * 10_000 == DEFAULTS["max_row_epochs"]
    assert epoch_budget(DEFAULTS, 6_400) == epoch_budget(DEFAULTS, 10_000) == 80  # Lipophilicity, the 8k x 12 set
    assert epoch_budget(DEFAULTS, 35_800) == 22  # the 41k set's transfer rows
    assert epoch_budget(DEFAULTS, 1_000_000) == 3
    assert epoch_budget(DEFAULTS | {"max_row_epochs": 0}, 1_000_000) == 80
    assert epoch_budget(DEFAULTS | {"epochs": 10}, 35_800) == 10  # a cap, never more than asked
    with pytest.raises(ConfigError, match="max_row_epochs must be >= 0"):
        MLPStudent({"max_row_epochs": -1}, 0)


def test_the_epoch_budget_caps_training_and_early_stopping_still_ends_it(solubility, caplog) -> None:
    train, _ = solubility
    y = train[["SOL"]].to_numpy()
    caplog.set_level("INFO", logger="stillroom")
    capped = MLPStudent(SMALL_MLP | {"epochs": 50, "patience": 50, "max_row_epochs": 4 * len(train)}, 0)
    capped.fit(train[["smiles"]], labels_only("regression", y))
    assert capped.training == {"epochs_run": 4, "epoch_cap": 4}
    assert f"MLP on {len(train):,} rows: at most 4 epochs (student.params.max_row_epochs={4 * len(train):,}" in caplog.text
    valid = train.sample(100, random_state=1)
    stopped = MLPStudent(SMALL_MLP | {"epochs": 200, "patience": 2, "learning_rate": 0.05}, 0)
    stopped.fit(
        train[["smiles"]], labels_only("regression", y), valid[["smiles"]], labels_only("regression", valid[["SOL"]].to_numpy())
    )
    assert stopped.training["epoch_cap"] == 200 and stopped.training["epochs_run"] < 200  # stopped early, within the cap


def test_mlp_validation_sees_every_optimiser_step() -> None:
    """Validation (no gradients) reads the cached folded first layer; the training optimiser's
    steps must invalidate it, or early stopping judges stale weights."""
    import torch

    from stillroom_molecules.mlp import DEFAULTS, Network, SparseRows, optimizer

    F = Featurizer(FeaturizerConfig(n_bits=256, cache=False)).transform(["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O"])
    rows = SparseRows.of(F)
    torch.manual_seed(0)
    net = Network(F.shape[1], 1, [8], dropout=0.0)
    opt = optimizer(net, DEFAULTS)
    for _ in range(3):
        with torch.no_grad():
            cached = net(rows)  # fills the cache from the current weights
        (net(rows) ** 2).sum().backward()  # gradients on: folded afresh
        opt.step()
        opt.zero_grad()
        with torch.no_grad():
            after = net(rows)
            net.__dict__.pop("_folded", None)
            fresh = net(rows)
        assert not torch.allclose(after, cached) and torch.equal(after, fresh)


def test_applicability_domain_and_enrichment() -> None:
    sims = max_similarity(["CCO", "CCCO", "c1ccc2ccccc2c1"], ["CCO", "CCCCO"])
    assert sims[0] == pytest.approx(1.0) and 0.2 < sims[1] < 1.0 and sims[2] < 0.1
    y = np.zeros(100, dtype=bool)
    y[:5] = True
    perfect, reverse = np.arange(100)[::-1].astype(float), np.arange(100).astype(float)
    assert enrichment_factor(y, perfect, 0.05) == pytest.approx(20.0)  # every screened molecule a hit: 1 / 0.05
    assert enrichment_factor(y, reverse, 0.05) == 0.0
    assert np.isnan(enrichment_factor(np.zeros(10, dtype=bool), reverse[:10], 0.1))
    # 1% is always reported (the compliance profile's figure); a configured fraction adds its own name
    assert enrichment_fractions(0.01) == (0.01,) and enrichment_fractions(0.05) == (0.01, 0.05)
    assert [enrichment_name(f) for f in (0.01, 0.05, 0.005)] == ["ef_1pct", "ef_5pct", "ef_0_5pct"]


def test_logged_outputs_are_named_after_the_data_when_the_names_fit() -> None:
    from stillroom_molecules.student import output_columns

    assert output_columns(["logS", "dG_hyd"], 2) == ["logS", "dG_hyd"]
    assert output_columns(["logS"], 1) == ["score"]  # one output: the scoring column is `score`
    assert output_columns([], 2) == ["score_0", "score_1"]  # a student used outside the pipeline
    assert output_columns(["a", "a"], 2) == ["score_0", "score_1"]  # duplicates would collide
    assert output_columns(["a", "smiles_valid"], 2) == ["score_0", "score_1"]  # the flag's name is taken


@pytest.mark.parametrize(
    "cls, params", [(LightGBMStudent, {"n_estimators": 120}), (MLPStudent, SMALL_MLP)], ids=["lightgbm", "mlp"]
)
def test_one_student_for_a_panel_of_values_and_yes_no_endpoints(cls, params, solubility, tmp_path: Path) -> None:
    """A mixed task: a value (logS) and a yes/no endpoint (soluble beyond 1 mmol/L) in one
    model, each label missing on a different third of the molecules. The value comes out on
    its own scale, the yes/no one as a probability, and the saved model scores the same."""
    train, test = solubility
    logs = train["SOL"].to_numpy()
    hard = np.column_stack([logs, (logs > -3).astype(float)])
    hard[::3, 0], hard[1::3, 1] = np.nan, np.nan
    student = cls(params, seed=0)
    student.name_outputs(["logS", "soluble"])
    student.fit(train[["smiles"]], labels_only("mixed", hard, output_types=["regression", "binary"]))
    pred = student.predict(test[["smiles"]])
    truth = test["SOL"].to_numpy()
    assert pred.shape == (len(test), 2)
    assert _rmse(pred[:, 0], truth) < 0.75 * float(truth.std())
    assert 0.0 <= pred[:, 1].min() and pred[:, 1].max() <= 1.0
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(truth > -3, pred[:, 1]) > 0.85
    saved = Scorer.load(student.scorer.save(tmp_path / "m"))
    assert saved.output_types == ["regression", "binary"] and saved.kinds == ("regression", "binary")
    frame = saved.frame(test["smiles"].tolist())
    assert list(frame.columns) == ["logS", "soluble", *SCORING_COLUMNS]
    assert np.allclose(frame[["logS", "soluble"]].to_numpy(), pred)
    assert student.loss == "labels only (no teacher)"


def test_mixed_loss_pools_the_single_kind_losses() -> None:
    """The MLP's loss on a mixed panel is the cell-weighted mean of the regression loss on its
    value outputs and Hinton's loss on its probability outputs, each as the single-kind task
    computes it (so a panel changes no output's objective, only what the trunk shares)."""
    import torch

    from stillroom_molecules.mlp import LossSpec, _loss, _tensors
    from stillroom_molecules.outputs import as_matrix

    rng = np.random.default_rng(0)
    n = 64
    hard = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n).astype(float), rng.normal(size=n)])
    hard[rng.random((n, 3)) < 0.3] = np.nan
    teacher = np.column_stack([rng.normal(size=n), rng.random(n), rng.normal(size=n)])
    z = torch.from_numpy(rng.normal(size=(n, 3)).astype(np.float32))
    mixed = as_matrix(make_targets("mixed", hard, teacher, 2.0, 0.6, ["regression", "binary", "regression"]), "mixed")

    def loss_and_cells(task_type: str, cols: list[int]) -> tuple[float, float]:
        m = as_matrix(make_targets(task_type, hard[:, cols], teacher[:, cols], 2.0, 0.6), task_type)
        t = _tensors(m, task_type, np.zeros(len(cols)), np.ones(len(cols)))
        cells = t["weight"].sum() if task_type == "regression" else (t["hard_mask"] + t["soft_mask"]).clamp(max=1).sum()
        return float(_loss(z[:, cols], t, LossSpec.of(m, task_type))), float(cells)

    (reg, n_reg), (binary, n_bin) = loss_and_cells("regression", [0, 2]), loss_and_cells("multilabel", [1])
    got = float(_loss(z, _tensors(mixed, "mixed", np.zeros(3), np.ones(3)), LossSpec.of(mixed, "mixed")))
    assert got == pytest.approx((reg * n_reg + binary * n_bin) / (n_reg + n_bin), rel=1e-6)
    assert min(reg, binary) < got < max(reg, binary)
