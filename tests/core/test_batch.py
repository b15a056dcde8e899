"""Streaming batch scoring on real temp files: round trips, chunking, every refusal path."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from stillroom.errors import DataError
from stillroom.scoring.batch import score_file
from stillroom.scoring.formats import ColumnSpec, check_schema, iter_chunks

EXPECTED = [ColumnSpec("x", "double"), ColumnSpec("n", "long")]
N_ROWS = 53


def _sigmoid_predict(frame: pd.DataFrame) -> np.ndarray:
    assert list(frame.columns) == ["x", "n"]  # the model sees exactly its columns, in order
    return 1.0 / (1.0 + np.exp(-frame["x"].to_numpy()))


def _frame(n: int = N_ROWS) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"id": [f"{i:04d}" for i in range(n)], "x": rng.normal(0, 2, n), "n": np.arange(n)})


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def _read(path: Path) -> pd.DataFrame:
    if path.name.endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"id": str})


def _score(src: Path, out: Path, **kwargs: object):
    kwargs = {"passthrough": ["id"], "progress": False, **kwargs}
    return score_file(_sigmoid_predict, src, out, EXPECTED, **kwargs)  # type: ignore[arg-type]


def _assert_clean_failure(tmp_path: Path, out: Path, match: str, src: Path, **kwargs: object) -> None:
    """The run fails with a message naming the problem and leaves neither output nor temp file."""
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(DataError, match=match):
        _score(src, out, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    ("src_name", "out_name"),
    [("in.csv", "out.csv"), ("in.parquet", "out.parquet"), ("in.csv", "out.parquet"), ("in.parquet", "out.csv")],
)
def test_round_trip_gives_one_score_per_row_in_order_with_ids(tmp_path: Path, src_name: str, out_name: str) -> None:
    frame = _frame()
    src, out = _write(frame, tmp_path / src_name), tmp_path / out_name
    summary = _score(src, out, chunk_rows=10)
    result = _read(out)
    assert list(result.columns) == ["id", "score"]
    assert result["id"].tolist() == frame["id"].tolist()
    np.testing.assert_allclose(result["score"], 1 / (1 + np.exp(-frame["x"])), rtol=1e-12)
    assert summary.rows == N_ROWS
    assert summary.score_min == pytest.approx(result["score"].min())
    assert summary.score_max == pytest.approx(result["score"].max())
    assert summary.score_mean == pytest.approx(result["score"].mean())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_gzipped_csv_in_and_out(tmp_path: Path) -> None:
    src = tmp_path / "in.csv.gz"
    src.write_bytes(gzip.compress(_frame().to_csv(index=False).encode()))
    _score(src, tmp_path / "out.csv.gz", chunk_rows=8)
    result = pd.read_csv(tmp_path / "out.csv.gz", dtype={"id": str})
    assert result["id"].tolist() == _frame()["id"].tolist()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_chunk_size_does_not_change_output(tmp_path: Path, suffix: str) -> None:
    src = _write(_frame(), tmp_path / f"in{suffix}")
    _score(src, tmp_path / f"small{suffix}", chunk_rows=7)
    _score(src, tmp_path / f"big{suffix}", chunk_rows=10_000)
    pd.testing.assert_frame_equal(_read(tmp_path / f"small{suffix}"), _read(tmp_path / f"big{suffix}"))


def test_summary_digest_and_histogram(tmp_path: Path) -> None:
    src = _write(_frame(), tmp_path / "in.parquet")
    summary = _score(src, tmp_path / "out.parquet", chunk_rows=9)
    assert summary.input_digest == hashlib.sha256(src.read_bytes()).hexdigest()
    assert sum(summary.score_counts) == N_ROWS == summary.rows
    assert len(summary.score_counts) == 20 and len(summary.bin_edges) == 21
    assert summary.rows_per_second > 0 and summary.output_path == str(tmp_path / "out.parquet")


def test_extra_output_columns_are_written(tmp_path: Path) -> None:
    src = _write(_frame(), tmp_path / "in.csv")

    def label(frame: pd.DataFrame, scores: np.ndarray) -> dict[str, np.ndarray]:
        return {"label": (scores > 0.5).astype(np.int64)}

    _score(src, tmp_path / "out.csv", extra_output=label)
    result = _read(tmp_path / "out.csv")
    assert list(result.columns) == ["id", "score", "label"]
    assert (result["label"] == (result["score"] > 0.5)).all()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_passthrough_columns_keep_input_order(tmp_path: Path, suffix: str) -> None:
    src = _write(_frame().assign(region="eu"), tmp_path / f"in{suffix}")
    _score(src, tmp_path / f"out{suffix}", passthrough=["region", "x", "id"])
    assert list(_read(tmp_path / f"out{suffix}").columns) == ["id", "x", "region", "score"]


def test_iter_chunks_streams_typed_frames(tmp_path: Path) -> None:
    src = _write(_frame(), tmp_path / "in.csv")
    chunks = list(iter_chunks(src, 20, expected=[ColumnSpec("x", "float")], passthrough=["id", "n"]))
    assert [len(c) for c in chunks] == [20, 20, 13]
    assert chunks[0]["x"].dtype == np.float32
    assert chunks[2]["id"].iloc[-1] == f"{N_ROWS - 1:04d}"


# --------------------------------------------------------------------------- schema check


def test_check_schema_lists_every_problem_in_one_message() -> None:
    columns = {"x": "str", "extra": np.dtype("float64"), "id": pa.string()}
    with pytest.raises(DataError) as info:
        check_schema(columns, EXPECTED, passthrough=["id"])
    message = str(info.value)
    assert "missing columns: 'n'" in message
    assert "extra columns: 'extra'" in message
    assert "'x' is string, expected double" in message


def test_check_schema_accepts_safe_widening() -> None:
    columns = {"x": np.dtype("int32"), "n": np.dtype("bool"), "b": pa.bool_()}
    check_schema(columns, [*EXPECTED, ColumnSpec("b", "boolean")])


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_missing_column(tmp_path: Path, suffix: str) -> None:
    src = _write(_frame().drop(columns="n"), tmp_path / f"in{suffix}")
    _assert_clean_failure(tmp_path, tmp_path / f"out{suffix}", "missing columns: 'n'", src)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_extra_column(tmp_path: Path, suffix: str) -> None:
    src = _write(_frame().assign(surprise=1.0), tmp_path / f"in{suffix}")
    _assert_clean_failure(tmp_path, tmp_path / f"out{suffix}", "extra columns: 'surprise'", src)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_string_column_where_number_expected(tmp_path: Path, suffix: str) -> None:
    src = _write(_frame().assign(x="abc"), tmp_path / f"in{suffix}")
    _assert_clean_failure(tmp_path, tmp_path / f"out{suffix}", "'x' is string, expected double", src)


def test_non_numeric_value_after_first_block_names_column(tmp_path: Path) -> None:
    frame = _frame().astype({"x": object})
    frame.loc[40, "x"] = "oops"
    src = _write(frame, tmp_path / "in.csv")
    # The sampled first block is all numbers only if the bad row is beyond it; either path must name 'x'.
    _assert_clean_failure(tmp_path, tmp_path / "out.csv", "'x'", src, chunk_rows=7)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize(("value", "what"), [(np.nan, "missing value"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_nan_and_inf_name_column_and_row(tmp_path: Path, suffix: str, value: float, what: str) -> None:
    frame = _frame()
    frame.loc[31, "x"] = value
    src = _write(frame, tmp_path / f"in{suffix}")
    _assert_clean_failure(tmp_path, tmp_path / f"out{suffix}", f"column 'x' has .*{what}.* at row 31", src, chunk_rows=7)


@pytest.mark.parametrize(
    ("name", "content"),
    [("empty.csv", b""), ("header.csv", b"id,x,n\n"), ("empty.parquet", None)],
)
def test_empty_inputs(tmp_path: Path, name: str, content: bytes | None) -> None:
    src = tmp_path / name
    if content is None:
        _write(_frame(0), src)
    else:
        src.write_bytes(content)
    _assert_clean_failure(tmp_path, tmp_path / "out.csv", "has no rows", src)


def test_missing_input_file(tmp_path: Path) -> None:
    _assert_clean_failure(tmp_path, tmp_path / "out.csv", "does not exist", tmp_path / "nope.csv")


@pytest.mark.parametrize(("src_name", "out_name"), [("in.txt", "out.csv"), ("in.csv", "out.json")])
def test_unknown_extension(tmp_path: Path, src_name: str, out_name: str) -> None:
    src = tmp_path / src_name
    src.write_text(_frame().to_csv(index=False))
    _assert_clean_failure(tmp_path, tmp_path / out_name, "unknown .*file type", src)


def test_refuses_to_overwrite_input(tmp_path: Path) -> None:
    src = _write(_frame(), tmp_path / "in.csv")
    original = src.read_bytes()
    _assert_clean_failure(tmp_path, src, "refusing to overwrite the input", src)
    assert src.read_bytes() == original


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_failure_midway_leaves_existing_output_untouched(tmp_path: Path, suffix: str) -> None:
    src = _write(_frame(), tmp_path / f"in{suffix}")
    out = tmp_path / f"out{suffix}"
    out.write_bytes(b"previous results")
    calls = 0

    def flaky(frame: pd.DataFrame) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("model crashed")
        return np.zeros(len(frame))

    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(RuntimeError, match="model crashed"):
        score_file(flaky, src, out, EXPECTED, chunk_rows=10, passthrough=["id"], progress=False, overwrite=True)
    assert out.read_bytes() == b"previous results"
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_model_returning_nan_is_refused(tmp_path: Path) -> None:
    src = _write(_frame(), tmp_path / "in.parquet")

    def broken(frame: pd.DataFrame) -> np.ndarray:
        return np.full(len(frame), np.nan)

    with pytest.raises(DataError, match="non-finite score at row 0"):
        score_file(broken, src, tmp_path / "out.parquet", EXPECTED, passthrough=["id"], progress=False)
    assert not (tmp_path / "out.parquet").exists()


def _read_kv(path: Path, model: object, chunk_rows: int):  # noqa: ANN202 - a reader generator
    """A toy domain format: ``x n label`` per line, the label being informational."""
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    for start in range(0, len(rows), chunk_rows):
        part = rows[start : start + chunk_rows]
        yield pd.DataFrame({"x": [float(r[0]) for r in part], "n": [int(r[1]) for r in part], "label": [r[2] for r in part]})


def test_a_plugin_input_format_is_read_through_the_hook_and_checked_like_a_csv(register_plugin, tmp_path: Path) -> None:  # noqa: ANN001
    from stillroom.api import get_plugin_manager
    from stillroom.contract import InputFormat, hookimpl

    class Formats:
        @hookimpl
        def stillroom_input_formats(self):  # noqa: ANN201
            yield InputFormat("toy.kv", (".kv",), _read_kv, description="x n label per line")

    register_plugin(Formats(), "toy-formats")
    formats = get_plugin_manager().input_formats()
    assert [f.name for f in formats if f.name == "toy.kv"] == ["toy.kv"]
    frame = _frame(7)
    source = tmp_path / "batch.kv"
    source.write_text("".join(f"{x} {n} id{n}\n" for x, n in zip(frame["x"], frame["n"], strict=True)))
    # the reader's own extra column identifies the row: written, not refused as a misaligned file
    summary = score_file(_sigmoid_predict, source, tmp_path / "out.csv", EXPECTED, chunk_rows=3, formats=formats)
    out = _read(tmp_path / "out.csv")
    assert summary.rows == 7 and list(out.columns) == ["label", "score"]
    assert list(out["label"]) == [f"id{n}" for n in range(7)]
    np.testing.assert_allclose(out["score"], 1.0 / (1.0 + np.exp(-frame["x"].round(12))), rtol=1e-9)
    # a model input the reader does not produce is named, nothing is written
    with pytest.raises(DataError, match="missing columns: 'z'"):
        score_file(_sigmoid_predict, source, tmp_path / "z.csv", [*EXPECTED, ColumnSpec("z", "double")], formats=formats)
    assert not (tmp_path / "z.csv").exists()
    # without the plugin the suffix is unknown, and the message lists what is readable
    with pytest.raises(DataError, match=r"unknown file type \(use \.csv, \.csv\.gz, \.parquet"):
        score_file(_sigmoid_predict, source, tmp_path / "none.csv", EXPECTED)


class _LinesWriter:
    """A toy output format: ``n=<input n> score=<score>`` per row, closed with an ``end`` line."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "w")  # noqa: SIM115 - closed in close()

    def write(self, scores: pd.DataFrame, inputs: pd.DataFrame) -> None:
        assert len(scores) == len(inputs)
        for n, score in zip(inputs["n"], scores["score"], strict=True):
            self._file.write(f"n={n} score={score:.6f}\n")

    def close(self) -> None:
        self._file.write("end\n")
        self._file.close()


