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

import numpy as np

from reference_impl._validation import FloatArray, check_axis, check_grad_output, float_array


def _check_backward(grad_output: object, x: object) -> tuple[FloatArray, FloatArray]:
    x = float_array("x", x)
    return check_grad_output(grad_output, x.shape, x), x


def sigmoid_scalar(value: float) -> float:
    """σ of one Python float, never exponentiating a positive number."""
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    e = math.exp(value)
    return e / (1.0 + e)


# --------------------------------------------------------------------------- loops


def sigmoid_loop(x: FloatArray) -> FloatArray:
    """σ(x) element by element, in the overflow-free form."""
    x = float_array("x", x)
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        out[idx] = sigmoid_scalar(float(x[idx]))
    return out


def sigmoid_backward_loop(grad_output: FloatArray, x: FloatArray) -> FloatArray:
    """``g · σ(x)(1 − σ(x))`` element by element."""
    grad_output, x = _check_backward(grad_output, x)
    grad_input = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        s = sigmoid_scalar(float(x[idx]))
        grad_input[idx] = float(grad_output[idx]) * s * (1.0 - s)
    return grad_input


def relu_loop(x: FloatArray) -> FloatArray:
    """``max(x, 0)`` element by element."""
    x = float_array("x", x)
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        value = float(x[idx])
        out[idx] = value if value > 0 else 0.0
    return out


def relu_backward_loop(grad_output: FloatArray, x: FloatArray) -> FloatArray:
    """``g · 1[x > 0]`` element by element; the gradient at exactly 0 is 0."""
    grad_output, x = _check_backward(grad_output, x)
    grad_input = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        grad_input[idx] = float(grad_output[idx]) if x[idx] > 0 else 0.0
    return grad_input


def tanh_loop(x: FloatArray) -> FloatArray:
    """``tanh(x)`` element by element."""
    x = float_array("x", x)
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        out[idx] = math.tanh(float(x[idx]))
    return out


def tanh_backward_loop(grad_output: FloatArray, x: FloatArray) -> FloatArray:
    """``g · (1 − tanh²x)`` element by element."""
    grad_output, x = _check_backward(grad_output, x)
    grad_input = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        t = math.tanh(float(x[idx]))
        grad_input[idx] = float(grad_output[idx]) * (1.0 - t * t)
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
    m = max(values)
    exps = [math.exp(v - m) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


def softmax_loop(x: FloatArray, axis: int = -1) -> FloatArray:
    """``s_i = e^{x_i − m} / Σ_j e^{x_j − m}`` lane by lane, element by element."""
    x = float_array("x", x)
    axis = check_axis("axis", axis, x.ndim)
    out = np.empty_like(x)
    for lane in _rows(x, axis):
        s = softmax_lane([float(v) for v in x[lane]])
        for i, value in enumerate(s):
            out[lane][i] = value
    return out


def softmax_backward_loop(grad_output: FloatArray, x: FloatArray, axis: int = -1) -> FloatArray:
    """``∂L/∂x_i = Σ_j g_j s_j (1[i = j] − s_i)``, the Jacobian written out."""
    grad_output, x = _check_backward(grad_output, x)
    axis = check_axis("axis", axis, x.ndim)
    grad_input = np.empty_like(x)
    for lane in _rows(x, axis):
        s = softmax_lane([float(v) for v in x[lane]])
        g = [float(v) for v in grad_output[lane]]
        for i in range(len(s)):
            total = 0.0
            for j in range(len(s)):
                jacobian = s[j] * ((1.0 if i == j else 0.0) - s[i])
                total += g[j] * jacobian
            grad_input[lane][i] = total
    return grad_input


def log_softmax_lane(values: list[float]) -> list[float]:
    """``l_i = x_i − m − log Σ_j e^{x_j − m}`` of one lane of Python floats."""
    m = max(values)
    log_total = math.log(sum(math.exp(v - m) for v in values))
    return [v - m - log_total for v in values]


def log_softmax_loop(x: FloatArray, axis: int = -1) -> FloatArray:
    """``l_i = x_i − m − log Σ_j e^{x_j − m}`` lane by lane."""
    x = float_array("x", x)
    axis = check_axis("axis", axis, x.ndim)
    out = np.empty_like(x)
    for lane in _rows(x, axis):
        for i, value in enumerate(log_softmax_lane([float(v) for v in x[lane]])):
            out[lane][i] = value
    return out


def log_softmax_backward_loop(grad_output: FloatArray, x: FloatArray, axis: int = -1) -> FloatArray:
    """``∂L/∂x_i = Σ_j g_j (1[i = j] − s_i)``, the Jacobian written out."""
    grad_output, x = _check_backward(grad_output, x)
    axis = check_axis("axis", axis, x.ndim)
    grad_input = np.empty_like(x)
    for lane in _rows(x, axis):
        s = softmax_lane([float(v) for v in x[lane]])
        g = [float(v) for v in grad_output[lane]]
        for i in range(len(s)):
            total = 0.0
            for j in range(len(s)):
                total += g[j] * ((1.0 if i == j else 0.0) - s[i])
            grad_input[lane][i] = total
    return grad_input


# ---------------------------------------------------------------------- vectorized


def sigmoid_array(x: FloatArray) -> FloatArray:
    """``σ(x) = 1 / (1 + e^{−x})`` as a new array; an overflowing ``e^{−x}`` gives exactly 0."""
    # Four passes over one new array. Where e^{−x} overflows
    # (x < −88 in float32, x < −709 in float64) it becomes +inf and σ = 1/inf = 0,
    # which is σ rounded to the dtype; the overflow is expected, so not reported.
    # ``out=`` keeps 0-d inputs as arrays: a plain ufunc call would return a scalar.
    s = np.negative(x, out=np.empty_like(x))
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


def exp_shifted(x: FloatArray, axis: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(m, e, S)``: the lane maxima, ``e = e^{x − m}`` (a new array) and ``S = Σ e``.

    ``m`` and ``S`` keep the reduced axis (length 1) so that they broadcast;
    ``S ≥ 1`` because the maximum contributes ``e^0``.
    """
    m = x.max(axis=axis, keepdims=True)
    e = np.subtract(x, m, out=np.empty_like(x))
    np.exp(e, out=e)
    return m, e, e.sum(axis=axis, keepdims=True)


def _lane_dot(a: FloatArray, b: FloatArray, axis: int) -> FloatArray:
    """``Σ_i a_i b_i`` along ``axis`` (kept, length 1), without the product array."""
    dot: FloatArray = np.einsum(
        "...i,...i->...", np.moveaxis(a, axis, -1), np.moveaxis(b, axis, -1)
    )
    return np.expand_dims(dot, axis)


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
        np.subtract(g, _lane_dot(g, s, axis), out=result)
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
