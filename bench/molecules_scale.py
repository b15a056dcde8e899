"""Molecules: the default pipeline's wall time, CPU time per step and peak memory, at scale.

Issue 24 asks the default pipeline (load, standardise, split, featurise, teacher, transfer
labelling, student, baseline, evaluation) to run a 41k-molecule single-task set and an
8k-molecule 12-task set in under 15 minutes each on 2 cores with peak memory under 4 GB.

``build`` makes the two sets from molecules the project may use, labelled by ADMET-AI
(:mod:`scale_sets`); ``run`` is one ``stillroom.distill("molecules", ...)`` on a file in a fresh
process, with the default configuration plus the ``--set`` overrides given and a fresh teacher
cache (a cached teacher would not be measured). The table gets per step the core's wall seconds
and the CPU seconds of the run's process and its workers (:mod:`run_monitor`), the total CPU
seconds (``RUSAGE_CHILDREN`` of this process around the run: the run and every worker it reaped),
peak memory two ways (``ru_maxrss`` of the run's process and of its largest child; psutil
sampling of the whole process tree, summed), and the load average. On a shared machine the wall
time measures the neighbours too: a row is a measurement of the target only when its load average
says the machine was otherwise idle; the idle estimate (from CPU seconds) is for the other rows.

    python bench/molecules_scale.py build /tmp/scale-sets
    python bench/molecules_scale.py run scale-8k-panel12 /tmp/scale-sets/scale-8k-panel12.csv AMES,NR-AR-LBD,... \
        --set "molecules.endpoint=Tox21 calls (ADMET-AI)" --set molecules.units=yes/no
    python bench/molecules_scale.py render            # rebuild the report from the JSON
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
JSON = RESULTS / "molecules-scale.json"
REPORT = RESULTS / "molecules-scale.md"
NOTES = RESULTS / "molecules-scale.notes.md"
SETS = RESULTS / "molecules-scale-sets.json"
TARGET_SECONDS, TARGET_MB = 15 * 60, 4096
PARALLEL_STEPS = ("data",)  # steps whose RDKit work runs in worker processes (one per usable core)


def worker(name: str, path: str, targets: list[str], overrides: list[str], log: str) -> dict[str, Any]:
    """One distillation in this process (run by :func:`run` in a fresh one)."""
    import logging

    from run_monitor import StepCPU

    import stillroom
    from stillroom.contract import usable_cores
    from stillroom.testing import temporary_store

    logger = logging.getLogger("stillroom")
    stream = open(log, "a", buffering=1)  # noqa: SIM115 - open for the run's life
    steps = StepCPU(echo=stream)
    shown = logging.StreamHandler(stream)
    shown.setLevel(logging.INFO)
    shown.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger.addHandler(steps)
    logger.addHandler(shown)
    logger.setLevel(logging.DEBUG)  # step starts are announced at debug level
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="stillroom-scale-") as tmp, temporary_store(Path(tmp)):
        os.environ["STILLROOM_CACHE_DIR"] = str(Path(tmp) / "cache")  # a fresh cache: the teacher is trained, not read
        result = stillroom.distill(
            "molecules",
            overrides=["data.dataset=molecules.file", f"data.path={path}", f"data.targets=[{', '.join(targets)}]", *overrides],
        )
    wall = time.perf_counter() - started
    lineage = result.lineage
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "name": name,
        "file": Path(path).name,
        "md5": hashlib.md5(Path(path).read_bytes()).hexdigest(),
        "targets": len(targets),
        "overrides": overrides,
        "molecules": lineage.get("invalid_smiles", {}).get("train_file", {}).get("valid"),
        "rows": {k: v["rows"] for k, v in lineage.get("splits", {}).items()},
        "teacher": next((o.split("=", 1)[1] for o in overrides if o.startswith("teacher.name=")), "default"),
        "gate": result.gate,
        "gate_reasons": result.gate_reasons,
        "usable_cores": usable_cores(),
        "wall_seconds": round(wall, 1),
        "steps": {k: round(v, 1) for k, v in result.timings.items()},
        "steps_cpu": {k: round(v, 1) for k, v in steps.cpu.items()},
        "step_titles": steps.steps,
        "peak_rss_mb": round(own.ru_maxrss / 1024),
        "peak_rss_workers_mb": round(kids.ru_maxrss / 1024),
        "metrics": {
            k: v for k, v in result.metrics.items() if k.split(".")[0] in ("teacher", "student", "baseline", "gain", "fidelity")
        },
    }


def run(name: str, path: str, targets: list[str], overrides: list[str]) -> dict[str, Any]:
    """The worker in a fresh process, its tree sampled; the row appended to the JSON."""
    from run_monitor import TreeSampler

    log = Path(tempfile.gettempdir()) / f"stillroom-scale-{name}.log"
    code = (
        f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import molecules_scale as b; "
        f"print('RESULT ' + json.dumps(b.worker({name!r}, {path!r}, {targets!r}, {overrides!r}, {str(log)!r})))"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_start, started = os.getloadavg()[0], time.time()
    print(f"{name}: running; progress in {log}", file=sys.stderr)
    log.write_text("")
    with open(log, "a") as err:  # appending, like the run's own log handler: neither overwrites the other
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=err, text=True)
        with TreeSampler(proc.pid) as sampler:
            stdout, _ = proc.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        tail = log.read_text().strip().splitlines()[-1:] or [str(proc.returncode)]
        sys.exit(f"the run failed: {tail[0]} (log: {log})")
    row = json.loads(next(x for x in stdout.splitlines() if x.startswith("RESULT ")).removeprefix("RESULT "))
    row |= {
        "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime),
        "load_average": [round(load_start, 1), round(os.getloadavg()[0], 1)],
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "machine": machine(),
        **sampler.facts(),
    }
    row["idle_estimate_seconds"] = idle_estimate(row)
    rows = json.loads(JSON.read_text()) if JSON.is_file() else []
    rows.append(row)
    JSON.write_text(json.dumps(rows, indent=1))
    render()
    return row


def machine() -> dict[str, Any]:
    import platform

    return {"cpus": os.cpu_count(), "usable": len(os.sched_getaffinity(0)), "python": platform.python_version()}


def idle_estimate(row: dict[str, Any]) -> dict[str, float]:
    """An **estimate** of the wall time on an idle machine with the same settings: each step's CPU
    seconds over the cores it can use (the data steps' worker processes: the usable cores; every
    other step runs one thread with ``teacher.params.threads=1``, LightGBM's and the MLP's default
    one thread), plus the wall time of what ran outside any step. ``low`` assumes every step could
    use every core. On a loaded machine CPU seconds themselves run high (caches shared, spin-waits),
    so both are estimates, not measurements."""
    cores = max(1, int(row.get("usable_cores") or 1))
    cpu = row["steps_cpu"]
    serial = sum(v / (cores if k in PARALLEL_STEPS else 1) for k, v in cpu.items())
    outside = max(0.0, row["cpu_seconds"] - sum(cpu.values()))  # imports, config, store: one thread
    return {"estimate": round(serial + outside), "low": round(row["cpu_seconds"] / cores)}


def render() -> None:
    rows = [r for r in (json.loads(JSON.read_text()) if JSON.is_file() else []) if "steps_cpu" in r]
    earlier = [r for r in (json.loads(JSON.read_text()) if JSON.is_file() else []) if "steps_cpu" not in r]
    steps = [s for s in ("data", "teacher", "transfer_set", "student", "baseline", "evaluation", "efficiency", "mlflow")]
    steps += sorted({s for r in rows for s in r["steps"]} - set(steps))
    head = ["run", "molecules", "tasks", *steps, "wall s", "CPU s", "idle estimate s", "peak MB", "load avg"]
    lines = [
        "# Molecules: the default pipeline at scale",
        "",
        "Generated by `bench/molecules_scale.py` (sets: `bench/scale_sets.py`, facts in "
        '[molecules-scale-sets.json](molecules-scale-sets.json)). Each row is one `stillroom.distill("molecules")` in a '
        "fresh process with a fresh teacher cache, the default configuration plus the overrides listed under the table, "
        "on a 2-core VM, at times **shared with other benchmarks**: the load average says how shared (the rows of "
        "2026-12-07 ran on an otherwise idle machine: their load of 1-2 is the run's own threads, and their wall time "
        "is the measurement of the target). Each step cell is "
        "`wall s / CPU s` (wall: the core's step timings; CPU: the run's process and its reaped workers between the "
        "step's start and end). *CPU s* is the whole run's (every process). *idle estimate* is an **estimate**, not a "
        "measurement: each step's CPU seconds over the cores it can use (`run_monitor`/`idle_estimate`). *peak MB* is "
        "`sampled tree / ru_maxrss run / ru_maxrss largest child`: the first is psutil's sum of resident sets over the "
        "whole process tree every 0.5 s, the others the kernel's exact per-process peaks. Load: 1-minute load average "
        f"at start / mean over the run / end. Targets: under {TARGET_SECONDS // 60} minutes, under {TARGET_MB:,} MB.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        cells = [r["name"], f"{r['molecules'] or '?':,}", str(r["targets"])]
        cells += [f"{r['steps'].get(s, 0):.0f} / {r['steps_cpu'].get(s, 0):.0f}" for s in steps]
        idle = r["idle_estimate_seconds"]
        cells += [
            f"{r['wall_seconds']:,.0f}",
            f"{r['cpu_seconds']:,}",
            "measured idle" if r.get("idle") else f"~{idle['estimate']:,} (>= {idle['low']:,})",
            f"{r['peak_tree_rss_mb']:,} / {r['peak_rss_mb']:,} / {r['peak_rss_workers_mb']:,}",
            f"{r['load_average'][0]} / {r['load_average_mean']} / {r['load_average'][1]}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if not rows:
        lines += ["", "**No whole run has finished yet**: what the runs reached is in the notes below."]
    lines += ["", "Overrides, rows per split, the teacher's steps apart, and headline metrics:", ""]
    for r in rows:
        lines.append(f"- **{r['name']}** ({r['when']}, file md5 `{r['md5']}`): `{' '.join(r['overrides']) or 'defaults'}`")
        if r.get("code"):
            lines.append(f"  - code: {r['code']}")
        lines.append(f"  - rows: {', '.join(f'{k} {v:,}' for k, v in r['rows'].items() if v is not None)}")
        big = [s for s in r["step_titles"] if s["wall"] >= 5 or s["cpu"] >= 5]
        lines.append("  - steps over 5 s: " + "; ".join(f"{s['title']} {s['wall']:.0f} s / {s['cpu']:.0f} CPU-s" for s in big))
        lines.append("  - " + _headline(r["metrics"]) + f"; gate {r.get('gate', '?')}")
    if earlier:
        lines += ["", "Earlier rows (previous session, load average 11-29, no per-step CPU):", ""]
        for r in earlier:
            lines.append(
                f"- {r['name']} ({r['when']}): {r['molecules']} molecules, {r['targets']} tasks, wall {r['wall_seconds']:.0f} s, "
                f"CPU {r['cpu_seconds']} s, peak RSS {r['peak_rss_mb']:,} MB; `{' '.join(r['overrides'])}`; "
                + _headline(r["metrics"])
            )
    if NOTES.is_file():
        lines += ["", NOTES.read_text().strip()]
    REPORT.write_text("\n".join(lines) + "\n")


def _headline(m: dict[str, float]) -> str:
    keys = [
        k
        for k in ("teacher.rmse", "student.rmse", "baseline.rmse", "teacher.roc_auc", "student.roc_auc", "baseline.roc_auc")
        if k in m
    ]
    return ", ".join(f"{k} {m[k]:.3f}" for k in keys) or "no headline metric"


def build(out: str, seed: int, threads: int, small_only: bool) -> None:
    from scale_sets import build as make
    from scale_sets import relabel_small

    facts = relabel_small(Path(out), seed=seed, threads=threads) if small_only else make(Path(out), seed=seed, threads=threads)
    SETS.write_text(json.dumps(facts, indent=1))
    print(json.dumps({k: facts[k] for k in ("large", "small", "seconds")}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("build", help="write the 41k and 8k sets (CSV) and their facts into a work directory")
    make.add_argument("out")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--threads", type=int, default=1, help="torch threads of the ADMET-AI labelling")
    make.add_argument("--small-only", action="store_true", help="only the smaller set again, from the larger file in OUT")
    one = sub.add_parser("run", help="one default run on a file, appended to the table")
    one.add_argument("name")
    one.add_argument("path")
    one.add_argument("targets", help="target columns, comma-separated")
    one.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    sub.add_parser("render", help="rebuild the report from the JSON")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    if args.command == "render":
        render()
    elif args.command == "build":
        build(args.out, args.seed, args.threads, args.small_only)
    else:
        run(args.name, args.path, [t.strip() for t in args.targets.split(",")], args.overrides)


if __name__ == "__main__":
    main()
