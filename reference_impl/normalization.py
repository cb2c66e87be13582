r"""Normalization and dropout: batch norm, layer norm, group norm, dropout.

The three normalizations share one computation and differ only in *which*
elements share a mean and a variance (a "set") and which elements share an
affine weight γ and bias β:

=============  ============================================  ==========================
formula        one set of statistics                         γ and β indexed by
=============  ============================================  ==========================
batch_norm     one channel c, over the batch and every        the channel c
               spatial position: n = N·∏spatial elements
layer_norm     one leading index, over the trailing           the trailing position
               ``normalized_shape`` dims: n = ∏normalized
group_norm     one example and one group of C/G consecutive   the channel c
               channels (c // (C/G)), over their spatial
               positions: n = (C/G)·∏spatial
=============  ============================================  ==========================

Forward, for the elements ``x_1 … x_n`` of one set (``i`` runs over the set,
``γ_i`` and ``β_i`` are the weight and bias of element ``i``'s affine index)::

    μ   = (1/n) Σ_i x_i
    σ²  = (1/n) Σ_i (x_i − μ)²                 biased: divided by n, not n − 1
    r   = 1 / √(σ² + ε)
    x̂_i = (x_i − μ) · r
    y_i = γ_i x̂_i + β_i                        (γ = 1, β = 0 when absent)

Backward, with ``dy = ∂L/∂y`` and ``g_i = dy_i γ_i``. The affine parameters
collect over every element they touch (every set)::

    ∂L/∂β_k = Σ_{i: β_i = β_k} dy_i
    ∂L/∂γ_k = Σ_{i: γ_i = γ_k} dy_i x̂_i

The input gradient goes through x̂, and x̂ depends on every x of its set
through μ and σ². From ∂μ/∂x_j = 1/n and ∂σ²/∂x_j = 2(x_j − μ)/n
(the term Σ_i (x_i − μ) · (−1/n) vanishes because Σ_i (x_i − μ) = 0)::

    ∂x̂_i/∂x_j = r (δ_ij − 1/n) − (x_i − μ) · ½ r³ · 2(x_j − μ)/n
              = (r/n) (n δ_ij − 1 − x̂_i x̂_j)

    ∂L/∂x_j = Σ_i g_i ∂x̂_i/∂x_j
            = (r/n) (n g_j − Σ_i g_i − x̂_j Σ_i g_i x̂_i)           (three terms)
            = γ r (dy_j − mean(dy) − x̂_j mean(dy x̂))              (γ constant on the set)

The second and third terms are the gradient flowing through μ and through
σ². Treating the statistics as constants keeps the first term only,
``dx = γ r dy``: the classic slip catalogued in the errata. The formula holds
with ε included (x̂ carries it); it is exact, not a small-ε approximation.
With n = 2 and ε → 0 the two x̂ are ±1 and every upstream gradient lies in
the span of 1 and x̂, so the input gradient is of order ε / σ² only.

Batch norm in eval mode (``training=False``) normalizes with the running
statistics instead: ``x̂ = (x − running_mean) / √(running_var + ε)``. They
are constants, so ``∂L/∂x = γ dy / √(running_var + ε)`` and the gradients of
γ and β are the sums above with this x̂. The running statistics are never
differentiated and never modified.

Running statistics (``batch_norm_running_stats``), torch's update after one
training-mode call with momentum m, n values per channel::

    running_mean ← (1 − m) · running_mean + m · μ
    running_var  ← (1 − m) · running_var  + m · σ² · n / (n − 1)     (unbiased)

The batch is normalized with the biased σ² but the running variance tracks
the unbiased one, as the batch-normalization paper prescribes for inference
(Ioffe and Szegedy, 2015, Algorithm 2).

Dropout, with a boolean ``mask`` (True where the element is kept) and drop
probability p (torch's p is the probability of *dropping*)::

    y_i     = x_i · mask_i / (1 − p)          (y = 0 for p = 1)
    ∂L/∂x_i = dy_i · mask_i / (1 − p)

and ``y = x``, ``∂L/∂x = dy`` when not training. The mask is an argument so
that the formula is deterministic; torch draws it (``torch.native_dropout``
returns it beside the output).

Vectorized closed forms. Each set becomes one channel of an (N, C, L) view
(batch norm) or one row of an (R, M) view (layer norm; group norm's rows are
(n, g) pairs). ``d = x − μ`` is formed once, in the array that will be
returned, and the variance is the mean of d² (two passes, never E[x²] − μ²,
which cancels catastrophically when |μ| ≫ σ). The forward is
``y = d · (γ r) + β``. The backward expands the three terms into per-set
coefficients of d, written with r x̂ = r² d::

    ∂L/∂x = r (g − mean(g)) − r³ mean(g d) · d

For batch norm γ is constant on the set and factors out:
``∂L/∂x = γr (dy − mean(dy) − r² mean(dy d) · d)``, four in-place passes.
Layer norm and group norm form ``r g`` once, in a scratch block (for group
norm ``r γ_c`` is one coefficient per channel row), and add it to the other
two terms: ``∂L/∂x = r³ (−mean(g d)) · d + r g − r mean(g)``, three in-place
passes over the array holding d. Sums along a row are matrix-vector products
with a vector of ones (BLAS), dot products along a row ``vecdot``; only
per-set coefficients are small arrays, every pass over the data is one array
operation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from itertools import product
from typing import Any

import numpy as np

from reference_impl._scalars import real, sqrt
from reference_impl._sums import channel_sums
from reference_impl._validation import (
    FloatArray,
    check_bool,
    check_grad_output,
    check_shape,
    float_array,
    holds_symbols,
    is_int,
    same_dtype,
    scalar,
)

Gradients = tuple[FloatArray, FloatArray | None, FloatArray | None]
#: validated batch_norm arguments: x, running_mean, running_var, weight, bias, training, eps
BatchNormArguments = tuple[
    FloatArray,
    FloatArray | None,
    FloatArray | None,
    FloatArray | None,
    FloatArray | None,
    bool,
    float,
]
Index = tuple[int, ...]

# ------------------------------------------------------------------ validation
# (validators specific to this family; candidates for reference_impl/_validation.py)


def check_eps(eps: object) -> float:
    """ε > 0: a real, finite, strictly positive number."""
    value = scalar("eps", eps)
    if not value > 0:
        raise ValueError(f"eps must be positive, got {eps!r}")
    return value


def check_fraction(name: str, value: object) -> float:
    """A probability or a momentum: a real number in [0, 1]."""
    result = scalar(name, value)
    if not 0.0 <= result <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return result


def check_per_channel(name: str, array: object, channels: int) -> FloatArray | None:
    """An optional per-channel vector (weight, bias, running statistic) of length C."""
    if array is None:
        return None
    array = float_array(name, array)
    if array.shape != (channels,):
        raise ValueError(
            f"{name} must have shape ({channels},), one value per channel of x, got {array.shape}"
        )
    return array


def _more_than_one_value(x: FloatArray, n: int, what: str) -> None:
    if n <= 1:
        raise ValueError(
            f"Expected more than 1 value per {what} when training, got x of shape {x.shape}: "
            "the batch variance of a single value is 0 and its unbiased estimate undefined"
        )


# ------------------------------------------------------------------ batch norm arguments


def _check_batch_norm(
    x: object,
    running_mean: object,
    running_var: object,
    weight: object,
    bias: object,
    training: object,
    momentum: object,
    eps: object,
) -> BatchNormArguments:
    x = float_array("x", x)
    if x.ndim not in (2, 3, 4):
        raise ValueError(
            f"x must have 2, 3 or 4 dimensions, (N, C), (N, C, L) or (N, C, H, W), "
            f"got shape {x.shape}"
        )
    channels = x.shape[1]
    mean = check_per_channel("running_mean", running_mean, channels)
    var = check_per_channel("running_var", running_var, channels)
    w = check_per_channel("weight", weight, channels)
    b = check_per_channel("bias", bias, channels)
    same_dtype(x=x, running_mean=mean, running_var=var, weight=w, bias=b)
    training = check_bool("training", training)
    check_fraction("momentum", momentum)
    eps = check_eps(eps)
    if (mean is None) != (var is None):
        missing = "running_var" if var is None else "running_mean"
        raise ValueError(
            f"running_mean and running_var must both be given or both be None; {missing} is None"
        )
    if training:
        _more_than_one_value(x, x.size // channels if channels else 0, "channel")
    else:
        if mean is None or var is None:
            raise ValueError(
                "running_mean and running_var are required in eval mode (training=False)"
            )
        if not holds_symbols(var) and np.any(var < 0):
            raise ValueError("running_var must not be negative")
    return x, mean, var, w, b, training, eps


def _check_running_stats(
    x: object, running_mean: object, running_var: object, momentum: object
) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    x = float_array("x", x)
    if x.ndim not in (2, 3, 4):
        raise ValueError(
            f"x must have 2, 3 or 4 dimensions, (N, C), (N, C, L) or (N, C, H, W), "
            f"got shape {x.shape}"
        )
    channels = x.shape[1]
    if running_mean is None or running_var is None:
        raise TypeError("running_mean and running_var must be arrays, got None")
    mean = check_per_channel("running_mean", running_mean, channels)
    var = check_per_channel("running_var", running_var, channels)
    assert mean is not None and var is not None
    same_dtype(x=x, running_mean=mean, running_var=var)
    m = check_fraction("momentum", momentum)
    _more_than_one_value(x, x.size // channels if channels else 0, "channel")
    return x, mean, var, m


# ------------------------------------------------------------------ layer / group norm arguments


def check_normalized_shape(normalized_shape: object, x: FloatArray) -> tuple[int, ...]:
    """An int or a non-empty tuple/list of ints equal to the trailing dimensions of x."""
    if is_int(normalized_shape):
        shape: tuple[int, ...] = (int(normalized_shape),)  # type: ignore[call-overload]
    elif isinstance(normalized_shape, (tuple, list)) and all(is_int(n) for n in normalized_shape):
        shape = tuple(int(n) for n in normalized_shape)
    else:
        raise TypeError(
            f"normalized_shape must be an int or a tuple of ints, got {normalized_shape!r}"
        )
    if not shape:
        raise ValueError("normalized_shape must have at least one dimension, got ()")
    if min(shape) < 1:
        raise ValueError(f"normalized_shape must have positive dimensions, got {shape}")
    if len(shape) > x.ndim or x.shape[x.ndim - len(shape) :] != shape:
        raise ValueError(
            f"normalized_shape={shape} must equal the trailing dimensions of x, "
            f"got x of shape {x.shape}"
        )
    return shape


def _check_layer_norm(
    x: object, normalized_shape: object, weight: object, bias: object, eps: object
) -> tuple[FloatArray, tuple[int, ...], FloatArray | None, FloatArray | None, float]:
    x = float_array("x", x)
    shape = check_normalized_shape(normalized_shape, x)
    w = None if weight is None else float_array("weight", weight)
    b = None if bias is None else float_array("bias", bias)
    same_dtype(x=x, weight=w, bias=b)
    for name, array in (("weight", w), ("bias", b)):
        if array is not None and array.shape != shape:
            raise ValueError(
                f"{name} must have the shape of normalized_shape {shape}, got {array.shape}"
            )
    return x, shape, w, b, check_eps(eps)


def _check_group_norm(
    x: object, num_groups: object, weight: object, bias: object, eps: object
) -> tuple[FloatArray, int, FloatArray | None, FloatArray | None, float]:
    x = float_array("x", x)
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 dimensions (N, C, *), got shape {x.shape}")
    if not is_int(num_groups):
        raise TypeError(f"num_groups must be an int, got {num_groups!r}")
    groups = int(num_groups)  # type: ignore[call-overload]
    channels = x.shape[1]
    if groups < 1:
        raise ValueError(f"num_groups must be at least 1, got {num_groups!r}")
    if channels % groups:
        raise ValueError(f"the {channels} channels of x are not divisible by num_groups={groups}")
    w = check_per_channel("weight", weight, channels)
    b = check_per_channel("bias", bias, channels)
    same_dtype(x=x, weight=w, bias=b)
    eps = check_eps(eps)
    spatial = math.prod(x.shape[2:])
    if channels // groups * spatial == 0:
        raise ValueError(f"x of shape {x.shape} has no values in a group")
    # torch.nn.functional.group_norm's own check: N · (C/G) · ∏spatial must exceed 1
    if x.shape[0] * (channels // groups) * spatial == 1:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got x of shape {x.shape} "
            f"with num_groups={groups} (torch rejects one example with one value per group)"
        )
    return x, groups, w, b, eps


# ------------------------------------------------------------------ dropout arguments


def _check_dropout(
    x: object, mask: object, p: object, training: object
) -> tuple[FloatArray, np.ndarray[Any, np.dtype[np.bool_]] | None, float, bool]:
    x = float_array("x", x)
    p = check_fraction("p", p)
    training = check_bool("training", training)
    if mask is None:
        if training:
            raise TypeError("mask must be a boolean numpy.ndarray when training, got None")
        return x, None, p, training
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask must be a boolean numpy.ndarray, got {type(mask).__name__}")
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must have dtype bool (True where kept), got {mask.dtype}")
    check_shape("mask", mask, x.shape)
    return x, mask, p, training


def _keep_scale(p: float) -> float:
    """1 / (1 − p), the factor that keeps E[y] = x; 0 for p = 1 (everything dropped)."""
    return 0.0 if p == 1.0 else 1.0 / (1.0 - p)


# =========================================================================== loops
#
# One "set" of statistics is a list of index tuples into x. The loop versions
# compute μ, σ² and r with explicit sums over the set, then every element.


def _set_statistics_loop(x: FloatArray, members: Sequence[Index], eps: float) -> tuple[Any, Any]:
    """``(μ, r)`` of one set: μ = Σ x / n, σ² = Σ (x − μ)² / n, r = 1 / √(σ² + ε)."""
    mean, var = _set_moments_loop(x, members)
    return mean, 1.0 / sqrt(var + eps)


def _set_moments_loop(x: FloatArray, members: Sequence[Index]) -> tuple[Any, Any]:
    """``(μ, σ²)`` of one set: μ = Σ x / n, σ² = Σ (x − μ)² / n (biased)."""
    n = len(members)
    total = 0.0
    for i in members:
        total += real(x[i])
    mean = total / n
    squares = 0.0
    for i in members:
        squares += (real(x[i]) - mean) ** 2
    return mean, squares / n


def _affine_forward_loop(
    out: FloatArray,
    x: FloatArray,
    members: Sequence[Index],
    mean: float,
    rstd: float,
    affine: Sequence[Index],
    weight: FloatArray | None,
    bias: FloatArray | None,
) -> None:
    """``y_i = γ_i (x_i − μ) r + β_i`` for every element of one set."""
    for i, k in zip(members, affine, strict=True):
        gamma = 1.0 if weight is None else real(weight[k])
        beta = 0.0 if bias is None else real(bias[k])
        out[i] = gamma * (real(x[i]) - mean) * rstd + beta


def _set_backward_loop(
    grad_input: FloatArray,
    grad_weight: FloatArray | None,
    grad_bias: FloatArray | None,
    grad_output: FloatArray,
    x: FloatArray,
    members: Sequence[Index],
    mean: float,
    rstd: float,
    affine: Sequence[Index],
    weight: FloatArray | None,
    statistics_are_constant: bool,
) -> None:
    """One set's share of every gradient.

    ``dγ_k += dy_i x̂_i`` and ``dβ_k += dy_i``; then, with ``g_i = dy_i γ_i``,
    ``dx_j = (r/n)(n g_j − Σ_i g_i − x̂_j Σ_i g_i x̂_i)``, or ``dx_j = r g_j``
    when the statistics are constants (eval mode).
    """
    n = len(members)
    sum_g = 0.0
    sum_g_xhat = 0.0
    for i, k in zip(members, affine, strict=True):
        dy = real(grad_output[i])
        xhat = (real(x[i]) - mean) * rstd
        g = dy * (1.0 if weight is None else real(weight[k]))
        sum_g += g
        sum_g_xhat += g * xhat
        if grad_weight is not None:
            grad_weight[k] += dy * xhat
        if grad_bias is not None:
            grad_bias[k] += dy
    for j, k in zip(members, affine, strict=True):
        g = real(grad_output[j]) * (1.0 if weight is None else real(weight[k]))
        if statistics_are_constant:
            grad_input[j] = rstd * g
        else:
            xhat = (real(x[j]) - mean) * rstd
            grad_input[j] = rstd / n * (n * g - sum_g - xhat * sum_g_xhat)


def _accumulator(array: FloatArray | None) -> FloatArray | None:
    """A float64 accumulator for one parameter gradient (cast to x's dtype at the end)."""
    if array is None:
        return None
    return np.zeros(array.shape, dtype=object if holds_symbols(array) else np.float64)


def _cast(array: FloatArray | None, dtype: np.dtype[Any]) -> FloatArray | None:
    return None if array is None else array.astype(dtype)


def _channel_sets(shape: tuple[int, ...]) -> list[tuple[list[Index], list[Index]]]:
    """Batch norm: per channel c, every (n, c, *s) and the affine index (c,) of each."""
    batch, channels, spatial = shape[0], shape[1], shape[2:]
    sets = []
    for c in range(channels):
        members: list[Index] = [(n, c, *s) for n in range(batch) for s in np.ndindex(*spatial)]
        affine: list[Index] = [(c,)] * len(members)
        sets.append((members, affine))
    return sets


def batch_norm_loop(
    x: FloatArray,
    running_mean: FloatArray | None = None,
    running_var: FloatArray | None = None,
    weight: FloatArray | None = None,
    bias: FloatArray | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> FloatArray:
    """``y = γ (x − μ_c) / √(σ²_c + ε) + β`` channel by channel, element by element.

    Training: μ_c and the biased σ²_c of channel c over the batch and every
    spatial position. Eval: the running statistics. The running statistics are
    never modified (see ``batch_norm_running_stats``).
    """
    x, rm, rv, w, b, training, eps = _check_batch_norm(
        x, running_mean, running_var, weight, bias, training, momentum, eps
    )
    out = np.empty_like(x)
    for c, (members, affine) in enumerate(_channel_sets(x.shape)):
        if training:
            mean, rstd = _set_statistics_loop(x, members, eps)
        else:
            assert rm is not None and rv is not None
            mean, rstd = real(rm[c]), 1.0 / sqrt(real(rv[c]) + eps)
        _affine_forward_loop(out, x, members, mean, rstd, affine, w, b)
    return out


def batch_norm_backward_loop(
    grad_output: FloatArray,
    x: FloatArray,
    running_mean: FloatArray | None = None,
    running_var: FloatArray | None = None,
    weight: FloatArray | None = None,
    bias: FloatArray | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Gradients:
    """``(∂L/∂x, ∂L/∂γ, ∂L/∂β)``: the three-term dx of the module docstring per channel.

    In eval mode the running statistics are constants and ``dx = γ dy / √(rv + ε)``.
    """
    x, rm, rv, w, b, training, eps = _check_batch_norm(
        x, running_mean, running_var, weight, bias, training, momentum, eps
    )
    grad_output = check_grad_output(grad_output, x.shape, x)
    grad_input = np.empty_like(x)
    grad_weight, grad_bias = _accumulator(w), _accumulator(b)
    for c, (members, affine) in enumerate(_channel_sets(x.shape)):
        if training:
            mean, rstd = _set_statistics_loop(x, members, eps)
        else:
            assert rm is not None and rv is not None
            mean, rstd = real(rm[c]), 1.0 / sqrt(real(rv[c]) + eps)
        _set_backward_loop(
            grad_input,
            grad_weight,
            grad_bias,
            grad_output,
            x,
            members,
            mean,
            rstd,
            affine,
            w,
            statistics_are_constant=not training,
        )
    return grad_input, _cast(grad_weight, x.dtype), _cast(grad_bias, x.dtype)


def batch_norm_running_stats_loop(
    x: FloatArray, running_mean: FloatArray, running_var: FloatArray, momentum: float = 0.1
) -> tuple[FloatArray, FloatArray]:
    """The running statistics torch leaves after one training-mode ``batch_norm`` call.

    Per channel c with n values: ``(1 − m) · running_mean[c] + m · μ_c`` and
    ``(1 − m) · running_var[c] + m · σ²_c · n / (n − 1)``. New arrays; the
    arguments are not modified.
    """
    x, rm, rv, m = _check_running_stats(x, running_mean, running_var, momentum)
    new_mean = np.empty_like(rm)
    new_var = np.empty_like(rv)
    for c, (members, _) in enumerate(_channel_sets(x.shape)):
        n = len(members)
        total = 0.0
        for i in members:
            total += float(x[i])
        mean = total / n
        squares = 0.0
        for i in members:
            squares += (float(x[i]) - mean) ** 2
        unbiased = squares / (n - 1)
        new_mean[c] = (1.0 - m) * float(rm[c]) + m * mean
        new_var[c] = (1.0 - m) * float(rv[c]) + m * unbiased
    return new_mean, new_var


def _row_sets(x: FloatArray, normalized: tuple[int, ...]) -> list[tuple[list[Index], list[Index]]]:
    """Layer norm: per leading index, every trailing position and its affine index."""
    lead = x.shape[: x.ndim - len(normalized)]
    positions = list(np.ndindex(*normalized))
    return [([(*r, *k) for k in positions], positions) for r in np.ndindex(*lead)]


def layer_norm_loop(
    x: FloatArray,
    normalized_shape: int | Sequence[int],
    weight: FloatArray | None = None,
    bias: FloatArray | None = None,
    eps: float = 1e-5,
) -> FloatArray:
    """Every leading index normalized over the trailing normalized_shape dims; γ, β per element."""
    x, shape, w, b, eps = _check_layer_norm(x, normalized_shape, weight, bias, eps)
    out = np.empty_like(x)
    for members, affine in _row_sets(x, shape):
        mean, rstd = _set_statistics_loop(x, members, eps)
        _affine_forward_loop(out, x, members, mean, rstd, affine, w, b)
    return out


def layer_norm_backward_loop(
    grad_output: FloatArray,
    x: FloatArray,
    normalized_shape: int | Sequence[int],
    weight: FloatArray | None = None,
    bias: FloatArray | None = None,
    eps: float = 1e-5,
) -> Gradients:
    """``(∂L/∂x, ∂L/∂γ, ∂L/∂β)``: ``dx = (r/M)(M g − Σ g − x̂ Σ g x̂)`` per row, ``g = dy γ``."""
    x, shape, w, b, eps = _check_layer_norm(x, normalized_shape, weight, bias, eps)
    grad_output = check_grad_output(grad_output, x.shape, x)
    grad_input = np.empty_like(x)
    grad_weight, grad_bias = _accumulator(w), _accumulator(b)
    for members, affine in _row_sets(x, shape):
        mean, rstd = _set_statistics_loop(x, members, eps)
        _set_backward_loop(
            grad_input,
            grad_weight,
            grad_bias,
            grad_output,
            x,
            members,
            mean,
            rstd,
            affine,
            w,
            statistics_are_constant=False,
        )
    return grad_input, _cast(grad_weight, x.dtype), _cast(grad_bias, x.dtype)


def _group_sets(shape: tuple[int, ...], groups: int) -> list[tuple[list[Index], list[Index]]]:
    """Group norm: per example n and group k, channels k·C/G … (k+1)·C/G − 1, every position."""
    batch, channels, spatial = shape[0], shape[1], shape[2:]
    per_group = channels // groups
    sets = []
    for n, k in product(range(batch), range(groups)):
        channel_range = range(k * per_group, (k + 1) * per_group)
        members: list[Index] = [(n, c, *s) for c in channel_range for s in np.ndindex(*spatial)]
        affine: list[Index] = [(i[1],) for i in members]
        sets.append((members, affine))
    return sets


def group_norm_loop(
    x: FloatArray,
    num_groups: int,
    weight: FloatArray | None = None,
    bias: FloatArray | None = None,
    eps: float = 1e-5,
) -> FloatArray:
    """Each example's group of C/G consecutive channels normalized together; γ, β per channel."""
    x, groups, w, b, eps = _check_group_norm(x, num_groups, weight, bias, eps)
    out = np.empty_like(x)
    for members, affine in _group_sets(x.shape, groups):
        mean, rstd = _set_statistics_loop(x, members, eps)
        _affine_forward_loop(out, x, members, mean, rstd, affine, w, b)
    return out


def group_norm_backward_loop(
    grad_output: FloatArray,
    x: FloatArray,
    num_groups: int,
    weight: FloatArray | None = None,
    bias: FloatArray | None = None,
    eps: float = 1e-5,
) -> Gradients:
    """``(∂L/∂x, ∂L/∂γ, ∂L/∂β)``: the three-term dx per (example, group), γ per channel."""
    x, groups, w, b, eps = _check_group_norm(x, num_groups, weight, bias, eps)
    grad_output = check_grad_output(grad_output, x.shape, x)
    grad_input = np.empty_like(x)
    grad_weight, grad_bias = _accumulator(w), _accumulator(b)
    for members, affine in _group_sets(x.shape, groups):
        mean, rstd = _set_statistics_loop(x, members, eps)
        _set_backward_loop(
            grad_input,
            grad_weight,
            grad_bias,
            grad_output,
            x,
            members,
            mean,
            rstd,
            affine,
            w,
            statistics_are_constant=False,
        )
    return grad_input, _cast(grad_weight, x.dtype), _cast(grad_bias, x.dtype)


def dropout_loop(
    x: FloatArray,
    mask: np.ndarray[Any, np.dtype[np.bool_]] | None,
    p: float = 0.5,
    training: bool = True,
) -> FloatArray:
    """``y_i = x_i / (1 − p)`` where ``mask_i`` is True, 0 elsewhere; a copy of x when not training.

    ``p`` is the probability of dropping an element (torch's convention), so
    the kept ones are scaled by 1/(1 − p); with p = 1 every element is 0.
    ``mask`` may be None when not training.
    """
    x, mask, p, training = _check_dropout(x, mask, p, training)
    out = np.empty_like(x)
    scale = _keep_scale(p)
    for i in np.ndindex(x.shape):
        if not training:
            out[i] = x[i]
        else:
            assert mask is not None
            out[i] = float(x[i]) * scale if mask[i] else 0.0
    return out


def dropout_backward_loop(
    grad_output: FloatArray,
    x: FloatArray,
    mask: np.ndarray[Any, np.dtype[np.bool_]] | None,
    p: float = 0.5,
    training: bool = True,
) -> FloatArray:
    """``∂L/∂x_i = dy_i / (1 − p)`` where kept, 0 where dropped; ``dy`` when not training."""
    x, mask, p, training = _check_dropout(x, mask, p, training)
    grad_output = check_grad_output(grad_output, x.shape, x)
    grad_input = np.empty_like(x)
    scale = _keep_scale(p)
    for i in np.ndindex(x.shape):
        if not training:
            grad_input[i] = grad_output[i]
        else:
            assert mask is not None
            grad_input[i] = float(grad_output[i]) * scale if mask[i] else 0.0
    return grad_input


# ====================================================================== vectorized
#
# Each function allocates one large array, its result, and works in it in
# place: a second array of the input's size costs fresh pages, more than a pass
# of arithmetic. Layer norm and group norm process their rows in blocks whose
# slices of every array they read or write (x, the result, and in the backward
# dy and a scratch block) add up to about BLOCK_BYTES, so that the block being
# rewritten stays in cache between its passes: x and dy come from memory once;
# each block is computed with whole-array operations (the loop runs over
# blocks of rows or examples, never over elements). Batch norm's
# sets are channels, strided across the batch, and are processed all at once.
# Sums along a row are matrix-vector products (BLAS); dot products along a row
# are ``vecdot`` (``einsum`` on NumPy < 2). The passes that broadcast a per-set
# or per-channel vector over the rows run without the ufunc buffer when the
# rows are long enough (:func:`_broadcasting`).

#: bytes of all the arrays one block of sets touches: half of a core's L2 cache
#: (1 to 2 MB on current x86 server cores)
BLOCK_BYTES = 1 << 20
#: rows at least this long (bytes) are broadcast over without the ufunc buffer
UNBUFFERED_ROW_BYTES = 512
#: NumPy's smallest ufunc buffer, in elements (a multiple of 16)
_SMALLEST_BUFFER = 16
#: bytes of a cache line: rows this short are dotted with einsum, not vecdot
_CACHE_LINE = 64

_VECDOT = getattr(np, "vecdot", None)


@contextmanager
def _unbuffered() -> Iterator[None]:
    """NumPy's ufunc buffer at its smallest inside the block, restored on exit."""
    previous = np.setbufsize(_SMALLEST_BUFFER)
    try:
        yield
    finally:
        np.setbufsize(previous)


def _broadcasting(shape: tuple[int, ...], itemsize: int) -> AbstractContextManager[None]:
    """The setting for passes broadcasting a vector over an array of ``shape``, row by row.

    A ufunc such as ``block *= rstd[:, None]`` or ``block *= weight``, whose
    vector operand is broadcast over rows shorter than NumPy's ufunc buffer
    (8192 elements), copies that operand into the buffer at every fill: the
    pass takes two to three times as long as ``block *= other_block``. With
    the buffer at its smallest no operand is buffered and the ufunc runs row
    by row, which costs a fixed few tens of nanoseconds per row: cheaper from
    rows of about UNBUFFERED_ROW_BYTES on (measured for both float dtypes).
    ``np.setbufsize`` is NumPy's own setting, local to the thread (and the
    context on NumPy 2); it changes how NumPy cuts the loop, not what an
    elementwise pass computes. An array within one buffer keeps the default:
    its operands are copied once at most, less than the setting costs.
    """
    row = next((n for n in reversed(shape) if n > 1), 1)
    long_rows = row * itemsize >= UNBUFFERED_ROW_BYTES
    return _unbuffered() if long_rows and math.prod(shape) > np.getbufsize() else nullcontext()


def _rowdot(a: FloatArray, b: FloatArray, out: FloatArray | None = None) -> FloatArray:
    """``Σ_k a[..., k] · b[..., k]``: the dot product along the last axis (into ``out``).

    ``vecdot`` calls its loop once per row, which costs more than the row on
    rows of a cache line or less (16 float32); ``einsum`` runs those faster.
    """
    if _VECDOT is not None and a.shape[-1] * a.itemsize > _CACHE_LINE:
        return _VECDOT(a, b, out=out)  # type: ignore[no-any-return]
    return np.einsum("...k,...k->...", a, b, out=out)


def _blocks(count: int, bytes_each: int) -> list[slice]:
    """Consecutive slices of ``count`` sets, each about ``BLOCK_BYTES`` (at least one set).

    ``bytes_each`` is what one set occupies in all the arrays a block touches.
    """
    step = max(1, BLOCK_BYTES // max(1, bytes_each))
    return [slice(start, min(count, start + step)) for start in range(0, count, step)]


def _batch_view(x: FloatArray) -> FloatArray:
    """x as (N, C, L), L = ∏spatial: a view when x is contiguous, else a copy; never written."""
    n, c = x.shape[:2]
    return x.reshape(n, c, math.prod(x.shape[2:]))


def _channel_dots(a: FloatArray, b: FloatArray) -> FloatArray:
    """``Σ_{n,l} a[n, c, l] · b[n, c, l]`` per channel of (N, C, L) arrays.

    The longer axis first, as :func:`reference_impl._sums.channel_sums`:
    ``vecdot`` along L when L ≥ N, else ``einsum`` down the batch of the
    (N, C·L) matrices.
    """
    batch, channels, length = a.shape
    if length >= batch:
        along: FloatArray = _rowdot(a, b).sum(axis=0)
        return along
    flat = (batch, channels * length)
    down: FloatArray = np.einsum("ij,ij->j", a.reshape(flat), b.reshape(flat))
    dots: FloatArray = down.reshape(channels, length).sum(axis=1)
    return dots


def _center_channels(view: FloatArray, out: FloatArray, eps: float) -> FloatArray:
    """``out = x − μ_c`` for an (N, C, L) view; returns ``r_c = 1/√(σ²_c + ε)`` (σ² biased)."""
    n = view.shape[0] * view.shape[2]
    np.subtract(view, (channel_sums(view) / n)[:, None], out=out)
    rstd: FloatArray = 1 / np.sqrt(_channel_dots(out, out) / n + eps)
    return rstd


def batch_norm_vectorized(
    x: FloatArray,
    running_mean: FloatArray | None = None,
    running_var: FloatArray | None = None,
    weight: FloatArray | None = None,
    bias: FloatArray | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> FloatArray:
    """``y = (x − μ_c) · (γ_c r_c) + β_c`` on an (N, C, L) view, in three passes."""
    x, rm, rv, w, b, training, eps = _check_batch_norm(
        x, running_mean, running_var, weight, bias, training, momentum, eps
    )
    view = _batch_view(x)
    out = np.empty(view.shape, dtype=x.dtype)
    with _broadcasting(view.shape, x.itemsize):
        if training:
            rstd = _center_channels(view, out, eps)
        else:
            assert rm is not None and rv is not None
            np.subtract(view, rm[:, None], out=out)
            rstd = 1 / np.sqrt(rv + eps)
        out *= (rstd if w is None else rstd * w)[:, None]
        if b is not None:
            out += b[:, None]
    return out.reshape(x.shape)


def batch_norm_backward_vectorized(
    grad_output: FloatArray,
    x: FloatArray,
    running_mean: FloatArray | None = None,
    running_var: FloatArray | None = None,
    weight: FloatArray | None = None,
    bias: FloatArray | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Gradients:
    """``dx = γr · (dy − mean(dy) − r² mean(dy·d) · d)`` per channel, d = x − μ; eval ``γr · dy``.

    γ is constant on a channel, so the three terms factor through γr and the
    array holding d becomes dx in four in-place passes.
    """
    x, rm, rv, w, b, training, eps = _check_batch_norm(
        x, running_mean, running_var, weight, bias, training, momentum, eps
    )
    grad_output = check_grad_output(grad_output, x.shape, x)
    view, dy = _batch_view(x), _batch_view(grad_output)
    n = view.shape[0] * view.shape[2]
    grad_input = np.empty(view.shape, dtype=x.dtype)
    with _broadcasting(view.shape, x.itemsize):
        if training:
            rstd = _center_channels(view, grad_input, eps)  # grad_input = d for now
        else:
            assert rm is not None and rv is not None
            np.subtract(view, rm[:, None], out=grad_input)
            rstd = 1 / np.sqrt(rv + eps)
        sum_dy = channel_sums(dy)
        sum_dy_d = _channel_dots(dy, grad_input)
        grad_weight = None if w is None else sum_dy_d * rstd
        grad_bias = None if b is None else sum_dy
        gamma_rstd = rstd if w is None else rstd * w
        if training:
            grad_input *= (-(rstd * rstd) * sum_dy_d / n)[:, None]
            grad_input -= (sum_dy / n)[:, None]
            grad_input += dy
            grad_input *= gamma_rstd[:, None]
        else:
            np.multiply(dy, gamma_rstd[:, None], out=grad_input)
    return grad_input.reshape(x.shape), grad_weight, grad_bias


def batch_norm_running_stats_vectorized(
    x: FloatArray, running_mean: FloatArray, running_var: FloatArray, momentum: float = 0.1
) -> tuple[FloatArray, FloatArray]:
    """``(1 − m) · running + m · batch`` for the mean and the unbiased variance, per channel."""
    x, rm, rv, m = _check_running_stats(x, running_mean, running_var, momentum)
    view = _batch_view(x)
    n = view.shape[0] * view.shape[2]
    mean = channel_sums(view) / n
    d = view - mean[:, None]
    unbiased = _channel_dots(d, d) / (n - 1)
    keep = 1.0 - m
    return keep * rm + m * mean, keep * rv + m * unbiased


def _center_rows(xb: FloatArray, ob: FloatArray, ones: FloatArray, eps: float) -> FloatArray:
    """One block of rows (..., M): ``ob = x − μ`` per row; returns r = 1/√(σ² + ε) per row.

    The mean is a matrix-vector product with ``ones`` (BLAS); it brings the
    block into cache for the subtraction that follows.
    """
    size = ones.shape[0]
    np.subtract(xb, ((xb @ ones) / size)[..., None], out=ob)
    rstd: FloatArray = 1 / np.sqrt(_rowdot(ob, ob) / size + eps)
    return rstd


def layer_norm_vectorized(
    x: FloatArray,
    normalized_shape: int | Sequence[int],
    weight: FloatArray | None = None,
    bias: FloatArray | None = None,
    eps: float = 1e-5,
) -> FloatArray:
    """``y = (x − μ) r · γ + β`` on an (R, M) view, one row per leading index."""
    x, shape, w, b, eps = _check_layer_norm(x, normalized_shape, weight, bias, eps)
    size = math.prod(shape)
    rows = x.reshape(-1, size)
    out = np.empty(rows.shape, dtype=x.dtype)
    ones = np.ones(size, dtype=x.dtype)
    with _broadcasting(rows.shape, x.itemsize):
        for s in _blocks(rows.shape[0], 2 * size * x.itemsize):  # x, out
            ob = out[s]
            rstd = _center_rows(rows[s], ob, ones, eps)
            ob *= rstd[:, None]
            if w is not None:
                ob *= w.reshape(size)
            if b is not None:
                ob += b.reshape(size)
    return out.reshape(x.shape)


def layer_norm_backward_vectorized(
    grad_output: FloatArray,
    x: FloatArray,
    normalized_shape: int | Sequence[int],
    weight: FloatArray | None = None,
    bias: FloatArray | None = None,
    eps: float = 1e-5,
) -> Gradients:
    """``dx = r g − r mean(g) − r² mean(g x̂) d`` per row, ``g = dy γ``, ``d = x − μ``.

    ``r dy`` is formed once per block, in scratch space: ``dγ = Σ_rows (r dy) d``
    is its ``einsum`` with d down the columns; scaled by γ in place it becomes
    ``r g``, whose row sums give ``r mean(g)`` and whose dot products with d
    give ``mean(g x̂) = Σ (r g) d / M``. The array holding d then becomes dx in
    three in-place passes, and x̂ is never formed.
    """
    x, shape, w, b, eps = _check_layer_norm(x, normalized_shape, weight, bias, eps)
    grad_output = check_grad_output(grad_output, x.shape, x)
    size = math.prod(shape)
    rows, dy = x.reshape(-1, size), grad_output.reshape(-1, size)
    grad_input = np.empty(rows.shape, dtype=x.dtype)
    ones = np.ones(size, dtype=x.dtype)
    grad_weight = None if w is None else np.zeros(size, dtype=x.dtype)
    grad_bias = None if b is None else np.zeros(size, dtype=x.dtype)
    blocks = _blocks(rows.shape[0], 4 * size * x.itemsize)  # x, dy, dx, scratch
    longest = blocks[0].stop if blocks else 0
    scratch = np.empty((longest, size), dtype=x.dtype)
    ones_rows = np.ones(longest, dtype=x.dtype)
    with _broadcasting(rows.shape, x.itemsize):
        for s in blocks:
            dyb, ob = dy[s], grad_input[s]
            count = len(dyb)
            rstd = _center_rows(rows[s], ob, ones, eps)  # ob = d
            if grad_bias is not None:
                grad_bias += ones_rows[:count] @ dyb
            scaled = np.multiply(dyb, rstd[:, None], out=scratch[:count])  # r dy
            if grad_weight is not None:
                grad_weight += np.einsum("ij,ij->j", scaled, ob)  # Σ dy x̂
            if w is not None:
                scaled *= w.reshape(size)  # r g
            r_mean_g = (scaled @ ones) / size
            mean_g_xhat = _rowdot(scaled, ob) / size
            ob *= (-(rstd * rstd) * mean_g_xhat)[:, None]
            ob += scaled
            ob -= r_mean_g[:, None]
    return (
        grad_input.reshape(x.shape),
        None if grad_weight is None else grad_weight.reshape(shape),
        None if grad_bias is None else grad_bias.reshape(shape),
    )


def _group_view(x: FloatArray, groups: int) -> FloatArray:
    """x as (N, G, C/G, L): one set per (n, g), laid out as C/G channel rows of length L."""
    n, c = x.shape[:2]
    return x.reshape(n, groups, c // groups, math.prod(x.shape[2:]))


def group_norm_vectorized(
    x: FloatArray,
    num_groups: int,
    weight: FloatArray | None = None,
    bias: FloatArray | None = None,
    eps: float = 1e-5,
) -> FloatArray:
    """``y = (x − μ_{n,g}) · (r_{n,g} γ_c) + β_c`` on an (N, G, C/G·L) view, block of examples."""
    x, groups, w, b, eps = _check_group_norm(x, num_groups, weight, bias, eps)
    view = _group_view(x, groups)
    batch, _, per_group, length = view.shape
    out = np.empty(view.shape, dtype=x.dtype)
    ones = np.ones(per_group * length, dtype=x.dtype)
    gamma = None if w is None else w.reshape(groups, per_group, 1)
    beta = None if b is None else b.reshape(groups, per_group, 1)
    with _broadcasting(view.shape, x.itemsize):
        for s in _blocks(batch, 2 * x.itemsize * groups * per_group * length):  # x, out
            xb, ob = view[s], out[s]
            flat = (len(xb), groups, per_group * length)
            rstd = _center_rows(xb.reshape(flat), ob.reshape(flat), ones, eps)
            ob *= rstd[:, :, None, None] if gamma is None else rstd[:, :, None, None] * gamma
            if beta is not None:
                ob += beta
    return out.reshape(x.shape)


def group_norm_backward_vectorized(
    grad_output: FloatArray,
    x: FloatArray,
    num_groups: int,
    weight: FloatArray | None = None,
    bias: FloatArray | None = None,
    eps: float = 1e-5,
) -> Gradients:
    """Per (n, g): ``dx = (r γ_c) dy − r² mean(g x̂) d − r mean(g)``, ``g = dy γ_c``, ``d = x − μ``.

    The per-channel sums of ``dy`` (matrix-vector products along the spatial
    axis) and of ``dy ⊙ d`` (``vecdot``) are kept for the whole batch: their
    dot products with γ give both means, block by block, and their sums over
    the batch give dβ and dγ at the end; x̂ is never formed. Every coefficient
    of dx is constant along a channel's row, so the array holding d becomes dx
    in three passes and one product.
    """
    x, groups, w, b, eps = _check_group_norm(x, num_groups, weight, bias, eps)
    grad_output = check_grad_output(grad_output, x.shape, x)
    view, dy = _group_view(x, groups), _group_view(grad_output, groups)
    batch, _, per_group, length = view.shape
    size = per_group * length
    grad_input = np.empty(view.shape, dtype=x.dtype)
    gamma = np.ones((groups, per_group), dtype=x.dtype)
    if w is not None:
        gamma = w.reshape(groups, per_group)
    ones, ones_length = np.ones(size, dtype=x.dtype), np.ones(length, dtype=x.dtype)
    # per example and channel, [0] Σ_l dy and [1] Σ_l dy d; per example and group, r
    sums = np.empty((batch, 2, groups, per_group), dtype=x.dtype)
    rstds = np.empty((batch, groups), dtype=x.dtype)
    blocks = _blocks(batch, 4 * x.itemsize * groups * size)  # x, dy, dx, scratch
    scratch = np.empty((blocks[0].stop if blocks else 0, *view.shape[1:]), dtype=x.dtype)
    with _broadcasting(view.shape, x.itemsize):
        for s in blocks:
            dyb, ob, sb = dy[s], grad_input[s], sums[s]
            flat = (len(dyb), groups, size)
            rstd = _center_rows(view[s].reshape(flat), ob.reshape(flat), ones, eps)  # ob = d
            rstds[s] = rstd
            np.matmul(dyb, ones_length, out=sb[:, 0])
            _rowdot(dyb, ob, out=sb[:, 1])
            means = _rowdot(sb, gamma) / size  # (n, 2, G): mean(g), mean(g d) = mean(g x̂)/r
            ob *= (-(rstd * rstd * rstd) * means[:, 1])[:, :, None, None]
            ob -= (rstd * means[:, 0])[:, :, None, None]
            rstd_gamma = (rstd[:, :, None] * gamma)[:, :, :, None]
            ob += np.multiply(dyb, rstd_gamma, out=scratch[: len(dyb)])  # + r g
    grad_weight = None if w is None else (sums[:, 1] * rstds[:, :, None]).sum(axis=0)
    grad_bias = None if b is None else sums[:, 0].sum(axis=0)
    return (
        grad_input.reshape(x.shape),
        None if grad_weight is None else grad_weight.reshape(-1),
        None if grad_bias is None else grad_bias.reshape(-1),
    )


def dropout_vectorized(
    x: FloatArray,
    mask: np.ndarray[Any, np.dtype[np.bool_]] | None,
    p: float = 0.5,
    training: bool = True,
) -> FloatArray:
    """``x · mask · 1/(1 − p)`` (zeros for p = 1); a copy of x when not training."""
    x, mask, p, training = _check_dropout(x, mask, p, training)
    if not training:
        copied: FloatArray = x.copy()
        return copied
    assert mask is not None
    out: FloatArray = np.multiply(x, mask, dtype=x.dtype)
    out *= x.dtype.type(_keep_scale(p))
    return out


def dropout_backward_vectorized(
    grad_output: FloatArray,
    x: FloatArray,
    mask: np.ndarray[Any, np.dtype[np.bool_]] | None,
    p: float = 0.5,
    training: bool = True,
) -> FloatArray:
    """``dy · mask · 1/(1 − p)``; ``dy`` (a copy) when not training."""
    x, mask, p, training = _check_dropout(x, mask, p, training)
    grad_output = check_grad_output(grad_output, x.shape, x)
    if not training:
        passed: FloatArray = grad_output.copy()
        return passed
    assert mask is not None
    grad_input: FloatArray = np.multiply(grad_output, mask, dtype=x.dtype)
    grad_input *= x.dtype.type(_keep_scale(p))
    return grad_input
