"""A Chemprop D-MPNN ensemble trained in the plugin: the graph-network teacher.

Chemprop 2 (Heid et al. 2024) through its Python API: bond message passing over the molecular
graph, a normalised-sum readout, batch norm and a feed-forward head, trained by Lightning on
CPU. It is what a computational chemistry group trains on its own assay data and cannot run at
screen scale (tens of ms per molecule), i.e. the teacher this vertical exists to distil.

* **multi-task with missing labels**: one network predicts every target; a molecule without a
  label for a target adds nothing to that target's loss (chemprop masks non-finite targets:
  ``MPNN.training_step``; a test checks the loss against a hand-computed value);
* **regression** (targets standardised on the training split, unscaled inside the network) and
  **binary / multilabel classification** (BCE, sigmoid probabilities);
* an **ensemble** of ``ensemble`` networks (seeds ``seed``, ``seed + 1`` ...), averaged; each
  stops early on the validation loss and is restored to its best epoch;
* torch threads set to the usable cores for the duration (``threads``), one progress line per
  epoch through the ``stillroom`` logger (Lightning's bars and banners are silenced);
* cached under its parameters, seed, library versions and training/validation data (core cache);
* stored as chemprop's own checkpoint files (``chemprop.models.utils.save_model``, what
  ``chemprop train`` writes and ``chemprop predict`` reads) plus a JSON spec; logged to MLflow
  as a models-from-code pyfunc scoring SMILES (:mod:`.pyfunc_teacher`).

The defaults are sized for a 2-core CPU: 3 networks, hidden size 300, depth 3, at most 40
epochs with patience 6, and at most ``max_molecule_epochs`` (250,000) molecules passed through
training in all: a bigger set trains fewer networks, then fewer epochs (:func:`scaled_to_budget`).
One network cost about 1.7-2.4 ms of CPU per molecule and epoch on one thread (training and
validation), so the cap is about 7-10 CPU-minutes (about 6 minutes of wall time on 2 idle cores
at 41k molecules): Lipophilicity's 3,360 training molecules get one network of 40 epochs, a
41k-molecule set one network of 7 epochs. Why not lower: on the 41k scale set, trained with a cap
of 200,000 (6 epochs), the validation loss still fell at each of the last three epochs (0.0172,
0.0155, 0.0126) as the learning rate decayed; the flat stretch seen earlier (epochs 3-4 of 7) was
the schedule's high-rate phase, not convergence (``bench/results/molecules-scale.md``). Chemprop's
published numbers used 5-fold ensembles, 50+ epochs and tuned sizes; ``teacher.params`` reaches
all of them (``max_molecule_epochs: 0`` lifts the cap).
"""

from __future__ import annotations

import importlib.metadata as md
import io
import json
import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stillroom.contract import (
    ConfigError,
    DataBundle,
    ModelDescription,
    ModelLoadError,
    NativeModel,
    as_task_output,
    cached_model,
    console,
    default_cache_dir,
    inference_threads,
    pinned_requirements,
    teacher_cache_key,
    training_threads,
    usable_cores,
)

from .chem import RDKIT_VERSION, standardised_mol
from .labels import training_labels
from .loaders import SMILES

EXTRA = "pip install 'stillroom-molecules[gnn]'"
SPEC_FILE = "chemprop.json"
VALID_COLUMN = "smiles_valid"
TASK_TYPES = ("regression", "binary", "multilabel")
DEFAULTS: dict[str, Any] = {
    "ensemble": 3,
    "epochs": 40,
    "patience": 6,
    "hidden_size": 300,
    "depth": 3,
    "dropout": 0.0,
    "ffn_hidden_size": 300,
    "ffn_layers": 1,
    "batch_norm": True,
    "batch_size": 64,
    "warmup_epochs": 2,
    "init_lr": 1e-4,
    "max_lr": 1e-3,
    "final_lr": 1e-4,
    "max_molecule_epochs": 250_000,  # 0: no cap; see scaled_to_budget
    "threads": 0,  # 0: the usable cores
    "cache": True,
}


