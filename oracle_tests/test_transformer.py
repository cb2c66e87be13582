"""The transformer encoder block of :mod:`reference_impl.networks.transformer` against torch.nn.

``networks.TransformerEncoderLayer`` (and its pieces ``MultiheadAttention``
and ``Residual``) with grid-valued weights copied into the torch twin: the
output, ``∂L/∂x`` and every parameter gradient for a random grid upstream
gradient, compared through ``comparison.assert_close`` with the derived
length of :func:`encoder_length`.

torch's fast path ("BetterTransformer", a fused inference kernel of
``TransformerEncoderLayer`` and ``MultiheadAttention``) only runs in eval
mode with autograd off; the twins here run in training mode with
``dropout=0.0`` and gradients on, so torch takes its composite
(differentiable) path, which is the definition the reference follows.

Tolerance of the block (:func:`encoder_length`)
    As for the other networks (``netcases`` module docstring), each sublayer
    is a formula of the registry with its own derived reduction length, and
    to first order the relative errors of a chain add up:

    * self-attention: ``tolerances.multi_head_attention_length`` for the
      input and upstream gradient it actually sees, doubled. That bound
      takes the projections as exact, true for grid inputs only; inside the
      block the input is a layer norm's output (pre-norm) and the upstream
      gradient comes from a layer norm's backward (post-norm). A projection
      rounds by at most ``(E + 1) u Σ|terms|``, less than the ``(E + 2) u a``
      per score, and the ``(E + 1) u Σ|terms|`` per output, that the bound
      already counts for the heads' own products: counting every rounding
      twice covers it.
    * linear: ``in + out + rows`` (forward sum, ``∂L/∂x``, ``∂L/∂W``).
    * ReLU: 1; GELU: ``tolerances.ELEMENTARY_ULPS`` (one erf and a product).
    * each residual sum: 1 forward, 1 backward.
    * layer norm: ``tolerances.normalization_length`` of its input rows,
      with ``Γ`` scaled by the upstream gradient's size beyond the 2 that
      derivation assumes.

    A layer norm also carries the errors of the other layers across it: its
    Jacobian ``γ r (I − 1/n − x̂ x̂ᵀ/n)`` maps an error ``δ`` (per element)
    to at most ``Γ r δ (2(1 − 1/n) + X²)`` (``|δ_i − mean δ| ≤ 2(1 − 1/n) δ``;
    with ``n = 1`` the Jacobian is 0), so a relative error ``e`` of inputs of
    size ``M`` leaves as at most ``e A``, ``A = Γ κ (2(1 − 1/n) + X²)``
    (``κ = M r``), forward and, through the transposed Jacobian, backward.
    The lengths of the other sublayers are multiplied by both norms' ``A``,
    each norm's own length by the other norm's.

    Consequence: a layer norm of a nearly constant row (large ``κ``) is
    ill-conditioned, and the float32 bound then grows towards 1; as for
    ``layer_norm`` alone, such examples are decided by their float64 draws,
    where the bound stays below about 1e-7 (a wrong formula is off by O(1)).
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from oracle_tests.netcases import SMALL
from reference_impl import loops, networks, vectorized
from reference_impl.testing import report, strategies, tolerances
from reference_impl.testing.comparison import assert_agree

LABEL = "network: transformer encoder layer"
Array = np.ndarray[Any, Any]


def _to_torch(value: Array) -> torch.Tensor:
    return torch.from_numpy(np.array(value, copy=True))


def _set_grid_weights(draw: st.DrawFn, layer: networks.Layer, dtype: np.dtype[Any]) -> None:
    for name, value in layer.state().items():
        layer.set_parameter(name, draw(strategies.arrays(dtype, value.shape, SMALL), label=name))


@st.composite
def encoder_cases(
    draw: st.DrawFn, dtype: np.dtype[Any], max_length: int = 3, max_batch: int = 2
) -> tuple[networks.TransformerEncoderLayer, Array, Array]:
    """A tiny encoder block with grid weights, its input and an upstream gradient."""
    d_model = draw(st.integers(1, 4), label="d_model")
    nhead = draw(st.sampled_from([h for h in (1, 2) if d_model % h == 0]), label="nhead")
    options: dict[str, Any] = {
        "dim_feedforward": draw(st.integers(1, 4), label="dim_feedforward"),
        "activation": draw(st.sampled_from(["relu", "gelu"]), label="activation"),
        "norm_first": draw(st.booleans(), label="norm_first"),
        "batch_first": draw(st.booleans(), label="batch_first"),
        "bias": draw(st.booleans(), label="bias"),
    }
    layer = networks.TransformerEncoderLayer(d_model, nhead, dtype=dtype, **options)
    _set_grid_weights(draw, layer, dtype)
    length = draw(st.integers(1, max_length), label="L")
    batch = draw(st.integers(1, max_batch), label="N")
    shape = (batch, length, d_model) if options["batch_first"] else (length, batch, d_model)
    x = draw(strategies.arrays(dtype, shape, SMALL), label="x")
    upstream = draw(strategies.arrays(dtype, shape, SMALL), label="grad_output")
    return layer, x, upstream


def _float64_twin(layer: networks.TransformerEncoderLayer) -> networks.TransformerEncoderLayer:
    args, kwargs = layer.arguments
    twin = networks.TransformerEncoderLayer(*args, **kwargs)
    for name, value in layer.state().items():
        twin.set_parameter(name, value.astype(np.float64))
    return twin


def encoder_length(layer: networks.TransformerEncoderLayer, x: Array, upstream: Array) -> int:
    """The reduction length sizing the block's tolerance (module docstring)."""
    twin = _float64_twin(layer)
    seen: dict[str, Array] = {}
    for name, child in twin.children().items():
        original = child.backward

        def spy(grad: Array, ns: ModuleType, original: Any = original, name: str = name) -> Any:
            seen[name] = grad
            return original(grad, ns)

        setattr(child, "backward", spy)  # noqa: B010 (mypy: a method cannot be assigned)
    twin.forward(x.astype(np.float64), vectorized)
    twin.backward(upstream.astype(np.float64), vectorized)
    rows = x.size // x.shape[-1]
    d_model, ff = twin.linear1.in_features, twin.linear1.out_features
    attn = twin.self_attn
    attn_input = attn._saved
    assert attn_input is not None
    batch_first = attn_input if attn.batch_first else np.swapaxes(attn_input, 0, 1)
    p = attn.parameters()
    mha = tolerances.multi_head_attention_length(
        batch_first, batch_first, batch_first, attn.num_heads, p["in_proj_weight"],
        p.get("in_proj_bias"), p["out_proj.weight"], p.get("out_proj.bias"), None,
        float(np.abs(seen["self_attn"]).max()),
    )  # fmt: skip
    activation = tolerances.ELEMENTARY_ULPS if isinstance(twin.activation, networks.GELU) else 1
    others = 2 * mha + 2 * (d_model + ff + rows) + activation + 4
    own: list[int] = []
    crossing: list[float] = []
    for name in ("norm1", "norm2"):
        norm = twin.children()[name]
        assert isinstance(norm, networks.LayerNorm)
        sets = norm.saved_input.reshape(rows, d_model)
        kappa, xhat, rstd = tolerances.normalization_sets(sets, norm.hyper["eps"])
        gamma = 1.0 if norm.weight is None else max(1.0, float(np.abs(norm.weight).max()))
        gain = gamma * max(1.0, float(np.abs(seen[name]).max()) / 2)
        own.append(tolerances.normalization_length(d_model, rows, kappa, xhat, rstd, gain))
        crossing.append(max(1.0, gamma * kappa * (2 * (1 - 1 / d_model) + xhat**2)))
    total: float = others * crossing[0] * crossing[1] + own[0] * crossing[1] + own[1] * crossing[0]
    return math.ceil(total)


