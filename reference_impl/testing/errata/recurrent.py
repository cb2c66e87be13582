"""Wrong formulas of the recurrent family, from published code, issue reports and classic slips.

Each is written the way its source writes it: a plain NumPy forward, or a
textbook backpropagation through time that walks the steps backward, with the
one mistake in it. They take the public arguments of the formula they replace.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference_impl import vectorized
from reference_impl.testing.errata.catalog import Erratum

Array = np.ndarray[Any, Any]


def _bias(bias_ih: Array | None, bias_hh: Array | None, rows: int, dtype: Any) -> Array:
    total = np.zeros(rows, dtype=dtype)
    for bias in (bias_ih, bias_hh):
        if bias is not None:
            total = total + bias
    return total


def _state(state: Array | None, like: Array, hidden: int) -> Array:
    return np.zeros((*like.shape[:-1], hidden), dtype=like.dtype) if state is None else state


# ------------------------------------------------------------------ LSTM forward


def lstm_cell_gates_ifog(
    x: Array,
    hx: Array | None,
    cx: Array | None,
    weight_ih: Array,
    weight_hh: Array,
    bias_ih: Array | None = None,
    bias_hh: Array | None = None,
) -> tuple[Array, Array]:
    """CS231n assignment 3, ``rnn_layers.py``, ``lstm_step_forward``: gates sliced i, f, o, g.

    The assignment stores its weights as (D, 4H) and splits the pre-activation
    into ``a_i, a_f, a_o, a_g``; torch's rows are i, f, g, o. Reading torch's
    weights with that slicing makes torch's cell-candidate rows the output
    gate and its output-gate rows the candidate.

    Shrunk counterexample (N = 2, I = 2, H = 2, states and biases 0):
    x = [[0, 0], [1/16, 0]], every weight 0 but weight_ih[7, 0] = 1/16, a row of
    torch's output gate. torch: g = tanh(0) = 0, so c = 0 and h = 0. Read as the
    candidate, that row gives example 1 g = tanh(1/256) and c[1, 1] = σ(0)·tanh(1/256)
    = 0.00195 instead of 0.
    """
    h = _state(hx, x, weight_hh.shape[1])
    c = _state(cx, x, weight_hh.shape[1])
    hidden = weight_hh.shape[1]
    a = x @ weight_ih.T + h @ weight_hh.T + _bias(bias_ih, bias_hh, 4 * hidden, x.dtype)
    i = vectorized.sigmoid(a[..., :hidden])
    f = vectorized.sigmoid(a[..., hidden : 2 * hidden])
    o = vectorized.sigmoid(a[..., 2 * hidden : 3 * hidden])
    g = np.tanh(a[..., 3 * hidden :])
    c_next = f * c + i * g
    return o * np.tanh(c_next), c_next


def lstm_cell_h_without_tanh(
    x: Array,
    hx: Array | None,
    cx: Array | None,
    weight_ih: Array,
    weight_hh: Array,
    bias_ih: Array | None = None,
    bias_hh: Array | None = None,
) -> tuple[Array, Array]:
    """nicodjimenez/lstm issue #47 (``lstm.py``, ``bottom_data_is``): ``h = o ⊙ c``.

    The cell state is used as the output without squashing it through tanh;
    the right output is ``o ⊙ tanh(c)``.

    Shrunk counterexample (N = 2, I = 3, H = 2, states and biases 0):
    x = [[0, 0, 0], [0, 0, 1/16]], every weight 0 but weight_ih[5, 2] = 1/16 (a
    candidate row): c[1, 1] = σ(0)·tanh(1/256) = 0.001953, and h[1, 1] =
    σ(0)·tanh(c) is 1.2e-9 below σ(0)·c, a hundred thousand times the float64
    bound.
    """
    hidden = weight_hh.shape[1]
    h = _state(hx, x, hidden)
    c = _state(cx, x, hidden)
    a = x @ weight_ih.T + h @ weight_hh.T + _bias(bias_ih, bias_hh, 4 * hidden, x.dtype)
    i = vectorized.sigmoid(a[..., :hidden])
    f = vectorized.sigmoid(a[..., hidden : 2 * hidden])
    g = np.tanh(a[..., 2 * hidden : 3 * hidden])
    o = vectorized.sigmoid(a[..., 3 * hidden :])
    c = f * c + i * g
    return o * c, c


# ------------------------------------------------------------------ GRU forward


def _gru_parts(
    x: Array,
    hx: Array | None,
    weight_ih: Array,
    weight_hh: Array,
    bias_ih: Array | None,
    bias_hh: Array | None,
) -> tuple[Array, Array, Array, Array, Array]:
    """``(h, r, z, W_in x + b_in, b_hn)``: what both wrong GRU forms share with torch's."""
    hidden = weight_hh.shape[1]
    h = _state(hx, x, hidden)
    ax = x @ weight_ih.T + (0 if bias_ih is None else bias_ih)
    b_hh = np.zeros(3 * hidden, dtype=x.dtype) if bias_hh is None else bias_hh
    ah = h @ weight_hh.T + b_hh
    r = vectorized.sigmoid(ax[..., :hidden] + ah[..., :hidden])
    z = vectorized.sigmoid(ax[..., hidden : 2 * hidden] + ah[..., hidden : 2 * hidden])
    return h, r, z, ax[..., 2 * hidden :], b_hh[2 * hidden :]


