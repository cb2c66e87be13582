"""Wrong formulas of the normalization family, each from a published source or a classic slip.

Each takes the public arguments of its formula and is written as its source
writes it; what they share with the references is borrowed from
:mod:`reference_impl.vectorized`. The mistakes of ``batch_norm_running_stats``
(not a forward/backward pair) live in ``oracle_tests/test_normalization.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference_impl.normalization import (
    batch_norm_backward_vectorized,
    batch_norm_vectorized,
    dropout_backward_vectorized,
    dropout_vectorized,
    group_norm_backward_vectorized,
    group_norm_vectorized,
)
from reference_impl.testing.errata.catalog import Erratum

Array = np.ndarray[Any, Any]


def _channel_rows(x: Array) -> Array:
    """(N, C, *spatial) → (N·∏spatial, C): the channel axis moved last, then flattened."""
    return np.moveaxis(x.reshape(*x.shape[:2], -1), 1, 2).reshape(-1, x.shape[1])


def _from_channel_rows(rows: Array, shape: tuple[int, ...]) -> Array:
    n, c = shape[:2]
    return np.moveaxis(rows.reshape(n, -1, c), 2, 1).reshape(shape)


def batch_norm_backward_statistics_constant(
    grad_output: Array,
    x: Array,
    running_mean: Array | None = None,
    running_var: Array | None = None,
    weight: Array | None = None,
    bias: Array | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[Array, Array | None, Array | None]:
    """Classic slip: in training, ``dx = γ dy / √(σ² + ε)``, as if μ and σ² were constants.

    The gradient through μ (−mean(dy)) and through σ² (−x̂ mean(dy x̂)) is
    dropped. dγ and dβ are right.

    Shrunk counterexample: x = [[0, 0], [0, 0]] (N = 2, C = 2), training, no
    weight or bias, ε = 1e-5: every value equals its channel's mean, so x̂ = 0
    and torch's dx = (dy − mean(dy))/√ε, while this version keeps dy/√ε; the
    drawn upstream gradient is not constant over a channel.
    """
    grads = batch_norm_backward_vectorized(
        grad_output, x, running_mean, running_var, weight, bias, training, momentum, eps
    )
    if not training:
        return grads
    sets = _channel_rows(x)
    rstd = 1 / np.sqrt(sets.var(axis=0) + eps)
    scale = rstd if weight is None else rstd * weight
    rows = _channel_rows(grad_output) * scale
    return _from_channel_rows(rows, x.shape).astype(x.dtype), grads[1], grads[2]


def _batch_norm_unbiased(x: Array, eps: float) -> tuple[Array, Array, Array]:
    """(x̂ as channel rows, mean, r) with the variance divided by n − 1."""
    rows = _channel_rows(x)
    n = rows.shape[0]
    mean = rows.mean(axis=0)
    rstd = 1 / np.sqrt(rows.var(axis=0) * n / (n - 1) + eps)
    return (rows - mean) * rstd, mean, rstd


def batch_norm_unbiased(
    x: Array,
    running_mean: Array | None = None,
    running_var: Array | None = None,
    weight: Array | None = None,
    bias: Array | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Array:
    """Training normalizes with the unbiased variance Σ(x − μ)²/(n − 1).

    What ``torch.var(x)`` and ``x.var()`` give by default (correction = 1),
    where NumPy's ``np.var`` (ddof = 0) gives the biased one that batch norm
    uses. The output is scaled by √((n − 1)/n), and by nothing when σ² = 0.

    Shrunk counterexample: x = [[0, 0], [0, 0.0625]] (N = 2, C = 2), training,
    no weight or bias, ε = 1e-5: channel 1 holds 0 and 1/16, σ² = 1/1024; torch
    gives ∓(1/32)/√(1/1024 + ε) ≈ ∓0.995, this version, with 1/512,
    ∓(1/32)/√(1/512 + ε) ≈ ∓0.705.
    """
    if not training:
        return batch_norm_vectorized(
            x, running_mean, running_var, weight, bias, training, momentum, eps
        )
    xhat, _, _ = _batch_norm_unbiased(x, eps)
    y = xhat * (1 if weight is None else weight) + (0 if bias is None else bias)
    return _from_channel_rows(y, x.shape).astype(x.dtype)


def batch_norm_backward_unbiased(
    grad_output: Array,
    x: Array,
    running_mean: Array | None = None,
    running_var: Array | None = None,
    weight: Array | None = None,
    bias: Array | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[Array, Array | None, Array | None]:
    """The gradient of :func:`batch_norm_unbiased`, derived consistently with it.

    With s² = Σ(x − μ)²/(n − 1): ∂x̂_i/∂x_j = r(δ_ij − 1/n − x̂_i x̂_j/(n − 1)),
    so dx = γ r (dy − mean(dy) − x̂ Σ(dy x̂)/(n − 1)); dγ = Σ dy x̂.
    Counterexample: the forward's.
    """
    if not training:
        return batch_norm_backward_vectorized(
            grad_output, x, running_mean, running_var, weight, bias, training, momentum, eps
        )
    xhat, _, rstd = _batch_norm_unbiased(x, eps)
    n = xhat.shape[0]
    dy = _channel_rows(grad_output)
    gamma = 1 if weight is None else weight
    dx = gamma * rstd * (dy - dy.mean(axis=0) - xhat * (dy * xhat).sum(axis=0) / (n - 1))
    grad_weight = None if weight is None else (dy * xhat).sum(axis=0).astype(x.dtype)
    grad_bias = None if bias is None else dy.sum(axis=0).astype(x.dtype)
    return _from_channel_rows(dx, x.shape).astype(x.dtype), grad_weight, grad_bias


def batch_norm_backward_eval_through_batch_statistics(
    grad_output: Array,
    x: Array,
    running_mean: Array | None = None,
    running_var: Array | None = None,
    weight: Array | None = None,
    bias: Array | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[Array, Array | None, Array | None]:
    """Classic slip: eval mode differentiated with the training formula and the batch statistics.

    In eval mode the output uses the running statistics, which are constants:
    dx = γ dy / √(running_var + ε). This version reuses the training backward,
    computing μ and σ² of the batch, so its dx has the two extra terms and the
    wrong scale.

    Shrunk counterexample: x = [[0, 0], [0, 0]] (N = 2, C = 2), eval mode,
    running_mean = running_var = [0, 0], no weight or bias, ε = 1e-5: torch's
    dx = dy/√ε; the batch statistics are μ = 0, σ² = 0, so this version gives
    (dy − mean(dy))/√ε, wrong wherever the upstream gradient is not constant
    over a channel.
    """
    if training:
        return batch_norm_backward_vectorized(
            grad_output, x, running_mean, running_var, weight, bias, training, momentum, eps
        )
    rows = _channel_rows(x)
    dy = _channel_rows(grad_output)
    mean, rstd = rows.mean(axis=0), 1 / np.sqrt(rows.var(axis=0) + eps)
    xhat = (rows - mean) * rstd
    gamma = 1 if weight is None else weight
    dx = gamma * rstd * (dy - dy.mean(axis=0) - xhat * (dy * xhat).mean(axis=0))
    assert running_mean is not None and running_var is not None  # eval mode requires them
    running_xhat = (rows - running_mean) / np.sqrt(running_var + eps)
    grad_weight = None if weight is None else (dy * running_xhat).sum(axis=0).astype(x.dtype)
    grad_bias = None if bias is None else dy.sum(axis=0).astype(x.dtype)
    return _from_channel_rows(dx, x.shape).astype(x.dtype), grad_weight, grad_bias


def batch_norm_reshaped_without_moving_channels(
    x: Array,
    running_mean: Array | None = None,
    running_var: Array | None = None,
    weight: Array | None = None,
    bias: Array | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Array:
    """Spatial batch norm as 2-D batch norm on ``x.reshape(-1, C)``, the channel axis left in place.

    For (N, C, H, W) the rows of ``x.reshape(-1, C)`` are runs of C
    consecutive values in memory (along W, then H, then C), so each "channel"
    column mixes channels and positions. The reshape must follow moving the
    channel axis last (``x.transpose(0, 2, 3, 1).reshape(-1, C)``, CS231n's
    spatial batch norm), as the question in PointFlow issue #14 points out for
    a transpose/reshape of the same kind.

    With C = 1 or no spatial extent the reshape is harmless.

    Shrunk counterexample: x = [[[0, 0], [0, 0]]] (N = 1, C = 2, L = 2),
    training, no weight or bias, ε = 1e-5. The output is 0 either way, but
    the rows of the reshape are (x[0, 0, 0], x[0, 0, 1]) and
    (x[0, 1, 0], x[0, 1, 1]), so this version's "channel" 0 is
    {x[0, 0, 0], x[0, 1, 0]}: its dx subtracts the mean of dy over the wrong
    pair of positions (torch: dx = (dy − mean over the channel)/√ε).
    """
    if x.ndim == 2:
        return batch_norm_vectorized(
            x, running_mean, running_var, weight, bias, training, momentum, eps
        )
    rows = x.reshape(-1, x.shape[1])
    out = batch_norm_vectorized(
        rows, running_mean, running_var, weight, bias, training, momentum, eps
    )
    result: Array = out.reshape(x.shape)
    return result


def batch_norm_backward_reshaped_without_moving_channels(
    grad_output: Array,
    x: Array,
    running_mean: Array | None = None,
    running_var: Array | None = None,
    weight: Array | None = None,
    bias: Array | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[Array, Array | None, Array | None]:
    """The backward of :func:`batch_norm_reshaped_without_moving_channels`, on the same rows.

    Counterexample: the forward's.
    """
    if x.ndim == 2:
        return batch_norm_backward_vectorized(
            grad_output, x, running_mean, running_var, weight, bias, training, momentum, eps
        )
    channels = x.shape[1]
    grad_input, grad_weight, grad_bias = batch_norm_backward_vectorized(
        grad_output.reshape(-1, channels),
        x.reshape(-1, channels),
        running_mean,
        running_var,
        weight,
        bias,
        training,
        momentum,
        eps,
    )
    return grad_input.reshape(x.shape), grad_weight, grad_bias


def _leading_axes(x: Array, normalized_shape: Any) -> tuple[int, ...]:
    count = 1 if isinstance(normalized_shape, int) else len(normalized_shape)
    return tuple(range(x.ndim - count))


def _batch_axis_statistics(x: Array, eps: float) -> tuple[Array, Array]:
    """x̂ and r with the statistics taken over axis 0, one set per remaining position."""
    mean = x.mean(axis=0)
    rstd = 1 / np.sqrt(x.var(axis=0) + eps)
    return (x - mean) * rstd, rstd


def layer_norm_over_batch_axis(
    x: Array,
    normalized_shape: Any,
    weight: Array | None = None,
    bias: Array | None = None,
    eps: float = 1e-5,
) -> Array:
    """Classic slip: layer norm's mean and variance taken over the batch axis (axis 0).

    That is batch norm's set, each feature normalized across the examples;
    layer norm normalizes each example across its own features.

    Shrunk counterexample: x = [[0, 0]] (one row of 2), normalized_shape =
    (2,), no weight or bias, ε = 1e-5. The output is 0 either way; torch's
    dx = (dy − mean of the row)/√ε, while this version's sets are the columns,
    one value each, so its dx is dy − dy = 0.
    """
    xhat, _ = _batch_axis_statistics(x, eps)
    y = xhat * (1 if weight is None else weight) + (0 if bias is None else bias)
    return np.asarray(y, dtype=x.dtype)


def layer_norm_backward_over_batch_axis(
    grad_output: Array,
    x: Array,
    normalized_shape: Any,
    weight: Array | None = None,
    bias: Array | None = None,
    eps: float = 1e-5,
) -> tuple[Array, Array | None, Array | None]:
    """The gradient of :func:`layer_norm_over_batch_axis`: the three-term formula along axis 0.

    Counterexample: the forward's.
    """
    xhat, rstd = _batch_axis_statistics(x, eps)
    g = grad_output * (1 if weight is None else weight)
    dx = rstd * (g - g.mean(axis=0) - xhat * (g * xhat).mean(axis=0))
    axes = _leading_axes(x, normalized_shape)
    grad_weight = None if weight is None else (grad_output * xhat).sum(axis=axes)
    grad_bias = None if bias is None else grad_output.sum(axis=axes)
    return (
        np.asarray(dx, dtype=x.dtype),
        None if grad_weight is None else np.asarray(grad_weight, dtype=x.dtype),
        None if grad_bias is None else np.asarray(grad_bias, dtype=x.dtype),
    )


def _interleaved(channels: int, groups: int) -> Array:
    """The channel order that puts c % G groups together: group 0 first (0, G, 2G...), then 1..."""
    return np.argsort(np.arange(channels) % groups, kind="stable")


def group_norm_interleaved(
    x: Array,
    num_groups: int,
    weight: Array | None = None,
    bias: Array | None = None,
    eps: float = 1e-5,
) -> Array:
    """Classic slip: channel c put in group c % G instead of c // (C/G).

    torch (and the group-normalization paper's reference code, a reshape to
    (N, G, C/G, H, W)) groups consecutive channels. The two agree only when
    G = 1 or G = C.

    Shrunk counterexample: x = zeros of shape (2, 4), num_groups = 2, no
    weight or bias, ε = 1e-5. The output is 0 either way; torch's dx
    subtracts the mean of dy over channels {0, 1} and {2, 3} of each example,
    this version over {0, 2} and {1, 3}.
    """
    order = _interleaved(x.shape[1], num_groups)
    w = None if weight is None else weight[order]
    b = None if bias is None else bias[order]
    out = group_norm_vectorized(np.ascontiguousarray(x[:, order]), num_groups, w, b, eps)
    return np.ascontiguousarray(out[:, np.argsort(order)])


def group_norm_backward_interleaved(
    grad_output: Array,
    x: Array,
    num_groups: int,
    weight: Array | None = None,
    bias: Array | None = None,
    eps: float = 1e-5,
) -> tuple[Array, Array | None, Array | None]:
    """The backward of :func:`group_norm_interleaved` with the same grouping.

    Counterexample: the forward's.
    """
    order = _interleaved(x.shape[1], num_groups)
    back = np.argsort(order)
    w = None if weight is None else weight[order]
    b = None if bias is None else bias[order]
    dx, dw, db = group_norm_backward_vectorized(
        np.ascontiguousarray(grad_output[:, order]),
        np.ascontiguousarray(x[:, order]),
        num_groups,
        w,
        b,
        eps,
    )
    return (
        np.ascontiguousarray(dx[:, back]),
        None if dw is None else dw[back],
        None if db is None else db[back],
    )


def dropout_divided_by_p(
    x: Array, mask: Array | None, p: float = 0.5, training: bool = True
) -> Array:
    """torch's p (the drop probability) read as the keep probability: ``x · mask / p``.

    CS231n assignment 2 (Stanford, the ``dropout_forward`` of
    ``cs231n/layers.py``) defines its p as the probability of *keeping* a
    unit and divides by it; with torch's convention the kept units must be
    divided by 1 − p. The two agree only at p = 1/2.

    Shrunk counterexample: x = [0.0], mask = [True], p = 0, training: torch
    keeps x unscaled (0), this version computes 0/0 = NaN (and dy/0 = ±∞ for
    the gradient). At p = 0.1 a kept unit is scaled by 10 instead of 1/0.9.
    """
    if not training:
        return dropout_vectorized(x, mask, p, training)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(x * np.asarray(mask) / p, dtype=x.dtype)


def dropout_backward_divided_by_p(
    grad_output: Array, x: Array, mask: Array | None, p: float = 0.5, training: bool = True
) -> Array:
    """``dy · mask / p``, the gradient of :func:`dropout_divided_by_p`. Counterexample: its."""
    if not training:
        return dropout_backward_vectorized(grad_output, x, mask, p, training)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(grad_output * np.asarray(mask) / p, dtype=x.dtype)


def dropout_not_rescaled(
    x: Array, mask: Array | None, p: float = 0.5, training: bool = True
) -> Array:
    """``x · mask``: the kept units are not scaled up during training.

    The original dropout (Srivastava, Hinton, Krizhevsky, Sutskever and
    Salakhutdinov, "Dropout: a simple way to prevent neural networks from
    overfitting", JMLR 15, 2014, Section 1 and Figure 2) keeps training
    outputs unscaled and multiplies the weights by the keep probability at
    test time instead. torch uses "inverted" dropout: training outputs are
    divided by 1 − p and evaluation is the identity, so mixing the two
    conventions leaves the training output too small by 1 − p.

    Shrunk counterexample: x = [0.0], mask = [True], p = 0.1, training: the
    output is 0 either way, but torch's gradient is dy/0.9 and this version's
    dy.
    """
    if not training:
        return dropout_vectorized(x, mask, p, training)
    return np.asarray(x * np.asarray(mask), dtype=x.dtype)


def dropout_backward_not_rescaled(
    grad_output: Array, x: Array, mask: Array | None, p: float = 0.5, training: bool = True
) -> Array:
    """``dy · mask``, the gradient of :func:`dropout_not_rescaled`. Counterexample: its."""
    if not training:
        return dropout_backward_vectorized(grad_output, x, mask, p, training)
    return np.asarray(grad_output * np.asarray(mask), dtype=x.dtype)


ERRATA = [
    Erratum(
        name="batch-norm-backward-statistics-constant",
        formula="batch_norm",
        source="classic slip",
        mistake="training dx = γ dy/√(σ² + ε): the paths through μ and σ² are dropped",
        backward=batch_norm_backward_statistics_constant,
    ),
    Erratum(
        name="batch-norm-unbiased-variance",
        formula="batch_norm",
        source="torch.var's default correction=1 against NumPy's np.var ddof=0",
        mistake="the batch is normalized with Σ(x − μ)²/(n − 1) instead of /n",
        forward=batch_norm_unbiased,
        backward=batch_norm_backward_unbiased,
    ),
    Erratum(
        name="batch-norm-eval-through-batch-statistics",
        formula="batch_norm",
        source="classic slip",
        mistake="eval mode differentiated with the batch's μ and σ² instead of the constants",
        backward=batch_norm_backward_eval_through_batch_statistics,
    ),
    Erratum(
        name="batch-norm-reshape-without-moving-channels",
        formula="batch_norm",
        source="PointFlow issue #14 (a transpose/reshape grouping the wrong values)",
        mistake="spatial batch norm on x.reshape(-1, C) with the channel axis not moved last",
        forward=batch_norm_reshaped_without_moving_channels,
        backward=batch_norm_backward_reshaped_without_moving_channels,
    ),
    Erratum(
        name="layer-norm-over-batch-axis",
        formula="layer_norm",
        source="classic slip",
        mistake="μ and σ² taken over the batch axis instead of the normalized dims",
        forward=layer_norm_over_batch_axis,
        backward=layer_norm_backward_over_batch_axis,
    ),
    Erratum(
        name="group-norm-channels-interleaved",
        formula="group_norm",
        source="classic slip",
        mistake="channel c put in group c % G instead of c // (C/G)",
        forward=group_norm_interleaved,
        backward=group_norm_backward_interleaved,
    ),
    Erratum(
        name="dropout-divided-by-p",
        formula="dropout",
        source="CS231n assignment 2, dropout_forward (p is the keep probability there)",
        mistake="kept units divided by p instead of 1 − p",
        forward=dropout_divided_by_p,
        backward=dropout_backward_divided_by_p,
    ),
    Erratum(
        name="dropout-not-rescaled",
        formula="dropout",
        source="Srivastava et al. (2014), Section 1: scaling at test time, not in training",
        mistake="kept units not divided by 1 − p during training",
        forward=dropout_not_rescaled,
        backward=dropout_backward_not_rescaled,
    ),
]