def torch_encoder(layer: networks.TransformerEncoderLayer) -> torch.nn.TransformerEncoderLayer:
    """The torch twin, in training mode (dropout 0.0): torch's differentiable path."""
    args, kwargs = layer.arguments
    twin = torch.nn.TransformerEncoderLayer(*args, **kwargs)
    dtype = next(iter(layer.state().values())).dtype
    twin.to(torch.float64 if dtype == np.float64 else torch.float32)
    twin.load_state_dict({k: _to_torch(v) for k, v in layer.state().items()}, strict=True)
    return twin.train()


def check_encoder(
    layer: networks.TransformerEncoderLayer, x: Array, upstream: Array, ns: ModuleType
) -> None:
    """Output, ∂L/∂x and every parameter gradient of ``ns`` equal torch.autograd's."""
    length = encoder_length(layer, x, upstream)
    output = layer.forward(x, ns)
    grad_x, grads = layer.backward(upstream, ns)
    twin = torch_encoder(layer)
    inputs = _to_torch(x).requires_grad_(True)
    expected = twin(inputs)
    expected.backward(_to_torch(upstream))
    assert inputs.grad is not None
    pairs: list[tuple[str, Any, Any]] = [
        ("output", output, expected.detach().numpy()),
        ("grad_x", grad_x, inputs.grad.numpy()),
    ]
    torch_grads = dict(twin.named_parameters())
    assert list(grads) == list(torch_grads), (list(grads), list(torch_grads))
    for key, param in torch_grads.items():
        assert param.grad is not None, key
        pairs.append((f"grad {key}", grads[key], param.grad.numpy()))
    for quantity, actual, _ in pairs:
        assert actual.dtype == x.dtype, f"{quantity} has dtype {actual.dtype}"
    assert_agree(
        pairs,
        formula=LABEL,
        actual_name=ns.__name__.rsplit(".", 1)[-1],
        expected_name="torch.autograd",
        dtype=x.dtype,
        reduction_length=length,
        context=f"\n  layer: {layer!r}, x: {x.dtype.name}{list(x.shape)}",
    )
    args, kwargs = layer.arguments
    corners = {
        "norm_first" if kwargs["norm_first"] else "post-norm",
        kwargs["activation"],
        "batch_first" if kwargs["batch_first"] else "sequence first",
        "bias" if kwargs["bias"] else "no bias",
        f"{args[1]} heads",
        x.dtype.name,
    }
    report.record_example(LABEL, f"{ns.__name__} = torch", frozenset(corners), frozenset())


