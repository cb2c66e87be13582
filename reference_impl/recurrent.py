r"""Recurrent layers and embeddings: RNN, LSTM and GRU cells, whole sequences, BPTT.

Layouts are torch's. A cell of kind ``rnn`` (G = 1 gate block), ``lstm``
(G = 4: rows ``i, f, g, o``) or ``gru`` (G = 3: rows ``r, z, n``) has
``weight_ih`` of shape (G·H, I), ``weight_hh`` (G·H, H) and optional biases
``bias_ih``, ``bias_hh`` of length G·H; block ``k`` of a gate vector is rows
``[kH, (k + 1)H)``. Inputs are ``x`` (N, I) (a cell also takes (I,)),
hidden states (N, H); a sequence is (T, N, I), or (N, T, I) with
``batch_first``. An initial state of ``None`` means zeros, and its gradient is
``None``; an absent bias has the gradient ``None``. Indices below: ``t`` time,
``n`` example, ``i`` input feature, ``j, k`` hidden units, ``r`` gate row.

Pre-activations (every cell)
----------------------------
::

    A^x[t, n, r] = b_ih[r] + Σ_i W_ih[r, i] x[t, n, i]
    A^h[t, n, r] = b_hh[r] + Σ_k W_hh[r, k] h[t − 1, n, k]          (h[−1] = h0)

and, for the gradients, with ``δ^x = ∂L/∂A^x`` and ``δ^h = ∂L/∂A^h`` (the
chain rule through the two sums, weights shared by every step)::

    ∂L/∂x[t, n, i]   = Σ_r δ^x[t, n, r] W_ih[r, i]
    ∂L/∂h[t−1, n, k] ∋ Σ_r δ^h[t, n, r] W_hh[r, k]                  (one of its terms)
    ∂L/∂W_ih[r, i]   = Σ_t Σ_n δ^x[t, n, r] x[t, n, i]
    ∂L/∂W_hh[r, k]   = Σ_t Σ_n δ^h[t, n, r] h[t − 1, n, k]
    ∂L/∂b_ih[r]      = Σ_t Σ_n δ^x[t, n, r],     ∂L/∂b_hh[r] = Σ_t Σ_n δ^h[t, n, r]

For the RNN and the LSTM the two pre-activations are only ever added, so
δ^x = δ^h = δ (and the two bias gradients are equal); the GRU's candidate row
``n`` is the exception.

Vanilla RNN (``nonlinearity`` "tanh" or "relu")
-----------------------------------------------
::

    h_t = φ(A^x_t + A^h_t),      φ'(a) = 1 − φ(a)²  (tanh),  1[a > 0]  (relu, 0 at 0 as torch)

LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000)
-------------------------------------------------------------------------------
With ``a = A^x + A^h`` split into its blocks::

    i = σ(a_i),  f = σ(a_f),  g = tanh(a_g),  o = σ(a_o)
    c_t = f ⊙ c_{t−1} + i ⊙ g,       h_t = o ⊙ tanh(c_t)

GRU (Cho et al. 2014, in the form torch and cuDNN compute)
----------------------------------------------------------
The reset gate multiplies the *product* ``W_hn h + b_hn``, not ``h``::

    r = σ(A^x_r + A^h_r),   z = σ(A^x_z + A^h_z),   n = tanh(A^x_n + r ⊙ A^h_n)
    h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}

Backpropagation through time
----------------------------
Walk the steps backward, ``t = T − 1, …, 0``. The hidden state ``h_t`` feeds
the output ``t`` and the step ``t + 1``, so its gradient is the sum of the two;
the LSTM's cell state feeds ``h_t`` and ``c_{t+1}``, so its gradient is a sum
too. With ``g_t`` the upstream gradient of output ``t`` and the carried
gradients starting from the upstream gradients of the final states,
``dh_next = ∂L/∂h_n`` and ``dc_next = ∂L/∂c_n``::

    dh_t = g_t + dh_next                                   (added, never assigned)

    RNN   δ = dh_t ⊙ φ'(a_t)
          dh_next ← δ W_hh

    LSTM  dc_t = dc_next + dh_t ⊙ o ⊙ (1 − tanh² c_t)      (added, never assigned)
          δ_i = dc_t ⊙ g ⊙ i(1 − i)          δ_f = dc_t ⊙ c_{t−1} ⊙ f(1 − f)
          δ_g = dc_t ⊙ i ⊙ (1 − g²)          δ_o = dh_t ⊙ tanh(c_t) ⊙ o(1 − o)
          dc_next ← dc_t ⊙ f,    dh_next ← δ W_hh

    GRU   dn = dh_t ⊙ (1 − z),   dz = dh_t ⊙ (h_{t−1} − n),   δ_n = dn ⊙ (1 − n²)
          δ^x = [δ_n ⊙ A^h_n ⊙ r(1 − r),  dz ⊙ z(1 − z),  δ_n]
          δ^h = [δ_n ⊙ A^h_n ⊙ r(1 − r),  dz ⊙ z(1 − z),  δ_n ⊙ r]
          dh_next ← dh_t ⊙ z + δ^h W_hh

After the last step back, ``dh_next`` is ``∂L/∂h0`` and ``dc_next`` is
``∂L/∂c0``. The weight gradients are the sums over time and batch above. A
cell is the case T = 1, its output being its final state.

The loop version follows these lines element by element, one example at a
time, the weight gradients written as the explicit double sums. The
vectorized version makes the input products of every step one matrix product
(``x`` reshaped to (T·N, I)) before the recurrence, runs the recurrence with
one (N, H) × (H, G·H) product per step (the loop over time is inherent), and
forms ``∂L/∂x``, ``∂L/∂W_ih`` and ``∂L/∂W_hh`` after it as single products of
the stacked δ's.

Embedding
---------
::

    out[p, d] = W[idx[p], d]
    ∂L/∂W[v, d] = Σ_{p : idx[p] = v} g[p, d]          (0 for v = padding_idx)

``p`` runs over every position of the index array, whatever its shape. An
index used twice receives both contributions: the vectorized version adds
them with ``np.add.at``, which is unbuffered; ``W[idx] += g`` is buffered and
keeps only one of them. ``padding_idx`` only removes the gradient of its row
(the forward still reads it, as torch does); a negative value counts from
the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from reference_impl._scalars import real, tanh
from reference_impl._sums import column_sums
from reference_impl._validation import (
    FloatArray,
    IndexArray,
    check_bool,
    check_ndim,
    check_shape,
    float_array,
    index_array,
    is_int,
    same_dtype,
)
from reference_impl.activations import sigmoid_array, sigmoid_scalar

Grads = tuple[FloatArray | None, ...]

#: gate blocks of each cell kind, in torch's row order
GATES = {"rnn": ("h",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}
NONLINEARITIES = ("tanh", "relu")


# ---------------------------------------------------------------------- validation


def _padding_idx(padding_idx: object, num_embeddings: int) -> int | None:
    """``padding_idx`` as a row index in ``[0, V)``; a negative one counts from the end."""
    if padding_idx is None:
        return None
    if not is_int(padding_idx):
        raise TypeError(f"padding_idx must be an int or None, got {padding_idx!r}")
    index: int = int(padding_idx)  # type: ignore[call-overload]
    if not -num_embeddings <= index < num_embeddings:
        raise ValueError(
            f"padding_idx={index} is out of range for weight with {num_embeddings} rows "
            f"(it must lie in [-{num_embeddings}, {num_embeddings}))"
        )
    return index % num_embeddings


def _nonlinearity(nonlinearity: object) -> bool:
    """True for "relu", False for "tanh"; anything else is a ``ValueError``."""
    if not isinstance(nonlinearity, str) or nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return nonlinearity == "relu"


@dataclass(frozen=True)
class Params:
    """Validated weights of one cell kind, and the sizes they fix."""

    kind: str
    weight_ih: FloatArray
    weight_hh: FloatArray
    bias_ih: FloatArray | None
    bias_hh: FloatArray | None
    relu: bool = False

    @property
    def hidden(self) -> int:
        return int(self.weight_hh.shape[1])

    @property
    def gates(self) -> int:
        return len(GATES[self.kind])

    @property
    def input_size(self) -> int:
        return int(self.weight_ih.shape[1])

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self.weight_ih.dtype)


def _check_arrays(**arrays: object) -> dict[str, FloatArray | None]:
    """Every array a float ndarray (``None`` allowed), all of one dtype."""
    checked = {k: None if v is None else float_array(k, v) for k, v in arrays.items()}
    same_dtype(**checked)
    return checked


def _check_params(
    kind: str,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None,
    bias_hh: FloatArray | None,
    relu: bool = False,
) -> Params:
    gates = GATES[kind]
    g = len(gates)
    check_ndim("weight_ih", weight_ih, 2)
    check_ndim("weight_hh", weight_hh, 2)
    rows = weight_ih.shape[0]
    layout = f"{g}·hidden_size rows" + (f", gate blocks {', '.join(gates)}" if g > 1 else "")
    if rows == 0 or rows % g:
        raise ValueError(f"weight_ih must have {layout}; got {rows} rows ({weight_ih.shape})")
    hidden = rows // g
    if weight_hh.shape != (g * hidden, hidden):
        raise ValueError(
            f"weight_hh must have shape ({g}·hidden_size, hidden_size) = ({g * hidden}, {hidden}) "
            f"to match weight_ih's hidden_size {hidden}, got {weight_hh.shape}"
        )
    for name, bias in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
        if bias is not None:
            check_shape(name, bias, (g * hidden,))
    return Params(kind, weight_ih, weight_hh, bias_ih, bias_hh, relu)


def _check_input_size(x: FloatArray, params: Params) -> None:
    if x.shape[-1] != params.input_size:
        raise ValueError(
            f"x has inconsistent input_size: got {x.shape[-1]}, expected {params.input_size} "
            f"(the columns of weight_ih {params.weight_ih.shape})"
        )


@dataclass(frozen=True)
class Problem:
    """A call in canonical form: ``xs`` (T, N, I), every state (N, H), never ``None``."""

    params: Params
    xs: FloatArray
    states: tuple[FloatArray, ...]
    given: tuple[bool, ...]  # which states the caller passed (the others are zeros)


def _states(
    params: Params, named: dict[str, FloatArray | None], shape: tuple[int, ...], batch: int
) -> tuple[tuple[FloatArray, ...], tuple[bool, ...]]:
    states = []
    for name, state in named.items():
        if state is None:
            states.append(np.zeros((batch, params.hidden), dtype=params.dtype))
        else:
            check_shape(name, state, shape)
            states.append(state.reshape(batch, params.hidden))
    return tuple(states), tuple(v is not None for v in named.values())


def _cell_problem(
    kind: str,
    x: object,
    states: dict[str, object],
    weight_ih: object,
    weight_hh: object,
    bias_ih: object,
    bias_hh: object,
    relu: bool = False,
) -> tuple[Problem, tuple[int, ...]]:
    """The cell's call as a sequence of length 1, and the shape of its state outputs."""
    arrays = _check_arrays(
        x=x, **states, weight_ih=weight_ih, weight_hh=weight_hh, bias_ih=bias_ih, bias_hh=bias_hh
    )
    params = _check_params(
        kind,
        arrays["weight_ih"],  # type: ignore[arg-type]
        arrays["weight_hh"],  # type: ignore[arg-type]
        arrays["bias_ih"],
        arrays["bias_hh"],
        relu,
    )
    xa: FloatArray = arrays["x"]  # type: ignore[assignment]
    check_ndim("x", xa, (1, 2))
    _check_input_size(xa, params)
    batch = xa.shape[0] if xa.ndim == 2 else 1
    shape = (*xa.shape[:-1], params.hidden)
    named = {name: arrays[name] for name in states}
    state_arrays, given = _states(params, named, shape, batch)
    xs = xa.reshape(1, batch, params.input_size)
    return Problem(params, xs, state_arrays, given), shape


