r"""Element-wise activations and the softmax family.

Element-wise, with ``g = ∂L/∂y`` the upstream gradient and ``y = f(x)``::

    sigmoid   σ(x) = 1 / (1 + e^{-x})        ∂L/∂x = g · σ(x) (1 − σ(x))
    relu      max(x, 0)                      ∂L/∂x = g · 1[x > 0]       (so relu'(0) = 0, as torch)
    tanh      tanh(x)                        ∂L/∂x = g · (1 − tanh²(x))

The sigmoid derivative is σ'(x) = σ(x)(1 − σ(x)); multiplying by σ(x) alone
(Diba (2024), eq. 11) is a catalogued error (docs/derivations.md, erratum 1).
The loop version evaluates σ in the form that never exponentiates a positive
number: e^{x}/(1 + e^{x}) for x < 0, so logits of any magnitude give finite
results. The vectorized version keeps
1/(1 + e^{−x}), where an overflowing e^{−x} = +inf yields exactly 0, and writes
σ'(x) = σ(x)(1 − σ(x)) = 1/(2 + 2 cosh x); neither reports an overflow.

The activations with a hyper-parameter (``g`` upstream, σ the sigmoid)::

    leaky_relu  x if x > 0 else s·x                ∂L/∂x = g if x > 0 else s·g   (s at x = 0)
    elu         x if x > 0 else α(e^x − 1)         ∂L/∂x = g if x > 0 else g·α·e^x  (α at 0)
    gelu        x Φ(x) = ½ x (1 + erf(x/√2))       ∂L/∂x = g (Φ(x) + x φ(x)),
                                                           φ(x) = e^{−x²/2}/√(2π)
      "tanh"    ½ x (1 + tanh u),  u = √(2/π)(x + 0.044715 x³)
                                                   ∂L/∂x = g (½(1 + tanh u) + ½ x sech²u · u'),
                                                           u' = √(2/π)(1 + 3 · 0.044715 x²)
    softplus    log(1 + e^{βx}) / β, or x where βx > threshold
                                                   ∂L/∂x = g σ(βx), or g where βx > threshold
    silu        x σ(x)                             ∂L/∂x = g σ(x)(1 + x(1 − σ(x)))

Each derivative is the chain rule on one element: d/dx [x Φ(x)] = Φ(x) + x Φ'(x)
with Φ' = φ; d/dx [log(1 + e^{βx})/β] = e^{βx}/(1 + e^{βx}) = σ(βx); d/dx [x σ(x)]
= σ(x) + x σ(x)(1 − σ(x)). At the kinks of leaky_relu and elu (x = 0) torch
takes the ``x ≤ 0`` branch, so the gradient there is the slope, or α; with
α ≠ 1 ELU's one-sided derivatives differ. Softplus switches to the identity
(value and gradient) only where βx is strictly above the threshold, so at
βx = threshold it is still log(1 + e^{βx})/β and σ(βx).

Numerics: ``elu`` uses ``expm1`` and never exponentiates a positive number;
``softplus`` writes log(1 + e^z) as max(z, 0) + log1p(e^{−|z|}), finite for
every z (torch's log1p(exp(z)) overflows to inf, and its gradient
e^z/(e^z + 1) to NaN, where z exceeds log of the largest float; that happens
only with a threshold raised above 88 in float32 or 709 in float64); the tanh
form of GELU takes sech² u = 1/cosh² u rather than 1 − tanh² u, which cancels
where |tanh u| → 1. NumPy has no erf: the vectorized exact GELU uses the
rational approximations of :mod:`reference_impl._erf` (within 1 ulp, in
float64), the loops use ``math.erf``.

Along an axis (``i`` and ``j`` run over that axis, everything else is a batch)::

    softmax       s_i = e^{x_i − m} / Σ_j e^{x_j − m},   m = max_j x_j
                  ∂L/∂x_i = Σ_j g_j ∂s_j/∂x_i = s_i (g_i − Σ_j g_j s_j)
    log_softmax   l_i = x_i − m − log Σ_j e^{x_j − m}
                  ∂L/∂x_i = g_i − s_i Σ_j g_j

The Jacobian-vector products follow from ∂s_j/∂x_i = s_j (1[i = j] − s_i) and
∂l_j/∂x_i = 1[i = j] − s_i. With an all-ones upstream gradient the softmax
gradient is exactly zero, which is why the oracle always draws a random one.

Reference: Owen Diba, "Forward and Backward Propagation in Convolutional
Neural Networks" (15 Jan 2024).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from reference_impl._erf import blockwise, erf_block, normal_cdf_single_block
from reference_impl._scalars import exp, exp_shift, log, nonnegative, real, tanh, where
from reference_impl._validation import (
    FloatArray,
    check_axis,
    check_grad_output,
    float_array,
    scalar,
)


def _check_backward(grad_output: object, x: object) -> tuple[FloatArray, FloatArray]:
    x = float_array("x", x)
    return check_grad_output(grad_output, x.shape, x), x


def sigmoid_scalar(value: float) -> float:
    """σ of one Python float (or SymPy expression), never exponentiating a positive number."""
    if nonnegative(value):
        return 1.0 / (1.0 + exp(-value))
    e = exp(value)
    return e / (1.0 + e)


# --------------------------------------------------------------------------- loops


def sigmoid_loop(x: FloatArray) -> FloatArray:
    """σ(x) element by element, in the overflow-free form."""
    x = float_array("x", x)
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        out[idx] = sigmoid_scalar(real(x[idx]))
    return out


def sigmoid_backward_loop(grad_output: FloatArray, x: FloatArray) -> FloatArray:
    """``g · σ(x)(1 − σ(x))`` element by element."""
    grad_output, x = _check_backward(grad_output, x)
    grad_input = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        s = sigmoid_scalar(real(x[idx]))
        grad_input[idx] = real(grad_output[idx]) * s * (1.0 - s)
    return grad_input


def relu_loop(x: FloatArray) -> FloatArray:
    """``max(x, 0)`` element by element."""
    x = float_array("x", x)
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        value = real(x[idx])
        out[idx] = where(value > 0, value, 0.0)
    return out


def relu_backward_loop(grad_output: FloatArray, x: FloatArray) -> FloatArray:
    """``g · 1[x > 0]`` element by element; the gradient at exactly 0 is 0."""
    grad_output, x = _check_backward(grad_output, x)
    grad_input = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        grad_input[idx] = where(x[idx] > 0, real(grad_output[idx]), 0.0)
    return grad_input


def tanh_loop(x: FloatArray) -> FloatArray:
    """``tanh(x)`` element by element."""
    x = float_array("x", x)
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        out[idx] = tanh(real(x[idx]))
    return out


def tanh_backward_loop(grad_output: FloatArray, x: FloatArray) -> FloatArray:
    """``g · (1 − tanh²x)`` element by element."""
    grad_output, x = _check_backward(grad_output, x)
    grad_input = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        t = tanh(real(x[idx]))
        grad_input[idx] = real(grad_output[idx]) * (1.0 - t * t)
    return grad_input


def _rows(x: FloatArray, axis: int) -> list[tuple[int | slice, ...]]:
    """Index tuples that select every 1-D lane of ``x`` along ``axis``."""
    other = [n for k, n in enumerate(x.shape) if k != axis]
    lanes = []
    for idx in np.ndindex(*other):
        full: list[int | slice] = list(idx)
        full.insert(axis, slice(None))
        lanes.append(tuple(full))
    return lanes


def softmax_lane(values: list[float]) -> list[float]:
    """``s_i = e^{x_i − m} / Σ_j e^{x_j − m}`` of one lane of Python floats."""
    m = exp_shift(values)
    exps = [exp(v - m) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


def softmax_loop(x: FloatArray, axis: int = -1) -> FloatArray:
    """``s_i = e^{x_i − m} / Σ_j e^{x_j − m}`` lane by lane, element by element."""
    x = float_array("x", x)
    axis = check_axis("axis", axis, x.ndim)
    out = np.empty_like(x)
    for lane in _rows(x, axis):
        s = softmax_lane([real(v) for v in x[lane]])
        for i, value in enumerate(s):
            out[lane][i] = value
    return out


def softmax_backward_loop(grad_output: FloatArray, x: FloatArray, axis: int = -1) -> FloatArray:
    """``∂L/∂x_i = Σ_j g_j s_j (1[i = j] − s_i)``, the Jacobian written out."""
    grad_output, x = _check_backward(grad_output, x)
    axis = check_axis("axis", axis, x.ndim)
    grad_input = np.empty_like(x)
    for lane in _rows(x, axis):
        s = softmax_lane([real(v) for v in x[lane]])
        g = [real(v) for v in grad_output[lane]]
        for i in range(len(s)):
            total = 0.0
            for j in range(len(s)):
                jacobian = s[j] * ((1.0 if i == j else 0.0) - s[i])
                total += g[j] * jacobian
            grad_input[lane][i] = total
    return grad_input


def log_softmax_lane(values: list[float]) -> list[float]:
    """``l_i = x_i − m − log Σ_j e^{x_j − m}`` of one lane of Python floats."""
    m = exp_shift(values)
    log_total = log(sum(exp(v - m) for v in values))
    return [v - m - log_total for v in values]


def log_softmax_loop(x: FloatArray, axis: int = -1) -> FloatArray:
    """``l_i = x_i − m − log Σ_j e^{x_j − m}`` lane by lane."""
    x = float_array("x", x)
    axis = check_axis("axis", axis, x.ndim)
    out = np.empty_like(x)
    for lane in _rows(x, axis):
        for i, value in enumerate(log_softmax_lane([real(v) for v in x[lane]])):
            out[lane][i] = value
    return out


def log_softmax_backward_loop(grad_output: FloatArray, x: FloatArray, axis: int = -1) -> FloatArray:
    """``∂L/∂x_i = Σ_j g_j (1[i = j] − s_i)``, the Jacobian written out."""
    grad_output, x = _check_backward(grad_output, x)
    axis = check_axis("axis", axis, x.ndim)
    grad_input = np.empty_like(x)
    for lane in _rows(x, axis):
        s = softmax_lane([real(v) for v in x[lane]])
        g = [real(v) for v in grad_output[lane]]
        for i in range(len(s)):
            total = 0.0
            for j in range(len(s)):
                total += g[j] * ((1.0 if i == j else 0.0) - s[i])
            grad_input[lane][i] = total
    return grad_input


# ---------------------------------------------------------------------- vectorized


def sigmoid_array(x: FloatArray, out: FloatArray | None = None) -> FloatArray:
    """σ(x) written into ``out`` (a new array when ``None``), which may be ``x`` itself.

    The vectorized σ of this module, for callers that keep σ in a buffer of
    their own (the losses, the gates of the recurrent cells). No validation.
    An overflowing ``e^{−x}`` gives exactly 0.
    """
    # σ = 1 / (1 + e^{−x}), four passes over one array. Where e^{−x} overflows
    # (x < −88 in float32, x < −709 in float64) it becomes +inf and σ = 1/inf = 0,
    # which is σ rounded to the dtype; the overflow is expected, so not reported.
    # ``out=`` keeps 0-d inputs as arrays: a plain ufunc call would return a scalar.
    s = np.negative(x, out=np.empty_like(x) if out is None else out)
    with np.errstate(over="ignore"):
        np.exp(s, out=s)
    s += 1.0
    np.reciprocal(s, out=s)
    return s


def sigmoid_vectorized(x: FloatArray) -> FloatArray:
    """``σ(x) = 1 / (1 + e^{−x})``; an overflowing e^{−x} gives exactly 0."""
    x = float_array("x", x)
    return sigmoid_array(x)


def sigmoid_backward_vectorized(grad_output: FloatArray, x: FloatArray) -> FloatArray:
    """``g · σ(1 − σ) = g / (2 + 2 cosh x)``.

    ``σ(1 − σ) = e^{−x} / (1 + e^{−x})² = 1 / (e^{x} + 2 + e^{−x})``: one
    transcendental, no cancellation, and ``cosh x = +inf`` for large ``|x|``
    gives the correctly rounded 0.
    """
    grad_output, x = _check_backward(grad_output, x)
    d = np.empty_like(x)
    with np.errstate(over="ignore"):
        np.cosh(x, out=d)
    d += 1.0
    np.divide(grad_output, d, out=d)
    d *= 0.5
    return d


def relu_vectorized(x: FloatArray) -> FloatArray:
    """``max(x, 0)``."""
    x = float_array("x", x)
    return np.maximum(x, 0.0, out=np.empty_like(x))


_SAME_SIZE_INT = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}


def relu_backward_vectorized(grad_output: FloatArray, x: FloatArray) -> FloatArray:
    """``g · 1[x > 0]``, as a select: ``g`` where ``x > 0``, ``+0`` elsewhere.

    A product ``g · 1[x > 0]`` would turn an infinite ``g`` at ``x ≤ 0`` into NaN
    (``inf · 0``); a masked copy is exact but branches on every element. This
    selects with integer bit masks instead: ``1[x > 0]`` is written as the
    integers 1 or 0 into the output's memory, negated to all ones or all zeros,
    and and-ed with the bits of ``g``.
    """
    grad_output, x = _check_backward(grad_output, x)
    grad_input = np.empty_like(x)
    bits = grad_input.view(_SAME_SIZE_INT[x.dtype])
    np.greater(x, 0.0, out=bits)
    np.negative(bits, out=bits)
    np.bitwise_and(bits, grad_output.view(bits.dtype), out=bits)
    return grad_input


def tanh_vectorized(x: FloatArray) -> FloatArray:
    """``tanh(x)``."""
    x = float_array("x", x)
    return np.tanh(x, out=np.empty_like(x))


def tanh_backward_vectorized(grad_output: FloatArray, x: FloatArray) -> FloatArray:
    """``g · (1 − tanh²x)``."""
    grad_output, x = _check_backward(grad_output, x)
    t = np.tanh(x, out=np.empty_like(x))
    np.square(t, out=t)
    np.subtract(1.0, t, out=t)
    t *= grad_output
    return t


def exp_shifted(
    x: FloatArray, axis: int, out: FloatArray | None = None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(m, e, S)``: the lane maxima, ``e = e^{x − m}`` (a new array) and ``S = Σ e``.

    ``m`` and ``S`` keep the reduced axis (length 1) so that they broadcast;
    ``S ≥ 1`` because the maximum contributes ``e^0``. ``out`` (``x`` itself
    for a caller that no longer needs it) receives ``e`` instead of a new array.
    """
    m = x.max(axis=axis, keepdims=True)
    e = np.subtract(x, m, out=np.empty_like(x) if out is None else out)
    np.exp(e, out=e)
    return m, e, e.sum(axis=axis, keepdims=True)


