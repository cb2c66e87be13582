"""What is specific to the dense layer: an absent bias has no gradient."""

from __future__ import annotations

from types import ModuleType

import numpy as np


def test_linear_without_bias_returns_no_bias_gradient(namespace: ModuleType) -> None:
    x, weight, grad = np.zeros((3, 4)), np.zeros((2, 4)), np.zeros((3, 2))
    grad_input, grad_weight, grad_bias = namespace.linear_backward(grad, x, weight)
    assert grad_bias is None
    assert grad_input.shape == x.shape and grad_weight.shape == weight.shape
