"""Fair efficiency per core: teacher, student and baseline timed interleaved, as is and loaded.

For each vertical, one distillation with that vertical's default teacher and student
architectures (reduced data and training where it does not change the architecture: speed
depends on the networks and trees, not on how long they trained), then the three models
timed by the same code a run uses (:func:`stillroom.distillation.pipeline.time_models`):
rounds, each timing every model once in rotating order, at batch 1 and at the scoring batch
(``evaluation.efficiency_rows``), in every runtime all three offer (medical: ONNX Runtime and
torch), on one core (``evaluation.efficiency_cores: 1``, the default: the process pinned to the
least busy CPU, every thread pool capped to one thread). The timing is done three times on the
same models, back to back:

* **as is**: the machine with whatever else runs on it (it is shared with other jobs, so this
  is not idle: its load average is recorded beside each figure); the reference;
* **one burner on the other core**: a busy-loop process pinned to one CPU, started before the
  timing (so the timing picks the other CPU) and stopped after it;
* **a burner on every core**: one busy loop pinned to each CPU, so the timing's own core is
  shared with a burner and the absolute times move.

The claim under test: the paired ratio (median teacher time / median student time of the same
rounds) moves by less than 25% from *as is* under either load, while the absolute times move
far more under a burner on every core. ``--repeats K`` cycles the three conditions K times on
the same models, to see how far a ratio moves between two timings of the *same* condition.

    python bench/efficiency.py [--verticals fraud medical molecules] [--rounds 7] [--repeats 1]
    python bench/efficiency.py --render      # rebuild efficiency.md from efficiency.json
    python bench/efficiency.py --verticals fraud --out /tmp/fraud   # one vertical into its own file ...
    python bench/efficiency.py --merge /tmp/fraud.json ...          # ... merged into efficiency.json

Writes bench/results/efficiency.json (every round of every timing) and efficiency.md; the
figures timed on all cores before per-core timing are in efficiency-all-cores.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "efficiency"
SHARED = ROOT.parent.parent / "shared" / "data"
TOLERANCE = 0.25  # the ratio may move by less than this from "as is"
REFERENCE = "as is"

# Reduced runs: each vertical's default teacher and student *architectures* (what speed depends
# on), with less data or fewer epochs so the bench fits beside other jobs.
VERTICALS: dict[str, dict[str, Any]] = {
    "fraud": {
        "what": "simulated transactions (500 customers, 1,000 terminals, 100 days); default ensemble teacher "
        "(200 + 200 trees, 300 boosting iterations, logistic) and LightGBM student (100 trees)",
        "overrides": [
            "data.simulation.n_customers=500",
            "data.simulation.n_terminals=1000",
            "data.simulation.n_days=100",
            "data.simulation.train_days=28",
        ],
    },
    "medical": {
        "what": "PneumoniaMNIST balanced subset (real, 28x28 grey); default ResNet teacher [32, 64, 128] x [1, 1, 1] and "
        "separable student [16, 32, 64] with a stride-2 stem (1 epoch each: speed depends on the architecture, not on training)",
        "overrides": [
            "data.dataset=medical.npz",
            f"data.path={SHARED / 'pneumoniamnist_balanced.npz'}",
            "teacher.params.epochs=1",
            "student.params.epochs=1",
        ],
    },
    "molecules": {
        "what": "embedded solubility set with 300 pool molecules; default teacher (molecules.auto: the Chemprop D-MPNN "
        "ensemble of 3, trained 3 epochs: speed depends on the architecture) and default student (molecules.auto: the "
        "LightGBM or MLP candidate on Morgan counts)",
        "overrides": ["data.pool_max=300", "teacher.params.epochs=3"],
    },
}
CONDITIONS = {
    REFERENCE: "whatever else ran on the shared machine (the reference)",
    "one burner on the other core": "as is + one busy loop pinned to CPU 1, started before the timing chose its CPU",
    "a burner on every core": "as is + one busy loop pinned to each CPU, so the timing's core is shared",
}
LOADED = "a burner on every core"  # the condition in which absolute times must move


def _burned_cpus(condition: str) -> list[int]:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    if condition == REFERENCE:
        return []
    return [cpus[-1]] if condition == "one burner on the other core" else cpus


@contextlib.contextmanager
def burners(cpus: list[int]) -> Iterator[list[int]]:
    """A busy-loop process pinned to each of ``cpus`` for the duration of the block; their pids."""
    code = (
        "import os, sys\n"
        "try:\n    os.sched_setaffinity(0, {int(sys.argv[1])})\nexcept (AttributeError, OSError):\n    pass\n"
        "while True:\n    pass\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(cpu)]) for cpu in cpus]
    time.sleep(1.0 if procs else 0.0)  # let them reach their loops before the timing picks its CPU
    try:
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def run_vertical(name: str, rounds: int, work: Path, repeats: int = 1) -> dict[str, Any]:
    """One reduced distillation of ``name``, then its three models timed on one core under each
    condition, the conditions cycled ``repeats`` times (the first cycle's timings in full, every
    cycle's ratios under ``repeats``: how far the same condition moves from one timing to the next)."""
    from stillroom.api import get_plugin_manager
    from stillroom.cache import use_cache_dir
    from stillroom.distillation.pipeline import distill, efficiency_batch, load_config, time_models
    from stillroom.testing import temporary_store

    spec = VERTICALS[name]
    pm = get_plugin_manager()
    task = pm.task(name)
    overrides = [
        *spec["overrides"],
        f"evaluation.efficiency_rounds={rounds}",
        "evaluation.efficiency_max_seconds=180",
        "gate.rules=[]",
    ]
    cfg = load_config(task, None, overrides)
    root = work / name
    root.mkdir(parents=True)
    with temporary_store(root), use_cache_dir(root / "cache"):
        started = time.perf_counter()
        d = distill(pm, task, cfg, root)
        print(f"{name}: distilled in {time.perf_counter() - started:.0f} s", flush=True)
        teacher = pm.make_teacher(cfg.teacher, task, d.bundle, cfg.run.seed)  # the run's teacher, from the cache
        models = {"teacher": teacher, "student": d.student, "baseline": d.baseline}
        batch = efficiency_batch(d.bundle, cfg.evaluation.efficiency_rows)
        timings: dict[str, Any] = {}
        cycles: dict[str, list[dict[str, float]]] = {condition: [] for condition in CONDITIONS}
        for cycle in range(repeats):
            for condition in CONDITIONS:
                burned = _burned_cpus(condition)
                with burners(burned):
                    timing = time_models(models, batch, cfg).as_dict() | {"burners_on_cpus": burned}
                timings.setdefault(condition, timing)
                cycles[condition].append(_ratios(timing))
                print(f"{name} {condition} (cycle {cycle + 1}): {json.dumps(cycles[condition][-1])}", flush=True)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "what": spec["what"],
        "overrides": overrides,
        "batch_rows": len(batch),
        "models": {role: f"{m.describe().name}: {m.describe().kind}" for role, m in models.items()},
        "parameters": {role: m.describe().n_parameters for role, m in models.items()},
        "timings": timings,
        **({"repeats": cycles} if repeats > 1 else {}),
    }