def lane_dot(a: FloatArray, b: FloatArray, axis: int) -> FloatArray:
    """``Σ_i a_i b_i`` along ``axis`` (kept, length 1), without the product array."""
    dot: FloatArray = np.einsum(
        "...i,...i->...", np.moveaxis(a, axis, -1), np.moveaxis(b, axis, -1)
    )
    return np.expand_dims(dot, axis)


def softmax_array(x: FloatArray, axis: int, out: FloatArray | None = None) -> FloatArray:
    _, s, total = exp_shifted(x, axis, out)
    s *= np.reciprocal(total, out=total)
    return s


#: Bytes of a slab of lanes that the softmax family processes at a time: the
#: four to seven passes over a slab then find it in cache instead of memory.
_SLAB_BYTES = 2**20


def _slabs(x: FloatArray, axis: int) -> list[tuple[slice, ...]]:
    """Index tuples cutting ``x`` along an axis other than ``axis`` into slabs of whole lanes.

    Every lane (a 1-d section along ``axis``) lies in exactly one slab, so the
    lane maxima, sums and dot products of a slab are those of the whole array.
    """
    if x.ndim == 1:
        return [(slice(None),)]
    cut = 1 if axis == 0 else 0
    step = max(1, _SLAB_BYTES * x.shape[cut] // max(x.nbytes, 1))
    lead = (slice(None),) * cut
    return [(*lead, slice(i, i + step)) for i in range(0, x.shape[cut], step)]


def _lane_sum(a: FloatArray, axis: int) -> FloatArray:
    """``Σ_i a_i`` along ``axis`` (kept, length 1), by ``einsum``: a third of ``sum``'s time."""
    total: FloatArray = np.einsum("...i->...", np.moveaxis(a, axis, -1))
    return np.expand_dims(total, axis)


def _exp_into(x: FloatArray, axis: int, out: FloatArray) -> FloatArray:
    """``out = e^{x − c}`` for one constant ``c`` per lane; returns ``Σ out`` along ``axis``.

    Softmax is unchanged by any such shift. ``c = 0`` when every ``e^x`` of the
    slab is a normal number and no lane sum can overflow (all ``x`` between
    ``log(tiny)`` and ``log(max) − log(lane length) − 1``): then ``e^x`` is
    exact to an ulp, and no subtraction rounds the argument. Otherwise, or
    with a NaN, ``c`` is the lane maximum, the usual stable shift, and every
    lane sum is at least 1.
    """
    info = np.finfo(x.dtype)
    low, high = np.log(info.tiny), np.log(info.max) - np.log(max(x.shape[axis], 1)) - 1
    if x.size and low < x.min() and x.max() < high:
        np.exp(x, out=out)
    else:
        np.subtract(x, x.max(axis=axis, keepdims=True), out=out)
        np.exp(out, out=out)
    return _lane_sum(out, axis)


def _softmax_into(x: FloatArray, axis: int, out: FloatArray) -> FloatArray:
    """``out = e^{x − c} / Σ e^{x − c}`` (see :func:`_exp_into`); returns ``out``."""
    total = _exp_into(x, axis, out)
    out *= np.reciprocal(total, out=total)
    return out


def _scratch(x: FloatArray, slabs: list[tuple[slice, ...]]) -> FloatArray:
    """Memory for the largest slab of ``x`` (the first), reused by every slab."""
    return np.empty(x[slabs[0]].size if slabs else 0, dtype=x.dtype)


def softmax_vectorized(x: FloatArray, axis: int = -1) -> FloatArray:
    """``e^{x − c} / Σ e^{x − c}`` along ``axis``, for ``c`` the lane maxima where ``e^x`` could
    overflow or underflow and 0 elsewhere (:func:`_exp_into`), written slab by slab."""
    x = float_array("x", x)
    axis = check_axis("axis", axis, x.ndim)
    out = np.empty_like(x)
    for index in _slabs(x, axis):
        _softmax_into(x[index], axis, out[index])
    return out


def softmax_backward_vectorized(
    grad_output: FloatArray, x: FloatArray, axis: int = -1
) -> FloatArray:
    """``s ⊙ (g − Σ_j g_j s_j)``: the Jacobian-vector product without the Jacobian.

    ``s`` is recomputed slab by slab into one reused buffer, and each slab of the
    result takes two passes: ``g − Σ_j g_j s_j``, then the product with ``s``.
    """
    grad_output, x = _check_backward(grad_output, x)
    axis = check_axis("axis", axis, x.ndim)
    out = np.empty_like(x)
    slabs = _slabs(x, axis)
    scratch = _scratch(x, slabs)
    for index in slabs:
        g, result = grad_output[index], out[index]
        s = _softmax_into(x[index], axis, scratch[: result.size].reshape(result.shape))
        np.subtract(g, lane_dot(g, s, axis), out=result)
        result *= s
    return out


def log_softmax_array(x: FloatArray, axis: int) -> FloatArray:
    """``(x − m) − log Σ e^{x − m}`` as a new array (``x − m`` is exact near the maximum)."""
    m, out, total = exp_shifted(x, axis)
    np.subtract(x, m, out=out)
    out -= np.log(total, out=total)
    return out


def log_softmax_vectorized(x: FloatArray, axis: int = -1) -> FloatArray:
    """``(x − max) − log Σ e^{x − max}`` along ``axis``; large logits lose nothing.

    Slab by slab, ``x − max`` goes straight into the output and its exponential
    into one reused buffer, which is only summed.
    """
    x = float_array("x", x)
    axis = check_axis("axis", axis, x.ndim)
    out = np.empty_like(x)
    slabs = _slabs(x, axis)
    scratch = _scratch(x, slabs)
    for index in slabs:
        result = out[index]
        np.subtract(x[index], x[index].max(axis=axis, keepdims=True), out=result)
        e = np.exp(result, out=scratch[: result.size].reshape(result.shape))
        total = _lane_sum(e, axis)
        result -= np.log(total, out=total)
    return out


def log_softmax_backward_vectorized(
    grad_output: FloatArray, x: FloatArray, axis: int = -1
) -> FloatArray:
    """``g − softmax(x) · Σ_j g_j``, with the normalisation folded into one scaling.

    Slab by slab in the output itself: ``e = e^{x − c}`` (a per-lane shift, see
    :func:`_exp_into`), scaled by ``Σ g / Σ e``, subtracted from ``g``.
    """
    grad_output, x = _check_backward(grad_output, x)
    axis = check_axis("axis", axis, x.ndim)
    out = np.empty_like(x)
    for index in _slabs(x, axis):
        g, result = grad_output[index], out[index]
        total = _exp_into(x[index], axis, result)
        result *= np.divide(_lane_sum(g, axis), total, out=total)
        np.subtract(g, result, out=result)
    return out


# ------------------------------------------ leaky_relu, elu, gelu, softplus, silu: loops

#: 1/√2, √(2/π), 1/√(2π) and the cubic coefficient of the tanh approximation of GELU
SQRT1_2 = 0.7071067811865476
SQRT_2_OVER_PI = 0.7978845608028654
INV_SQRT_2PI = 0.3989422804014327
GELU_CUBIC = 0.044715
GELU_APPROXIMATIONS = ("none", "tanh")


def _check_approximate(approximate: object) -> str:
    if not isinstance(approximate, str) or approximate not in GELU_APPROXIMATIONS:
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return approximate


def _check_beta(beta: object) -> float:
    value = scalar("beta", beta)
    if value == 0:
        raise ValueError("beta must be nonzero: softplus divides by it")
    return value


def leaky_relu_loop(x: FloatArray, negative_slope: float = 0.01) -> FloatArray:
    """leaky_relu(x)_i = x_i if x_i > 0 else negative_slope · x_i, element by element."""
    x = float_array("x", x)
    slope = scalar("negative_slope", negative_slope)
    out = np.empty_like(x)
    for index in np.ndindex(x.shape):
        value = float(x[index])
        out[index] = value if value > 0 else slope * value
    return out


def leaky_relu_backward_loop(
    grad_output: FloatArray, x: FloatArray, negative_slope: float = 0.01
) -> FloatArray:
    """dx_i = g_i if x_i > 0 else negative_slope · g_i (torch: the slope at x = 0)."""
    x = float_array("x", x)
    grad_output = check_grad_output(grad_output, x.shape, x)
    slope = scalar("negative_slope", negative_slope)
    grad_input = np.empty_like(x)
    for index in np.ndindex(x.shape):
        g = float(grad_output[index])
        grad_input[index] = g if x[index] > 0 else slope * g
    return grad_input


def elu_loop(x: FloatArray, alpha: float = 1.0) -> FloatArray:
    """``x`` if ``x > 0`` else ``α (e^x − 1)`` (``expm1``, exact near 0), element by element."""
    x = float_array("x", x)
    alpha = scalar("alpha", alpha)
    out = np.empty_like(x)
    for index in np.ndindex(x.shape):
        value = float(x[index])
        out[index] = value if value > 0 else alpha * math.expm1(value)
    return out


def elu_backward_loop(grad_output: FloatArray, x: FloatArray, alpha: float = 1.0) -> FloatArray:
    """``g`` if ``x > 0`` else ``g α e^x``: at ``x = 0`` the left branch, ``α`` (torch)."""
    grad_output, x = _check_backward(grad_output, x)
    alpha = scalar("alpha", alpha)
    grad_input = np.empty_like(x)
    for index in np.ndindex(x.shape):
        value, g = float(x[index]), float(grad_output[index])
        grad_input[index] = g if value > 0 else g * alpha * math.exp(value)
    return grad_input


def gelu_scalar(value: float, approximate: str) -> float:
    """GELU of one Python float: ``x Φ(x)``, or its tanh approximation."""
    if approximate == "tanh":
        inner = SQRT_2_OVER_PI * (value + GELU_CUBIC * value * value * value)
        return 0.5 * value * (1.0 + math.tanh(inner))
    return 0.5 * value * (1.0 + math.erf(value * SQRT1_2))


def gelu_derivative_scalar(value: float, approximate: str) -> float:
    """``d GELU / dx`` at one Python float."""
    if approximate == "tanh":
        t = math.tanh(SQRT_2_OVER_PI * (value + GELU_CUBIC * value * value * value))
        inner_derivative = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * value * value)
        return 0.5 * (1.0 + t) + 0.5 * value * (1.0 - t * t) * inner_derivative
    cdf = 0.5 * (1.0 + math.erf(value * SQRT1_2))
    pdf = INV_SQRT_2PI * math.exp(-0.5 * value * value)
    return cdf + value * pdf