@given(data=st.data())
def test_transformer_encoder_layer_matches_torch(data: st.DataObject) -> None:
    """Vectorized block = torch.nn.TransformerEncoderLayer: output, ∂L/∂x, every ∂L/∂θ.

    Rejects a residual that drops the skip path's gradient, the norm in the
    wrong place (pre- for post-norm), a missing sum of the query, key and
    value gradients of the self-attention, and any mislabelled weight.
    """
    dtype = data.draw(strategies.dtypes(), label="dtype")
    layer, x, upstream = data.draw(encoder_cases(dtype))
    check_encoder(layer, x, upstream, vectorized)


@settings(max_examples=4)
@given(data=st.data())
def test_transformer_encoder_layer_loops_match_torch(data: st.DataObject) -> None:
    """The loop namespace's block = torch's, on the tiniest shapes (the loops are slow)."""
    layer, x, upstream = data.draw(encoder_cases(np.dtype(np.float64), 2, 1))
    check_encoder(layer, x, upstream, loops)


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_layer_state_dict_keys_are_torchs(norm_first: bool) -> None:
    """Exactly torch's keys, order and shapes; rejects a layer whose weights would not copy."""
    layer = networks.TransformerEncoderLayer(4, 2, 6, norm_first=norm_first)
    twin = torch.nn.TransformerEncoderLayer(*layer.arguments[0], **layer.arguments[1])
    assert [(k, v.shape) for k, v in layer.state().items()] == [
        (k, tuple(v.shape)) for k, v in twin.state_dict().items()
    ]
    model = networks.Sequential(layer)
    assert list(model.state_dict()) == list(torch.nn.Sequential(twin).state_dict())


