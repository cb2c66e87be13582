"""What is specific to attention: conventions, identities and worked examples.

The generic properties compare both namespaces with torch on drawn cases; the
tests here pin what a drawn case cannot state on its own: torch's answer for
fully masked rows, the causal alignment when L ≠ S, the opposite mask
polarities of the two functions, a multi-head layer as independent heads, and
self-attention through one shared tensor.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reference_impl.testing import oracles

DTYPES = [np.float32, np.float64]
TOL = {np.float32: 1e-5, np.float64: 1e-12}


def _grid(rng: np.random.Generator, *shape: int, dtype: Any = np.float64) -> np.ndarray:
    return (rng.integers(-64, 65, size=shape) / 16).astype(dtype)


def _torch_sdpa(
    query: np.ndarray, key: np.ndarray, value: np.ndarray, grad: np.ndarray, **options: Any
) -> tuple[np.ndarray, ...]:
    q, k, v = (torch.tensor(x, requires_grad=True) for x in (query, key, value))
    tensors = [q, k, v]
    mask = options.pop("attn_mask", None)
    out = F.scaled_dot_product_attention(
        q, k, v, None if mask is None else torch.tensor(mask), **options
    )
    grads = torch.autograd.grad(out, tensors, torch.tensor(grad))
    return (out.detach().numpy(), *(g.numpy() for g in grads))


def test_scaled_dot_product_attention_worked_example(namespace: ModuleType) -> None:
    """One query, two keys, scores [ln 3, 0]: p = [3/4, 1/4], worked by hand.

    o = ¾·4 + ¼·8 = 5; with g = 1: ∂L/∂v = p = [¾, ¼], ∂L/∂p = v = [4, 8],
    Σ p ∂L/∂p = 5, ∂L/∂s = p(∂L/∂p − 5) = [−¾, ¾], ∂L/∂q = Σ_j ∂L/∂s_j k_j =
    −¾ ln 3, ∂L/∂k = ∂L/∂s · q = [−¾, ¾]. Rejects a softmax without the
    shift-and-normalise (o ≠ 5), a Jacobian with the diagonal only (∂L/∂s =
    p(1 − p)·v = [3/4, 3/2]) and a missing or doubled scale.
    """
    query = np.array([[1.0]])
    key = np.array([[math.log(3.0)], [0.0]])
    value = np.array([[4.0], [8.0]])
    out = namespace.scaled_dot_product_attention(query, key, value, scale=1.0)
    dq, dk, dv = namespace.scaled_dot_product_attention_backward(
        np.ones((1, 1)), query, key, value, scale=1.0
    )
    np.testing.assert_allclose(out, [[5.0]], rtol=1e-14)
    np.testing.assert_allclose(dv, [[0.75], [0.25]], rtol=1e-14)
    np.testing.assert_allclose(dq, [[-0.75 * math.log(3.0)]], rtol=1e-14)
    np.testing.assert_allclose(dk, [[-0.75], [0.75]], rtol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["boolean", "float"])
def test_scaled_dot_product_attention_fully_masked_row_is_zero_as_torch(
    namespace: ModuleType, dtype: Any, kind: str
) -> None:
    """A row whose every key is blocked: output 0 and no gradient, as torch 2.13 on the CPU.

    Rejects the plain softmax of a row of −∞ (NaN, what torch returned before
    the fix of PyTorch issues #103749 and #103963) and a row left uniform.
    """
    rng = np.random.default_rng(7)
    query, key = _grid(rng, 2, 3, 4, dtype=dtype), _grid(rng, 2, 5, 4, dtype=dtype)
    value = _grid(rng, 2, 5, 2, dtype=dtype)
    allowed = rng.random((3, 5)) < 0.7
    allowed[:, 0] = True
    allowed[1] = False
    mask = allowed if kind == "boolean" else np.where(allowed, 0.5, -np.inf).astype(dtype)
    grad = _grid(rng, 2, 3, 2, dtype=dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        out = namespace.scaled_dot_product_attention(query, key, value, mask)
        dq, dk, dv = namespace.scaled_dot_product_attention_backward(grad, query, key, value, mask)
    assert not np.any(out[:, 1]) and not np.any(dq[:, 1])
    expected = _torch_sdpa(query, key, value, grad, attn_mask=mask)
    for ours, theirs in zip((out, dq, dk, dv), expected, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=TOL[dtype], atol=TOL[dtype])
    assert not np.any(expected[0][:, 1]), "torch no longer returns 0 for a fully masked row"


@pytest.mark.parametrize(("length", "positions"), [(1, 3), (3, 1), (2, 4), (4, 2)])
def test_scaled_dot_product_attention_causal_is_aligned_top_left(
    namespace: ModuleType, length: int, positions: int
) -> None:
    """``is_causal`` is ``tril(ones(L, S))``: query l sees keys 0 … l, also when L ≠ S.

    Query 0 therefore sees key 0 alone and returns its value, whatever L and
    S. Rejects the bottom-right alignment ``j ≤ l + S − L`` (where query 0
    sees S − L + 1 keys, or none when L > S) and a causal mask ignored when
    L ≠ S.
    """
    rng = np.random.default_rng(length * 10 + positions)
    query = _grid(rng, length, 3)
    key = _grid(rng, positions, 3)
    value = _grid(rng, positions, 2)
    out = namespace.scaled_dot_product_attention(query, key, value, is_causal=True)
    np.testing.assert_array_equal(out[0], value[0])
    explicit = np.tril(np.ones((length, positions), dtype=bool))
    same = namespace.scaled_dot_product_attention(query, key, value, attn_mask=explicit)
    np.testing.assert_array_equal(out, same)
    (expected, *_) = _torch_sdpa(query, key, value, np.ones_like(out), is_causal=True)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_scaled_dot_product_attention_extreme_scores_stay_finite(
    namespace: ModuleType, dtype: Any
) -> None:
    """Scores of ±2·10⁴ after scaling: no overflow, no NaN, and torch's values.

    Rejects a softmax without the shift by the row maximum (e^{20000} = inf).
    """
    query = np.array([[[100.0, 0.0], [-100.0, 1.0]]], dtype=dtype)
    key = np.array([[[200.0, 0.0], [199.0, 2.0], [0.0, 1.0]]], dtype=dtype)
    value = np.array([[[1.0, -1.0], [2.0, 0.5], [-3.0, 4.0]]], dtype=dtype)
    grad = np.array([[[1.0, -2.0], [0.5, 0.25]]], dtype=dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        out = namespace.scaled_dot_product_attention(query, key, value, scale=1.0)
        grads = namespace.scaled_dot_product_attention_backward(grad, query, key, value, scale=1.0)
    expected = _torch_sdpa(query, key, value, grad, scale=1.0)
    for ours, theirs in zip((out, *grads), expected, strict=True):
        assert np.all(np.isfinite(ours))
        np.testing.assert_allclose(ours, theirs, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_scaled_dot_product_attention_self_attention_gradient_is_the_sum(
    namespace: ModuleType, dtype: Any
) -> None:
    """One array as query, key and value: each gradient is its own argument's.

    torch, given one tensor three times, returns the gradient with respect to
    that tensor: the sum of the three. Rejects a backward that returns the
    shared gradient three times (the sum would be three times too large) or
    that mistakes ∂L/∂query for the whole.
    """
    rng = np.random.default_rng(3)
    x = _grid(rng, 2, 3, 4, dtype=dtype)
    grad = _grid(rng, 2, 3, 4, dtype=dtype)
    grads = namespace.scaled_dot_product_attention_backward(grad, x, x, x, is_causal=True)
    separate = _torch_sdpa(x, x.copy(), x.copy(), grad, is_causal=True)[1:]
    for ours, theirs in zip(grads, separate, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=TOL[dtype], atol=TOL[dtype])
    shared = torch.tensor(x, requires_grad=True)
    out = F.scaled_dot_product_attention(shared, shared, shared, is_causal=True)
    (whole,) = torch.autograd.grad(out, shared, torch.tensor(grad))
    np.testing.assert_allclose(sum(grads), whole.numpy(), rtol=TOL[dtype], atol=TOL[dtype])


def _identity_layer(embed: int) -> dict[str, Any]:
    eye = np.eye(embed)
    return {
        "in_proj_weight": np.concatenate([eye, eye, eye]),
        "in_proj_bias": None,
        "out_proj_weight": eye,
        "out_proj_bias": None,
    }


def test_multi_head_attention_mask_polarity_is_opposite(namespace: ModuleType) -> None:
    """The same blocked positions: ``~M`` for scaled_dot_product_attention, ``M`` here.

    With identity projections and one head (scale 1/√E in both),
    ``multi_head_attention(x, attn_mask=M)`` is ``scaled_dot_product_attention(
    x, attn_mask=~M)``. Rejects either function reading its boolean mask with
    the other's polarity (rasbt/LLMs-from-scratch issue #1061).
    """
    rng = np.random.default_rng(11)
    x_q, x_k, x_v = _grid(rng, 3, 1, 4), _grid(rng, 5, 1, 4), _grid(rng, 5, 1, 4)
    blocked = rng.random((3, 5)) < 0.4
    blocked[:, 2] = False
    padding = np.array([[False, False, False, True, False]])
    out = namespace.multi_head_attention(
        x_q, x_k, x_v, 1, **_identity_layer(4), attn_mask=blocked, key_padding_mask=padding
    )
    allowed = ~(blocked | padding)
    expected = namespace.scaled_dot_product_attention(
        x_q[:, 0], x_k[:, 0], x_v[:, 0], attn_mask=allowed
    )
    np.testing.assert_allclose(out[:, 0], expected, rtol=1e-13, atol=1e-13)


def test_multi_head_attention_is_independent_heads(namespace: ModuleType) -> None:
    """Each head is scaled_dot_product_attention on its own d_h = E/H channels, scale 1/√d_h.

    With identity projections, head h of ``multi_head_attention`` equals
    ``scaled_dot_product_attention`` on channels h·d_h … (h+1)·d_h − 1.
    Rejects the scale 1/√E of the whole model, heads taken from interleaved
    channels, and heads that attend across each other's channels.
    """
    rng = np.random.default_rng(5)
    heads, width = 2, 2
    x_q, x_k, x_v = _grid(rng, 3, 2, 4), _grid(rng, 4, 2, 4), _grid(rng, 4, 2, 4)
    out = namespace.multi_head_attention(x_q, x_k, x_v, heads, **_identity_layer(4))
    for h in range(heads):
        c = slice(h * width, (h + 1) * width)
        expected = namespace.scaled_dot_product_attention(
            np.swapaxes(x_q[..., c], 0, 1),
            np.swapaxes(x_k[..., c], 0, 1),
            np.swapaxes(x_v[..., c], 0, 1),
        )
        np.testing.assert_allclose(np.swapaxes(out[..., c], 0, 1), expected, rtol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_first", [False, True])
def test_multi_head_attention_self_attention_gradient_is_the_sum(
    namespace: ModuleType, dtype: Any, batch_first: bool
) -> None:
    """One tensor as query, key and value through torch's own self-attention path.

    torch projects a shared input with one packed product (its ``q is k is v``
    branch); the gradient it returns for that input is the sum of our three.
    Rejects a backward that returns the shared gradient in each slot.
    """
    rng = np.random.default_rng(13)
    x = _grid(rng, 3, 2, 4, dtype=dtype)
    layer = {
        "in_proj_weight": (rng.integers(-4, 5, size=(12, 4)) / 16).astype(dtype),
        "in_proj_bias": (rng.integers(-4, 5, size=12) / 16).astype(dtype),
        "out_proj_weight": (rng.integers(-4, 5, size=(4, 4)) / 16).astype(dtype),
        "out_proj_bias": (rng.integers(-4, 5, size=4) / 16).astype(dtype),
    }
    padding = np.array([[False, False, True], [False, False, False]])  # (N, S) = (2, 3)
    if batch_first:
        padding = padding.T.copy()  # x is (N, L, E) = (3, 2, 4)
    grad = _grid(rng, 3, 2, 4, dtype=dtype)
    args: dict[str, Any] = {**layer, "key_padding_mask": padding, "batch_first": batch_first}
    grads = namespace.multi_head_attention_backward(grad, x, x, x, 2, **args)
    shared = torch.tensor(x, requires_grad=True)
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in layer.items()}
    out = oracles.multi_head_attention(
        shared,
        shared,
        shared,
        2,
        **tensors,
        key_padding_mask=torch.tensor(padding),
        batch_first=batch_first,
    )
    expected = torch.autograd.grad(out, [shared, *tensors.values()], torch.tensor(grad))
    np.testing.assert_allclose(
        grads[0] + grads[1] + grads[2], expected[0].numpy(), rtol=TOL[dtype], atol=TOL[dtype]
    )
    for ours, theirs in zip(grads[3:], expected[1:], strict=True):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=TOL[dtype], atol=TOL[dtype])
