"""Wrong formulas of the activations."""

from __future__ import annotations

from typing import Any

import numpy as np

from reference_impl import vectorized
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
]
