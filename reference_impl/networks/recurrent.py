"""Embedding and recurrent layers: ``Embedding``, ``RNN``, ``LSTM``, ``GRU`` and ``LastStep``.

Conventions inside a :class:`~reference_impl.networks.Sequential`
    torch's ``RNN``, ``LSTM`` and ``GRU`` return a tuple, ``(output, h_n)``
    or ``(output, (h_n, c_n))``, which ``torch.nn.Sequential`` cannot pass on.
    Here a recurrent layer returns ``output``, the hidden state of every time
    step, (T, N, H) or (N, T, H) with ``batch_first``, and always starts from
    zero states (torch's default when no state is passed). For one layer and
    one direction, ``h_n`` is ``output``'s last step, which :class:`LastStep`
    takes: ``Embedding → LSTM → LastStep → Linear`` is the usual sequence
    classifier on ``h_n``. ``Flatten`` after a ``batch_first`` layer reads
    every step instead. (``h_n`` and ``c_n`` themselves are the formulas'
    other outputs: call ``ns.lstm`` directly for them.)

    The backward of the layer hands ``(∂L/∂output, 0, ...)`` to the
    sequence's ``*_backward`` formula (backpropagation through time), which
    is exact: ``∂L/∂h_n`` reaches the last step through ``output``.

Parameters
    torch's names and layouts: ``weight_ih_l0`` (G·H, I), ``weight_hh_l0``
    (G·H, H), ``bias_ih_l0`` and ``bias_hh_l0`` (G·H) (none with
    ``bias=False``), gate blocks in torch's order (i, f, g, o for the LSTM;
    r, z, n for the GRU), every one drawn from U(−1/√H, 1/√H) as torch does.
    The formulas' arguments drop the ``_l0`` of layer 0. One layer, one
    direction: torch's ``num_layers``, ``bidirectional``, ``dropout`` and
    ``proj_size`` have no counterpart.

Embedding
    Reads an integer array of indices of any shape (so it must be the first
    layer of a ``Sequential``, whose input it takes); the indices have no
    gradient, so ``∂L/∂x`` of such a network is ``None``. ``weight`` is drawn
    from N(0, 1) with the ``padding_idx`` row zeroed, as torch's.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from reference_impl._validation import (
    FloatArray,
    check_bool,
    check_ndim,
    check_shape,
    float_array,
    is_int,
)
from reference_impl.networks.layers import Array, Functional, Layer, _count, _initializer

Dtype = type | np.dtype[Any]


class Embedding(Functional):
    """``weight[input]`` with ``weight`` of shape (num_embeddings, embedding_dim), as
    ``torch.nn.Embedding``; ``padding_idx``'s row gets no gradient."""

    weight: FloatArray
    index_input = True

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        *,
        dtype: Dtype = np.float64,
        rng: np.random.Generator | None = None,
    ) -> None:
        rows = _count("num_embeddings", num_embeddings)
        dim = _count("embedding_dim", embedding_dim)
        if padding_idx is not None:
            if not is_int(padding_idx):
                raise TypeError(f"padding_idx must be an int or None, got {padding_idx!r}")
            if not -rows <= int(padding_idx) < rows:
                raise ValueError(f"padding_idx must be in [-{rows}, {rows}), got {padding_idx}")
        generator = np.random.default_rng() if rng is None else rng
        weight = np.asarray(generator.standard_normal((rows, dim)), dtype=dtype)
        if padding_idx is not None:
            weight[int(padding_idx)] = 0.0
        super().__init__("embedding", params={"weight": weight}, padding_idx=padding_idx)
        self.num_embeddings, self.embedding_dim, self.padding_idx = rows, dim, padding_idx
        self.arguments = ((num_embeddings, embedding_dim), {"padding_idx": padding_idx})


