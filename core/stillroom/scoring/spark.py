"""Batch scoring through Spark: ``stillroom score ... --engine spark [--master URL]``.

The same registered model, as an ``mlflow.pyfunc.spark_udf``, over a Parquet file or a
directory of Parquet parts, on a local Spark (``local[*]``, the default) or any cluster master.
It keeps the promises of the local engine (:mod:`stillroom.batch`):

* every input check (file, schema, passthrough, output path) runs *before* Spark starts, with
  the same messages; missing and non-finite values are counted by Spark before any score is
  written, and name the column;
* the output (a directory of Parquet parts, as Spark writes) is written beside its final
  path under a hidden name and renamed into place only when complete;
* the job returns the same :class:`~stillroom.batch.ScoringSummary`, so the same scoring run
  is logged; the score histogram is computed by Spark from the written output.

On a cluster, input and output paths must be on storage every executor can reach (a shared
file system); the model is shipped to the executors by MLflow.

:func:`label_rows` uses the same machinery for the teacher's pass over a large transfer set
(``teacher.spark_master`` in the run config).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from .._runtime import sha256_file
from ..errors import DataError, missing_dependency
from .batch import SCORE_BIN_EDGES, ScoringSummary
from .formats import ColumnSpec, check_schema
from .output import OutputSlot, claim

DEFAULT_MASTER = "local[*]"
ARROW_BATCH_ROWS = 100_000  # rows per Arrow batch handed to the model in each Python worker

UdfFactory = Callable[[Any], Any]  # spark session -> pyfunc spark UDF returning a double


def _is_parquet(path: Path) -> bool:
    return path.name.lower().endswith((".parquet", ".pq"))


def _parquet_files(path: Path) -> list[Path]:
    """The data files of a Parquet file or a directory of parts (Spark's hidden files excluded)."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))


def check_input(path: Path, expected: list[ColumnSpec], passthrough: Sequence[str]) -> dict[str, Any]:
    """The local engine's file and schema checks, on a Parquet file or directory; returns its columns."""
    if not _is_parquet(path):
        raise DataError(f"{path}: the spark engine reads Parquet (a .parquet file or directory of parts)")
    if not path.exists():
        raise DataError(f"input file {path} does not exist")
    files = _parquet_files(path)
    if not files or all(f.stat().st_size == 0 for f in files):
        raise DataError(f"input file {path} has no rows")
    try:
        metas = [pq.ParquetFile(str(f)) for f in files]
    except Exception as exc:  # pyarrow raises several types for a damaged footer
        raise DataError(f"{path}: not a readable Parquet file: {exc}") from None
    if sum(m.metadata.num_rows for m in metas) == 0:
        raise DataError(f"input file {path} has no rows")
    columns = {f.name: f.type for f in metas[0].schema_arrow}
    check_schema(columns, expected, passthrough)
    return columns


def check_output(input_path: Path, output_path: Path, score_column: str, passthrough: Sequence[str]) -> None:
    if not _is_parquet(output_path):
        raise DataError(f"{output_path}: the spark engine writes Parquet (use a .parquet output path)")
    if not output_path.parent.is_dir():
        raise DataError(f"output directory {output_path.parent} does not exist")
    if output_path.resolve() == input_path.resolve():
        raise DataError(f"refusing to overwrite the input {input_path} with the scores")
    if score_column in passthrough:
        raise DataError(f"score column {score_column!r} clashes with a passthrough column")


def input_digest(path: Path) -> str:
    """sha256 of a file, or of the names and sha256s of a directory's parts (order-independent)."""
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for part in _parquet_files(path):
        digest.update(f"{part.relative_to(path)}\0{sha256_file(part)}\n".encode())
    return digest.hexdigest()


@contextmanager
def session(master: str | None) -> Iterator[Any]:
    """A Spark session on ``master``; an already running one is reused (and left running)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master in (None, active.sparkContext.master):
        yield active
        return
    # Python workers must run this interpreter (its packages, the model's flavor); PySpark reads
    # the variable when the context starts. On a cluster, set PYSPARK_PYTHON to the executors'
    # interpreter, which must have the same pinned packages.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master(master or DEFAULT_MASTER)
        .appName("stillroom score")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        spark.stop()


def _spark_type(spec: ColumnSpec) -> str:
    return {"double": "double", "float": "float", "long": "bigint", "integer": "int", "boolean": "boolean"}.get(
        spec.dtype, "string"
    )


def _reject_missing(frame: Any, expected: list[ColumnSpec], path: Path) -> None:
    """Count missing and non-finite values per model column in one Spark pass; name them all."""
    from pyspark.sql import functions as F

    checks = []
    for spec in expected:
        if not (spec.is_numeric or spec.dtype == "boolean"):
            continue
        column = F.col(spec.name)
        bad = column.isNull()
        if spec.dtype in ("double", "float"):
            bad = bad | F.isnan(column) | (F.abs(column) == F.lit(float("inf")))
        checks.append(F.sum(F.when(bad, 1).otherwise(0)).alias(spec.name))
    if not checks:
        return
    counts = frame.agg(*checks).first().asDict()
    problems = [f"{name!r} has {count:,}" for name, count in counts.items() if count]
    if problems:
        raise DataError(f"{path}: missing or non-finite values (empty/NaN/inf) in model columns: " + ", ".join(problems))


def _model_columns(scored: Any, passthrough: Sequence[str], score_column: str) -> tuple[Any, str, str | None]:
    """The scores as the local engine writes them: a model that returns one value per row under
    ``score_column``; one that returns a frame (a struct here) as its own columns, in its order,
    the first being the score and the first boolean one the validity flag
    (:func:`stillroom.scoring.batch.frame_parts`). Returns (frame, score column, flag)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType, StructType

    kind = scored.schema["__scores__"].dataType
    keep = [F.col(c) for c in passthrough]
    if not isinstance(kind, StructType):
        return scored.select(*keep, F.col("__scores__").alias(score_column)), score_column, None
    names = [f.name for f in kind.fields]
    clash = [n for n in names if n in passthrough]
    if clash:
        raise DataError(f"model output column {clash[0]!r} clashes with a passthrough column")
    flag = next((f.name for f in kind.fields if isinstance(f.dataType, BooleanType)), None)
    columns = [F.col("__scores__").getField(n).alias(n) for n in names]
    return scored.select(*keep, *columns), names[0], flag


def _summary_of(spark: Any, written: Path, score_column: str, flag: str | None = None) -> dict[str, Any]:
    """Row count, mean, range and the fixed-bin histogram of the written scores, by Spark. A row
    the model flagged invalid may have no score (it is counted as unscored); any other row must."""
    from pyspark.sql import functions as F

    frame = spark.read.parquet(str(written))
    flagged = (~F.coalesce(F.col(flag), F.lit(False))) if flag else F.lit(False)
    scores = frame.select(F.col(score_column).alias("s"), flagged.alias("flagged"))
    missing = F.isnan("s") | F.col("s").isNull()
    stats = scores.agg(
        F.count(F.lit(1)).alias("rows"),
        F.avg(F.when(~missing, F.col("s"))).alias("mean"),
        F.min(F.when(~missing, F.col("s"))).alias("low"),
        F.max(F.when(~missing, F.col("s"))).alias("high"),
        F.sum(F.when(missing & ~F.col("flagged"), 1).otherwise(0)).alias("bad"),
        F.sum(F.when(missing & F.col("flagged"), 1).otherwise(0)).alias("unscored"),
    ).first()
    if stats["bad"]:
        raise DataError(f"the model returned {stats['bad']:,} non-finite scores")
    scores = scores.where(~missing)
    n_bins = len(SCORE_BIN_EDGES) - 1
    # same binning as numpy.histogram on clipped scores: right edge of the last bin included
    clipped = F.least(F.greatest(F.col("s"), F.lit(0.0)), F.lit(1.0))
    bucket = F.least(F.floor(clipped * n_bins).cast("int"), F.lit(n_bins - 1))
    counts = np.zeros(n_bins, dtype=np.int64)
    for row in scores.groupBy(bucket.alias("b")).count().collect():
        counts[int(row["b"])] = int(row["count"])
    return {
        "rows": int(stats["rows"]),
        "unscored": int(stats["unscored"] or 0),
        "mean": float(stats["mean"]) if stats["mean"] is not None else float("nan"),
        "low": float(stats["low"]) if stats["low"] is not None else float("nan"),
        "high": float(stats["high"]) if stats["high"] is not None else float("nan"),
        "counts": counts,
    }


def score_parquet(
    udf_factory: UdfFactory,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    expected: list[ColumnSpec],
    *,
    passthrough: Sequence[str] = (),
    score_column: str = "score",
    master: str | None = None,
    slot: OutputSlot | None = None,
    overwrite: bool = False,
) -> ScoringSummary:
    """Score a Parquet input into a Parquet output through Spark, atomically.

    The output holds the passthrough columns (input order) and the model's columns (the score
    column, or every column of a model that returns a frame), like the local engine's. On any
    failure the output path is left as it was. With a claimed ``slot`` the caller publishes (see
    :func:`stillroom.scoring.batch.score_file`).
    """
    source, target = Path(input_path), Path(output_path)
    check_output(source, target, score_column, passthrough)
    columns = check_input(source, expected, passthrough)
    try:
        import pyspark  # noqa: F401
    except ModuleNotFoundError as exc:
        raise missing_dependency(exc, "the spark engine") from None
    passthrough = [name for name in columns if name in set(passthrough)]  # input order
    started = time.perf_counter()
    with claim(target, slot, overwrite) as (claimed, publish):
        temp = claimed.partial
        with session(master) as spark:
            from pyspark.sql import functions as F

            spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_BATCH_ROWS))
            frame = spark.read.parquet(str(source))
            frame = frame.select(
                *[F.col(c) for c in passthrough if c not in {s.name for s in expected}],
                *[F.col(s.name).cast(_spark_type(s)).alias(s.name) for s in expected],
            )
            _reject_missing(frame, expected, source)
            udf = udf_factory(spark)
            scored = frame.select(*[F.col(c) for c in passthrough], udf(*[F.col(s.name) for s in expected]).alias("__scores__"))
            scored, written_score, flag = _model_columns(scored, passthrough, score_column)
            scored.write.mode("error").parquet(str(temp))
            stats = _summary_of(spark, temp, written_score, flag)
        output_digest = input_digest(temp)
        if publish:
            claimed.publish()
    seconds = time.perf_counter() - started
    return ScoringSummary(
        rows=stats["rows"],
        seconds=seconds,
        rows_per_second=stats["rows"] / max(seconds, 1e-9),
        input_digest=input_digest(source),
        output_path=str(target),
        score_counts=stats["counts"].tolist(),
        score_mean=stats["mean"],
        unscored_rows=stats["unscored"],
        score_min=stats["low"],
        score_max=stats["high"],
        output_digest=output_digest,
    )


