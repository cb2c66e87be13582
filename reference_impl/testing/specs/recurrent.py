"""Specs of the recurrent family: embedding, the RNN, LSTM and GRU cells and sequences.

Every case is valid by construction. The sizes come first (hidden size 1, one
time step, a batch of one and unbatched cells steered), then which optional
arguments are absent (biases, initial states), then the values: inputs and
states on the grid, weights in [−1, 1] (steps of 1/16; of 1/2 for the ReLU RNN,
see ``tolerances.py``). "saturated gates" plants biases of magnitude 20 and
more, beyond what the weights, inputs and states can offset, on some gate rows,
so those gates sit at σ = 0 or 1 (tanh = ±1) at every step. Which outputs get
an upstream gradient is steered too: a loss on the final state only, on the
outputs only, on the LSTM's final cell state only (``Case.silent``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference_impl.testing import oracles
from reference_impl.testing.registry import Case, ErrorInput, FormulaSpec, Steer
from reference_impl.testing.strategies import GRID, arrays, grad_seeds
from reference_impl.testing.tolerances import unrolled_length

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
#: weights of the smooth cells: multiples of 1/16 in [−1, 1]
WEIGHTS = st.integers(-16, 16).map(lambda k: k / 16)
#: weights of the ReLU RNN: multiples of 1/2 in [−1, 1], exact through four steps in float32
RELU_WEIGHTS = st.integers(-2, 2).map(lambda k: k / 2)
#: how far beyond 20 + (what the rest of the pre-activation can reach) a saturated gate sits
SATURATION = (20.0, 30.0, 100.0, 1000.0)


def _names(kind: str, sequence: bool) -> tuple[str, ...]:
    """The initial states, by their argument names."""
    base = ("h0", "c0") if sequence else ("hx", "cx")
    return base if kind == "lstm" else base[:1]


def outputs_of(kind: str, sequence: bool) -> tuple[str, ...]:
    if sequence:
        return ("output", "h_n", "c_n") if kind == "lstm" else ("output", "h_n")
    return ("h", "c") if kind == "lstm" else ("output",)


def _silent(draw: st.DrawFn, steer: Steer, kind: str, sequence: bool) -> tuple[frozenset[str], str]:
    """Outputs whose upstream gradient is zero, and the corner that names the choice."""
    if sequence:
        finals = ("h_n", "c_n") if kind == "lstm" else ("h_n",)
        if steer.flag(draw, "gradient only on final state"):
            return frozenset({"output"}), "gradient only on final state"
        if steer.flag(draw, "gradient only on outputs"):
            return frozenset(finals), "gradient only on outputs"
        if kind == "lstm" and steer.flag(draw, "gradient only on c_n"):
            return frozenset({"output", "h_n"}), "gradient only on c_n"
        return frozenset(), "gradient on every output"
    if kind == "lstm":
        if steer.flag(draw, "gradient only on h"):
            return frozenset({"c"}), "gradient only on h"
        if steer.flag(draw, "gradient only on c"):
            return frozenset({"h"}), "gradient only on c"
        return frozenset(), "gradient on h and c"
    return frozenset(), ""


def _saturate(
    draw: st.DrawFn,
    bias_ih: np.ndarray[Any, Any],
    weight_ih: np.ndarray[Any, Any],
    weight_hh: np.ndarray[Any, Any],
    bias_hh: np.ndarray[Any, Any] | None,
    x_max: float,
    h_max: float,
) -> np.ndarray[Any, Any]:
    """``bias_ih`` with some rows pushed to ±(S + what the rest of their pre-activation reaches).

    The rest of row ``r``'s pre-activation is at most
    ``Σ|W_ih[r]|·max|x| + Σ|W_hh[r]|·max|h| + |b_hh[r]|`` in magnitude at every
    step (|h| ≤ max(1, |h0|) for the tanh RNN, the LSTM and the GRU), so the
    gate's pre-activation has magnitude at least S ≥ 20 throughout.
    """
    rows = draw(
        st.lists(st.integers(0, bias_ih.size - 1), min_size=1, max_size=bias_ih.size, unique=True),
        label="saturated rows",
    )
    level = draw(st.sampled_from(SATURATION), label="saturation")
    bias: np.ndarray[Any, Any] = bias_ih.copy()
    for r in rows:
        rest = np.abs(weight_ih[r]).sum() * x_max + np.abs(weight_hh[r]).sum() * h_max
        rest += 0.0 if bias_hh is None else abs(float(bias_hh[r]))
        sign = draw(st.sampled_from([-1.0, 1.0]), label=f"sign of row {r}")
        bias[r] = sign * (level + math.ceil(float(rest)))
    return bias


@st.composite
def recurrent_cases(
    draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer, kind: str, sequence: bool
) -> Case:
    """A cell (``sequence=False``) or a one-layer sequence of ``kind``, valid by construction."""
    gates = GATES[kind]
    corners: set[str] = set()
    relu = False
    if kind == "rnn":
        allowed = [v for v in ("tanh", "relu") if steer.allows(f"nonlinearity {v}")]
        nonlinearity = steer.value(draw, "nonlinearity", st.sampled_from(allowed))
        relu = nonlinearity == "relu"
        corners.add(f"nonlinearity {nonlinearity}")
    hidden = 1 if steer.flag(draw, "hidden size 1") else draw(st.integers(2, 3), label="H")
    inputs = draw(st.integers(1, 3), label="I")
    steps = 1
    batch_first = False
    unbatched = False
    if sequence:
        steps = 1 if steer.flag(draw, "T = 1") else draw(st.integers(2, 4), label="T")
        batch_first = bool(steer.value(draw, "batch_first", st.booleans()))
        corners.add("batch_first" if batch_first else "time first")
        corners.add("T = 1" if steps == 1 else "T > 1")
    else:
        unbatched = steer.flag(draw, "unbatched")
    batch = 1 if unbatched or steer.flag(draw, "N = 1") else 2
    if unbatched:
        corners.add("unbatched")
    else:
        corners.add("N = 1" if batch == 1 else "N > 1")
    if hidden == 1:
        corners.add("hidden size 1")

    weights = RELU_WEIGHTS if relu else WEIGHTS
    rows = gates * hidden
    if sequence:
        x_shape: tuple[int, ...] = (batch, steps, inputs) if batch_first else (steps, batch, inputs)
    else:
        x_shape = (inputs,) if unbatched else (batch, inputs)
    state_shape = x_shape[:-1] if not sequence else (batch,)
    state_shape = (*state_shape, hidden)
    x = draw(arrays(dtype, x_shape, GRID), label="x")
    weight_ih = draw(arrays(dtype, (rows, inputs), weights), label="weight_ih")
    weight_hh = draw(arrays(dtype, (rows, hidden), weights), label="weight_hh")

    saturated = not relu and steer.flag(draw, "saturated gates")
    bias_ih = bias_hh = None
    if saturated or not steer.flag(draw, "no bias"):
        bias_ih = draw(arrays(dtype, (rows,), weights), label="bias_ih")
        bias_hh = draw(arrays(dtype, (rows,), weights), label="bias_hh")
        if steer.flag(draw, "one bias"):
            keep_ih = saturated or draw(st.booleans(), label="keep bias_ih")
            if keep_ih:
                bias_hh = None
            else:
                bias_ih = None
    if bias_ih is None and bias_hh is None:
        corners.add("no bias")
    elif bias_ih is None or bias_hh is None:
        corners.add("one bias")
    else:
        corners.add("bias")

    names = _names(kind, sequence)
    states: dict[str, np.ndarray[Any, Any] | None] = {}
    if steer.flag(draw, "initial state None"):
        states = dict.fromkeys(names)
        corners.add("initial state None")
    else:
        states = {name: draw(arrays(dtype, state_shape, GRID), label=name) for name in names}
        corners.add("initial state given")
        if kind == "lstm" and steer.flag(draw, "one initial state None"):
            states[draw(st.sampled_from(names), label="absent state")] = None
            corners.add("one initial state None")

    if saturated:
        assert bias_ih is not None
        h0 = states[names[0]]
        h_max = max(1.0, 0.0 if h0 is None else float(np.abs(h0).max()))
        x_max = float(np.abs(x).max())
        bias_ih = _saturate(draw, bias_ih, weight_ih, weight_hh, bias_hh, x_max, h_max)
        bias_ih = np.asarray(bias_ih, dtype=dtype)
        corners.add("saturated gates")

    silent, choice = _silent(draw, steer, kind, sequence)
    if choice:
        corners.add(choice)

    args: dict[str, Any] = {"x": x, **states}
    args.update(weight_ih=weight_ih, weight_hh=weight_hh, bias_ih=bias_ih, bias_hh=bias_hh)
    if kind == "rnn":
        args["nonlinearity"] = "relu" if relu else "tanh"
    if sequence:
        args["batch_first"] = batch_first
    return Case(args, draw(grad_seeds()), steer.settle(corners), silent)


def _sizes(args: Mapping[str, Any], kind: str, sequence: bool) -> tuple[int, int, int, int]:
    """``(T, N, I, H)`` of a case."""
    x = args["x"]
    hidden = int(args["weight_hh"].shape[1])
    if not sequence:
        return 1, (x.shape[0] if x.ndim == 2 else 1), int(x.shape[-1]), hidden
    steps, batch = (x.shape[1], x.shape[0]) if args["batch_first"] else x.shape[:2]
    return int(steps), int(batch), int(x.shape[-1]), hidden


def _recurrent_length(args: Mapping[str, Any], kind: str, sequence: bool) -> int:
    """``tolerances.unrolled_length``: T forward steps of I + H + 2 terms, T backward steps of
    G·H + 2 terms, then the weight gradients' sum over N·T."""
    steps, batch, inputs, hidden = _sizes(args, kind, sequence)
    return unrolled_length(steps, inputs + hidden + 2, GATES[kind] * hidden + 2, batch * steps)


