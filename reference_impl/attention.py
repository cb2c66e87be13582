r"""Scaled dot-product attention and multi-head attention: forward and backward passes.

Scaled dot-product attention
============================
``query`` has shape ``(..., L, E)``, ``key`` ``(..., S, E)`` and ``value``
``(..., S, Ev)``: ``L`` queries and ``S`` key/value positions, under any
number of leading batch axes (heads included), which broadcast against each
other as torch broadcasts them. For one batch index, with ``c`` the scale
(``1/√E`` unless given) and ``b`` the additive bias of the mask::

    s[l, j] = c · Σ_e q[l, e] · k[j, e] + b[l, j]                 (S = c Q Kᵀ + B)
    p[l, j] = e^{s[l, j] − m_l} / Σ_i e^{s[l, i] − m_l},  m_l = max_j s[l, j]
    o[l, d] = Σ_j p[l, j] · v[j, d]                               (O = P V)

The bias ``b`` is ``0`` where position ``j`` may be attended and ``−∞`` where
it may not: a boolean ``attn_mask`` is True where attention is *allowed*
(torch's convention for this function, the opposite of
``multi_head_attention``'s); a float ``attn_mask`` is added to the scores as
it is; ``is_causal=True`` blocks ``j > l``, the lower triangle of an ``L × S``
matrix aligned top-left (``tril(ones(L, S))``) also when ``L ≠ S``. The
softmax is the shifted one of :mod:`reference_impl.activations`, so no score,
however large, overflows.

A row whose every position is blocked (all ``s[l, j] = −∞``, or ``S = 0``)
has no softmax; torch 2.13 on the CPU returns ``o[l, :] = 0`` for it and a
zero gradient through it, and so do these references. (Older torch versions
returned NaN for such rows: PyTorch issues #103749 and #103963.)

Backward
========
With ``g = ∂L/∂o`` (``grad_output``)::

    ∂L/∂v[j, d] = Σ_l p[l, j] · g[l, d]                           (dV = Pᵀ G)
    ∂L/∂p[l, j] = Σ_d g[l, d] · v[j, d]                           (dP = G Vᵀ)
    ∂L/∂s[l, j] = p[l, j] · (∂L/∂p[l, j] − Σ_i p[l, i] ∂L/∂p[l, i])
    ∂L/∂q[l, e] = c · Σ_j ∂L/∂s[l, j] · k[j, e]                   (dQ = c dS K)
    ∂L/∂k[j, e] = c · Σ_l ∂L/∂s[l, j] · q[l, e]                   (dK = c dSᵀ Q)

The third line is the softmax Jacobian-vector product of
:mod:`reference_impl.activations`, row by row: ``∂p_j/∂s_i = p_j(1[i = j] − p_i)``
has off-diagonal terms, and keeping only its diagonal ``p(1 − p)`` is a
catalogued error. A blocked position has ``p = 0``, so neither it nor a fully
blocked row passes any gradient. An input broadcast along a batch axis gets
the sum of the gradients of every batch index that read it. The mask is not
differentiated, even when it is a float array: the backward returns
``(∂L/∂query, ∂L/∂key, ∂L/∂value)``. When one array is passed as ``query``,
``key`` and ``value`` (self-attention), each gradient is still that of its own
argument; the gradient with respect to the shared array is their sum.

Multi-head attention
====================
torch's ``multi_head_attention_forward`` with packed projection weights, no
dropout, and the output only (not the attention weights). Inputs are
``(L, N, E)``, ``(S, N, E)``, ``(S, N, E)`` (``(N, L, E)`` ... with
``batch_first=True``; ``(L, E)``, ``(S, E)``, ``(S, E)`` for one unbatched
sequence). With ``H = num_heads`` heads of ``d_h = E / H`` channels,
``[W_q; W_k; W_v] = in_proj_weight`` (3E, E) and ``[b_q; b_k; b_v] = in_proj_bias``::

    Q = x_q W_qᵀ + b_q,   K = x_k W_kᵀ + b_k,   V = x_v W_vᵀ + b_v
    O_h = attention(Q_h, K_h, V_h, bias, scale = 1/√d_h)   (channels h·d_h ... (h+1)·d_h − 1)
    y = [O_1 … O_H] W_oᵀ + b_o                            (W_o = out_proj_weight)

Each head is scaled by ``1/√d_h``, its own width, not by ``1/√E``. The masks
use ``nn.MultiheadAttention``'s polarity, the opposite of the function above:
a boolean ``attn_mask`` (``(L, S)``, or ``(N·H, L, S)`` per batch element and
head, head fastest) or ``key_padding_mask`` (``(N, S)``) is True where
attention is *blocked*; float masks are added. Both add into one bias. A fully
blocked row gives ``O_h = 0``, so ``y = b_o`` there, as torch returns.

Backward, with ``g = ∂L/∂y``::

    ∂L/∂O = g W_o,   ∂L/∂W_o = Σ_{n,l} gᵀ O,   ∂L/∂b_o = Σ_{n,l} g
    (∂L/∂Q_h, ∂L/∂K_h, ∂L/∂V_h) = attention backward of each head on ∂L/∂O_h
    ∂L/∂x_q = ∂L/∂Q W_q,   ∂L/∂W_q = Σ_{n,l} (∂L/∂Q)ᵀ x_q,   ∂L/∂b_q = Σ_{n,l} ∂L/∂Q

and likewise for key and value; ``∂L/∂in_proj_weight`` stacks ``[∂L/∂W_q;
∂L/∂W_k; ∂L/∂W_v]``. The backward returns the gradients of ``(query, key,
value, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias)``, with
``None`` for an absent bias.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from reference_impl._sums import column_sums
from reference_impl._validation import (
    FloatArray,
    check_shape,
    float_array,
    is_int,
    same_dtype,
    scalar,
)
from reference_impl.activations import (
    lane_dot,
    softmax_array,
    softmax_backward_loop,
    softmax_lane,
)

#: a boolean mask, or a float array (inputs, biases and float masks)
Array = NDArray[Any]
Grads3 = tuple[FloatArray, FloatArray, FloatArray]
MhaGrads = tuple[
    FloatArray, FloatArray, FloatArray, FloatArray, FloatArray | None, FloatArray, FloatArray | None
]

# ----------------------------------------------------------------------- validation


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _mask_array(name: str, mask: object, dtype: np.dtype[np.floating]) -> Array:
    """A boolean mask, or a float mask of the inputs' dtype."""
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray or None, got {type(mask).__name__}")
    if mask.dtype != np.bool_ and mask.dtype != dtype:
        raise TypeError(
            f"{name} must be a boolean array or a float array of the inputs' dtype {dtype}, "
            f"got {mask.dtype}"
        )
    return mask


