r"""Losses and their input gradients, with torch's ``reduction`` semantics.

Every loss first forms a per-element (or per-example) loss ``ℓ``, then reduces:
``"none"`` returns ``ℓ``, ``"sum"`` returns ``Σ ℓ`` and ``"mean"`` returns
``Σ ℓ / n``, n being the number of elements of ``ℓ`` (the batch size for
``cross_entropy``). The backward takes ``grad_output`` of the reduced shape (a
0-d array for ``"mean"`` and ``"sum"``) and returns ``∂L/∂input``; with
``"mean"`` every element's gradient is divided by n.

With ``x`` the input, ``y`` the target and ``g`` the upstream gradient::

    l1_loss          ℓ = |x − y|                ∂ℓ/∂x = sign(x − y)          (0 at x = y, as torch)
    mse_loss         ℓ = (x − y)²               ∂ℓ/∂x = 2 (x − y)
    binary_cross_entropy  (x = p ∈ [0, 1])
                     ℓ = −[y · max(log p, −100) + (1 − y) · max(log(1 − p), −100)]
                     ∂ℓ/∂p = (p − y) / max(p (1 − p), ε),  ε = float32(1e-12)
    binary_cross_entropy_with_logits  (x = z, a logit)
                     ℓ = max(z, 0) − z y + log(1 + e^{−|z|})
                     ∂ℓ/∂z = σ(z) − y
    cross_entropy    (x = logits (N, C); y = class indices (N,) or probabilities (N, C))
                     ℓ_n = −Σ_c y_nc log_softmax(x_n)_c
                     ∂ℓ_n/∂x_nc = softmax(x_n)_c · Σ_k y_nk − y_nc      (= ŷ − y for one-hot y)

The clamp at −100 and the ε in the BCE derivative are torch's: they keep
probabilities of exactly 0 and 1 finite. The logit form of BCE is where the
chain rule's ``(∂ℓ/∂p)(∂p/∂z) = [(p − y)/(p(1 − p))] · p(1 − p)`` cancels to
``p − y`` (as in chanchishing); it never forms ``log σ(z)``, so logits of any
size are safe.

Reference: chanchishing, "04 Forward and Back Propagation",
Introduction-to-Deep-Learning GitHub wiki.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from reference_impl._scalars import at_least, log, real
from reference_impl._validation import (
    FloatArray,
    check_grad_output,
    check_ndim,
    check_reduction,
    float_array,
    holds_symbols,
    same_dtype,
)
from reference_impl.activations import (
    exp_shifted,
    log_softmax_array,
    log_softmax_lane,
    sigmoid_array,
    sigmoid_scalar,
    softmax_lane,
)

#: torch's guard in the BCE derivative, a float32 constant even for float64 inputs.
BCE_EPSILON = float(np.float32(1e-12))
#: torch clamps each log term of BCE at this value.
LOG_CLAMP = -100.0


# ---------------------------------------------------------------- argument checks


def _check_pair(input: object, target: object) -> tuple[FloatArray, FloatArray]:
    input = float_array("input", input)
    target = float_array("target", target)
    same_dtype(input=input, target=target)
    if target.shape != input.shape:
        raise ValueError(
            f"target must have the same shape as input {input.shape}, got {target.shape}"
        )
    return input, target


def _check_probabilities(input: FloatArray) -> None:
    if holds_symbols(input):
        return  # symbols stand for probabilities: a derivation's assumption, not a value to check
    if input.size and not (np.all(input >= 0) and np.all(input <= 1)):
        raise ValueError("input of binary_cross_entropy must hold probabilities in [0, 1]")


def _check_backward(
    grad_output: object, input: object, target: object, reduction: object
) -> tuple[FloatArray, FloatArray, FloatArray, str]:
    """Validate the arguments of an element-wise loss's backward pass."""
    input, target = _check_pair(input, target)
    reduction = check_reduction(reduction)
    shape = input.shape if reduction == "none" else ()
    return check_grad_output(grad_output, shape, input, "input"), input, target, reduction