# ---------------------------------------------------------------------- embedding


@st.composite
def embedding_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer) -> Case:
    """Index arrays of any rank (0-d too), repeated indices, padding rows, negative padding_idx."""
    rows = draw(st.integers(1, 5), label="num_embeddings")
    dim = draw(st.integers(1, 3), label="embedding_dim")
    repeated = steer.flag(draw, "repeated indices")
    if steer.flag(draw, "0-d input"):
        shape: tuple[int, ...] = ()
    else:
        shape = tuple(
            draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), label="shape")
        )
        if repeated and math.prod(shape) < 2:
            shape = (*shape[:-1], 2)
    index_dtype = draw(st.sampled_from([np.int64, np.int32]), label="index dtype")
    indices = draw(hnp.arrays(index_dtype, shape, elements=st.integers(0, rows - 1)), label="input")
    if repeated and indices.size >= 2:
        flat = indices.reshape(-1).copy()
        source, target = draw(
            st.lists(st.integers(0, flat.size - 1), min_size=2, max_size=2, unique=True),
            label="repeated positions",
        )
        flat[target] = flat[source]
        indices = flat.reshape(shape)
    padding_idx = None
    if "padding_idx" in steer.fixed:
        padding_idx = steer.fixed["padding_idx"]
    elif steer.flag(draw, "padding_idx"):
        row = draw(st.integers(0, rows - 1), label="padding row")
        padding_idx = row - rows if steer.flag(draw, "negative padding_idx") else row
        if steer.flag(draw, "padding index in input") and indices.size:
            flat = indices.reshape(-1).copy()
            flat[draw(st.integers(0, flat.size - 1), label="padding at")] = row
            indices = flat.reshape(shape)
    weight = draw(arrays(dtype, (rows, dim), GRID), label="weight")

    corners = {"int32 indices" if index_dtype == np.int32 else "int64 indices"}
    if indices.ndim == 0:
        corners.add("0-d input")
    pad_row = None if padding_idx is None else padding_idx % rows
    values, counts = np.unique(indices, return_counts=True)
    if np.any((counts > 1) & (values != pad_row)):
        corners.add("repeated indices")
    if padding_idx is not None:
        corners.add("padding_idx")
        if padding_idx < 0:
            corners.add("negative padding_idx")
        if np.any(indices == pad_row):
            corners.add("padding index in input")
    if values.size < rows:
        corners.add("unused rows")
    args = {"input": indices, "weight": weight, "padding_idx": padding_idx}
    return Case(args, draw(grad_seeds()), steer.settle(corners))