@dataclass(frozen=True)
class _Attention:
    """Validated arguments of ``scaled_dot_product_attention``."""

    query: FloatArray
    key: FloatArray
    value: FloatArray
    mask: Array | None
    is_causal: bool
    scale: float
    batch: tuple[int, ...]

    @property
    def L(self) -> int:
        return int(self.query.shape[-2])

    @property
    def S(self) -> int:
        return int(self.key.shape[-2])

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (*self.batch, self.L, int(self.value.shape[-1]))


def _default_scale(scale: object, embed: int) -> float:
    if scale is None:
        # With E = 0 every score is an empty sum, 0, whatever the scale.
        return 1.0 / math.sqrt(embed) if embed > 0 else 1.0
    value = scalar("scale", scale)
    if value <= 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    return value


def _check_attention(
    query: object,
    key: object,
    value: object,
    attn_mask: object,
    is_causal: object,
    scale: object,
) -> _Attention:
    query = float_array("query", query)
    key = float_array("key", key)
    value = float_array("value", value)
    dtype = same_dtype(query=query, key=key, value=value)
    for name, array, layout in (
        ("query", query, "(..., L, E)"),
        ("key", key, "(..., S, E)"),
        ("value", value, "(..., S, Ev)"),
    ):
        if array.ndim < 2:
            raise ValueError(f"{name} must have at least 2 dimensions {layout}, got {array.shape}")
    if key.shape[-1] != query.shape[-1]:
        raise ValueError(
            f"key has embedding size {key.shape[-1]} but query has {query.shape[-1]}: "
            f"query (..., L, E) and key (..., S, E) must share E"
        )
    if value.shape[-2] != key.shape[-2]:
        raise ValueError(
            f"value has {value.shape[-2]} positions but key has {key.shape[-2]}: "
            f"key (..., S, E) and value (..., S, Ev) must share S"
        )
    try:
        batch = np.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    except ValueError:
        raise ValueError(
            f"the batch dimensions of query {query.shape[:-2]}, key {key.shape[:-2]} and "
            f"value {value.shape[:-2]} do not broadcast"
        ) from None
    causal = _check_bool("is_causal", is_causal)
    mask = None
    if attn_mask is not None:
        if causal:
            raise ValueError(
                "attn_mask must be None when is_causal=True (torch raises too): "
                "pass the causal mask in attn_mask, or is_causal alone"
            )
        mask = _mask_array("attn_mask", attn_mask, dtype)
        if mask.ndim < 2:
            # torch broadcasts a 0-D or 1-D mask on some backends and rejects it on others
            raise ValueError(
                f"attn_mask must have at least 2 dimensions (..., L, S), got shape {mask.shape}"
            )
        scores = (*batch, query.shape[-2], key.shape[-2])
        try:
            fits = np.broadcast_shapes(mask.shape, scores) == scores
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"attn_mask of shape {mask.shape} does not broadcast to the scores' "
                f"shape (..., L, S) = {scores}"
            )
    return _Attention(
        query, key, value, mask, causal, _default_scale(scale, query.shape[-1]), batch
    )


def _check_grad_output(grad_output: object, shape: tuple[int, ...], like: FloatArray) -> FloatArray:
    grad_output = float_array("grad_output", grad_output)
    same_dtype(grad_output=grad_output, query=like)
    check_shape("grad_output", grad_output, shape)
    return grad_output


def _index(shape: tuple[int, ...], full: tuple[int, ...]) -> tuple[int, ...]:
    """The element of an array of ``shape`` that broadcasting reads at index ``full``."""
    own = full[len(full) - len(shape) :]
    return tuple(0 if n == 1 else i for i, n in zip(own, shape, strict=True))


# ---------------------------------------------------------------------------- loops


def _bias_loop(a: _Attention, batch: tuple[int, ...]) -> Array:
    """The additive bias ``b[l, j]`` of one batch index, element by element (float64)."""
    bias = np.zeros((a.L, a.S))
    for l in range(a.L):
        for j in range(a.S):
            if a.is_causal and j > l:
                bias[l, j] = -math.inf
            elif a.mask is not None:
                entry = a.mask[_index(a.mask.shape, (*batch, l, j))]
                if a.mask.dtype == np.bool_:
                    bias[l, j] = 0.0 if entry else -math.inf
                else:
                    bias[l, j] = float(entry)
    return bias


