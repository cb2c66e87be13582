"""What is specific to the losses: torch's clamps, normalisations and conventions."""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np
import pytest


def test_binary_cross_entropy_clamps_log_at_minus_100(namespace: ModuleType) -> None:
    """torch: p = 0 with y = 1 costs 100, not inf; the gradient divides by ε."""
    p = np.array([0.0, 1.0])
    y = np.array([1.0, 0.0])
    loss = namespace.binary_cross_entropy(p, y, "none")
    assert loss.tolist() == [100.0, 100.0]
    grad = namespace.binary_cross_entropy_backward(np.ones(2), p, y, "none")
    epsilon = float(np.float32(1e-12))
    np.testing.assert_allclose(grad, [-1 / epsilon, 1 / epsilon], rtol=1e-15)


def test_l1_loss_gradient_at_a_tie_is_zero(namespace: ModuleType) -> None:
    x = np.array([1.0, 2.0, 3.0])
    grad = namespace.l1_loss_backward(np.array(1.0), x, np.array([1.0, 0.0, 4.0]), "sum")
    assert grad.tolist() == [0.0, 1.0, -1.0]


def test_nll_loss_mean_divides_by_the_total_weight(namespace: ModuleType) -> None:
    """ℓ = [1, 12] with w = [1, 3]: the mean is 13 / (1 + 3), not 13 / 2 (rejects ÷ N)."""
    x = np.array([[-1.0, -2.0], [-3.0, -4.0]])
    target = np.array([0, 1])
    weight = np.array([1.0, 3.0])
    assert namespace.nll_loss(x, target, weight, reduction="none").tolist() == [1.0, 12.0]
    assert namespace.nll_loss(x, target, weight).tolist() == 3.25
    grad = namespace.nll_loss_backward(np.array(1.0), x, target, weight)
    assert grad.tolist() == [[-0.25, 0.0], [0.0, -0.75]]


def test_nll_loss_and_cross_entropy_every_target_ignored_is_nan(namespace: ModuleType) -> None:
    """torch's mean over no row is 0/0 = NaN, with a zero gradient, and no RuntimeWarning."""
    x = np.array([[0.5, -1.0], [2.0, 0.0]])
    target = np.array([-100, -100])
    with np.errstate(all="raise"):
        for name in ("nll_loss", "cross_entropy"):
            assert np.isnan(getattr(namespace, name)(x, target))
            grad = getattr(namespace, name + "_backward")(np.array(1.0), x, target)
            assert grad.tolist() == [[0.0, 0.0], [0.0, 0.0]]
        assert namespace.nll_loss(x, target, reduction="sum").tolist() == 0.0


def test_cross_entropy_zero_total_weight_gives_nan_rows(namespace: ModuleType) -> None:
    """Every kept row's class weighted 0: NaN loss; kept rows' gradients NaN, ignored rows 0."""
    x = np.array([[0.5, -1.0, 0.0], [2.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    target = np.array([2, 2, -100])
    weight = np.array([0.5, 2.0, 0.0])
    for smoothing in (0.0, 0.25):
        loss = namespace.cross_entropy(x, target, weight, label_smoothing=smoothing)
        grad = namespace.cross_entropy_backward(
            np.array(1.0), x, target, weight, label_smoothing=smoothing
        )
        assert np.isnan(loss)
        assert np.isnan(grad[:2]).all() and grad[2].tolist() == [0.0, 0.0, 0.0]


def test_cross_entropy_label_smoothing_skips_ignored_rows(namespace: ModuleType) -> None:
    """Uniform logits: every kept row costs log 3 whatever ε; rejects counting ignored rows.

    Counting the ignored row's smoothing term (PyTorch issue #73205) gives 1.23594.
    """
    x = np.zeros((3, 3))
    target = np.array([-100, 0, 0])
    loss = namespace.cross_entropy(x, target, label_smoothing=0.25)
    assert loss == pytest.approx(math.log(3), rel=1e-15)
    assert namespace.cross_entropy(x, target, reduction="sum", label_smoothing=1.0) == (
        pytest.approx(2 * math.log(3), rel=1e-15)
    )


def test_cross_entropy_gradient_is_softmax_minus_smoothed_weighted_target(
    namespace: ModuleType,
) -> None:
    """One row, uniform logits, ε = 1/4, w = [1, 2]: t = w y' = [7/8, 1/4], Σt = 9/8.

    ∂ℓ/∂x = p Σt − t = [9/16 − 7/8, 9/16 − 1/4] = [−5/16, 5/16]; ŷ − y would be [−1/2, 1/2].
    """
    x = np.zeros((1, 2))
    grad = namespace.cross_entropy_backward(
        np.array([1.0]),
        x,
        np.array([0]),
        np.array([1.0, 2.0]),
        reduction="none",
        label_smoothing=0.25,
    )
    assert grad.tolist() == [[-0.3125, 0.3125]]


def test_smooth_l1_loss_and_huber_loss_golden_values(namespace: ModuleType) -> None:
    """Both pieces, the switch |d| = β (δ), β = 0 as L1, and huber(δ) = δ · smooth_l1(β = δ)."""
    d = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    zero = np.zeros_like(d)
    smooth = namespace.smooth_l1_loss(d, zero, "none", 1.0)
    assert smooth.tolist() == [1.5, 0.5, 0.125, 0.0, 0.125, 0.5, 1.5]
    assert namespace.smooth_l1_loss(d, zero, "none", 0.0).tolist() == np.abs(d).tolist()
    grad = namespace.smooth_l1_loss_backward(np.ones_like(d), d, zero, "none", 0.0)
    assert grad.tolist() == [-1.0, -1.0, -1.0, 0.0, 1.0, 1.0, 1.0]
    huber = namespace.huber_loss(d, zero, "none", 2.0)
    assert huber.tolist() == [2.0, 0.5, 0.125, 0.0, 0.125, 0.5, 2.0]
    half = namespace.smooth_l1_loss(d, zero, "none", 0.5)
    np.testing.assert_allclose(namespace.huber_loss(d, zero, "none", 0.5), 0.5 * half)
    grad = namespace.huber_loss_backward(np.ones_like(d), d, zero, "none", 0.5)
    assert grad.tolist() == [-0.5, -0.5, -0.5, 0.0, 0.5, 0.5, 0.5]


def test_kl_div_batchmean_divides_by_the_batch(namespace: ModuleType) -> None:
    """torch's values: sum 0.80685, batchmean = sum / 2, mean = sum / 6; 0 log 0 = 0."""
    x = np.array([[-1.0, -0.5, -2.0], [-0.25, -3.0, 0.0]])
    p = np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    total = 0.8068528194400546
    assert namespace.kl_div(x, p, "sum") == pytest.approx(total, rel=1e-15)
    assert namespace.kl_div(x, p, "batchmean") == pytest.approx(total / 2, rel=1e-15)
    assert namespace.kl_div(x, p, "mean") == pytest.approx(total / 6, rel=1e-15)
    grad = namespace.kl_div_backward(np.array(1.0), x, p, "batchmean")
    assert grad.tolist() == [[-0.0, -0.25, -0.25], [-0.5, -0.0, -0.0]]
    log_p = np.log(np.array([[0.25, 0.75]]))
    q = np.array([[-1.0, -0.5]])
    np.testing.assert_allclose(
        namespace.kl_div(q, log_p, "sum", True),
        namespace.kl_div(q, np.exp(log_p), "sum"),
        rtol=1e-15,
    )