EMBEDDING_WEIGHT = np.arange(10.0).reshape(5, 2)
EMBEDDING_ERRORS = [
    ErrorInput("float indices", {"input": np.array([0.0, 1.0])}, TypeError, "input", "integer"),
    ErrorInput("bool indices", {"input": np.array([True, False])}, TypeError, "input"),
    ErrorInput("list indices", {"input": [0, 1]}, TypeError, "input", "numpy"),
    ErrorInput("index too large", {"input": np.array([[0, 5]])}, ValueError, "input", "range"),
    ErrorInput("negative index", {"input": np.array([[-1, 0]])}, ValueError, "input", "range"),
    ErrorInput("padding_idx too large", {"padding_idx": 5}, ValueError, "padding_idx", "range"),
    ErrorInput("padding_idx too small", {"padding_idx": -6}, ValueError, "padding_idx", "range"),
    ErrorInput("padding_idx float", {"padding_idx": 1.0}, TypeError, "padding_idx"),
    ErrorInput("padding_idx bool", {"padding_idx": True}, TypeError, "padding_idx"),
    ErrorInput("weight rank", {"weight": np.zeros(5)}, ValueError, "weight", "2 dimensions"),
    ErrorInput("weight int", {"weight": np.zeros((5, 2), np.int64)}, TypeError, "weight"),
]


