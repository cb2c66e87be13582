"""What is specific to the recurrent family, beyond the generic registry properties.

Conventions worked by hand (each test's docstring names the wrong formula it
rejects): torch's gate rows, the GRU's reset and update gates, what a
saturated gate does, ReLU's gradient at 0, the embedding's repeated and
padding indices. And one identity that defines backpropagation through time:
a sequence's backward is its cell's backward chained from the last step to
the first, the hidden (and cell) state gradients carried, the weight
gradients summed.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, strategies as st

import reference_impl.loops
import reference_impl.vectorized
from reference_impl.testing import evaluate
from reference_impl.testing.comparison import assert_agree
from reference_impl.testing.registry import NO_STEER
from reference_impl.testing.specs import spec_named
from reference_impl.testing.specs.recurrent import recurrent_cases
from reference_impl.testing.strategies import dtypes

#: Hypothesis tests take the namespace as a parameter (a fixture would be shared by examples)
EACH_NAMESPACE = pytest.mark.parametrize(
    "ns", [reference_impl.loops, reference_impl.vectorized], ids=["loops", "vectorized"]
)

BIG = 40.0  # σ(±40) is 1 or 4e-18, tanh(±40) = ±1 in float64


def sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def _lstm_args(bias: list[float], cx: float = 0.5) -> dict[str, Any]:
    """A one-unit LSTM cell whose pre-activations are its bias (weights 0, x = hx = 0)."""
    return {
        "x": np.zeros((1, 1)),
        "hx": np.zeros((1, 1)),
        "cx": np.array([[cx]]),
        "weight_ih": np.zeros((4, 1)),
        "weight_hh": np.zeros((4, 1)),
        "bias_ih": np.array(bias),
        "bias_hh": None,
    }


def test_lstm_cell_gate_rows_are_i_f_g_o(namespace: ModuleType) -> None:
    """Rows (i, f, g, o) = (+40, +40, 0.25, 0): c' = c + tanh(1/4), h' = σ(0)·tanh(c').

    Rejects reading the rows as i, f, o, g (CS231n's order): that makes the
    candidate tanh(0) = 0 and the output gate σ(1/4).
    """
    h, c = namespace.lstm_cell(**_lstm_args([BIG, BIG, 0.25, 0.0]))
    assert c[0, 0] == pytest.approx(0.5 + math.tanh(0.25), rel=1e-15)
    assert h[0, 0] == pytest.approx(0.5 * math.tanh(0.5 + math.tanh(0.25)), rel=1e-15)


def test_lstm_cell_output_squashes_the_cell_state(namespace: ModuleType) -> None:
    """A closed forget gate and an open input and output gate: h' = tanh(c'), c' = tanh(2).

    Rejects ``h = o ⊙ c`` (nicodjimenez/lstm issue #47), which gives tanh(2).
    """
    h, c = namespace.lstm_cell(**_lstm_args([BIG, -BIG, 2.0, BIG], cx=3.0))
    assert c[0, 0] == pytest.approx(math.tanh(2.0), rel=1e-15)
    assert h[0, 0] == pytest.approx(math.tanh(math.tanh(2.0)), rel=1e-15)


def test_lstm_cell_backward_open_forget_gate_passes_the_cell_gradient(
    namespace: ModuleType,
) -> None:
    """f = 1, i = 0, o = 0: ∂L/∂cx = ∂L/∂c' exactly, and nothing reaches the weights' f rows.

    Rejects a backward that ignores the upstream gradient of c' (only h' read).
    """
    args = _lstm_args([-BIG, BIG, 0.0, -BIG])
    grads = namespace.lstm_cell_backward((None, np.array([[1.5]])), **args)
    _, _, d_cx, _, _, d_b_ih, d_b_hh = grads
    assert d_cx[0, 0] == pytest.approx(1.5, rel=1e-15)
    assert d_b_hh is None
    # the f row: dc · c · σ'(40) = 1.5 · 0.5 · 4e-18
    assert abs(d_b_ih[1]) < 1e-16


def _gru_args(bias_ih: list[float], bias_hh: list[float], hx: float) -> dict[str, Any]:
    return {
        "x": np.zeros((1, 1)),
        "hx": np.array([[hx]]),
        "weight_ih": np.zeros((3, 1)),
        "weight_hh": np.zeros((3, 1)),
        "bias_ih": np.array(bias_ih),
        "bias_hh": np.array(bias_hh),
    }


def test_gru_cell_reset_gate_scales_the_product(namespace: ModuleType) -> None:
    """r = σ(0) = 1/2, z = σ(−40) ≈ 0: h' = n = tanh(b_in + r·b_hn) = tanh(0.25 + 0.5).

    Rejects the reset applied before the product, ``W_hn (r ⊙ h) + b_hn``
    (PyTorch issues #8153 and #99531), which leaves b_hn unscaled: tanh(1.25).
    """
    h = namespace.gru_cell(**_gru_args([0.0, -BIG, 0.25], [0.0, 0.0, 1.0], hx=2.0))
    assert h[0, 0] == pytest.approx(math.tanh(0.25 + 0.5 * 1.0), rel=1e-15)


@pytest.mark.parametrize(("z_bias", "expected"), [(BIG, 2.0), (-BIG, math.tanh(0.75))])
def test_gru_cell_update_gate_keeps_the_old_state(
    namespace: ModuleType, z_bias: float, expected: float
) -> None:
    """z = 1 keeps h' = hx; z = 0 takes h' = n (torch's h' = (1 − z) ⊙ n + z ⊙ h).

    Rejects the swapped update ``z ⊙ n + (1 − z) ⊙ h`` (PyTorch issue #20129).
    """
    h = namespace.gru_cell(**_gru_args([0.0, z_bias, 0.75], [BIG, 0.0, 0.0], hx=2.0))
    assert h[0, 0] == pytest.approx(expected, rel=1e-15)


def test_rnn_cell_relu_gradient_at_zero_is_zero(namespace: ModuleType) -> None:
    """A pre-activation of exactly 0 passes no gradient (torch's relu'(0) = 0).

    Rejects the gate ``1[a ≥ 0]``.
    """
    args = {
        "x": np.array([1.0, -1.0]),
        "hx": None,
        "weight_ih": np.array([[1.0, 1.0], [2.0, 0.0]]),
        "weight_hh": np.zeros((2, 2)),
        "nonlinearity": "relu",
    }
    assert namespace.rnn_cell(**args).tolist() == [0.0, 2.0]
    d_x, d_hx, d_w_ih, *_ = namespace.rnn_cell_backward(np.array([3.0, 5.0]), **args)
    assert d_hx is None
    assert d_x.tolist() == [10.0, 0.0]
    assert d_w_ih.tolist() == [[0.0, 0.0], [5.0, -5.0]]


def test_rnn_bptt_worked_by_hand(namespace: ModuleType) -> None:
    """A ReLU RNN with one unit over two steps, every number an integer.

    x = (1, 2), h0 = 1, W_ih = 2, W_hh = 3: h1 = relu(2 + 3) = 5, h2 = relu(4 + 15)
    = 19. Upstream gradients: 1 and 10 on the outputs, 100 on h_n. Backward:
    dh2 = 10 + 100 = 110 = δ2; dh1 = 1 + 3·110 = 331 = δ1; ∂L/∂h0 = 3·331 = 993;
    ∂L/∂x = (2·331, 2·110); ∂L/∂W_ih = 331·1 + 110·2 = 551; ∂L/∂W_hh = 331·1 +
    110·5 = 881. Rejects the hidden gradient not carried (dh1 = 1 gives
    ∂L/∂W_ih = 221), a missing h_n gradient (δ2 = 10), and weight gradients of
    the last step only.
    """
    args = {
        "x": np.array([[[1.0]], [[2.0]]]),
        "h0": np.array([[1.0]]),
        "weight_ih": np.array([[2.0]]),
        "weight_hh": np.array([[3.0]]),
        "nonlinearity": "relu",
    }
    output, h_n = namespace.rnn(**args)
    assert output.ravel().tolist() == [5.0, 19.0]
    assert h_n.tolist() == [[19.0]]
    upstream = (np.array([[[1.0]], [[10.0]]]), np.array([[100.0]]))
    d_x, d_h0, d_w_ih, d_w_hh, d_b_ih, d_b_hh = namespace.rnn_backward(upstream, **args)
    assert d_x.ravel().tolist() == [662.0, 220.0]
    assert d_h0.tolist() == [[993.0]]
    assert d_w_ih.tolist() == [[551.0]]
    assert d_w_hh.tolist() == [[881.0]]
    assert d_b_ih is None and d_b_hh is None


def test_embedding_backward_adds_repeated_indices(namespace: ModuleType) -> None:
    """Index 0 used twice collects both rows of g; the padding row (−1 → row 2) gets none.

    Rejects ``grad[input] += g`` (keeps one of the repeats) and a padding_idx
    taken literally as −1 instead of counted from the end.
    """
    weight = np.arange(6.0).reshape(3, 2)
    indices = np.array([[0, 2], [0, 1]])
    g = np.array([[[1.0, 2.0], [4.0, 8.0]], [[16.0, 32.0], [64.0, 128.0]]])
    out = namespace.embedding(indices, weight, padding_idx=-1)
    assert out.tolist() == [[[0.0, 1.0], [4.0, 5.0]], [[0.0, 1.0], [2.0, 3.0]]]
    grad = namespace.embedding_backward(g, indices, weight, padding_idx=-1)
    assert grad.tolist() == [[17.0, 34.0], [64.0, 128.0], [0.0, 0.0]]


def test_embedding_padding_row_is_read_in_the_forward(namespace: ModuleType) -> None:
    """torch reads the padding row as it is; only its gradient is removed.

    Rejects a forward that returns zeros for the padding index.
    """
    weight = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert namespace.embedding(np.array(1), weight, padding_idx=1).tolist() == [3.0, 4.0]


def test_lstm_backward_none_is_a_zero_upstream_gradient(namespace: ModuleType) -> None:
    """``None`` in the tuple of upstream gradients means zeros (a loss on c_n alone)."""
    rng = np.random.default_rng(1)
    args = {
        "x": rng.standard_normal((3, 2, 2)),
        "h0": rng.standard_normal((2, 3)),
        "c0": None,
        "weight_ih": rng.standard_normal((12, 2)),
        "weight_hh": rng.standard_normal((12, 3)),
    }
    g_c = rng.standard_normal((2, 3))
    with_none = namespace.lstm_backward((None, None, g_c), **args)
    with_zeros = namespace.lstm_backward((np.zeros((3, 2, 3)), np.zeros((2, 3)), g_c), **args)
    for a, b in zip(with_none, with_zeros, strict=True):
        assert (a is None and b is None) or np.array_equal(a, b)
    assert with_none[2] is None  # c0 was not given


# ------------------------------------------------------------ BPTT = chained cells


def _chained(ns: ModuleType, kind: str, args: dict[str, Any], upstream: tuple[Any, ...]) -> Any:
    """The sequence's outputs and gradients from its cell, step by step, time-first."""
    first = args["batch_first"]
    xs = args["x"].transpose(1, 0, 2) if first else args["x"]
    cell, cell_backward = getattr(ns, f"{kind}_cell"), getattr(ns, f"{kind}_cell_backward")
    weights = {k: args[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    extra = {"nonlinearity": args["nonlinearity"]} if kind == "rnn" else {}
    states: list[Any] = [args["h0"], args["c0"]] if kind == "lstm" else [args["h0"]]
    history = []
    for x in xs:
        history.append(states)
        out = cell(x, *states, **weights, **extra)
        states = list(out) if kind == "lstm" else [out]
    outputs = np.stack([s[0] for s in history[1:]] + [states[0]])
    g_out = upstream[0].transpose(1, 0, 2) if first else upstream[0]
    carried = list(upstream[1:])
    sums: list[Any] = [None] * 4
    dxs = []
    for t in reversed(range(len(xs))):
        incoming = [carried[0] + g_out[t], *carried[1:]]
        grad = incoming if kind == "lstm" else incoming[0]
        result = cell_backward(
            tuple(grad) if kind == "lstm" else grad, xs[t], *history[t], **weights, **extra
        )
        n_states = len(states)
        dxs.append(result[0])
        carried = list(result[1 : 1 + n_states])
        carried = [np.zeros_like(upstream[1]) if c is None else c for c in carried]
        for k, value in enumerate(result[1 + n_states :]):
            sums[k] = value if sums[k] is None else sums[k] + value
    dx = np.stack(dxs[::-1])
    d_states = [
        None if args[name] is None else carried[k]
        for k, name in enumerate(["h0", "c0"][: len(states)])
    ]
    outs = (outputs.transpose(1, 0, 2) if first else outputs, *states)
    grads = (dx.transpose(1, 0, 2) if first else dx, *d_states, *sums)
    return outs, grads


@EACH_NAMESPACE
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@given(data=st.data())
def test_rnn_lstm_gru_backward_is_the_cell_backward_chained_through_time(
    ns: ModuleType, kind: str, data: st.DataObject
) -> None:
    """Sequence = cell applied step by step; BPTT = cell backward from the last step to the first.

    At each step back the cell receives the output's gradient plus the state
    gradient handed back by the later step, and the weight gradients add up.
    Rejects a hidden-state gradient that is not carried (classic slip), a
    cell-state gradient assigned instead of accumulated (MXNet issue #4057), a
    BPTT that ignores the final states' gradients (deeplearning4j issue #8838)
    and weight gradients taken from one step only.
    """
    dtype = data.draw(dtypes(), label="dtype")
    case = data.draw(recurrent_cases(dtype, NO_STEER, kind, True), label="case")
    spec = spec_named(kind)
    args = dict(case.args)
    outputs = evaluate.as_outputs(spec, getattr(ns, kind)(**args))
    upstream = evaluate.upstream(spec, case, outputs)
    grads = getattr(ns, f"{kind}_backward")(upstream, **args)
    chained_outputs, chained_grads = _chained(ns, kind, args, upstream)
    assert_agree(
        [
            *zip(spec.outputs, outputs, chained_outputs, strict=True),
            *zip((f"grad_{k}" for k in spec.grad_wrt), grads, chained_grads, strict=True),
        ],
        formula=kind,
        actual_name=f"{ns.__name__}.{kind}",
        expected_name="its cell chained",
        dtype=dtype,
        reduction_length=spec.reduction_length(args),
        context=f"\n  case: {case.describe()}",
        record=False,
    )


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@given(data=st.data())
def test_rnn_lstm_gru_with_a_contiguous_hidden_operand_match_torch(
    kind: str, data: st.DataObject
) -> None:
    """The sequence forward with a tiled contiguous copy of ``W_hhᵀ`` agrees with torch.

    The spec's sequences are shorter than ``CONTIGUOUS_STEPS``, so the property
    tests multiply by the transposed view; here every sequence takes the copy,
    made one to three rows at a time. Rejects a tile copied to the wrong
    columns, rows left out of a tile, and a last, shorter tile dropped.
    """
    from reference_impl import recurrent

    spec = spec_named(kind)
    case = data.draw(evaluate.any_case(spec), label="case")
    tile = data.draw(st.integers(1, 3), label="rows per tile")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recurrent, "CONTIGUOUS_STEPS", 1)
        patch.setattr(recurrent, "TRANSPOSE_TILE", tile)
        evaluate.three_way(spec, case)