def gru_cell_reset_before_product(
    x: Array,
    hx: Array | None,
    weight_ih: Array,
    weight_hh: Array,
    bias_ih: Array | None = None,
    bias_hh: Array | None = None,
) -> Array:
    """PyTorch issues #8153 and #99531: ``n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)``.

    The later version of Cho et al.'s paper resets ``h`` before the product;
    torch (like cuDNN and the paper's first version) resets the product,
    ``r ⊙ (W_hn h + b_hn)``. Reading torch's weights with the other form is
    wrong as soon as ``r`` scales a nonzero ``b_hn`` or mixes hidden units.

    Shrunk counterexample (N = 2, I = 1, H = 3): x = 0, hx = 0, every weight
    and bias 0 but bias_hh[8] = 1/16 (b_hn of unit 2). torch: n = tanh(σ(0)·1/16)
    = tanh(1/32), so h'[·, 2] = (1 − σ(0))·n = 0.01562; reset before the product:
    n = tanh(1/16), h'[·, 2] = 0.03121.
    """
    h, r, z, ax_n, b_hn = _gru_parts(x, hx, weight_ih, weight_hh, bias_ih, bias_hh)
    hidden = weight_hh.shape[1]
    w_hn = weight_hh[2 * hidden :]
    n = np.tanh(ax_n + (r * h) @ w_hn.T + b_hn)
    out: Array = (1 - z) * n + z * h
    return out


def gru_cell_update_gate_swapped(
    x: Array,
    hx: Array | None,
    weight_ih: Array,
    weight_hh: Array,
    bias_ih: Array | None = None,
    bias_hh: Array | None = None,
) -> Array:
    """PyTorch issue #20129: ``h' = z ⊙ n + (1 − z) ⊙ h`` read as torch's GRU.

    The second GRU paper (Chung et al. 2014) writes the update this way round;
    torch follows the first (Cho et al. 2014): ``h' = (1 − z) ⊙ n + z ⊙ h``. Both
    are GRUs, with ``z`` meaning opposite things, but not the same function
    of torch's weights.

    Shrunk counterexample (N = 2, I = 2, H = 3, hx = 0, biases 0):
    x = [[0, 0], [1/16, 0]], every weight 0 but weight_ih[3, 0] = weight_ih[6, 0]
    = 1/16 (unit 0 of z and of n). Example 1: z = σ(1/256), n = tanh(1/256);
    torch h' = (1 − z)·n = 0.0019493, swapped z·n = 0.0019569.
    """
    h, r, z, ax_n, b_hn = _gru_parts(x, hx, weight_ih, weight_hh, bias_ih, bias_hh)
    hidden = weight_hh.shape[1]
    w_hn = weight_hh[2 * hidden :]
    n = np.tanh(ax_n + r * (h @ w_hn.T + b_hn))
    out: Array = z * n + (1 - z) * h
    return out


# ------------------------------------------------------------ BPTT, textbook form


def _sequence(x: Array, batch_first: bool) -> Array:
    return x.transpose(1, 0, 2) if batch_first else x