def _scores_loop(
    q: FloatArray,
    k: FloatArray,
    bias: Array,
    scale: float,
    l: int,
) -> list[float]:
    """``s[l, j] = c Σ_e q[l, e] k[j, e] + b[l, j]`` for every ``j``; ``−∞`` where blocked."""
    row = []
    for j in range(k.shape[0]):
        if bias[l, j] == -math.inf:
            row.append(-math.inf)
            continue
        total = 0.0
        for e in range(q.shape[1]):
            total += float(q[l, e]) * float(k[j, e])
        row.append(scale * total + float(bias[l, j]))
    return row


def _probabilities_loop(scores: list[float]) -> list[float]:
    """The softmax of one row; a row with every position blocked gets zeros."""
    if all(s == -math.inf for s in scores):
        return [0.0] * len(scores)
    return softmax_lane(scores)


def _attend_loop(
    q: FloatArray,
    k: FloatArray,
    v: FloatArray,
    bias: Array,
    scale: float,
) -> Array:
    """``o[l, d] = Σ_j p[l, j] v[j, d]`` for one batch index (float64)."""
    out = np.zeros((q.shape[0], v.shape[1]))
    for l in range(q.shape[0]):
        p = _probabilities_loop(_scores_loop(q, k, bias, scale, l))
        for d in range(v.shape[1]):
            total = 0.0
            for j in range(v.shape[0]):
                total += p[j] * float(v[j, d])
            out[l, d] = total
    return out


def _attend_backward_loop(
    g: FloatArray,
    q: FloatArray,
    k: FloatArray,
    v: FloatArray,
    bias: Array,
    scale: float,
) -> tuple[Array, Array, Array]:
    """``(∂L/∂q, ∂L/∂k, ∂L/∂v)`` of one batch index, the sums of the module docstring."""
    length, embed = q.shape
    positions, width = v.shape
    dq = np.zeros((length, embed))
    dk = np.zeros((positions, embed))
    dv = np.zeros((positions, width))
    for l in range(length):
        scores = _scores_loop(q, k, bias, scale, l)
        p = _probabilities_loop(scores)
        if not any(p):
            continue  # every position blocked: no gradient flows through this row
        dp = np.zeros(positions)
        for j in range(positions):
            total = 0.0
            for d in range(width):
                total += float(g[l, d]) * float(v[j, d])
            dp[j] = total
            for d in range(width):
                dv[j, d] += p[j] * float(g[l, d])
        # ∂L/∂s_j = Σ_i dp_i p_i (1[i = j] − p_j): activations' Jacobian, written out
        ds = softmax_backward_loop(dp, np.array(scores))
        for e in range(embed):
            total = 0.0
            for j in range(positions):
                total += float(ds[j]) * float(k[j, e])
            dq[l, e] = scale * total
        for j in range(positions):
            for e in range(embed):
                dk[j, e] += scale * float(ds[j]) * float(q[l, e])
    return dq, dk, dv


def _operands(a: _Attention, batch: tuple[int, ...]) -> tuple[FloatArray, FloatArray, FloatArray]:
    return (
        a.query[_index(a.query.shape[:-2], batch)],
        a.key[_index(a.key.shape[:-2], batch)],
        a.value[_index(a.value.shape[:-2], batch)],
    )


def scaled_dot_product_attention_loop(
    query: FloatArray,
    key: FloatArray,
    value: FloatArray,
    attn_mask: Array | None = None,
    is_causal: bool = False,
    scale: float | None = None,
) -> FloatArray:
    """``softmax(c Q Kᵀ + B) V`` one output element at a time.

    ``query`` (..., L, E), ``key`` (..., S, E), ``value`` (..., S, Ev); the
    leading axes broadcast. A boolean ``attn_mask`` is True where attention is
    *allowed* (the opposite of ``multi_head_attention``'s masks), a float one
    (of the inputs' dtype) is added to the scores; it has at least two
    dimensions and broadcasts to the scores (..., L, S) without widening
    them. ``is_causal`` blocks ``j > l`` (top-left aligned when ``L ≠ S``)
    and excludes ``attn_mask``. ``scale`` (positive) defaults to ``1/√E``. A
    row with every position blocked gives 0, as torch 2.13 on the CPU returns
    (older versions gave NaN).
    """
    a = _check_attention(query, key, value, attn_mask, is_causal, scale)
    out = np.zeros(a.out_shape, dtype=a.query.dtype)
    for batch in np.ndindex(*a.batch):
        q, k, v = _operands(a, batch)
        out[batch] = _attend_loop(q, k, v, _bias_loop(a, batch), a.scale)
    return out


def scaled_dot_product_attention_backward_loop(
    grad_output: FloatArray,
    query: FloatArray,
    key: FloatArray,
    value: FloatArray,
    attn_mask: Array | None = None,
    is_causal: bool = False,
    scale: float | None = None,
) -> Grads3:
    """``(∂L/∂query, ∂L/∂key, ∂L/∂value)``, the index sums of the module docstring.

    The mask is not differentiated. A fully blocked row passes no gradient;
    an input broadcast along a batch axis receives the sum over that axis.
    With one array passed three times, each gradient is still its own
    argument's; their sum is the gradient with respect to the shared array.
    """
    a = _check_attention(query, key, value, attn_mask, is_causal, scale)
    grad_output = _check_grad_output(grad_output, a.out_shape, a.query)
    grad_query = np.zeros(a.query.shape)
    grad_key = np.zeros(a.key.shape)
    grad_value = np.zeros(a.value.shape)
    for batch in np.ndindex(*a.batch):
        q, k, v = _operands(a, batch)
        dq, dk, dv = _attend_backward_loop(
            grad_output[batch], q, k, v, _bias_loop(a, batch), a.scale
        )
        grad_query[_index(a.query.shape[:-2], batch)] += dq
        grad_key[_index(a.key.shape[:-2], batch)] += dk
        grad_value[_index(a.value.shape[:-2], batch)] += dv
    dtype = a.query.dtype
    return grad_query.astype(dtype), grad_key.astype(dtype), grad_value.astype(dtype)


