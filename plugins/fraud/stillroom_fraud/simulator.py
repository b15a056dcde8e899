"""A seeded, vectorized card-transaction simulator with three injected fraud scenarios.

Real card data cannot leave a bank, and the public ULB set is anonymised (PCA features)
and has no customer or terminal identifiers, so per-customer spending windows, terminal
risk and card-level metrics cannot be shown on it. This simulator reproduces the
*statistical shape* described in Le Borgne et al., "Reproducible Machine Learning for
Credit Card Fraud Detection - Practical Handbook" (own implementation):

- customers and terminals sit uniformly on a 100 x 100 grid; a customer uses the
  terminals within radius 5 (the nearest one when none is that close);
- a customer spends ``normal(mean, mean / 2)`` per transaction with ``mean ~ U(5, 100)``
  (negative draws are redrawn as ``U(0, 2 * mean)``), ``Poisson(lam)`` times a day with
  ``lam ~ U(0, 4)``, around noon (``normal(43200 s, 20000 s)``; draws outside the day
  are dropped, as in the handbook);
- fraud scenario 1: every amount above 220 is fraud;
- fraud scenario 2: each day, 2 random terminals are compromised for 28 days (that day
  included): all their transactions in that window are fraud;
- fraud scenario 3: each day, 3 random customers are compromised for 14 days: a third of
  their transactions in that window have their amount multiplied by 5 and are fraud.

Scenarios are applied in that order; a later scenario overwrites ``TX_FRAUD_SCENARIO``.
Every random stream (population, transactions, scenario 2, scenario 3) is spawned from
the one seed, so changing a scenario's intensity leaves the legitimate transactions
unchanged (which is what lets tests check the x5 amounts exactly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from stillroom.contract import ConfigError

from .features import SECONDS_PER_DAY

GRID_SIZE = 100.0
TERMINAL_RADIUS = 5.0
FRAUD_AMOUNT_THRESHOLD = 220.0
TERMINAL_COMPROMISE_DAYS = 28
CUSTOMER_COMPROMISE_DAYS = 14
CUSTOMER_FRAUD_SHARE = 1 / 3
CUSTOMER_FRAUD_AMOUNT_FACTOR = 5.0

COLUMNS = [
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_TIME_SECONDS",
    "TX_TIME_DAYS",
    "TX_FRAUD",
    "TX_FRAUD_SCENARIO",
]


@dataclass(frozen=True)
class Population:
    """Customer and terminal profiles plus each customer's usable terminals (CSR layout).

    ``terminals_of[offsets[c]:offsets[c + 1]]`` are the terminals customer ``c`` uses; the
    flat layout lets a terminal be drawn for a million transactions with one indexing op.
    """

    customers: pd.DataFrame  # CUSTOMER_ID, X, Y, MEAN_AMOUNT, STD_AMOUNT, MEAN_NB_TX_PER_DAY
    terminals: pd.DataFrame  # TERMINAL_ID, X, Y
    offsets: np.ndarray
    terminals_of: np.ndarray


@dataclass(frozen=True)
class Simulation:
    """The simulated transactions and the ground truth of the compromise schedules."""

    transactions: pd.DataFrame
    population: Population
    compromised_terminals: np.ndarray  # (n_days, per_day): terminals compromised on day d
    compromised_customers: np.ndarray  # (n_days, per_day): customers compromised on day d


def simulate_transactions(
    n_customers: int = 5000,
    n_terminals: int = 10000,
    n_days: int = 183,
    start_date: str = "2026-04-01",
    seed: int = 0,
) -> pd.DataFrame:
    """Simulated transactions, sorted by time (see the module docstring for the model)."""
    return simulate(n_customers, n_terminals, n_days, start_date, seed).transactions


def simulate(
    n_customers: int = 5000,
    n_terminals: int = 10000,
    n_days: int = 183,
    start_date: str = "2026-04-01",
    seed: int = 0,
    compromised_terminals_per_day: int = 2,
    compromised_customers_per_day: int = 3,
) -> Simulation:
    """Full simulation, compromise schedules included (tests and reports need the truth)."""
    _check_sizes(n_customers, n_terminals, n_days, compromised_terminals_per_day, compromised_customers_per_day)
    rng_population, rng_tx, rng_terminal_fraud, rng_customer_fraud = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    population = make_population(n_customers, n_terminals, rng_population)
    tx = _legitimate_transactions(population, n_days, rng_tx)
    fraud = np.zeros(len(tx["amount"]), dtype=np.int64)
    scenario = np.zeros_like(fraud)
    _mark(fraud, scenario, tx["amount"] > FRAUD_AMOUNT_THRESHOLD, 1)
    terminals_hit = _draw_daily(rng_terminal_fraud, n_terminals, n_days, compromised_terminals_per_day)
    _mark(fraud, scenario, _in_terminal_windows(tx, terminals_hit, n_terminals, n_days), 2)
    customers_hit = _draw_daily(rng_customer_fraud, n_customers, n_days, compromised_customers_per_day)
    stolen = _customer_fraud_rows(tx, customers_hit, rng_customer_fraud)
    np.multiply.at(tx["amount"], stolen, CUSTOMER_FRAUD_AMOUNT_FACTOR)  # unbuffered: a row hit twice is x25
    _mark(fraud, scenario, stolen, 3)
    frame = _to_frame(tx, fraud, scenario, start_date)
    return Simulation(frame, population, terminals_hit, customers_hit)


def _check_sizes(*sizes: int) -> None:
    """Reject impossible sizes up front with one message instead of a numpy error later."""
    n_customers, n_terminals, n_days, per_day_terminals, per_day_customers = sizes
    if min(n_customers, n_terminals, n_days) < 1:
        raise ConfigError(
            f"simulator: n_customers, n_terminals and n_days must be >= 1, got {n_customers}, {n_terminals}, {n_days}"
        )
    if not (0 <= per_day_terminals <= n_terminals and 0 <= per_day_customers <= n_customers):
        raise ConfigError("simulator: compromised per day must be between 0 and the number of terminals/customers")


def make_population(n_customers: int, n_terminals: int, rng: np.random.Generator) -> Population:
    """Draw customer/terminal profiles and link each customer to its nearby terminals."""
    cust_xy = rng.uniform(0, GRID_SIZE, size=(n_customers, 2))
    mean_amount = rng.uniform(5, 100, size=n_customers)
    customers = pd.DataFrame(
        {
            "CUSTOMER_ID": np.arange(n_customers, dtype=np.int64),
            "X": cust_xy[:, 0],
            "Y": cust_xy[:, 1],
            "MEAN_AMOUNT": mean_amount,
            "STD_AMOUNT": mean_amount / 2,
            "MEAN_NB_TX_PER_DAY": rng.uniform(0, 4, size=n_customers),
        }
    )
    term_xy = rng.uniform(0, GRID_SIZE, size=(n_terminals, 2))
    terminals = pd.DataFrame({"TERMINAL_ID": np.arange(n_terminals, dtype=np.int64), "X": term_xy[:, 0], "Y": term_xy[:, 1]})
    offsets, terminals_of = _terminals_within_radius(cust_xy, term_xy)
    return Population(customers, terminals, offsets, terminals_of)


def _terminals_within_radius(cust_xy: np.ndarray, term_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR lists of terminals within TERMINAL_RADIUS; the nearest one when the disc is empty."""
    tree = cKDTree(term_xy)
    neighbours = tree.query_ball_point(cust_xy, r=TERMINAL_RADIUS, return_sorted=True)
    _, nearest = tree.query(cust_xy, k=1)
    lists = [np.asarray(n if len(n) else [nearest[i]], dtype=np.int64) for i, n in enumerate(neighbours)]
    counts = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return offsets, np.concatenate(lists)


