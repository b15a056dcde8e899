"""Bench: the molecules student side of issue 24 on real public sets (Lipophilicity, BBBP).

For each set, split and seed, two real distillations (``stillroom.distill``) that differ only in
the transfer set: the NCI pool alone, and the pool plus generated analogues of the training
molecules (``molecules.analogues``). Both use the default student (``molecules.auto``: the
LightGBM or MLP candidate with the best validation fidelity within budget) with split-conformal
intervals / sets at 90%. Reported per run: teacher, student and baseline on test with CIs,
retention, the paired gain over the baseline with its CI, the chosen student and its
candidates, conformal coverage and width on test (overall, inside and outside the applicability
domain), the analogue composition and the wall time.

    python bench/molecules_student.py                    # reduced: scaffold split, seed 0
    python bench/molecules_student.py --seeds 0 1 2 --splits scaffold random
    python bench/molecules_student.py --render           # rebuild the report from the JSON

The teacher is the descriptor ensemble at reduced size (``--teacher-*``; one booster, a small
forest) so a run fits the machine's shared two cores; it is trained once per set and seed and
cached, so both arms learn from the very same teacher. Measured under load (other jobs on the
machine): the timings are wall time under that load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from gates import fetch_json

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(os.environ.get("STILLROOM_SHARED_DATA", "/work/shared/data"))
SETS = {
    "lipophilicity": {"file": "lipophilicity.csv", "target": "exp", "metric": "rmse", "units": "logD (octanol/water, pH 7.4)"},
    "bbbp": {"file": "bbbp.csv", "target": "p_np", "metric": "roc_auc", "units": "penetrates (1) / not (0)"},
}
ARMS = {"pool": ["molecules.analogues.enabled=false"], "pool+analogues": ["molecules.analogues.enabled=true"]}
TEACHER = [
    "teacher.name=molecules.descriptor_ensemble",
    "teacher.params.boosters=1",
    "teacher.params.n_estimators=300",
    "teacher.params.forest_trees=60",
]


def run_one(name: str, split: str, seed: int, arm: str, cache: Path, extra: list[str]) -> dict[str, Any]:
    """One distillation in a fresh MLflow store; the teacher cache is shared across arms."""
    import stillroom
    from stillroom.testing import temporary_store

    spec = SETS[name]
    overrides = [
        "data.dataset=molecules.file",
        f"data.path={SHARED / spec['file']}",
        f"data.targets=[{spec['target']}]",
        f"data.split={split}",
        "data.pool_max=5000",
        f"run.seed={seed}",
        f"run.cache_dir={cache}",
        "evaluation.bootstrap=200",
        "evaluation.efficiency_rows=500",
        "evaluation.latency_repeats=10",
        f"molecules.endpoint={name}",
        f"molecules.units={spec['units']}",
        *TEACHER,
        *ARMS[arm],
        *extra,
    ]
    with tempfile.TemporaryDirectory(prefix="stillroom-bench-student-") as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            with temporary_store(Path(tmp)):
                started = time.perf_counter()
                result = stillroom.distill("molecules", overrides=overrides, verbose=True)
                seconds = time.perf_counter() - started
                summary = result.to_dict() if hasattr(result, "to_dict") else dict(result)
                selection = _selection(summary)
        finally:
            os.chdir(cwd)
    return {
        "dataset": name,
        "split": split,
        "seed": seed,
        "arm": arm,
        "seconds": seconds,
        "metrics": summary["metrics"],
        "intervals": {k: list(v) for k, v in summary["intervals"].items()},
        "selection": selection,
        "analogues": summary.get("lineage", {}).get("analogues"),
    }


def _selection(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The candidates each role chose among, read back from the run's artifact."""
    try:
        record = fetch_json(summary["run_id"], "molecules/student_selection.json")
    except Exception:
        return []
    return [{"role": role, **c} for role, rows in record.items() for c in rows]


def _fmt(metrics: dict[str, float], intervals: dict[str, list[float]], key: str) -> str:
    if key not in metrics:
        return "-"
    value = metrics[key]
    if key in intervals:
        low, high = intervals[key]
        return f"{value:.3f} [{low:.3f}, {high:.3f}]"
    return f"{value:.3f}"


def _row(*cells: Any) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _key(r: dict[str, Any]) -> tuple[Any, ...]:
    return r["dataset"], r["split"], r["seed"]


def _pair(m: dict[str, float], prefix: str) -> str:
    return f"{m.get(prefix + '.coverage', float('nan')):.3f}, {m.get(prefix + '.width', float('nan')):.3f}"