def _sequence_problem(
    kind: str,
    x: object,
    states: dict[str, object],
    weight_ih: object,
    weight_hh: object,
    bias_ih: object,
    bias_hh: object,
    batch_first: object,
    relu: bool = False,
) -> Problem:
    first = check_bool("batch_first", batch_first)
    arrays = _check_arrays(
        x=x, **states, weight_ih=weight_ih, weight_hh=weight_hh, bias_ih=bias_ih, bias_hh=bias_hh
    )
    params = _check_params(
        kind,
        arrays["weight_ih"],  # type: ignore[arg-type]
        arrays["weight_hh"],  # type: ignore[arg-type]
        arrays["bias_ih"],
        arrays["bias_hh"],
        relu,
    )
    xa: FloatArray = arrays["x"]  # type: ignore[assignment]
    if xa.ndim != 3:
        layout = "(N, T, input_size)" if first else "(T, N, input_size)"
        raise ValueError(f"x must have 3 dimensions {layout}, got shape {xa.shape}")
    _check_input_size(xa, params)
    xs = xa.transpose(1, 0, 2) if first else xa
    steps, batch = xs.shape[:2]
    if steps == 0:
        raise ValueError(f"x must hold at least one time step, got shape {xa.shape}")
    named = {name: arrays[name] for name in states}
    state_arrays, given = _states(params, named, (batch, params.hidden), batch)
    return Problem(params, xs, state_arrays, given)


def _upstream(
    grad_output: object,
    names: Sequence[str],
    shapes: Sequence[tuple[int, ...]],
    dtype: Any,
    source: str = "x",
) -> list[FloatArray]:
    """The upstream gradient of each output, checked; ``None`` in a tuple means zeros.

    Each must have the dtype of the inputs (of the input ``source``, for the message).
    """
    if len(names) == 1:
        grads: Sequence[object] = (grad_output,)
        labels = ["grad_output"]
    else:
        if not isinstance(grad_output, (tuple, list)) or len(grad_output) != len(names):
            raise TypeError(
                f"grad_output must be a tuple of {len(names)} upstream gradients "
                f"({', '.join(names)}), got {type(grad_output).__name__}"
                + (
                    f" of length {len(grad_output)}"
                    if isinstance(grad_output, (tuple, list))
                    else ""
                )
            )
        grads = grad_output
        labels = [f"grad_output[{k}] ({name})" for k, name in enumerate(names)]
    checked = []
    for label, grad, shape in zip(labels, grads, shapes, strict=True):
        if grad is None and len(names) > 1:
            checked.append(np.zeros(shape, dtype=dtype))
            continue
        grad = float_array(label, grad)
        if grad.dtype != dtype:
            raise TypeError(
                f"mixed dtypes are not allowed: {label} has dtype {grad.dtype} "
                f"but {source} has dtype {np.dtype(dtype)}"
            )
        check_shape(label, grad, shape)
        checked.append(grad)
    return checked


# ------------------------------------------------------------------- the engines
#
# An engine runs one cell kind over a canonical problem: ``forward`` returns a
# cache holding ``hs`` (T + 1, N, H), the hidden states with h0 first (and
# ``cs`` for the LSTM); ``backward`` takes the cache, the upstream gradient of
# every step's output (T, N, H) and of every final state (N, H), and returns
# ``(dx, d_states, dW_ih, dW_hh, db_ih, db_hh)``.

Cache = dict[str, Any]
Forward = Callable[[Problem], Cache]
Backward = Callable[[Problem, Cache, FloatArray, Sequence[FloatArray]], tuple[Any, ...]]


def _affine(weight: FloatArray, bias: FloatArray | None, v: Sequence[float], r: int) -> float:
    """``b[r] + Σ_k W[r, k] v[k]``, one term at a time."""
    total = 0.0 if bias is None else real(bias[r])
    for k, value in enumerate(v):
        total += real(weight[r, k]) * value
    return total


def _row(array: FloatArray) -> list[float]:
    return [real(v) for v in array]


