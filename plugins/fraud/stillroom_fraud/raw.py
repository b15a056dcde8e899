"""Scoring raw transactions: a raw batch in, the model's inputs (plus every raw column) out.

A nightly job holds raw transactions, not features, and the features need history (30-day
card windows, terminal risk from labels a week old). So a raw batch carries its history: the
``lookback_days`` (37 by default: the 30-day windows after the 7-day label delay) whole
calendar days before the first day to score, with the labels known so far (empty where not
known yet), then the transactions to score. Every row is scored (one output row per input
row) and flagged: ``history_complete`` is true from the batch's first date + ``lookback_days``
on, where the batch covers all of the row's windows; a row before that has truncated windows
and a score to ignore. Rows come out in time order (ties in the files' order), so carry an id.

The features are those of training, bit for bit: the same :class:`RawFormat` (recorded on
every run trained from a log or the simulator, see :func:`format_tags`) and the same code
(:meth:`TransactionLog.feature_blocks`). :func:`read` has the signature of a scoring input
reader once bound to the format (:data:`RAW`, registered as the input format
``fraud.transactions``): ``stillroom score --raw`` reads a raw batch with it and the settings the
model's run recorded, and scores it (local engine, or Spark on the computed inputs)::

    stillroom score models:/fraud-student@champion tonight/ scores.parquet --raw --passthrough TRANSACTION_ID

``python -m stillroom_fraud.raw`` writes the same model inputs to a file instead, for a job that
keeps them (then ``stillroom score`` that file as a feature table).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from stillroom.contract import (
    INPUT_FORMAT_SETTINGS_TAG,
    INPUT_FORMAT_TAG,
    ConfigError,
    DataError,
    InputFormat,
    ModelInputs,
    StillroomError,
    console,
)
from stillroom.contract.config import resolve

from .config import FraudConfig
from .features import SECONDS_PER_DAY
from .files import Paths
from .transactions import FEATURE_BLOCK_ROWS, RawFormat, TransactionLog, read_log

FORMAT_NAME = "fraud.transactions"
FORMAT_TAG = INPUT_FORMAT_TAG
SETTINGS_TAG = INPUT_FORMAT_SETTINGS_TAG
HISTORY_COLUMN = "history_complete"
Reader = Callable[[Paths, int], Iterator[pd.DataFrame]]


def format_tags(fmt: RawFormat) -> dict[str, str]:
    """What a run records so that its model can score raw transactions: the format and its settings."""
    return {FORMAT_TAG: FORMAT_NAME, SETTINGS_TAG: fmt.to_json()}


def read_for_model(path: Path, model: ModelInputs, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The core's input-format reader (``stillroom score --raw``): the raw batch computed into the
    model's inputs with the format its run recorded (``model.config`` holds those settings)."""
    return read(path, chunk_rows, fmt=RawFormat.from_dict(dict(model.config)))


def reader(settings: str | Mapping[str, Any]) -> Reader:
    """``read(path, chunk_rows)`` for the format recorded with a model (the JSON of :func:`format_tags`)."""
    fmt = RawFormat.from_json(settings) if isinstance(settings, str) else RawFormat.from_dict(dict(settings))
    return functools.partial(read, fmt=fmt)


def read(path: Paths, chunk_rows: int, *, fmt: RawFormat) -> Iterator[pd.DataFrame]:
    """The model inputs, every raw column and ``history_complete`` of a raw batch, in chunks of
    ``chunk_rows`` rows, in time order. The whole batch is read and checked before the first chunk."""
    log = read_log(path, fmt)
    complete_from = (log.first_day + fmt.features.lookback_days) * SECONDS_PER_DAY
    _check_history_labels(log)
    covered = int((log.seconds >= complete_from).sum())
    console.log(
        f"raw batch: {len(log):,} transactions from {log.date(0)}; {covered:,} with complete history "
        f"(from {log.date(fmt.features.lookback_days)} on: {fmt.features.lookback_days} days of lookback)"
    )
    raw_columns = [c for c in log.frame.columns if c not in fmt.model_inputs and c != HISTORY_COLUMN]
    for start, stop, features in log.feature_blocks(max(chunk_rows, FEATURE_BLOCK_ROWS)):
        rows = log.frame.iloc[start:stop][raw_columns].reset_index(drop=True)
        frame = pd.concat([rows, features], axis=1).assign(**{HISTORY_COLUMN: log.seconds[start:stop] >= complete_from})
        for first in range(0, len(frame), chunk_rows):
            yield frame.iloc[first : first + chunk_rows]


