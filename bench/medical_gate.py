"""The default medical recipe under the default gate, on PneumoniaMNIST (issue 21).

``bench/medical.py`` compares distillation families with its own teacher and students and runs
`stillroom distill` with no gate rules. This is what a new user gets instead: the vertical's
default config (teacher, student, recipe and gate of ``stillroom_medical/default.yaml``) on the
real PneumoniaMNIST archive given as a user ``.npz``, one seed after the other, each in its own
temporary MLflow store. Per seed: teacher, student and baseline AUROC, the student's paired gain
over the baseline with its bootstrap interval, retention, fidelity, the interleaved speed-ups,
and the gate's verdict with every failing rule (observed, threshold, reason).

The only settings changed from the default are the data (the archive, its class names) and the
training threads (1 for teacher and student: the machine is shared with other benches).

    python bench/medical_gate.py [--data PATH] [--seeds 0 1 2] [--set key=value ...]

Writes bench/results/medical-gate.md and medical-gate.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gates import fetch_gate, fetch_json, gate_section, load_average
from machine import describe, thread_settings
from medical import DATA
from noninferiority import analyse_run, analysis_section, recording

ROOT = Path(__file__).resolve().parent
HEADLINE = {"roc_auc": "AUROC", "average_precision": "AP"}
THREADS = ["teacher.params.threads=1", "student.params.threads=1"]
SPEEDUPS = {"ONNX Runtime": "efficiency.onnxruntime.speedup_rows_per_second", "torch": "efficiency.torch.speedup_rows_per_second"}


def overrides(data: str, seed: int, extra: list[str]) -> list[str]:
    """The default config on a user archive: only the data, the seed and the threads change."""
    return [
        "data.dataset=medical.npz",
        f"data.path={data}",
        "data.class_names=[normal, pneumonia]",  # the archive has none (MedMNIST: 0 normal, 1 pneumonia)
        f"run.seed={seed}",
        *THREADS,
        *extra,
    ]


def run_seed(data: str, seed: int, extra: list[str]) -> dict[str, Any]:
    """One default `stillroom distill medical` in a throw-away store; its metrics, intervals, gate and load."""
    import stillroom
    from stillroom.testing import temporary_store

    settings = overrides(data, seed, extra)
    with tempfile.TemporaryDirectory(prefix="medical-gate-") as tmp, temporary_store(Path(tmp)), recording() as held:
        load_start, start = load_average(), time.perf_counter()
        summary = stillroom.distill("medical", None, settings)
        wall = time.perf_counter() - start
        gate = fetch_gate(summary["run_id"])
        training = fetch_training(summary["run_id"])
    return {
        "seed": seed,
        "wall_seconds": wall,
        "load": {"start": load_start, "end": load_average()},
        "gate": gate,
        "metrics": summary["metrics"],
        "intervals": summary["intervals"],
        "not_estimable": summary["not_estimable"],
        "training": training,
        "noninferiority": analyse_run("medical", held.last, settings, seed),
    }


def fetch_training(run_id: str) -> dict[str, dict[str, Any]]:
    """How each network's training ended (epochs run, best epoch, the epoch after which the learning
    rate was annealed for lack of improvement), from the run's model card: early stopping that
    fired at the one-cycle peak once kept a never-annealed network, so the bench shows where it fired."""
    details = fetch_json(run_id, "model_card.json")["model_details"]
    return {
        "teacher": details["teacher"]["training"],
        "student": details["student"]["generations"][-1],
    }


def _training(record: dict[str, Any]) -> str:
    if not record:
        return "(not recorded)"
    cooled = record.get("cooldown_from_epoch")
    stop = f"annealed after {cooled}" if cooled else ("budget ran out" if cooled == 0 else "(before the cool-down)")
    return f"{record['epochs_run']} / {record['best_epoch']} / {stop}"


def training_table(runs: list[dict[str, Any]]) -> list[str]:
    """Per seed and network: epochs run / best epoch kept / how training ended."""
    lines = [
        "Training (epochs run / best epoch kept / how it ended):",
        "",
        "| seed | teacher | student |",
        "|---|---|---|",
    ]
    for run in runs:
        if "training" in run:
            lines.append(f"| {run['seed']} | {_training(run['training']['teacher'])} | {_training(run['training']['student'])} |")
    return lines if len(lines) > 4 else []


def _interval(run: dict[str, Any], key: str) -> str:
    low, high = run["intervals"].get(key, (float("nan"), float("nan")))
    return f"{run['metrics'][key]:+.4f} [{low:+.4f}, {high:+.4f}]"


def _speedup(m: dict[str, float], key: str) -> str:
    if key not in m:
        return "(not timed)"
    return f"{m[key]:.1f}x ({m[f'{key}.min']:.1f}-{m[f'{key}.max']:.1f})"


def metrics_table(runs: list[dict[str, Any]]) -> list[str]:
    """Per seed, the figures the gate reads, each headline metric with its paired gain."""
    header = ["seed"]
    for name in HEADLINE.values():
        header += [f"teacher {name}", f"student {name}", f"baseline {name}", f"gain {name} [95% CI]", f"retention {name}"]
    header += ["alert overlap", *(f"speed-up {r} (batch; per-round range)" for r in SPEEDUPS), "size ratio"]
    header += ["wall s", "load (start / end)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        m = run["metrics"]
        cells = [str(run["seed"])]
        for key in HEADLINE:
            cells += [f"{m[f'{role}.{key}']:.4f}" for role in ("teacher", "student", "baseline")]
            cells += [_interval(run, f"gain.{key}"), f"{m[f'retention.{key}']:.4f}"]
        cells += [f"{m['fidelity.alert_overlap']:.3f}", *(_speedup(m, k) for k in SPEEDUPS.values())]
        cells += [f"{m['efficiency.size_ratio']:.4f}", f"{run['wall_seconds']:.0f}"]
        cells.append(f"{run['load']['start']:.1f} / {run['load']['end']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render(meta: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    return "\n".join(
        [
            "# Medical: the default recipe under the default gate, PneumoniaMNIST (balanced subset)",
            "",
            f"Date {meta['date']}; seeds {meta['seeds']}; command `{meta['command']}`.",
            f"Machine: {meta['machine']}. Shared with other benches: load averages per run below"
            + (f"; run with {meta['threads']} in the environment." if meta.get("threads") else "."),
            "",
            f"Data: `{meta['data']}` given as a user `.npz` (`data.dataset=medical.npz`): train {meta['rows']['train']} / "
            f"validation {meta['rows']['validation']} / test {meta['rows']['test']} images, 28x28 grey, classes balanced. "
            "Config: `stillroom_medical/default.yaml` unchanged except the data, the seed and "
            f"{', '.join(f'`{t}`' for t in THREADS)}" + (f", and {meta['extra']}" if meta["extra"] else "") + ". "
            "Each seed in its own temporary MLflow store and cache. Gains are student - baseline on the test split with the "
            "paired bootstrap interval of the run; speed-ups are the run's interleaved ratios (teacher time / student time, "
            "median of the rounds, at the scoring batch) with the range of the per-round ratios.",
            "",
            *metrics_table(runs),
            "",
            *training_table(runs),
            "",
            *gate_section([(r["seed"], r["gate"]) for r in runs]),
            "",
            *analysis_section([(r["seed"], r.get("noninferiority", {})) for r in runs]),
            *meta.get("notes", []),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    import numpy as np

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--set", dest="extra", action="append", default=[], help="extra config override for every seed (recorded)")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "medical-gate")
    p.add_argument("--render", action="store_true", help="rewrite the report from the saved .json")
    args = p.parse_args(argv)
    saved = args.out.with_suffix(".json")
    if args.render:
        payload = json.loads(saved.read_text())
    else:
        with np.load(args.data) as d:
            rows = {"train": len(d["train_labels"]), "validation": len(d["val_labels"]), "test": len(d["test_labels"])}
        meta = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "seeds": args.seeds,
            "command": " ".join(["python bench/medical_gate.py", *sys.argv[1:]]),
            "machine": describe(("stillroom", "stillroom-medical", "torch", "onnxruntime", "mlflow")),
            "data": Path(args.data).name,
            "rows": rows,
            "extra": args.extra,
            "threads": thread_settings(),
            "notes": [],
        }
        runs = []
        for seed in args.seeds:  # each seed is saved as soon as it is done: a stopped bench keeps its finished seeds
            runs.append(run_seed(args.data, seed, args.extra))
            payload = {"meta": meta, "runs": runs}
            saved.write_text(json.dumps(payload, indent=2))
            print(f"[bench] seed {seed}: gate {runs[-1]['gate']['status']}", flush=True)
    text = render(payload["meta"], payload["runs"])
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
