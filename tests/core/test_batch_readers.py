"""Batch scoring of inputs a vertical reads (an ``InputFormat``: ``read(path, model, chunk_rows)``)
into tensor model inputs: arrays per row, checked against the model's shape, capped chunks,
folder digests, clean failures; and the registration of such a reader (``stillroom_input_formats``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stillroom.api import get_plugin_manager
from stillroom.contract import InputFormat, ModelInputs, hookimpl
from stillroom.errors import DataError, PluginError
from stillroom.scoring.batch import input_sha256, score_file
from stillroom.scoring.formats import TENSOR_CHUNK_BYTES, ColumnSpec, check_schema

SHAPE = (2, 3, 3)
IMAGE = ColumnSpec("image", "float32", SHAPE)


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *SHAPE), dtype=np.float32)


def _reader(images: np.ndarray, seen: list[int] | None = None, bad_row: int | None = None) -> list[InputFormat]:
    """A format reading a folder as ``chunk_rows`` images at a time with their ids (row ``bad_row``: a NaN)."""

    def read(path: Path, model: ModelInputs, chunk_rows: int) -> Iterator[pd.DataFrame]:
        for start in range(0, len(images), chunk_rows):
            part = images[start : start + chunk_rows].copy()
            if bad_row is not None and start <= bad_row < start + chunk_rows:
                part[bad_row - start, 1, 2, 0] = np.nan
            if seen is not None:
                seen.append(len(part))
            ids = [f"img-{i}" for i in range(start, start + len(part))]
            yield pd.DataFrame({"image_id": ids, "image": list(part)})

    return [InputFormat("test.folder", (), read, "a folder of images", matches=Path.is_dir)]


def _mean_and_call(frame: pd.DataFrame) -> pd.DataFrame:
    """A model of tensors: sees one flat array per row; returns named outputs and a text call."""
    x = np.stack(frame["image"].to_list()).reshape(-1, *SHAPE)
    mean = x.mean(axis=(1, 2, 3))
    return pd.DataFrame({"p_high": mean, "p_low": 1 - mean, "call": np.where(mean >= 0.5, "high", "low")})


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"a")
    return folder


def test_a_reader_scores_tensors_with_named_outputs_and_passes_its_ids(tmp_path: Path) -> None:
    images = _images(23)
    out = tmp_path / "scores.csv"
    summary = score_file(_mean_and_call, _folder(tmp_path), out, [IMAGE], chunk_rows=5, progress=False, formats=_reader(images))
    result = pd.read_csv(out)
    assert list(result.columns) == ["image_id", "p_high", "p_low", "call"]  # ids passed through, outputs keep their names
    assert result["image_id"].tolist() == [f"img-{i}" for i in range(23)]
    means = images.mean(axis=(1, 2, 3))
    assert np.allclose(result["p_high"], means, atol=1e-6) and (result["call"] == np.where(means >= 0.5, "high", "low")).all()
    assert summary.rows == 23 and summary.score_mean == pytest.approx(float(means.mean()), abs=1e-6)


def test_a_folder_input_is_digested_file_by_file(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "sub").mkdir()
    (folder / "sub" / "b.bin").write_bytes(b"bb")
    expected = hashlib.sha256(
        f"a.bin\0{hashlib.sha256(b'a').hexdigest()}\nsub/b.bin\0{hashlib.sha256(b'bb').hexdigest()}\n".encode()
    ).hexdigest()
    assert input_sha256(folder) == expected
    summary = score_file(_mean_and_call, folder, tmp_path / "s.parquet", [IMAGE], progress=False, formats=_reader(_images(3)))
    assert summary.input_digest == expected


def test_tensor_chunks_are_capped_by_bytes(tmp_path: Path) -> None:
    big = ColumnSpec("image", "float32", (1, 512, 512))  # 1 MiB a row: 64 rows a chunk, not 100,000
    seen: list[int] = []
    images = np.zeros((70, 1, 512, 512), dtype=np.float32)

    def model(frame: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(frame))

    score_file(model, _folder(tmp_path), tmp_path / "s.csv", [big], progress=False, formats=_reader(images, seen))
    assert seen == [TENSOR_CHUNK_BYTES // (512 * 512 * 4), 70 - TENSOR_CHUNK_BYTES // (512 * 512 * 4)]


@pytest.mark.parametrize(
    ("images", "bad_row", "message"),
    [
        (
            np.zeros((4, 2, 3, 4), dtype=np.float32),
            None,
            r"row 0 \(0-based\): 'image' holds an array of shape \(2, 3, 4\); the model takes \(2, 3, 3\)",
        ),
        (_images(12), 9, "column 'image' has a missing array or NaN/inf values at row 9"),
    ],
    ids=["wrong-shape", "nan-inside-an-array"],
)
def test_bad_tensors_fail_with_the_row_and_write_nothing(
    tmp_path: Path, images: np.ndarray, bad_row: int | None, message: str
) -> None:
    folder = _folder(tmp_path)
    with pytest.raises(DataError, match=message):
        score_file(
            _mean_and_call,
            folder,
            tmp_path / "s.csv",
            [IMAGE],
            chunk_rows=5,
            progress=False,
            formats=_reader(images, bad_row=bad_row),
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]


def test_a_reader_without_rows_or_input(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="has no rows"):
        score_file(_mean_and_call, _folder(tmp_path), tmp_path / "s.csv", [IMAGE], progress=False, formats=_reader(_images(0)))
    with pytest.raises(DataError, match="does not exist"):  # no format claims a path that is not there
        score_file(_mean_and_call, tmp_path / "none", tmp_path / "s.csv", [IMAGE], progress=False, formats=_reader(_images(2)))


def test_tensor_specs_in_the_schema_check() -> None:
    import pyarrow as pa

    check_schema({"image": pa.list_(pa.float32(), 18), "image_id": pa.string()}, [IMAGE], ["image_id"])
    with pytest.raises(DataError, match=r"'image' is double arrays of 18 values, expected float32 tensor \(2, 3, 3\)"):
        check_schema({"image": pa.list_(pa.float64(), 18)}, [IMAGE])
    with pytest.raises(DataError, match="unknown tensor dtype 'float16'"):
        ColumnSpec("image", "float16", SHAPE)
    with pytest.raises(DataError, match="needs a fixed shape per row"):
        ColumnSpec("image", "float32", (-1, 3))


def _read_lines(path: Path, model: ModelInputs, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """One image per line of numbers, scaled by the model's own ``scale`` setting."""
    shape = model.columns[0].shape
    rows = [
        np.array(line.split(), dtype=np.float32).reshape(shape) * model.config["scale"] for line in path.read_text().splitlines()
    ]
    yield pd.DataFrame({"line": range(len(rows)), "image": rows})


