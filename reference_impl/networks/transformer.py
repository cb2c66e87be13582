r"""The transformer encoder block, as ``torch.nn.TransformerEncoderLayer`` without dropout.

Pieces, each a :class:`~reference_impl.networks.Layer` usable in a
:class:`~reference_impl.networks.Sequential`:

:class:`MultiheadAttention`
    self-attention: the formula ``multi_head_attention`` with the layer's input
    as query, key and value. The input is used three times, so its gradient is
    the sum of the three returned by ``multi_head_attention_backward``::

        ∂L/∂x = ∂L/∂query + ∂L/∂key + ∂L/∂value

    Parameters under ``torch.nn.MultiheadAttention``'s ``state_dict`` names
    (``in_proj_weight`` (3E, E), ``in_proj_bias``, ``out_proj.weight``,
    ``out_proj.bias``) and its initialisation (Xavier-uniform packed
    projection, zero biases, ``U(−1/√E, 1/√E)`` output projection).
:class:`LayerNorm`, :class:`GELU`
    the formulas ``layer_norm`` and ``gelu``, as ``torch.nn``'s modules.
:class:`Residual`
    the skip connection ``y = x + f(x)`` around layers ``f = f_k ∘ … ∘ f_1``.
    Both paths carry the upstream gradient back to ``x``::

        ∂L/∂x = ∂L/∂y + J_fᵀ ∂L/∂y

    Its ``state_dict`` keys are its layers', prefixed by their index
    (``"0.weight"``), as a ``torch.nn.Sequential`` holding them would be.
:class:`TransformerEncoderLayer`
    with ``SA`` the self-attention and ``FF(x) = linear2(act(linear1(x)))``,

        post-norm (``norm_first=False``):  x ← norm1(x + SA(x)),  x ← norm2(x + FF(x))
        pre-norm  (``norm_first=True``):   x ← x + SA(norm1(x)),  x ← x + FF(norm2(x))

    i.e. a chain of :class:`Residual` and :class:`LayerNorm` layers, with
    exactly torch's ``state_dict`` keys (``self_attn.in_proj_weight``,
    ``linear1.weight``, ``norm1.weight``, ...), so weights copy across both ways.

A layer holding other layers (a *composite*) names each parameter
``"<child>.<name>"``, as torch nests module names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np

from reference_impl._validation import FloatArray, float_array
from reference_impl.networks.layers import Functional, Layer, Linear, ReLU, _count
from reference_impl.networks.normalization import LayerNorm


class _Composite(Layer):
    """A layer whose parameters are its children's, keyed ``"<child name>.<name>"``."""

    def children(self) -> Mapping[str, Layer]:
        raise NotImplementedError

    def parameters(self) -> dict[str, FloatArray]:
        return {
            f"{child}.{name}": value
            for child, layer in self.children().items()
            for name, value in layer.parameters().items()
        }

    def buffers(self) -> dict[str, FloatArray]:
        return {
            f"{child}.{name}": value
            for child, layer in self.children().items()
            for name, value in layer.buffers().items()
        }

    def set_parameter(self, name: str, value: FloatArray) -> None:
        child, _, rest = name.partition(".")
        layers = self.children()
        if child not in layers or not rest:
            raise KeyError(f"{type(self).__name__} has no parameter or buffer {name!r}")
        layers[child].set_parameter(rest, value)


def _chain_forward(layers: list[Layer], x: FloatArray, ns: ModuleType) -> FloatArray:
    for layer in layers:
        x = layer.forward(x, ns)
    return x


def _input_gradient(layer: Layer, grad: FloatArray | None) -> FloatArray:
    """A layer inside a block must pass a gradient on (an index input has none)."""
    if grad is None:
        raise ValueError(f"{type(layer).__name__} has no input gradient to pass back")
    return grad


def _chain_backward(
    layers: list[Layer], names: list[str], grad: FloatArray, ns: ModuleType
) -> tuple[FloatArray, dict[str, FloatArray]]:
    grads: dict[str, FloatArray] = {}
    for name, layer in zip(reversed(names), reversed(layers), strict=True):
        grad_in, layer_grads = layer.backward(grad, ns)
        grad = _input_gradient(layer, grad_in)
        grads.update({f"{name}.{key}" if name else key: g for key, g in layer_grads.items()})
    return grad, grads


