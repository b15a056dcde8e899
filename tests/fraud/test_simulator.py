"""The simulator: reproducible by seed, typed columns, and the three fraud scenarios exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stillroom.errors import ConfigError
from stillroom_fraud.simulator import COLUMNS, SECONDS_PER_DAY, simulate, simulate_transactions

SMALL = {"n_customers": 200, "n_terminals": 400, "n_days": 60}


@pytest.fixture(scope="module")
def sim():
    return simulate(**SMALL, seed=3)


def test_same_seed_same_frame_and_other_seed_differs() -> None:
    a = simulate_transactions(**SMALL, seed=1)
    pd.testing.assert_frame_equal(a, simulate_transactions(**SMALL, seed=1))
    b = simulate_transactions(**SMALL, seed=2)
    assert len(a) != len(b) or not np.array_equal(a["TX_AMOUNT"], b["TX_AMOUNT"])


def test_columns_types_and_time_order(sim) -> None:
    tx = sim.transactions
    assert list(tx.columns) == COLUMNS
    integers = ["TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID", "TX_TIME_SECONDS", "TX_TIME_DAYS"]
    integers += ["TX_FRAUD", "TX_FRAUD_SCENARIO"]
    for col in integers:
        assert pd.api.types.is_integer_dtype(tx[col]), col
    assert pd.api.types.is_float_dtype(tx["TX_AMOUNT"])
    assert pd.api.types.is_datetime64_dtype(tx["TX_DATETIME"])
    assert np.array_equal(tx["TRANSACTION_ID"], np.arange(len(tx)))
    assert tx["TX_TIME_SECONDS"].is_monotonic_increasing
    assert (tx["TX_TIME_DAYS"] == tx["TX_TIME_SECONDS"] // SECONDS_PER_DAY).all()
    expected = pd.Timestamp("2026-04-01") + pd.to_timedelta(tx["TX_TIME_SECONDS"], unit="s")
    assert (tx["TX_DATETIME"] == expected).all()
    assert tx["TX_TIME_DAYS"].between(0, SMALL["n_days"] - 1).all()
    assert (tx["TX_AMOUNT"] > 0).all()
    assert set(tx["TX_FRAUD"]) <= {0, 1} and set(tx["TX_FRAUD_SCENARIO"]) <= {0, 1, 2, 3}
    assert ((tx["TX_FRAUD"] == 1) == (tx["TX_FRAUD_SCENARIO"] > 0)).all()


def test_customers_use_only_nearby_terminals(sim) -> None:
    pop = sim.population
    tx = sim.transactions
    cust = pop.customers.set_index("CUSTOMER_ID").loc[tx["CUSTOMER_ID"], ["X", "Y"]].to_numpy()
    term = pop.terminals.set_index("TERMINAL_ID").loc[tx["TERMINAL_ID"], ["X", "Y"]].to_numpy()
    distance = np.hypot(*(cust - term).T)
    n_usable = np.diff(pop.offsets)[tx["CUSTOMER_ID"]]
    # within radius 5, except customers with no terminal in range (they use the nearest one)
    assert ((distance <= 5) | (n_usable == 1)).all()


def test_scenario_1_every_amount_above_220_is_fraud(sim) -> None:
    tx = sim.transactions
    assert (tx.loc[tx["TX_AMOUNT"] > 220, "TX_FRAUD"] == 1).all()
    assert (tx.loc[tx["TX_FRAUD_SCENARIO"] == 1, "TX_AMOUNT"] > 220).all()


def test_scenario_2_compromised_terminal_windows_are_all_fraud(sim) -> None:
    tx = sim.transactions
    in_window = np.zeros(len(tx), dtype=bool)
    for day, terminals in enumerate(sim.compromised_terminals):
        rows = tx["TERMINAL_ID"].isin(terminals) & tx["TX_TIME_DAYS"].between(day, day + 27)
        assert (tx.loc[rows, "TX_FRAUD"] == 1).all()
        in_window |= rows.to_numpy()
    assert in_window[tx["TX_FRAUD_SCENARIO"] == 2].all()
    assert sim.compromised_terminals.shape == (SMALL["n_days"], 2)


def test_scenario_3_multiplies_a_third_of_window_amounts_by_five(sim) -> None:
    tx = sim.transactions
    without = simulate(**SMALL, seed=3, compromised_customers_per_day=0).transactions
    assert np.array_equal(tx["TX_TIME_SECONDS"], without["TX_TIME_SECONDS"])  # same legitimate transactions
    hit = (tx["TX_FRAUD_SCENARIO"] == 3).to_numpy()
    assert hit.any()
    ratio = tx["TX_AMOUNT"].to_numpy()[hit] / without["TX_AMOUNT"].to_numpy()[hit]
    times = np.log(ratio) / np.log(5)  # x25 (x125) when overlapping events of one customer picked the row twice (thrice)
    assert np.allclose(times, np.round(times), atol=1e-3) and (np.round(times) >= 1).all()
    assert np.mean(np.isclose(ratio, 5)) > 0.9
    assert np.array_equal(tx["TX_AMOUNT"].to_numpy()[~hit], without["TX_AMOUNT"].to_numpy()[~hit])
    schedule = sim.compromised_customers
    customers, counts = np.unique(schedule, return_counts=True)
    for customer in customers[counts == 1]:  # a single event: exactly floor(n / 3) of its window
        day = int(np.argwhere(schedule == customer)[0, 0])
        mine = tx["CUSTOMER_ID"] == customer
        window = mine & tx["TX_TIME_DAYS"].between(day, day + 13)
        assert int((tx.loc[mine, "TX_FRAUD_SCENARIO"] == 3).sum()) == int(window.sum()) // 3
        assert (tx.loc[mine & (tx["TX_FRAUD_SCENARIO"] == 3), "TX_TIME_DAYS"].between(day, day + 13)).all()


def test_full_size_fraud_rate_is_realistic() -> None:
    tx = simulate_transactions(seed=0)
    assert 1_500_000 < len(tx) < 2_000_000
    assert 0.005 < tx["TX_FRAUD"].mean() < 0.012
    assert set(tx["TX_FRAUD_SCENARIO"]) == {0, 1, 2, 3}


def test_bad_sizes_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="n_days"):
        simulate_transactions(n_customers=10, n_terminals=10, n_days=0)
