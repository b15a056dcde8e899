"""The embedded default data: seeded synthetic medical-like images, so demo and tests need no files.

Why synthetic and not a bundled real data set: no patient image may ship with the product,
and a real set large enough to be interesting is too big to embed. The generator makes what
a screening model has to learn without being trivial:

* tissue: a smooth low-frequency field (anatomy, density) plus fine texture and noise;
* vessels: elongated bright ridges in every image, the structures a lesion detector must not
  fire on (a "bright spot" detector fails on them);
* lesions: compact round blobs with an irregular (spiculated) rim, of varying size and
  contrast, so small faint ones are hard; their presence is the label;
* calcifications: clusters of tiny bright dots (the second label of the multilabel task);
* metadata: ``site`` (scanner: gain, offset and noise level differ, a domain shift the
  subgroup table must expose), ``sex`` and ``age_group`` (prevalence rises with age).

Tasks: ``binary`` (lesion or not), ``multiclass`` (normal / round lesion / spiculated
lesion), ``multilabel`` (lesion, calcification). Everything is vectorized over images.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .images import ImageData, ImageSplit

SITES = {"A": (1.0, 0.0, 0.03), "B": (0.85, 0.06, 0.05), "C": (1.1, -0.04, 0.08)}  # gain, offset, noise sd
AGE_GROUPS = ("<40", "40-65", ">65")
AGE_PREVALENCE = (0.35, 0.5, 0.65)
CLASS_NAMES = {
    "binary": ["normal", "lesion"],
    "multiclass": ["normal", "round_lesion", "spiculated_lesion"],
    "multilabel": ["lesion", "calcification"],
}


def generate(
    n: int, size: int = 28, channels: int = 1, task_type: str = "binary", seed: int = 0, difficulty: float = 1.0
) -> ImageSplit:
    """``n`` synthetic images ``(n, channels, size, size)`` in [0, 1] with labels and metadata."""
    rng = np.random.default_rng(seed)
    meta = _metadata(n, rng)
    age = meta["age_group"].map({g: i for i, g in enumerate(AGE_GROUPS)}).to_numpy()
    lesion = rng.random(n) < np.asarray(AGE_PREVALENCE)[age]
    spiculated = lesion & (rng.random(n) < 0.5)
    calcified = rng.random(n) < 0.35
    yy, xx = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    img = _tissue(n, yy, xx, rng) + _vessels(n, yy, xx, rng)
    img += _lesions(lesion, spiculated, yy, xx, rng, difficulty)
    if task_type == "multilabel":
        img += _calcifications(calcified, size, rng)
    gain, offset, noise = (np.array([SITES[s][i] for s in meta["site"]])[:, None, None] for i in range(3))
    img = img * gain + offset + rng.normal(size=img.shape) * noise
    img = np.clip(img, 0.0, 1.0).astype(np.float32)[:, None]
    if channels == 3:  # a stain-like tint, so RGB inputs differ per channel
        img = np.concatenate([img, img * 0.9 + 0.05, img * 0.8 + 0.1], axis=1).clip(0, 1).astype(np.float32)
    if task_type == "binary":
        labels = lesion.astype(np.int64)
    elif task_type == "multiclass":
        labels = np.where(lesion, np.where(spiculated, 2, 1), 0).astype(np.int64)
    elif task_type == "multilabel":
        labels = np.stack([lesion, calcified], axis=1).astype(float)
    else:
        raise ValueError(f"unknown task type {task_type!r}")
    return ImageSplit(images=img, labels=labels, metadata=meta)


def synthetic_data(
    n_train: int = 1200,
    n_validation: int = 300,
    n_test: int = 500,
    size: int = 28,
    channels: int = 1,
    task_type: str = "binary",
    seed: int = 0,
    difficulty: float = 1.0,
) -> ImageData:
    """Three independent seeded splits of the generator (seeds derived from ``seed``)."""
    seeds = np.random.SeedSequence(seed).spawn(3)
    splits = [
        generate(n, size, channels, task_type, int(s.generate_state(1)[0]), difficulty)
        for n, s in zip((n_train, n_validation, n_test), seeds, strict=True)
    ]
    return ImageData(
        *splits,
        task_type=task_type,
        class_names=list(CLASS_NAMES[task_type]),
        source=f"stillroom-medical synthetic generator (seed {seed}, {size}x{size}x{channels}, {task_type})",
        details={"generator": {"seed": seed, "size": size, "channels": channels, "difficulty": difficulty}},
    )


def _metadata(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "site": rng.choice(list(SITES), size=n, p=[0.5, 0.3, 0.2]),
            "sex": rng.choice(["F", "M"], size=n),
            "age_group": rng.choice(list(AGE_GROUPS), size=n, p=[0.3, 0.45, 0.25]),
        }
    )


def _tissue(n: int, yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Smooth density (a few low-frequency waves) plus fine texture."""
    out = np.full((n, *yy.shape), 0.45)
    for scale, count in ((0.1, 4), (0.025, 6)):
        freq = rng.uniform(0.5, 3.0 if scale > 0.1 else 9.0, size=(count, n, 2))
        phase = rng.uniform(0, 2 * np.pi, size=(count, n))
        amp = rng.uniform(0.3, 1.0, size=(count, n)) * scale
        for k in range(count):
            arg = 2 * np.pi * (freq[k, :, 0, None, None] * yy + freq[k, :, 1, None, None] * xx) + phase[k, :, None, None]
            out += amp[k, :, None, None] * np.cos(arg)
    return out


