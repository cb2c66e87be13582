"""Wrong formulas of the activations."""

from __future__ import annotations

from typing import Any

import numpy as np

from reference_impl import _erf, vectorized
from reference_impl.activations import GELU_CUBIC, SQRT1_2, SQRT_2_OVER_PI
from reference_impl.testing.errata.catalog import Erratum


def sigmoid_times_sigma(grad_output: Any, x: Any) -> Any:
    """Diba (2024), eq. 11: ``dz = dq ∘ σ(z)``; the derivative is σ(z)(1 − σ(z)).

    See docs/derivations.md, erratum 1.

    Shrunk counterexample: x = [0.0]: σ(0) = 1/2 but σ'(0) = 1/4.
    """
    return grad_output * vectorized.sigmoid(x)


def relu_gate_includes_zero(grad_output: Any, x: Any) -> Any:
    """Classic slip: the ReLU gate ``1[x ≥ 0]``; torch uses ``1[x > 0]``.

    Only an input of exactly 0 tells them apart, which is why the strategy
    draws exact zeros. Shrunk counterexample: x = [0.0].
    """
    return np.where(x >= 0, grad_output, 0).astype(x.dtype)


def softmax_diagonal_jacobian(grad_output: Any, x: Any, axis: int = -1) -> Any:
    """Classic slip: ``∂s_i/∂x_i = s_i(1 − s_i)`` used as if the Jacobian were diagonal.

    With an all-ones upstream gradient the true gradient is 0 while this gives
    s(1 − s) ≠ 0, but with *any* upstream gradient the cross terms are missing.
    Shrunk counterexample: x = [0.0, 0.0] along the axis, a random g.
    """
    s = vectorized.softmax(x, axis)
    return grad_output * s * (1 - s)


def log_softmax_without_sum(grad_output: Any, x: Any, axis: int = -1) -> Any:
    """Classic slip: ``∂L/∂x = g − softmax(x)``, dropping the factor Σ_j g_j.

    Correct only when the upstream gradient sums to 1 along the axis (as a
    one-hot NLL gradient does, up to sign). Shrunk counterexample: x = [0.0].
    """
    return grad_output - vectorized.softmax(x, axis)


def leaky_relu_backward_one_at_zero(grad_output: Any, x: Any, negative_slope: float = 0.01) -> Any:
    """Classic slip: the gate ``1[x ≥ 0]``, so the gradient at ``x = 0`` is 1; torch's is the slope.

    torch takes the ``x ≤ 0`` branch at 0 (``self > 0 ? grad : grad * slope``).
    Shrunk counterexample: x = 0.0 (0-d), negative_slope = 0.01, g = 1.75: 1.75
    instead of 0.0175.
    """
    factor = np.where(x >= 0, 1.0, negative_slope)
    return (grad_output * factor).astype(x.dtype)


def elu_backward_right_branch_at_zero(grad_output: Any, x: Any, alpha: float = 1.0) -> Any:
    """Classic slip: ``x ≥ 0`` takes the identity branch, so ELU'(0) = 1; torch's is α.

    Both one-sided derivatives at 0 are α·e^0 = α and 1: they differ whenever
    α ≠ 1, and torch takes the ``x ≤ 0`` branch. Shrunk counterexample:
    x = 0.0 (0-d), alpha = 0.5, g = 1.75: 1.75 instead of 0.875.
    """
    with np.errstate(over="ignore"):
        left = alpha * np.exp(np.minimum(x, 0))
    return (grad_output * np.where(x >= 0, 1.0, left)).astype(x.dtype)


def gelu_without_outer_x(x: Any, approximate: str = "none") -> Any:
    """The Gaussian CDF alone, ``½(1 + erf(x/√2))`` or ``½(1 + tanh(√(2/π)(x + 0.044715x³)))``.

    GELU is ``x Φ(x)``; the review of TensorFlow.js pull request #8224 found
    its tanh form computed without the outer ``x``, and Apache TVM pull request
    #16188 corrected a Relax ``gelu_tanh`` that disagreed with ``½ x (1 + tanh(…))``.
    Shrunk counterexample: x = 0.0 (0-d): 0.5 instead of 0.
    """
    wide = np.asarray(x, dtype=np.float64)
    if approximate == "tanh":
        phi = 0.5 * (1 + np.tanh(SQRT_2_OVER_PI * (wide + GELU_CUBIC * wide**3)))
    else:
        phi = 0.5 * (1 + _erf.erf(wide * SQRT1_2))
    return np.asarray(phi, dtype=x.dtype)


def gelu_tanh_as_sigmoid(x: Any, approximate: str = "none") -> Any:
    """Classic slip: ``x σ(1.702 x)`` (the sigmoid approximation of GELU) used for ``"tanh"``.

    Both approximate ``x Φ(x)`` (Hendrycks and Gimpel, "Gaussian Error Linear
    Units (GELUs)", 2016, §2), but they are different functions: torch's
    ``approximate="tanh"`` is ``½ x (1 + tanh(√(2/π)(x + 0.044715 x³)))``, which
    the sigmoid form misses by up to 0.02. Shrunk counterexample:
    x = 0.0625, approximate="tanh": 0.0329105 instead of 0.0328073.
    """
    if approximate != "tanh":
        return vectorized.gelu(x, approximate)
    wide = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        value = wide / (1 + np.exp(-1.702 * wide))
    return np.asarray(value, dtype=x.dtype)


ERRATA = [
    Erratum(
        name="erratum-1-sigmoid-derivative-is-sigma",
        formula="sigmoid",
        source="Diba (2024), eq. 11; docs/derivations.md, erratum 1",
        mistake="dz = dq ∘ σ(z) instead of dq ∘ σ'(z)",
        backward=sigmoid_times_sigma,
    ),
    Erratum(
        name="relu-gate-at-zero",
        formula="relu",
        source="classic slip",
        mistake="relu'(0) = 1 instead of torch's 0",
        backward=relu_gate_includes_zero,
    ),
    Erratum(
        name="softmax-diagonal-jacobian",
        formula="softmax",
        source="classic slip",
        mistake="softmax backward keeps only the diagonal of the Jacobian",
        backward=softmax_diagonal_jacobian,
    ),
    Erratum(
        name="log-softmax-missing-sum",
        formula="log_softmax",
        source="classic slip",
        mistake="log_softmax backward g − s instead of g − s Σ g",
        backward=log_softmax_without_sum,
    ),
    Erratum(
        name="leaky-relu-slope-at-zero",
        formula="leaky_relu",
        source="classic slip",
        mistake="the gradient at x = 0 is 1 instead of torch's negative_slope",
        backward=leaky_relu_backward_one_at_zero,
    ),
    Erratum(
        name="elu-gradient-at-zero-from-right",
        formula="elu",
        source="classic slip",
        mistake="ELU'(0) taken from the x > 0 branch (1) instead of torch's α",
        backward=elu_backward_right_branch_at_zero,
    ),
    Erratum(
        name="gelu-missing-outer-x",
        formula="gelu",
        source="TensorFlow.js pull request #8224; Apache TVM pull request #16188",
        mistake="Φ(x) = ½(1 + erf(x/√2)) (or its tanh form) without the outer factor x",
        forward=gelu_without_outer_x,
    ),
    Erratum(
        name="gelu-tanh-as-sigmoid",
        formula="gelu",
        source="classic slip",
        mistake='x σ(1.702 x) used for approximate="tanh"',
        forward=gelu_tanh_as_sigmoid,
    ),
]
