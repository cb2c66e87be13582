r"""Losses and their input gradients, with torch's ``reduction`` semantics.

Every loss first forms a per-element (or per-example) loss ``ℓ``, then reduces:
``"none"`` returns ``ℓ``, ``"sum"`` returns ``Σ ℓ`` and ``"mean"`` returns
``Σ ℓ / n``, n being the number of elements of ``ℓ`` (the batch size for
``cross_entropy`` with probability targets). Two losses divide otherwise, as
torch: ``nll_loss`` and ``cross_entropy`` with class indices divide by the total
weight ``D = Σ_n w_{y_n}`` of the rows that are not ignored (their count without
weights), and ``kl_div``'s ``"batchmean"`` divides by ``input.shape[0]``. The
backward takes ``grad_output`` of the reduced shape (a 0-d array for
``"mean"`` and ``"sum"``) and returns ``∂L/∂input``; with ``"mean"`` every
element's gradient is divided by the same divisor.

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
    smooth_l1_loss   ℓ = ½ d²/β if |d| < β else |d| − ½β   (d = x − y; β = 0 is l1_loss)
                     ∂ℓ/∂x = d/β if |d| < β else sign(d)  = clip(d/β, −1, 1)
    huber_loss       ℓ = ½ d² if |d| < δ else δ(|d| − ½δ)  (= δ · smooth_l1_loss with β = δ)
                     ∂ℓ/∂x = d if |d| < δ else δ sign(d)   = clip(d, −δ, δ)
    kl_div           (x = log q; y = p, or log p with log_target)
                     ℓ = y log y − y x  (0 log 0 = 0),  or  e^y (y − x)
                     ∂ℓ/∂x = −y,  or  −e^y

Both pieces of smooth_l1_loss and huber_loss meet with equal value and slope
at |d| = β (δ), so which side takes the tie does not matter; the vectorized
versions use ``m = min(|d|, β)``: ``ℓ = ½ m²/β + (|d| − m)``.

nll_loss and cross_entropy take class weights ``w`` (C,), an ``ignore_index``
and, for cross_entropy, a label smoothing ε ∈ [0, 1]. With ``x`` log-probabilities
for nll_loss, ``ℓ_n = −w_{y_n} x_{n,y_n}``, 0 for a row with ``y_n =
ignore_index``, and ``"mean"`` = Σ_n ℓ_n / D. cross_entropy smooths the target
to ``y' = (1 − ε) y + ε/C`` and weights it, ``t_{n,c} = w_c y'_{n,c}``:

    ℓ_n = −Σ_c t_{n,c} log p_{n,c}  = (1 − ε) N_n + (ε/C) S_n,
          N_n = −w_{y_n} log p_{n,y_n},   S_n = −Σ_c w_c log p_{n,c}

for class indices (both 0 for an ignored row; the mean is (1 − ε) ΣN/D + (ε/C)
ΣS/D), and the same ℓ_n with ``y'`` from the probabilities (the mean divides
by N; ``ignore_index`` must then be negative). The gradient runs through
log_softmax: with ``a_n`` the upstream gradient reaching row n (g_n, g, g/D or
g/N) and ``G = ∂L/∂log p = −a_n t_n``,

    ∂L/∂x_{n,c} = G_{n,c} − p_{n,c} Σ_k G_{n,k} = a_n (p_{n,c} Σ_k t_{n,k} − t_{n,c}),

which is ``a_n (p − onehot(y))`` only for w = 1 and ε = 0. When D = 0 (every
row ignored, or every target class weighted 0) torch's mean is 0/0 = NaN, and
its chain rule makes the gradient of each row that is not ignored NaN (w_y · g/0
= 0 · inf); the references follow it, silently.
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
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from reference_impl._scalars import at_least, log, real
from reference_impl._validation import (
    FloatArray,
    check_bool,
    check_grad_output,
    check_ndim,
    check_reduction,
    float_array,
    holds_symbols,
    int_scalar,
    same_dtype,
    scalar,
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


@dataclass(frozen=True)
class _Classes:
    """The checked arguments of ``nll_loss`` and ``cross_entropy``.

    ``ignored`` marks the rows whose class index is ``ignore_index`` (none for
    probability targets); ``safe_target`` holds their index as 0, so that it can
    index ``input``; ``weight`` is ``None`` when absent.
    """

    input: FloatArray
    target: NDArray[Any]
    indices: bool
    weight: FloatArray | None
    ignore_index: int
    reduction: str
    smoothing: float
    ignored: NDArray[np.bool_]
    safe_target: NDArray[np.intp]

    @property
    def shape(self) -> tuple[int, int]:
        n, c = self.input.shape
        return n, c

    def class_weights(self) -> FloatArray:
        """``w``, or ones when there is no weight."""
        if self.weight is None:
            return np.ones(self.input.shape[1], dtype=self.input.dtype)
        return self.weight


def _check_classes(
    input: object,
    target: object,
    weight: object,
    ignore_index: object,
    reduction: object,
    label_smoothing: object = 0.0,
    *,
    indices_only: bool = False,
) -> _Classes:
    """Validate the arguments of ``nll_loss`` (``indices_only``) and ``cross_entropy``."""
    input = float_array("input", input)
    check_ndim("input", input, 2)
    n, c = input.shape
    if not isinstance(target, np.ndarray):
        raise TypeError(f"target must be a numpy.ndarray, got {type(target).__name__}")
    if weight is not None:
        weight = float_array("weight", weight)
        same_dtype(input=input, weight=weight)
        if weight.shape != (c,):
            raise ValueError(f"weight must have shape ({c},), one per class, got {weight.shape}")
    ignore_index = int_scalar("ignore_index", ignore_index)
    reduction = check_reduction(reduction)
    smoothing = scalar("label_smoothing", label_smoothing)
    if not 0 <= smoothing <= 1:
        raise ValueError(f"label_smoothing must lie in [0, 1], got {label_smoothing!r}")
    indices = np.issubdtype(target.dtype, np.integer) and target.dtype != np.bool_
    if indices:
        if target.shape != (n,):
            raise ValueError(f"target of class indices must have shape ({n},), got {target.shape}")
        ignored = target == ignore_index
        outside = ~ignored & ((target < 0) | (target >= c))
        if outside.any():
            raise ValueError(
                f"target class indices must lie in [0, {c}) or equal ignore_index="
                f"{ignore_index}, got {target[outside][0]}"
            )
        safe = np.where(ignored, 0, target).astype(np.intp)
    else:
        if indices_only:
            raise TypeError(
                f"target must hold class indices (an integer array), got dtype {target.dtype}"
            )
        target = float_array("target", target)
        same_dtype(input=input, target=target)
        if target.shape != (n, c):
            raise ValueError(
                f"target of class probabilities must have shape ({n}, {c}), got {target.shape}"
            )
        if ignore_index >= 0:
            raise ValueError(
                f"ignore_index={ignore_index} is not supported with probability targets "
                "(torch allows only a negative one, which ignores nothing)"
            )
        ignored = np.zeros(n, dtype=bool)
        safe = np.zeros(n, dtype=np.intp)
    return _Classes(
        input, target, bool(indices), weight, ignore_index, reduction, smoothing, ignored, safe
    )


def _class_upstream(classes: _Classes, grad_output: object) -> FloatArray:
    n = classes.shape[0]
    shape = (n,) if classes.reduction == "none" else ()
    return check_grad_output(grad_output, shape, classes.input, "input")


def _ieee_divide(a: float, b: float) -> float:
    """``a / b`` as IEEE 754 divides: ``±inf`` for a nonzero ``a`` over 0, NaN for 0/0.

    torch divides by the total weight this way when it is 0 (every row ignored,
    or every weight of a target class 0); Python would raise ZeroDivisionError.
    """
    if b != 0 or math.isnan(b):
        return a / b
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _check_kl_reduction(reduction: object) -> str:
    if reduction not in ("mean", "batchmean", "sum", "none"):
        raise ValueError(
            f"reduction must be 'mean', 'batchmean', 'sum' or 'none', got {reduction!r}"
        )
    return str(reduction)


def _check_hyper(name: str, value: object, *, positive: bool) -> float:
    """``beta`` of smooth_l1_loss (≥ 0) or ``delta`` of huber_loss (> 0)."""
    result = scalar(name, value, minimum=0.0)
    if positive and result == 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return result


def _kl_divisor(input: FloatArray, reduction: str) -> int:
    """What the summed KL loss is divided by: n elements, the batch ``input.shape[0]``, or 1."""
    if reduction == "mean":
        return input.size
    if reduction == "batchmean":
        return input.shape[0] if input.ndim else 1
    return 1


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


def _total_weight_loop(classes: _Classes) -> float:
    """``D = Σ_n w_{y_n}`` over the rows that are not ignored (their count without weights)."""
    total = 0.0
    for n in range(classes.shape[0]):
        if not classes.ignored[n]:
            y = int(classes.target[n])
            total += 1.0 if classes.weight is None else float(classes.weight[y])
    return total


def _weights_loop(classes: _Classes) -> list[float]:
    return [float(w) for w in classes.class_weights()]


def nll_loss_loop(
    input: FloatArray,
    target: NDArray[Any],
    weight: FloatArray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> FloatArray:
    """``ℓ_n = −w_{y_n} x_{n, y_n}`` (0 where ``y_n = ignore_index``); the mean divides by ``D``.

    ``D = Σ_n w_{y_n}`` over the rows that are not ignored: NaN when it is 0, as torch.
    """
    classes = _check_classes(input, target, weight, ignore_index, reduction, indices_only=True)
    batch, _ = classes.shape
    w = _weights_loop(classes)
    loss = np.empty(batch, dtype=classes.input.dtype)
    for n in range(batch):
        y = int(classes.safe_target[n])
        loss[n] = 0.0 if classes.ignored[n] else -w[y] * float(classes.input[n, y])
    if classes.reduction != "mean":
        return _reduce_loop(loss, classes.reduction)
    total = sum(float(v) for v in loss)
    return np.asarray(_ieee_divide(total, _total_weight_loop(classes)), dtype=loss.dtype)


def nll_loss_backward_loop(
    grad_output: FloatArray,
    input: FloatArray,
    target: NDArray[Any],
    weight: FloatArray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> FloatArray:
    """``∂L/∂x_{n,c} = −w_{y_n} a_n 1[c = y_n]`` with ``a_n = g_n``, ``g`` or ``g / D``."""
    classes = _check_classes(input, target, weight, ignore_index, reduction, indices_only=True)
    grad_output = _class_upstream(classes, grad_output)
    batch, count = classes.shape
    w = _weights_loop(classes)
    total = _total_weight_loop(classes)
    grad_input = np.zeros_like(classes.input)
    for n in range(batch):
        if classes.ignored[n]:
            continue
        y = int(classes.target[n])
        if classes.reduction == "none":
            upstream = float(grad_output[n])
        elif classes.reduction == "sum":
            upstream = float(grad_output)
        else:
            upstream = _ieee_divide(float(grad_output), total)
        for c in range(count):
            grad_input[n, c] = -w[y] * upstream if c == y else 0.0
    return grad_input


def _smoothed_row(classes: _Classes, n: int) -> list[float]:
    """``w_c y'_{n,c}``: the weighted target row, smoothed as ``(1 − ε) y + ε / C``."""
    _, count = classes.shape
    eps = classes.smoothing
    w = _weights_loop(classes)
    if classes.indices:
        y = [1.0 if c == int(classes.target[n]) else 0.0 for c in range(count)]
    else:
        y = [float(v) for v in classes.target[n]]
    if eps > 0:
        y = [(1.0 - eps) * v + eps / count for v in y]
    return [w[c] * y[c] for c in range(count)]


