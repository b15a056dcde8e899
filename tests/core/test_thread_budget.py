"""The thread budget: what "0 threads" means when training, and a search trial's share of the cores."""

from __future__ import annotations

import threading

import numpy as np

from stillroom.contract import SoftTargets, thread_budget, training_threads, usable_cores
from stillroom.searching.search import trial_threads
from stillroom_fraud.student import LightGBMStudent


def test_without_a_budget_zero_threads_means_every_usable_core_and_a_setting_is_kept() -> None:
    assert training_threads(0) == usable_cores()
    assert training_threads(3) == 3


def test_a_budget_caps_both_the_default_and_a_larger_setting() -> None:
    with thread_budget(1):
        assert training_threads(0) == 1 and training_threads(4) == 1
    assert training_threads(0) == usable_cores()  # given back


def test_a_budget_holds_in_the_thread_that_set_it_only() -> None:
    seen: list[int] = []
    with thread_budget(1):
        other = threading.Thread(target=lambda: seen.append(training_threads(0)))
        other.start()
        other.join()
    assert seen == [usable_cores()]


def test_trials_at_once_share_the_cores_and_a_lone_trial_is_not_capped() -> None:
    assert trial_threads(1, 8) is None
    assert trial_threads(2, 2) == 1 and trial_threads(2, 8) == 4 and trial_threads(4, 2) == 1


def test_a_lightgbm_student_trains_on_its_share() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.3).astype(float)
    targets = SoftTargets(y, np.clip(y * 0.8 + 0.1, 0, 1), 1.0, 0.5)
    student = LightGBMStudent({"n_estimators": 5, "early_stopping_rounds": 0}, seed=0)
    with thread_budget(1):
        assert student._train_params(targets)["num_threads"] == 1
    assert student._train_params(targets)["num_threads"] == usable_cores()
