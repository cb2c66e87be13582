"""What is specific to the activations: kinks and saturation."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

ALONG_AXIS = ["softmax", "log_softmax"]


def test_relu_derivative_at_zero_is_zero(namespace: ModuleType) -> None:
    x = np.array([-0.0, 0.0, 1.0, -1.0])
    grad = namespace.relu_backward(np.full(4, 3.0), x)
    assert grad.tolist() == [0.0, 0.0, 3.0, 0.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_saturates_without_overflow(namespace: ModuleType, dtype: Any) -> None:
    x = np.array([-1e4, -750.0, 0.0, 750.0, 1e4], dtype=dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        s = namespace.sigmoid(x)
        grad = namespace.sigmoid_backward(np.ones_like(x), x)
    assert s.tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert grad.tolist() == [0.0, 0.0, 0.25, 0.0, 0.0]


@pytest.mark.parametrize("name", ALONG_AXIS)
def test_softmax_family_is_shift_invariant_at_extremes(namespace: ModuleType, name: str) -> None:
    x = np.array([[1e4, 1e4 - 1.0, -1e4]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        shifted = getattr(namespace, name)(x)
        reference = getattr(namespace, name)(x - 1e4)
    np.testing.assert_allclose(shifted, reference, rtol=1e-12, atol=1e-12)