def gelu_loop(x: FloatArray, approximate: str = "none") -> FloatArray:
    """``x Φ(x) = ½ x (1 + erf(x/√2))``, or ``½ x (1 + tanh(√(2/π)(x + 0.044715 x³)))``."""
    x = float_array("x", x)
    approximate = _check_approximate(approximate)
    out = np.empty_like(x)
    for index in np.ndindex(x.shape):
        out[index] = gelu_scalar(float(x[index]), approximate)
    return out


def gelu_backward_loop(
    grad_output: FloatArray, x: FloatArray, approximate: str = "none"
) -> FloatArray:
    """``g (Φ(x) + x φ(x))``, or the derivative of the tanh form, element by element."""
    grad_output, x = _check_backward(grad_output, x)
    approximate = _check_approximate(approximate)
    grad_input = np.empty_like(x)
    for index in np.ndindex(x.shape):
        derivative = gelu_derivative_scalar(float(x[index]), approximate)
        grad_input[index] = float(grad_output[index]) * derivative
    return grad_input


def softplus_scalar(z: float) -> float:
    """``log(1 + e^z) = max(z, 0) + log1p(e^{−|z|})``, finite for every finite ``z``."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def softplus_loop(x: FloatArray, beta: float = 1.0, threshold: float = 20.0) -> FloatArray:
    """``log(1 + e^{βx}) / β``, or ``x`` itself where ``βx > threshold``."""
    x = float_array("x", x)
    beta = _check_beta(beta)
    threshold = scalar("threshold", threshold)
    out = np.empty_like(x)
    for index in np.ndindex(x.shape):
        value = float(x[index])
        z = beta * value
        out[index] = value if z > threshold else softplus_scalar(z) / beta
    return out


def softplus_backward_loop(
    grad_output: FloatArray, x: FloatArray, beta: float = 1.0, threshold: float = 20.0
) -> FloatArray:
    """``g σ(βx)``, or ``g`` itself where ``βx > threshold`` (the linear branch)."""
    grad_output, x = _check_backward(grad_output, x)
    beta = _check_beta(beta)
    threshold = scalar("threshold", threshold)
    grad_input = np.empty_like(x)
    for index in np.ndindex(x.shape):
        z = beta * float(x[index])
        g = float(grad_output[index])
        grad_input[index] = g if z > threshold else g * sigmoid_scalar(z)
    return grad_input


def silu_loop(x: FloatArray) -> FloatArray:
    """``x σ(x)`` element by element."""
    x = float_array("x", x)
    out = np.empty_like(x)
    for index in np.ndindex(x.shape):
        value = float(x[index])
        out[index] = value * sigmoid_scalar(value)
    return out


def silu_backward_loop(grad_output: FloatArray, x: FloatArray) -> FloatArray:
    """``g σ(x) (1 + x (1 − σ(x)))`` element by element."""
    grad_output, x = _check_backward(grad_output, x)
    grad_input = np.empty_like(x)
    for index in np.ndindex(x.shape):
        value = float(x[index])
        s = sigmoid_scalar(value)
        grad_input[index] = float(grad_output[index]) * s * (1.0 + value * (1.0 - s))
    return grad_input


# ------------------------------------- leaky_relu, elu, gelu, softplus, silu: vectorized


def _chosen(condition: FloatArray) -> NDArray[np.signedinteger[Any]]:
    """All-ones integer bit masks where ``condition`` (0/1 integers, overwritten) is 1."""
    return np.negative(condition, out=condition)


def _blend(
    mask: NDArray[np.signedinteger[Any]], if_true: FloatArray, otherwise: FloatArray
) -> FloatArray:
    """``if_true`` where ``mask`` is all ones, ``otherwise`` where it is 0, in ``otherwise``.

    A select by bit operations, ``b ^ ((a ^ b) & mask)``: exact, NaN-preserving,
    and free of the per-element branch of ``np.where`` on a random mask (several
    times slower on large arrays). ``mask`` is overwritten.
    """
    bits = otherwise.view(mask.dtype)
    mask &= np.bitwise_xor(if_true.view(mask.dtype), bits)
    bits ^= mask
    return otherwise


def _mask_greater(x: FloatArray, bound: float) -> NDArray[np.signedinteger[Any]]:
    """All-ones bit masks where ``x > bound``, zeros elsewhere, as integers of ``x``'s size."""
    condition = np.greater(x, bound, out=np.empty(x.shape, _SAME_SIZE_INT[x.dtype]))
    return _chosen(condition)


