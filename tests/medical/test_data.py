"""Image sources: the synthetic generator, MedMNIST .npz archives, image folders, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medical.npz import write_npz
from stillroom.contract.bundle import validate_bundle
from stillroom.errors import DataError
from stillroom_medical.images import stack, to_bundle
from stillroom_medical.loaders import load_folder, load_npz
from stillroom_medical.synthetic import generate, synthetic_data


@pytest.mark.parametrize("task_type", ["binary", "multiclass", "multilabel"])
def test_synthetic_is_seeded_and_shaped(task_type: str) -> None:
    a, b = generate(40, size=16, task_type=task_type, seed=3), generate(40, size=16, task_type=task_type, seed=3)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert a.images.shape == (40, 1, 16, 16) and a.images.dtype == np.float32
    assert 0.0 <= a.images.min() and a.images.max() <= 1.0
    assert list(a.metadata.columns) == ["site", "sex", "age_group"]
    if task_type == "multilabel":
        assert a.labels.shape == (40, 2)
    else:
        assert set(np.unique(a.labels)) <= set(range(3 if task_type == "multiclass" else 2))
    assert not np.array_equal(a.images, generate(40, size=16, task_type=task_type, seed=4).images)


def test_lesions_are_what_the_label_says() -> None:
    # an image with a lesion is brighter in a compact blob: the mean of its top pixels is higher
    split = generate(400, size=28, seed=0, difficulty=0.5)
    top = np.sort(split.images.reshape(400, -1), axis=1)[:, -20:].mean(axis=1)
    assert top[split.labels == 1].mean() > top[split.labels == 0].mean() + 0.03


def test_bundle_from_synthetic_data() -> None:
    bundle = to_bundle(synthetic_data(60, 30, 30, size=16, seed=1))
    validate_bundle(bundle)
    assert bundle.features == ["image"] and bundle.opaque_features == ["image"]
    assert bundle.group == "site" and bundle.details["metadata_columns"] == ["site", "sex", "age_group"]
    assert stack(bundle.X(bundle.train)).shape == (60, 1, 16, 16)
    multi = to_bundle(synthetic_data(60, 30, 30, size=16, task_type="multiclass", seed=1))
    assert multi.n_outputs == 3 and multi.task_type == "multiclass"
    multilabel = to_bundle(synthetic_data(60, 30, 30, size=16, task_type="multilabel", seed=1))
    assert multilabel.labels == ["label_lesion", "label_calcification"] and multilabel.y(multilabel.test).shape == (30, 2)


def test_npz_grey_rgb_and_multilabel(tmp_path: Path) -> None:
    data = load_npz(write_npz(tmp_path / "grey.npz"))
    assert data.task_type == "binary" and data.train.images.shape == (30, 1, 16, 16)
    assert data.train.images.max() <= 1.0
    rgb = np.random.default_rng(1).integers(0, 256, size=(30, 16, 16, 3), dtype=np.uint8)
    data = load_npz(write_npz(tmp_path / "rgb.npz", train_images=rgb, val_images=rgb[:10], test_images=rgb[:12]))
    assert data.train.images.shape == (30, 3, 16, 16)
    ml = {
        f"{s}_labels": (np.arange(n * 3).reshape(n, 3) % 2).astype(np.uint8)
        for s, n in (("train", 30), ("val", 10), ("test", 12))
    }
    data = load_npz(write_npz(tmp_path / "ml.npz", **ml))
    assert data.task_type == "multilabel" and data.train.labels.shape == (30, 3)
    classes = {f"{s}_labels": (np.arange(n) % 4).reshape(n, 1) for s, n in (("train", 30), ("val", 10), ("test", 12))}
    assert load_npz(write_npz(tmp_path / "mc.npz", **classes)).task_type == "multiclass"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train_images": np.zeros((30, 16), dtype=np.uint8)}, "images must be"),
        ({"val_images": np.zeros((10, 12, 12), dtype=np.uint8)}, "differ from train"),
        ({"test_labels": np.full((12, 1), 7, dtype=np.int64)}, "out of range"),
        ({"train_labels": np.zeros((29, 1), dtype=np.uint8)}, "labels must have shape"),
        ({"val_images": np.zeros((0, 16, 16), dtype=np.uint8), "val_labels": np.zeros((0, 1))}, "validation split is empty"),
    ],
    ids=["flat-images", "shape-mismatch", "label-range", "label-count", "empty-split"],
)
def test_npz_bad_input(tmp_path: Path, overrides: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_npz(write_npz(tmp_path / "bad.npz", **overrides))


def test_corrupt_or_incomplete_npz(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 definitely not an archive")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_npz(corrupt)
    partial = tmp_path / "partial.npz"
    np.savez(partial, train_images=np.zeros((3, 8, 8)))
    with pytest.raises(DataError, match="lacks array"):
        load_npz(partial)
    with pytest.raises(DataError, match="does not exist"):
        load_npz(tmp_path / "missing.npz")


def _folder(root: Path, n: int = 24) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        name = f"img_{i}.png" if i % 2 else f"img_{i}.jpg"
        Image.fromarray(rng.integers(0, 256, size=(20, 20), dtype=np.uint8)).save(root / name)
        split = "train" if i < 14 else ("val" if i < 19 else "test")
        rows.append({"image": name, "label": i % 2, "split": split, "site": "AB"[i % 2], "sex": "FM"[(i // 2) % 2]})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root


def test_image_folder_with_metadata(tmp_path: Path) -> None:
    data = load_folder(_folder(tmp_path), size=16)
    assert data.train.images.shape == (14, 1, 16, 16) and len(data.validation) == 5 and len(data.test) == 5
    assert list(data.train.metadata.columns) == ["site", "sex"]
    bundle = to_bundle(data)
    assert bundle.details["metadata_columns"] == ["site", "sex"]


def test_image_folder_bad_input(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    (root / "img_3.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="not a readable PNG/JPEG"):
        load_folder(root)
    table = pd.read_csv(root / "labels.csv").assign(label=5)
    table.to_csv(root / "labels.csv", index=False)
    (root / "img_3.png").unlink()
    with pytest.raises(DataError, match="does not exist"):
        load_folder(root)
    with pytest.raises(DataError, match="missing column"):
        load_folder(root, label_columns=["diagnosis"])


def test_npz_with_a_metadata_csv_gives_subgroups(tmp_path: Path) -> None:
    npz = write_npz(tmp_path / "scans.npz")
    rows = [
        {"split": s, "index": i, "site": f"site{i % 3}", "sex": "FM"[i % 2]}
        for s, n in (("train", 30), ("val", 10), ("test", 12))
        for i in range(n)
    ]
    pd.DataFrame(rows[::-1]).to_csv(tmp_path / "meta.csv", index=False)  # any row order: keyed by split and index
    data = load_npz(npz, metadata_csv=str(tmp_path / "meta.csv"))
    assert data.test.metadata["site"].tolist() == [f"site{i % 3}" for i in range(12)]
    bundle = to_bundle(data)
    assert bundle.details["metadata_columns"] == ["site", "sex"] and bundle.group == "site"
    assert bundle.details["preprocessing"] == {
        "size": 16,
        "channels": 1,
        "size_policy": "resize",
        "dicom": {"window": "file", "modalities": None},
    }
    pd.DataFrame(rows[:-1]).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(DataError, match=r"the test split has no row for index \[11\]"):
        load_npz(npz, metadata_csv=str(tmp_path / "short.csv"))
    pd.DataFrame(rows + rows[:1]).to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(DataError, match="several rows for train index 0"):
        load_npz(npz, metadata_csv=str(tmp_path / "twice.csv"))
    pd.DataFrame([{"split": "train", "site": "a"}]).to_csv(tmp_path / "noindex.csv", index=False)
    with pytest.raises(DataError, match="needs columns split, index"):
        load_npz(npz, metadata_csv=str(tmp_path / "noindex.csv"))