def _input_gradients(
    problem: Problem, dx_rows: list[list[list[float]]], delta_x: Any, delta_h: Any, hs: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """``dx`` from its rows, and the weight and bias gradients as explicit sums over t and n.

    ``delta_x[t][n][r]`` and ``delta_h[t][n][r]`` are ∂L/∂A^x and ∂L/∂A^h.
    """
    p = problem.params
    steps, batch, inputs = problem.xs.shape
    dtype = p.dtype
    rows = p.gates * p.hidden
    dx = np.array(dx_rows, dtype=dtype).reshape(steps, batch, inputs)
    d_w_ih = np.zeros((rows, inputs), dtype=dtype)
    d_w_hh = np.zeros((rows, p.hidden), dtype=dtype)
    d_b_ih = np.zeros(rows, dtype=dtype)
    d_b_hh = np.zeros(rows, dtype=dtype)
    for r in range(rows):
        for i in range(inputs):
            total = 0.0
            for t in range(steps):
                for n in range(batch):
                    total += delta_x[t][n][r] * real(problem.xs[t, n, i])
            d_w_ih[r, i] = total
        for k in range(p.hidden):
            total = 0.0
            for t in range(steps):
                for n in range(batch):
                    total += delta_h[t][n][r] * real(hs[t, n, k])
            d_w_hh[r, k] = total
        total_x = total_h = 0.0
        for t in range(steps):
            for n in range(batch):
                total_x += delta_x[t][n][r]
                total_h += delta_h[t][n][r]
        d_b_ih[r] = total_x
        d_b_hh[r] = total_h
    return dx, d_w_ih, d_w_hh, d_b_ih, d_b_hh


def _back_through_weights(
    p: Params, delta_x: list[float], delta_h: list[float], inputs: int
) -> tuple[list[float], list[float]]:
    """``(Σ_r δ^x[r] W_ih[r, i] for each i,  Σ_r δ^h[r] W_hh[r, k] for each k)``."""
    dx = []
    for i in range(inputs):
        total = 0.0
        for r, d in enumerate(delta_x):
            total += d * real(p.weight_ih[r, i])
        dx.append(total)
    dh = []
    for k in range(p.hidden):
        total = 0.0
        for r, d in enumerate(delta_h):
            total += d * real(p.weight_hh[r, k])
        dh.append(total)
    return dx, dh


# ---- RNN, loops


def _rnn_forward_loop(problem: Problem) -> Cache:
    p = problem.params
    steps, batch, _ = problem.xs.shape
    hs = np.empty((steps + 1, batch, p.hidden), dtype=p.dtype)
    hs[0] = problem.states[0]
    for t in range(steps):
        for n in range(batch):
            x_row, h_row = _row(problem.xs[t, n]), _row(hs[t, n])
            for j in range(p.hidden):
                a = _affine(p.weight_ih, p.bias_ih, x_row, j) + _affine(
                    p.weight_hh, p.bias_hh, h_row, j
                )
                hs[t + 1, n, j] = (a if a > 0 else 0.0) if p.relu else math.tanh(a)
    return {"hs": hs}


def _rnn_backward_loop(
    problem: Problem, cache: Cache, g_out: FloatArray, finals: Sequence[FloatArray]
) -> tuple[Any, ...]:
    p = problem.params
    hs = cache["hs"]
    steps, batch, inputs = problem.xs.shape
    delta: list[list[list[float]]] = [[[] for _ in range(batch)] for _ in range(steps)]
    dx_rows: list[list[list[float]]] = [[[] for _ in range(batch)] for _ in range(steps)]
    d_h0 = np.empty((batch, p.hidden), dtype=p.dtype)
    for n in range(batch):
        dh_next = _row(finals[0][n])
        for t in reversed(range(steps)):
            d = []
            for j in range(p.hidden):
                dh = float(g_out[t, n, j]) + dh_next[j]
                h = float(hs[t + 1, n, j])
                d.append(dh * (1.0 if h > 0 else 0.0) if p.relu else dh * (1.0 - h * h))
            delta[t][n] = d
            dx_rows[t][n], dh_next = _back_through_weights(p, d, d, inputs)
        d_h0[n] = dh_next
    dx, d_w_ih, d_w_hh, d_b_ih, d_b_hh = _input_gradients(problem, dx_rows, delta, delta, hs)
    return dx, (d_h0,), d_w_ih, d_w_hh, d_b_ih, d_b_hh


# ---- LSTM, loops


def _lstm_forward_loop(problem: Problem) -> Cache:
    p = problem.params
    steps, batch, _ = problem.xs.shape
    hidden = p.hidden
    hs = np.empty((steps + 1, batch, hidden), dtype=p.dtype)
    cs = np.empty((steps + 1, batch, hidden), dtype=p.dtype)
    gates = np.empty((steps, batch, 4 * hidden), dtype=p.dtype)
    hs[0], cs[0] = problem.states
    for t in range(steps):
        for n in range(batch):
            x_row, h_row = _row(problem.xs[t, n]), _row(hs[t, n])
            for j in range(hidden):
                a = [
                    _affine(p.weight_ih, p.bias_ih, x_row, k * hidden + j)
                    + _affine(p.weight_hh, p.bias_hh, h_row, k * hidden + j)
                    for k in range(4)
                ]
                i, f = sigmoid_scalar(a[0]), sigmoid_scalar(a[1])
                g, o = tanh(a[2]), sigmoid_scalar(a[3])
                c = f * real(cs[t, n, j]) + i * g
                for k, value in enumerate((i, f, g, o)):
                    gates[t, n, k * hidden + j] = value
                cs[t + 1, n, j] = c
                hs[t + 1, n, j] = o * tanh(c)
    return {"hs": hs, "cs": cs, "gates": gates}


def _lstm_backward_loop(
    problem: Problem, cache: Cache, g_out: FloatArray, finals: Sequence[FloatArray]
) -> tuple[Any, ...]:
    p = problem.params
    hs, cs, gates = cache["hs"], cache["cs"], cache["gates"]
    steps, batch, inputs = problem.xs.shape
    hidden = p.hidden
    delta: list[list[list[float]]] = [[[] for _ in range(batch)] for _ in range(steps)]
    dx_rows: list[list[list[float]]] = [[[] for _ in range(batch)] for _ in range(steps)]
    d_h0 = np.empty((batch, hidden), dtype=p.dtype)
    d_c0 = np.empty((batch, hidden), dtype=p.dtype)
    for n in range(batch):
        dh_next, dc_next = _row(finals[0][n]), _row(finals[1][n])
        for t in reversed(range(steps)):
            d = [0.0] * (4 * hidden)
            for j in range(hidden):
                i, f, g, o = (real(gates[t, n, k * hidden + j]) for k in range(4))
                tanh_c = tanh(real(cs[t + 1, n, j]))
                dh = real(g_out[t, n, j]) + dh_next[j]
                dc = dc_next[j] + dh * o * (1.0 - tanh_c * tanh_c)
                d[j] = dc * g * i * (1.0 - i)
                d[hidden + j] = dc * real(cs[t, n, j]) * f * (1.0 - f)
                d[2 * hidden + j] = dc * i * (1.0 - g * g)
                d[3 * hidden + j] = dh * tanh_c * o * (1.0 - o)
                dc_next[j] = dc * f
            delta[t][n] = d
            dx_rows[t][n], dh_next = _back_through_weights(p, d, d, inputs)
        d_h0[n], d_c0[n] = dh_next, dc_next
    dx, d_w_ih, d_w_hh, d_b_ih, d_b_hh = _input_gradients(problem, dx_rows, delta, delta, hs)
    return dx, (d_h0, d_c0), d_w_ih, d_w_hh, d_b_ih, d_b_hh


# ---- GRU, loops


def _gru_forward_loop(problem: Problem) -> Cache:
    p = problem.params
    steps, batch, _ = problem.xs.shape
    hidden = p.hidden
    hs = np.empty((steps + 1, batch, hidden), dtype=p.dtype)
    gates = np.empty((steps, batch, 3 * hidden), dtype=p.dtype)
    a_hn = np.empty((steps, batch, hidden), dtype=p.dtype)
    hs[0] = problem.states[0]
    for t in range(steps):
        for n in range(batch):
            x_row, h_row = _row(problem.xs[t, n]), _row(hs[t, n])
            for j in range(hidden):
                ax = [_affine(p.weight_ih, p.bias_ih, x_row, k * hidden + j) for k in range(3)]
                ah = [_affine(p.weight_hh, p.bias_hh, h_row, k * hidden + j) for k in range(3)]
                r = sigmoid_scalar(ax[0] + ah[0])
                z = sigmoid_scalar(ax[1] + ah[1])
                new = math.tanh(ax[2] + r * ah[2])
                for k, value in enumerate((r, z, new)):
                    gates[t, n, k * hidden + j] = value
                a_hn[t, n, j] = ah[2]
                hs[t + 1, n, j] = (1.0 - z) * new + z * h_row[j]
    return {"hs": hs, "gates": gates, "a_hn": a_hn}


def _gru_backward_loop(
    problem: Problem, cache: Cache, g_out: FloatArray, finals: Sequence[FloatArray]
) -> tuple[Any, ...]:
    p = problem.params
    hs, gates, a_hn = cache["hs"], cache["gates"], cache["a_hn"]
    steps, batch, inputs = problem.xs.shape
    hidden = p.hidden
    delta_x: list[list[list[float]]] = [[[] for _ in range(batch)] for _ in range(steps)]
    delta_h: list[list[list[float]]] = [[[] for _ in range(batch)] for _ in range(steps)]
    dx_rows: list[list[list[float]]] = [[[] for _ in range(batch)] for _ in range(steps)]
    d_h0 = np.empty((batch, hidden), dtype=p.dtype)
    for n in range(batch):
        dh_next = _row(finals[0][n])
        for t in reversed(range(steps)):
            dx_gate = [0.0] * (3 * hidden)
            dh_gate = [0.0] * (3 * hidden)
            direct = [0.0] * hidden
            for j in range(hidden):
                r, z, new = (float(gates[t, n, k * hidden + j]) for k in range(3))
                h_prev = float(hs[t, n, j])
                dh = float(g_out[t, n, j]) + dh_next[j]
                d_new = dh * (1.0 - z) * (1.0 - new * new)
                d_r = d_new * float(a_hn[t, n, j]) * r * (1.0 - r)
                d_z = dh * (h_prev - new) * z * (1.0 - z)
                dx_gate[j], dx_gate[hidden + j], dx_gate[2 * hidden + j] = d_r, d_z, d_new
                dh_gate[j], dh_gate[hidden + j], dh_gate[2 * hidden + j] = d_r, d_z, d_new * r
                direct[j] = dh * z
            delta_x[t][n], delta_h[t][n] = dx_gate, dh_gate
            dx_rows[t][n], through = _back_through_weights(p, dx_gate, dh_gate, inputs)
            dh_next = [a + b for a, b in zip(direct, through, strict=True)]
        d_h0[n] = dh_next
    dx, d_w_ih, d_w_hh, d_b_ih, d_b_hh = _input_gradients(problem, dx_rows, delta_x, delta_h, hs)
    return dx, (d_h0,), d_w_ih, d_w_hh, d_b_ih, d_b_hh


# ---- vectorized

#: From this many time steps on, the forward multiplies ``h`` by a contiguous copy
#: of ``W_hhᵀ`` (:func:`_hidden_operand`) instead of the transposed view.
CONTIGUOUS_STEPS = 16
#: rows of ``W_hh`` transposed at a time by :func:`_hidden_operand`
TRANSPOSE_TILE = 32


def _hidden_operand(weight_hh: FloatArray, steps: int) -> FloatArray:
    """``W_hhᵀ``, the right operand of every step's ``h W_hhᵀ``: a contiguous copy on long runs.

    OpenBLAS takes the product with the transposed view 1.1 to 4 times as long
    as with a contiguous matrix (measured for hidden sizes 32 to 512, batches 4
    to 64, three or four gates, float32 and float64: 5 to 88 % of each product
    saved). The copy is made tile by tile (:data:`TRANSPOSE_TILE` rows, which
    stay in cache; NumPy's one-call transposed copy is 2.5 to 5 times slower)
    and costs the saving of 1 to 4 steps at hidden size 128 and of up to 14
    at 512 in float64, hence :data:`CONTIGUOUS_STEPS`. Only the memory layout
    changes: each product is the same sum.
    """
    if steps < CONTIGUOUS_STEPS:
        view: FloatArray = weight_hh.T
        return view
    rows = weight_hh.shape[0]
    out = np.empty(weight_hh.shape[::-1], dtype=weight_hh.dtype)
    for r in range(0, rows, TRANSPOSE_TILE):
        out[:, r : r + TRANSPOSE_TILE] = weight_hh[r : r + TRANSPOSE_TILE].T
    return out


def _projection(problem: Problem, fold_hh: bool) -> FloatArray:
    """``A^x`` of every step at once, (T, N, G·H); with ``fold_hh``, ``b_hh`` added too."""
    p = problem.params
    steps, batch, inputs = problem.xs.shape
    ax: FloatArray = np.matmul(problem.xs.reshape(steps * batch, inputs), p.weight_ih.T)
    if p.bias_ih is not None:
        ax += p.bias_ih
    if fold_hh and p.bias_hh is not None:
        ax += p.bias_hh
    return ax.reshape(steps, batch, -1)


def _weight_gradients(
    problem: Problem, delta_x: FloatArray, delta_h: FloatArray, hs: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """``dx``, ``dW_ih``, ``dW_hh``, ``db_ih``, ``db_hh`` from the stacked δ's, one product each."""
    p = problem.params
    steps, batch, inputs = problem.xs.shape
    flat_x = delta_x.reshape(steps * batch, -1)
    flat_h = delta_h.reshape(steps * batch, -1)
    dx: FloatArray = np.matmul(flat_x, p.weight_ih).reshape(steps, batch, inputs)
    d_w_ih: FloatArray = np.matmul(flat_x.T, problem.xs.reshape(steps * batch, inputs))
    d_w_hh: FloatArray = np.matmul(flat_h.T, hs[:-1].reshape(steps * batch, p.hidden))
    d_b_ih = column_sums(flat_x)
    d_b_hh = column_sums(flat_h) if delta_h is not delta_x else d_b_ih.copy()
    return dx, d_w_ih, d_w_hh, d_b_ih, d_b_hh


def _rnn_forward_vectorized(problem: Problem) -> Cache:
    p = problem.params
    steps, batch, _ = problem.xs.shape
    ax = _projection(problem, fold_hh=True)
    hs = np.empty((steps + 1, batch, p.hidden), dtype=p.dtype)
    hs[0] = problem.states[0]
    w_hh_t = _hidden_operand(p.weight_hh, steps)
    for t in range(steps):
        a = np.matmul(hs[t], w_hh_t)
        a += ax[t]
        if p.relu:
            np.maximum(a, 0.0, out=hs[t + 1])
        else:
            np.tanh(a, out=hs[t + 1])
    return {"hs": hs}


def _rnn_backward_vectorized(
    problem: Problem, cache: Cache, g_out: FloatArray, finals: Sequence[FloatArray]
) -> tuple[Any, ...]:
    p = problem.params
    hs = cache["hs"]
    steps = hs.shape[0] - 1
    delta = np.empty_like(hs[1:])
    dh_next = finals[0]
    for t in reversed(range(steps)):
        dh = g_out[t] + dh_next
        h = hs[t + 1]
        if p.relu:
            np.multiply(dh, h > 0, out=delta[t])
        else:
            np.multiply(h, h, out=delta[t])
            np.subtract(1.0, delta[t], out=delta[t])
            delta[t] *= dh
        dh_next = np.matmul(delta[t], p.weight_hh)
    dx, d_w_ih, d_w_hh, d_b_ih, d_b_hh = _weight_gradients(problem, delta, delta, hs)
    return dx, (dh_next,), d_w_ih, d_w_hh, d_b_ih, d_b_hh


def _lstm_forward_vectorized(problem: Problem) -> Cache:
    p = problem.params
    steps, batch, _ = problem.xs.shape
    hidden = p.hidden
    ax = _projection(problem, fold_hh=True)
    hs = np.empty((steps + 1, batch, hidden), dtype=p.dtype)
    cs = np.empty_like(hs)
    tanh_c = np.empty_like(hs[1:])
    gates = np.empty((steps, batch, 4 * hidden), dtype=p.dtype)
    hs[0], cs[0] = problem.states
    w_hh_t = _hidden_operand(p.weight_hh, steps)
    block_g = slice(2 * hidden, 3 * hidden)
    for t in range(steps):
        gate = gates[t]
        np.matmul(hs[t], w_hh_t, out=gate)
        gate += ax[t]
        # tanh on the block g, σ on the rest: σ runs over the whole row in one
        # pass and the block g is then put back
        g = np.tanh(gate[:, block_g])
        sigmoid_array(gate, out=gate)
        gate[:, block_g] = g
        i, f, o = gate[:, :hidden], gate[:, hidden : 2 * hidden], gate[:, 3 * hidden :]
        np.multiply(f, cs[t], out=cs[t + 1])
        g *= i
        cs[t + 1] += g
        np.tanh(cs[t + 1], out=tanh_c[t])
        np.multiply(o, tanh_c[t], out=hs[t + 1])
    return {"hs": hs, "cs": cs, "gates": gates, "tanh_c": tanh_c}


def _lstm_backward_vectorized(
    problem: Problem, cache: Cache, g_out: FloatArray, finals: Sequence[FloatArray]
) -> tuple[Any, ...]:
    p = problem.params
    hs, cs, gates, tanh_c = cache["hs"], cache["cs"], cache["gates"], cache["tanh_c"]
    steps, batch, _ = gates.shape
    hidden = p.hidden
    i, f = gates[..., :hidden], gates[..., hidden : 2 * hidden]
    g, o = gates[..., 2 * hidden : 3 * hidden], gates[..., 3 * hidden :]
    # Every factor that does not depend on the carried gradients, for all steps at once:
    # δ_i = dc ⊙ g ⊙ i(1 − i), δ_f = dc ⊙ c_{t−1} ⊙ f(1 − f), δ_g = dc ⊙ i ⊙ (1 − g²),
    # δ_o = dh ⊙ tanh(c) ⊙ o(1 − o), and dc = dc_next + dh ⊙ o ⊙ (1 − tanh² c).
    factor = np.subtract(1.0, gates)
    factor *= gates  # σ' = s(1 − s) (the block g is overwritten below)
    factor[..., :hidden] *= g
    factor[..., hidden : 2 * hidden] *= cs[:-1]
    np.multiply(g, g, out=factor[..., 2 * hidden : 3 * hidden])
    np.subtract(1.0, factor[..., 2 * hidden : 3 * hidden], out=factor[..., 2 * hidden : 3 * hidden])
    factor[..., 2 * hidden : 3 * hidden] *= i
    factor[..., 3 * hidden :] *= tanh_c
    through_c = np.multiply(tanh_c, tanh_c)
    np.subtract(1.0, through_c, out=through_c)
    through_c *= o
    factor_cell = factor.reshape(steps, batch, 4, hidden)[:, :, :3]
    delta = np.empty_like(gates)
    delta_cell = delta.reshape(steps, batch, 4, hidden)[:, :, :3]
    dh_next, dc_next = finals
    for t in reversed(range(steps)):
        dh = g_out[t] + dh_next
        dc = np.multiply(dh, through_c[t])
        dc += dc_next
        np.multiply(dc[:, np.newaxis, :], factor_cell[t], out=delta_cell[t])
        np.multiply(dh, factor[t, :, 3 * hidden :], out=delta[t, :, 3 * hidden :])
        dc_next = np.multiply(dc, f[t])
        dh_next = np.matmul(delta[t], p.weight_hh)
    dx, d_w_ih, d_w_hh, d_b_ih, d_b_hh = _weight_gradients(problem, delta, delta, hs)
    return dx, (dh_next, dc_next), d_w_ih, d_w_hh, d_b_ih, d_b_hh


def _gru_forward_vectorized(problem: Problem) -> Cache:
    p = problem.params
    steps, batch, _ = problem.xs.shape
    hidden = p.hidden
    ax = _projection(problem, fold_hh=False)
    hs = np.empty((steps + 1, batch, hidden), dtype=p.dtype)
    gates = np.empty((steps, batch, 3 * hidden), dtype=p.dtype)
    ah = np.empty_like(gates)  # A^h = h W_hhᵀ + b_hh of every step
    hs[0] = problem.states[0]
    w_hh_t = _hidden_operand(p.weight_hh, steps)
    for t in range(steps):
        np.matmul(hs[t], w_hh_t, out=ah[t])
        if p.bias_hh is not None:
            ah[t] += p.bias_hh
        gate = gates[t]
        rz = gate[:, : 2 * hidden]
        np.add(ax[t, :, : 2 * hidden], ah[t, :, : 2 * hidden], out=rz)
        sigmoid_array(rz, out=rz)
        r, z, new = gate[:, :hidden], gate[:, hidden : 2 * hidden], gate[:, 2 * hidden :]
        np.multiply(r, ah[t, :, 2 * hidden :], out=new)
        new += ax[t, :, 2 * hidden :]
        np.tanh(new, out=new)
        # h' = (1 − z) n + z h = n + z (h − n)
        np.subtract(hs[t], new, out=hs[t + 1])
        hs[t + 1] *= z
        hs[t + 1] += new
    return {"hs": hs, "gates": gates, "a_hn": ah[..., 2 * hidden :]}


def _gru_backward_vectorized(
    problem: Problem, cache: Cache, g_out: FloatArray, finals: Sequence[FloatArray]
) -> tuple[Any, ...]:
    p = problem.params
    hs, gates, a_hn = cache["hs"], cache["gates"], cache["a_hn"]
    steps = gates.shape[0]
    hidden = p.hidden
    r, z, new = gates[..., :hidden], gates[..., hidden : 2 * hidden], gates[..., 2 * hidden :]
    # The factors that do not depend on the carried gradient, for all steps at once:
    # δ_n = dh ⊙ (1 − z)(1 − n²), δ_r = δ_n ⊙ A^h_n ⊙ r(1 − r), δ_z = dh ⊙ (h − n) ⊙ z(1 − z).
    factor = np.subtract(1.0, gates)
    factor *= gates  # σ' = s(1 − s) (the block n is overwritten below)
    factor[..., :hidden] *= a_hn
    factor[..., hidden : 2 * hidden] *= np.subtract(hs[:-1], new)
    np.multiply(new, new, out=factor[..., 2 * hidden :])
    np.subtract(1.0, factor[..., 2 * hidden :], out=factor[..., 2 * hidden :])
    factor[..., 2 * hidden :] *= np.subtract(1.0, z)
    delta_x = np.empty_like(gates)
    delta_h = np.empty_like(gates)
    dh_next = finals[0]
    for t in reversed(range(steps)):
        dx_t, dh_t, factor_t = delta_x[t], delta_h[t], factor[t]
        dh = g_out[t] + dh_next
        d_new = np.multiply(dh, factor_t[:, 2 * hidden :], out=dx_t[:, 2 * hidden :])
        np.multiply(d_new, factor_t[:, :hidden], out=dx_t[:, :hidden])
        np.multiply(dh, factor_t[:, hidden : 2 * hidden], out=dx_t[:, hidden : 2 * hidden])
        dh_t[:, : 2 * hidden] = dx_t[:, : 2 * hidden]
        np.multiply(d_new, r[t], out=dh_t[:, 2 * hidden :])
        dh_next = np.matmul(dh_t, p.weight_hh)
        dh *= z[t]
        dh_next += dh
    dx, d_w_ih, d_w_hh, d_b_ih, d_b_hh = _weight_gradients(problem, delta_x, delta_h, hs)
    return dx, (dh_next,), d_w_ih, d_w_hh, d_b_ih, d_b_hh


@dataclass(frozen=True)
class Engine:
    forward: Forward
    backward: Backward


LOOPS = {
    "rnn": Engine(_rnn_forward_loop, _rnn_backward_loop),
    "lstm": Engine(_lstm_forward_loop, _lstm_backward_loop),
    "gru": Engine(_gru_forward_loop, _gru_backward_loop),
}
VECTORIZED = {
    "rnn": Engine(_rnn_forward_vectorized, _rnn_backward_vectorized),
    "lstm": Engine(_lstm_forward_vectorized, _lstm_backward_vectorized),
    "gru": Engine(_gru_forward_vectorized, _gru_backward_vectorized),
}


# ------------------------------------------------------------- public adapters


def _cell_forward(engine: Engine, problem: Problem, shape: tuple[int, ...]) -> list[FloatArray]:
    """The final states of a one-step run, each a fresh array of the caller's shape."""
    cache = engine.forward(problem)
    finals = [cache["hs"][1]] + ([cache["cs"][1]] if "cs" in cache else [])
    return [np.array(state.reshape(shape), copy=True) for state in finals]


def _cell_backward(
    engine: Engine,
    problem: Problem,
    shape: tuple[int, ...],
    x_shape: tuple[int, ...],
    grad_output: object,
    names: Sequence[str],
) -> Grads:
    p = problem.params
    upstream = _upstream(grad_output, names, [shape] * len(names), p.dtype)
    cache = engine.forward(problem)
    batch = problem.xs.shape[1]
    finals = [g.reshape(batch, p.hidden) for g in upstream]
    no_output = np.zeros((1, batch, p.hidden), dtype=p.dtype)
    dx, d_states, d_w_ih, d_w_hh, d_b_ih, d_b_hh = engine.backward(
        problem, cache, no_output, finals
    )
    states = [
        np.array(d.reshape(shape), copy=True) if given else None
        for d, given in zip(d_states, problem.given, strict=True)
    ]
    return (
        np.array(dx.reshape(x_shape), copy=True),
        *states,
        d_w_ih,
        d_w_hh,
        d_b_ih if p.bias_ih is not None else None,
        d_b_hh if p.bias_hh is not None else None,
    )


def _sequence_forward(engine: Engine, problem: Problem, batch_first: bool) -> list[FloatArray]:
    """``output`` (a fresh array in the caller's layout), then every final state."""
    cache = engine.forward(problem)
    output = cache["hs"][1:]
    output = output.transpose(1, 0, 2) if batch_first else output
    finals = [cache["hs"][-1]] + ([cache["cs"][-1]] if "cs" in cache else [])
    return [np.ascontiguousarray(output), *(state.copy() for state in finals)]


def _sequence_backward(
    engine: Engine, problem: Problem, batch_first: bool, grad_output: object, names: Sequence[str]
) -> Grads:
    p = problem.params
    steps, batch, _ = problem.xs.shape
    out_shape = (batch, steps, p.hidden) if batch_first else (steps, batch, p.hidden)
    shapes = [out_shape] + [(batch, p.hidden)] * (len(names) - 1)
    upstream = _upstream(grad_output, names, shapes, p.dtype)
    g_out = upstream[0].transpose(1, 0, 2) if batch_first else upstream[0]
    cache = engine.forward(problem)
    dx, d_states, d_w_ih, d_w_hh, d_b_ih, d_b_hh = engine.backward(
        problem, cache, g_out, upstream[1:]
    )
    dx = np.ascontiguousarray(dx.transpose(1, 0, 2) if batch_first else dx)
    states = [
        np.array(d, copy=True) if given else None
        for d, given in zip(d_states, problem.given, strict=True)
    ]
    return (
        dx,
        *states,
        d_w_ih,
        d_w_hh,
        d_b_ih if p.bias_ih is not None else None,
        d_b_hh if p.bias_hh is not None else None,
    )


# ---- embedding


def _check_embedding(
    input: object, weight: object, padding_idx: object
) -> tuple[IndexArray, FloatArray, int | None]:
    weight = float_array("weight", weight)
    check_ndim("weight", weight, 2)
    indices = index_array("input", input)
    rows = weight.shape[0]
    if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= rows):
        raise ValueError(
            f"input holds an index out of range: indices must lie in [0, {rows}) for weight "
            f"with {rows} rows, got values from {int(indices.min())} to {int(indices.max())}"
        )
    return indices, weight, _padding_idx(padding_idx, rows)


def _embedding_grad_output(
    grad_output: object, indices: IndexArray, weight: FloatArray
) -> FloatArray:
    shape = (*indices.shape, weight.shape[1])
    return _upstream(grad_output, ["output"], [shape], weight.dtype, "weight")[0]


def embedding_loop(
    input: IndexArray, weight: FloatArray, padding_idx: int | None = None
) -> FloatArray:
    """``out[p, d] = W[input[p], d]`` for every position ``p`` of ``input``, element by element.

    ``input`` is an integer array of any shape; the result has shape
    ``input.shape + (embedding_dim,)``. ``padding_idx`` does not change the
    forward (torch's convention); it only silences its row's gradient.
    """
    indices, weight, _ = _check_embedding(input, weight, padding_idx)
    out = np.empty((*indices.shape, weight.shape[1]), dtype=weight.dtype)
    for position in np.ndindex(indices.shape):
        row = int(indices[position])
        for d in range(weight.shape[1]):
            element = (*position, d)
            out[element] = weight[row, d]
    return out


def embedding_backward_loop(
    grad_output: FloatArray, input: IndexArray, weight: FloatArray, padding_idx: int | None = None
) -> FloatArray:
    """``∂L/∂W[v, d] = Σ_{p : input[p] = v} g[p, d]``, zero for ``v = padding_idx``.

    Every occurrence of an index adds its upstream gradient to the row's sum.
    """
    indices, weight, padding = _check_embedding(input, weight, padding_idx)
    grad_output = _embedding_grad_output(grad_output, indices, weight)
    grad_weight = np.zeros_like(weight)
    for v in range(weight.shape[0]):
        if v == padding:
            continue
        for d in range(weight.shape[1]):
            total = 0.0
            for position in np.ndindex(indices.shape):
                if int(indices[position]) == v:
                    element = (*position, d)
                    total += float(grad_output[element])
            grad_weight[v, d] = total
    return grad_weight


def embedding_vectorized(
    input: IndexArray, weight: FloatArray, padding_idx: int | None = None
) -> FloatArray:
    """``W[input]``, gathered with ``np.take`` (always a copy, even for a 0-d ``input``)."""
    indices, weight, _ = _check_embedding(input, weight, padding_idx)
    return np.take(weight, indices, axis=0)


def embedding_backward_vectorized(
    grad_output: FloatArray, input: IndexArray, weight: FloatArray, padding_idx: int | None = None
) -> FloatArray:
    """``np.add.at(∂L/∂W, input, g)``, unbuffered, so repeated indices add up; padding row 0."""
    indices, weight, padding = _check_embedding(input, weight, padding_idx)
    grad_output = _embedding_grad_output(grad_output, indices, weight)
    grad_weight = np.zeros_like(weight)
    np.add.at(grad_weight, indices.reshape(-1), grad_output.reshape(-1, weight.shape[1]))
    if padding is not None:
        grad_weight[padding] = 0.0
    return grad_weight


# ---- cells


def rnn_cell_loop(
    x: FloatArray,
    hx: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
    nonlinearity: str = "tanh",
) -> FloatArray:
    """One step of an Elman RNN: ``h' = φ(x W_ihᵀ + b_ih + hx W_hhᵀ + b_hh)``.

    ``x`` is (N, I) or (I,); ``hx`` (N, H), (H,) or ``None`` (zeros);
    ``nonlinearity`` is "tanh" or "relu". Returns ``h'`` shaped like ``hx``.
    """
    problem, shape = _cell_problem(
        "rnn", x, {"hx": hx}, weight_ih, weight_hh, bias_ih, bias_hh, _nonlinearity(nonlinearity)
    )
    return _cell_forward(LOOPS["rnn"], problem, shape)[0]


def rnn_cell_backward_loop(
    grad_output: FloatArray,
    x: FloatArray,
    hx: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
    nonlinearity: str = "tanh",
) -> Grads:
    """``(∂L/∂x, ∂L/∂hx, ∂L/∂W_ih, ∂L/∂W_hh, ∂L/∂b_ih, ∂L/∂b_hh)``; ``None`` for absent inputs."""
    problem, shape = _cell_problem(
        "rnn", x, {"hx": hx}, weight_ih, weight_hh, bias_ih, bias_hh, _nonlinearity(nonlinearity)
    )
    return _cell_backward(LOOPS["rnn"], problem, shape, np.shape(x), grad_output, ["h"])


def rnn_cell_vectorized(
    x: FloatArray,
    hx: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
    nonlinearity: str = "tanh",
) -> FloatArray:
    """One step of an Elman RNN: ``h' = φ(x W_ihᵀ + b_ih + hx W_hhᵀ + b_hh)``.

    ``x`` is (N, I) or (I,); ``hx`` (N, H), (H,) or ``None`` (zeros);
    ``nonlinearity`` is "tanh" or "relu". Returns ``h'`` shaped like ``hx``.
    """
    problem, shape = _cell_problem(
        "rnn", x, {"hx": hx}, weight_ih, weight_hh, bias_ih, bias_hh, _nonlinearity(nonlinearity)
    )
    return _cell_forward(VECTORIZED["rnn"], problem, shape)[0]


def rnn_cell_backward_vectorized(
    grad_output: FloatArray,
    x: FloatArray,
    hx: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
    nonlinearity: str = "tanh",
) -> Grads:
    """``(∂L/∂x, ∂L/∂hx, ∂L/∂W_ih, ∂L/∂W_hh, ∂L/∂b_ih, ∂L/∂b_hh)``; ``None`` for absent inputs."""
    problem, shape = _cell_problem(
        "rnn", x, {"hx": hx}, weight_ih, weight_hh, bias_ih, bias_hh, _nonlinearity(nonlinearity)
    )
    return _cell_backward(VECTORIZED["rnn"], problem, shape, np.shape(x), grad_output, ["h"])


def lstm_cell_loop(
    x: FloatArray,
    hx: FloatArray | None,
    cx: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """One LSTM step, torch's gate rows i, f, g, o: returns ``(h', c')``.

    ``c' = σ(a_f) ⊙ cx + σ(a_i) ⊙ tanh(a_g)``, ``h' = σ(a_o) ⊙ tanh(c')``.
    ``hx`` and ``cx`` may each be ``None`` (zeros).
    """
    problem, shape = _cell_problem(
        "lstm", x, {"hx": hx, "cx": cx}, weight_ih, weight_hh, bias_ih, bias_hh
    )
    h, c = _cell_forward(LOOPS["lstm"], problem, shape)
    return h, c


def lstm_cell_backward_loop(
    grad_output: tuple[FloatArray | None, FloatArray | None],
    x: FloatArray,
    hx: FloatArray | None,
    cx: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
) -> Grads:
    """From ``(∂L/∂h', ∂L/∂c')``: the gradients of ``(x, hx, cx, W_ih, W_hh, b_ih, b_hh)``.

    ``None`` in ``grad_output`` stands for a zero upstream gradient.
    """
    problem, shape = _cell_problem(
        "lstm", x, {"hx": hx, "cx": cx}, weight_ih, weight_hh, bias_ih, bias_hh
    )
    return _cell_backward(LOOPS["lstm"], problem, shape, np.shape(x), grad_output, ["h", "c"])


def lstm_cell_vectorized(
    x: FloatArray,
    hx: FloatArray | None,
    cx: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """One LSTM step, torch's gate rows i, f, g, o: returns ``(h', c')``.

    ``c' = σ(a_f) ⊙ cx + σ(a_i) ⊙ tanh(a_g)``, ``h' = σ(a_o) ⊙ tanh(c')``.
    ``hx`` and ``cx`` may each be ``None`` (zeros).
    """
    problem, shape = _cell_problem(
        "lstm", x, {"hx": hx, "cx": cx}, weight_ih, weight_hh, bias_ih, bias_hh
    )
    h, c = _cell_forward(VECTORIZED["lstm"], problem, shape)
    return h, c


def lstm_cell_backward_vectorized(
    grad_output: tuple[FloatArray | None, FloatArray | None],
    x: FloatArray,
    hx: FloatArray | None,
    cx: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
) -> Grads:
    """From ``(∂L/∂h', ∂L/∂c')``: the gradients of ``(x, hx, cx, W_ih, W_hh, b_ih, b_hh)``.

    ``None`` in ``grad_output`` stands for a zero upstream gradient.
    """
    problem, shape = _cell_problem(
        "lstm", x, {"hx": hx, "cx": cx}, weight_ih, weight_hh, bias_ih, bias_hh
    )
    return _cell_backward(VECTORIZED["lstm"], problem, shape, np.shape(x), grad_output, ["h", "c"])


def gru_cell_loop(
    x: FloatArray,
    hx: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
) -> FloatArray:
    """One GRU step, torch's rows r, z, n: ``h' = (1 − z) ⊙ n + z ⊙ hx``.

    ``n = tanh(W_in x + b_in + r ⊙ (W_hn hx + b_hn))``: the reset gate scales
    the product, as torch and cuDNN compute it.
    """
    problem, shape = _cell_problem("gru", x, {"hx": hx}, weight_ih, weight_hh, bias_ih, bias_hh)
    return _cell_forward(LOOPS["gru"], problem, shape)[0]


def gru_cell_backward_loop(
    grad_output: FloatArray,
    x: FloatArray,
    hx: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
) -> Grads:
    """``(∂L/∂x, ∂L/∂hx, ∂L/∂W_ih, ∂L/∂W_hh, ∂L/∂b_ih, ∂L/∂b_hh)``; ``None`` for absent inputs."""
    problem, shape = _cell_problem("gru", x, {"hx": hx}, weight_ih, weight_hh, bias_ih, bias_hh)
    return _cell_backward(LOOPS["gru"], problem, shape, np.shape(x), grad_output, ["h"])


def gru_cell_vectorized(
    x: FloatArray,
    hx: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
) -> FloatArray:
    """One GRU step, torch's rows r, z, n: ``h' = (1 − z) ⊙ n + z ⊙ hx``.

    ``n = tanh(W_in x + b_in + r ⊙ (W_hn hx + b_hn))``: the reset gate scales
    the product, as torch and cuDNN compute it.
    """
    problem, shape = _cell_problem("gru", x, {"hx": hx}, weight_ih, weight_hh, bias_ih, bias_hh)
    return _cell_forward(VECTORIZED["gru"], problem, shape)[0]


def gru_cell_backward_vectorized(
    grad_output: FloatArray,
    x: FloatArray,
    hx: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
) -> Grads:
    """``(∂L/∂x, ∂L/∂hx, ∂L/∂W_ih, ∂L/∂W_hh, ∂L/∂b_ih, ∂L/∂b_hh)``; ``None`` for absent inputs."""
    problem, shape = _cell_problem("gru", x, {"hx": hx}, weight_ih, weight_hh, bias_ih, bias_hh)
    return _cell_backward(VECTORIZED["gru"], problem, shape, np.shape(x), grad_output, ["h"])


# ---- sequences


def rnn_loop(
    x: FloatArray,
    h0: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
    nonlinearity: str = "tanh",
    batch_first: bool = False,
) -> tuple[FloatArray, FloatArray]:
    """An Elman RNN over a sequence, one layer, one direction: ``(output, h_n)``.

    ``x`` is (T, N, I), or (N, T, I) with ``batch_first``; ``h0`` (N, H) or
    ``None`` (zeros). ``output`` holds every ``h_t`` in ``x``'s layout.
    """
    problem = _sequence_problem(
        "rnn",
        x,
        {"h0": h0},
        weight_ih,
        weight_hh,
        bias_ih,
        bias_hh,
        batch_first,
        _nonlinearity(nonlinearity),
    )
    output, h_n = _sequence_forward(LOOPS["rnn"], problem, batch_first)
    return output, h_n


def rnn_backward_loop(
    grad_output: tuple[FloatArray | None, FloatArray | None],
    x: FloatArray,
    h0: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
    nonlinearity: str = "tanh",
    batch_first: bool = False,
) -> Grads:
    """BPTT from ``(∂L/∂output, ∂L/∂h_n)``: gradients of ``(x, h0, W_ih, W_hh, b_ih, b_hh)``.

    Walks the steps backward, adding the output's gradient and the one carried
    from the next step; weight gradients are summed over time.
    """
    problem = _sequence_problem(
        "rnn",
        x,
        {"h0": h0},
        weight_ih,
        weight_hh,
        bias_ih,
        bias_hh,
        batch_first,
        _nonlinearity(nonlinearity),
    )
    return _sequence_backward(LOOPS["rnn"], problem, batch_first, grad_output, ["output", "h_n"])


def rnn_vectorized(
    x: FloatArray,
    h0: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
    nonlinearity: str = "tanh",
    batch_first: bool = False,
) -> tuple[FloatArray, FloatArray]:
    """An Elman RNN over a sequence, one layer, one direction: ``(output, h_n)``.

    ``x`` is (T, N, I), or (N, T, I) with ``batch_first``; ``h0`` (N, H) or
    ``None`` (zeros). ``output`` holds every ``h_t`` in ``x``'s layout.
    """
    problem = _sequence_problem(
        "rnn",
        x,
        {"h0": h0},
        weight_ih,
        weight_hh,
        bias_ih,
        bias_hh,
        batch_first,
        _nonlinearity(nonlinearity),
    )
    output, h_n = _sequence_forward(VECTORIZED["rnn"], problem, batch_first)
    return output, h_n


def rnn_backward_vectorized(
    grad_output: tuple[FloatArray | None, FloatArray | None],
    x: FloatArray,
    h0: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
    nonlinearity: str = "tanh",
    batch_first: bool = False,
) -> Grads:
    """BPTT from ``(∂L/∂output, ∂L/∂h_n)``: gradients of ``(x, h0, W_ih, W_hh, b_ih, b_hh)``.

    Walks the steps backward, adding the output's gradient and the one carried
    from the next step; weight gradients are summed over time.
    """
    problem = _sequence_problem(
        "rnn",
        x,
        {"h0": h0},
        weight_ih,
        weight_hh,
        bias_ih,
        bias_hh,
        batch_first,
        _nonlinearity(nonlinearity),
    )
    return _sequence_backward(
        VECTORIZED["rnn"], problem, batch_first, grad_output, ["output", "h_n"]
    )


def lstm_loop(
    x: FloatArray,
    h0: FloatArray | None,
    c0: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
    batch_first: bool = False,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """An LSTM over a sequence, one layer, one direction: ``(output, h_n, c_n)``.

    ``x`` is (T, N, I), or (N, T, I) with ``batch_first``; ``h0`` and ``c0``
    (N, H) or ``None`` (zeros). Gate rows i, f, g, o as torch.
    """
    problem = _sequence_problem(
        "lstm", x, {"h0": h0, "c0": c0}, weight_ih, weight_hh, bias_ih, bias_hh, batch_first
    )
    output, h_n, c_n = _sequence_forward(LOOPS["lstm"], problem, batch_first)
    return output, h_n, c_n


def lstm_backward_loop(
    grad_output: tuple[FloatArray | None, FloatArray | None, FloatArray | None],
    x: FloatArray,
    h0: FloatArray | None,
    c0: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
    batch_first: bool = False,
) -> Grads:
    """BPTT from ``(∂L/∂output, ∂L/∂h_n, ∂L/∂c_n)``: gradients of
    ``(x, h0, c0, W_ih, W_hh, b_ih, b_hh)``.

    The cell-state gradient starts from ``∂L/∂c_n`` and accumulates
    ``dc_t = dc_next + dh_t ⊙ o ⊙ (1 − tanh² c_t)``, then ``dc_next = dc_t ⊙ f``.
    """
    problem = _sequence_problem(
        "lstm", x, {"h0": h0, "c0": c0}, weight_ih, weight_hh, bias_ih, bias_hh, batch_first
    )
    return _sequence_backward(
        LOOPS["lstm"], problem, batch_first, grad_output, ["output", "h_n", "c_n"]
    )


def lstm_vectorized(
    x: FloatArray,
    h0: FloatArray | None,
    c0: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
    batch_first: bool = False,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """An LSTM over a sequence, one layer, one direction: ``(output, h_n, c_n)``.

    ``x`` is (T, N, I), or (N, T, I) with ``batch_first``; ``h0`` and ``c0``
    (N, H) or ``None`` (zeros). Gate rows i, f, g, o as torch.
    """
    problem = _sequence_problem(
        "lstm", x, {"h0": h0, "c0": c0}, weight_ih, weight_hh, bias_ih, bias_hh, batch_first
    )
    output, h_n, c_n = _sequence_forward(VECTORIZED["lstm"], problem, batch_first)
    return output, h_n, c_n


def lstm_backward_vectorized(
    grad_output: tuple[FloatArray | None, FloatArray | None, FloatArray | None],
    x: FloatArray,
    h0: FloatArray | None,
    c0: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
    batch_first: bool = False,
) -> Grads:
    """BPTT from ``(∂L/∂output, ∂L/∂h_n, ∂L/∂c_n)``: gradients of
    ``(x, h0, c0, W_ih, W_hh, b_ih, b_hh)``.

    The cell-state gradient starts from ``∂L/∂c_n`` and accumulates
    ``dc_t = dc_next + dh_t ⊙ o ⊙ (1 − tanh² c_t)``, then ``dc_next = dc_t ⊙ f``.
    """
    problem = _sequence_problem(
        "lstm", x, {"h0": h0, "c0": c0}, weight_ih, weight_hh, bias_ih, bias_hh, batch_first
    )
    return _sequence_backward(
        VECTORIZED["lstm"], problem, batch_first, grad_output, ["output", "h_n", "c_n"]
    )


def gru_loop(
    x: FloatArray,
    h0: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
    batch_first: bool = False,
) -> tuple[FloatArray, FloatArray]:
    """A GRU over a sequence, one layer, one direction: ``(output, h_n)``.

    ``x`` is (T, N, I), or (N, T, I) with ``batch_first``; ``h0`` (N, H) or
    ``None`` (zeros). Gate rows r, z, n as torch.
    """
    problem = _sequence_problem(
        "gru", x, {"h0": h0}, weight_ih, weight_hh, bias_ih, bias_hh, batch_first
    )
    output, h_n = _sequence_forward(LOOPS["gru"], problem, batch_first)
    return output, h_n


def gru_backward_loop(
    grad_output: tuple[FloatArray | None, FloatArray | None],
    x: FloatArray,
    h0: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
    batch_first: bool = False,
) -> Grads:
    """BPTT from ``(∂L/∂output, ∂L/∂h_n)``: gradients of ``(x, h0, W_ih, W_hh, b_ih, b_hh)``."""
    problem = _sequence_problem(
        "gru", x, {"h0": h0}, weight_ih, weight_hh, bias_ih, bias_hh, batch_first
    )
    return _sequence_backward(LOOPS["gru"], problem, batch_first, grad_output, ["output", "h_n"])


def gru_vectorized(
    x: FloatArray,
    h0: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
    batch_first: bool = False,
) -> tuple[FloatArray, FloatArray]:
    """A GRU over a sequence, one layer, one direction: ``(output, h_n)``.

    ``x`` is (T, N, I), or (N, T, I) with ``batch_first``; ``h0`` (N, H) or
    ``None`` (zeros). Gate rows r, z, n as torch.
    """
    problem = _sequence_problem(
        "gru", x, {"h0": h0}, weight_ih, weight_hh, bias_ih, bias_hh, batch_first
    )
    output, h_n = _sequence_forward(VECTORIZED["gru"], problem, batch_first)
    return output, h_n


def gru_backward_vectorized(
    grad_output: tuple[FloatArray | None, FloatArray | None],
    x: FloatArray,
    h0: FloatArray | None,
    weight_ih: FloatArray,
    weight_hh: FloatArray,
    bias_ih: FloatArray | None = None,
    bias_hh: FloatArray | None = None,
    batch_first: bool = False,
) -> Grads:
    """BPTT from ``(∂L/∂output, ∂L/∂h_n)``: gradients of ``(x, h0, W_ih, W_hh, b_ih, b_hh)``."""
    problem = _sequence_problem(
        "gru", x, {"h0": h0}, weight_ih, weight_hh, bias_ih, bias_hh, batch_first
    )
    return _sequence_backward(
        VECTORIZED["gru"], problem, batch_first, grad_output, ["output", "h_n"]
    )