def leaky_relu_vectorized(x: FloatArray, negative_slope: float = 0.01) -> FloatArray:
    """``max(x, s·x)`` for a slope ``s ≤ 1``, ``min(x, s·x)`` for ``s > 1``.

    For ``x > 0`` and ``s ≤ 1``, ``x ≥ s·x``; for ``x < 0``, ``s·x ≥ x``: the
    maximum is the leaky ReLU (and the minimum when ``s > 1``), in two passes.
    """
    x = float_array("x", x)
    slope = scalar("negative_slope", negative_slope)
    out = np.multiply(x, slope, out=np.empty_like(x))
    (np.maximum if slope <= 1 else np.minimum)(x, out, out=out)
    return out


def _step_factor(x: FloatArray, left: float) -> FloatArray | None:
    """``1`` where ``x > 0``, ``left`` elsewhere, as ``fmax(sign(x), left)`` when ``0 ≤ left ≤ 1``.

    ``sign(x)`` is 1, 0 or −1, so the maximum with ``left ∈ [0, 1]`` is 1 for
    ``x > 0`` and ``left`` for ``x ≤ 0`` (``x = 0`` included), exactly and in two
    passes; ``fmax`` gives ``left`` for a NaN ``x`` too, as torch's ``x > 0``
    test does. ``None`` for other values of ``left``.
    """
    if not 0 <= left <= 1:
        return None
    factor = np.sign(x, out=np.empty_like(x))
    np.fmax(factor, left, out=factor)
    return factor