def _zeros_for_none(grad: Array | None, shape: tuple[int, ...], dtype: Any) -> Array:
    return np.zeros(shape, dtype=dtype) if grad is None else grad


def _lstm_bptt(
    grad_output: Any,
    x: Array,
    h0: Array | None,
    c0: Array | None,
    weight_ih: Array,
    weight_hh: Array,
    bias_ih: Array | None,
    bias_hh: Array | None,
    batch_first: bool,
    *,
    carry_cell: bool,
    seed_final_cell: bool,
) -> tuple[Array | None, ...]:
    """A textbook LSTM BPTT; ``carry_cell`` and ``seed_final_cell`` switch the two slips."""
    xs = _sequence(x, batch_first)
    steps, batch, _ = xs.shape
    hidden = weight_hh.shape[1]
    dtype = x.dtype
    h = np.zeros((batch, hidden), dtype) if h0 is None else h0
    c = np.zeros((batch, hidden), dtype) if c0 is None else c0
    bias = _bias(bias_ih, bias_hh, 4 * hidden, dtype)
    cache = []
    for t in range(steps):
        a = xs[t] @ weight_ih.T + h @ weight_hh.T + bias
        i = vectorized.sigmoid(a[:, :hidden])
        f = vectorized.sigmoid(a[:, hidden : 2 * hidden])
        g = np.tanh(a[:, 2 * hidden : 3 * hidden])
        o = vectorized.sigmoid(a[:, 3 * hidden :])
        c_next = f * c + i * g
        cache.append((h, c, i, f, g, o, c_next))
        h, c = o * np.tanh(c_next), c_next
    out_shape = (batch, steps, hidden) if batch_first else (steps, batch, hidden)
    g_out = _sequence(_zeros_for_none(grad_output[0], out_shape, dtype), batch_first)
    g_h = _zeros_for_none(grad_output[1], (batch, hidden), dtype)
    g_c = _zeros_for_none(grad_output[2], (batch, hidden), dtype)
    dh_next = g_h
    dc_next = g_c if seed_final_cell else np.zeros_like(g_c)
    dx = np.zeros_like(xs)
    d_w_ih = np.zeros_like(weight_ih)
    d_w_hh = np.zeros_like(weight_hh)
    d_b = np.zeros(4 * hidden, dtype=dtype)
    for t in reversed(range(steps)):
        h_prev, c_prev, i, f, g, o, c_t = cache[t]
        dh = g_out[t] + dh_next
        tanh_c = np.tanh(c_t)
        local = dh * o * (1 - tanh_c**2)
        dc = local + dc_next if carry_cell else local
        da = np.concatenate(
            [
                dc * g * i * (1 - i),
                dc * c_prev * f * (1 - f),
                dc * i * (1 - g**2),
                dh * tanh_c * o * (1 - o),
            ],
            axis=1,
        )
        dx[t] = da @ weight_ih
        d_w_ih += da.T @ xs[t]
        d_w_hh += da.T @ h_prev
        d_b += da.sum(axis=0)
        dc_next = dc * f
        dh_next = da @ weight_hh
    return (
        np.ascontiguousarray(_sequence(dx, batch_first)),
        None if h0 is None else dh_next,
        None if c0 is None else dc_next,
        d_w_ih,
        d_w_hh,
        None if bias_ih is None else d_b,
        None if bias_hh is None else d_b.copy(),
    )


def lstm_backward_cell_gradient_assigned(
    grad_output: Any,
    x: Array,
    h0: Array | None,
    c0: Array | None,
    weight_ih: Array,
    weight_hh: Array,
    bias_ih: Array | None = None,
    bias_hh: Array | None = None,
    batch_first: bool = False,
) -> tuple[Array | None, ...]:
    """Apache MXNet issue #4057: ``dc_t = dh_t ⊙ o ⊙ (1 − tanh² c_t)``, assigned.

    The report points at the LSTM example's backward pass, which overwrote the
    cell-state gradient at every step instead of adding the step's own term to
    the one carried back from ``c_{t+1}`` (``dc_{t+1} ⊙ f_{t+1}``; at the last
    step, the upstream gradient of ``c_n``). Right: ``dc_t = dc_next + dh_t ⊙ o
    ⊙ (1 − tanh² c_t)``. With T = 1 and no gradient on ``c_n`` the two agree.

    Shrunk counterexample (T = 2, N = 2, I = 1, H = 2): every input, state,
    weight and bias 0, a random upstream gradient on output, h_n and c_n. All
    gates are σ(0) = 1/2 and g = c = 0, so torch's ∂L/∂c0 = ∂L/∂c_n/4 + dh_1/8 +
    dh_0/4 (dh_t the hidden-state gradient of step t), this version's dh_0/4.
    """
    return _lstm_bptt(
        grad_output,
        x,
        h0,
        c0,
        weight_ih,
        weight_hh,
        bias_ih,
        bias_hh,
        batch_first,
        carry_cell=False,
        seed_final_cell=True,
    )


