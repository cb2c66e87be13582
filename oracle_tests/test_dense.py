"""What is specific to the dense layer: its argument checks."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

X = np.zeros((3, 4))
W = np.zeros((2, 4))
B = np.zeros(2)
G = np.zeros((3, 2))


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ({"x": np.zeros((3, 5))}, ValueError, "input features"),
        ({"x": np.zeros(())}, ValueError, "x must have at least 1 dimension"),
        ({"weight": np.zeros(4)}, ValueError, "weight must have 2 dimensions"),
        ({"bias": np.zeros(3)}, ValueError, "bias must have shape"),
        ({"bias": np.zeros((1, 2))}, ValueError, "bias"),
        ({"x": X.tolist()}, TypeError, r"x must be a numpy\.ndarray"),
        ({"weight": W.astype(np.float32)}, TypeError, "weight"),
        ({"x": X.astype(np.int32)}, TypeError, "x must have dtype"),
        ({"bias": B.astype(np.complex64)}, TypeError, "bias"),
    ],
)
def test_linear_rejects_bad_arguments(
    namespace: ModuleType, args: dict[str, Any], error: type[Exception], match: str
) -> None:
    call = {"x": X, "weight": W, "bias": B, **args}
    with pytest.raises(error, match=match):
        namespace.linear(**call)
    with pytest.raises(error, match=match):
        namespace.linear_backward(G, **call)


@pytest.mark.parametrize("grad_output", [np.zeros((3, 3)), np.zeros((2, 2)), np.zeros(2)])
def test_linear_backward_rejects_misshapen_grad_output(
    namespace: ModuleType, grad_output: np.ndarray
) -> None:
    with pytest.raises(ValueError, match="grad_output must have shape"):
        namespace.linear_backward(grad_output, X, W, B)


def test_linear_without_bias_returns_no_bias_gradient(namespace: ModuleType) -> None:
    grad_input, grad_weight, grad_bias = namespace.linear_backward(G, X, W)
    assert grad_bias is None
    assert grad_input.shape == X.shape and grad_weight.shape == W.shape