# ----------------------------------------------------------------------- vectorized


def _bias(a: _Attention) -> FloatArray | None:
    """The additive bias, broadcastable to the scores: 0 / −∞ or the float mask."""
    dtype = a.query.dtype
    if a.is_causal:
        blocked = np.triu(np.ones((a.L, a.S), dtype=bool), k=1)
        return np.where(blocked, -np.inf, 0.0).astype(dtype)
    if a.mask is None:
        return None
    if a.mask.dtype == np.bool_:
        return np.where(a.mask, 0.0, -np.inf).astype(dtype)
    return a.mask


# The vectorized references keep the scores transposed, (…, S, L): the softmax then
# reduces along axis −2, across contiguous rows, which NumPy vectorizes (a maximum
# along the last axis of length S runs one short reduction per row, about three
# times slower). Every product below is the transposed one: Sᵀ = K (c Q)ᵀ, O = (Pᵀ)ᵀ V,
# dV = Pᵀ G, dSᵀ = Pᵀ ⊙ (V Gᵀ − Σ_j …), dQ = c (dSᵀ)ᵀ K, dK = dSᵀ (cQ). Scaling the
# query rather than the scores rounds c·q instead of c·(q·k): the same error bound.


def _probabilities_t(
    scaled_query: FloatArray, key: FloatArray, bias: FloatArray | None
) -> FloatArray:
    """``Pᵀ = softmax(K (cQ)ᵀ + Bᵀ)`` along the key axis (−2); fully blocked rows are 0.

    The scale comes folded into the query: a pass over (L, E), not over (S, L).
    """
    scores: FloatArray = np.matmul(key, np.swapaxes(scaled_query, -1, -2))
    if bias is not None:
        bias_t = np.swapaxes(bias, -1, -2)
        if np.broadcast_shapes(scores.shape, bias_t.shape) == scores.shape:
            scores += bias_t
        else:
            scores = scores + bias_t
    if scores.shape[-2] == 0:
        return scores  # no position to attend: the rows are empty
    # the scores are ours: the softmax overwrites them instead of filling a new array
    if bias is None:
        return softmax_array(scores, -2, out=scores)
    dead = np.isneginf(scores).all(axis=-2, keepdims=True)
    if not dead.any():
        return softmax_array(scores, -2, out=scores)
    # Every position of these rows is blocked: softmax them as zeros, then zero them.
    np.copyto(scores, 0.0, where=dead)
    p = softmax_array(scores, -2, out=scores)
    np.copyto(p, 0.0, where=dead)
    return p


def _probabilities(
    query: FloatArray, key: FloatArray, bias: FloatArray | None, scale: float
) -> FloatArray:
    """``P = softmax(c Q Kᵀ + B)`` (…, L, S), a transposed view."""
    return np.swapaxes(_probabilities_t(query * scale, key, bias), -1, -2)


def _attend(
    query: FloatArray, key: FloatArray, value: FloatArray, bias: FloatArray | None, scale: float
) -> FloatArray:
    out: FloatArray = np.matmul(_probabilities(query, key, bias, scale), value)
    return out


def _attend_backward(
    grad_output: FloatArray,
    query: FloatArray,
    key: FloatArray,
    value: FloatArray,
    bias: FloatArray | None,
    scale: float,
) -> Grads3:
    """``(dQ, dK, dV)`` on the broadcast batch shape (not yet summed back)."""
    scaled_query = query * scale
    p_t = _probabilities_t(scaled_query, key, bias)
    grad_value: FloatArray = np.matmul(p_t, grad_output)
    ds_t: FloatArray = np.matmul(value, np.swapaxes(grad_output, -1, -2))
    # the softmax Jacobian-vector product of activations, along the key axis:
    # dS = P ⊙ (dP − Σ_j dP_j P_j)
    ds_t -= lane_dot(ds_t, p_t, -2)
    ds_t *= p_t
    grad_query: FloatArray = np.matmul(np.swapaxes(ds_t, -1, -2), key)
    grad_query *= scale
    grad_key: FloatArray = np.matmul(ds_t, scaled_query)  # c dSᵀ Q
    return grad_query, grad_key, grad_value


def _sum_to(x: FloatArray, shape: tuple[int, ...]) -> FloatArray:
    """``x`` summed over the axes that broadcasting added to an array of ``shape``."""
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    summed: FloatArray = x.sum(axis=tuple(range(lead))) if lead else x
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and summed.shape[i] != 1)
    if axes:
        summed = summed.sum(axis=axes, keepdims=True)
    return summed