def lstm_backward_final_cell_gradient_ignored(
    grad_output: Any,
    x: Array,
    h0: Array | None,
    c0: Array | None,
    weight_ih: Array,
    weight_hh: Array,
    bias_ih: Array | None = None,
    bias_hh: Array | None = None,
    batch_first: bool = False,
) -> tuple[Array | None, ...]:
    """deeplearning4j issue #8838 (``lstmLayer_bp``): the gradient of ``c_n`` is dropped.

    The backward pass starts the carried cell-state gradient at zero, as if
    the loss never used the final cell state; right: it starts at ``∂L/∂c_n``.
    Any loss that reads ``c_n`` (an encoder handing its state to a decoder)
    gets wrong gradients.

    Shrunk counterexample: the one of ``lstm-cell-gradient-assigned`` (T = 2,
    everything 0, a random upstream gradient on c_n): ∂L/∂c0 = f·f·∂L/∂c_n + ...
    loses its ∂L/∂c_n/4.
    """
    return _lstm_bptt(
        grad_output,
        x,
        h0,
        c0,
        weight_ih,
        weight_hh,
        bias_ih,
        bias_hh,
        batch_first,
        carry_cell=True,
        seed_final_cell=False,
    )


def rnn_backward_hidden_gradient_not_carried(
    grad_output: Any,
    x: Array,
    h0: Array | None,
    weight_ih: Array,
    weight_hh: Array,
    bias_ih: Array | None = None,
    bias_hh: Array | None = None,
    nonlinearity: str = "tanh",
    batch_first: bool = False,
) -> tuple[Array | None, ...]:
    """Classic slip: step ``t`` of BPTT uses only its output's gradient, ``dh_t = g_t``.

    ``W_hhᵀ δ_{t+1}``, the gradient that step ``t + 1`` hands back, is computed
    but never added to the next step's ``dh`` (the ``+ dprev_h`` forgotten in an
    ``rnn_backward`` loop). Right: ``dh_t = g_t + W_hhᵀ δ_{t+1}``. Only the
    last step is right, so T = 1 cannot show it.

    Shrunk counterexample (T = 2, N = 2, I = 2, H = 2, tanh, h0 = None, no
    biases): x[0, 1] = [0, 1/16], every other x 0, weight_ih = 0, weight_hh = 0
    but weight_hh[1, 1] = 1/16. Every h is 0; torch's δ_0[1, 1] includes
    weight_hh[1, 1]·δ_1[1, 1], so ∂L/∂W_ih[1, 1] = δ_0[1, 1]·x[0, 1, 1] has a
    term (1/16)²·δ_1[1, 1] that this version drops.
    """
    xs = _sequence(x, batch_first)
    steps, batch, _ = xs.shape
    hidden = weight_hh.shape[1]
    dtype = x.dtype
    h = np.zeros((batch, hidden), dtype) if h0 is None else h0
    bias = _bias(bias_ih, bias_hh, hidden, dtype)
    hs = [h]
    for t in range(steps):
        a = xs[t] @ weight_ih.T + hs[-1] @ weight_hh.T + bias
        hs.append(np.maximum(a, 0) if nonlinearity == "relu" else np.tanh(a))
    out_shape = (batch, steps, hidden) if batch_first else (steps, batch, hidden)
    g_out = _sequence(_zeros_for_none(grad_output[0], out_shape, dtype), batch_first)
    g_h = _zeros_for_none(grad_output[1], (batch, hidden), dtype)
    dx = np.zeros_like(xs)
    d_w_ih = np.zeros_like(weight_ih)
    d_w_hh = np.zeros_like(weight_hh)
    d_b = np.zeros(hidden, dtype=dtype)
    d_prev = g_h
    for t in reversed(range(steps)):
        dh = g_out[t] + (g_h if t == steps - 1 else 0)  # the carried d_prev is left out
        h_t = hs[t + 1]
        da = dh * (h_t > 0) if nonlinearity == "relu" else dh * (1 - h_t**2)
        dx[t] = da @ weight_ih
        d_w_ih += da.T @ xs[t]
        d_w_hh += da.T @ hs[t]
        d_b += da.sum(axis=0)
        d_prev = da @ weight_hh
    return (
        np.ascontiguousarray(_sequence(dx, batch_first)),
        None if h0 is None else d_prev,
        d_w_ih,
        d_w_hh,
        None if bias_ih is None else d_b,
        None if bias_hh is None else d_b.copy(),
    )


