"""Features match a brute-force computation, never see immature labels; splits never leak."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stillroom.errors import DataError
from stillroom_fraud.features import FEATURES, add_features, feature_names, time_split
from stillroom_fraud.simulator import SECONDS_PER_DAY, simulate_transactions

DAY = SECONDS_PER_DAY


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return simulate_transactions(n_customers=200, n_terminals=400, n_days=75, seed=5)


@pytest.fixture(scope="module")
def featured(transactions) -> pd.DataFrame:
    return add_features(transactions)


def test_features_constant_lists_model_inputs_only(featured) -> None:
    assert FEATURES == feature_names((1, 7, 30)) and len(FEATURES) == 18
    assert FEATURES[0] == "TX_AMOUNT"
    assert not {"TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID", "TX_FRAUD", "TX_FRAUD_SCENARIO"} & set(FEATURES)
    assert set(FEATURES) <= set(featured.columns)
    assert {"CUSTOMER_ID", "TX_TIME_DAYS", "TX_FRAUD"} <= set(featured.columns)
    assert np.isfinite(featured[FEATURES].to_numpy(dtype=float)).all()


def test_input_frame_is_left_untouched(transactions) -> None:
    before = transactions.columns.tolist()
    add_features(transactions)
    assert transactions.columns.tolist() == before


def test_time_features(featured) -> None:
    when = featured["TX_DATETIME"]
    assert (featured["TX_DURING_WEEKEND"] == when.dt.dayofweek.isin([5, 6]).astype(int)).all()
    assert (featured["TX_DURING_NIGHT"] == (when.dt.hour < 7).astype(int)).all()


def _sample_rows(featured: pd.DataFrame, n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    late = featured[featured["TX_TIME_DAYS"] >= 40]
    return late.iloc[rng.choice(len(late), size=n, replace=False)]


@pytest.mark.parametrize("window", [1, 7, 30])
def test_customer_windows_match_brute_force(featured, window) -> None:
    for _, row in _sample_rows(featured).iterrows():
        t = row["TX_TIME_SECONDS"]
        same = featured[
            (featured["CUSTOMER_ID"] == row["CUSTOMER_ID"])
            & (featured["TX_TIME_SECONDS"] > t - window * DAY)
            & (featured["TRANSACTION_ID"] <= row["TRANSACTION_ID"])  # up to and including the current one
        ]
        assert row[f"CUSTOMER_ID_NB_TX_{window}DAY_WINDOW"] == len(same)
        assert row[f"CUSTOMER_ID_AVG_AMOUNT_{window}DAY_WINDOW"] == pytest.approx(same["TX_AMOUNT"].mean())
        assert row[f"CUSTOMER_ID_AMOUNT_RATIO_{window}DAY_WINDOW"] == pytest.approx(row["TX_AMOUNT"] / same["TX_AMOUNT"].mean())


@pytest.mark.parametrize("window", [1, 7, 30])
def test_terminal_risk_matches_brute_force(featured, window) -> None:
    delay = 7
    for _, row in _sample_rows(featured).iterrows():
        t = row["TX_TIME_SECONDS"]
        past = featured[
            (featured["TERMINAL_ID"] == row["TERMINAL_ID"])
            & (featured["TX_TIME_SECONDS"] >= t - (delay + window) * DAY)
            & (featured["TX_TIME_SECONDS"] < t - delay * DAY)
        ]
        assert row[f"TERMINAL_ID_NB_TX_{window}DAY_WINDOW"] == len(past)
        expected = past["TX_FRAUD"].mean() if len(past) else 0.0
        assert row[f"TERMINAL_ID_RISK_{window}DAY_WINDOW"] == pytest.approx(expected)


def test_terminal_risk_never_uses_labels_younger_than_the_delay(transactions, featured) -> None:
    cut = 50 * DAY
    relabelled = transactions.copy()
    late = relabelled["TX_TIME_SECONDS"] >= cut
    relabelled.loc[late, "TX_FRAUD"] = 1 - relabelled.loc[late, "TX_FRAUD"]  # rewrite every label from day 50 on
    changed = add_features(relabelled)
    risk = [c for c in FEATURES if c.startswith("TERMINAL_ID_RISK")]
    protected = (transactions["TX_TIME_SECONDS"] < cut + 7 * DAY).to_numpy()  # labels still immature at those times
    pd.testing.assert_frame_equal(changed.loc[protected, risk], featured.loc[protected, risk])
    assert not changed.loc[~protected, risk].equals(featured.loc[~protected, risk])


def test_row_order_does_not_matter(transactions, featured) -> None:
    shuffled = transactions.sample(frac=1.0, random_state=1)
    # rows sharing a timestamp would legitimately depend on input order; there are few, skip them
    unique_time = ~featured.duplicated(["CUSTOMER_ID", "TX_TIME_SECONDS"], keep=False).to_numpy()
    again = add_features(shuffled).sort_values("TRANSACTION_ID")
    pd.testing.assert_frame_equal(
        again.loc[unique_time, FEATURES].reset_index(drop=True), featured.loc[unique_time, FEATURES].reset_index(drop=True)
    )


def test_missing_column_is_a_data_error(transactions) -> None:
    with pytest.raises(DataError, match="TERMINAL_ID"):
        add_features(transactions.drop(columns=["TERMINAL_ID"]))


def test_time_split_layout_has_gaps_and_no_overlap(featured) -> None:
    train, validation, test = time_split(featured, train_days=14, drop_known_compromised=False)
    ids = [set(part["TRANSACTION_ID"]) for part in (train, validation, test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert test["TX_TIME_DAYS"].max() == featured["TX_TIME_DAYS"].max()  # the last part of the period
    assert test["TX_TIME_DAYS"].min() - validation["TX_TIME_DAYS"].max() == 8  # 7 gap days in between
    assert validation["TX_TIME_DAYS"].min() - train["TX_TIME_DAYS"].max() == 8
    assert train["TX_TIME_DAYS"].min() >= 30  # windows warmed up
    assert [part["TX_TIME_DAYS"].nunique() for part in (train, validation, test)] == [14, 7, 7]


def test_time_split_explicit_start_day(featured) -> None:
    train, validation, test = time_split(featured, train_days=7, start_day=31)
    assert (train["TX_TIME_DAYS"].min(), validation["TX_TIME_DAYS"].min(), test["TX_TIME_DAYS"].min()) == (31, 45, 59)


def test_time_split_drops_customers_known_to_be_compromised(featured) -> None:
    train, validation, test = time_split(featured, train_days=14)
    _, full_validation, full_test = time_split(featured, train_days=14, drop_known_compromised=False)
    defrauded_in_train = set(train.loc[train["TX_FRAUD"] == 1, "CUSTOMER_ID"])
    assert defrauded_in_train and not defrauded_in_train & set(test["CUSTOMER_ID"])
    assert not defrauded_in_train & set(validation["CUSTOMER_ID"])
    assert set(test["TRANSACTION_ID"]) < set(full_test["TRANSACTION_ID"])
    assert set(validation["TRANSACTION_ID"]) < set(full_validation["TRANSACTION_ID"])
    # a card defrauded in validation is known (after the delay) by test time, so it is dropped too
    frauds_in_validation = set(full_validation.loc[full_validation["TX_FRAUD"] == 1, "CUSTOMER_ID"])
    assert not frauds_in_validation & set(test["CUSTOMER_ID"])


def test_time_split_too_short_period_is_a_data_error(featured) -> None:
    with pytest.raises(DataError, match="warm-up"):
        time_split(featured, train_days=40)