def leaky_relu_backward_vectorized(
    grad_output: FloatArray, x: FloatArray, negative_slope: float = 0.01
) -> FloatArray:
    """``g`` where ``x > 0``, ``s·g`` elsewhere (``x = 0`` included).

    ``g · fmax(sign(x), s)`` for ``0 ≤ s ≤ 1``; other slopes select bitwise.
    """
    grad_output, x = _check_backward(grad_output, x)
    slope = scalar("negative_slope", negative_slope)
    factor = _step_factor(x, slope)
    if factor is not None:
        factor *= grad_output
        return factor
    grad_input = np.multiply(grad_output, slope, out=np.empty_like(x))
    return _blend(_mask_greater(x, 0.0), grad_output, grad_input)


def elu_vectorized(x: FloatArray, alpha: float = 1.0) -> FloatArray:
    """``max(x, 0) + α expm1(min(x, 0))``: each term is 0 (exactly) on the other side of 0."""
    x = float_array("x", x)
    alpha = scalar("alpha", alpha)
    out = np.minimum(x, 0.0, out=np.empty_like(x))
    np.expm1(out, out=out)
    if alpha != 1:
        out *= alpha
    out += np.maximum(x, 0.0, out=np.empty_like(x))
    return out


def elu_backward_vectorized(
    grad_output: FloatArray, x: FloatArray, alpha: float = 1.0
) -> FloatArray:
    """``g`` where ``x > 0``, ``g α e^{x}`` elsewhere; ``e^{min(x, 0)}`` never overflows.

    ``e^{min(x, 0)}`` is 1 for ``x > 0``, so for α = 1 it is the whole factor;
    for ``0 ≤ α < 1`` it is multiplied by ``fmax(sign(x), α)``; other α select bitwise.
    """
    grad_output, x = _check_backward(grad_output, x)
    alpha = scalar("alpha", alpha)
    grad_input = np.minimum(x, 0.0, out=np.empty_like(x))
    np.exp(grad_input, out=grad_input)
    if alpha == 1:
        grad_input *= grad_output
        return grad_input
    factor = _step_factor(x, alpha)
    if factor is not None:
        grad_input *= factor
        grad_input *= grad_output
        return grad_input
    grad_input *= alpha
    grad_input *= grad_output
    return _blend(_mask_greater(x, 0.0), grad_output, grad_input)