def _reduce(loss: FloatArray, reduction: str) -> FloatArray:
    if reduction == "none":
        return loss
    total = loss.sum(dtype=loss.dtype)
    if reduction == "mean":
        total = total / loss.dtype.type(loss.size)
    return np.asarray(total, dtype=loss.dtype)


def _upstream(grad_output: FloatArray, loss_size: int, reduction: str) -> FloatArray:
    """The gradient reaching each element of ℓ: g, or g / n for ``"mean"``."""
    if reduction == "mean":
        return np.asarray(grad_output / grad_output.dtype.type(loss_size), dtype=grad_output.dtype)
    return grad_output


def _check_cross_entropy(input: object, target: object) -> tuple[FloatArray, NDArray[Any], bool]:
    """Return ``(input, target, target_is_indices)``."""
    input = float_array("input", input)
    check_ndim("input", input, 2)
    if not isinstance(target, np.ndarray):
        raise TypeError(f"target must be a numpy.ndarray, got {type(target).__name__}")
    n, c = input.shape
    if np.issubdtype(target.dtype, np.integer) and target.dtype != np.bool_:
        if target.shape != (n,):
            raise ValueError(f"target of class indices must have shape ({n},), got {target.shape}")
        if target.size and (target.min() < 0 or target.max() >= c):
            raise ValueError(f"target class indices must lie in [0, {c}), got values outside")
        return input, target, True
    target = float_array("target", target)
    same_dtype(input=input, target=target)
    if target.shape != (n, c):
        raise ValueError(
            f"target of class probabilities must have shape ({n}, {c}), got {target.shape}"
        )
    return input, target, False


# --------------------------------------------------------------------------- loops


def _reduce_loop(loss: FloatArray, reduction: str) -> FloatArray:
    if reduction == "none":
        return loss
    total = 0.0
    for idx in np.ndindex(loss.shape):
        total += real(loss[idx])
    if reduction == "mean":
        total /= loss.size
    return np.asarray(total, dtype=loss.dtype)


def _upstream_at(grad_output: FloatArray, idx: tuple[int, ...], size: int, reduction: str) -> float:
    if reduction == "none":
        return float(grad_output[idx])
    if reduction == "mean":
        return float(grad_output) / size
    return float(grad_output)


def _sign(value: float) -> float:
    return (value > 0) - (value < 0)


def _elementwise_loop(
    input: FloatArray, target: FloatArray, term: Any, reduction: str
) -> FloatArray:
    loss = np.empty_like(input)
    for idx in np.ndindex(input.shape):
        loss[idx] = term(real(input[idx]), real(target[idx]))
    return _reduce_loop(loss, reduction)


def _elementwise_backward_loop(
    grad_output: FloatArray,
    input: FloatArray,
    target: FloatArray,
    derivative: Any,
    reduction: str,
) -> FloatArray:
    grad_input = np.empty_like(input)
    for idx in np.ndindex(input.shape):
        upstream = _upstream_at(grad_output, idx, input.size, reduction)
        grad_input[idx] = upstream * derivative(real(input[idx]), real(target[idx]))
    return grad_input


def _clamped_log(value: float) -> float:
    return at_least(log(value), LOG_CLAMP)


def _bce_term(p: float, y: float) -> float:
    return -(y * _clamped_log(p) + (1.0 - y) * _clamped_log(1.0 - p))


def _bce_logits_term(z: float, y: float) -> float:
    return max(z, 0.0) - z * y + math.log1p(math.exp(-abs(z)))


def l1_loss_loop(input: FloatArray, target: FloatArray, reduction: str = "mean") -> FloatArray:
    """``ℓ = |x − y|`` element by element, then the reduction."""
    input, target = _check_pair(input, target)
    reduction = check_reduction(reduction)
    return _elementwise_loop(input, target, lambda x, y: abs(x - y), reduction)