class _Formats:
    """A plugin reading ``*.imgs`` files (one image per line of numbers) for a tensor model."""

    @hookimpl
    def stillroom_input_formats(self):  # noqa: ANN201
        yield InputFormat("test.imgs", (".imgs",), _read_lines, "lines of numbers")


def test_input_formats_are_registered_and_read_for_the_model(register_plugin, tmp_path: Path) -> None:  # noqa: ANN001
    register_plugin(_Formats(), "formats")
    pm = get_plugin_manager()
    assert pm.registry.get("input format", "test.imgs").plugin == "formats"
    path = tmp_path / "x.imgs"
    path.write_text(" ".join(["0.25"] * 18) + "\n")
    out = tmp_path / "s.csv"
    score_file(_mean_and_call, path, out, [IMAGE], progress=False, formats=pm.input_formats(), model_config={"scale": 2.0})
    result = pd.read_csv(out)
    assert list(result.columns) == ["line", "p_high", "p_low", "call"] and result["p_high"][0] == pytest.approx(0.5)
    register_plugin(type("Again", (_Formats,), {})(), "again")
    with pytest.raises(PluginError, match="duplicate input format name 'test.imgs'"):
        pm.input_formats()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_input_under_a_declared_alias_in_any_case_is_read_as_the_model_input(tmp_path: Path, suffix: str) -> None:
    """A model's ``model_config`` may declare other names of an input (INPUT_ALIASES): the first
    present in the file, compared in any case, is read as that input; without a declaration the
    names must match exactly (a renamed column is otherwise the usual cause of garbage)."""
    from stillroom.contract import INPUT_ALIASES

    expected = [ColumnSpec("smiles", "string")]
    frame = pd.DataFrame({"id": ["a", "b", "c"], "Structure": ["CCO", "C", "CCCC"]})
    source = tmp_path / f"in{suffix}"
    frame.to_csv(source, index=False) if suffix == ".csv" else frame.to_parquet(source, index=False)

    def predict(batch: pd.DataFrame) -> np.ndarray:
        assert list(batch.columns) == ["smiles"]
        return batch["smiles"].str.len().to_numpy(dtype=float)

    config = {INPUT_ALIASES: {"smiles": ["canonical_smiles", "structure"]}}
    out = tmp_path / "out.csv"
    summary = score_file(predict, source, out, expected, passthrough=["id"], model_config=config, progress=False)
    scores = pd.read_csv(out)
    assert summary.rows == 3 and list(scores.columns) == ["id", "score"] and scores["score"].tolist() == [3.0, 1.0, 4.0]
    with pytest.raises(DataError, match=r"missing columns: 'smiles' \| extra columns: 'Structure'"):
        score_file(predict, source, tmp_path / "plain.csv", expected, passthrough=["id"], progress=False)
    assert not (tmp_path / "plain.csv").exists()