# ------------------------------------------------------------------ error inputs


def _good(kind: str, sequence: bool) -> dict[str, Any]:
    """Valid float64 arguments: N = 2, I = 3, H = 4 (and T = 5 for a sequence)."""
    rows = GATES[kind] * 4
    rng = np.random.default_rng(0)
    x_shape = (5, 2, 3) if sequence else (2, 3)
    args: dict[str, Any] = {"x": rng.standard_normal(x_shape)}
    for name in _names(kind, sequence):
        args[name] = rng.standard_normal((2, 4))
    args.update(
        weight_ih=rng.standard_normal((rows, 3)),
        weight_hh=rng.standard_normal((rows, 4)),
        bias_ih=rng.standard_normal(rows),
        bias_hh=rng.standard_normal(rows),
    )
    if kind == "rnn":
        args["nonlinearity"] = "tanh"
    if sequence:
        args["batch_first"] = False
    return args


def _errors(kind: str, sequence: bool) -> list[ErrorInput]:
    gates = GATES[kind]
    rows = gates * 4
    state = _names(kind, sequence)
    errors = [
        ErrorInput(
            "input_size",
            {"x": np.ones((5, 2, 2) if sequence else (2, 2))},
            ValueError,
            "x",
            "inconsistent input_size",
        ),
        ErrorInput(f"{state[0]} hidden size", {state[0]: np.ones((2, 3))}, ValueError, state[0]),
        ErrorInput(f"{state[0]} batch", {state[0]: np.ones((3, 4))}, ValueError, state[0]),
        ErrorInput(
            "weight_hh hidden size", {"weight_hh": np.ones((rows, 3))}, ValueError, "weight_hh"
        ),
        ErrorInput(
            "weight_hh rows", {"weight_hh": np.ones((rows + 1, 4))}, ValueError, "weight_hh"
        ),
        ErrorInput("weight_ih rank", {"weight_ih": np.ones(rows)}, ValueError, "weight_ih"),
        ErrorInput("bias_ih length", {"bias_ih": np.ones(rows - 1)}, ValueError, "bias_ih"),
        ErrorInput("bias_hh rank", {"bias_hh": np.ones((rows, 1))}, ValueError, "bias_hh"),
        ErrorInput(
            "mixed dtypes", {"weight_hh": np.ones((rows, 4), np.float32)}, TypeError, "weight_hh"
        ),
        ErrorInput(f"{state[0]} list", {state[0]: [[0.0] * 4] * 2}, TypeError, state[0], "numpy"),
        ErrorInput("integer x", {"x": np.ones((2, 3), np.int64)}, TypeError, "x"),
    ]
    if gates > 1:
        errors.append(
            ErrorInput(
                f"weight_ih rows not a multiple of {gates}",
                {"weight_ih": np.ones((rows + 1, 3))},
                ValueError,
                "weight_ih",
                f"{gates}·hidden_size",
            )
        )
        errors.append(
            ErrorInput(
                "weight_ih hidden size",
                {"weight_ih": np.ones((rows - gates, 3))},
                ValueError,
                "weight_hh",
                "hidden_size",
            )
        )
    if kind == "lstm":
        errors.append(
            ErrorInput(f"{state[1]} shape", {state[1]: np.ones((2, 5))}, ValueError, state[1])
        )
    if kind == "rnn":
        errors += [
            ErrorInput(
                "unknown nonlinearity", {"nonlinearity": "sigmoid"}, ValueError, "nonlinearity"
            ),
            ErrorInput("nonlinearity None", {"nonlinearity": None}, ValueError, "nonlinearity"),
        ]
    if sequence:
        errors += [
            ErrorInput("x rank 2", {"x": np.ones((5, 3))}, ValueError, "x", "3 dimensions"),
            ErrorInput("no time steps", {"x": np.ones((0, 2, 3))}, ValueError, "x", "time step"),
            ErrorInput(f"{state[0]} layered", {state[0]: np.ones((1, 2, 4))}, ValueError, state[0]),
            ErrorInput("batch_first int", {"batch_first": 1}, TypeError, "batch_first"),
            ErrorInput("batch_first str", {"batch_first": "yes"}, TypeError, "batch_first"),
            ErrorInput(
                "batch_first layout",
                {"batch_first": True},
                ValueError,
                state[0],
            ),
        ]
    else:
        errors += [
            ErrorInput("x rank 3", {"x": np.ones((1, 2, 3))}, ValueError, "x", "1 or 2 dimensions"),
            ErrorInput(f"{state[0]} unbatched", {state[0]: np.ones(4)}, ValueError, state[0]),
        ]
    return errors


