"""What is specific to the losses: torch's clamps at the ends of their domains."""

from __future__ import annotations

from types import ModuleType

import numpy as np


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
