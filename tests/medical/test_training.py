"""The medical training loop's schedule and early stopping, on a real small network.

Early stopping used to end training wherever the validation loss plateaued, which under a
one-cycle schedule is often at its peak learning rate: the network kept was never annealed.
These tests train for real and read what the loop recorded.
"""

from __future__ import annotations

import torch

from stillroom.torchkd import DistillationObjective
from stillroom_medical import nets
from stillroom_medical.training import TrainSettings, fit

LEARNING_RATE = 3e-3
FLOOR = LEARNING_RATE / 25 / 1e4  # OneCycleLR's defaults: start at max/25, end at that / 1e4


def _images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes a small CNN separates in a few epochs: a bright or a dark centre."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.rand((n, 1, 16, 16), generator=g) * 0.5
    x[:, :, 4:12, 4:12] += y.view(-1, 1, 1, 1).float()
    return x, y


def _fit(epochs: int, patience: int, flip_validation: bool):  # noqa: ANN202
    torch.manual_seed(0)
    net = nets.build("separable", 1, 2, widths=[4, 8, 8], blocks=[1, 1, 1])
    x, y = _images(96, 0)
    xv, yv = _images(48, 1)
    if flip_validation:  # the better the network learns the task, the worse its validation loss
        yv = 1 - yv
    settings = TrainSettings(
        epochs=epochs, batch_size=16, learning_rate=LEARNING_RATE, patience=patience, threads=1, progress=False
    )
    return fit(net, DistillationObjective({}), x, y, xv, yv, settings, title="test")


def test_a_plateau_mid_budget_anneals_for_patience_epochs_before_stopping() -> None:
    history = _fit(epochs=40, patience=2, flip_validation=True)
    trigger = history.cooldown_from
    assert 1 <= trigger < 40 - 2, "the validation loss never plateaued: the test data no longer does its job"
    assert history.epochs_run == trigger + 2  # the cool-down, then stop: not the whole budget
    peak = max(history.learning_rate)
    assert history.learning_rate[trigger - 1] > 0.1 * peak  # early stopping fired at a high learning rate
    assert history.learning_rate[-1] < 1e-3 * peak  # and the last epoch ended annealed
    assert history.learning_rate[-1] >= FLOOR * 0.999
    assert history.as_dict()["cooldown_from_epoch"] == trigger
    assert history.as_dict()["final_learning_rate"] < 1e-3 * LEARNING_RATE


def test_a_plateau_near_the_end_anneals_over_what_is_left_of_the_budget() -> None:
    history = _fit(epochs=5, patience=3, flip_validation=True)
    assert history.cooldown_from == 4, history  # best at epoch 1, patience 3: one epoch left
    assert history.epochs_run == 5  # never past the budget
    assert abs(history.learning_rate[-1] - FLOOR) < 1e-3 * FLOOR  # the cool-down reached the floor


def test_without_a_plateau_the_one_cycle_schedule_runs_to_its_floor() -> None:
    history = _fit(epochs=6, patience=6, flip_validation=False)
    assert history.cooldown_from == 0 and history.as_dict()["cooldown_from_epoch"] == 0
    assert history.epochs_run == 6
    assert history.learning_rate[-1] < 1e-2 * max(history.learning_rate)  # one batch before the floor
    assert history.best_epoch == 6 and history.best_valid_loss < 0.69  # still learning (log 2 is chance)