def scaled_dot_product_attention_vectorized(
    query: FloatArray,
    key: FloatArray,
    value: FloatArray,
    attn_mask: Array | None = None,
    is_causal: bool = False,
    scale: float | None = None,
) -> FloatArray:
    """``softmax(c Q Kᵀ + B) V`` with matrix products over the stacked batch axes.

    ``query`` (..., L, E), ``key`` (..., S, E), ``value`` (..., S, Ev); the
    leading axes broadcast. A boolean ``attn_mask`` is True where attention is
    *allowed* (the opposite of ``multi_head_attention``'s masks), a float one
    (of the inputs' dtype) is added to the scores; it has at least two
    dimensions and broadcasts to the scores (..., L, S) without widening
    them. ``is_causal`` blocks ``j > l`` (top-left aligned when ``L ≠ S``)
    and excludes ``attn_mask``. ``scale`` (positive) defaults to ``1/√E``. A
    row with every position blocked gives 0, as torch 2.13 on the CPU returns
    (older versions gave NaN).
    """
    a = _check_attention(query, key, value, attn_mask, is_causal, scale)
    return _attend(a.query, a.key, a.value, _bias(a), a.scale)


def scaled_dot_product_attention_backward_vectorized(
    grad_output: FloatArray,
    query: FloatArray,
    key: FloatArray,
    value: FloatArray,
    attn_mask: Array | None = None,
    is_causal: bool = False,
    scale: float | None = None,
) -> Grads3:
    """``dV = Pᵀ G``, ``dS = P ⊙ (G Vᵀ − rowsum)``, ``dQ = c dS K``, ``dK = c dSᵀ Q``.

    The mask is not differentiated. A fully blocked row passes no gradient;
    an input broadcast along a batch axis receives the sum over that axis.
    With one array passed three times, each gradient is still its own
    argument's; their sum is the gradient with respect to the shared array.
    """
    a = _check_attention(query, key, value, attn_mask, is_causal, scale)
    grad_output = _check_grad_output(grad_output, a.out_shape, a.query)
    dq, dk, dv = _attend_backward(grad_output, a.query, a.key, a.value, _bias(a), a.scale)
    return (
        _sum_to(dq, a.query.shape),
        _sum_to(dk, a.key.shape),
        _sum_to(dv, a.value.shape),
    )


# --------------------------------------------------------------- multi-head attention


@dataclass(frozen=True)
class _MultiHead:
    """Validated arguments of ``multi_head_attention``, in a batch-first view.

    ``xq``, ``xk``, ``xv`` are ``(N, L, E)``, ``(N, S, E)``, ``(N, S, E)``
    views of the inputs (an unbatched input gets ``N = 1``); ``layout`` turns
    such an array back into the inputs' layout.
    """

    xq: FloatArray
    xk: FloatArray
    xv: FloatArray
    heads: int
    in_weight: FloatArray
    in_bias: FloatArray | None
    out_weight: FloatArray
    out_bias: FloatArray | None
    attn_mask: Array | None
    key_padding_mask: Array | None
    layout: Callable[[FloatArray], FloatArray]
    out_shape: tuple[int, ...]

    @property
    def N(self) -> int:
        return int(self.xq.shape[0])

    @property
    def L(self) -> int:
        return int(self.xq.shape[1])

    @property
    def S(self) -> int:
        return int(self.xk.shape[1])

    @property
    def E(self) -> int:
        return int(self.xq.shape[2])

    @property
    def head_dim(self) -> int:
        return self.E // self.heads

    @property
    def scale(self) -> float:
        return 1.0 / math.sqrt(self.head_dim)

    def projection(self, which: int) -> tuple[FloatArray, FloatArray | None]:
        """``(W, b)`` of the query (0), key (1) or value (2) projection."""
        rows = slice(which * self.E, (which + 1) * self.E)
        return self.in_weight[rows], None if self.in_bias is None else self.in_bias[rows]


