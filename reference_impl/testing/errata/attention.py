"""Wrong formulas of attention: mask polarity, mask placement, masking by zero, the
per-head scale, the diagonal softmax Jacobian and the causal alignment."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from reference_impl import attention, vectorized
from reference_impl.activations import softmax_vectorized
from reference_impl.testing.errata.catalog import Erratum


def mask_polarity_reversed(
    query: Any,
    key: Any,
    value: Any,
    attn_mask: Any = None,
    is_causal: bool = False,
    scale: Any = None,
) -> Any:
    """rasbt/LLMs-from-scratch issue #1061: a boolean mask read as True = blocked.

    The notebook's scaled_dot_product_attention variant handed torch the mask
    of its hand-written attention, True above the diagonal where a token must
    not look, while torch reads True as "may attend": every token saw the
    future and not the past (fixed in pull request #1062). Shrunk
    counterexample (float64, self-attention): query = key = value =
    [[[0], [1/16]]], attn_mask all True (every position may be attended).
    torch's row 1 is 0.0313; the reversed mask blocks every position, so the
    slip returns 0.
    """
    if isinstance(attn_mask, np.ndarray) and attn_mask.dtype == np.bool_:
        attn_mask = ~attn_mask
    return vectorized.scaled_dot_product_attention(query, key, value, attn_mask, is_causal, scale)


def mask_after_softmax(
    query: Any,
    key: Any,
    value: Any,
    attn_mask: Any = None,
    is_causal: bool = False,
    scale: Any = None,
) -> Any:
    """pytorch-image-models pull request #2236: the mask applied to the probabilities.

    Before the fix, the non-fused path of ``EvaAttention`` in timm's
    ``eva.py`` took the softmax over every key and only then filled the
    blocked positions with −∞, so a masked position received a weight of −∞
    instead of 0 and the output became infinite or NaN. Here the softmax of
    ``c Q Kᵀ`` gets the additive bias afterwards (−∞ where blocked, a float
    mask's values added). Shrunk counterexample (float64, self-attention):
    query = key = value = zeros of shape (2, 2, 2), attn_mask True everywhere
    but position (1, 1, 1). torch gives 0 for row 1 of batch 1; the slip gives
    the weight −∞ to key 1 and −∞ · 0 = NaN.
    """
    a = attention._check_attention(query, key, value, attn_mask, is_causal, scale)
    scores = np.matmul(a.query, np.swapaxes(a.key, -1, -2)) * a.scale
    p = softmax_vectorized(scores, -1)
    bias = attention._bias(a)
    if bias is not None:
        p = p + bias
    with np.errstate(invalid="ignore", over="ignore"):
        return np.matmul(p, a.value).astype(a.query.dtype)


def masked_scores_times_zero(
    query: Any,
    key: Any,
    value: Any,
    attn_mask: Any = None,
    is_causal: bool = False,
    scale: Any = None,
) -> Any:
    """Classic slip: the scores multiplied by the mask (0 where blocked), not set to −∞.

    ``s ⊙ 1[allowed]`` gives a blocked position the score 0, so it still gets
    the weight ``e^{0 − m} / Σ`` and its value leaks into the output. Shrunk
    counterexample (float64, self-attention): query = key = value of shape
    (2, 2, 2), zero but for [1, 1, 1] = 1/16, attn_mask True everywhere but
    [1, 1, 1]. Row 1 of batch 1 may attend key 0 only, whose value is 0; the
    slip gives the blocked key the score 0, equal to key 0's, and returns
    ½ v₁ = [0, 0.03125].
    """
    a = attention._check_attention(query, key, value, attn_mask, is_causal, scale)
    scores = np.matmul(a.query, np.swapaxes(a.key, -1, -2)) * a.scale
    bias = attention._bias(a)
    if bias is not None:
        blocked = np.isneginf(bias)
        scores = np.where(blocked, 0.0 * scores, scores + np.where(blocked, 0.0, bias))
    return np.matmul(softmax_vectorized(scores.astype(a.query.dtype), -1), a.value)


def scale_by_model_width(
    query: Any,
    key: Any,
    value: Any,
    num_heads: int,
    in_proj_weight: Any,
    in_proj_bias: Any,
    out_proj_weight: Any,
    out_proj_bias: Any,
    attn_mask: Any = None,
    key_padding_mask: Any = None,
    batch_first: bool = False,
) -> Any:
    """Classic slip: every head scaled by ``1/√E``, the model width, not ``1/√(E / H)``.

    Right for one head only; with H heads the scores are too small by √H.
    Shrunk counterexample (float64): E = 4, two heads, L = S = N = 2,
    inputs zero but for query[0, 0, 0] = key[0, 0, 0] = value[0, 0, 0] = 1/16,
    in_proj_weight zero but for W[0, 0] = W[4, 0] = W[8, 0] = 1/16, no
    in_proj_bias, out_proj_weight zero but for [3, 0] = 1/16. Head 0's score
    (1/256)² is scaled by 1/2 instead of 1/√2: output[0, 0, 3] differs by
    1.9e-10, 1.7·10⁴ times the float64 bound.
    """
    m = attention._check_multi_head(
        query, key, value, num_heads, in_proj_weight, in_proj_bias,
        out_proj_weight, out_proj_bias, attn_mask, key_padding_mask, batch_first,
    )  # fmt: skip
    q, k, v = attention._heads(m)
    wrong = 1.0 / math.sqrt(m.E)
    attended = attention._merge_heads(attention._attend(q, k, v, attention._head_bias(m), wrong))
    return m.layout(attention._project(attended, m.out_weight, m.out_bias))


def diagonal_softmax_jacobian(
    grad_output: Any,
    query: Any,
    key: Any,
    value: Any,
    attn_mask: Any = None,
    is_causal: bool = False,
    scale: Any = None,
) -> Any:
    """Classic slip: ``∂L/∂s = p(1 − p) ∂L/∂p``, the softmax Jacobian's diagonal only.

    The off-diagonal terms ``−p_j p_i`` are lost, so ``∂L/∂q`` and ``∂L/∂k``
    are wrong as soon as a row attends two positions (``∂L/∂v`` stays right).
    Shrunk counterexample (float64): query [[[0], [0]]], key [[[1/16], [0]]],
    value [[[0], [1/16]]], grad_output [[[1.75], [−1.3125]]]. All scores are
    0, p = [½, ½]; row 0 has ∂L/∂p = [0, 0.109375], so ∂L/∂s = ½(∂L/∂p − t) =
    [−0.02734375, 0.02734375] and ∂L/∂q[0, 0, 0] = −0.02734375 / 16 =
    −0.001708984375; the diagonal gives ∂L/∂s = [0, 0.02734375] and 0.
    """
    a = attention._check_attention(query, key, value, attn_mask, is_causal, scale)
    p = attention._probabilities(a.query, a.key, attention._bias(a), a.scale)
    grad_value = np.matmul(np.swapaxes(p, -1, -2), grad_output)
    ds = np.matmul(grad_output, np.swapaxes(a.value, -1, -2)) * p * (1 - p)
    grad_query = np.matmul(ds, a.key) * a.scale
    grad_key = np.matmul(np.swapaxes(ds, -1, -2), a.query) * a.scale
    return (
        attention._sum_to(grad_query, a.query.shape),
        attention._sum_to(grad_key, a.key.shape),
        attention._sum_to(grad_value, a.value.shape),
    )


def causal_bottom_right(
    query: Any,
    key: Any,
    value: Any,
    attn_mask: Any = None,
    is_causal: bool = False,
    scale: Any = None,
) -> Any:
    """Classic slip: the causal mask aligned bottom-right, ``j ≤ l + S − L``.

    That is the alignment of a query block appended after a cache of
    ``S − L`` keys; torch's ``is_causal`` is ``tril(ones(L, S))``, aligned
    top-left. The two agree when ``L = S`` only. Shrunk counterexample
    (float64): is_causal=True, L = 2, S = 1, query [[[0], [0]]], key [[[0]]],
    value [[[1/16]]]. torch's row 0 attends key 0 and returns 0.0625; aligned
    bottom-right, row 0 may attend no key (j ≤ 0 + 1 − 2) and returns 0.
    """
    if not is_causal:
        return vectorized.scaled_dot_product_attention(
            query, key, value, attn_mask, is_causal, scale
        )
    length, positions = np.shape(query)[-2], np.shape(key)[-2]
    allowed = np.tril(np.ones((length, positions), dtype=bool), k=positions - length)
    return vectorized.scaled_dot_product_attention(query, key, value, allowed, False, scale)


ERRATA = [
    Erratum(
        name="attention-mask-polarity-reversed",
        formula="scaled_dot_product_attention",
        source="rasbt/LLMs-from-scratch issue #1061 (fixed by pull request #1062)",
        mistake="a boolean attn_mask read as True = blocked; torch reads True = may attend",
        forward=mask_polarity_reversed,
    ),
    Erratum(
        name="attention-mask-after-softmax",
        formula="scaled_dot_product_attention",
        source="pytorch-image-models pull request #2236 (timm eva.py, EvaAttention)",
        mistake="softmax over every key, then the blocked weights filled with −∞",
        forward=mask_after_softmax,
    ),
    Erratum(
        name="attention-masked-scores-times-zero",
        formula="scaled_dot_product_attention",
        source="classic slip",
        mistake="blocked scores multiplied by 0 instead of set to −∞, so they keep weight",
        forward=masked_scores_times_zero,
    ),
    Erratum(
        name="multi-head-attention-scale-by-model-width",
        formula="multi_head_attention",
        source="classic slip",
        mistake="each head's scores scaled by 1/√E instead of 1/√(E / num_heads)",
        forward=scale_by_model_width,
    ),
    Erratum(
        name="attention-softmax-diagonal-jacobian",
        formula="scaled_dot_product_attention",
        source="classic slip",
        mistake="∂L/∂s = p(1 − p) ∂L/∂p, the softmax Jacobian's diagonal only",
        backward=diagonal_softmax_jacobian,
    ),
    Erratum(
        name="attention-causal-mask-bottom-right",
        formula="scaled_dot_product_attention",
        source="classic slip",
        mistake="is_causal aligned bottom-right (j ≤ l + S − L) instead of tril(ones(L, S))",
        forward=causal_bottom_right,
    ),
]