def render(runs: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Molecules students: analogues, the chosen student, conformal uncertainty",
        "",
        f"`python bench/molecules_student.py` ({meta['date']}, {meta['machine']}; **measured under load**: other jobs "
        "shared the two cores). Reduced run: the descriptor-ensemble teacher at reduced size "
        f"(`{' '.join(TEACHER)}`), {meta['scope']}, extra settings `{meta.get('extra')}`. Default student "
        "`molecules.auto`, conformal level 0.9 calibrated on half the validation molecules (held out from early "
        "stopping and the student choice).",
        "",
        "## Teacher, student, baseline (test, 95% bootstrap CIs; gain = paired, student vs baseline)",
        "",
        _row("set", "split", "seed", "transfer set", "metric", "teacher", "student", "baseline", "retention", "gain [paired CI]")
        + " chosen student (baseline's) |",
        "|---" * 11 + "|",
    ]
    for r in runs:
        metric = SETS[r["dataset"]]["metric"]
        m, ci = r["metrics"], r["intervals"]
        chosen = {c["role"]: f"{c['name'].split('.')[-1]} {c['params']}" for c in r["selection"] if c.get("chosen")}
        scores = [_fmt(m, ci, f"{role}.{metric}") for role in ("teacher", "student", "baseline", "retention", "gain")]
        lines.append(_row(*_key(r), r["arm"], metric, *scores, f"{chosen.get('student', '-')} ({chosen.get('baseline', '-')})"))
    lines += [
        "",
        "## Conformal intervals / sets on test (nominal 0.90)",
        "",
        "Regression: coverage of the interval and its width (2q, in the endpoint's units). Classification: coverage of "
        "the prediction set and the mean set size. Inside / outside: the applicability domain (max Tanimoto to the "
        "training molecules >= 0.4).",
        "",
        _row("set", "split", "seed", "transfer set", "role", "coverage, width", "inside", "outside", "AD coverage"),
        "|---" * 9 + "|",
    ]
    for r in runs:
        m = r["metrics"]
        for role in ("student", "baseline"):
            if f"conformal.{role}.coverage" in m:
                pairs = [_pair(m, f"{region}conformal.{role}") for region in ("", "ad.inside.", "ad.outside.")]
                lines.append(_row(*_key(r), r["arm"], role, *pairs, f"{m.get('ad.coverage', float('nan')):.3f}"))
    lines += ["", "## Student candidates (validation fidelity: R2 to the teacher; the baseline's to the labels)", ""]
    lines += [_row("set", "split", "seed", "transfer set", "role", "candidate", "fidelity", "MB", "us/molecule", "chosen")]
    lines += ["|---" * 10 + "|"]
    for r in runs:
        for c in r["selection"]:
            candidate = f"{c['name'].split('.')[-1]} {c['params']}"
            measured = [
                f"{c['validation_fidelity']:.4f}",
                f"{c['size_bytes'] / 2**20:.2f}",
                f"{c['latency_us_per_molecule']:.1f}",
            ]
            lines.append(_row(*_key(r), r["arm"], c["role"], candidate, *measured, "yes" if c.get("chosen") else ""))
    lines += ["", "## Analogue composition (pool + analogues arm)", ""]
    lines += [_row("set", "split", "seed", "accepted by method", "rejected by reason", "wall time s (pool / +analogues)")]
    lines += ["|---" * 6 + "|"]
    for r in runs:
        if r["arm"] != "pool+analogues":
            continue
        twin = next((t for t in runs if t["arm"] == "pool" and _key(t) == _key(r)), None)
        m = r["metrics"]
        accepted = ", ".join(
            f"{k.rsplit('.', 1)[-1]} {int(v)}" for k, v in m.items() if k.startswith("transfer.analogues.accepted.")
        )
        rejected = ", ".join(
            f"{k.rsplit('.', 1)[-1].replace('_', ' ')} {int(v)}"
            for k, v in m.items()
            if k.startswith("transfer.analogues.rejected.") and v
        )
        seconds = f"{twin['seconds']:.0f} / {r['seconds']:.0f}" if twin else f"- / {r['seconds']:.0f}"
        lines.append(_row(*_key(r), accepted, rejected, seconds))
    if meta.get("notes"):
        lines += ["", "## Reading", "", *[f"- {note}" for note in meta["notes"]]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--splits", nargs="+", default=["scaffold"], choices=["scaffold", "random"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--set", dest="extra", action="append", default=[], help="an extra override for every run")
    parser.add_argument("--out", type=Path, default=RESULTS / "molecules-student")
    parser.add_argument("--cache", type=Path, help="teacher/feature cache kept between invocations (default: a temporary one)")
    parser.add_argument("--render", action="store_true")
    args = parser.parse_args(argv)
    saved = args.out.with_suffix(".json")
    if args.render:
        data = json.loads(saved.read_text())
        args.out.with_suffix(".md").write_text(render(data["runs"], data["meta"]))
        return 0
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}",
        "scope": f"sets {', '.join(args.sets)}, {' and '.join(args.splits)} split(s), seeds {args.seeds}",
        "extra": args.extra,
    }
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="stillroom-bench-cache-") as temporary:
        cache = str(args.cache or temporary)
        for name in args.sets:
            for split in args.splits:
                for seed in args.seeds:
                    for arm in args.arms:
                        print(f"{name}, {split} split, seed {seed}, {arm}", flush=True)
                        runs.append(run_one(name, split, seed, arm, Path(cache), args.extra))
                        saved.parent.mkdir(parents=True, exist_ok=True)
                        saved.write_text(json.dumps({"meta": meta, "runs": runs}, indent=1, default=str))
                        args.out.with_suffix(".md").write_text(render(runs, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