def _vessels(n: int, yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One or two thin bright ridges along random lines: bright, but not lesions."""
    out = np.zeros((n, *yy.shape))
    for _ in range(2):
        present = rng.random(n) < 0.7
        angle = rng.uniform(0, np.pi, n)[:, None, None]
        cy, cx = (rng.uniform(0.2, 0.8, n)[:, None, None] for _ in range(2))
        dist = np.abs((yy - cy) * np.cos(angle) - (xx - cx) * np.sin(angle))
        width = rng.uniform(0.015, 0.035, n)[:, None, None]
        contrast = rng.uniform(0.08, 0.25, n)[:, None, None]
        out += present[:, None, None] * contrast * np.exp(-0.5 * (dist / width) ** 2)
    return out


def _lesions(
    lesion: np.ndarray, spiculated: np.ndarray, yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator, difficulty: float
) -> np.ndarray:
    """Compact blobs with a soft edge; spiculated ones have a spiky angular rim."""
    n = len(lesion)
    cy, cx = (rng.uniform(0.25, 0.75, n)[:, None, None] for _ in range(2))
    radius = rng.uniform(0.06, 0.16, n)[:, None, None]
    contrast = (rng.uniform(0.15, 0.4, n) / difficulty)[:, None, None]
    dy, dx = yy - cy, xx - cx
    theta = np.arctan2(dy, dx)
    k = rng.integers(5, 9, n)[:, None, None]
    spikes = np.where(spiculated[:, None, None], 0.45 * np.abs(np.cos(k * theta / 2)) ** 4, 0.08 * np.cos(3 * theta))
    rim = radius * (1 + spikes)
    r = np.sqrt(dy**2 + dx**2)
    blob = 1 / (1 + np.exp((r - rim) / (0.02)))
    return lesion[:, None, None] * contrast * blob


def _calcifications(calcified: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Clusters of 3-6 single-pixel bright dots around a random centre."""
    n = len(calcified)
    out = np.zeros((n, size, size))
    for i in np.flatnonzero(calcified):
        centre = rng.integers(size // 4, 3 * size // 4, 2)
        dots = centre + rng.integers(-size // 8, size // 8 + 1, size=(rng.integers(3, 7), 2))
        dots = dots.clip(0, size - 1)
        out[i, dots[:, 0], dots[:, 1]] = rng.uniform(0.25, 0.45)
    return out