def _ratios(timing: dict[str, Any]) -> dict[str, float]:
    return {
        f"{rt}/{size}": round(entry["ratios"]["student"][size]["ratio_of_medians"], 2)
        for rt, entry in timing["runtimes"].items()
        for size in ("batch_1", "batch_n")
    }


# --------------------------------------------------------------------------- report


def _fmt_ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:,.3f}" if ms < 1 else f"{ms:,.1f}" if ms < 100 else f"{ms:,.0f}"


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def comparisons(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per loaded condition, runtime and batch size: the student's ratio there and as is, how far
    it moved, and how far the models' absolute times moved."""
    asis = result["timings"][REFERENCE]
    rows = []
    for condition, loaded in result["timings"].items():
        if condition == REFERENCE:
            continue
        for runtime in asis["runtimes"]:
            for size in ("batch_1", "batch_n"):
                r0 = asis["runtimes"][runtime]["ratios"]["student"][size]["ratio_of_medians"]
                r1 = loaded["runtimes"][runtime]["ratios"]["student"][size]["ratio_of_medians"]
                moved = {
                    (role, kind): _median(loaded["runtimes"][runtime][kind][role][size])
                    / _median(asis["runtimes"][runtime][kind][role][size])
                    for role in ("teacher", "student")
                    for kind in ("seconds_per_call", _wall_key(asis))
                }
                rows.append(
                    {
                        "condition": condition,
                        "runtime": runtime,
                        "size": size,
                        "ratio_as_is": r0,
                        "ratio_loaded": r1,
                        "ratio_moved": abs(r1 / r0 - 1),
                        "teacher_time_moved": moved["teacher", "seconds_per_call"] - 1,
                        "student_time_moved": moved["student", "seconds_per_call"] - 1,
                        "teacher_wall_moved": moved["teacher", _wall_key(asis)] - 1,
                        "student_wall_moved": moved["student", _wall_key(asis)] - 1,
                    }
                )
    return rows


def _wall_key(timing: dict[str, Any]) -> str:
    """Where a timing's wall seconds are: beside the measure, or the measure itself (wall)."""
    first = next(iter(timing["runtimes"].values()))
    return "wall_seconds_per_call" if "wall_seconds_per_call" in first else "seconds_per_call"


def _compute_text(timing: dict[str, Any]) -> str:
    """Where a timing ran: its pinned CPU(s) and thread cap, or why it was not pinned."""
    compute = timing.get("compute") or {}
    if not compute:
        return "n/a"
    if not compute.get("pinned"):
        return "not pinned"
    return "CPU " + ", ".join(map(str, compute["cpus"])) + f", {compute['threads']} thread"


def _cpu_share(entry: dict[str, Any], role: str) -> str:
    share = entry.get("cpu_per_wall", {}).get(role)
    return f"{share:.2f}" if share is not None else ""


def render(saved: dict[str, Any]) -> str:
    meta = saved["meta"]
    lines = [
        "# " + saved.get("title", "Fair efficiency per core: teacher, student and baseline timed interleaved on one core"),
        "",
        *([saved["preface"], ""] if saved.get("preface") else []),
        f"Machine: {meta['machine']}. Measured {meta['date']}, {meta['rounds']} rounds per timing (fewer when a round "
        "outlasts the 180 s budget, never fewer than 3).",
        "",
        "Method: `stillroom distill`'s own timing (`time_models`): each round times every model once in rotating "
        "order, at batch 1 (single-row calls on the same random rows for all models; the round's median) and at the "
        "scoring batch (`evaluation.efficiency_rows`); a model's figure is the median over rounds; a ratio is the "
        "median teacher time / the median model time of the same rounds (the ratio of medians), with the min-max of "
        "the per-round ratios as its spread. Every model is timed in every runtime all three offer, **on one core** "
        "(`evaluation.efficiency_cores: 1`, the default): the process is pinned to the least busy CPU it may use and "
        "every thread pool (OpenMP, BLAS, torch, ONNX Runtime, a forest's `n_jobs`) is capped to one thread for the "
        "timing. *ms/call* is a call's time on a core of its own (`measure` in efficiency.json): its wall time minus "
        "the time the timing thread was ready but waited for its CPU (the kernel's runqueue delay); the wall time is "
        "beside it. *CPU/wall* is the process's CPU seconds per wall second at the scoring batch: at most about 1 on "
        "one core, below 1 by the share of the core other jobs took.",
        "",
        "Conditions, on the same models, back to back per vertical: "
        + "; ".join(f"**{k}**: {v}" for k, v in CONDITIONS.items())
        + ". The machine is shared (2 cores, other helpers' benchmarks), so *as is* is not idle; the load average "
        "(1 min) at the start and end of each timing is listed.",
        "",
        "The figures timed on both cores before this change are in [efficiency-all-cores.md](efficiency-all-cores.md).",
        "",
    ]
    verdicts: dict[str, list[bool]] = {c: [] for c in CONDITIONS if c != REFERENCE}
    missed = []
    for name, result in saved["verticals"].items():
        lines += [f"## {name}", "", f"{result['what']}; batch N = {result['batch_rows']:,} rows. Timed {result['date']}.", ""]
        for role, text in result.get("models", {}).items():
            lines.append(f"- {role}: {text}, {result['parameters'][role]:,} parameters")
        lines += [
            "",
            "| condition | load (start / end) | timed on | runtime | batch | teacher ms/call | student ms/call | "
            "baseline ms/call | student speed-up (ratio of medians) | per-round min - max | baseline speed-up | "
            "wall ms/call teacher, student | CPU/wall teacher, student |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for condition, timing in result["timings"].items():
            load = timing["load_average"]
            load_text = f"{load['before'][0]:.1f} / {load['after'][0]:.1f}" if load.get("before") else "n/a"
            for runtime, entry in timing["runtimes"].items():
                for size, label in (("batch_1", "1"), ("batch_n", f"{timing['rows']['batch_n']:,}")):
                    sec = {role: _median(entry["seconds_per_call"][role][size]) for role in ("teacher", "student", "baseline")}
                    st, bl = entry["ratios"]["student"][size], entry["ratios"]["baseline"][size]
                    share = f"{_cpu_share(entry, 'teacher')}, {_cpu_share(entry, 'student')}" if size == "batch_n" else ""
                    wall = {role: _median(entry[_wall_key(timing)][role][size]) for role in ("teacher", "student")}
                    lines.append(
                        f"| {condition} | {load_text} | {_compute_text(timing)} | {runtime} | {label} | "
                        f"{_fmt_ms(sec['teacher'])} | {_fmt_ms(sec['student'])} | {_fmt_ms(sec['baseline'])} | "
                        f"{st['ratio_of_medians']:,.1f}x | {st['min']:,.1f} - {st['max']:,.1f} | "
                        f"{bl['ratio_of_medians']:,.1f}x | {_fmt_ms(wall['teacher'])}, {_fmt_ms(wall['student'])} | {share} |"
                    )
        lines += [
            "",
            "| condition | runtime | batch | speed-up as is | under the condition | ratio moved | teacher wall time "
            "moved | student wall time moved | teacher time moved | student time moved | ratio within 25% |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for c in comparisons(result):
            ok = c["ratio_moved"] < TOLERANCE
            verdicts[c["condition"]].append(ok)
            if not ok:
                missed.append(f"{name}, {c['runtime']}, batch {c['size'].replace('batch_', '')}, {c['condition']}")
            lines.append(
                f"| {c['condition']} | {c['runtime']} | {c['size'].replace('batch_', '')} | {c['ratio_as_is']:,.1f}x | "
                f"{c['ratio_loaded']:,.1f}x | {c['ratio_moved']:.0%} | {c['teacher_wall_moved']:+.0%} | "
                f"{c['student_wall_moved']:+.0%} | {c['teacher_time_moved']:+.0%} | {c['student_time_moved']:+.0%} | "
                f"{'yes' if ok else 'NO'} |"
            )
        lines.append("")
        if "repeats" in result:
            lines += repeatability(result["repeats"])
        if name.startswith("medical") and "onnxruntime" in result["timings"][REFERENCE]["runtimes"]:
            lines += medical_claim(result)
    lines += ["## Verdict", ""]
    for condition, oks in verdicts.items():
        lines.append(f"- {condition}: the paired ratio moved by less than 25% in {sum(oks)} of {len(oks)} comparisons.")
    if missed:
        lines.append(f"- moved by 25% or more: {'; '.join(missed)}.")
    lines += ["", *saved.get("notes", []), ""]
    return "\n".join(lines)


def repeatability(cycles: dict[str, list[dict[str, float]]]) -> list[str]:
    """The student's ratio in each cycle of the conditions, and how far the *as is* timings moved
    among themselves: a ratio that moves as much between two timings of the same condition is
    measuring the machine's noise, not the load a burner adds."""
    keys = list(cycles[REFERENCE][0])
    lines = [
        f"Repeatability: the conditions cycled {len(cycles[REFERENCE])} times in this order; the student's speed-up "
        "(ratio of medians) in each cycle. *as is moved* is the largest / smallest *as is* ratio - 1; *all moved* the "
        "same over every timing.",
        "",
        "| runtime / batch | " + " | ".join(CONDITIONS) + " | as is moved | all moved |",
        "|---|" + "---|" * (len(CONDITIONS) + 2),
    ]
    for key in keys:
        per = {c: [cycle[key] for cycle in cycles[c]] for c in CONDITIONS}
        everything = [r for values in per.values() for r in values]
        cells = [", ".join(f"{r:,.1f}x" for r in per[c]) for c in CONDITIONS]
        lines.append(
            f"| {key.replace('batch_', 'batch ')} | {' | '.join(cells)} | {max(per[REFERENCE]) / min(per[REFERENCE]) - 1:.0%} | "
            f"{max(everything) / min(everything) - 1:.0%} |"
        )
    return [*lines, ""]


def medical_claim(result: dict[str, Any]) -> list[str]:
    """The medical target: the default student >= 10x the default teacher's images/s at the
    scoring batch, both in ONNX Runtime, measured interleaved (on one core)."""
    out = []
    for condition, timing in result["timings"].items():
        entry = timing["runtimes"]["onnxruntime"]
        n = timing["rows"]["batch_n"]
        rate = {role: n / _median(entry["seconds_per_call"][role]["batch_n"]) for role in ("teacher", "student")}
        ratio = entry["ratios"]["student"]["batch_n"]
        out.append(
            f"- {condition}: student {rate['student']:,.0f} images/s, teacher {rate['teacher']:,.0f} images/s in ONNX Runtime "
            f"on one core at batch {n}: **{ratio['ratio_of_medians']:.1f}x** (per round {ratio['min']:.1f}x - "
            f"{ratio['max']:.1f}x): {'meets' if ratio['ratio_of_medians'] >= 10 else 'MISSES'} the 10x target"
        )
    return [
        "Medical target (default student >= 10x the default teacher in images/s, same runtime, interleaved, per core):",
        "",
        *out,
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verticals", nargs="+", default=list(VERTICALS), choices=list(VERTICALS))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=1, help="cycle the conditions this many times (repeatability)")
    parser.add_argument("--render", action="store_true", help="rebuild efficiency.md from efficiency.json and exit")
    parser.add_argument("--out", default=str(OUT), help="results path without suffix (.json and .md are written)")
    parser.add_argument("--merge", nargs="+", help="add the verticals of these saved .json files to efficiency.json")
    args = parser.parse_args()
    out = Path(args.out)
    path = out.with_suffix(".json")
    if args.merge:
        saved = json.loads(path.read_text()) if path.exists() else {"verticals": {}}
        for other in map(json.loads, (Path(p).read_text() for p in args.merge)):
            saved["verticals"].update(other["verticals"])
            saved["meta"] = other["meta"]
        path.write_text(json.dumps(saved, indent=2))
        args.render = True
    if args.render:
        out.with_suffix(".md").write_text(render(json.loads(path.read_text())))
        print(out.with_suffix(".md").read_text())
        return
    from machine import describe

    saved = json.loads(path.read_text()) if path.exists() else {"verticals": {}}
    saved["meta"] = {
        "machine": describe(("torch", "onnxruntime", "scikit-learn", "lightgbm", "rdkit", "chemprop", "threadpoolctl")),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rounds": args.rounds,
    }
    with tempfile.TemporaryDirectory(prefix="stillroom-bench-efficiency-") as tmp:
        for name in args.verticals:
            saved["verticals"][name] = run_vertical(name, args.rounds, Path(tmp), args.repeats)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(saved, indent=2))  # each vertical kept as soon as it is done
            out.with_suffix(".md").write_text(render(saved))
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