# -------------------------------------------------------------------- embedding


def embedding_backward_buffered_add(
    grad_output: Array, input: Array, weight: Array, padding_idx: int | None = None
) -> Array:
    """NumPy's ``ufunc.at`` documentation: ``grad[input] += g`` is a buffered update.

    Fancy-index ``+=`` reads the rows once, adds and writes back, so a row
    indexed twice keeps one contribution instead of their sum; ``np.add.at``
    is the unbuffered form (the CS231n assignment's ``word_embedding_backward``
    hints at it for this reason).

    Shrunk counterexample: input = [0, 0], weight = [[0.0]], a random g: the
    row gets g[1] instead of g[0] + g[1].
    """
    grad_weight = np.zeros_like(weight)
    grad_weight[input.reshape(-1)] += grad_output.reshape(-1, weight.shape[1])
    if padding_idx is not None:
        grad_weight[padding_idx] = 0
    return grad_weight


ERRATA = [
    Erratum(
        name="lstm-gate-order-ifog",
        formula="lstm_cell",
        source="CS231n assignment 3, rnn_layers.py, lstm_step_forward ((D, 4H) weights)",
        mistake="gate rows read as i, f, o, g instead of torch's i, f, g, o",
        forward=lstm_cell_gates_ifog,
    ),
    Erratum(
        name="lstm-h-without-tanh",
        formula="lstm_cell",
        source="nicodjimenez/lstm issue #47",
        mistake="h = o ⊙ c instead of o ⊙ tanh(c)",
        forward=lstm_cell_h_without_tanh,
    ),
    Erratum(
        name="lstm-cell-gradient-assigned",
        formula="lstm",
        source="Apache MXNet issue #4057",
        mistake="dc_t = dh_t ⊙ o ⊙ (1 − tanh² c_t) assigned, dropping the dc carried from t + 1",
        backward=lstm_backward_cell_gradient_assigned,
    ),
    Erratum(
        name="lstm-final-cell-gradient-ignored",
        formula="lstm",
        source="deeplearning4j issue #8838",
        mistake="the BPTT starts from dc = 0, ignoring the upstream gradient of c_n",
        backward=lstm_backward_final_cell_gradient_ignored,
    ),
    Erratum(
        name="rnn-hidden-gradient-not-carried",
        formula="rnn",
        source="classic slip",
        mistake="dh_t = g_t: the gradient W_hhᵀ δ_{t+1} is not carried to step t",
        backward=rnn_backward_hidden_gradient_not_carried,
    ),
    Erratum(
        name="gru-reset-before-product",
        formula="gru_cell",
        source="PyTorch issues #8153 and #99531",
        mistake="n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn) instead of r ⊙ (W_hn h + b_hn)",
        forward=gru_cell_reset_before_product,
    ),
    Erratum(
        name="gru-update-gate-swapped",
        formula="gru_cell",
        source="PyTorch issue #20129",
        mistake="h' = z ⊙ n + (1 − z) ⊙ h instead of (1 − z) ⊙ n + z ⊙ h",
        forward=gru_cell_update_gate_swapped,
    ),
    Erratum(
        name="embedding-grad-buffered-add",
        formula="embedding",
        source="NumPy documentation, numpy.ufunc.at",
        mistake="grad[input] += g, which keeps one contribution of a repeated index",
        backward=embedding_backward_buffered_add,
    ),
]