def l1_loss_backward_loop(
    grad_output: FloatArray, input: FloatArray, target: FloatArray, reduction: str = "mean"
) -> FloatArray:
    """``g · sign(x − y)``, 0 where ``x == y``."""
    grad_output, input, target, reduction = _check_backward(grad_output, input, target, reduction)
    return _elementwise_backward_loop(
        grad_output, input, target, lambda x, y: _sign(x - y), reduction
    )


def mse_loss_loop(input: FloatArray, target: FloatArray, reduction: str = "mean") -> FloatArray:
    """``ℓ = (x − y)²`` element by element, then the reduction."""
    input, target = _check_pair(input, target)
    reduction = check_reduction(reduction)
    return _elementwise_loop(input, target, lambda x, y: (x - y) ** 2, reduction)


def mse_loss_backward_loop(
    grad_output: FloatArray, input: FloatArray, target: FloatArray, reduction: str = "mean"
) -> FloatArray:
    """``g · 2 (x − y)``."""
    grad_output, input, target, reduction = _check_backward(grad_output, input, target, reduction)
    return _elementwise_backward_loop(
        grad_output, input, target, lambda x, y: 2.0 * (x - y), reduction
    )


def binary_cross_entropy_loop(
    input: FloatArray, target: FloatArray, reduction: str = "mean"
) -> FloatArray:
    """``ℓ = −[y log p + (1 − y) log(1 − p)]``, each log clamped at −100."""
    input, target = _check_pair(input, target)
    reduction = check_reduction(reduction)
    _check_probabilities(input)
    return _elementwise_loop(input, target, _bce_term, reduction)


def binary_cross_entropy_backward_loop(
    grad_output: FloatArray, input: FloatArray, target: FloatArray, reduction: str = "mean"
) -> FloatArray:
    """``g · (p − y) / max(p (1 − p), ε)``, the product p(1 − p) formed in the input's dtype."""
    grad_output, input, target, reduction = _check_backward(grad_output, input, target, reduction)
    _check_probabilities(input)
    dtype = input.dtype.type

    def derivative(p: float, y: float) -> float:
        # torch forms p(1 − p) in the input's precision before comparing with ε.
        spread: float = real(dtype(p) * (dtype(1.0) - dtype(p)))
        return (p - y) / at_least(spread, BCE_EPSILON)

    return _elementwise_backward_loop(grad_output, input, target, derivative, reduction)


def binary_cross_entropy_with_logits_loop(
    input: FloatArray, target: FloatArray, reduction: str = "mean"
) -> FloatArray:
    """``ℓ = max(z, 0) − z y + log(1 + e^{−|z|})`` element by element."""
    input, target = _check_pair(input, target)
    reduction = check_reduction(reduction)
    return _elementwise_loop(input, target, _bce_logits_term, reduction)


def binary_cross_entropy_with_logits_backward_loop(
    grad_output: FloatArray, input: FloatArray, target: FloatArray, reduction: str = "mean"
) -> FloatArray:
    """``g · (σ(z) − y)``: the BCE derivative after the σ'(z) factor cancels."""
    grad_output, input, target, reduction = _check_backward(grad_output, input, target, reduction)
    return _elementwise_backward_loop(
        grad_output, input, target, lambda z, y: sigmoid_scalar(z) - y, reduction
    )


def _target_row(target: NDArray[Any], is_indices: bool, n: int, c: int) -> list[float]:
    if is_indices:
        return [1.0 if k == int(target[n]) else 0.0 for k in range(c)]
    return [float(target[n, k]) for k in range(c)]


def cross_entropy_loop(
    input: FloatArray, target: NDArray[Any], reduction: str = "mean"
) -> FloatArray:
    """``ℓ_n = −Σ_c y_nc (x_nc − m_n − log Σ_k e^{x_nk − m_n})`` example by example."""
    input, target, is_indices = _check_cross_entropy(input, target)
    reduction = check_reduction(reduction)
    batch, classes = input.shape
    loss = np.empty(batch, dtype=input.dtype)
    for n in range(batch):
        log_probs = log_softmax_lane([float(v) for v in input[n]])
        y = _target_row(target, is_indices, n, classes)
        loss[n] = -sum(y[c] * log_probs[c] for c in range(classes))
    return _reduce_loop(loss, reduction)