def _normal_cdf_block(x: NDArray[np.float64], single: bool) -> NDArray[np.float64]:
    """``Φ(x) = ½ (1 + erf(x/√2))`` of one float64 block (``single``: float32 accuracy)."""
    if single:
        return normal_cdf_single_block(x)
    cdf = erf_block(np.multiply(x, SQRT1_2))
    cdf += 1.0
    cdf *= 0.5
    return cdf


def _gelu_block(x: NDArray[np.float64], single: bool) -> NDArray[np.float64]:
    """``x Φ(x)`` of one float64 block."""
    cdf = _normal_cdf_block(x, single)
    cdf *= x
    return cdf


def _gelu_backward_block(
    x: NDArray[np.float64], g: NDArray[np.float64], single: bool
) -> NDArray[np.float64]:
    """``g (Φ(x) + x φ(x))`` of one float64 block; ``e^{−x²/2}`` underflows to 0, never over."""
    pdf = np.square(x)
    pdf *= -0.5
    np.exp(pdf, out=pdf)
    pdf *= INV_SQRT_2PI
    pdf *= x
    pdf += _normal_cdf_block(x, single)
    pdf *= g
    return pdf


def _gelu_tanh_inner(x: FloatArray) -> FloatArray:
    """``√(2/π) (x + 0.044715 x³) = √(2/π) x (1 + 0.044715 x²)``, as a new array."""
    inner = np.square(x, out=np.empty_like(x))
    inner *= GELU_CUBIC
    inner += 1.0
    inner *= x
    inner *= SQRT_2_OVER_PI
    return inner