def label_rows(udf_factory: UdfFactory, frame: Any, master: str | None, workdir: Path) -> np.ndarray:
    """Score an in-memory frame through Spark and return the scores in the frame's row order.

    The frame goes to Parquet in ``workdir`` (Spark reads files, and executors on a cluster
    need a path they can reach), is scored by the UDF, and comes back joined on a row number,
    so Spark's partitioning cannot reorder the labels.
    """
    import pandas as pd

    workdir.mkdir(parents=True, exist_ok=True)
    source, target = workdir / "teacher_rows.parquet", workdir / "teacher_scores.parquet"
    frame.reset_index(drop=True).assign(__row__=np.arange(len(frame), dtype=np.int64)).to_parquet(source, index=False)
    features = [str(c) for c in frame.columns]
    with session(master) as spark:
        from pyspark.sql import functions as F

        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_BATCH_ROWS))
        rows = spark.read.parquet(str(source))
        udf = udf_factory(spark)
        rows.select("__row__", udf(*[F.col(c) for c in features]).alias("score")).write.mode("overwrite").parquet(str(target))
    scores = pd.read_parquet(target).sort_values("__row__")
    if len(scores) != len(frame) or not (scores["__row__"].to_numpy() == np.arange(len(frame))).all():
        raise RuntimeError(f"Spark returned {len(scores)} teacher scores for {len(frame)} rows")
    return scores["score"].to_numpy(dtype=float)
