"""Features match a brute-force computation, never see immature labels, survive zero and
negative amounts, and depend only on a row's windows (not on the rest of the input)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stillroom.contract import ConfigError, DataError
from stillroom_fraud.features import FEATURES, MIN_AVERAGE_AMOUNT, FeatureSettings, engineer, feature_names
from stillroom_fraud.simulator import SECONDS_PER_DAY, simulate_transactions
from stillroom_fraud.transactions import RawFormat, TransactionLog

DAY = SECONDS_PER_DAY


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return simulate_transactions(n_customers=200, n_terminals=400, n_days=75, seed=5)


def _features(tx: pd.DataFrame) -> pd.DataFrame:
    seconds = tx["TX_DATETIME"].to_numpy(dtype="datetime64[s]").view(np.int64)
    columns = ("CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD")
    return engineer(seconds, *(tx[c].to_numpy() for c in columns))


@pytest.fixture(scope="module")
def featured(transactions) -> pd.DataFrame:
    return pd.concat([transactions.drop(columns="TX_AMOUNT"), _features(transactions)], axis=1)


def test_features_constant_lists_model_inputs_only(featured) -> None:
    assert FEATURES == feature_names((1, 7, 30)) == FeatureSettings().names and len(FEATURES) == 18
    assert FEATURES[0] == "TX_AMOUNT"
    assert not {"TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID", "TX_FRAUD", "TX_FRAUD_SCENARIO"} & set(FEATURES)
    assert np.isfinite(featured[FEATURES].to_numpy(dtype=float)).all()
    assert FeatureSettings().lookback_days == 37 and FeatureSettings((2, 14), 3).lookback_days == 17


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
        assert row[f"CUSTOMER_ID_AVG_AMOUNT_{window}DAY_WINDOW"] == pytest.approx(same["TX_AMOUNT"].mean(), rel=1e-12)
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
    changed = _features(relabelled)
    risk = [c for c in FEATURES if c.startswith("TERMINAL_ID_RISK")]
    protected = (transactions["TX_TIME_SECONDS"] < cut + 7 * DAY).to_numpy()  # labels still immature at those times
    pd.testing.assert_frame_equal(changed.loc[protected, risk], featured.loc[protected, risk])
    assert not changed.loc[~protected, risk].equals(featured.loc[~protected, risk])


def test_an_unknown_label_counts_as_genuine(transactions, featured) -> None:
    unknown = transactions.assign(TX_FRAUD=transactions["TX_FRAUD"].where(transactions["TX_FRAUD"] == 1))  # 0 -> NaN
    pd.testing.assert_frame_equal(_features(unknown), featured[FEATURES])


def test_row_order_does_not_matter(transactions, featured) -> None:
    shuffled = transactions.sample(frac=1.0, random_state=1)
    # rows sharing a timestamp legitimately depend on input order; there are few, skip them
    unique_time = ~featured.duplicated(["CUSTOMER_ID", "TX_TIME_SECONDS"], keep=False).to_numpy()
    again = _features(shuffled).set_axis(shuffled.index).sort_index()
    pd.testing.assert_frame_equal(again.loc[unique_time], featured.loc[unique_time, FEATURES])


def test_features_depend_only_on_the_windows_bit_for_bit(transactions, featured) -> None:
    """A later period with just its lookback of history gets the features of the whole log,
    and so does any block size: amounts are summed exactly, never as running float sums."""
    log = TransactionLog.from_frames([("simulator", transactions)], RawFormat())
    whole = log.features()
    np.testing.assert_array_equal(whole.to_numpy(), featured[FEATURES].to_numpy())
    for block_rows in (997, 5000):
        np.testing.assert_array_equal(log.features(block_rows=block_rows).to_numpy(), whole.to_numpy())
    start = int(np.searchsorted(log.day_index(), 20))
    later = log.slice(start, len(log))
    covered = later.day_index() >= 37  # the slice's own first date + lookback
    assert covered.sum() > 1000
    assert np.array_equal(later.features().to_numpy()[covered], whole.to_numpy()[start:][covered])


def test_window_sums_are_exact_where_float_running_sums_drift() -> None:
    n = 200_000
    seconds = np.arange(n, dtype=np.int64) * 10  # one card, a transaction every 10 s: windows of ~8,640 rows
    amount = np.full(n, 0.1)
    out = engineer(seconds, np.zeros(n), np.zeros(n), amount, np.zeros(n), FeatureSettings((1,), 0))
    assert (out["CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"] == 0.1).all()  # float prefix sums would not give 0.1 exactly
    assert (out["CUSTOMER_ID_AMOUNT_RATIO_1DAY_WINDOW"] == 1.0).all()


def test_zero_and_negative_amounts_give_finite_features() -> None:
    seconds = np.array([0, 60, 120, 180, 240], dtype=np.int64) + 40 * DAY
    amount = np.array([0.0, 0.0, -30.0, 50.0, 0.0])  # card checks, a refund, a purchase
    out = engineer(seconds, np.zeros(5), np.arange(5), amount, np.zeros(5), FeatureSettings((1,), 0))
    assert np.isfinite(out.to_numpy()).all()
    average = out["CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"].to_numpy()
    np.testing.assert_array_equal(average, [0.0, 0.0, -10.0, 5.0, 4.0])
    ratio = out["CUSTOMER_ID_AMOUNT_RATIO_1DAY_WINDOW"].to_numpy()
    floor = MIN_AVERAGE_AMOUNT
    np.testing.assert_array_equal(ratio, [0.0, 0.0, -30.0 / floor, 10.0, 0.0])


def test_bad_settings_and_amounts_are_refused() -> None:
    for windows, delay in [((), 7), ((0, 7), 7), ((7, 7), 7), ((1,), -1)]:
        with pytest.raises(ConfigError):
            FeatureSettings(windows, delay)
    with pytest.raises(DataError, match="amounts must be below"):
        engineer(np.zeros(1, dtype=np.int64), np.zeros(1), np.zeros(1), np.array([2e12]), np.zeros(1))