@given(data=st.data())
def test_multihead_self_attention_matches_torch(data: st.DataObject) -> None:
    """``MultiheadAttention`` = ``torch.nn.MultiheadAttention(x, x, x, need_weights=False)``.

    Rejects an input gradient that keeps only the query's share of the three uses.
    """
    dtype = data.draw(strategies.dtypes(), label="dtype")
    embed = data.draw(st.integers(1, 4), label="embed_dim")
    heads = data.draw(st.sampled_from([h for h in (1, 2) if embed % h == 0]), label="heads")
    bias, batch_first = data.draw(st.booleans(), label="bias"), data.draw(st.booleans())
    layer = networks.MultiheadAttention(embed, heads, bias, batch_first, dtype=dtype)
    for name, value in layer.state().items():
        layer.set_parameter(name, data.draw(strategies.arrays(dtype, value.shape, SMALL)))
    length, batch = data.draw(st.integers(1, 3), label="L"), data.draw(st.integers(1, 2))
    shape = (batch, length, embed) if batch_first else (length, batch, embed)
    x = data.draw(strategies.arrays(dtype, shape, SMALL), label="x")
    upstream = data.draw(strategies.arrays(dtype, shape, SMALL), label="grad_output")
    output = layer.forward(x, vectorized)
    grad_x, grads = layer.backward(upstream, vectorized)
    twin = torch.nn.MultiheadAttention(*layer.arguments[0], **layer.arguments[1])
    twin.to(torch.float64 if dtype == np.float64 else torch.float32).train()
    twin.load_state_dict({k: _to_torch(v) for k, v in layer.state().items()}, strict=True)
    inputs = _to_torch(x).requires_grad_(True)
    expected, _ = twin(inputs, inputs, inputs, need_weights=False)
    expected.backward(_to_torch(upstream))
    assert inputs.grad is not None
    pairs: list[tuple[str, Any, Any]] = [
        ("output", output, expected.detach().numpy()),
        ("grad_x", grad_x, inputs.grad.numpy()),
    ]
    for key, param in twin.named_parameters():
        assert param.grad is not None
        pairs.append((f"grad {key}", grads[key], param.grad.numpy()))
    first = x if batch_first else np.swapaxes(x, 0, 1)
    p = layer.parameters()
    mha = tolerances.multi_head_attention_length(
        first, first, first, heads, p["in_proj_weight"], p.get("in_proj_bias"),
        p["out_proj.weight"], p.get("out_proj.bias"), None, 1.0,
    )  # fmt: skip
    # the three gradients of x add up: two more roundings per element
    assert_agree(
        pairs,
        formula="network: multi-head self-attention",
        actual_name="vectorized",
        expected_name="torch.autograd",
        dtype=dtype,
        reduction_length=mha + 2,
    )
    corners = {"bias" if bias else "no bias", f"{heads} heads", np.dtype(dtype).name}
    report.record_example(
        "network: multi-head self-attention", "vectorized = torch", frozenset(corners), frozenset()
    )


def test_multihead_attention_init_is_torchs() -> None:
    """Xavier-uniform in_proj (3E, E), zero biases, U(±1/√E) out_proj.weight, as torch.

    Rejects a default-Linear init of the packed projection (bound 1/√E instead of √(6/4E)).
    """
    embed = 64
    layer = networks.MultiheadAttention(embed, 8, rng=np.random.default_rng(0))
    twin = torch.nn.MultiheadAttention(embed, 8)
    ours, theirs = layer.state(), twin.state_dict()
    assert list(ours) == list(theirs)
    for key, value in ours.items():
        reference = theirs[key].numpy()
        assert value.shape == reference.shape
        assert np.abs(value).max() <= np.abs(reference).max() * 1.05 + 1e-12, key
        assert np.abs(value).max() >= np.abs(reference).max() * 0.9, key


def test_residual_adds_both_paths() -> None:
    """``Residual(Linear)``: y = x + W x + b, ∂L/∂x = g + Wᵀ g; rejects dropping either path."""
    linear = networks.Linear(2, 2)
    linear.set_parameter("weight", np.array([[1.0, 2.0], [0.0, -1.0]]))
    linear.set_parameter("bias", np.array([0.5, 0.0]))
    block = networks.Residual(linear, networks.ReLU())
    model = networks.Sequential(block)
    assert list(model.state_dict()) == ["0.0.weight", "0.0.bias"]
    x = np.array([[1.0, 1.0]])
    y = model.forward(x)
    np.testing.assert_array_equal(y, [[1.0 + 3.5, 1.0 + 0.0]])
    grad_x, grads = model.backward(np.array([[1.0, 1.0]]))
    # relu gate: [1, 0] (z = [3.5, −1]); Wᵀ [1, 0] = [1, 2]
    np.testing.assert_array_equal(grad_x, [[2.0, 3.0]])
    np.testing.assert_array_equal(grads["0.0.weight"], [[1.0, 1.0], [0.0, 0.0]])
    np.testing.assert_array_equal(grads["0.0.bias"], [1.0, 0.0])