def cross_entropy_backward_loop(
    grad_output: FloatArray, input: FloatArray, target: NDArray[Any], reduction: str = "mean"
) -> FloatArray:
    """``∂L/∂x_nc = g_n (softmax(x_n)_c Σ_k y_nk − y_nc)``, ``ŷ − y`` for one-hot targets."""
    input, target, is_indices = _check_cross_entropy(input, target)
    reduction = check_reduction(reduction)
    batch, classes = input.shape
    shape = (batch,) if reduction == "none" else ()
    grad_output = check_grad_output(grad_output, shape, input, "input")
    grad_input = np.empty_like(input)
    for n in range(batch):
        probs = softmax_lane([float(v) for v in input[n]])
        y = _target_row(target, is_indices, n, classes)
        mass = sum(y)
        upstream = _upstream_at(grad_output, (n,), batch, reduction)
        for c in range(classes):
            grad_input[n, c] = upstream * (probs[c] * mass - y[c])
    return grad_input


# ---------------------------------------------------------------------- vectorized


def l1_loss_vectorized(
    input: FloatArray, target: FloatArray, reduction: str = "mean"
) -> FloatArray:
    """``reduce(|x − y|)``."""
    input, target = _check_pair(input, target)
    reduction = check_reduction(reduction)
    loss = np.subtract(input, target, out=np.empty_like(input))
    np.abs(loss, out=loss)
    return _reduce(loss, reduction)


def l1_loss_backward_vectorized(
    grad_output: FloatArray, input: FloatArray, target: FloatArray, reduction: str = "mean"
) -> FloatArray:
    """``g · sign(x − y)``."""
    grad_output, input, target, reduction = _check_backward(grad_output, input, target, reduction)
    difference = np.subtract(input, target, out=np.empty_like(input))
    # Not in place: numpy's in-place sign loop is many times slower than its out-of-place one.
    grad_input = np.sign(difference, out=np.empty_like(input))
    del difference
    grad_input *= _upstream(grad_output, input.size, reduction)
    return grad_input


def mse_loss_vectorized(
    input: FloatArray, target: FloatArray, reduction: str = "mean"
) -> FloatArray:
    """``reduce((x − y)²)``."""
    input, target = _check_pair(input, target)
    reduction = check_reduction(reduction)
    loss = np.subtract(input, target, out=np.empty_like(input))
    np.square(loss, out=loss)
    return _reduce(loss, reduction)


def mse_loss_backward_vectorized(
    grad_output: FloatArray, input: FloatArray, target: FloatArray, reduction: str = "mean"
) -> FloatArray:
    """``2 g (x − y)``."""
    grad_output, input, target, reduction = _check_backward(grad_output, input, target, reduction)
    grad_input = np.subtract(input, target, out=np.empty_like(input))
    grad_input *= 2 * _upstream(grad_output, input.size, reduction)
    return grad_input


def binary_cross_entropy_vectorized(
    input: FloatArray, target: FloatArray, reduction: str = "mean"
) -> FloatArray:
    """``reduce(−[y max(log p, −100) + (1 − y) max(log(1 − p), −100)])``."""
    input, target = _check_pair(input, target)
    reduction = check_reduction(reduction)
    _check_probabilities(input)
    with np.errstate(divide="ignore"):  # log(0) = −inf, clamped just below
        log_p = np.log(input, out=np.empty_like(input))
        log_q = np.negative(input, out=np.empty_like(input))
        np.log1p(log_q, out=log_q)
    np.maximum(log_p, LOG_CLAMP, out=log_p)
    np.maximum(log_q, LOG_CLAMP, out=log_q)
    # −[y log p + (1 − y) log q] = y (log q − log p) − log q
    np.subtract(log_q, log_p, out=log_p)
    log_p *= target
    log_p -= log_q
    return _reduce(log_p, reduction)