class MultiheadAttention(Layer):
    """Self-attention ``multi_head_attention(x, x, x)``, as ``torch.nn.MultiheadAttention``.

    Input ``(L, N, E)`` (``(N, L, E)`` with ``batch_first``, ``(L, E)``
    unbatched); the output has the input's shape. torch's module returns
    ``(output, weights)``; this layer returns the output alone (torch's
    ``need_weights=False``), so that it chains.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        bias: bool = True,
        batch_first: bool = False,
        *,
        dtype: type | np.dtype[Any] = np.float64,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.embed_dim = _count("embed_dim", embed_dim)
        self.num_heads = _count("num_heads", num_heads)
        if embed_dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide embed_dim={embed_dim}")
        if not isinstance(bias, bool) or not isinstance(batch_first, bool):
            raise TypeError("bias and batch_first must be bools")
        self.batch_first = batch_first
        generator = np.random.default_rng() if rng is None else rng
        xavier = math.sqrt(6.0 / (embed_dim + 3 * embed_dim))
        kaiming = 1.0 / math.sqrt(embed_dim)
        self._params: dict[str, FloatArray | None] = {
            "in_proj_weight": np.asarray(
                generator.uniform(-xavier, xavier, (3 * embed_dim, embed_dim)), dtype=dtype
            ),
            "in_proj_bias": np.zeros(3 * embed_dim, dtype) if bias else None,
            "out_proj.weight": np.asarray(
                generator.uniform(-kaiming, kaiming, (embed_dim, embed_dim)), dtype=dtype
            ),
            "out_proj.bias": np.zeros(embed_dim, dtype) if bias else None,
        }
        self._saved: FloatArray | None = None
        self.arguments = ((embed_dim, num_heads), {"bias": bias, "batch_first": batch_first})

    def parameters(self) -> dict[str, FloatArray]:
        return {name: value for name, value in self._params.items() if value is not None}

    def set_parameter(self, name: str, value: FloatArray) -> None:
        current = self._params.get(name)
        if current is None:
            raise KeyError(f"MultiheadAttention has no parameter {name!r}")
        value = float_array(name, value)
        if value.shape != current.shape:
            raise ValueError(f"{name} must have shape {current.shape}, got {value.shape}")
        self._params[name] = np.array(value, dtype=current.dtype, copy=True)

    def _formula_arguments(self) -> tuple[Any, ...]:
        p = self._params
        return (
            self.num_heads,
            p["in_proj_weight"],
            p["in_proj_bias"],
            p["out_proj.weight"],
            p["out_proj.bias"],
        )

    def forward(self, x: FloatArray, ns: ModuleType) -> FloatArray:
        args = self._formula_arguments()
        out: FloatArray = ns.multi_head_attention(x, x, x, *args, batch_first=self.batch_first)
        self._saved = x
        return out

    def backward(
        self, grad_output: FloatArray, ns: ModuleType
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        x = self._saved
        if x is None:
            raise RuntimeError("MultiheadAttention.backward called before forward")
        args = self._formula_arguments()
        grads = ns.multi_head_attention_backward(
            grad_output, x, x, x, *args, batch_first=self.batch_first
        )
        grad_query, grad_key, grad_value, *param_grads = grads
        grad_input: FloatArray = grad_query + grad_key + grad_value
        named = zip(self._params, param_grads, strict=True)
        return grad_input, {name: g for name, g in named if g is not None}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape)


class GELU(Functional):
    """``x Φ(x)`` (or its tanh form), as ``torch.nn.GELU``."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__("gelu", approximate=approximate)