def _check_multi_head(
    query: object,
    key: object,
    value: object,
    num_heads: object,
    in_proj_weight: object,
    in_proj_bias: object,
    out_proj_weight: object,
    out_proj_bias: object,
    attn_mask: object,
    key_padding_mask: object,
    batch_first: object,
) -> _MultiHead:
    query = float_array("query", query)
    key = float_array("key", key)
    value = float_array("value", value)
    in_weight = float_array("in_proj_weight", in_proj_weight)
    in_bias = None if in_proj_bias is None else float_array("in_proj_bias", in_proj_bias)
    out_weight = float_array("out_proj_weight", out_proj_weight)
    out_bias = None if out_proj_bias is None else float_array("out_proj_bias", out_proj_bias)
    dtype = same_dtype(
        query=query,
        key=key,
        value=value,
        in_proj_weight=in_weight,
        in_proj_bias=in_bias,
        out_proj_weight=out_weight,
        out_proj_bias=out_bias,
    )
    if not is_int(num_heads):
        raise TypeError(f"num_heads must be an int, got {type(num_heads).__name__}")
    heads = int(num_heads)  # type: ignore[call-overload]
    if heads < 1:
        raise ValueError(f"num_heads must be at least 1, got {num_heads!r}")
    first = _check_bool("batch_first", batch_first)
    if query.ndim not in (2, 3):
        raise ValueError(
            f"query must be (L, N, E), (N, L, E) with batch_first, or (L, E) unbatched; "
            f"got shape {query.shape}"
        )
    batched = query.ndim == 3
    for name, array in (("key", key), ("value", value)):
        if array.ndim != query.ndim:
            raise ValueError(
                f"{name} must have {query.ndim} dimensions like query, got shape {array.shape}"
            )
    embed = int(query.shape[-1])
    if embed < 1:
        raise ValueError(f"query must have an embedding size of at least 1, got {query.shape}")
    if key.shape[-1] != embed:
        raise ValueError(
            f"key has embedding size {key.shape[-1]} but query has {embed}: the packed "
            f"in_proj_weight projects query, key and value of one size E"
        )
    if value.shape != key.shape:
        raise ValueError(f"value must have key's shape {key.shape}, got {value.shape}")
    if embed % heads:
        raise ValueError(f"the embedding size E = {embed} is not divisible by num_heads = {heads}")

    def batch_first_view(x: FloatArray) -> FloatArray:
        if not batched:
            return x[np.newaxis]
        return x if first else np.swapaxes(x, 0, 1)

    xq, xk, xv = batch_first_view(query), batch_first_view(key), batch_first_view(value)
    if xk.shape[0] != xq.shape[0]:
        raise ValueError(
            f"key has batch size {xk.shape[0]} but query has {xq.shape[0]} "
            f"({'(N, S, E)' if first else '(S, N, E)'} against the query's layout)"
        )
    check_shape("in_proj_weight", in_weight, (3 * embed, embed))
    if in_bias is not None:
        check_shape("in_proj_bias", in_bias, (3 * embed,))
    check_shape("out_proj_weight", out_weight, (embed, embed))
    if out_bias is not None:
        check_shape("out_proj_bias", out_bias, (embed,))
    n, length, positions = xq.shape[0], xq.shape[1], xk.shape[1]
    mask = None
    if attn_mask is not None:
        mask = _mask_array("attn_mask", attn_mask, dtype)
        stacked = (n * heads, length, positions) if batched else (heads, length, positions)
        if mask.shape not in ((length, positions), stacked):
            raise ValueError(
                f"attn_mask must have shape (L, S) = {(length, positions)} or "
                f"{'(N·num_heads, L, S)' if batched else '(num_heads, L, S)'} = {stacked}, "
                f"got {mask.shape}"
            )
        if mask.ndim == 3:
            mask = mask.reshape(n, heads, length, positions)
    padding = None
    if key_padding_mask is not None:
        padding = _mask_array("key_padding_mask", key_padding_mask, dtype)
        want = (n, positions) if batched else (positions,)
        if padding.shape != want:
            raise ValueError(
                f"key_padding_mask must have shape {'(N, S)' if batched else '(S,)'} = {want}, "
                f"got {padding.shape}"
            )
        padding = padding.reshape(n, positions)

    def layout(x: FloatArray) -> FloatArray:
        if not batched:
            unbatched: FloatArray = x[0]
            return unbatched
        return x if first else np.ascontiguousarray(np.swapaxes(x, 0, 1))

    return _MultiHead(
        xq, xk, xv, heads, in_weight, in_bias, out_weight, out_bias, mask, padding, layout,
        query.shape,
    )  # fmt: skip


def _blocked_to_bias(mask: Array, dtype: np.dtype[Any]) -> FloatArray:
    """A boolean mask of blocked positions as 0 / −∞, a float mask as it is."""
    if mask.dtype == np.bool_:
        return np.where(mask, -np.inf, 0.0).astype(dtype)
    return mask


def _head_bias(m: _MultiHead) -> FloatArray | None:
    """The additive bias of every batch element and head, broadcastable to (N, H, L, S)."""
    dtype = m.xq.dtype
    bias = None
    if m.attn_mask is not None:
        bias = _blocked_to_bias(m.attn_mask, dtype)
        if bias.ndim == 2:
            bias = bias[np.newaxis, np.newaxis]
    if m.key_padding_mask is not None:
        padding = _blocked_to_bias(m.key_padding_mask, dtype)[:, np.newaxis, np.newaxis, :]
        bias = padding if bias is None else bias + padding
    return bias


def _check_mha_grad_output(grad_output: object, m: _MultiHead) -> FloatArray:
    return _check_grad_output(grad_output, m.out_shape, m.xq)


# ---------------------------------------------------------------- multi-head, loops


def _project_loop(x: FloatArray, weight: FloatArray, bias: FloatArray | None) -> Array:
    """``x[n, t, f] ↦ Σ_e x[n, t, e] W[f, e] + b[f]``, element by element (float64)."""
    n, length, embed = x.shape
    out = np.zeros((n, length, weight.shape[0]))
    for i in range(n):
        for t in range(length):
            for f in range(weight.shape[0]):
                total = 0.0 if bias is None else float(bias[f])
                for e in range(embed):
                    total += float(x[i, t, e]) * float(weight[f, e])
                out[i, t, f] = total
    return out


def _blocked_entry(entry: Any) -> float:
    """One mask entry of ``multi_head_attention`` as a bias: True blocks (−∞), a float adds."""
    if isinstance(entry, np.bool_):
        return -math.inf if entry else 0.0
    return float(entry)


def _head_bias_loop(m: _MultiHead, n: int, h: int) -> Array:
    """``b[l, j]`` of batch element ``n`` and head ``h``: attn_mask plus key_padding_mask."""
    bias = np.zeros((m.L, m.S))
    for l in range(m.L):
        for j in range(m.S):
            total = 0.0
            if m.attn_mask is not None:
                index = (n, h, l, j) if m.attn_mask.ndim == 4 else (l, j)
                total += _blocked_entry(m.attn_mask[index])
            if m.key_padding_mask is not None:
                total += _blocked_entry(m.key_padding_mask[n, j])
            bias[l, j] = total
    return bias


def _heads_loop(m: _MultiHead) -> tuple[Array, Array, Array]:
    return tuple(  # type: ignore[return-value]
        _project_loop(x, *m.projection(which)) for which, x in enumerate((m.xq, m.xk, m.xv))
    )


def _channels(m: _MultiHead, h: int) -> slice:
    return slice(h * m.head_dim, (h + 1) * m.head_dim)


