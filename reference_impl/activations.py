r"""Element-wise activations and the softmax family.

Element-wise, with ``g = ∂L/∂y`` the upstream gradient and ``y = f(x)``::

    sigmoid   σ(x) = 1 / (1 + e^{-x})        ∂L/∂x = g · σ(x) (1 − σ(x))
    relu      max(x, 0)                      ∂L/∂x = g · 1[x > 0]       (so relu'(0) = 0, as torch)
    tanh      tanh(x)                        ∂L/∂x = g · (1 − tanh²(x))

The sigmoid derivative is σ'(x) = σ(x)(1 − σ(x)); multiplying by σ(x) alone
(seed 004, eq. 11) is a catalogued error. σ is evaluated in the form that
never exponentiates a positive number: e^{x}/(1 + e^{x}) for x < 0, so logits
of any magnitude give finite results without overflow warnings.

Along an axis (``i`` and ``j`` run over that axis, everything else is a batch)::

    softmax       s_i = e^{x_i − m} / Σ_j e^{x_j − m},   m = max_j x_j
                  ∂L/∂x_i = Σ_j g_j ∂s_j/∂x_i = s_i (g_i − Σ_j g_j s_j)
    log_softmax   l_i = x_i − m − log Σ_j e^{x_j − m}
                  ∂L/∂x_i = g_i − s_i Σ_j g_j

The Jacobian-vector products follow from ∂s_j/∂x_i = s_j (1[i = j] − s_i) and
∂l_j/∂x_i = 1[i = j] − s_i. With an all-ones upstream gradient the softmax
gradient is exactly zero, which is why the oracle always draws a random one.
"""

from __future__ import annotations

import math

import numpy as np

from reference_impl._validation import FloatArray, check_axis, check_shape, float_array, same_dtype

__all__ = [
    "log_softmax_backward_loop",
    "log_softmax_backward_vectorized",
    "log_softmax_loop",
    "log_softmax_vectorized",
    "relu_backward_loop",
    "relu_backward_vectorized",
    "relu_loop",
    "relu_vectorized",
    "sigmoid_backward_loop",
    "sigmoid_backward_vectorized",
    "sigmoid_loop",
    "sigmoid_vectorized",
    "softmax_backward_loop",
    "softmax_backward_vectorized",
    "softmax_loop",
    "softmax_vectorized",
    "tanh_backward_loop",
    "tanh_backward_vectorized",
    "tanh_loop",
    "tanh_vectorized",
]


def _check_backward(grad_output: object, x: object) -> tuple[FloatArray, FloatArray]:
    x = float_array("x", x)
    grad_output = float_array("grad_output", grad_output)
    same_dtype(grad_output=grad_output, x=x)
    check_shape("grad_output", grad_output, x.shape)
    return grad_output, x


def _sigmoid_scalar(value: float) -> float:
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
        out[idx] = _sigmoid_scalar(float(x[idx]))
    return out


def sigmoid_backward_loop(grad_output: FloatArray, x: FloatArray) -> FloatArray:
    """``g · σ(x)(1 − σ(x))`` element by element."""
    grad_output, x = _check_backward(grad_output, x)
    grad_input = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        s = _sigmoid_scalar(float(x[idx]))
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


def _softmax_lane(values: list[float]) -> list[float]:
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
        s = _softmax_lane([float(v) for v in x[lane]])
        for i, value in enumerate(s):
            out[lane][i] = value
    return out


def softmax_backward_loop(grad_output: FloatArray, x: FloatArray, axis: int = -1) -> FloatArray:
    """``∂L/∂x_i = Σ_j g_j s_j (1[i = j] − s_i)``, the Jacobian written out."""
    grad_output, x = _check_backward(grad_output, x)
    axis = check_axis("axis", axis, x.ndim)
    grad_input = np.empty_like(x)
    for lane in _rows(x, axis):
        s = _softmax_lane([float(v) for v in x[lane]])
        g = [float(v) for v in grad_output[lane]]
        for i in range(len(s)):
            total = 0.0
            for j in range(len(s)):
                jacobian = s[j] * ((1.0 if i == j else 0.0) - s[i])
                total += g[j] * jacobian
            grad_input[lane][i] = total
    return grad_input


def _log_softmax_lane(values: list[float]) -> list[float]:
    m = max(values)
    log_total = math.log(sum(math.exp(v - m) for v in values))
    return [v - m - log_total for v in values]


