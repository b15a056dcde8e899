"""The student step alone at scale: ``molecules.auto``'s candidates on the scale sets, CPU seconds each.

A whole default run on the 41k or 8k x 12 set did not finish on the shared VM in the session's time
(load average 10-14 on 2 cores: a run got about 0.15 of a core), so the step the whole-run table
could not reach is measured here on its own: the default student (``molecules.auto``, default
candidates and ``selection_rows``) fitted on the set's rows, in this process, one thread, with the
CPU seconds of every candidate fit and of the final fit on all rows.

The transfer rows stand in for the run's: the set's first rows as training, the next as validation;
the teacher's outputs for the distilled student are the ADMET-AI labels plus Gaussian noise
(``--teacher-noise``, a teacher that misses the labels by about that RMSE), and ``--pool`` rows carry
the teacher's values only, like the unlabelled pool. The baseline role (``--role baseline``) fits
labels alone on the labelled rows, as the run's baseline does. What this does not measure: the
run's own teacher outputs (the cost of a fit depends on them a little: early stopping).

    python bench/molecules_selection_scale.py /tmp/scale-sets/scale-41k-lipophilicity.csv Lipophilicity_AstraZeneca \
        --train 32800 --pool 3000 --valid 4100 --role student
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
JSON = HERE / "results" / "molecules-selection-scale.json"


def measure(path: str, targets: list[str], train: int, pool: int, valid: int, role: str, noise: float, params: dict) -> dict:
    from stillroom.tasks.targets import labels_only, make_targets
    from stillroom_molecules.selection import SelectedStudent

    frame = pd.read_csv(path)
    n_fit = train + (pool if role == "student" else 0)
    fit, held = frame.iloc[:n_fit], frame.iloc[train + pool : train + pool + valid]
    y, y_valid = fit[targets].to_numpy(dtype=float), held[targets].to_numpy(dtype=float)
    task = "regression" if len(targets) == 1 and not set(np.unique(y)) <= {0.0, 1.0} else "multilabel"
    task = "binary" if task == "multilabel" and len(targets) == 1 else task
    fits: list[dict[str, Any]] = []
    student = SelectedStudent(params, seed=0)
    original = student._trained

    def timed(name: str, settings: dict, F: Any, *rest: Any) -> Any:
        cpu, wall = time.process_time(), time.perf_counter()
        out = original(name, settings, F, *rest)
        fits.append(
            {
                "name": name,
                "params": settings,
                "rows": F.shape[0],
                "cpu": round(time.process_time() - cpu, 1),
                "wall": round(time.perf_counter() - wall, 1),
                **out.training,
            }
        )
        print(json.dumps(fits[-1]), flush=True)
        return out

    student._trained = timed  # type: ignore[method-assign]
    if role == "student":
        rng = np.random.default_rng(0)
        teacher = _teacher(y, task, noise, rng)
        hard = y.copy()
        hard[train:] = np.nan  # the pool: the teacher's outputs only
        targets_fit = make_targets(task, hard, teacher, 1.0, 0.5)
        targets_valid = make_targets(task, y_valid, _teacher(y_valid, task, noise, rng), 1.0, 0.5)
    else:
        targets_fit, targets_valid = labels_only(task, y), labels_only(task, y_valid)
    load, cpu, wall = os.getloadavg()[0], time.process_time(), time.perf_counter()
    student.fit(fit[["smiles"]], targets_fit, held[["smiles"]], targets_valid)
    return {
        "file": Path(path).name,
        "role": role,
        "task": task,
        "outputs": len(targets),
        "fit_rows": n_fit,
        "valid_rows": valid,
        "teacher_noise": noise if role == "student" else None,
        "params": params,
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "load_average": [round(load, 1), round(os.getloadavg()[0], 1)],
        "fits": fits,
        "chosen": student.training.get("chosen"),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _teacher(y: np.ndarray, task: str, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Stand-in teacher outputs: the labels plus noise (values), or noisy probabilities (yes/no)."""
    if task == "regression":
        return y + rng.normal(0.0, noise, y.shape)
    logits = np.where(y > 0.5, 2.0, -2.0) + rng.normal(0.0, 4 * noise, y.shape)
    return 1.0 / (1.0 + np.exp(-logits))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path")
    parser.add_argument("targets", help="comma-separated")
    parser.add_argument("--train", type=int, required=True)
    parser.add_argument("--pool", type=int, default=0)
    parser.add_argument("--valid", type=int, required=True)
    parser.add_argument("--role", choices=("student", "baseline"), default="student")
    parser.add_argument("--teacher-noise", type=float, default=0.25)
    parser.add_argument("--params", default="{}", help="student.params as JSON, e.g. '{\"selection_rows\": 0}'")
    args = parser.parse_args()
    row = measure(
        args.path,
        args.targets.split(","),
        args.train,
        args.pool,
        args.valid,
        args.role,
        args.teacher_noise,
        json.loads(args.params),
    )
    rows = json.loads(JSON.read_text()) if JSON.is_file() else []
    JSON.write_text(json.dumps([*rows, row], indent=1))
    print(json.dumps({k: v for k, v in row.items() if k != "fits"}))


if __name__ == "__main__":
    main()