def multi_head_attention_loop(
    query: FloatArray,
    key: FloatArray,
    value: FloatArray,
    num_heads: int,
    in_proj_weight: FloatArray,
    in_proj_bias: FloatArray | None,
    out_proj_weight: FloatArray,
    out_proj_bias: FloatArray | None,
    attn_mask: Array | None = None,
    key_padding_mask: Array | None = None,
    batch_first: bool = False,
) -> FloatArray:
    """torch's multi-head attention output, one element at a time.

    Inputs ``(L, N, E)``, ``(S, N, E)``, ``(S, N, E)`` (``(N, L, E)``...
    with ``batch_first``; ``(L, E)``... unbatched). Boolean masks are True
    where attention is *blocked* (``nn.MultiheadAttention``'s polarity, the
    opposite of ``scaled_dot_product_attention``'s); float masks are added.
    Each head is scaled by ``1/√(E / num_heads)``. A fully blocked row gives
    ``out_proj_bias`` (its heads' outputs are 0), as torch 2.13 returns.
    """
    m = _check_multi_head(
        query, key, value, num_heads, in_proj_weight, in_proj_bias,
        out_proj_weight, out_proj_bias, attn_mask, key_padding_mask, batch_first,
    )  # fmt: skip
    q, k, v = _heads_loop(m)
    attended = np.zeros((m.N, m.L, m.E))
    for n in range(m.N):
        for h in range(m.heads):
            c = _channels(m, h)
            attended[n, :, c] = _attend_loop(
                q[n, :, c], k[n, :, c], v[n, :, c], _head_bias_loop(m, n, h), m.scale
            )
    out = _project_loop(attended, m.out_weight, m.out_bias)
    return m.layout(out.astype(m.xq.dtype))


def multi_head_attention_backward_loop(
    grad_output: FloatArray,
    query: FloatArray,
    key: FloatArray,
    value: FloatArray,
    num_heads: int,
    in_proj_weight: FloatArray,
    in_proj_bias: FloatArray | None,
    out_proj_weight: FloatArray,
    out_proj_bias: FloatArray | None,
    attn_mask: Array | None = None,
    key_padding_mask: Array | None = None,
    batch_first: bool = False,
) -> MhaGrads:
    """Gradients of ``(query, key, value, in_proj_weight, in_proj_bias, out_proj_weight,
    out_proj_bias)``, index sum by index sum; ``None`` for an absent bias.

    Masks are not differentiated. With one array passed as query, key and
    value, each gradient is still its own argument's; their sum is the
    gradient with respect to the shared array.
    """
    m = _check_multi_head(
        query, key, value, num_heads, in_proj_weight, in_proj_bias,
        out_proj_weight, out_proj_bias, attn_mask, key_padding_mask, batch_first,
    )  # fmt: skip
    g = _check_mha_grad_output(grad_output, m)
    g = g[np.newaxis] if g.ndim == 2 else (g if batch_first else np.swapaxes(g, 0, 1))
    q, k, v = _heads_loop(m)
    attended = np.zeros((m.N, m.L, m.E))
    for n in range(m.N):
        for h in range(m.heads):
            c = _channels(m, h)
            attended[n, :, c] = _attend_loop(
                q[n, :, c], k[n, :, c], v[n, :, c], _head_bias_loop(m, n, h), m.scale
            )
    # y[n, l, f] = Σ_e O[n, l, e] W_o[f, e] + b_o[f]
    grad_out_weight = np.zeros((m.E, m.E))
    grad_out_bias = None if m.out_bias is None else np.zeros(m.E)
    grad_attended = np.zeros((m.N, m.L, m.E))
    for n in range(m.N):
        for l in range(m.L):
            for f in range(m.E):
                gf = float(g[n, l, f])
                if grad_out_bias is not None:
                    grad_out_bias[f] += gf
                for e in range(m.E):
                    grad_out_weight[f, e] += gf * attended[n, l, e]
                    grad_attended[n, l, e] += gf * float(m.out_weight[f, e])
    grad_projected = [
        np.zeros((m.N, m.L, m.E)),
        np.zeros((m.N, m.S, m.E)),
        np.zeros((m.N, m.S, m.E)),
    ]
    for n in range(m.N):
        for h in range(m.heads):
            c = _channels(m, h)
            grads = _attend_backward_loop(
                grad_attended[n, :, c],
                q[n, :, c],
                k[n, :, c],
                v[n, :, c],
                _head_bias_loop(m, n, h),
                m.scale,
            )
            for which in range(3):
                grad_projected[which][n, :, c] = grads[which]
    # projected[n, t, f] = Σ_e x[n, t, e] W[f, e] + b[f], for each of query, key and value
    dtype = m.xq.dtype
    grad_inputs = []
    grad_in_weight = np.zeros((3 * m.E, m.E))
    grad_in_bias = None if m.in_bias is None else np.zeros(3 * m.E)
    for which, x in enumerate((m.xq, m.xk, m.xv)):
        weight, _ = m.projection(which)
        delta = grad_projected[which]
        grad_x = np.zeros(x.shape)
        for n in range(x.shape[0]):
            for t in range(x.shape[1]):
                for f in range(m.E):
                    d = delta[n, t, f]
                    if grad_in_bias is not None:
                        grad_in_bias[which * m.E + f] += d
                    for e in range(m.E):
                        grad_x[n, t, e] += d * float(weight[f, e])
                        grad_in_weight[which * m.E + f, e] += d * float(x[n, t, e])
        grad_inputs.append(m.layout(grad_x.astype(dtype)))
    return (
        grad_inputs[0],
        grad_inputs[1],
        grad_inputs[2],
        grad_in_weight.astype(dtype),
        None if grad_in_bias is None else grad_in_bias.astype(dtype),
        grad_out_weight.astype(dtype),
        None if grad_out_bias is None else grad_out_bias.astype(dtype),
    )


