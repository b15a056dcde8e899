"""Scoring benchmark: rows/s and peak memory of every way stillroom scores, on one machine and data.

A real ``stillroom distill fraud`` run (default config) provides the registered student and its
teacher; ``python -m stillroom_fraud.batch`` makes 1M- and 10M-row Parquet batches. Each
measurement runs in its own fresh Python process, so its peak memory is its own: the resident
set of that process and all of its children (Spark's JVM and Python workers included),
sampled every 50 ms.

* in memory: the batch is already a float64 array (Spark: a cached DataFrame); only scoring is
  timed. Peak memory includes the loaded batch itself.
* Parquet to Parquet: ``stillroom score`` as a user runs it (schema checks, streaming chunks,
  validation, atomic output); rows/s over the scoring itself, model loading excluded. The Spark
  session is started before the clock (its start-up is reported separately).

The teacher is too slow for 10M rows within a benchmark: it is timed on the first
``--teacher-rows`` rows and its rows/s extrapolated (marked in the table).

    python bench/scoring.py                 # 1M and 10M rows (about 25 minutes on 2 busy cores)
    python bench/scoring.py --quick         # 100k and 200k rows, to a temp folder
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGET_COMPILED_IN_MEMORY = 3_000_000
TARGET_PARQUET = 1_000_000
TARGET_MEMORY_RATIO = 1.5
SEED = 7
SPARK_DRIVER_MEMORY = "6g"


# --------------------------------------------------------------------------- peak memory


def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and every descendant process, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue  # a process that ended while we looked
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


class PeakMemory:
    """Samples this process tree's resident memory in a thread; ``peak`` is the maximum seen."""

    def __init__(self, interval: float = 0.05) -> None:
        self.peak, self._interval, self._stop = 0, interval, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss(os.getpid()))
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _tree_rss(os.getpid()))


# --------------------------------------------------------------------------- measurements (child process)


def _features(path: str, rows: int | None = None) -> tuple[Any, list[str]]:
    import pyarrow.parquet as pq

    from stillroom_fraud.features import FEATURES

    table = pq.read_table(path, columns=FEATURES)
    if rows:
        table = table.slice(0, rows)
    import numpy as np

    return np.column_stack([table.column(c).to_numpy() for c in FEATURES]).astype(np.float64), FEATURES


def _model_dir(uri: str, dst: str) -> Path:
    import mlflow

    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=dst))


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(fn: Any, rows: int) -> dict[str, Any]:
    """Wall-clock rows/s, and rows per CPU-second of this process (all its threads).

    On a shared machine the wall clock depends on the neighbours; CPU time much less so,
    and 2 x rows per CPU-second bounds what 2 idle cores would do.
    """
    cpu, start = _cpu_seconds(), time.perf_counter()
    out = fn()
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    return {"rows": rows, "seconds": seconds, "rows_per_second": rows / seconds, "rows_per_cpu_second": rows / cpu, "_out": out}


