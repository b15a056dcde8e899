"""Molecules student training: memory and time against the size of the transfer set.

A drug-discovery group distils on as many teacher-labelled molecules as it can afford to label;
the student's training must not be what stops it. This measures the multi-task MLP student
(Morgan counts on 4,096 positions + the 12 ``fast`` descriptors, two ADMET-AI regression
endpoints as in table 1 of ``molecules.md``) on 1x, 10x, 30x and 100x table 1's transfer set,
each in a fresh process:

* ``current``: this checkout (CSR feature rows; the MLP trains through the set positions);
* ``baseline``: the same student at ``--baseline`` (a git revision, checked out into a
  temporary worktree): dense feature matrices, a dense first layer.

Larger sets repeat table 1's 9,864 training molecules (their teacher labels are cached by
``molecules.py``): memory and time per epoch depend on rows and on the positions a row sets,
not on whether rows repeat. Fidelity is reported at 1x only (the full 80-epoch training);
the larger sets run ``--big-epochs`` epochs, and time is per epoch. A baseline size whose
memory, extrapolated from its smaller sizes, would not fit in 80% of the available RAM is
not run, and the table says so.

    python bench/molecules_training.py                  # about 15 minutes on the 2-core box
    python bench/molecules_training.py --render         # rebuild the report from the JSON
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BASELINE = "6b1e32e"  # main before the MLP trained through sparse rows
STUDENT = {"featurizer": {"descriptors": "fast", "n_bits": 4096}}
NOTES = [
    "Peak memory is how much training raised the process's maximum resident set (ru_maxrss): its peak during "
    "`fit` minus its peak before (molecules, teacher labels, libraries: about 650 MB in both).",
    "Time is the whole `fit`: featurising the unique molecules (about 1 s), input moments, epochs; at 1x with early "
    "stopping on, at the larger sizes per epoch over a fixed number of epochs.",
    "Time per epoch varies from run to run on this VM by up to a third: the run before this one (the same code but "
    "for how the input moments are summed, which gives bitwise the same moments and model) measured 1.21 / 11.75 / "
    "35.41 / 98.60 s per epoch for the current code and 1.71 / 28.90 for the baseline; peak memory 223 / 321 / "
    "785 / 2,312 MB (the moments' copies of the rows, now gone, were the difference).",
    "The current MLP's fidelity differs from the baseline's in the third decimal: the folded first layer sums in "
    "another order and AdamW runs over whole parameter lists (foreach), so training takes a slightly different "
    "path from the same seed (and stops early at another epoch). LightGBM students train from the CSR rows to the "
    "very same model as from dense ones (the model strings are equal).",
]


def worker(repeat: int, epochs: int) -> dict:
    """One training in this process; prints nothing but the JSON line the driver reads."""
    sys.path.insert(0, str(HERE))
    import molecules as bench
    import numpy as np

    from stillroom.contract import make_targets
    from stillroom_molecules.admet import AdmetTeacher
    from stillroom_molecules.metrics import fidelity
    from stillroom_molecules.student import MLPStudent

    frame, test = bench.admet_molecules(False)
    fit_idx, valid_idx = bench.transfer_split(test)
    fit_idx = np.tile(fit_idx, repeat)
    values = bench.teacher_outputs(AdmetTeacher(bench.REGRESSION), frame, "-".join(bench.REGRESSION))
    labels = np.full_like(values, np.nan)
    student = MLPStudent(STUDENT | ({} if repeat == 1 else {"epochs": epochs, "patience": epochs + 1}), 0)
    student.name_outputs(bench.REGRESSION)
    before = _peak_mb()
    started = time.perf_counter()
    student.fit(
        frame.iloc[fit_idx][["smiles"]],
        make_targets("regression", labels[fit_idx], values[fit_idx], 1.0, 1.0),
        frame.iloc[valid_idx][["smiles"]],
        make_targets("regression", labels[valid_idx], values[valid_idx], 1.0, 1.0),
    )
    seconds = time.perf_counter() - started
    out = {"rows": len(fit_idx), "epochs": student.training["epochs_run"], "fit_seconds": seconds}
    out |= {"peak_mb": _peak_mb() - before, "before_mb": before}
    if repeat == 1:
        held_out = frame[test].reset_index(drop=True)
        predicted = np.asarray(student.predict(held_out)).reshape(len(held_out), -1)
        out["r2_to_teacher"] = [
            fidelity("regression", values[test][:, j], predicted[:, j])["r2_to_teacher"] for j in range(len(bench.REGRESSION))
        ]
    return out


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable"):
            return int(line.split()[1]) / 1024
    return float("inf")


def run(code_root: Path | None, repeat: int, epochs: int) -> dict:
    """One worker in a fresh process, on this checkout or on another one (``code_root``), with
    an empty feature cache so both featurise alike."""
    env = dict(os.environ)
    if code_root is not None:  # PYTHONPATH comes before the editable installs of this checkout
        env["PYTHONPATH"] = f"{code_root / 'core'}:{code_root / 'plugins' / 'molecules'}"
    with tempfile.TemporaryDirectory(prefix="stillroom-bench-cache-") as cache:
        env["STILLROOM_CACHE_DIR"] = cache
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(repeat), str(epochs)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def predicted_mb(done: list[dict], rows: int) -> float | None:
    """Peak memory at ``rows`` on the line through the two largest sizes measured (not skipped)."""
    measured = sorted((r for r in done if "peak_mb" in r), key=lambda r: r["rows"])
    if len(measured) < 2:
        return None
    a, b = measured[-2:]
    slope = (b["peak_mb"] - a["peak_mb"]) / (b["rows"] - a["rows"])
    return b["peak_mb"] + slope * (rows - b["rows"])


def measure(repeats: list[int], big_epochs: int, baseline: str, save: Callable[[dict], None]) -> dict:
    """Every size on both checkouts; ``save`` gets the results so far after each run (a long
    benchmark that stops keeps what it measured)."""
    results: dict[str, list[dict]] = {"current": [], "baseline": []}
    out = {"baseline_revision": baseline, "big_epochs": big_epochs, "runs": results}
    with tempfile.TemporaryDirectory(prefix="stillroom-baseline-") as tmp:
        root = Path(tmp) / "code"
        subprocess.run(["git", "-C", str(HERE.parent), "worktree", "add", "--detach", str(root), baseline], check=True)
        try:
            for repeat in repeats:
                epochs = 80 if repeat == 1 else big_epochs
                for code, code_root in (("current", None), ("baseline", root)):
                    rows = 9864 * repeat
                    guess = predicted_mb(results[code], rows)
                    if guess is not None and guess > 0.8 * available_mb():
                        results[code].append({"rows": rows, "skipped_predicted_mb": guess})
                        print(f"{code} x{repeat}: not run, would need about {guess:,.0f} MB", flush=True)
                        continue
                    record = run(code_root, repeat, epochs)
                    results[code].append(record)
                    save(out)
                    print(f"{code} x{repeat}: {json.dumps(record)}", flush=True)
        finally:
            subprocess.run(["git", "-C", str(HERE.parent), "worktree", "remove", "--force", str(root)], check=False)
    return out


def render(result: dict) -> str:
    runs = result["runs"]
    lines = [
        "# Molecules student training: memory and time vs transfer-set size",
        "",
        f"Machine: {result['machine']}. Seed 0. Measured {result['when']}.",
        "",
        "Multi-task MLP student (Morgan counts, 4,096 positions + 12 `fast` descriptors; Lipophilicity and solubility "
        f"from ADMET-AI). `baseline`: main at {result['baseline_revision']} (dense features, dense first layer). "
        "`current`: CSR rows, the first layer read through the set positions.",
        "",
        "| training molecules | peak memory baseline | peak memory current | s/epoch baseline | s/epoch current | "
        "R2 to teacher Lipo / Sol baseline | current |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    by_rows: dict[int, dict[str, dict]] = {}
    for code, records in runs.items():
        for r in records:
            by_rows.setdefault(r["rows"], {})[code] = r
    for rows in sorted(by_rows):
        cell = by_rows[rows]
        lines.append(
            f"| {rows:,} | {_memory(cell.get('baseline'))} | {_memory(cell.get('current'))} | "
            f"{_epoch(cell.get('baseline'))} | {_epoch(cell.get('current'))} | "
            f"{_r2(cell.get('baseline'))} | {_r2(cell.get('current'))} |"
        )
    lines += ["", "Notes:", ""] + [f"- {n}" for n in NOTES] + [""]
    return "\n".join(lines)


def _memory(r: dict | None) -> str:
    if r is None:
        return "-"
    if "skipped_predicted_mb" in r:
        return f"not run (about {r['skipped_predicted_mb'] / 1024:,.1f} GB by the trend)"
    return f"{r['peak_mb']:,.0f} MB"


def _epoch(r: dict | None) -> str:
    if r is None or "fit_seconds" not in r:
        return "-"
    return f"{r['fit_seconds'] / r['epochs']:.2f} ({r['epochs']} epochs)"


def _r2(r: dict | None) -> str:
    if r is None or "r2_to_teacher" not in r:
        return "-"
    return " / ".join(f"{v:.3f}" for v in r["r2_to_teacher"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, nargs="+", default=[1, 10, 30, 100])
    parser.add_argument("--big-epochs", type=int, default=2)
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--out", type=Path, default=RESULTS / "molecules-training")
    parser.add_argument("--render", action="store_true", help="rebuild the report from the saved JSON, run nothing")
    parser.add_argument("--worker", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker)), flush=True)
        return 0
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")
    if args.render:
        result = json.loads(json_path.read_text())
    else:
        sys.path.insert(0, str(HERE))
        from machine import describe

        header = {
            "machine": describe(("stillroom-molecules", "rdkit", "torch", "scipy")) + "; no GPU",
            "when": time.strftime("%Y-%m-%d") + f", load average at start {os.getloadavg()[0]:.1f}",
        }
        json_path.parent.mkdir(parents=True, exist_ok=True)
        result = (
            measure(
                args.repeats,
                args.big_epochs,
                args.baseline,
                lambda partial: json_path.write_text(json.dumps(partial | header, indent=2)),
            )
            | header
        )
    report = render(result)
    md_path.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
