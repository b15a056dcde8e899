"""A small torch MLP on fingerprints: the multi-task student.

One network with a shared trunk and one output per endpoint learns several endpoints at once
(the shared representation is what makes multi-task distillation pay: the teacher's outputs
for every endpoint on every pool molecule are dense, where real labels are sparse). Inputs
are log1p-scaled Morgan counts (and descriptors) standardised with the training rows' moments,
which are kept as buffers of the network so the saved ``state_dict`` is the whole model.

The network reads CSR rows, in training as in scoring: the standardisation is folded into the
first layer, whose output is a sum of its weights over each molecule's set positions
(:class:`SparseRows`, ``embedding_bag``). So the first layer costs what a molecule sets, not the
fingerprint's length (47 -> 5 us per molecule when scoring), and a training set is held as CSR
rows, about 40 values per molecule, never as a dense matrix of every position.

Losses (masked where a row has nothing to learn for an output):
* regression: MSE to the blended target (alpha * teacher + (1 - alpha) * label), on targets
  standardised per output (de-standardised in the network's last layer at inference);
* binary / multilabel: Hinton's loss per output, alpha * T^2 * BCE(sigmoid(z_t/T), sigmoid(z/T))
  + (1 - alpha) * BCE(y, sigmoid(z));
* multiclass: alpha * T^2 * KL(softmax(log p_t / T) || softmax(z / T)) + (1 - alpha) * CE(y, z);
* mixed (some outputs values, some probabilities: an ADMET panel in one network): each output
  its kind's loss, pooled over every cell that has something to learn. One network for the
  panel parses and featurises each molecule once, where one network per kind did it twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from scipy import sparse
from torch import nn

from stillroom.contract import ConfigError, console, training_threads
from stillroom.torchkd.threads import torch_threads

from .outputs import Matrix

DEFAULTS: dict[str, Any] = {
    "hidden": [512, 128],
    "dropout": 0.1,
    "epochs": 80,
    "batch_size": 128,
    "learning_rate": 1e-3,
    "weight_decay": 1e-5,
    "patience": 12,
    "threads": 1,  # 0: the usable cores; 2 threads trained no faster than 1 on an idle 2-core machine (molecules-threads.md)
    # rows x epochs at most (0: no cap), like the chemprop teacher's max_molecule_epochs: see epoch_budget
    "max_row_epochs": 800_000,
}
EPS = 1e-6
MIN_EPOCHS = 3


def epoch_budget(p: dict[str, Any], n_rows: int) -> int:
    """The epochs to train at most: ``epochs``, lowered so that rows x epochs stays within
    ``max_row_epochs`` (never below 3; 0 lifts the cap).

    Why: an epoch costs what its rows cost, and early stopping does not end sooner on more rows
    (the 1024-256 MLP ran 62 epochs on 35,800 transfer rows of a 41k-molecule set: 453
    CPU-seconds, a third of the run's 15-minute budget). A bigger set takes more optimiser steps
    per epoch, so fewer epochs see as many batches. The default (800,000) is 10,000 rows x the
    default 80 epochs: every set up to 10,000 transfer rows trains as before; 35,800 rows get 22
    epochs. Deterministic (no clock): the same data and settings train the same network."""
    cap, epochs = int(p["max_row_epochs"]), int(p["epochs"])
    if cap < 0:
        raise ConfigError(f"student.params.max_row_epochs must be >= 0 (0: no cap), not {cap}")
    if not cap or epochs * n_rows <= cap:
        return epochs
    return min(epochs, max(MIN_EPOCHS, cap // max(n_rows, 1)))


class Network(nn.Module):
    """Standardise -> [Linear, ReLU, Dropout]* -> Linear -> de-standardise (regression).

    ``forward`` takes :class:`SparseRows`; the first ``Linear`` is applied in folded form (see
    :func:`_input_layer`), which equals ``Linear((signed_log(x) - x_mean) / x_std)``."""

    def __init__(self, n_in: int, n_out: int, hidden: list[int], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, n_out))
        self.body = nn.Sequential(*layers)
        self.register_buffer("x_mean", torch.zeros(n_in))
        self.register_buffer("x_std", torch.ones(n_in))
        self.register_buffer("y_mean", torch.zeros(n_out))
        self.register_buffer("y_std", torch.ones(n_out))

    def forward(self, rows: SparseRows) -> torch.Tensor:
        """Standardised outputs (logits for classification)."""
        return self.body[1:](_input_layer(self, rows))


class SparseRows(NamedTuple):
    """CSR feature rows as ``embedding_bag`` reads them, values already ``signed_log``-scaled."""

    indices: torch.Tensor
    offsets: torch.Tensor
    values: torch.Tensor

    @classmethod
    def of(cls, rows: sparse.csr_matrix) -> SparseRows:
        return cls(
            torch.from_numpy(rows.indices.astype(np.int64)),
            torch.from_numpy(rows.indptr[:-1].astype(np.int64)),
            signed_log(torch.from_numpy(rows.data.astype(np.float32, copy=False))),  # zero stays zero: rows stay sparse
        )


def signed_log(x: torch.Tensor) -> torch.Tensor:
    """log1p on magnitudes: counts and descriptors of any sign on a tame scale."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def network_predict(net: Network, F: np.ndarray | sparse.csr_matrix, kinds: tuple[str, ...]) -> np.ndarray:
    """Outputs of the trained network on dense or CSR feature rows, per output as its kind says
    (:func:`~stillroom.contract.output_kinds`: a value, a probability, or a multiclass
    task's class probabilities), computed through the rows' non-zero entries: see
    :func:`_input_layer`."""
    net.eval()
    with torch.inference_mode():
        z = net(SparseRows.of(sparse.csr_matrix(F, dtype=np.float32)))
        if "multiclass" in kinds:
            return torch.softmax(z, dim=1).double().numpy()
        value = torch.tensor([k == "regression" for k in kinds])
        return torch.where(value, z * net.y_std + net.y_mean, torch.sigmoid(z)).double().numpy()


def _input_layer(net: Network, rows: SparseRows) -> torch.Tensor:
    """The first linear layer on standardised inputs, as a sum over each row's set positions.

    ``W ((log x - mean) / std) + b`` equals ``(W / std) log x + (b - (W / std) mean)``, and
    ``log x`` is zero wherever ``x`` is: a molecule sets a few dozen of thousands of fingerprint
    positions, so summing those columns of ``W / std`` (``embedding_bag``) replaces the full
    matrix product, whatever the fingerprint's length. While gradients are recorded (training)
    the fold is part of the graph, so ``W`` and ``b`` learn through it.
    """
    weight, bias = _fold(net) if torch.is_grad_enabled() else _folded_input_weights(net)
    if rows.offsets.shape[0] == 0:
        return bias.expand(0, -1)
    summed = nn.functional.embedding_bag(rows.indices, weight, rows.offsets, mode="sum", per_sample_weights=rows.values)
    return summed + bias


def _folded_input_weights(net: Network) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W / std)`` transposed (one row per input position) and ``b - (W / std) mean``.

    Kept on the network until one of the tensors it is made of changes in place (training
    steps and ``load_state_dict`` do), so a single-molecule call does not refold 2,048 x 512
    weights each time. A network built under ``torch.inference_mode`` has no version counters
    to watch: it is folded on every call."""
    first = net.body[0]
    parts = (first.weight, first.bias, net.x_mean, net.x_std)
    if any(t.is_inference() for t in parts):
        return _fold(net)
    key = tuple((id(t), t._version) for t in parts)
    cached = net.__dict__.get("_folded")
    if cached is None or cached[0] != key:
        cached = (key, *_fold(net))
        net.__dict__["_folded"] = cached
    return cached[1], cached[2]


def _fold(net: Network) -> tuple[torch.Tensor, torch.Tensor]:
    first = net.body[0]
    weight = (first.weight / net.x_std).T.contiguous()
    return weight, first.bias - net.x_mean @ weight


def load_network(path: Path, config: dict[str, Any]) -> Network:
    net = Network(int(config["n_in"]), int(config["n_out"]), list(config["hidden"]), float(config["dropout"]))
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.eval()


class LossSpec(NamedTuple):
    """What the loss needs besides outputs and targets: the recipe and which output positions
    hold values and which probabilities (``None``: all of them; absent kinds are skipped)."""

    task_type: str
    temperature: float
    alpha: float
    value_columns: torch.Tensor | None
    probability_columns: torch.Tensor | None

    @classmethod
    def of(cls, m: Matrix, task_type: str) -> LossSpec:
        return cls(task_type, m.temperature, m.alpha, _positions(m, "regression"), _positions(m, "binary"))


def _positions(m: Matrix, kind: str) -> torch.Tensor | None:
    """Output positions of one kind, ``None`` when they are all of them (no slicing)."""
    columns = m.columns(kind)
    return None if len(columns) == m.n_outputs else torch.from_numpy(columns)


def _loss(z: torch.Tensor, target: dict[str, torch.Tensor], spec: LossSpec) -> torch.Tensor:
    """Mean loss over the cells that carry something to learn; a mixed task pools its value
    and probability cells (each output counts by its rows, as in the single-kind losses)."""
    T, alpha = spec.temperature, spec.alpha
    if spec.task_type == "multiclass":
        return _multiclass_loss(z, target, T, alpha)
    total, cells = torch.zeros(()), torch.zeros(())
    parts = (("value", spec.value_columns, _regression_loss), ("hard", spec.probability_columns, _binary_loss))
    for part, where, cell_loss in parts:
        if part in target:
            s, n = cell_loss(z if where is None else z[:, where], target, T, alpha)
            total, cells = total + s, cells + n
    return total / cells.clamp(min=1.0)


Sums = tuple[torch.Tensor, torch.Tensor]  # (sum of per-cell losses, cells counted)


def _regression_loss(z: torch.Tensor, target: dict[str, torch.Tensor], _T: float, _alpha: float) -> Sums:
    """(sum of weighted squared errors, sum of weights) of the regression outputs."""
    w = target["weight"]
    return (w * (z - target["value"]) ** 2).sum(), w.sum()


def _binary_loss(z: torch.Tensor, target: dict[str, torch.Tensor], T: float, alpha: float) -> Sums:
    """(sum of Hinton's per-cell losses, number of cells with a label or a teacher) of the
    probability outputs."""
    hard, hmask, soft, smask = target["hard"], target["hard_mask"], target["soft"], target["soft_mask"]
    bce = nn.functional.binary_cross_entropy_with_logits
    hard_term = bce(z, hard, reduction="none") * hmask
    soft_term = bce(z / T, soft, reduction="none") * smask
    a = torch.where(hmask > 0, torch.full_like(z, alpha), torch.ones_like(z)) * (smask > 0)
    per_cell = a * T**2 * soft_term + (1 - a) * hard_term
    return per_cell.sum(), (hmask + smask).clamp(max=1).sum()


def _multiclass_loss(z: torch.Tensor, target: dict[str, torch.Tensor], T: float, alpha: float) -> torch.Tensor:
    hard, hmask, soft, smask = target["hard"], target["hard_mask"], target["soft"], target["soft_mask"]
    log_p = torch.log_softmax(z, dim=1)
    ce = -(hard * log_p).sum(1) * hmask[:, 0]
    kl = (soft * (torch.log(soft.clamp(min=EPS)) - torch.log_softmax(z / T, dim=1))).sum(1) * smask[:, 0]
    a = torch.where(hmask[:, 0] > 0, torch.full_like(ce, alpha), torch.ones_like(ce)) if smask.any() else torch.zeros_like(ce)
    per_row = a * T**2 * kl + (1 - a) * ce
    return per_row.sum() / (hmask[:, 0] + smask[:, 0]).clamp(max=1).sum().clamp(min=1.0)


def _tensors(m: Matrix, task_type: str, y_mean: np.ndarray, y_std: np.ndarray) -> dict[str, torch.Tensor]:
    """The targets and masks of every row (the loss's inputs besides the network's output):
    ``value``/``weight`` for the regression outputs, ``hard``/``soft`` and their masks for the
    probability outputs, in the order of :class:`LossSpec`'s positions."""
    from .outputs import blended

    out: dict[str, torch.Tensor] = {}
    if task_type == "multiclass":
        return _probability_tensors(m, m.hard, None if m.teacher is None else m.teacher, "multiclass")
    regression, binary = m.columns("regression"), m.columns("binary")
    if len(regression):
        value, weight = blended(m)
        value = ((value - y_mean) / y_std)[:, regression]
        out["value"] = torch.from_numpy(value.astype(np.float32))
        out["weight"] = torch.from_numpy(weight[:, regression].astype(np.float32))
    if len(binary):
        teacher = None if m.teacher is None else m.teacher[:, binary]
        out |= _probability_tensors(m, m.hard[:, binary], teacher, "binary")
    return out


def _probability_tensors(m: Matrix, hard: np.ndarray, teacher: np.ndarray | None, task_type: str) -> dict[str, torch.Tensor]:
    labelled = ~np.isnan(hard)
    out = {"hard": torch.from_numpy(np.nan_to_num(hard).astype(np.float32))}
    out["hard_mask"] = torch.from_numpy(labelled.astype(np.float32))
    if teacher is None:
        out["soft"], out["soft_mask"] = torch.zeros_like(out["hard"]), torch.zeros_like(out["hard"])
    else:
        out["soft"] = torch.from_numpy(_soften(teacher, m.temperature, task_type).astype(np.float32))
        out["soft_mask"] = torch.from_numpy(np.isfinite(teacher).astype(np.float32))
    return out


def _soften(p: np.ndarray, T: float, task_type: str) -> np.ndarray:
    p = np.clip(np.nan_to_num(p, nan=0.5), EPS, 1 - EPS)
    if task_type == "multiclass":
        z = np.log(p) / T
        z = z - z.max(axis=1, keepdims=True)
        return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return 1 / (1 + np.exp(-(np.log(p) - np.log1p(-p)) / T))


def input_moments(F: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Per position: mean and standard deviation of ``signed_log(x)`` over the rows, from the
    non-zero entries (an unset position is a zero). The deviation has a floor of 1: a position
    almost never set in training must not blow up when a test molecule sets it.

    Sums per position come from ``np.bincount`` over the stored entries, so the only copies are
    of the values (a CSR copy of the rows and one of their squares was most of the training's
    peak memory at a million molecules)."""
    logx = signed_log(torch.from_numpy(F.data.astype(np.float64))).numpy()
    n = max(F.shape[0], 1)
    mean = np.bincount(F.indices, weights=logx, minlength=F.shape[1]) / n
    square = np.bincount(F.indices, weights=logx * logx, minlength=F.shape[1]) / n
    std = np.sqrt(np.maximum(square - mean**2, 0.0))
    return mean.astype(np.float32), np.maximum(std, 1.0).astype(np.float32)


def optimizer(net: Network, p: dict[str, Any]) -> torch.optim.Optimizer:
    """AdamW over whole parameter lists at once (``foreach``: 4 against 7 ms a step here).

    Not ``fused`` (1.4 ms): its kernel updates the weights without bumping their version
    counters, so the folded first layer (:func:`_folded_input_weights`) would not see the step
    and validation would score stale weights (early stopping then stopped after 2 epochs)."""
    return torch.optim.AdamW(net.parameters(), lr=float(p["learning_rate"]), weight_decay=float(p["weight_decay"]), foreach=True)


def train_network(
    F: sparse.csr_matrix,
    m: Matrix,
    task_type: str,
    p: dict[str, Any],
    seed: int,
    F_valid: sparse.csr_matrix | None,
    m_valid: Matrix | None,
) -> tuple[Network, dict[str, Any]]:
    """Adam with early stopping on the validation loss; the best epoch's weights are kept.

    Mini-batches are sliced from the CSR rows: memory grows with what molecules set, not with
    rows x positions."""
    torch.manual_seed(seed)
    F = sparse.csr_matrix(F, dtype=np.float32)
    with torch_threads(training_threads(int(p["threads"]))):  # 0: the usable cores (a search trial: its share)
        net = Network(F.shape[1], m.n_outputs, list(p["hidden"]), float(p["dropout"]))
        x_mean, x_std = input_moments(F)
        net.x_mean.copy_(torch.from_numpy(x_mean))
        net.x_std.copy_(torch.from_numpy(x_std))
        y_mean, y_std = np.zeros(m.n_outputs), np.ones(m.n_outputs)
        if len(m.columns("regression")):
            from .outputs import blended

            value, weight = blended(m)
            for j in m.columns("regression"):
                rows = weight[:, j] > 0
                y_mean[j], y_std[j] = value[rows, j].mean(), max(value[rows, j].std(), 1e-3)
            net.y_mean.copy_(torch.from_numpy(y_mean.astype(np.float32)))
            net.y_std.copy_(torch.from_numpy(y_std.astype(np.float32)))
        train = _tensors(m, task_type, y_mean, y_std)
        valid = None
        if F_valid is not None and m_valid is not None:
            valid = (SparseRows.of(sparse.csr_matrix(F_valid, dtype=np.float32)), _tensors(m_valid, task_type, y_mean, y_std))
        spec = LossSpec.of(m, task_type)
        opt = optimizer(net, p)
        gen = torch.Generator().manual_seed(seed)
        best, best_state, since, epochs = float("inf"), None, 0, 0
        cap = epoch_budget(p, F.shape[0])
        if cap < int(p["epochs"]):
            console.log(
                f"student: MLP on {F.shape[0]:,} rows: at most {cap} epochs "
                f"(student.params.max_row_epochs={int(p['max_row_epochs']):,}; 0 lifts the cap)"
            )
        for _epoch in range(cap):
            epochs += 1
            net.train()
            for idx in torch.randperm(F.shape[0], generator=gen).split(int(p["batch_size"])):
                opt.zero_grad()
                batch = {k: v[idx] for k, v in train.items()}
                loss = _loss(net(SparseRows.of(F[idx.numpy()])), batch, spec)
                loss.backward()
                opt.step()
            if valid is None:
                continue
            net.eval()
            with torch.no_grad():
                v = float(_loss(net(valid[0]), valid[1], spec))
            if v < best - 1e-5:
                best, best_state, since = v, {k: t.clone() for k, t in net.state_dict().items()}, 0
            else:
                since += 1
                if since >= int(p["patience"]):
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
    config = {"n_in": F.shape[1], "n_out": m.n_outputs, "hidden": list(p["hidden"]), "dropout": float(p["dropout"])}
    return net.eval(), config | {"epochs_run": epochs, "epoch_cap": cap, "best_valid_loss": best if np.isfinite(best) else None}