def require_chemprop() -> None:
    """One line naming the extra when chemprop (or Lightning) is not installed."""
    try:
        import chemprop  # noqa: F401
        import lightning  # noqa: F401
    except ImportError as exc:
        missing = (getattr(exc, "name", None) or "chemprop").split(".")[0]
        raise ConfigError(f"teacher molecules.chemprop needs {missing}, which is not installed: {EXTRA}") from None


def chemprop_available() -> bool:
    """Whether the graph-network teacher can run here (what makes it the default teacher)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("chemprop", "lightning"))


def scaled_to_budget(p: dict[str, Any], n_train: int) -> dict[str, Any]:
    """``p`` with ``ensemble`` and then ``epochs`` lowered until ensemble x epochs x training
    molecules fits ``max_molecule_epochs``: a 41k-molecule set (33k training) gets one network of
    7 epochs instead of three of 40, so the default run keeps its time budget. Deterministic (no clock):
    the same data and parameters give the same teacher and the same cache key."""
    cap = int(p["max_molecule_epochs"])
    if not cap or int(p["ensemble"]) * int(p["epochs"]) * n_train <= cap:
        return p
    ensemble = max(1, min(int(p["ensemble"]), cap // (int(p["epochs"]) * max(n_train, 1))))
    epochs = max(3, min(int(p["epochs"]), cap // (ensemble * max(n_train, 1))))
    console.log(
        f"teacher: {n_train:,} training molecules: {ensemble} chemprop network(s) of at most {epochs} epochs "
        f"(teacher.params.max_molecule_epochs={cap:,}; 0 lifts the cap)"
    )
    return p | {"ensemble": ensemble, "epochs": epochs, "patience": min(int(p["patience"]), epochs)}


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown config field 'teacher.params.{unknown[0]}' (known: {sorted(DEFAULTS)})")
    p = DEFAULTS | params
    for name in ("ensemble", "epochs", "hidden_size", "depth", "ffn_hidden_size", "ffn_layers", "batch_size"):
        if int(p[name]) < 1:
            raise ConfigError(f"teacher.params.{name} must be at least 1 (got {p[name]})")
    if min(int(p["patience"]), int(p["threads"]), int(p["max_molecule_epochs"])) < 0 or not 0 <= float(p["dropout"]) < 1:
        raise ConfigError("teacher.params: patience, threads and max_molecule_epochs must be >= 0 and dropout in [0, 1)")
    return p


# --------------------------------------------------------------------------- the fitted ensemble


class ChempropEnsemble:
    """Fitted chemprop MPNNs with what reading their outputs needs (task type, output names).

    The same object predicts inside the run and inside the logged pyfunc, so what the run
    measured is what MLflow serves."""

    def __init__(self, models: list[Any], task_type: str, outputs: list[str], batch_size: int = 256, threads: int = 0) -> None:
        self.models, self.task_type, self.outputs = [m.eval() for m in models], task_type, list(outputs)
        self.batch_size, self.threads = int(batch_size), int(threads)

    @classmethod
    def from_checkpoints(cls, blobs: list[bytes], task_type: str, outputs: list[str], threads: int = 0) -> ChempropEnsemble:
        from chemprop.models import MPNN

        try:
            models = [MPNN.load_from_file(io.BytesIO(b), map_location="cpu") for b in blobs]
        except Exception as exc:  # a checkpoint of another chemprop version, a truncated file
            raise ModelLoadError(f"chemprop checkpoint does not load: {type(exc).__name__}: {exc}") from None
        return cls(models, task_type, outputs, threads=threads)

    def predict_mols(self, mols: list[Any]) -> np.ndarray:
        """(n, k) averaged outputs (values, or probabilities) of parsed molecules (none ``None``)."""
        import torch
        from chemprop.data import MoleculeDatapoint, MoleculeDataset, build_dataloader

        from stillroom.torchkd.threads import torch_threads

        if not mols:
            return np.zeros((0, len(self.outputs)))
        loader = build_dataloader(
            MoleculeDataset([MoleculeDatapoint(mol=m) for m in mols]),
            batch_size=self.batch_size,
            num_workers=0,
            shuffle=False,
            drop_last=False,  # chemprop's default drops a last batch of one molecule (a batch-norm guard)
        )
        threads = inference_threads(self.threads) or usable_cores()  # the run's budget when timed; 0: the usable cores
        with torch_threads(threads), torch.inference_mode():
            parts = [torch.stack([m(b[0], b[1], b[2]) for m in self.models]).mean(0) for b in loader]
        return torch.cat(parts).double().numpy()

    def predict_smiles(self, smiles: list[object]) -> tuple[np.ndarray, np.ndarray]:
        """(outputs (n, k) with NaN rows for invalid SMILES, valid mask (n,)): standardised first,
        like every molecule the vertical reads."""
        mols = [standardised_mol(s)[0] for s in smiles]
        valid = np.array([m is not None for m in mols], dtype=bool)
        out = np.full((len(smiles), len(self.outputs)), np.nan)
        out[valid] = self.predict_mols([m for m in mols if m is not None])
        return out, valid

    def frame(self, smiles: list[object]) -> pd.DataFrame:
        """The pyfunc's output: one column per output (``score`` for one) and ``smiles_valid``."""
        values, valid = self.predict_smiles(smiles)
        columns = output_columns(self.outputs)
        return pd.DataFrame(values, columns=columns).assign(**{VALID_COLUMN: valid})

    def save(self, directory: Path) -> Path:
        """Chemprop's own checkpoint per network (``model_<i>.pt``) and ``chemprop.json``."""
        from chemprop.models.utils import save_model

        directory.mkdir(parents=True, exist_ok=True)
        for i, model in enumerate(self.models):
            save_model(directory / f"model_{i}.pt", model, self.outputs)
        spec = {
            "task_type": self.task_type,
            "outputs": self.outputs,
            "members": len(self.models),
            "rdkit": RDKIT_VERSION,
            "chemprop": md.version("chemprop"),
        }
        (directory / SPEC_FILE).write_text(json.dumps(spec, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ChempropEnsemble:
        directory = Path(directory)
        try:
            spec = json.loads((directory / SPEC_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{directory} is not a saved chemprop teacher ({SPEC_FILE}: {exc})") from None
        blobs = [(directory / f"model_{i}.pt").read_bytes() for i in range(int(spec["members"]))]
        return cls.from_checkpoints(blobs, spec["task_type"], spec["outputs"])

    def n_parameters(self) -> int:
        return int(sum(p.numel() for m in self.models for p in m.parameters()))


def output_columns(outputs: list[str]) -> list[str]:
    """``score`` for one output (like the students), the target names for several."""
    return ["score"] if len(outputs) == 1 else list(outputs)


# --------------------------------------------------------------------------- training


def _datasets(smiles: list[str], Y: np.ndarray) -> Any:
    from chemprop.data import MoleculeDatapoint, MoleculeDataset
    from rdkit import Chem

    points = [MoleculeDatapoint(mol=Chem.MolFromSmiles(s), y=y) for s, y in zip(smiles, Y, strict=True)]
    dataset = MoleculeDataset(points)
    dataset.cache = True  # molecular graphs built once, not once per epoch
    return dataset


def build_network(p: dict[str, Any], task_type: str, n_tasks: int, scaler: Any = None) -> Any:
    """An untrained chemprop MPNN: bond message passing, normalised-sum readout, FFN head."""
    from chemprop import nn
    from chemprop.models import MPNN

    mp = nn.BondMessagePassing(d_h=int(p["hidden_size"]), depth=int(p["depth"]), dropout=float(p["dropout"]))
    head: dict[str, Any] = {
        "n_tasks": n_tasks,
        "input_dim": mp.output_dim,
        "hidden_dim": int(p["ffn_hidden_size"]),
        "n_layers": int(p["ffn_layers"]),
        "dropout": float(p["dropout"]),
    }
    if task_type == "regression":
        transform = nn.UnscaleTransform.from_standard_scaler(scaler) if scaler is not None else None
        predictor = nn.RegressionFFN(**head, output_transform=transform)
    else:
        predictor = nn.BinaryClassificationFFN(**head)
    return MPNN(
        mp,
        nn.NormAggregation(),
        predictor,
        batch_norm=bool(p["batch_norm"]),
        warmup_epochs=int(p["warmup_epochs"]),
        init_lr=float(p["init_lr"]),
        max_lr=float(p["max_lr"]),
        final_lr=float(p["final_lr"]),
    )


def _fit_keeping_interrupts(trainer: Any, *args: Any) -> None:
    """``trainer.fit``, with an interrupt still an interrupt.

    Lightning catches a ``KeyboardInterrupt`` raised during ``fit`` (stillroom turns SIGINT and
    SIGTERM into one) as its own "graceful shutdown": it ignores SIGINT from then on and calls
    ``sys.exit(1)``. A batch job stopped by its scheduler then ended with status 1 and no line
    saying why. So the interrupt Lightning saw (its ``on_exception`` hook) is raised again in place
    of that exit, and SIGINT's handler is given back."""
    import signal
    import threading

    from lightning import pytorch as pl

    seen: list[BaseException] = []

    class _Witness(pl.Callback):
        def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
            seen.append(exception)

    trainer.callbacks.append(_Witness())
    main = threading.current_thread() is threading.main_thread()
    sigint = signal.getsignal(signal.SIGINT) if main else None
    try:
        trainer.fit(*args)
    except SystemExit:
        if seen and isinstance(seen[-1], KeyboardInterrupt):
            raise seen[-1] from None
        raise
    finally:
        if main and sigint is not None:
            signal.signal(signal.SIGINT, sigint)


def _best_epoch_callback(title: str, epochs: int) -> Any:
    """A Lightning callback keeping the weights of the best validation epoch and logging each
    epoch on the ``stillroom`` logger (Lightning's own bars are off)."""
    from lightning import pytorch as pl

    class BestEpoch(pl.Callback):
        def __init__(self) -> None:
            self.best = float("inf")
            self.best_epoch = -1
            self.state: dict[str, Any] | None = None
            self.history: list[dict[str, float]] = []
            self.started = time.perf_counter()

        def on_validation_epoch_end(self, trainer: Any, module: Any) -> None:
            if trainer.sanity_checking:
                return
            metrics = trainer.callback_metrics
            val = float(metrics["val_loss"])
            train = float(metrics.get("train_loss_epoch", metrics.get("train_loss", float("nan"))))
            epoch = int(trainer.current_epoch)
            self.history.append({"epoch": epoch, "train_loss": train, "val_loss": val})
            if val < self.best:
                self.best, self.best_epoch = val, epoch
                self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}
            elapsed = time.perf_counter() - self.started
            console.log(
                f"{title}: epoch {epoch + 1}/{epochs} train loss {train:.4f} validation loss {val:.4f} "
                f"(best {self.best:.4f} at epoch {self.best_epoch + 1}; {elapsed:.0f}s)"
            )

    return BestEpoch()


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Lightning's banners ('GPU available ...', worker hints) off: progress is ours."""
    loggers = [logging.getLogger(n) for n in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def train_member(
    p: dict[str, Any],
    task_type: str,
    train: tuple[list[str], np.ndarray],
    valid: tuple[list[str], np.ndarray],
    seed: int,
    title: str,
) -> tuple[bytes, dict[str, Any]]:
    """One network trained to its best validation epoch: (chemprop checkpoint bytes, history)."""
    from chemprop.data import build_dataloader
    from chemprop.models.utils import save_model
    from lightning import pytorch as pl

    train_set, valid_set = _datasets(*train), _datasets(*valid)
    scaler = None
    if task_type == "regression":
        scaler = train_set.normalize_targets()
        valid_set.normalize_targets(scaler)
    with _quiet_lightning():
        pl.seed_everything(seed, workers=True, verbose=False)
        model = build_network(p, task_type, train[1].shape[1], scaler)
        best = _best_epoch_callback(title, int(p["epochs"]))
        callbacks: list[Any] = [best]
        if int(p["patience"]):
            callbacks.append(pl.callbacks.EarlyStopping(monitor="val_loss", mode="min", patience=int(p["patience"])))
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=1,
            max_epochs=int(p["epochs"]),
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=callbacks,
            deterministic=True,
        )
        batch = int(p["batch_size"])
        _fit_keeping_interrupts(
            trainer,
            model,
            build_dataloader(train_set, batch_size=batch, num_workers=0, seed=seed, shuffle=True),
            build_dataloader(valid_set, batch_size=batch, num_workers=0, shuffle=False, drop_last=False),
        )
    if best.state is not None:
        model.load_state_dict(best.state)
    buffer = io.BytesIO()
    save_model(buffer, model.eval(), None)  # type: ignore[arg-type]
    return buffer.getvalue(), {"best_epoch": best.best_epoch + 1, "best_val_loss": best.best, "epochs": best.history}


def fit_ensemble(
    p: dict[str, Any], task_type: str, train: tuple[list[str], np.ndarray], valid: tuple[list[str], np.ndarray], seed: int
) -> dict[str, Any]:
    """``ensemble`` networks with seeds ``seed``, ``seed + 1`` ...: what the cache stores."""
    blobs, histories = [], []
    started = time.perf_counter()
    from stillroom.torchkd.threads import torch_threads

    with torch_threads(training_threads(int(p["threads"]))):  # 0: the usable cores
        for i in range(int(p["ensemble"])):
            title = f"teacher: chemprop network {i + 1}/{p['ensemble']}"
            blob, history = train_member(p, task_type, train, valid, seed + i, title)
            blobs.append(blob)
            histories.append(history)
    return {"checkpoints": blobs, "history": histories, "seconds": time.perf_counter() - started}


# --------------------------------------------------------------------------- the teacher


class ChempropTeacher:
    """The trained ensemble behind the Teacher protocol: SMILES frame in, task-shaped outputs out."""

    def __init__(self, ensemble: ChempropEnsemble, p: dict[str, Any], identity: str, facts: dict[str, Any]) -> None:
        self.ensemble, self.p, self.identity, self.facts = ensemble, p, identity, facts
        self._size: int | None = None

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        from rdkit import Chem

        mols = [Chem.MolFromSmiles(s) for s in X[SMILES].tolist()]  # standardised by the loaders
        return as_task_output(self.ensemble.predict_mols(mols), self.ensemble.task_type)

    def describe(self) -> ModelDescription:
        if self._size is None:
            self._size = len(b"".join(self.facts["checkpoints"]))
        p = self.p
        return ModelDescription(
            name="molecules-chemprop",
            kind=(
                f"Chemprop {md.version('chemprop')} D-MPNN ensemble of {p['ensemble']} (hidden {p['hidden_size']}, "
                f"depth {p['depth']}, FFN {p['ffn_layers']}x{p['ffn_hidden_size']}), trained on CPU"
            ),
            n_parameters=self.ensemble.n_parameters(),
            size_bytes=self._size,
            details={
                "identity": self.identity,
                "best_epochs": ",".join(str(h["best_epoch"]) for h in self.facts["history"]),
                "training_seconds": round(float(self.facts["seconds"]), 1),
            },
        )

    def native_model(self) -> NativeModel:
        """A models-from-code pyfunc: :mod:`.pyfunc_teacher` plus the chemprop checkpoints."""
        import tempfile

        directory = self.ensemble.save(Path(tempfile.mkdtemp(prefix="stillroom-chemprop-teacher-")))
        return smiles_model(directory, output_columns(self.ensemble.outputs), ("chemprop", "lightning", "torch"))


def smiles_model(directory: Path, columns: list[str], libraries: tuple[str, ...]) -> NativeModel:
    """A teacher saved in ``directory`` as an MLflow pyfunc taking a ``smiles`` column."""
    from .student import PUBLIC_EXAMPLE

    outputs = [{"type": "double", "name": c} for c in columns] + [{"type": "boolean", "name": VALID_COLUMN}]
    signature = {"inputs": json.dumps([{"type": "string", "name": SMILES}]), "outputs": json.dumps(outputs)}
    return NativeModel(
        "pyfunc",
        str(Path(__file__).with_name("pyfunc_teacher.py")),
        signature=signature,
        input_example=pd.DataFrame({SMILES: PUBLIC_EXAMPLE}),
        log_kwargs={"artifacts": {"teacher": str(directory)}, "pip_requirements": pinned(libraries)},
        scratch=(str(directory),),
    )


def pinned(libraries: tuple[str, ...]) -> list[str]:
    return pinned_requirements(("stillroom-molecules", "rdkit", *libraries, "numpy", "pandas"))


def train_chemprop_teacher(params: dict[str, Any], bundle: DataBundle, seed: int) -> ChempropTeacher:
    """Fit (or take from the cache) the ensemble on the training split, stopping on validation."""
    require_chemprop()
    p = check_params(params)
    if bundle.reference == "teacher":
        raise ConfigError(
            "teacher molecules.chemprop trains on labels, and data.reference 'teacher' means there are none: "
            "use a pre-trained teacher (teacher.name=molecules.admet, or teacher.uri=<an MLflow model taking SMILES>)"
        )
    task_type = bundle.details.get("task_type", "regression")
    if task_type not in TASK_TYPES:
        raise ConfigError(
            f"teacher molecules.chemprop trains regression, binary and multilabel targets, not a {task_type} task: "
            "use teacher.name=molecules.descriptor_ensemble"
        )
    Y_train = training_labels(bundle, bundle.train, "molecules.chemprop", "training split")
    Y_valid = bundle.validation[bundle.details["targets"]].to_numpy(dtype=float)
    if np.isnan(Y_valid).all():
        raise ConfigError(
            "teacher molecules.chemprop: the validation split has no labels to stop early on; raise data.valid_fraction"
        )
    outputs = list(bundle.details["targets"])
    p = scaled_to_budget(p, len(bundle.train))
    versions = {d: md.version(d) for d in ("chemprop", "lightning", "torch", "rdkit")}
    params = {k: v for k, v in p.items() if k not in ("threads", "cache")}
    # features, labels, task type and the data of both splits (it stops early on validation)
    key = teacher_cache_key("molecules.chemprop", params, seed, bundle, splits=("train", "validation"), versions=versions)
    train = (bundle.train[SMILES].tolist(), Y_train)
    valid = (bundle.validation[SMILES].tolist(), Y_valid)

    def fit() -> dict[str, Any]:
        return fit_ensemble(p, task_type, train, valid, seed)

    facts, hit = cached_model(default_cache_dir() / "teachers", key, fit) if p["cache"] else (fit(), False)
    if hit:
        console.log(f"teacher: the same chemprop ensemble (key {key}) was trained before; taken from the cache")
    ensemble = ChempropEnsemble.from_checkpoints(facts["checkpoints"], task_type, outputs, threads=int(p["threads"]))  # type: ignore[index]
    return ChempropTeacher(ensemble, p, key, facts)  # type: ignore[arg-type]
