"""The response-based distillation loss against hand-computed values and its own derivative."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from stillroom.tasks.targets import SoftTargets, logit, soften

P = np.array([0.9, 0.5, 0.1])
HARD = np.array([1.0, np.nan, 0.0])


def test_soften_by_hand() -> None:
    # logit(0.9) = ln 9; at T = 2 the softened probability is sigmoid(ln 9 / 2) = 3 / 4
    np.testing.assert_allclose(soften(P, 2.0), [0.75, 0.5, 0.25])
    np.testing.assert_allclose(soften(P, 1.0), P)


def test_blended_target_is_what_the_student_should_output() -> None:
    t = SoftTargets(HARD, P, temperature=2.0, alpha=0.6)
    # labelled rows: 0.6 * p + 0.4 * y (the temperature does not enter); the unlabelled row: p
    np.testing.assert_allclose(t.blended(), [0.6 * 0.9 + 0.4, 0.5, 0.06])
    assert t.initial_logit() == pytest.approx(logit(np.array([t.blended().mean()]))[0])


def test_gradient_by_hand() -> None:
    t = SoftTargets(HARD, P, temperature=2.0, alpha=0.6)
    g, h = t.gradient(np.zeros(3))
    # row 0: 0.6 * 2 * (0.5 - 0.75) + 0.4 * (0.5 - 1) = -0.5; Hessian 0.6 * 0.25 + 0.4 * 0.25
    # row 1 (no label, soft term alone): 1 * 2 * (0.5 - 0.5) = 0
    # row 2: 0.6 * 2 * (0.5 - 0.25) + 0.4 * (0.5 - 0) = 0.5
    np.testing.assert_allclose(g, [-0.5, 0.0, 0.5])
    np.testing.assert_allclose(h, [0.25, 0.25, 0.25])


@pytest.mark.parametrize(("temperature", "alpha"), [(1.0, 0.7), (2.5, 0.5), (4.0, 1.0), (3.0, 0.0)])
def test_gradient_and_hessian_are_derivatives_of_the_loss(temperature: float, alpha: float) -> None:
    rng = np.random.default_rng(0)
    n = 200
    hard = (rng.random(n) < 0.3).astype(float)
    hard[rng.random(n) < 0.4] = np.nan
    t = SoftTargets(hard, rng.uniform(0.01, 0.99, n), temperature, alpha)
    z, v, eps = rng.normal(size=n), rng.normal(size=n), 1e-5
    g, h = t.gradient(z)
    directional = (t.loss(z + eps * v) - t.loss(z - eps * v)) / (2 * eps)
    assert directional == pytest.approx(np.mean(g * v), rel=1e-6)
    g_plus, _ = t.gradient(z + eps)
    np.testing.assert_allclose((g_plus - g) / eps, h, rtol=1e-3, atol=1e-6)


def test_temperature_is_for_training_only() -> None:
    """Without a label the loss is minimal at the teacher's own logit, whatever T is, so the
    student predicts on the teacher's probability scale, not a tempered one."""
    p = np.array([0.001, 0.02, 0.3, 0.97])
    for temperature in (1.0, 2.0, 5.0):
        g, _ = SoftTargets(np.full(4, np.nan), p, temperature, 0.5).gradient(logit(p))
        np.testing.assert_allclose(g, 0.0, atol=1e-12)


def test_baseline_is_plain_cross_entropy() -> None:
    y = np.array([1.0, 0.0, 0.0, 1.0])
    t = SoftTargets.labels_only(y)
    z = np.array([0.3, -1.0, 2.0, 0.0])
    g, h = t.gradient(z)
    np.testing.assert_allclose(g, expit(z) - y)
    np.testing.assert_allclose(h, expit(z) * (1 - expit(z)))
    assert t.loss(z) == pytest.approx(np.mean(-(y * np.log(expit(z)) + (1 - y) * np.log(1 - expit(z)))))
    assert not t.needs_custom_loss and SoftTargets(y, expit(z), 2.0, 0.5).needs_custom_loss


def test_bad_targets_are_refused() -> None:
    with pytest.raises(ValueError, match="need teacher outputs"):
        SoftTargets.labels_only(HARD)
    with pytest.raises(ValueError, match="differ in shape"):
        SoftTargets(HARD, P[:2])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        SoftTargets(HARD, P, temperature=0.0)
