"""What is specific to the losses: torch's clamps and argument checks."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

PAIR_LOSSES = ["mse_loss", "l1_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits"]
P = np.array([[0.25, 0.5], [0.75, 1.0]])


def test_bce_clamps_log_at_minus_100(namespace: ModuleType) -> None:
    """torch: p = 0 with y = 1 costs 100, not inf; the gradient divides by ε."""
    p = np.array([0.0, 1.0])
    y = np.array([1.0, 0.0])
    loss = namespace.binary_cross_entropy(p, y, "none")
    assert loss.tolist() == [100.0, 100.0]
    grad = namespace.binary_cross_entropy_backward(np.ones(2), p, y, "none")
    epsilon = float(np.float32(1e-12))
    np.testing.assert_allclose(grad, [-1 / epsilon, 1 / epsilon], rtol=1e-15)


def test_l1_gradient_at_a_tie_is_zero(namespace: ModuleType) -> None:
    x = np.array([1.0, 2.0, 3.0])
    grad = namespace.l1_loss_backward(np.array(1.0), x, np.array([1.0, 0.0, 4.0]), "sum")
    assert grad.tolist() == [0.0, 1.0, -1.0]


@pytest.mark.parametrize("name", PAIR_LOSSES)
@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ({"reduction": "average"}, ValueError, "reduction"),
        ({"reduction": None}, ValueError, "reduction"),
        ({"target": np.zeros((2, 3))}, ValueError, "target must have the same shape"),
        ({"target": np.zeros(2)}, ValueError, "target must have the same shape"),
        ({"target": np.zeros((2, 2), dtype=np.float32)}, TypeError, "target"),
        ({"input": P.astype(np.int64)}, TypeError, "input"),
    ],
)
def test_pair_losses_reject_bad_arguments(
    namespace: ModuleType, name: str, args: dict[str, Any], error: type[Exception], match: str
) -> None:
    call: dict[str, Any] = {"input": P, "target": P, "reduction": "mean", **args}
    with pytest.raises(error, match=match):
        getattr(namespace, name)(**call)
    with pytest.raises(error, match=match):
        getattr(namespace, name + "_backward")(np.array(1.0), **call)


@pytest.mark.parametrize("name", PAIR_LOSSES)
@pytest.mark.parametrize(
    ("reduction", "grad_output"),
    [("mean", np.ones(1)), ("sum", np.ones((2, 2))), ("none", np.array(1.0))],
)
def test_misshapen_grad_output_is_rejected(
    namespace: ModuleType, name: str, reduction: str, grad_output: np.ndarray
) -> None:
    with pytest.raises(ValueError, match="grad_output must have shape"):
        getattr(namespace, name + "_backward")(grad_output, P, P, reduction)


@pytest.mark.parametrize("p", [1.5, -0.25])
def test_bce_rejects_input_outside_unit_interval(namespace: ModuleType, p: float) -> None:
    x = np.array([0.5, p])
    with pytest.raises(ValueError, match="input"):
        namespace.binary_cross_entropy(x, np.zeros(2))
    with pytest.raises(ValueError, match="input"):
        namespace.binary_cross_entropy_backward(np.array(1.0), x, np.zeros(2))


LOGITS = np.zeros((2, 3))


@pytest.mark.parametrize(
    ("input", "target", "error", "match"),
    [
        (LOGITS, np.array([0, 3]), ValueError, r"class indices must lie in \[0, 3\)"),
        (LOGITS, np.array([-1, 0]), ValueError, "class indices"),
        (LOGITS, np.array([0, 1, 2]), ValueError, "target of class indices must have shape"),
        (LOGITS, np.zeros((2, 2)), ValueError, "target of class probabilities must have shape"),
        (LOGITS, np.zeros((2, 3), dtype=np.float32), TypeError, "target"),
        (LOGITS, [0, 1], TypeError, r"target must be a numpy\.ndarray"),
        (LOGITS, np.array([True, False]), TypeError, "target must have dtype"),
        (np.zeros(3), np.array([0]), ValueError, "input must have 2 dimensions"),
        (LOGITS.astype(np.int64), np.array([0, 1]), TypeError, "input must have dtype"),
    ],
)
def test_cross_entropy_rejects_bad_arguments(
    namespace: ModuleType, input: Any, target: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        namespace.cross_entropy(input, target)
    with pytest.raises(error, match=match):
        namespace.cross_entropy_backward(np.array(1.0), input, target)
