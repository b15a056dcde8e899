"""Card precision top-k on a hand-built log: each day on its own, and the Fraud Detection
Handbook's definition, where a compromised card detected on one day is removed from the later
days (it is blocked), so it cannot fill the review queue twice."""

from __future__ import annotations

import pandas as pd
import pytest

from stillroom_fraud.metrics import card_precision_at_k, fraud_metrics


def _log() -> tuple[pd.DataFrame, list[float]]:
    # day 0: card A (fraud) and card B (genuine); top-1 = A -> 1/1, A detected
    # day 1: card A (fraud again, scores highest) and card C (fraud); top-1 per day alone = A -> 1/1;
    #        handbook: A is removed, the queue holds C -> 1/1
    # day 2: card A (fraud) and card D (genuine, scores below A);
    #        each day alone: A -> 1/1; handbook: A removed, D -> 0/1
    rows = [
        (0, "A", 1, 0.9),
        (0, "B", 0, 0.2),
        (1, "A", 1, 0.95),
        (1, "C", 1, 0.5),
        (2, "A", 1, 0.8),
        (2, "D", 0, 0.7),
    ]
    frame = pd.DataFrame(rows, columns=["TX_TIME_DAYS", "CUSTOMER_ID", "TX_FRAUD", "score"])
    return frame, frame.pop("score").tolist()


def test_each_day_alone_counts_a_card_every_day_it_tops_the_queue() -> None:
    frame, scores = _log()
    assert card_precision_at_k(frame, scores, k=1) == pytest.approx(1.0)


def test_the_handbook_removes_cards_detected_on_earlier_days() -> None:
    frame, scores = _log()
    # day 0: A (1), day 1: C (1) once A is removed, day 2: D (0) once A and C are removed
    assert card_precision_at_k(frame, scores, k=1, remove_detected=True) == pytest.approx(2 / 3)
    # k = 2: day 0 {A, B} = 1/2; day 1 {C} (A removed) = 1/2; day 2 {D} (A removed) = 0/2
    assert card_precision_at_k(frame, scores, k=2, remove_detected=True) == pytest.approx((0.5 + 0.5 + 0.0) / 3)
    assert card_precision_at_k(frame, scores, k=2) == pytest.approx((0.5 + 1.0 + 0.5) / 3)


def test_a_genuine_card_in_the_queue_is_not_removed() -> None:
    """Only compromised cards are blocked: a genuine card reviewed on day 0 stays in later days."""
    frame = pd.DataFrame(
        [(0, "B", 0, 0.9), (0, "A", 1, 0.1), (1, "B", 1, 0.9), (1, "A", 0, 0.1)],
        columns=["TX_TIME_DAYS", "CUSTOMER_ID", "TX_FRAUD", "score"],
    )
    scores = frame.pop("score").tolist()
    # day 0: B tops the queue, genuine (0/1), not removed; day 1: B again, now fraud (1/1)
    assert card_precision_at_k(frame, scores, k=1, remove_detected=True) == pytest.approx(0.5)


def test_both_are_logged_under_their_own_names() -> None:
    frame, scores = _log()
    out = fraud_metrics(frame["TX_FRAUD"], scores, frame, threshold=0.5, config={"card_k": 1})
    assert out["card_precision_at_1"] == pytest.approx(1.0)
    assert out["handbook_card_precision_at_1"] == pytest.approx(2 / 3)
