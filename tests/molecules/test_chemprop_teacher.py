"""The Chemprop D-MPNN teacher trained in the plugin (``molecules.chemprop``).

Tiny settings throughout (a few dozen molecules, two or three epochs, small networks): what is
checked is behaviour, not accuracy. The masked multi-task loss is compared with a value
computed by hand; a distillation run logs the teacher as a pyfunc of chemprop checkpoints,
links it as the run's logged-model input, and the logged model reloads and scores SMILES; bad
inputs (a target without labels in training, one class, chemprop absent) each end in one line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import stillroom
from stillroom import tracking
from stillroom.errors import ConfigError

pytest.importorskip("chemprop")

from stillroom_molecules import embedded  # noqa: E402
from stillroom_molecules.chemprop_teacher import (  # noqa: E402
    DEFAULTS,
    ChempropEnsemble,
    build_network,
    scaled_to_budget,
)
from stillroom_molecules.config import default_teacher  # noqa: E402

TINY = {"ensemble": 2, "epochs": 2, "patience": 1, "hidden_size": 32, "ffn_hidden_size": 16, "batch_size": 16, "cache": False}


def _tiny_params(**extra: Any) -> list[str]:
    return [f"teacher.params.{k}={v}" for k, v in (TINY | extra).items()]


def _two_task_file(tmp_path: Path, rows: int = 120) -> Path:
    """Two regression targets on public NCI molecules, each missing on a third of the rows."""
    smiles = embedded.nci_pool().frame["smiles"].tolist()[:rows]
    rng = np.random.default_rng(0)
    size = np.array([len(s) for s in smiles], dtype=float)
    a = 0.05 * size + rng.normal(0, 0.1, rows)
    b = -0.03 * size + rng.normal(0, 0.1, rows)
    a[rng.random(rows) < 0.33] = np.nan
    b[rng.random(rows) < 0.33] = np.nan
    path = tmp_path / "two_tasks.csv"
    pd.DataFrame({"smiles": smiles, "a": a, "b": b}).to_csv(path, index=False)
    return path


def test_chemprop_is_the_default_teacher_when_installed() -> None:
    assert default_teacher() == "molecules.chemprop"


def test_masked_multitask_loss_matches_a_hand_computed_value() -> None:
    """chemprop 2 leaves NaN targets out of the loss: its training loss on a batch with missing
    labels equals the mean squared error over the labelled entries only, computed by hand."""
    import torch
    from chemprop.data import MoleculeDatapoint, MoleculeDataset, collate_batch

    torch.manual_seed(0)
    model = build_network(DEFAULTS | TINY | {"batch_norm": False}, "regression", 2)
    Y = np.array([[1.0, np.nan], [np.nan, -2.0], [0.5, 3.0], [np.nan, np.nan]])
    data = MoleculeDataset(
        [MoleculeDatapoint.from_smi(s, y=y) for s, y in zip(["CCO", "c1ccccc1", "CC(=O)O", "CCN"], Y, strict=True)]
    )
    batch = collate_batch([data[i] for i in range(len(data))])
    model.train()
    with pytest.warns(UserWarning, match="self.trainer"):  # no Trainer: the step logs nowhere
        loss = float(model.training_step(batch, 0).detach())
    with torch.no_grad():
        preds = model.predictor.train_step(model.fingerprint(batch.bmg)).numpy()
    labelled = ~np.isnan(Y)
    by_hand = ((preds[labelled] - Y[labelled]) ** 2).sum() / labelled.sum()  # 4 labelled of 8 entries
    assert loss == pytest.approx(by_hand, rel=1e-5)
    unmasked = np.nanmean((preds - np.nan_to_num(Y)) ** 2)  # what an unmasked loss would be
    assert abs(loss - unmasked) > 1e-3


def test_budget_scales_networks_then_epochs() -> None:
    p = DEFAULTS | {"ensemble": 3, "epochs": 40, "max_molecule_epochs": 500_000}
    assert scaled_to_budget(p, 3_000) == p  # 360k molecule-epochs fit
    mid = scaled_to_budget(p, 8_000)
    assert (mid["ensemble"], mid["epochs"]) == (1, 40)
    big = scaled_to_budget(p, 41_000)
    assert big["ensemble"] == 1 and big["epochs"] == 12 and big["ensemble"] * big["epochs"] * 41_000 <= 500_000
    assert scaled_to_budget(p | {"max_molecule_epochs": 0}, 41_000)["ensemble"] == 3
    sizes = (820, 1_572, 3_360, 6_400, 32_800)  # solubility, BBBP, Lipophilicity, the 8k and 41k scale sets (80% training)
    defaults = [(q["ensemble"], q["epochs"]) for q in (scaled_to_budget(DEFAULTS, n) for n in sizes)]
    assert defaults == [(3, 40), (3, 40), (1, 40), (1, 39), (1, 7)]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from stillroom.testing import temporary_store

    tmp = tmp_path_factory.mktemp("chemprop")
    path = _two_task_file(tmp)
    (tmp / "mlflow").mkdir()
    with temporary_store(tmp / "mlflow"):
        result = stillroom.distill(
            "molecules",
            overrides=[
                "data.dataset=molecules.file",
                "molecules.endpoint=toy activity",
                "molecules.units=arbitrary units",
                f"data.path={path}",
                "data.targets=[a, b]",
                "data.split=random",
                "data.pool=none",
                "student.params.n_estimators=30",
                "evaluation.bootstrap=10",
                "evaluation.efficiency_rows=50",
                "evaluation.latency_repeats=2",
                "gate.rules=[]",
                *_tiny_params(),
            ],
        )
        record = tracking.run_record(result["run_id"])
        yield {"result": result, "record": record, "tmp": tmp}


def test_a_run_trains_logs_and_links_the_chemprop_teacher(run: dict[str, Any]) -> None:
    import mlflow

    result, record = run["result"], run["record"]
    assert record.params["teacher.source"] == "plugin:molecules.chemprop"
    assert len(record.model_inputs) == 1  # the teacher, logged in its own run, is the run's input
    teacher_id = record.model_inputs[0]
    logged = mlflow.get_logged_model(teacher_id)
    assert logged.name == "teacher"
    files = [p.name for p in Path(mlflow.artifacts.download_artifacts(f"models:/{teacher_id}")).rglob("*")]
    assert {"model_0.pt", "model_1.pt", "chemprop.json"} <= set(files)
    assert not any(f.endswith((".pkl", ".joblib", ".cloudpickle")) for f in files)
    assert np.isfinite(result["metrics"]["teacher.rmse"])


def test_the_logged_teacher_reloads_and_scores_smiles(run: dict[str, Any]) -> None:
    import mlflow

    teacher_id = run["record"].model_inputs[0]
    model = mlflow.pyfunc.load_model(f"models:/{teacher_id}")
    assert [c.name for c in model.metadata.get_input_schema().inputs] == ["smiles"]
    out = model.predict(pd.DataFrame({"smiles": ["CCO", "c1ccccc1CCCCCCCC", "not a smiles", "[Na+].CC(=O)[O-]"]}))
    assert list(out.columns) == ["a", "b", "smiles_valid"]
    assert out["smiles_valid"].tolist() == [True, True, False, True]
    assert out.loc[[0, 1, 3], ["a", "b"]].notna().all().all() and out.loc[2, ["a", "b"]].isna().all()
    # the same numbers as the ensemble in this process, read back from the checkpoints
    spec = next(Path(mlflow.artifacts.download_artifacts(f"models:/{teacher_id}")).rglob("chemprop.json"))
    local = ChempropEnsemble.load(spec.parent)
    direct, _ = local.predict_smiles(["CCO", "c1ccccc1CCCCCCCC"])
    np.testing.assert_allclose(out.loc[[0, 1], ["a", "b"]].to_numpy(), direct, rtol=1e-5)


def test_classification_teacher_gives_probabilities_and_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A binary teacher returns P(active); trained again on the same data and settings, it comes
    from the cache (training is not run: it would raise) with the very same outputs."""
    from stillroom_molecules import chemprop_teacher
    from stillroom_molecules.config import MoleculesDataConfig
    from stillroom_molecules.datasets import bundle_from_tables
    from stillroom_molecules.loaders import table_from_frame

    monkeypatch.setenv("STILLROOM_CACHE_DIR", str(tmp_path))
    smiles = embedded.nci_pool().frame["smiles"].tolist()[:80]
    active = [float("N" in s) for s in smiles]
    table = table_from_frame(pd.DataFrame({"smiles": smiles, "active": active}), "synthetic", targets=["active"])
    cfg = MoleculesDataConfig(dataset="molecules.file", path="synthetic", targets=["active"], split="random", pool="none")
    bundle = bundle_from_tables(cfg, table, None, 0, "synthetic")
    settings = TINY | {"ensemble": 1, "cache": True}
    p = chemprop_teacher.train_chemprop_teacher(settings, bundle, 0).predict(bundle.test)
    assert p.shape == (len(bundle.test),) and ((p > 0) & (p < 1)).all()

    def no_training(*_: Any) -> None:
        raise AssertionError("trained again instead of taking the cached teacher")

    monkeypatch.setattr(chemprop_teacher, "fit_ensemble", no_training)
    again = chemprop_teacher.train_chemprop_teacher(settings, bundle, 0).predict(bundle.test)
    np.testing.assert_array_equal(again, p)