def _legitimate_transactions(population: Population, n_days: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """All genuine transactions as flat arrays, sorted by time (ties keep generation order)."""
    customers = population.customers
    n_customers = len(customers)
    counts = rng.poisson(customers["MEAN_NB_TX_PER_DAY"].to_numpy(), size=(n_days, n_customers))
    day = np.repeat(np.repeat(np.arange(n_days, dtype=np.int64), n_customers), counts.ravel())
    customer = np.repeat(np.tile(np.arange(n_customers, dtype=np.int64), n_days), counts.ravel())
    second = np.floor(rng.normal(SECONDS_PER_DAY / 2, 20_000, size=len(day))).astype(np.int64)
    keep = (second >= 0) & (second < SECONDS_PER_DAY)
    day, customer, second = day[keep], customer[keep], second[keep]
    amount = _draw_amounts(customers, customer, rng)
    terminal = _draw_terminals(population, customer, rng)
    time = day * SECONDS_PER_DAY + second
    order = np.argsort(time, kind="stable")
    columns = {"time": time, "day": day, "customer": customer, "terminal": terminal, "amount": amount}
    return {name: values[order] for name, values in columns.items()}


def _draw_amounts(customers: pd.DataFrame, customer: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-customer normal amounts, negatives redrawn uniformly, rounded to cents and > 0."""
    mean = customers["MEAN_AMOUNT"].to_numpy()[customer]
    amount = rng.normal(mean, customers["STD_AMOUNT"].to_numpy()[customer])
    negative = amount < 0
    amount[negative] = rng.uniform(0, 2 * mean[negative])
    return np.maximum(np.round(amount, 2), 0.01)


def _draw_terminals(population: Population, customer: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniformly chosen usable terminal per transaction, via the CSR offsets."""
    start = population.offsets[customer]
    size = population.offsets[customer + 1] - start
    pick = np.minimum((rng.random(len(customer)) * size).astype(np.int64), size - 1)
    return population.terminals_of[start + pick]


def _draw_daily(rng: np.random.Generator, n_items: int, n_days: int, per_day: int) -> np.ndarray:
    """``per_day`` distinct random items for every day: shape (n_days, per_day)."""
    return np.stack([rng.choice(n_items, size=per_day, replace=False) for _ in range(n_days)]).reshape(n_days, per_day)


def _in_terminal_windows(tx: dict[str, np.ndarray], schedule: np.ndarray, n_terminals: int, n_days: int) -> np.ndarray:
    """Rows at a terminal during one of its compromise windows [d, d + 28)."""
    compromised = np.zeros((n_terminals, n_days), dtype=bool)
    for day, terminals in enumerate(schedule):
        compromised[terminals, day : day + TERMINAL_COMPROMISE_DAYS] = True
    return compromised[tx["terminal"], tx["day"]]


def _customer_fraud_rows(tx: dict[str, np.ndarray], schedule: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rows turned into scenario-3 fraud: a third of each compromised customer's window.

    One selection per compromise event (a loop over days x 3, never over transactions);
    a row picked by two overlapping events of the same customer appears twice, so its
    amount is multiplied twice, as when the events are applied one after another.
    """
    by_customer = np.lexsort((tx["day"], tx["customer"]))
    customer_sorted = tx["customer"][by_customer]
    day_sorted = tx["day"][by_customer]
    picked = []
    for day, customers in enumerate(schedule):
        for customer in customers:
            lo, hi = np.searchsorted(customer_sorted, [customer, customer + 1])
            first, last = lo + np.searchsorted(day_sorted[lo:hi], [day, day + CUSTOMER_COMPROMISE_DAYS])
            rows = by_customer[first:last]
            picked.append(rng.choice(rows, size=int(len(rows) * CUSTOMER_FRAUD_SHARE), replace=False))
    return np.concatenate(picked) if picked else np.empty(0, dtype=np.int64)


def _mark(fraud: np.ndarray, scenario: np.ndarray, rows: np.ndarray, number: int) -> None:
    """Label rows (boolean mask or indices) as fraud of a scenario (a later scenario overwrites an earlier one)."""
    fraud[rows] = 1
    scenario[rows] = number


def _to_frame(tx: dict[str, np.ndarray], fraud: np.ndarray, scenario: np.ndarray, start_date: str) -> pd.DataFrame:
    """The handbook's column layout, with typed columns and a time-ordered id."""
    start = pd.Timestamp(start_date)
    frame = pd.DataFrame(
        {
            "TRANSACTION_ID": np.arange(len(fraud), dtype=np.int64),
            "TX_DATETIME": (start + pd.to_timedelta(tx["time"], unit="s")).astype("datetime64[ns]"),
            "CUSTOMER_ID": tx["customer"],
            "TERMINAL_ID": tx["terminal"],
            "TX_AMOUNT": tx["amount"].astype(np.float64),
            "TX_TIME_SECONDS": tx["time"],
            "TX_TIME_DAYS": tx["day"],
            "TX_FRAUD": fraud,
            "TX_FRAUD_SCENARIO": scenario,
        }
    )
    return frame[COLUMNS]