def cross_entropy_loop(
    input: FloatArray,
    target: NDArray[Any],
    weight: FloatArray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> FloatArray:
    """``ℓ_n = −Σ_c w_c y'_{n,c} log_softmax(x_n)_c``, reduced as torch does.

    Class indices: ``y'`` is the one-hot row smoothed to ``(1 − ε) y + ε/C``,
    ``ℓ_n = (1 − ε) N_n + (ε/C) S_n`` with ``N_n = −w_{y_n} log p_{n,y_n}`` and
    ``S_n = −Σ_c w_c log p_{n,c}``, both 0 for an ignored row; the mean divides
    each sum by ``D = Σ_n w_{y_n}`` (rows not ignored), as
    ``(1 − ε) ΣN / D + (ε/C) ΣS / D``. Probabilities: ``y' = (1 − ε) y + ε/C``
    and the mean divides by the batch size N.
    """
    classes = _check_classes(input, target, weight, ignore_index, reduction, label_smoothing)
    batch, count = classes.shape
    eps = classes.smoothing
    w = _weights_loop(classes)
    nll = [0.0] * batch
    smooth = [0.0] * batch
    for n in range(batch):
        if classes.ignored[n]:
            continue
        log_p = log_softmax_lane([float(v) for v in classes.input[n]])
        if classes.indices:
            y = int(classes.target[n])
            nll[n] = -w[y] * log_p[y]
            smooth[n] = -sum(w[c] * log_p[c] for c in range(count))
        else:
            t = _smoothed_row(classes, n)
            nll[n] = -sum(t[c] * log_p[c] for c in range(count))
    dtype = classes.input.dtype
    if not classes.indices or eps == 0:
        # one term per row: the probability loss (already smoothed), or the plain NLL
        loss = np.asarray(nll, dtype=dtype)
        if classes.reduction != "mean" or not classes.indices:
            return _reduce_loop(loss, classes.reduction)
        return np.asarray(_ieee_divide(sum(nll), _total_weight_loop(classes)), dtype=dtype)
    if classes.reduction == "none":
        return np.asarray(
            [(1.0 - eps) * nll[n] + eps / count * smooth[n] for n in range(batch)], dtype=dtype
        )
    if classes.reduction == "sum":
        return np.asarray((1.0 - eps) * sum(nll) + eps / count * sum(smooth), dtype=dtype)
    total = _total_weight_loop(classes)
    value = (1.0 - eps) * _ieee_divide(sum(nll), total)
    value += eps / count * _ieee_divide(sum(smooth), total)
    return np.asarray(value, dtype=dtype)


def cross_entropy_backward_loop(
    grad_output: FloatArray,
    input: FloatArray,
    target: NDArray[Any],
    weight: FloatArray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> FloatArray:
    """``∂L/∂x_{n,c} = G_{n,c} − p_{n,c} Σ_k G_{n,k}``: log_softmax's backward of ``G = ∂L/∂log p``.

    ``G_{n,c} = −a_n w_c y'_{n,c}``, ``a_n`` the upstream gradient of row n
    (``g / D`` for the mean of class indices, ``g / N`` for probabilities);
    for class indices, ``(1 − ε)`` of it reaches the target class and ``ε/C``
    every class, each scaled by ``1/D``. With ``w = 1`` and ``ε = 0`` this is
    ``p − onehot(y)``; with weights or smoothing it is not (``Σ_c G_{n,c}`` is no
    longer ``−a_n``).
    """
    classes = _check_classes(input, target, weight, ignore_index, reduction, label_smoothing)
    grad_output = _class_upstream(classes, grad_output)
    batch, count = classes.shape
    eps = classes.smoothing
    w = _weights_loop(classes)
    mean_of_indices = classes.indices and classes.reduction == "mean"
    total = _total_weight_loop(classes) if mean_of_indices else float(batch)
    grad_input = np.zeros_like(classes.input)
    for n in range(batch):
        if classes.ignored[n]:
            continue
        g = float(grad_output[n] if classes.reduction == "none" else grad_output)
        probs = softmax_lane([float(v) for v in classes.input[n]])
        if classes.indices:
            y = int(classes.target[n])
            target_share = (1.0 - eps) * g
            class_share = eps / count * g
            if classes.reduction == "mean":
                target_share = _ieee_divide(target_share, total)
                class_share = _ieee_divide(class_share, total)
            upstream = [-w[c] * class_share if eps > 0 else 0.0 for c in range(count)]
            upstream[y] += -w[y] * target_share
        else:
            a = g / total if classes.reduction == "mean" else g
            t = _smoothed_row(classes, n)
            upstream = [-a * t[c] for c in range(count)]
        row_sum = sum(upstream)
        for c in range(count):
            grad_input[n, c] = upstream[c] - probs[c] * row_sum
    return grad_input


def _smooth_l1_term(d: float, beta: float) -> float:
    a = abs(d)
    return 0.5 * d * d / beta if a < beta else a - 0.5 * beta


def _smooth_l1_derivative(d: float, beta: float) -> float:
    return d / beta if abs(d) < beta else _sign(d)


def smooth_l1_loss_loop(
    input: FloatArray, target: FloatArray, reduction: str = "mean", beta: float = 1.0
) -> FloatArray:
    """``ℓ = ½ d² / β`` where ``|d| < β``, else ``|d| − ½ β`` (``d = x − y``); β = 0 is L1."""
    input, target = _check_pair(input, target)
    reduction = check_reduction(reduction)
    beta = _check_hyper("beta", beta, positive=False)
    return _elementwise_loop(input, target, lambda x, y: _smooth_l1_term(x - y, beta), reduction)


def smooth_l1_loss_backward_loop(
    grad_output: FloatArray,
    input: FloatArray,
    target: FloatArray,
    reduction: str = "mean",
    beta: float = 1.0,
) -> FloatArray:
    """``g · d / β`` where ``|d| < β``, else ``g · sign(d)``."""
    grad_output, input, target, reduction = _check_backward(grad_output, input, target, reduction)
    beta = _check_hyper("beta", beta, positive=False)
    return _elementwise_backward_loop(
        grad_output, input, target, lambda x, y: _smooth_l1_derivative(x - y, beta), reduction
    )


def _huber_term(d: float, delta: float) -> float:
    a = abs(d)
    return 0.5 * d * d if a < delta else delta * (a - 0.5 * delta)


def _huber_derivative(d: float, delta: float) -> float:
    return d if abs(d) < delta else delta * _sign(d)


def huber_loss_loop(
    input: FloatArray, target: FloatArray, reduction: str = "mean", delta: float = 1.0
) -> FloatArray:
    """``ℓ = ½ d²`` where ``|d| < δ``, else ``δ (|d| − ½ δ)``: δ times smooth_l1 with β = δ."""
    input, target = _check_pair(input, target)
    reduction = check_reduction(reduction)
    delta = _check_hyper("delta", delta, positive=True)
    return _elementwise_loop(input, target, lambda x, y: _huber_term(x - y, delta), reduction)


def huber_loss_backward_loop(
    grad_output: FloatArray,
    input: FloatArray,
    target: FloatArray,
    reduction: str = "mean",
    delta: float = 1.0,
) -> FloatArray:
    """``g · d`` where ``|d| < δ``, else ``g · δ sign(d)``: ``d`` clipped to ``[−δ, δ]``."""
    grad_output, input, target, reduction = _check_backward(grad_output, input, target, reduction)
    delta = _check_hyper("delta", delta, positive=True)
    return _elementwise_backward_loop(
        grad_output, input, target, lambda x, y: _huber_derivative(x - y, delta), reduction
    )


def _exp(value: float) -> float:
    """``e^value``, ``inf`` where it overflows (Python raises OverflowError)."""
    try:
        return math.exp(value)
    except OverflowError:
        return math.inf


def _xlogx(t: float) -> float:
    """``t log t`` with ``0 log 0 = 0`` (torch's ``xlogy(t, t)``); NaN for a negative ``t``."""
    if t == 0:
        return 0.0
    return t * math.log(t) if t > 0 else math.nan


def _kl_term(x: float, t: float, log_target: bool) -> float:
    if log_target:
        return _exp(t) * (t - x)
    return _xlogx(t) - t * x


def kl_div_loop(
    input: FloatArray, target: FloatArray, reduction: str = "mean", log_target: bool = False
) -> FloatArray:
    """``ℓ = t (log t − x)`` (``x = log q``; 0 where ``t = 0``), or ``e^t (t − x)`` (log targets).

    ``"batchmean"`` divides the sum by ``input.shape[0]`` (the KL divergence per
    example); ``"mean"`` by the number of elements, as torch.
    """
    input, target = _check_pair(input, target)
    reduction = _check_kl_reduction(reduction)
    log_target = check_bool("log_target", log_target)
    loss = np.empty_like(input)
    for index in np.ndindex(input.shape):
        loss[index] = _kl_term(float(input[index]), float(target[index]), log_target)
    if reduction == "none":
        return loss
    total = sum(float(loss[index]) for index in np.ndindex(loss.shape))
    return np.asarray(_ieee_divide(total, _kl_divisor(input, reduction)), dtype=loss.dtype)


def kl_div_backward_loop(
    grad_output: FloatArray,
    input: FloatArray,
    target: FloatArray,
    reduction: str = "mean",
    log_target: bool = False,
) -> FloatArray:
    """``∂ℓ/∂x = −t`` (or ``−e^t`` for log targets), times the reduction's ``g / divisor``."""
    input, target = _check_pair(input, target)
    reduction = _check_kl_reduction(reduction)
    log_target = check_bool("log_target", log_target)
    shape = input.shape if reduction == "none" else ()
    grad_output = check_grad_output(grad_output, shape, input, "input")
    divisor = _kl_divisor(input, reduction)
    grad_input = np.empty_like(input)
    for index in np.ndindex(input.shape):
        g = float(grad_output[index] if reduction == "none" else grad_output)
        upstream = g if reduction == "none" else _ieee_divide(g, divisor)
        t = float(target[index])
        grad_input[index] = -(_exp(t) if log_target else t) * upstream
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


def _total_weight(classes: _Classes) -> float:
    """``D = Σ_n w_{y_n}`` over the rows that are not ignored (their count without weights)."""
    kept = ~classes.ignored
    if classes.weight is None:
        return float(np.count_nonzero(kept))
    return float(classes.weight[classes.safe_target[kept]].sum(dtype=classes.input.dtype))


def _divide(a: Any, b: float, dtype: np.dtype[Any]) -> Any:
    """``a / b`` in ``dtype`` where a total weight ``b`` of 0 gives torch's inf or NaN, silently."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(a, dtype=dtype) / dtype.type(b)


def nll_loss_vectorized(
    input: FloatArray,
    target: NDArray[Any],
    weight: FloatArray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> FloatArray:
    """``−w_{y_n} x_{n, y_n}`` gathered in one indexing step; the mean divides by ``D``."""
    classes = _check_classes(input, target, weight, ignore_index, reduction, indices_only=True)
    batch, _ = classes.shape
    loss = -classes.input[np.arange(batch), classes.safe_target]
    if classes.weight is not None:
        loss *= classes.weight[classes.safe_target]
    loss[classes.ignored] = 0.0
    if classes.reduction != "mean":
        return _reduce(loss, classes.reduction)
    dtype = classes.input.dtype
    return np.asarray(_divide(loss.sum(dtype=dtype), _total_weight(classes), dtype), dtype=dtype)


def nll_loss_backward_vectorized(
    grad_output: FloatArray,
    input: FloatArray,
    target: NDArray[Any],
    weight: FloatArray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> FloatArray:
    """Zeros, and ``−w_{y_n} a_n`` scattered to ``(n, y_n)`` for every row not ignored."""
    classes = _check_classes(input, target, weight, ignore_index, reduction, indices_only=True)
    grad_output = _class_upstream(classes, grad_output)
    batch, _ = classes.shape
    dtype = classes.input.dtype
    if classes.reduction == "mean":
        upstream = _divide(grad_output, _total_weight(classes), dtype)
    else:
        upstream = grad_output
    rows = np.flatnonzero(~classes.ignored)
    values = np.broadcast_to(-upstream, (batch,))[rows]
    if classes.weight is not None:
        with np.errstate(invalid="ignore"):  # 0 · inf where the total weight is 0: NaN, as torch
            values = values * classes.weight[classes.target[rows]]
    grad_input = np.zeros_like(classes.input)
    grad_input[rows, classes.safe_target[rows]] = values
    return grad_input


def _log_probs(classes: _Classes) -> FloatArray:
    return log_softmax_array(classes.input, 1)


def cross_entropy_vectorized(
    input: FloatArray,
    target: NDArray[Any],
    weight: FloatArray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> FloatArray:
    """``reduce(−Σ_c w_c y'_c log_softmax(x)_c)``; plain indices: ``logsumexp(x_n) − x_n[y_n]``."""
    classes = _check_classes(input, target, weight, ignore_index, reduction, label_smoothing)
    batch, count = classes.shape
    eps = classes.smoothing
    dtype = classes.input.dtype
    x = classes.input
    if not classes.indices:
        t = _smoothed_targets(classes)
        log_probs = _log_probs(classes)
        log_probs *= t
        return _reduce(-log_probs.sum(axis=1), classes.reduction)
    if classes.weight is None and eps == 0 and not classes.ignored.any():
        # ℓ_n = log Σ_c e^{x_c − m} − (x_t − m): the shift cancels before the rounding-prone sum
        m, _, total = exp_shifted(x, 1)
        log_total = np.log(total[:, 0])
        loss = log_total - (x[np.arange(batch), classes.safe_target] - m[:, 0])
        return _reduce(loss, classes.reduction)
    log_probs = _log_probs(classes)
    w = classes.class_weights()
    kept = ~classes.ignored
    nll = -log_probs[np.arange(batch), classes.safe_target] * w[classes.safe_target]
    nll[classes.ignored] = 0.0
    if eps > 0:
        smooth = -(log_probs @ w)
        smooth[classes.ignored] = 0.0
    if classes.reduction == "none":
        return nll if eps == 0 else (1 - eps) * nll + eps / count * smooth
    if classes.reduction == "sum":
        total = nll.sum(dtype=dtype)
        if eps > 0:
            total = (1 - eps) * total + eps / count * smooth.sum(dtype=dtype)
        return np.asarray(total, dtype=dtype)
    weight_total = _total_weight(classes) if kept.any() else 0.0
    value = _divide(nll.sum(dtype=dtype), weight_total, dtype)
    if eps > 0:
        with np.errstate(invalid="ignore"):  # (1 − ε)·NaN + …: torch's NaN when D = 0
            value = (1 - eps) * value + eps / count * _divide(
                smooth.sum(dtype=dtype), weight_total, dtype
            )
    return np.asarray(value, dtype=dtype)


def _smoothed_targets(classes: _Classes) -> FloatArray:
    """``w_c ((1 − ε) y_{n,c} + ε/C)`` for probability targets, as a new array."""
    count = classes.shape[1]
    t = np.array(classes.target, dtype=classes.input.dtype)
    if classes.smoothing > 0:
        t *= 1 - classes.smoothing
        t += classes.smoothing / count
    if classes.weight is not None:
        t *= classes.weight
    return t


def cross_entropy_backward_vectorized(
    grad_output: FloatArray,
    input: FloatArray,
    target: NDArray[Any],
    weight: FloatArray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> FloatArray:
    """``G − softmax(x) Σ_c G_c`` with ``G = ∂L/∂log p``; ``g (ŷ − y)`` for plain class indices.

    ``G_{n,c} = −a_n w_c y'_{n,c}``: for probabilities ``a_n (softmax · Σ_c t_c − t)``
    with ``t = w y'``; for class indices ``G`` is formed explicitly (``(1 − ε) a_n``
    at the target class, ``(ε/C) a_n`` at every class), so that a total weight
    of 0 gives torch's NaN rows.
    """
    classes = _check_classes(input, target, weight, ignore_index, reduction, label_smoothing)
    grad_output = _class_upstream(classes, grad_output)
    batch, count = classes.shape
    eps = classes.smoothing
    dtype = classes.input.dtype
    per_row = grad_output if classes.reduction == "none" else np.full(batch, grad_output)
    _, probs, total = exp_shifted(classes.input, 1)
    np.divide(probs, total, out=probs)
    if not classes.indices:
        t = _smoothed_targets(classes)
        upstream = per_row / dtype.type(batch) if classes.reduction == "mean" else per_row
        probs *= t.sum(axis=1, keepdims=True)
        probs -= t
        probs *= upstream[:, None]
        return probs
    if classes.weight is None and eps == 0 and not classes.ignored.any():
        # g (ŷ − y): ŷ scaled by g, then g subtracted at the class
        upstream = per_row / dtype.type(batch) if classes.reduction == "mean" else per_row
        probs *= upstream[:, None]
        probs[np.arange(batch), classes.safe_target] -= upstream
        return probs
    w = classes.class_weights()
    kept = np.flatnonzero(~classes.ignored)
    target_share = (1 - eps) * per_row
    class_share = eps / count * per_row
    if classes.reduction == "mean":
        weight_total = _total_weight(classes)
        target_share = _divide(target_share, weight_total, dtype)
        class_share = _divide(class_share, weight_total, dtype)
    with np.errstate(invalid="ignore"):  # inf · 0 where the total weight is 0: NaN, as torch
        upstream = np.zeros_like(classes.input)
        if eps > 0:
            upstream[kept] = -class_share[kept, None] * w
        upstream[kept, classes.target[kept]] -= target_share[kept] * w[classes.target[kept]]
        row_sum = upstream.sum(axis=1, keepdims=True)
        probs *= row_sum
    np.subtract(upstream, probs, out=probs)
    return probs


def smooth_l1_loss_vectorized(
    input: FloatArray, target: FloatArray, reduction: str = "mean", beta: float = 1.0
) -> FloatArray:
    """``½ m² / β + (|d| − m)`` with ``m = min(|d|, β)``: both branches without a select."""
    input, target = _check_pair(input, target)
    reduction = check_reduction(reduction)
    beta = _check_hyper("beta", beta, positive=False)
    loss = np.subtract(input, target, out=np.empty_like(input))
    np.abs(loss, out=loss)
    if beta == 0:
        return _reduce(loss, reduction)
    m = np.minimum(loss, beta, out=np.empty_like(input))
    loss -= m
    np.square(m, out=m)
    m *= 0.5 / beta
    loss += m
    return _reduce(loss, reduction)


def smooth_l1_loss_backward_vectorized(
    grad_output: FloatArray,
    input: FloatArray,
    target: FloatArray,
    reduction: str = "mean",
    beta: float = 1.0,
) -> FloatArray:
    """``g · clip(d / β, −1, 1)``, or ``g · sign(d)`` for β = 0."""
    grad_output, input, target, reduction = _check_backward(grad_output, input, target, reduction)
    beta = _check_hyper("beta", beta, positive=False)
    grad_input = np.subtract(input, target, out=np.empty_like(input))
    if beta == 0:
        np.sign(grad_input, out=grad_input)
    else:
        grad_input /= beta
        np.clip(grad_input, -1.0, 1.0, out=grad_input)
    grad_input *= _upstream(grad_output, input.size, reduction)
    return grad_input


def huber_loss_vectorized(
    input: FloatArray, target: FloatArray, reduction: str = "mean", delta: float = 1.0
) -> FloatArray:
    """``½ m² + δ (|d| − m)`` with ``m = min(|d|, δ)``."""
    input, target = _check_pair(input, target)
    reduction = check_reduction(reduction)
    delta = _check_hyper("delta", delta, positive=True)
    loss = np.subtract(input, target, out=np.empty_like(input))
    np.abs(loss, out=loss)
    m = np.minimum(loss, delta, out=np.empty_like(input))
    loss -= m
    loss *= delta
    np.square(m, out=m)
    m *= 0.5
    loss += m
    return _reduce(loss, reduction)


def huber_loss_backward_vectorized(
    grad_output: FloatArray,
    input: FloatArray,
    target: FloatArray,
    reduction: str = "mean",
    delta: float = 1.0,
) -> FloatArray:
    """``g · clip(d, −δ, δ)``."""
    grad_output, input, target, reduction = _check_backward(grad_output, input, target, reduction)
    delta = _check_hyper("delta", delta, positive=True)
    grad_input = np.subtract(input, target, out=np.empty_like(input))
    np.clip(grad_input, -delta, delta, out=grad_input)
    grad_input *= _upstream(grad_output, input.size, reduction)
    return grad_input


def kl_div_vectorized(
    input: FloatArray, target: FloatArray, reduction: str = "mean", log_target: bool = False
) -> FloatArray:
    """``reduce(t log t − t x)`` with ``0 log 0 = 0``, or ``reduce(e^t (t − x))`` for log targets.

    ``t log t`` is ``t log(t + 1[t = 0])``: the log of 1 where ``t = 0``, exact
    elsewhere, with no select; a negative ``t`` gives NaN, as torch's ``xlogy``.
    """
    input, target = _check_pair(input, target)
    reduction = _check_kl_reduction(reduction)
    log_target = check_bool("log_target", log_target)
    if log_target:
        loss = np.subtract(target, input, out=np.empty_like(input))
        with np.errstate(over="ignore", invalid="ignore"):  # e^t = inf: inf · (t − x), as torch
            loss *= np.exp(target, out=np.empty_like(input))
    else:
        loss = np.add(target, np.equal(target, 0), out=np.empty_like(input))
        with np.errstate(invalid="ignore"):  # log of a negative target: NaN, as torch
            np.log(loss, out=loss)
        loss -= input
        loss *= target
    if reduction == "none":
        return loss
    total = loss.sum(dtype=loss.dtype)
    return np.asarray(_divide(total, _kl_divisor(input, reduction), loss.dtype), dtype=loss.dtype)


def kl_div_backward_vectorized(
    grad_output: FloatArray,
    input: FloatArray,
    target: FloatArray,
    reduction: str = "mean",
    log_target: bool = False,
) -> FloatArray:
    """``−t · g / divisor``, or ``−e^t · g / divisor`` for log targets."""
    input, target = _check_pair(input, target)
    reduction = _check_kl_reduction(reduction)
    log_target = check_bool("log_target", log_target)
    shape = input.shape if reduction == "none" else ()
    grad_output = check_grad_output(grad_output, shape, input, "input")
    if reduction == "none":
        upstream = grad_output
    else:
        upstream = _divide(grad_output, _kl_divisor(input, reduction), input.dtype)
    if log_target:
        with np.errstate(over="ignore"):
            grad_input = np.exp(target, out=np.empty_like(input))
    else:
        grad_input = np.array(target, copy=True)
    np.negative(grad_input, out=grad_input)
    with np.errstate(invalid="ignore"):
        grad_input *= upstream
    return grad_input
