r"""Dense (fully connected) layer: ``z = x Wᵀ + b``, torch's ``linear``.

Forward, for every leading index ``m`` (the batch, possibly several axes
flattened) and output feature ``o``::

    z[m, o] = b[o] + Σ_i W[o, i] · x[m, i]

Backward, with ``δ = ∂L/∂z`` the upstream gradient (as in Benaicha (2023) and chanchishing)::

    ∂L/∂x[m, i] = Σ_o δ[m, o] · W[o, i]          (dx = δ W,   i.e. Wᵀδ per example)
    ∂L/∂W[o, i] = Σ_m δ[m, o] · x[m, i]          (dW = δᵀ x,  summed over the batch)
    ∂L/∂b[o]    = Σ_m δ[m, o]                    (db = Σ_m δ, never a sum over o)

The bias gradient sums over the batch only. Summing a single example's
gradient over the output features instead gives every bias the same value,
an error catalogued in the test suite (docs/derivations.md, erratum 7).

References:

* Mohamed Benaicha, "Forward Pass and Backpropagation in Deep Learning: DNNs and
  CNNs" (5 Dec 2023).
* chanchishing, "04 Forward and Back Propagation", Introduction-to-Deep-Learning
  GitHub wiki.
"""

from __future__ import annotations

import numpy as np

from reference_impl._scalars import real
from reference_impl._sums import column_sums
from reference_impl._validation import (
    FloatArray,
    check_grad_output,
    check_ndim,
    check_shape,
    float_array,
    same_dtype,
)


def _check_linear(
    x: object, weight: object, bias: object
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    x = float_array("x", x)
    weight = float_array("weight", weight)
    bias = None if bias is None else float_array("bias", bias)
    same_dtype(x=x, weight=weight, bias=bias)
    check_ndim("weight", weight, 2)
    if x.ndim < 1:
        raise ValueError(f"x must have at least 1 dimension (*, in_features), got shape {x.shape}")
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"x has {x.shape[-1]} input features but weight {weight.shape} expects "
            f"{weight.shape[1]} (weight is (out_features, in_features))"
        )
    if bias is not None:
        check_shape("bias", bias, (weight.shape[0],))
    return x, weight, bias


# --------------------------------------------------------------------------- loops


def linear_loop(x: FloatArray, weight: FloatArray, bias: FloatArray | None = None) -> FloatArray:
    """``z[m, o] = b[o] + Σ_i W[o, i] x[m, i]``, one output element at a time."""
    x, weight, bias = _check_linear(x, weight, bias)
    out_features, in_features = weight.shape
    rows = x.reshape(-1, in_features)
    out = np.zeros((rows.shape[0], out_features), dtype=x.dtype)
    for m in range(rows.shape[0]):
        for o in range(out_features):
            total = 0.0 if bias is None else real(bias[o])
            for i in range(in_features):
                total += real(weight[o, i]) * real(rows[m, i])
            out[m, o] = total
    return out.reshape(*x.shape[:-1], out_features)


def linear_backward_loop(
    grad_output: FloatArray,
    x: FloatArray,
    weight: FloatArray,
    bias: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    """``(∂L/∂x, ∂L/∂W, ∂L/∂b)`` from the three index sums of the module docstring."""
    x, weight, bias = _check_linear(x, weight, bias)
    grad_output = check_grad_output(grad_output, (*x.shape[:-1], weight.shape[0]), x)
    out_features, in_features = weight.shape
    rows = x.reshape(-1, in_features)
    delta = grad_output.reshape(-1, out_features)
    batch = rows.shape[0]

    grad_input = np.zeros_like(rows)
    for m in range(batch):
        for i in range(in_features):
            total = 0.0
            for o in range(out_features):
                total += real(delta[m, o]) * real(weight[o, i])
            grad_input[m, i] = total

    grad_weight = np.zeros_like(weight)
    for o in range(out_features):
        for i in range(in_features):
            total = 0.0
            for m in range(batch):
                total += real(delta[m, o]) * real(rows[m, i])
            grad_weight[o, i] = total

    grad_bias = None
    if bias is not None:
        grad_bias = np.zeros_like(bias)
        for o in range(out_features):
            total = 0.0
            for m in range(batch):
                total += real(delta[m, o])
            grad_bias[o] = total
    return grad_input.reshape(x.shape), grad_weight, grad_bias


# ---------------------------------------------------------------------- vectorized


def linear_vectorized(
    x: FloatArray, weight: FloatArray, bias: FloatArray | None = None
) -> FloatArray:
    """``z = x Wᵀ + b`` as one matrix product."""
    x, weight, bias = _check_linear(x, weight, bias)
    out: FloatArray = np.matmul(x, weight.T)
    if bias is not None:
        out += bias
    return out


def linear_backward_vectorized(
    grad_output: FloatArray,
    x: FloatArray,
    weight: FloatArray,
    bias: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    """``dx = δ W``, ``dW = δᵀ x``, ``db = Σ_m δ`` with the batch axes flattened."""
    x, weight, bias = _check_linear(x, weight, bias)
    grad_output = check_grad_output(grad_output, (*x.shape[:-1], weight.shape[0]), x)
    out_features, in_features = weight.shape
    rows = x.reshape(-1, in_features)
    delta = grad_output.reshape(-1, out_features)
    grad_input: FloatArray = np.matmul(grad_output, weight)
    grad_weight: FloatArray = np.matmul(delta.T, rows)
    grad_bias = None if bias is None else column_sums(delta)
    return grad_input, grad_weight, grad_bias
