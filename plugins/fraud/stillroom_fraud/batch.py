"""Make a nightly batch of transactions to score: ``python -m stillroom_fraud.batch OUT``.

It simulates a fresh period with another seed, engineers the same features as training, and
writes the id column plus the model inputs, without labels: the file a batch job would hand to
``stillroom score``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import pandas as pd

from .features import FEATURES, WARMUP_DAYS, add_features
from .simulator import simulate_transactions


def make_batch(rows: int, seed: int, n_customers: int = 2000, n_terminals: int = 4000) -> pd.DataFrame:
    """About ``rows`` engineered, unlabelled transactions after the feature warm-up."""
    per_day = n_customers * 2  # the simulator draws 0..4 transactions a day, 2 on average
    days = WARMUP_DAYS + max(1, -(-rows // per_day)) + 1
    tx = add_features(simulate_transactions(n_customers, n_terminals, days, seed=seed))
    tx = tx[tx["TX_TIME_DAYS"] >= WARMUP_DAYS].tail(rows)
    return tx[["TRANSACTION_ID", *FEATURES]].astype({f: "float64" for f in FEATURES}).reset_index(drop=True)


def write_atomic(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".partial")
    os.close(fd)
    try:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path, help=".parquet or .csv")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    frame = make_batch(args.rows, args.seed)
    write_atomic(frame, args.output)
    print(f"wrote {len(frame):,} transactions to {args.output}")


if __name__ == "__main__":
    main()
