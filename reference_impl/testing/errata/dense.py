"""Wrong formulas of the dense layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from reference_impl import vectorized
from reference_impl.testing.errata.catalog import Erratum


def bias_grad_summed_over_classes(
    grad_output: Any, x: Any, weight: Any, bias: Any = None
) -> tuple[Any, Any, Any]:
    """Saraswat, fully connected layer backward: ``db = dL_dout.sum(axis=0)``.

    See docs/derivations.md, erratum 7.

    Right for a batch (N, out), where axis 0 is the batch. On one 1-D example
    axis 0 is the class axis, so every bias receives the sum over classes.
    Shrunk counterexample: x = five zeros (one 1-D example), weight (2, 5) of
    zeros, bias = [0.0, 0.0]: db = [g0 + g1, g0 + g1] instead of [g0, g1].
    """
    grad_input, grad_weight, _ = vectorized.linear_backward(grad_output, x, weight, bias)
    if bias is None:
        return grad_input, grad_weight, None
    if grad_output.ndim == 1:  # Saraswat's single example: axis 0 is the class axis
        grad_bias = np.full_like(bias, grad_output.sum(axis=0))
    else:  # a batch: axis 0 (after flattening) is the batch, and the sum is right
        grad_bias = grad_output.reshape(-1, bias.shape[0]).sum(axis=0)
    return grad_input, grad_weight, grad_bias


def weight_grad_not_transposed(
    grad_output: Any, x: Any, weight: Any, bias: Any = None
) -> tuple[Any, Any, Any]:
    """Classic slip: ``dW = xᵀ δ`` (shape (in, out)) reshaped into (out, in) instead of ``δᵀ x``.

    Only square weights keep the right shape, and even then the values are
    transposed. Shrunk counterexample: x = [0.0, 0.0625] (1-D), weight 2 × 2 of
    zeros, no bias: dW[0, 1] receives δ1·x0 = 0 instead of δ0·x1.
    """
    grad_input, _, grad_bias = vectorized.linear_backward(grad_output, x, weight, bias)
    rows = x.reshape(-1, weight.shape[1])
    delta = grad_output.reshape(-1, weight.shape[0])
    grad_weight = (rows.T @ delta).reshape(weight.shape)
    return grad_input, grad_weight, grad_bias


ERRATA = [
    Erratum(
        name="erratum-7-bias-grad-summed-over-classes",
        formula="linear",
        source="Saraswat, fully connected backward; docs/derivations.md, erratum 7",
        mistake="db sums a single example's gradient over the output features",
        backward=bias_grad_summed_over_classes,
    ),
    Erratum(
        name="dense-weight-grad-transposed",
        formula="linear",
        source="classic slip",
        mistake="dW = xᵀδ reshaped to (out, in) instead of δᵀx",
        backward=weight_grad_not_transposed,
    ),
]