# ----------------------------------------------------------- multi-head, vectorized


def _split_heads(x: FloatArray, heads: int) -> FloatArray:
    """``(N, T, E)`` → ``(N, H, T, d_h)`` (a view)."""
    n, length, embed = x.shape
    return np.swapaxes(x.reshape(n, length, heads, embed // heads), 1, 2)


def _merge_heads(x: FloatArray) -> FloatArray:
    """``(N, H, T, d_h)`` → ``(N, T, E)`` (a copy)."""
    n, heads, length, width = x.shape
    return np.swapaxes(x, 1, 2).reshape(n, length, heads * width)


def _project(x: FloatArray, weight: FloatArray, bias: FloatArray | None) -> FloatArray:
    out: FloatArray = np.matmul(x, weight.T)
    if bias is not None:
        out += bias
    return out


def _heads(m: _MultiHead) -> tuple[FloatArray, FloatArray, FloatArray]:
    return (
        _split_heads(_project(m.xq, *m.projection(0)), m.heads),
        _split_heads(_project(m.xk, *m.projection(1)), m.heads),
        _split_heads(_project(m.xv, *m.projection(2)), m.heads),
    )


def multi_head_attention_vectorized(
    query: FloatArray,
    key: FloatArray,
    value: FloatArray,
    num_heads: int,
    in_proj_weight: FloatArray,
    in_proj_bias: FloatArray | None,
    out_proj_weight: FloatArray,
    out_proj_bias: FloatArray | None,
    attn_mask: Array | None = None,
    key_padding_mask: Array | None = None,
    batch_first: bool = False,
) -> FloatArray:
    """torch's multi-head attention output, the heads stacked on one batch axis.

    Inputs ``(L, N, E)``, ``(S, N, E)``, ``(S, N, E)`` (``(N, L, E)``...
    with ``batch_first``; ``(L, E)``... unbatched). Boolean masks are True
    where attention is *blocked* (``nn.MultiheadAttention``'s polarity, the
    opposite of ``scaled_dot_product_attention``'s); float masks are added.
    Each head is scaled by ``1/√(E / num_heads)``. A fully blocked row gives
    ``out_proj_bias`` (its heads' outputs are 0), as torch 2.13 returns.
    """
    m = _check_multi_head(
        query, key, value, num_heads, in_proj_weight, in_proj_bias,
        out_proj_weight, out_proj_bias, attn_mask, key_padding_mask, batch_first,
    )  # fmt: skip
    q, k, v = _heads(m)
    attended = _merge_heads(_attend(q, k, v, _head_bias(m), m.scale))
    return m.layout(_project(attended, m.out_weight, m.out_bias))


def multi_head_attention_backward_vectorized(
    grad_output: FloatArray,
    query: FloatArray,
    key: FloatArray,
    value: FloatArray,
    num_heads: int,
    in_proj_weight: FloatArray,
    in_proj_bias: FloatArray | None,
    out_proj_weight: FloatArray,
    out_proj_bias: FloatArray | None,
    attn_mask: Array | None = None,
    key_padding_mask: Array | None = None,
    batch_first: bool = False,
) -> MhaGrads:
    """Gradients of ``(query, key, value, in_proj_weight, in_proj_bias, out_proj_weight,
    out_proj_bias)`` by matrix products; ``None`` for an absent bias.

    Masks are not differentiated. With one array passed as query, key and
    value, each gradient is still its own argument's; their sum is the
    gradient with respect to the shared array.
    """
    m = _check_multi_head(
        query, key, value, num_heads, in_proj_weight, in_proj_bias,
        out_proj_weight, out_proj_bias, attn_mask, key_padding_mask, batch_first,
    )  # fmt: skip
    g = _check_mha_grad_output(grad_output, m)
    g = g[np.newaxis] if g.ndim == 2 else (g if batch_first else np.swapaxes(g, 0, 1))
    q, k, v = _heads(m)
    bias = _head_bias(m)
    attended = _merge_heads(_attend(q, k, v, bias, m.scale))
    rows = g.reshape(-1, m.E)
    grad_out_weight: FloatArray = np.matmul(rows.T, attended.reshape(-1, m.E))
    grad_out_bias = None if m.out_bias is None else column_sums(rows)
    grad_attended = _split_heads(np.matmul(g, m.out_weight), m.heads)
    grads = _attend_backward(grad_attended, q, k, v, bias, m.scale)
    grad_inputs = []
    grad_weights = []
    grad_biases = []
    for which, (x, grad) in enumerate(zip((m.xq, m.xk, m.xv), grads, strict=True)):
        delta = _merge_heads(grad)
        weight, _ = m.projection(which)
        grad_inputs.append(m.layout(np.matmul(delta, weight)))
        flat = delta.reshape(-1, m.E)
        grad_weights.append(np.matmul(flat.T, x.reshape(-1, m.E)))
        grad_biases.append(column_sums(flat))
    grad_in_bias = None if m.in_bias is None else np.concatenate(grad_biases)
    return (
        grad_inputs[0],
        grad_inputs[1],
        grad_inputs[2],
        np.concatenate(grad_weights),
        grad_in_bias,
        grad_out_weight,
        grad_out_bias,
    )