def measure_in_memory(spec: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    X, features = _features(spec["data"], spec.get("subsample"))
    extra: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        engine = spec["engine"]
        if engine == "teacher":
            import mlflow

            teacher = mlflow.sklearn.load_model(f"models:/{spec['teacher_model_id']}")
            frame = pd.DataFrame(X, columns=features)
            result = _timed(lambda: teacher.predict_proba(frame)[:, 1], len(X))
        elif engine == "lightgbm":
            import lightgbm as lgb

            booster = lgb.Booster(model_file=str(_model_dir(spec["model"], tmp) / "model.lgb"))
            result = _timed(lambda: booster.predict(X, num_threads=os.cpu_count()), len(X))
        elif engine == "lleaves":
            from stillroom.scoring import compiled

            loaded = compiled.load_compiled(_model_dir(spec["model"], tmp), features)
            assert loaded.model is not None, loaded.note
            result = _timed(lambda: loaded.model.predict_array(X), len(X))
            extra["note"] = loaded.note
            extra["max_abs_diff_vs_lightgbm"] = _gap(result["_out"], X, _model_dir(spec["model"], tmp + "/ref"))
        elif engine == "tl2cgen":
            import tl2cgen
            import treelite

            model_file = _model_dir(spec["model"], tmp) / "model.lgb"
            start = time.perf_counter()
            tl2cgen.export_lib(
                treelite.frontend.load_lightgbm_model(str(model_file)), toolchain="gcc", libpath=f"{tmp}/tl.so", nthread=2
            )
            predictor = tl2cgen.Predictor(f"{tmp}/tl.so", nthread=os.cpu_count())
            extra["compile_seconds"] = time.perf_counter() - start
            result = _timed(lambda: predictor.predict(tl2cgen.DMatrix(X, dtype="float64")).reshape(-1), len(X))
            extra["max_abs_diff_vs_lightgbm"] = _gap(result["_out"], X, model_file.parent)
        elif engine == "spark":
            result, extra = _spark_in_memory(spec)
        else:
            raise ValueError(engine)
    result.pop("_out", None)
    return result | extra


def _gap(scores: Any, X: Any, model_dir: Path) -> float:
    import lightgbm as lgb
    import numpy as np

    return float(np.max(np.abs(scores - lgb.Booster(model_file=str(model_dir / "model.lgb")).predict(X))))


def _spark_in_memory(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    from pyspark.sql import functions as F

    from stillroom import tracking
    from stillroom.scoring import spark as spark_engine
    from stillroom_fraud.features import FEATURES

    start = time.perf_counter()
    with spark_engine.session(None) as spark:
        startup = time.perf_counter() - start
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(spark_engine.ARROW_BATCH_ROWS))
        frame = spark.read.parquet(spec["data"]).select(*FEATURES).cache()
        rows = frame.count()
        udf = tracking.spark_udf_factory(spec["model"])(spark)
        job = frame.select(udf(*[F.col(c) for c in FEATURES])).write.format("noop").mode("overwrite")
        result = _timed(job.save, rows)  # includes starting the Python workers and loading the model in each
    result.pop("rows_per_cpu_second")  # the work happens in the JVM and its workers, not in this process
    return result, {"spark_startup_seconds": startup}


def measure_parquet(spec: dict[str, Any]) -> dict[str, Any]:
    from stillroom import api, tracking
    from stillroom.scoring import batch, formats

    out = Path(spec["out"])
    engine = spec["engine"]
    if engine == "teacher":
        import mlflow

        teacher = mlflow.sklearn.load_model(f"models:/{spec['teacher_model_id']}")
        expected = [formats.ColumnSpec(name, "double") for name in _teacher_columns()]
        summary = batch.score_file(
            lambda frame: teacher.predict_proba(frame)[:, 1],
            spec["data"],
            out,
            expected,
            passthrough=["TRANSACTION_ID"],
            progress=False,
        )
        return {"rows": summary.rows, "seconds": summary.seconds, "rows_per_second": summary.rows_per_second}
    kwargs: dict[str, Any] = {"passthrough": ("TRANSACTION_ID",), "progress": False, "log_run": False}
    if engine == "spark":
        from stillroom.scoring import spark as spark_engine

        start = time.perf_counter()
        with spark_engine.session(None):
            startup = time.perf_counter() - start
            summary = api.score(spec["model"], Path(spec["data"]), out, engine="spark", **kwargs)
        return _summary(summary) | {"spark_startup_seconds": startup}
    tracking.connect(None)
    cpu = _cpu_seconds()
    summary = api.score(spec["model"], Path(spec["data"]), out, compiled=engine == "lleaves", **kwargs)
    return _summary(summary) | {"rows_per_cpu_second": summary["rows"] / (_cpu_seconds() - cpu)}


def _summary(summary: dict[str, Any]) -> dict[str, Any]:
    out = {k: summary[k] for k in ("rows", "seconds", "rows_per_second", "engine_note")}
    return out | {"engine_used": summary["engine"]}


def _teacher_columns() -> list[str]:
    from stillroom_fraud.features import FEATURES

    return list(FEATURES)


def child(spec: dict[str, Any]) -> None:
    """Run one measurement in this process and print it as JSON on the last line."""
    import resource

    # Spark's default 1 GiB driver cannot cache 10M rows; the same setting for every Spark cell
    os.environ.setdefault("PYSPARK_SUBMIT_ARGS", f"--driver-memory {SPARK_DRIVER_MEMORY} pyspark-shell")

    with PeakMemory() as memory:
        result = measure_in_memory(spec) if spec["mode"] == "in memory" else measure_parquet(spec)
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(result | {"peak_rss_bytes": max(memory.peak, self_peak)}))


# --------------------------------------------------------------------------- orchestration (parent)