def gelu_vectorized(x: FloatArray, approximate: str = "none") -> FloatArray:
    """``½ x (1 + erf(x/√2))`` with the vectorized erf of ``reference_impl._erf``, or the tanh form.

    The exact form is evaluated in float64, in cache-sized blocks (``_erf.blockwise``),
    and rounded once to ``x``'s dtype.
    """
    x = float_array("x", x)
    approximate = _check_approximate(approximate)
    if approximate == "tanh":
        with np.errstate(over="ignore"):  # x² = inf for |x| > 1.8e19 in float32: tanh → ±1
            out = _gelu_tanh_inner(x)
        np.tanh(out, out=out)
        out += 1.0
        out *= x
        out *= 0.5
        return out
    single = x.dtype == np.float32
    return blockwise(lambda block: _gelu_block(block, single), np.empty(x.shape, x.dtype), x)


def gelu_backward_vectorized(
    grad_output: FloatArray, x: FloatArray, approximate: str = "none"
) -> FloatArray:
    """``g (Φ(x) + x φ(x))``; tanh form: ``g (½(1 + t) + ½ x sech²(u) u')``, ``t = tanh u``.

    ``sech² u = 1 / cosh² u`` instead of ``1 − t²``: no cancellation where
    ``|t| → 1``, and an overflowing ``cosh`` gives the correctly rounded 0.
    """
    grad_output, x = _check_backward(grad_output, x)
    approximate = _check_approximate(approximate)
    if approximate == "tanh":
        with np.errstate(over="ignore"):
            inner = _gelu_tanh_inner(x)
            sech2 = np.cosh(inner, out=np.empty_like(x))
            np.square(sech2, out=sech2)
        np.reciprocal(sech2, out=sech2)
        # u' = √(2/π)(1 + 3 · 0.044715 x²)
        slope = np.square(x, out=np.empty_like(x))
        slope *= 3.0 * GELU_CUBIC
        slope += 1.0
        slope *= SQRT_2_OVER_PI
        sech2 *= slope
        sech2 *= x
        np.tanh(inner, out=inner)
        inner += 1.0
        inner += sech2
        inner *= 0.5
        inner *= grad_output
        return inner
    single = x.dtype == np.float32
    with np.errstate(over="ignore"):  # x² = inf only for |x| > 1.3e154: e^{−inf} = 0
        return blockwise(
            lambda block, g: _gelu_backward_block(block, g, single),
            np.empty(x.shape, x.dtype),
            x,
            grad_output,
        )


