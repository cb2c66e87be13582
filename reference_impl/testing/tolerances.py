"""Every comparison bound of the suite, derived in one place.

What is compared
    ``|actual_i − expected_i| ≤ bound · (|expected_i| + max(‖expected‖∞, 1))``

The first term makes the bound relative element by element; the second keeps
it meaningful when an element is the result of cancellation (a sum of terms
much larger than itself), where rounding error scales with the terms, not the
result. The ``1`` floor is the scale of the drawn data (see below).

Where the error comes from
    The strategies draw ordinary values on a dyadic grid (multiples of 1/16
    with magnitude ≤ 4, ``strategies.GRID``), so every product of two inputs
    and every partial sum of such products is exactly representable in
    float64, and in float32 up to reduction lengths far beyond the shapes
    drawn. Linear formulas (linear, conv, pooling, sums) are therefore
    computed exactly by any summation order, and loop, vectorized and torch
    differ only through the non-linear steps: exp, log, tanh, division.

    Each such step is correctly rounded to within a few units in the last
    place, ``u = eps / 2`` of the dtype. Higham's bound for a sum of ``K``
    terms, each carrying a relative error ``δ ≤ c·u``, is
    ``|fl(Σ) − Σ| ≤ (K + c) · u · Σ|terms|`` to first order. Two
    implementations each make such an error, so their difference is at
    most twice that. Hence, with ``K`` the longest reduction that feeds
    one output element (the number of classes for softmax, n for a mean,
    C_in·kh·kw for conv2d):

        bound(dtype, K) = SAFETY · u(dtype) · (K + ELEMENTARY_ULPS)

    ``ELEMENTARY_ULPS = 16`` covers a chain of a few elementary functions
    each within 2 ulp (libm, SLEEF and Python's ``math`` all are), and
    ``SAFETY = 4`` covers the factor 2 of two implementations and the factor
    2 between Σ|terms| and the scale the comparison uses.

    float64: u = 1.1e-16, so K = 1 gives 8.9e-15 and K = 1000 gives 4.5e-13.
    float32: u = 6.0e-8,  so K = 1 gives 4.8e-6  and K = 1000 gives 2.4e-4.

A wrong formula (a missing factor, a wrong index, a sign) produces relative
errors of order 1, many orders of magnitude above these bounds, which is what
lets the errata tests in ``reference_impl/testing/errata`` fail every wrong formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

#: elementary-function error allowance, in units in the last place.
ELEMENTARY_ULPS = 16
#: two implementations, each off by at most the first-order bound, plus scale slack.
SAFETY = 4


def unit_roundoff(dtype: np.dtype[Any] | type) -> float:
    """``u = eps / 2``: the largest relative error of one correctly rounded operation."""
    return float(np.finfo(dtype).eps) / 2


def bound(dtype: np.dtype[Any] | type, reduction_length: int) -> float:
    """The relative bound for outputs that each sum ``reduction_length`` terms."""
    if reduction_length < 1:
        reduction_length = 1
    return SAFETY * unit_roundoff(dtype) * (reduction_length + ELEMENTARY_ULPS)


# ------------------------------------------------------------------------- attention
#
# Attention is not linear in its inputs, and its gradients cancel: ∂L/∂s = p ⊙ (dP − Σ p dP)
# is a small difference of large terms whenever one key dominates, so the error of ∂L/∂q
# scales with c·|k|·|dP|, not with the result, and can exceed the comparison's floor of
# max(‖expected‖∞, 1) by orders of magnitude. A count of terms alone would not bound it.
# The bound below is a first-order running error analysis in units of u, evaluated on the
# case's own values: every element's error bound is a sum, over the terms that feed it, of
# |term| × (the relative error the term carries + the roundings that combine it). The
# reduction length is its largest value, K = max error / u, so that the comparison's
# 4u(K + 16)·max(‖expected‖∞, 1) ≥ 4uK covers the two implementations' errors (each ≤ uK).


def _abs64(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.abs(np.asarray(x, dtype=np.float64))


def _swap(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.swapaxes(x, -1, -2)


@dataclass(frozen=True)
class AttentionErrors:
    """First-order error bounds (units of u) of attention's output and gradients.

    Each ``*_error`` array bounds the rounding error of one element as the
    implementations compute it; each ``*_size`` array bounds the sum of the
    magnitudes of the terms that element sums (a later sum over the element
    rounds in proportion to it). Shapes are those of the broadcast batch:
    ``output`` (B, L, Ev), ``query`` (B, L, E), ``key`` (B, S, E), ``value``
    (B, S, Ev).
    """

    output: np.ndarray[Any, Any]
    output_size: np.ndarray[Any, Any]
    query: np.ndarray[Any, Any]
    query_size: np.ndarray[Any, Any]
    key: np.ndarray[Any, Any]
    key_size: np.ndarray[Any, Any]
    value: np.ndarray[Any, Any]
    value_size: np.ndarray[Any, Any]


def attention_errors(
    query: np.ndarray[Any, Any],
    key: np.ndarray[Any, Any],
    value: np.ndarray[Any, Any],
    bias: np.ndarray[Any, Any] | None,
    scale: float,
    upstream: Any,
    dtype: np.dtype[Any] | type,
) -> AttentionErrors:
    r"""Error bounds of ``o = softmax(c q kᵀ + b) v`` and of its gradients, per element.

    ``bias`` holds ``−inf`` where a position is blocked; ``upstream`` bounds
    ``|∂L/∂o|`` element by element (broadcastable to the output). With
    ``a[l, j] = c Σ_e |q_le||k_je|`` (the size of a score's terms), first order
    in ``u``, for each implementation (ours, torch's math backend, torch's
    log-sum-exp "flash" backend, which recomputes ``p = e^{s − lse}``):

    * score: ``|δs| ≤ u σ``, ``σ = (E + 2) a + |s|`` — ``E`` rounded products
      and partial sums (torch's math backend scales ``q`` and ``k`` by ``√c``
      first, one rounding each), plus the scaling or the bias addition.
    * probability: ``|δp| ≤ u ρ p`` with
      ``ρ = σ + Σ_i p_i σ_i + |lse| + |s − lse| + S + 5``: the error of ``s``,
      of the shift (the maximum or the log-sum-exp, a ``p``-weighted mean of
      the scores' errors plus its own rounding ``u|lse|``), the rounding of the
      shifted argument, the exponential, the ``S``-term normalising sum and a
      division or logarithm. A blocked position has ``p = 0`` exactly.
    * output: ``|δo_d| ≤ u Σ_j p_j |v_jd| (ρ_j + S + 1)``.
    * with ``P_j = Σ_d |g_d||v_jd|`` bounding ``|dP_j|`` and ``T = Σ_j p_j P_j``
      bounding the row sum ``t = Σ_j p_j dP_j``: ``|δt| ≤ u (Σ_j p_j ρ_j P_j +
      (S + Ev + 1) T)`` (also when computed as ``Σ_d o_d g_d``), and
      ``|δ ds_j| ≤ u p_j ((ρ_j + 2)(P_j + T) + (Ev + 1) P_j + |δt|/u)``, with
      ``|ds_j| ≤ p_j (P_j + T)``.
    * ``dq_e = c Σ_j ds_j k_je``: ``u c Σ_j |k_je| (|δds_j|/u + (S + 2)|ds_j|)``;
      ``dk`` likewise over ``l`` with ``L + 2``; ``dv_jd = Σ_l p_lj g_ld``:
      ``u Σ_l |g_ld| p_lj (ρ_lj + L + 1)``.

    Products and sums of grid values are exact (module docstring), so ``dP``
    and the projections of ``multi_head_attention`` add nothing beyond the
    roundings counted. Where a key dominates (``p ≈ 1``) the bound keeps the
    ``c |k| (P + T) ρ`` of the cancelling difference; where ``p ≈ 0`` the
    large ``|s − lse|`` is multiplied by ``p`` and vanishes, which is what
    keeps extreme scores testable.
    """
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (query, key, value))
    aq, ak, av = np.abs(q), np.abs(k), np.abs(v)
    length, embed = q.shape[-2], q.shape[-1]
    positions, width = v.shape[-2], v.shape[-1]
    s = scale * np.matmul(q, _swap(k))
    if bias is not None:
        s = s + np.asarray(bias, dtype=np.float64)
    live = np.isfinite(s)
    shape = s.shape
    size = scale * np.broadcast_to(np.matmul(aq, _swap(ak)), shape)
    s_live = np.where(live, s, 0.0)
    dead = ~live.any(axis=-1, keepdims=True)
    m = np.where(live, s, -np.inf).max(axis=-1, keepdims=True, initial=-np.inf)
    m = np.where(dead, 0.0, m)
    e = np.exp(np.where(live, s_live - m, -np.inf))
    total = np.where(dead, 1.0, e.sum(axis=-1, keepdims=True))
    p = e / total
    lse = m + np.log(total)

    def shift(sigma: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        # |δs_j − Σ_i p_i δs_i| / u ≤ (1 − p_j) σ_j + Σ_{i≠j} p_i σ_i
        weighted = p * sigma
        shifted: np.ndarray[Any, Any] = (
            sigma - weighted + (weighted.sum(axis=-1, keepdims=True) - weighted)
        )
        return shifted

    magnitude = np.abs(s_live)
    rounding = positions + 5
    math_backend = shift((embed + 2) * size + magnitude) + np.abs(s_live - m) + rounding
    lse_rounding = np.minimum(np.abs(lse), (lse - m) / unit_roundoff(dtype))
    flash = shift(magnitude) + lse_rounding + np.abs(s_live - lse) + rounding
    rho = np.where(live, np.maximum(math_backend, flash), 0.0)
    output = np.matmul(p * rho, av) + (positions + 1) * np.matmul(p, av)
    output_size = np.matmul(p, av)
    g = np.broadcast_to(np.abs(np.asarray(upstream, dtype=np.float64)), output.shape)
    big_p = np.matmul(g, _swap(av))
    big_t = (p * big_p).sum(axis=-1, keepdims=True)
    t_error = (p * rho * big_p).sum(axis=-1, keepdims=True) + (positions + width + 1) * big_t
    spread = big_p + big_t
    ds_error = p * ((rho + 2) * spread + (width + 1) * big_p + t_error)
    ds_size = p * spread
    return AttentionErrors(
        output=output,
        output_size=output_size,
        query=scale * np.matmul(ds_error + (positions + 2) * ds_size, ak),
        query_size=scale * np.matmul(ds_size, ak),
        key=scale * np.matmul(_swap(ds_error + (length + 2) * ds_size), aq),
        key_size=scale * np.matmul(_swap(ds_size), aq),
        value=np.matmul(_swap(p * rho + (length + 1) * p), g),
        value_size=np.matmul(_swap(p), g),
    )


def _summed_to(
    error: np.ndarray[Any, Any], size: np.ndarray[Any, Any], shape: tuple[int, ...]
) -> np.ndarray[Any, Any]:
    """The error of summing ``error``'s broadcast copies back to an input of ``shape``."""
    copies = error.size // max(int(np.prod(shape)), 1) if error.size else 1
    lead = error.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and error.shape[lead + i] != 1
    )
    if not axes:
        return error
    summed: np.ndarray[Any, Any] = error.sum(axis=axes) + copies * size.sum(axis=axes)
    return summed


def attention_length(
    query: np.ndarray[Any, Any],
    key: np.ndarray[Any, Any],
    value: np.ndarray[Any, Any],
    bias: np.ndarray[Any, Any] | None,
    scale: float,
    upstream: float,
) -> int:
    """The reduction length of ``scaled_dot_product_attention``: its largest error bound / u.

    Inputs broadcast along batch axes receive sums of their copies'
    gradients; summing ``n`` copies adds ``n u Σ|copy|`` to their errors.
    """
    errors = attention_errors(query, key, value, bias, scale, upstream, query.dtype)
    worst = [errors.output]
    for error, size, array in (
        (errors.query, errors.query_size, query),
        (errors.key, errors.key_size, key),
        (errors.value, errors.value_size, value),
    ):
        worst.append(_summed_to(error, size, array.shape))
    return math.ceil(max((float(w.max(initial=0.0)) for w in worst), default=0.0))


def multi_head_attention_length(
    query: np.ndarray[Any, Any],
    key: np.ndarray[Any, Any],
    value: np.ndarray[Any, Any],
    heads: int,
    in_proj_weight: np.ndarray[Any, Any],
    in_proj_bias: np.ndarray[Any, Any] | None,
    out_proj_weight: np.ndarray[Any, Any],
    out_proj_bias: np.ndarray[Any, Any] | None,
    bias: np.ndarray[Any, Any] | None,
    upstream: float,
) -> int:
    """The reduction length of ``multi_head_attention``: its largest error bound / u.

    ``query``, ``key``, ``value`` are batch-first ``(N, T, E)``; ``bias`` is
    the heads' additive bias, broadcastable to ``(N, H, L, S)``. The
    projections are exact on the grid (products of sixteenths, a few terms),
    so the heads see exact ``Q``, ``K``, ``V`` and an exact upstream gradient
    ``g W_o``, bounded by ``|g| Σ_f |W_o[f, e]|``; :func:`attention_errors`
    bounds each head, and every later product adds, element by element,
    ``Σ |weight| × error`` plus the rounding of its own sum: ``(E + 1) Σ|terms|``
    for ``y = O W_oᵀ + b_o`` and ``∂L/∂x = ∂L/∂Q W``, ``(N·T + 1) Σ|terms|``
    for the weight and bias gradients summed over the batch and the sequence.
    """
    embed = query.shape[-1]
    width = embed // heads
    absolute_in = _abs64(in_proj_weight)
    absolute_out = _abs64(out_proj_weight)

    def project(x: np.ndarray[Any, Any], which: int) -> np.ndarray[Any, Any]:
        rows = slice(which * embed, (which + 1) * embed)
        out = np.matmul(np.asarray(x, dtype=np.float64), np.asarray(in_proj_weight[rows], float).T)
        if in_proj_bias is not None:
            out = out + np.asarray(in_proj_bias[rows], dtype=np.float64)
        n, length, _ = out.shape
        return np.swapaxes(out.reshape(n, length, heads, width), 1, 2)

    def merge(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        n, _, length, _ = x.shape
        return np.swapaxes(x, 1, 2).reshape(n, length, embed)

    upstream_heads = (upstream * absolute_out.sum(axis=0)).reshape(heads, 1, width)
    errors = attention_errors(
        project(query, 0),
        project(key, 1),
        project(value, 2),
        bias,
        1.0 / math.sqrt(width),
        upstream_heads,
        np.asarray(query).dtype,
    )
    output, output_size = merge(errors.output), merge(errors.output_size)
    out_bias = 0.0 if out_proj_bias is None else _abs64(out_proj_bias)
    rows = output.shape[0] * output.shape[1]
    worst = [
        np.matmul(output + (embed + 1) * output_size, absolute_out.T) + out_bias,
        upstream * (output + (rows + 1) * output_size).sum(axis=(0, 1)),
    ]
    for x, error, size, which in (
        (query, errors.query, errors.query_size, 0),
        (key, errors.key, errors.key_size, 1),
        (value, errors.value, errors.value_size, 2),
    ):
        error, size = merge(error), merge(size)
        weight = absolute_in[which * embed : (which + 1) * embed]
        ax = _abs64(x)
        terms = x.shape[0] * x.shape[1] + 1
        worst.append(np.matmul(error + (embed + 1) * size, weight))
        worst.append(np.einsum("ntf,nte->fe", error + terms * size, ax))
        worst.append((error + terms * size).sum(axis=(0, 1)))
    return math.ceil(max(float(w.max(initial=0.0)) for w in worst))