def run(cmd: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return done.stdout


def distill(work: Path, env: dict[str, str]) -> dict[str, str]:
    """A real distillation with the default fraud config; returns the student URI and teacher id."""
    os.environ.update(env)
    import mlflow

    client = mlflow.MlflowClient()
    latest = lambda: client.search_model_versions("name = 'fraud-student'", order_by=["version_number DESC"], max_results=1)  # noqa: E731
    if not latest():  # a --work folder of an earlier run keeps its student
        print("distilling the fraud student (default config) ...", flush=True)
        run([str(Path(sys.executable).with_name("stillroom")), "distill", "fraud", "--set", "evaluation.bootstrap=50"], env)
    version = latest()[0]
    run_inputs = client.get_run(version.run_id).inputs
    teacher_id = run_inputs.model_inputs[0].model_id
    trees = _student_trees(f"models:/fraud-student/{version.version}", work)
    return {
        "model": f"models:/fraud-student/{version.version}",
        "teacher_model_id": teacher_id,
        "run_id": version.run_id,
        "trees": trees,
    }


def _student_trees(uri: str, work: Path) -> int:
    local = _model_dir(uri, str(work / "student"))
    return sum(1 for line in (local / "model.lgb").read_text().splitlines() if line.startswith("Tree="))


def make_batches(work: Path, sizes: list[int], env: dict[str, str]) -> dict[int, dict[str, Any]]:
    import pyarrow.parquet as pq

    out = {}
    for size in sizes:
        path = work / f"batch_{size}.parquet"
        if not path.exists():
            print(f"making a {size:,}-row batch ...", flush=True)
            run([sys.executable, "-m", "stillroom_fraud.batch", str(path), "--rows", str(size), "--seed", str(SEED)], env)
        out[size] = {"path": str(path), "rows": pq.ParquetFile(str(path)).metadata.num_rows, "bytes": path.stat().st_size}
    return out


def teacher_slice(work: Path, source: str, rows: int) -> str:
    import pyarrow.parquet as pq

    path = work / f"teacher_{rows}.parquet"
    if not path.exists():
        pq.write_table(pq.read_table(source).slice(0, rows), str(path))
    return str(path)


def measure(spec: dict[str, Any], env: dict[str, str], done: Path, saved_only: bool = False) -> dict[str, Any]:
    """One cell, in a fresh process; kept in ``done`` (JSON lines) so a rerun resumes, and a
    failure is recorded in the table rather than losing the cells measured before it."""
    key = json.dumps(spec, sort_keys=True)
    for line in done.read_text().splitlines() if done.exists() else []:
        saved = json.loads(line)
        if saved["key"] == key:
            return saved["result"]
    if saved_only:
        return spec | {"error": "not measured in this run", "rows_per_second": 0.0, "peak_rss_bytes": 0}
    print(f"  {spec['mode']:>18} | {spec['engine']:<9} | {spec['label']} ...", flush=True)
    proc = subprocess.run([sys.executable, __file__, "--child", key], env=env, capture_output=True, text=True)
    if proc.returncode:
        reason = next((ln.strip() for ln in reversed(proc.stderr.splitlines()) if "Error" in ln or "Exception" in ln), "")
        result = spec | {"error": reason[:200] or f"exit code {proc.returncode}", "rows_per_second": 0.0, "peak_rss_bytes": 0}
    else:
        result = spec | json.loads(proc.stdout.strip().splitlines()[-1])
    with done.open("a") as handle:
        handle.write(json.dumps({"key": key, "result": result}) + "\n")
    return result


def plan(batches: dict[int, dict[str, Any]], model: dict[str, str], work: Path, teacher_rows: int) -> list[dict[str, Any]]:
    specs = []
    for size, info in batches.items():
        common = {
            "size": size,
            "label": f"{info['rows']:,} rows",
            "model": model["model"],
            "teacher_model_id": model["teacher_model_id"],
        }
        sub = min(teacher_rows, info["rows"])
        teacher_file = teacher_slice(work, info["path"], sub)
        specs.append(
            common
            | {
                "mode": "in memory",
                "engine": "teacher",
                "data": info["path"],
                "subsample": sub,
                "extrapolated": sub < info["rows"],
            }
        )
        for engine in ("lightgbm", "lleaves", "tl2cgen", "spark"):
            specs.append(common | {"mode": "in memory", "engine": engine, "data": info["path"]})
        specs.append(
            common
            | {
                "mode": "Parquet to Parquet",
                "engine": "teacher",
                "data": teacher_file,
                "out": str(work / "out_teacher.parquet"),
                "extrapolated": sub < info["rows"],
            }
        )
        for engine in ("lightgbm", "lleaves", "spark"):
            specs.append(
                common
                | {
                    "mode": "Parquet to Parquet",
                    "engine": engine,
                    "data": info["path"],
                    "out": str(work / f"out_{engine}.parquet"),
                }
            )
    return specs


# --------------------------------------------------------------------------- report


NAMES = {
    "teacher": "teacher (fraud ensemble, scikit-learn)",
    "lightgbm": "student, LightGBM",
    "lleaves": "student, compiled (lleaves)",
    "tl2cgen": "student, compiled (treelite + tl2cgen)",
    "spark": "student, Spark local engine (spark_udf)",
}


def _mib(value: float) -> str:
    return f"{value / 2**20:,.0f}"


def _find(results: list[dict[str, Any]], mode: str, engine: str, size: int, ok: bool = False) -> dict[str, Any] | None:
    """The cell of one engine, mode and size (``ok``: only if it did not fail)."""
    found = next((r for r in results if r["mode"] == mode and r["engine"] == engine and r["size"] == size), None)
    return None if ok and found and found.get("error") else found


def table(results: list[dict[str, Any]], sizes: list[int]) -> list[str]:
    head = "| engine | mode | " + " | ".join(f"rows/s @{s / 1e6:g}M | peak RSS MiB @{s / 1e6:g}M" for s in sizes) + " | notes |"
    lines = [head, "|" + "---|" * (3 + 2 * len(sizes))]
    for mode in ("in memory", "Parquet to Parquet"):
        for engine in NAMES:
            cells, notes = [], []
            for size in sizes:
                r = _find(results, mode, engine, size)
                if r is None:
                    cells += ["", ""]
                    continue
                if r.get("error"):
                    cells += ["failed", ""]
                    notes.append(f"@{size / 1e6:g}M: failed: {r['error']}")
                    continue
                star = " *" if r.get("extrapolated") else ""
                cells += [f"{r['rows_per_second']:,.0f}{star}", _mib(r["peak_rss_bytes"])]
                if r.get("extrapolated") and not any("timed on" in n for n in notes):
                    notes.append(f"* timed on the first {r.get('subsample') or _rows_of(r):,} rows, rows/s extrapolated")
                if "max_abs_diff_vs_lightgbm" in r and size == sizes[0]:
                    notes.append(f"max abs diff vs LightGBM {r['max_abs_diff_vs_lightgbm']:.2g}")
                if "compile_seconds" in r and size == sizes[0]:
                    notes.append(f"compile {r['compile_seconds']:.1f} s (gcc)")
                if "spark_startup_seconds" in r and size == sizes[0]:
                    notes.append(f"session start-up {r['spark_startup_seconds']:.0f} s, not in rows/s")
                if "rows_per_cpu_second" in r:
                    notes.append(f"@{size / 1e6:g}M: {r['rows_per_cpu_second']:,.0f} rows per CPU-second")
            if any(cells):
                lines.append(f"| {NAMES[engine]} | {mode} | " + " | ".join(cells) + f" | {'; '.join(notes)} |")
    return lines


def _rows_of(r: dict[str, Any]) -> int:
    return int(r["rows"])


def _target_row(what: str, measured: str, ok: bool) -> str:
    return f"| {what} | {measured} | {'yes' if ok else 'NO'} |"


def targets(results: list[dict[str, Any]], sizes: list[int]) -> list[str]:
    lines = ["| target | measured | met |", "|---|---|---|"]
    throughput = (
        ("in memory", "compiled student in memory >= 3M rows/s", TARGET_COMPILED_IN_MEMORY),
        ("Parquet to Parquet", "Parquet to Parquet >= 1M rows/s, local engine, compiled", TARGET_PARQUET),
    )
    for mode, target, minimum in throughput:
        for size in sizes:
            r = _find(results, mode, "lleaves", size, ok=True)
            if r:
                rate = r["rows_per_second"]
                lines.append(_target_row(f"{target} ({size / 1e6:g}M rows)", f"{rate:,.0f}", rate >= minimum))
    if len(sizes) > 1:
        for engine in ("lleaves", "lightgbm", "spark"):
            small, large = (_find(results, "Parquet to Parquet", engine, s, ok=True) for s in (sizes[0], sizes[-1]))
            if small and large:
                ratio = large["peak_rss_bytes"] / small["peak_rss_bytes"]
                what = f"peak memory @{sizes[-1] / 1e6:g}M <= 1.5x @{sizes[0] / 1e6:g}M, Parquet to Parquet, {NAMES[engine]}"
                measured = f"{_mib(large['peak_rss_bytes'])} / {_mib(small['peak_rss_bytes'])} MiB = {ratio:.2f}x"
                lines.append(_target_row(what, measured, ratio <= TARGET_MEMORY_RATIO))
    return lines


def report(payload: dict[str, Any]) -> str:
    results, sizes = payload["results"], payload["sizes"]
    batches = payload["batches"]
    lines = [
        "# Scoring benchmark: teacher, student, compiled student, Spark",
        "",
        f"Date {payload['date']}; command `{payload['command']}`; data seed {SEED}.",
        f"Machine: {payload['machine']}. Load average when the run ended: {payload['load']} (see the notes for how "
        "busy the machine was while each cell ran); wall-clock rates drop on a busy machine, ratios on the same data hold.",
        "",
        f"Model: the student of a real `stillroom distill fraud` run (default config, run `{payload['model']['run_id']}`), "
        f"{payload['model']['trees']} trees of at most 15 leaves, 18 features; teacher: that run's ensemble. "
        "Data: `python -m stillroom_fraud.batch` (engineered, unlabelled transactions), "
        + ", ".join(f"{b['rows']:,} rows ({b['bytes'] / 2**20:,.0f} MiB Parquet)" for b in batches.values())
        + ".",
        "",
        "Each cell is one fresh process; peak RSS is that process and its children (Spark's JVM and Python workers). "
        "In memory: the batch is already loaded (its float64 array counts in the peak) and only scoring is timed. "
        "Parquet to Parquet: `stillroom score` end to end (schema checks, 100k-row chunks, validation, atomic output), "
        "model loading excluded.",
        "",
        *table(results, sizes),
        "",
        "## Targets",
        "",
        *targets(results, sizes),
        "",
        "## Compiler choice",
        "",
        "lleaves and treelite + tl2cgen compiled the same student; the scoring engine uses the faster one whose "
        "scores equal LightGBM's within 1e-6 (lleaves). In-memory rows/s on the same batch:",
        "",
        "| compiler | " + " | ".join(f"rows/s @{s / 1e6:g}M" for s in sizes) + " | max abs diff vs LightGBM |",
        "|---|" + "---|" * (len(sizes) + 1),
    ]
    for engine in ("lleaves", "tl2cgen", "lightgbm"):
        rows = [_find(results, "in memory", engine, s) for s in sizes]
        gap = next((r.get("max_abs_diff_vs_lightgbm") for r in rows if r and "max_abs_diff_vs_lightgbm" in r), 0.0)
        lines.append(
            f"| {NAMES[engine]} | " + " | ".join(f"{r['rows_per_second']:,.0f}" if r else "" for r in rows) + f" | {gap:.2g} |"
        )
    lines += ["", payload.get("notes", ""), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument("--teacher-rows", type=int, default=200_000)
    p.add_argument("--quick", action="store_true", help="100k and 200k rows, results to a temp folder")
    p.add_argument("--work", type=Path, default=None, help="working folder (store, batches); default a temp folder")
    p.add_argument("--out", type=Path, default=HERE / "results")
    p.add_argument("--render", type=Path, help="re-render the Markdown from a saved scoring.json")
    p.add_argument("--saved-only", action="store_true", help="report the cells already measured in --work, measure nothing")
    args = p.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return
    if args.render:
        payload = json.loads(args.render.read_text())
        (args.render.with_suffix(".md")).write_text(report(payload))
        return
    if args.quick:
        args.sizes, args.teacher_rows, args.out = [100_000, 200_000], 50_000, Path(tempfile.gettempdir()) / "stillroom-bench"
    sys.path.insert(0, str(HERE))
    from fraud import machine
    from machine import version

    work = args.work or Path(tempfile.mkdtemp(prefix="stillroom-scoring-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}", "STILLROOM_CACHE_DIR": str(work / "cache")}
    os.chdir(work)
    model = distill(work, env)
    batches = make_batches(work, args.sizes, env)
    specs = plan(batches, model, work, args.teacher_rows)
    results = [measure(spec, env, work / "measured.jsonl", args.saved_only) for spec in specs]
    payload = {
        "command": " ".join(["python bench/scoring.py", *(argv if argv is not None else sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine()
        + ", "
        + ", ".join(f"{d} {version(d)}" for d in ("lleaves", "llvmlite", "treelite", "tl2cgen", "pyspark")),
        "load": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
        "sizes": args.sizes,
        "batches": {str(k): v for k, v in batches.items()},
        "model": model,
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scoring.json").write_text(json.dumps(payload, indent=2))
    text = report(payload)
    (args.out / "scoring.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