def _below(z: FloatArray, threshold: float) -> FloatArray:
    """``1[z ≤ threshold]`` as floats of ``z``'s dtype (1.0 or 0.0)."""
    return np.less_equal(z, threshold, out=np.empty_like(z))


def softplus_vectorized(x: FloatArray, beta: float = 1.0, threshold: float = 20.0) -> FloatArray:
    """``(max(z, 0) + log1p(e^{−|z|}) · 1[z ≤ threshold]) / β``, ``z = βx``.

    Above a threshold ``≥ 0`` the log term is multiplied by 0 (exactly), which
    leaves ``max(z, 0)/β = z/β = x``: the linear branch without a select. A
    negative threshold (the linear branch then reaches ``z ≤ 0``) selects bitwise.
    """
    x = float_array("x", x)
    beta = _check_beta(beta)
    threshold = scalar("threshold", threshold)
    z = x if beta == 1 else np.multiply(x, beta, out=np.empty_like(x))
    out = np.abs(z, out=np.empty_like(x))
    np.negative(out, out=out)
    np.exp(out, out=out)
    np.log1p(out, out=out)
    if threshold < 0:
        linear = _mask_greater(z, threshold)
    else:
        out *= _below(z, threshold)
    out += np.maximum(z, 0.0, out=np.empty_like(x))
    if beta != 1:
        out /= beta
    return _blend(linear, x, out) if threshold < 0 else out


def softplus_backward_vectorized(
    grad_output: FloatArray, x: FloatArray, beta: float = 1.0, threshold: float = 20.0
) -> FloatArray:
    """``g σ(βx)``, and ``g`` where ``βx > threshold``.

    For a threshold ``≥ 0``, ``σ`` is taken of ``z / 1[z ≤ threshold]``: ``z``
    itself, or ``z/0 = +inf`` above the threshold, where ``σ(inf) = 1`` exactly.
    """
    grad_output, x = _check_backward(grad_output, x)
    beta = _check_beta(beta)
    threshold = scalar("threshold", threshold)
    z = x if beta == 1 else np.multiply(x, beta, out=np.empty_like(x))
    if threshold < 0:
        linear = _mask_greater(z, threshold)
        grad_input = sigmoid_array(z)
        grad_input *= grad_output
        return _blend(linear, grad_output, grad_input)
    capped = _below(z, threshold)
    with np.errstate(divide="ignore"):  # z / 0 = +inf above the threshold (z > 0 there)
        np.divide(z, capped, out=capped)
    grad_input = sigmoid_array(capped)
    grad_input *= grad_output
    return grad_input


def silu_vectorized(x: FloatArray) -> FloatArray:
    """``x σ(x)``."""
    x = float_array("x", x)
    out = sigmoid_array(x)
    out *= x
    return out


def silu_backward_vectorized(grad_output: FloatArray, x: FloatArray) -> FloatArray:
    """``g σ (1 + x (1 − σ))``."""
    grad_output, x = _check_backward(grad_output, x)
    s = sigmoid_array(x)
    grad_input = np.subtract(1.0, s, out=np.empty_like(x))
    grad_input *= x
    grad_input += 1.0
    grad_input *= s
    grad_input *= grad_output
    return grad_input