class _Recurrent(Functional):
    """One layer, one direction of the sequence formula ``kind`` (module docstring).

    The formula's initial states (``h0``, and ``c0`` for the LSTM) are its
    arguments after ``x``, held at ``None`` (zeros): they take their place in
    the backward's gradients and are dropped there, as an absent bias is.
    """

    kind = ""
    gates = 1
    states: tuple[str, ...] = ("h0",)
    weight_ih_l0: FloatArray
    weight_hh_l0: FloatArray
    bias_ih_l0: FloatArray | None
    bias_hh_l0: FloatArray | None

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bias: bool,
        batch_first: bool,
        dtype: Dtype,
        rng: np.random.Generator | None,
        **options: Any,
    ) -> None:
        inputs = _count("input_size", input_size)
        hidden = _count("hidden_size", hidden_size)
        bias = check_bool("bias", bias)
        batch_first = check_bool("batch_first", batch_first)
        rows = self.gates * hidden
        init = _initializer(rng, dtype, hidden)  # torch: U(−1/√H, 1/√H) for every parameter
        params: dict[str, FloatArray | None] = dict.fromkeys(self.states)
        params["weight_ih_l0"] = init((rows, inputs))
        params["weight_hh_l0"] = init((rows, hidden))
        params["bias_ih_l0"] = init((rows,)) if bias else None
        params["bias_hh_l0"] = init((rows,)) if bias else None
        super().__init__(self.kind, params=params, **options, batch_first=batch_first)
        self.input_size, self.hidden_size, self.batch_first = inputs, hidden, batch_first
        torch_kwargs = {**options, "bias": bias, "batch_first": batch_first}
        self.arguments = ((input_size, hidden_size), torch_kwargs)

    def formula_argument(self, name: str) -> str:
        """torch's ``weight_ih_l0`` is the formula's ``weight_ih`` (layer 0 of one)."""
        return name.removesuffix("_l0")


class RNN(_Recurrent):
    """Elman RNN, ``h_t = φ(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)``, as ``torch.nn.RNN``
    with one layer; ``nonlinearity`` is ``"tanh"`` or ``"relu"``."""

    kind, gates = "rnn", 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dtype: Dtype = np.float64,
        rng: np.random.Generator | None = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(
            input_size,
            hidden_size,
            bias=bias,
            batch_first=batch_first,
            dtype=dtype,
            rng=rng,
            nonlinearity=nonlinearity,
        )


class LSTM(_Recurrent):
    """LSTM (gates i, f, g, o), as ``torch.nn.LSTM`` with one layer; starts from h0 = c0 = 0."""

    kind, gates, states = "lstm", 4, ("h0", "c0")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bias: bool = True,
        batch_first: bool = False,
        dtype: Dtype = np.float64,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(
            input_size, hidden_size, bias=bias, batch_first=batch_first, dtype=dtype, rng=rng
        )


class GRU(_Recurrent):
    """GRU (gates r, z, n, reset applied to ``W_hn h + b_hn``), as ``torch.nn.GRU`` with
    one layer."""

    kind, gates = "gru", 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bias: bool = True,
        batch_first: bool = False,
        dtype: Dtype = np.float64,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(
            input_size, hidden_size, bias=bias, batch_first=batch_first, dtype=dtype, rng=rng
        )


class LastStep(Layer):
    """The last time step of a sequence: ``x[-1]`` of (T, N, H), ``x[:, -1]`` of (N, T, H)
    with ``batch_first``; after a one-layer, one-direction recurrent layer this is torch's
    ``h_n[0]``. The backward puts ``δ`` at the last step and zeros elsewhere.

    torch has no such module; its twin is ``output[-1]`` (``output[:, -1]``)
    of the recurrent module's output.
    """

    def __init__(self, batch_first: bool = False) -> None:
        self.batch_first = check_bool("batch_first", batch_first)
        self.arguments = ((), {"batch_first": self.batch_first})
        self._shape: tuple[int, ...] | None = None

    def _axis(self) -> int:
        return 1 if self.batch_first else 0

    def forward(self, x: Array, ns: ModuleType) -> FloatArray:
        x = float_array("x", x)
        check_ndim("x", x, 3)
        if x.shape[self._axis()] == 0:
            raise ValueError(f"x has no time step: shape {x.shape}")
        self._shape = x.shape
        return np.array(np.take(x, -1, axis=self._axis()), copy=True)

    def backward(
        self, grad_output: FloatArray, ns: ModuleType
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        if self._shape is None:
            raise RuntimeError("LastStep.backward called before forward")
        grad_output = float_array("grad_output", grad_output)
        check_shape("grad_output", grad_output, self.output_shape(self._shape))
        grad = np.zeros(self._shape, dtype=grad_output.dtype)
        if self.batch_first:
            grad[:, -1] = grad_output
        else:
            grad[-1] = grad_output
        return grad, {}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 3:
            raise ValueError(f"x must have 3 dimensions, got shape {tuple(input_shape)}")
        axis = self._axis()
        return tuple(n for i, n in enumerate(input_shape) if i != axis)