def binary_cross_entropy_backward_vectorized(
    grad_output: FloatArray, input: FloatArray, target: FloatArray, reduction: str = "mean"
) -> FloatArray:
    """``g (p − y) / max(p (1 − p), ε)``."""
    grad_output, input, target, reduction = _check_backward(grad_output, input, target, reduction)
    _check_probabilities(input)
    spread = np.subtract(1.0, input, out=np.empty_like(input))
    spread *= input
    np.maximum(spread, input.dtype.type(BCE_EPSILON), out=spread)
    grad_input = np.subtract(input, target, out=np.empty_like(input))
    grad_input /= spread
    grad_input *= _upstream(grad_output, input.size, reduction)
    return grad_input


def binary_cross_entropy_with_logits_vectorized(
    input: FloatArray, target: FloatArray, reduction: str = "mean"
) -> FloatArray:
    """``reduce(max(z, 0) − z y + log1p(e^{−|z|}))``."""
    input, target = _check_pair(input, target)
    reduction = check_reduction(reduction)
    # ``out=`` keeps 0-d inputs as arrays: a plain ufunc call would return a scalar.
    loss = np.abs(input, out=np.empty_like(input))
    np.negative(loss, out=loss)
    np.exp(loss, out=loss)
    np.log1p(loss, out=loss)
    term = np.maximum(input, 0.0, out=np.empty_like(input))
    loss += term
    loss -= np.multiply(input, target, out=term)
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits_backward_vectorized(
    grad_output: FloatArray, input: FloatArray, target: FloatArray, reduction: str = "mean"
) -> FloatArray:
    """``g (σ(z) − y)``."""
    grad_output, input, target, reduction = _check_backward(grad_output, input, target, reduction)
    grad_input = sigmoid_array(input)
    grad_input -= target
    grad_input *= _upstream(grad_output, input.size, reduction)
    return grad_input


def cross_entropy_vectorized(
    input: FloatArray, target: NDArray[Any], reduction: str = "mean"
) -> FloatArray:
    """``reduce(−Σ_c y_c log_softmax(x)_c)``; for indices, ``logsumexp(x_n) − x_n[t_n]``."""
    input, target, is_indices = _check_cross_entropy(input, target)
    reduction = check_reduction(reduction)
    if is_indices:
        # ℓ_n = log Σ_c e^{x_c − m} − (x_t − m): the shift cancels before the rounding-prone sum
        m, _, total = exp_shifted(input, 1)
        log_total = np.log(total[:, 0])
        loss = log_total - (input[np.arange(input.shape[0]), target] - m[:, 0])
    else:
        log_probs = log_softmax_array(input, 1)  # −Σ_c y_c log_softmax(x)_c
        log_probs *= target
        loss = -log_probs.sum(axis=1)
    return _reduce(loss, reduction)


def cross_entropy_backward_vectorized(
    grad_output: FloatArray, input: FloatArray, target: NDArray[Any], reduction: str = "mean"
) -> FloatArray:
    """``g_n (softmax(x_n) Σ_k y_nk − y_n)``."""
    input, target, is_indices = _check_cross_entropy(input, target)
    reduction = check_reduction(reduction)
    batch = input.shape[0]
    shape = (batch,) if reduction == "none" else ()
    grad_output = check_grad_output(grad_output, shape, input, "input")
    upstream = _upstream(grad_output, batch, reduction)
    per_row = upstream[:, None] if reduction == "none" else upstream
    _, probs, total = exp_shifted(input, 1)
    if is_indices:
        # g (ŷ − y): ŷ = e / S scaled by g in one pass, then g subtracted at the class.
        probs *= np.divide(per_row, total, out=total)
        probs[np.arange(batch), target] -= upstream
    else:
        probs *= np.divide(target.sum(axis=1, keepdims=True), total, out=total)
        probs -= target
        probs *= per_row
    return probs
