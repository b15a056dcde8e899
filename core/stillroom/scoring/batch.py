"""The local batch engine: a model's scores for an input file, written atomically.

`stillroom score` must never leave a half-written output behind (a downstream job could pick
it up as if it were complete): the output is written to a hidden temp file beside its final
path and ``os.replace``\\ d at the end, so the path either holds a complete result or is left
exactly as it was. Input chunks come checked and typed from :mod:`.formats`; the input is
hashed on a second thread while it is scored, so the scoring run can say exactly what it scored.

It knows nothing about MLflow: the caller passes a plain ``predict(frame) -> scores``.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv  # writing only: faster than pandas' to_csv
import pyarrow.parquet as pq

from .._runtime import sha256_file
from ..contract.specs import InputFormat, OutputFormat, OutputWriter
from ..errors import DataError
from ..progress import boundary
from .formats import ColumnSpec, Input, iter_tables
from .output import OutputSlot, claim

PredictFn = Callable[[pd.DataFrame], np.ndarray]
ExtraOutputFn = Callable[[pd.DataFrame, np.ndarray], dict[str, np.ndarray]]

#: Fixed histogram bin edges, so score distributions of different runs are comparable.
SCORE_BIN_EDGES: np.ndarray = np.linspace(0.0, 1.0, 21)

# --------------------------------------------------------------------------- writing


class _Writer:
    """Appends Arrow tables to the temp output, in the format the output extension asks for: CSV
    and Parquet by the core, anything else by the vertical's :class:`OutputFormat` that claims it."""

    def __init__(self, temp: Path, fmt: str | OutputFormat, gzip: bool) -> None:
        self._temp, self._fmt, self._gzip = temp, fmt, gzip
        self._writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
        self._plugin: OutputWriter | None = None
        self._sink: pa.NativeFile | None = None
        self._schema: pa.Schema | None = None

    def write(self, table: pa.Table, inputs: pd.DataFrame) -> None:
        if isinstance(self._fmt, OutputFormat):
            if self._plugin is None:
                self._plugin = self._fmt.open(self._temp)
            self._plugin.write(table.to_pandas(), inputs)
            return
        if self._writer is None:
            self._schema = table.schema
            self._writer = self._open(table.schema)
        self._writer.write_table(table.cast(self._schema))

    def _open(self, schema: pa.Schema) -> pq.ParquetWriter | pacsv.CSVWriter:
        if self._fmt == "parquet":
            return pq.ParquetWriter(str(self._temp), schema)
        self._sink = pa.output_stream(str(self._temp), compression="gzip" if self._gzip else None)
        return pacsv.CSVWriter(self._sink, schema)

    def close(self) -> None:
        """Close and fsync, so the rename that follows publishes data that is really on disk."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._plugin is not None:
            self._plugin.close()
            self._plugin = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        if self._temp.exists():
            fd = os.open(self._temp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _output_format(output: Path, formats: Sequence[OutputFormat] = ()) -> tuple[str | OutputFormat, bool]:
    """(``parquet`` | ``csv`` | the vertical's format, gzip) from the output's name; anything else
    is refused up front."""
    name = output.name.lower()
    fmt = "parquet" if name.endswith((".parquet", ".pq")) else "csv" if name.endswith((".csv", ".csv.gz")) else None
    if fmt is not None:
        return fmt, name.endswith(".gz")
    claimed = [f for f in formats if f.claims(output)]
    if len(claimed) > 1:
        raise DataError(f"{output} is claimed by several output formats: {', '.join(f'{f.name} ({f.plugin})' for f in claimed)}")
    if not claimed:
        others = "".join(f", {f.description or f.name}" for f in formats)
        raise DataError(f"{output}: unknown output file type (use .csv, .csv.gz, .parquet{others})")
    return claimed[0], False


# --------------------------------------------------------------------------- summary


@dataclass
class ScoringSummary:
    """What a scoring run logs: volume, speed, provenance of the input, and the score distribution."""

    rows: int
    seconds: float
    rows_per_second: float
    input_digest: str
    output_path: str
    score_counts: list[int]
    score_mean: float
    score_min: float
    score_max: float
    bin_edges: list[float] = field(default_factory=lambda: SCORE_BIN_EDGES.tolist())
    unscored_rows: int = 0  # rows the model flagged as invalid (written with an empty score)
    output_digest: str = ""  # sha256 of the output file as written

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, for run logging."""
        return dict(self.__dict__)


class _ScoreStats:
    """Running histogram / mean / min / max, so no scores are kept across chunks.

    Scores outside [0, 1] are clipped into the end bins so counts always sum to the row
    count; min/max still show the true range.
    """

    def __init__(self) -> None:
        self.counts = np.zeros(len(SCORE_BIN_EDGES) - 1, dtype=np.int64)
        self.rows, self.unscored, self.total = 0, 0, 0.0
        self.low, self.high = math.inf, -math.inf

    def add(self, scores: np.ndarray) -> None:
        """Count every row; flagged rows without a score stay out of the distribution."""
        self.rows += scores.size
        scored = scores[np.isfinite(scores)]
        self.unscored += scores.size - scored.size
        if not scored.size:
            return
        self.counts += np.histogram(np.clip(scored, 0.0, 1.0), bins=SCORE_BIN_EDGES)[0]
        self.total += float(scored.sum(dtype=np.float64))
        self.low, self.high = min(self.low, float(scored.min())), max(self.high, float(scored.max()))


def input_sha256(path: Path, stop: threading.Event | None = None) -> str:
    """sha256 of an input file, or of a folder's files (relative paths and their sha256s, sorted)."""
    if not path.is_dir():
        return sha256_file(path, stop)
    digest = hashlib.sha256()
    for part in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{part.relative_to(path).as_posix()}\0{sha256_file(part, stop)}\n".encode())
    return digest.hexdigest()


@contextmanager
def _background_digest(path: Path) -> Iterator[Future[str]]:
    """Hash the input on a second thread while scoring (hashlib releases the GIL)."""
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stillroom-digest") as pool:
        try:
            yield pool.submit(input_sha256, path, stop)
        except BaseException:
            stop.set()
            raise


# --------------------------------------------------------------------------- scoring


def _scores_of(
    predict: PredictFn, frame: pd.DataFrame, first_row: int, score_column: str
) -> tuple[np.ndarray, dict[str, np.ndarray], str]:
    """Call the model and insist on one finite score per row; a silent NaN would poison the output.

    A model may return a frame instead of an array (a pyfunc that scores domain objects), its
    columns in three parts (:func:`frame_parts`): its outputs, the first of which is the score,
    written under its own name (several endpoints, per-class probabilities ...); its first
    boolean column, the validity flag: a row whose flag is False (an unparsable molecule, say)
    may have no score, it is written empty and the job goes on; and annotations after the flag
    (a reason, an applicability domain), written as they come. Every column keeps the frame's
    order. An array is written as ``score_column``.
    Returns the scores, the other output columns and the score's column name.
    """
    result = predict(frame)
    extra: dict[str, np.ndarray] = {}
    allowed_missing = np.zeros(len(frame), dtype=bool)
    if isinstance(result, pd.DataFrame):
        values, flag, _annotations = frame_parts(result)
        if not values:
            raise ValueError("predict returned a frame without a score column")
        if flag is not None:
            allowed_missing |= ~result[flag].to_numpy(dtype=bool)
        extra = {str(c): result[c].to_numpy() for c in result.columns[1:]}
        score_column = str(values[0])
        result = result[values[0]].to_numpy(dtype=float)
    scores = np.asarray(result)
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.shape != (len(frame),):
        raise ValueError(f"predict returned shape {scores.shape} for {len(frame)} rows; expected one score per row")
    scores = scores.astype(np.float64, copy=False)
    bad = ~np.isfinite(scores) & ~allowed_missing
    if bad.any():
        row = first_row + int(np.flatnonzero(bad)[0])
        raise DataError(f"the model returned a non-finite score at row {row} (0-based data row)")
    for name, column in extra.items():
        if column.dtype.kind == "f" and (~np.isfinite(column) & ~allowed_missing).any():
            row = first_row + int(np.flatnonzero(~np.isfinite(column) & ~allowed_missing)[0])
            raise DataError(f"the model returned a non-finite {name!r} at row {row} (0-based data row)")
    return scores, extra, score_column


def frame_parts(frame: pd.DataFrame) -> tuple[list[str], str | None, list[str]]:
    """(outputs, validity flag, annotations) of a frame a model returns: the columns before its
    first boolean column, that column, and the columns after it."""
    columns = [str(c) for c in frame.columns]
    flag = next((c for c in columns if pd.api.types.is_bool_dtype(frame[c])), None)
    if flag is None:
        return columns, None, []
    at = columns.index(flag)
    return columns[:at], flag, columns[at + 1 :]


def _output_table(
    table: pa.Table,
    frame: pd.DataFrame,
    scores: np.ndarray,
    passthrough: Sequence[str],
    score_column: str,
    extra_output: ExtraOutputFn | None,
    model_extra: dict[str, np.ndarray] | None = None,
) -> pa.Table:
    columns: dict[str, Any] = {name: table.column(name) for name in passthrough}
    columns[score_column] = pa.array(scores, from_pandas=True)  # NaN (a flagged row) is written empty
    produced = dict(model_extra or {})
    produced.update(extra_output(frame, scores) if extra_output else {})
    for name, values in produced.items():
        if name in columns:
            raise ValueError(f"extra output column {name!r} clashes with an existing output column")
        columns[name] = pa.array(np.asarray(values), from_pandas=True)
    return pa.table(columns)


def _same_file(a: Path, b: Path) -> bool:
    if b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _progress(enabled: bool) -> Any:
    """A rich progress bar showing rows and rows/s; silent when disabled or not on a terminal."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..progress import console

    return Progress(
        TextColumn("scoring"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[rows]:,} rows"),
        TextColumn("{task.fields[rate]:,.0f} rows/s"),
        TimeElapsedColumn(),
        console=console,
        disable=not (enabled and sys.stderr.isatty()) or console.quiet,
        transient=False,
    )


def score_file(
    predict: PredictFn,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    expected: list[ColumnSpec],
    *,
    chunk_rows: int = 100_000,
    passthrough: Sequence[str] = (),
    score_column: str = "score",
    progress: bool = True,
    extra_output: ExtraOutputFn | None = None,
    formats: Sequence[InputFormat] = (),
    model_config: Mapping[str, Any] | None = None,
    named_format: InputFormat | None = None,
    output_formats: Sequence[OutputFormat] = (),
    slot: OutputSlot | None = None,
    overwrite: bool = False,
) -> ScoringSummary:
    """Score `input_path` chunk by chunk into `output_path`, atomically.

    `predict` receives exactly the `expected` columns, in that order, cast to their dtypes (a
    tensor input: one flat array of its values per row). The output holds the passthrough
    columns (input order; a vertical reader's identifying columns always), the score column
    and any `extra_output` columns. On any failure the output path is left untouched.
    `formats` are the verticals' readers for inputs that are not CSV or Parquet, and
    `model_config` what such a reader may need to know about the model (its image size ...);
    `named_format` reads the input whatever its name (raw records, ``stillroom score --raw``);
    `output_formats` are the verticals' writers for outputs that are not CSV or Parquet (SDF).
    Given a claimed ``slot`` (:class:`~stillroom.scoring.output.OutputSlot`) the scores go to
    its partial file and the caller publishes them; otherwise the output is claimed here (an
    existing one only with ``overwrite``) and published at the end.
    """
    source_path, target = Path(input_path), Path(output_path)
    if source_path.exists() and _same_file(source_path, target):
        raise DataError(f"refusing to overwrite the input file {source_path} with the scores")
    order = [s.name for s in expected]
    passthrough = list(passthrough)
    if score_column in passthrough:
        raise DataError(f"score column {score_column!r} clashes with a passthrough column")
    fmt, gzip = _output_format(target, output_formats)
    stats, started = _ScoreStats(), time.perf_counter()
    source_input = Input(source_path, expected, formats, dict(model_config or {}), named_format)
    chunks = closing(iter_tables(source_input, passthrough, chunk_rows))
    with claim(target, slot, overwrite) as (claimed, publish):
        writer = _Writer(claimed.partial, fmt, gzip)
        try:
            input_digest = _score_chunks(
                predict, source_path, order, passthrough, score_column, extra_output, stats, writer, chunks, progress, started
            )
        finally:
            writer.close()
        output_digest = sha256_file(claimed.partial)
        if publish:
            claimed.publish()
    seconds = time.perf_counter() - started
    return ScoringSummary(
        rows=stats.rows,
        seconds=seconds,
        rows_per_second=stats.rows / max(seconds, 1e-9),
        input_digest=input_digest,
        output_path=str(target),
        score_counts=stats.counts.tolist(),
        score_mean=stats.total / max(stats.rows - stats.unscored, 1),
        unscored_rows=stats.unscored,
        score_min=stats.low,
        score_max=stats.high,
        output_digest=output_digest,
    )


def _score_chunks(
    predict: PredictFn,
    source_path: Path,
    order: list[str],
    passthrough: list[str],
    score_column: str,
    extra_output: ExtraOutputFn | None,
    stats: _ScoreStats,
    writer: _Writer,
    chunks: Any,
    progress: bool,
    started: float,
) -> str:
    """Every chunk scored and written; returns the input's digest (hashed meanwhile)."""
    with chunks as tables, _progress(progress) as bar:
        task = bar.add_task("score", total=None, rows=0, rate=0.0)
        first, source = next(tables)  # schema checked and first chunk read before hashing starts
        keep = set(passthrough) | set(source.identifiers)
        passthrough = [name for name in source.columns if name in keep]  # input order
        with _background_digest(source_path) as digest:
            bar.update(task, total=source.total)
            for table, _ in itertools.chain([(first, source)], tables):
                frame = table.select(order).to_pandas()
                scores, model_extra, named = _scores_of(predict, frame, stats.rows, score_column)
                writer.write(_output_table(table, frame, scores, passthrough, named, extra_output, model_extra), frame)
                stats.add(scores)
                boundary(f"scoring: {stats.rows:,} rows written")
                rate = stats.rows / max(time.perf_counter() - started, 1e-9)
                bar.update(task, completed=source.position(stats.rows), rows=stats.rows, rate=rate)
            return str(digest.result())