def _corners(kind: str, sequence: bool) -> frozenset[str]:
    corners = {"hidden size 1", "N = 1", "N > 1", "no bias", "one bias", "bias"}
    corners |= {"initial state None", "initial state given"}
    if kind == "lstm":
        corners.add("one initial state None")
    if kind == "rnn":
        corners |= {"nonlinearity tanh", "nonlinearity relu"}
    corners.add("saturated gates")
    if sequence:
        corners |= {"T = 1", "T > 1", "batch_first", "time first"}
        corners |= {"gradient only on final state", "gradient only on outputs"}
        corners.add("gradient on every output")
        if kind == "lstm":
            corners.add("gradient only on c_n")
    else:
        corners.add("unbatched")
        if kind == "lstm":
            corners |= {"gradient only on h", "gradient only on c", "gradient on h and c"}
    return frozenset(corners)


def _spec(kind: str, sequence: bool, oracle: Any) -> FormulaSpec:
    name = kind if sequence else f"{kind}_cell"
    states = _names(kind, sequence)
    return FormulaSpec(
        name=name,
        oracle=oracle,
        cases=partial(recurrent_cases, kind=kind, sequence=sequence),
        grad_wrt=("x", *states, "weight_ih", "weight_hh", "bias_ih", "bias_hh"),
        outputs=outputs_of(kind, sequence),
        reduction_length=partial(_recurrent_length, kind=kind, sequence=sequence),
        corners=_corners(kind, sequence),
        error_base=partial(_good, kind, sequence),
        error_inputs=_errors(kind, sequence),
    )


SPECS = [
    FormulaSpec(
        name="embedding",
        cases=embedding_cases,
        grad_wrt=("weight",),
        reduction_length=lambda args: max(1, int(args["input"].size)),
        integer_args=frozenset({"input"}),
        corners=frozenset(
            {
                "repeated indices",
                "padding_idx",
                "negative padding_idx",
                "padding index in input",
                "0-d input",
                "int32 indices",
                "int64 indices",
                "unused rows",
            }
        ),
        error_base=lambda: {
            "input": np.array([[0, 4], [4, 1]]),
            "weight": EMBEDDING_WEIGHT,
            "padding_idx": None,
        },
        error_inputs=EMBEDDING_ERRORS,
    ),
    _spec("rnn", False, oracles.rnn_cell),
    _spec("lstm", False, oracles.lstm_cell),
    _spec("gru", False, oracles.gru_cell),
    _spec("rnn", True, oracles.rnn),
    _spec("lstm", True, oracles.lstm),
    _spec("gru", True, oracles.gru),
]