def _bad(tmp_path: Path, frame: pd.DataFrame, *extra: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    sets = [
        "data.dataset=molecules.file",
        "molecules.endpoint=toy activity",
        "molecules.units=arbitrary units",
        f"data.path={path}",
        "data.split=random",
        "data.pool=none",
        *extra,
    ]
    return _stillroom(tmp_path, sets)


def _stillroom(tmp_path: Path, sets: list[str], prelude: str = "") -> subprocess.CompletedProcess[str]:
    """``stillroom distill molecules`` in a fresh interpreter (after ``prelude``), own store and cache."""
    code = f"{prelude}\nfrom stillroom.cli import app\napp()"
    args = ["distill", "molecules", *(x for s in sets for x in ("--set", s))]
    env = os.environ | {
        "STILLROOM_CACHE_DIR": str(tmp_path / "cache"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return lines[-1]


def test_a_target_without_training_labels_is_one_line(tmp_path: Path) -> None:
    from stillroom_molecules.chemprop_teacher import train_chemprop_teacher
    from stillroom_molecules.config import MoleculesDataConfig
    from stillroom_molecules.datasets import bundle_from_tables
    from stillroom_molecules.loaders import table_from_frame

    smiles = embedded.nci_pool().frame["smiles"].tolist()[:60]
    b = [np.nan] * 60
    b[0] = 2.5  # labelled once in the file; the split below sends that molecule out of training
    table = table_from_frame(pd.DataFrame({"smiles": smiles, "a": np.arange(60.0), "b": b}), "x", targets=["a", "b"])
    cfg = MoleculesDataConfig(dataset="molecules.file", path="x", targets=["a", "b"], split="random", pool="none")
    bundle = bundle_from_tables(cfg, table, None, 0, "x")
    bundle.train.loc[:, "b"] = np.nan
    with pytest.raises(ConfigError, match=r"target 'b' has no label in the training split .*drop it from data.targets"):
        train_chemprop_teacher(TINY, bundle, 0)


def test_a_task_with_one_class_is_one_line(tmp_path: Path) -> None:
    smiles = embedded.nci_pool().frame["smiles"].tolist()[:60]
    frame = pd.DataFrame({"smiles": smiles, "toxic": [1.0] * 60, "other": [float(i % 2) for i in range(60)]})
    proc = _bad(tmp_path, frame, "data.targets=[toxic, other]", "teacher.name=molecules.chemprop", *_tiny_params())
    line = _one_line(proc)
    assert "target 'toxic' has one class only (1)" in line and "drop it from data.targets" in line


def test_chemprop_absent_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    """chemprop made unimportable in a fresh interpreter: naming the teacher says which extra to
    install; the default falls back to the descriptor ensemble."""
    block = "import sys; sys.modules['chemprop'] = None"
    smiles = embedded.nci_pool().frame["smiles"].tolist()[:40]
    path = tmp_path / "x.csv"
    pd.DataFrame({"smiles": smiles, "y": np.arange(40.0)}).to_csv(path, index=False)
    sets = [
        "data.dataset=molecules.file",
        "molecules.endpoint=toy activity",
        "molecules.units=arbitrary units",
        f"data.path={path}",
        "data.targets=[y]",
        "teacher.name=molecules.chemprop",
    ]
    line = _one_line(_stillroom(tmp_path, sets, block))
    assert line.endswith("pip install 'stillroom-molecules[gnn]'") and "chemprop" in line
    probe = subprocess.run(
        [sys.executable, "-c", f"{block}\nfrom stillroom_molecules.config import default_teacher; print(default_teacher())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "molecules.descriptor_ensemble"


def test_sigterm_while_chemprop_trains_ends_the_run_as_interrupted(tmp_path: Path) -> None:
    """Lightning turns a KeyboardInterrupt raised during ``fit`` (stillroom's SIGINT/SIGTERM
    interrupt is one) into its own shutdown: SIGINT ignored from then on and ``sys.exit(1)``. A
    batch job stopped by its scheduler must end as interrupted (143, one line), nothing registered."""
    path = _two_task_file(tmp_path, rows=200)
    argv = [sys.executable, "-m", "stillroom", "distill", "molecules"]
    settings = [
        "data.dataset=molecules.file",
        "molecules.endpoint=toy activity",
        "molecules.units=arbitrary units",
        f"data.path={path}",
        "data.targets=[a, b]",
        "data.pool=none",
        *_tiny_params(ensemble=1, epochs=500, patience=0),
    ]
    for item in settings:
        argv += ["--set", item]
    env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "STILLROOM_CACHE_DIR": str(tmp_path)}
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:  # wait until the network is training (past its first epochs)
        lines.append(line)
        if "chemprop network 1/1: epoch 2/500" in line:
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.communicate(timeout=300)[1]
    assert proc.returncode == 143, "".join(lines)[-1500:] + rest[-1500:]
    assert "error: interrupted by SIGTERM; stopped, nothing left half-written" in rest
    from mlflow import MlflowClient

    store = MlflowClient(env["MLFLOW_TRACKING_URI"], registry_uri=env["MLFLOW_TRACKING_URI"])
    assert store.search_model_versions("name = 'molecules-student'") == []