class _FailingWriter(_LinesWriter):
    def write(self, scores: pd.DataFrame, inputs: pd.DataFrame) -> None:
        super().write(scores, inputs)
        raise OSError("disk full")


def test_a_plugin_output_format_is_chosen_by_the_output_suffix(register_plugin, tmp_path: Path) -> None:  # noqa: ANN001
    """``stillroom_output_formats``: a vertical's writer gets each chunk's output columns and the
    model's inputs of the same rows, writes into the partial file, and the core publishes it
    only when the job succeeded."""
    from stillroom.api import get_plugin_manager
    from stillroom.contract import OutputFormat, hookimpl

    class Formats:
        @hookimpl
        def stillroom_output_formats(self):  # noqa: ANN201
            yield OutputFormat("toy.lines", (".lines",), _LinesWriter, description="lines of n and score")
            yield OutputFormat("toy.broken", (".broken",), _FailingWriter)

    register_plugin(Formats(), "toy-output-formats")
    formats = get_plugin_manager().output_formats()
    assert {f.name for f in formats} >= {"toy.lines", "toy.broken"}
    frame = _frame(7).drop(columns="id")
    source = _write(frame, tmp_path / "in.csv")
    summary = score_file(_sigmoid_predict, source, tmp_path / "out.lines", EXPECTED, chunk_rows=3, output_formats=formats)
    lines = (tmp_path / "out.lines").read_text().splitlines()
    assert summary.rows == 7 and lines[-1] == "end" and len(lines) == 8
    expected = 1.0 / (1.0 + np.exp(-frame["x"].to_numpy()))
    assert lines[:-1] == [f"n={n} score={s:.6f}" for n, s in zip(frame["n"], expected, strict=True)]
    # a writer that fails leaves no output and no partial file behind
    with pytest.raises(OSError, match="disk full"):
        score_file(_sigmoid_predict, source, tmp_path / "out.broken", EXPECTED, output_formats=formats)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.lines"]
    # without the plugin the suffix is refused up front, naming what can be written
    with pytest.raises(DataError, match=r"unknown output file type \(use \.csv, \.csv\.gz, \.parquet\)"):
        score_file(_sigmoid_predict, source, tmp_path / "none.lines", EXPECTED)
    assert not (tmp_path / "none.lines").exists()