class Residual(_Composite):
    """The skip connection ``x + f(x)``, ``f`` the layers in order; backward adds both paths."""

    def __init__(self, *layers: Layer) -> None:
        if not layers:
            raise ValueError("Residual needs at least one layer")
        for index, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{index}] must be a Layer, got {type(layer).__name__}")
        self.layers = list(layers)
        self.arguments = (tuple(self.layers), {})

    def children(self) -> Mapping[str, Layer]:
        return {str(i): layer for i, layer in enumerate(self.layers)}

    def forward(self, x: FloatArray, ns: ModuleType) -> FloatArray:
        branch = _chain_forward(self.layers, x, ns)
        if branch.shape != x.shape:
            raise ValueError(f"Residual: the layers map shape {x.shape} to {branch.shape}")
        out: FloatArray = x + branch
        return out

    def backward(
        self, grad_output: FloatArray, ns: ModuleType
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        names = list(self.children())
        grad_branch, grads = _chain_backward(self.layers, names, grad_output, ns)
        grad_input: FloatArray = grad_output + grad_branch
        return grad_input, grads

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape)


_ACTIVATIONS = {"relu": ReLU, "gelu": GELU}


class TransformerEncoderLayer(_Composite):
    """``torch.nn.TransformerEncoderLayer`` with ``dropout=0.0``, pre- or post-norm.

    The arguments are torch's, in torch's order; ``dropout`` must be 0.

    ``activation`` is ``"relu"`` or ``"gelu"`` (exact). The parameters are
    torch's, in torch's order: ``self_attn.*``, ``linear1.*``, ``linear2.*``,
    ``norm1.*``, ``norm2.*``. :attr:`blocks` is the chain actually run: two
    :class:`Residual` layers, with a :class:`LayerNorm` after each (post-norm)
    or inside each, first (pre-norm).
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.0,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        *,
        dtype: type | np.dtype[Any] = np.float64,
        rng: np.random.Generator | None = None,
    ) -> None:
        if dropout != 0.0:
            raise ValueError(f"dropout must be 0.0 (no dropout is implemented), got {dropout!r}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be 'relu' or 'gelu', got {activation!r}")
        generator = np.random.default_rng() if rng is None else rng
        self.self_attn = MultiheadAttention(
            d_model, nhead, bias, batch_first, dtype=dtype, rng=generator
        )
        self.linear1 = Linear(d_model, dim_feedforward, bias, dtype=dtype, rng=generator)
        self.linear2 = Linear(dim_feedforward, d_model, bias, dtype=dtype, rng=generator)
        self.norm1 = LayerNorm(d_model, layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, layer_norm_eps, bias=bias, dtype=dtype)
        self.activation: Layer = _ACTIVATIONS[activation]()
        self.norm_first = norm_first
        feedforward = (self.linear1, self.activation, self.linear2)
        self.blocks: list[Layer]
        if norm_first:
            self.blocks = [
                Residual(self.norm1, self.self_attn),
                Residual(self.norm2, *feedforward),
            ]
        else:
            self.blocks = [Residual(self.self_attn), self.norm1, Residual(*feedforward), self.norm2]
        self.arguments = (
            (d_model, nhead),
            {
                "dim_feedforward": dim_feedforward,
                "dropout": 0.0,
                "activation": activation,
                "layer_norm_eps": layer_norm_eps,
                "batch_first": batch_first,
                "norm_first": norm_first,
                "bias": bias,
            },
        )

    def children(self) -> Mapping[str, Layer]:
        return {
            "self_attn": self.self_attn,
            "linear1": self.linear1,
            "linear2": self.linear2,
            "norm1": self.norm1,
            "norm2": self.norm2,
        }

    def forward(self, x: FloatArray, ns: ModuleType) -> FloatArray:
        return _chain_forward(self.blocks, float_array("x", x), ns)

    def backward(
        self, grad_output: FloatArray, ns: ModuleType
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        torch_names = {id(layer): name for name, layer in self.children().items()}
        grad, grads = grad_output, {}
        for block in reversed(self.blocks):
            grad_in, block_grads = block.backward(grad, ns)
            grad = _input_gradient(block, grad_in)
            for key, value in block_grads.items():
                # renamed from the blocks' nesting ("0.weight" of a Residual) to torch's
                if isinstance(block, Residual):
                    index, _, name = key.partition(".")
                    owner = block.layers[int(index)]
                else:
                    owner, name = block, key
                grads[f"{torch_names[id(owner)]}.{name}"] = value
        return grad, {key: grads[key] for key in self.parameters() if key in grads}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape)