def _check_history_labels(log: TransactionLog) -> None:
    """Terminal risk counts the frauds known so far; a batch whose matured rows all lack a label
    would silently score every terminal as clean, so it is refused."""
    delay = log.fmt.features.delay_days * SECONDS_PER_DAY
    matured = log.seconds < log.seconds[-1] - delay
    if matured.any() and np.isnan(log.fraud[matured]).all():
        raise DataError(
            f"raw batch: label column {log.fmt.label!r} is empty on all {int(matured.sum()):,} transactions older than the "
            f"{log.fmt.features.delay_days}-day label delay; terminal risk needs the labels known so far"
        )


def write_features(path: Paths, output: Path, fmt: RawFormat, keep: Sequence[str] = (), chunk_rows: int = 100_000) -> int:
    """Write the model inputs, the ``keep`` columns of the batch (ids to pass through) and
    ``history_complete`` to ``output`` (.parquet or .csv) atomically; return the rows.

    ``stillroom score`` refuses columns it is not told to pass through, so only those named
    in ``keep`` are written."""
    output = Path(output)
    if not output.name.lower().endswith((".parquet", ".csv")):
        raise DataError(f"{output}: the output must be a .parquet or .csv file")
    columns = [*dict.fromkeys(keep), *fmt.model_inputs, HISTORY_COLUMN]
    chunks = (chunk[columns] for chunk in _kept(read(path, chunk_rows, fmt=fmt), keep))
    first = next(chunks)  # reads and checks the whole input before anything is created
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".partial")
    os.close(fd)
    rows = 0
    try:
        schema = pa.Schema.from_pandas(first, preserve_index=False)
        parquet = output.name.lower().endswith(".parquet")
        with pq.ParquetWriter(temp, schema) if parquet else pacsv.CSVWriter(temp, schema) as writer:
            for chunk in (first, *chunks):
                writer.write_table(pa.Table.from_pandas(chunk, schema=schema, preserve_index=False))
                rows += len(chunk)
        os.replace(temp, output)
    finally:
        Path(temp).unlink(missing_ok=True)
    return rows


def _kept(chunks: Iterator[pd.DataFrame], keep: Sequence[str]) -> Iterator[pd.DataFrame]:
    """The chunks, after checking on the first that every ``keep`` column exists."""
    first = next(chunks)
    missing = [c for c in keep if c not in first.columns]
    if missing:
        raise DataError(f"raw batch: no column(s) {missing} to keep (found: {list(first.columns)[:12]})")
    yield first
    yield from chunks


def format_from_config(config: Path | None, overrides: list[str]) -> RawFormat:
    """The raw format of a fraud run configuration (the same file and ``--set`` as ``stillroom distill``)."""
    spec = Path(__file__).with_name("default.yaml")
    cfg = resolve(FraudConfig, spec, config, overrides)
    fmt = cfg.data.raw_format()
    if fmt is None:
        raise ConfigError(f"dataset {cfg.data.dataset!r} is a table of model inputs, not raw transactions")
    return fmt


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m stillroom_fraud.raw",
        description="Turn a raw transaction batch (history + rows to score) into model inputs for `stillroom score`.",
    )
    parser.add_argument("inputs", nargs="+", type=Path, help="raw CSV/Parquet files or folders, then the OUTPUT (.parquet/.csv)")
    parser.add_argument("--config", type=Path, default=None, help="the run configuration the model was trained with")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override key=value")
    parser.add_argument("--keep", action="append", default=[], help="a raw column to carry to the output, e.g. an id")
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    args = parser.parse_args(argv)
    if len(args.inputs) < 2:
        parser.error("give at least one input and the output")
    *inputs, output = args.inputs
    try:
        fmt = format_from_config(args.config, args.overrides)
        rows = write_features(inputs, output, fmt, keep=args.keep, chunk_rows=args.chunk_rows)
    except StillroomError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    print(f"wrote the model inputs of {rows:,} transactions to {output}")


if __name__ == "__main__":
    main()


RAW = InputFormat(
    FORMAT_NAME,
    (),
    read_for_model,
    "raw transactions with their history (stillroom score --raw), read as the model's run recorded",
    identifiers=(HISTORY_COLUMN,),
)
