"""A small MedMNIST-layout ``.npz`` for tests: random 16x16 grey images, alternating 0/1 labels,
any array replaced by a keyword (the bad-input tests swap one in)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPLITS = (("train", 30), ("val", 10), ("test", 12))


def write_npz(path: Path, splits: tuple[tuple[str, int], ...] = SPLITS, **overrides: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in splits:
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(n, 16, 16), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).reshape(n, 1).astype(np.uint8)
    np.savez(path, **(arrays | overrides))
    return path