def log_softmax_loop(x: FloatArray, axis: int = -1) -> FloatArray:
    """``l_i = x_i − m − log Σ_j e^{x_j − m}`` lane by lane."""
    x = float_array("x", x)
    axis = check_axis("axis", axis, x.ndim)
    out = np.empty_like(x)
    for lane in _rows(x, axis):
        for i, value in enumerate(_log_softmax_lane([float(v) for v in x[lane]])):
            out[lane][i] = value
    return out


def log_softmax_backward_loop(grad_output: FloatArray, x: FloatArray, axis: int = -1) -> FloatArray:
    """``∂L/∂x_i = Σ_j g_j (1[i = j] − s_i)``, the Jacobian written out."""
    grad_output, x = _check_backward(grad_output, x)
    axis = check_axis("axis", axis, x.ndim)
    grad_input = np.empty_like(x)
    for lane in _rows(x, axis):
        s = _softmax_lane([float(v) for v in x[lane]])
        g = [float(v) for v in grad_output[lane]]
        for i in range(len(s)):
            total = 0.0
            for j in range(len(s)):
                total += g[j] * ((1.0 if i == j else 0.0) - s[i])
            grad_input[lane][i] = total
    return grad_input


# ---------------------------------------------------------------------- vectorized


def _sigmoid(x: FloatArray) -> FloatArray:
    # e = e^{-|x|} lies in (0, 1], so nothing overflows: σ = 1/(1+e) for x ≥ 0
    # and e/(1+e) for x < 0.
    # ``out=`` keeps 0-d inputs as arrays: a plain ufunc call would return a scalar.
    e = np.abs(x, out=np.empty_like(x))
    np.negative(e, out=e)
    np.exp(e, out=e)
    denominator = np.add(e, 1.0, out=np.empty_like(e))
    np.copyto(e, 1.0, where=x >= 0)
    np.divide(e, denominator, out=e)
    return e


def sigmoid_vectorized(x: FloatArray) -> FloatArray:
    """σ(x) through e^{-|x|}, which never overflows."""
    x = float_array("x", x)
    return _sigmoid(x)


def sigmoid_backward_vectorized(grad_output: FloatArray, x: FloatArray) -> FloatArray:
    """``g · σ(1 − σ)``."""
    grad_output, x = _check_backward(grad_output, x)
    s = _sigmoid(x)
    grad_input = np.subtract(1.0, s, out=np.empty_like(s))
    grad_input *= s
    grad_input *= grad_output
    return grad_input


def relu_vectorized(x: FloatArray) -> FloatArray:
    """``max(x, 0)``."""
    x = float_array("x", x)
    return np.maximum(x, 0.0, out=np.empty_like(x))


def relu_backward_vectorized(grad_output: FloatArray, x: FloatArray) -> FloatArray:
    """``g · 1[x > 0]``."""
    grad_output, x = _check_backward(grad_output, x)
    grad_input = np.zeros_like(x)
    np.copyto(grad_input, grad_output, where=x > 0)
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


def _softmax(x: FloatArray, axis: int) -> FloatArray:
    s: FloatArray = x - x.max(axis=axis, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=axis, keepdims=True)
    return s


def softmax_vectorized(x: FloatArray, axis: int = -1) -> FloatArray:
    """``e^{x − max} / Σ e^{x − max}`` along ``axis``."""
    x = float_array("x", x)
    axis = check_axis("axis", axis, x.ndim)
    return _softmax(x, axis)


def softmax_backward_vectorized(
    grad_output: FloatArray, x: FloatArray, axis: int = -1
) -> FloatArray:
    """``s ⊙ (g − Σ_j g_j s_j)``: the Jacobian-vector product without the Jacobian."""
    grad_output, x = _check_backward(grad_output, x)
    axis = check_axis("axis", axis, x.ndim)
    s = _softmax(x, axis)
    weighted = grad_output * s
    dot = weighted.sum(axis=axis, keepdims=True)
    s *= dot
    np.subtract(weighted, s, out=weighted)
    return weighted


def log_softmax_vectorized(x: FloatArray, axis: int = -1) -> FloatArray:
    """``x − max − log Σ e^{x − max}`` along ``axis``."""
    x = float_array("x", x)
    axis = check_axis("axis", axis, x.ndim)
    shifted: FloatArray = x - x.max(axis=axis, keepdims=True)
    log_total = np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    shifted -= log_total
    return shifted


def log_softmax_backward_vectorized(
    grad_output: FloatArray, x: FloatArray, axis: int = -1
) -> FloatArray:
    """``g − softmax(x) · Σ_j g_j``."""
    grad_output, x = _check_backward(grad_output, x)
    axis = check_axis("axis", axis, x.ndim)
    s = _softmax(x, axis)
    s *= grad_output.sum(axis=axis, keepdims=True)
    np.subtract(grad_output, s, out=s)
    return s
