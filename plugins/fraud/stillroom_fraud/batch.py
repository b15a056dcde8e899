"""Make a nightly batch of transactions to score: ``python -m stillroom_fraud.batch OUT``.

It simulates a fresh period with another seed and writes either the model inputs (the id
column plus the features of training, without labels: the file ``stillroom score`` takes as
it is) or, with ``--raw``, the raw transactions a bank's job would start from: the history the
features need (``lookback_days``, labels known up to the label delay) followed by the days to
score, for ``python -m stillroom_fraud.raw``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import pandas as pd

from .simulator import simulate_transactions
from .transactions import RawFormat, TransactionLog

CUSTOMER_DAILY_TRANSACTIONS = 2  # the simulator draws 0..4 transactions a day, 2 on average


def make_batch(rows: int, seed: int, n_customers: int = 2000, n_terminals: int = 4000) -> pd.DataFrame:
    """About ``rows`` engineered, unlabelled transactions after the features' lookback."""
    fmt = RawFormat()
    per_day = n_customers * CUSTOMER_DAILY_TRANSACTIONS
    history = fmt.features.lookback_days
    transactions = simulate_transactions(n_customers, n_terminals, history + -(-rows // per_day) + 1, seed=seed)
    log = TransactionLog.from_frames([("simulator", transactions)], fmt)
    features = log.features()
    scored = log.day_index() >= history
    frame = pd.concat([log.frame[["TRANSACTION_ID"]], features], axis=1)[scored].tail(rows)
    return frame.reset_index(drop=True)


def make_raw_batch(
    days: int, seed: int, n_customers: int = 2000, n_terminals: int = 4000, fmt: RawFormat | None = None
) -> pd.DataFrame:
    """Raw transactions in the handbook's layout: ``lookback_days`` of history, then ``days`` days
    to score. Labels are those a bank would have at the end of the batch: known for transactions
    older than the label delay, empty after; the simulator's fraud scenario is left out."""
    settings = (fmt or RawFormat()).features
    tx = simulate_transactions(n_customers, n_terminals, settings.lookback_days + days, seed=seed)
    unknown = tx["TX_TIME_DAYS"] >= settings.lookback_days + days - settings.delay_days
    labels = tx["TX_FRAUD"].astype("Int64").mask(unknown)
    return tx.drop(columns=["TX_FRAUD_SCENARIO", "TX_TIME_SECONDS", "TX_TIME_DAYS"]).assign(TX_FRAUD=labels)


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
    parser.add_argument("--rows", type=int, default=200_000, help="model inputs: about this many transactions")
    parser.add_argument("--raw", action="store_true", help="raw transactions with their history instead of model inputs")
    parser.add_argument("--days", type=int, default=1, help="--raw: days to score after the history")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    frame = make_raw_batch(args.days, args.seed) if args.raw else make_batch(args.rows, args.seed)
    write_atomic(frame, args.output)
    print(f"wrote {len(frame):,} {'raw ' if args.raw else ''}transactions to {args.output}")


if __name__ == "__main__":
    main()
