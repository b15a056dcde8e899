"""Write a screening library to score in the demo: the NCI molecules shipped with RDKit as raw
SMILES (salts, charges and all), plus a few broken entries, as a CSV with ``smiles`` and ``name``.

    python -m stillroom_molecules.library OUT.csv

The broken entries show what a real library brings: ``stillroom score`` gives them an empty
score and ``smiles_valid = false``, and the job goes on.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from .embedded import nci_pool_path

BROKEN = ["C1CC(", "not-a-molecule", "", "c1ccccc1N(=O)=O=O"]


def write_library(path: Path) -> int:
    rows = [line.split(maxsplit=1) for line in nci_pool_path().read_text().splitlines() if line.strip()]
    frame = pd.DataFrame({"smiles": [r[0] for r in rows], "name": [f"NCI-{r[1].strip()}" if len(r) > 1 else "" for r in rows]})
    broken = pd.DataFrame({"smiles": BROKEN, "name": [f"broken-{i}" for i in range(len(BROKEN))]})
    frame = pd.concat([frame, broken], ignore_index=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return len(frame)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m stillroom_molecules.library OUT.csv", file=sys.stderr)
        return 2
    n = write_library(Path(args[0]))
    print(f"wrote {n:,} molecules to {args[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
