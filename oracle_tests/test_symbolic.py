"""``reference_impl.symbolic``: the equations printed from the loop code are the loop code.

* substituting numbers for the symbols gives exactly what the loops and the
  vectorized functions compute (on the dyadic grid; for the pools with a
  divisor, on grid values times the divisors' least common multiple, so every
  division is exact; σ, tanh and softmax to the loops' rounding);
* the 3×3 input / 2×2 kernel input gradient prints as the published
  derivations list it, and Saraswat's two slips differ from it;
* every term names itself: one upstream symbol times one other, coefficient 1;
* the LaTeX renders (pdflatex) and parses back to the same expressions;
* ``import reference_impl`` never loads SymPy, and bad input names its argument.
"""

from __future__ import annotations

import functools
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sympy
from hypothesis import given, settings, strategies as st

from oracle_tests.test_golden import (
    SARASWAT_GRAD_INPUT,
    SARASWAT_GRAD_INPUT_AS_PRINTED,
    UNSIGNED_POST_GRAD_INPUT,
)
from reference_impl import loops, vectorized
from reference_impl._validation import float_array, symbolic_elements
from reference_impl.symbolic import Equations, equations, mlp
from reference_impl.symbolic.__main__ import main
from reference_impl.symbolic._core import exact
from reference_impl.testing.strategies import GRID, arrays
from reference_impl.window import padding_sides

README = Path(__file__).resolve().parent.parent / "README.md"
DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
NAMESPACES = {"loops": loops, "vectorized": vectorized}


def _budget(fraction: int) -> int:
    """A fraction of the profile's examples: symbolic runs cost a SymPy expression per element."""
    profile = settings.default
    return max(10, (100 if profile is None else profile.max_examples) // fraction)


@functools.lru_cache(maxsize=512)
def _cached(formula: str, frozen: tuple[tuple[str, Any], ...]) -> Equations:
    return equations(formula, **dict(frozen))


def _equations(formula: str, **arguments: Any) -> Equations:
    return _cached(formula, tuple(sorted(arguments.items())))


def _assign(eq: Equations, values: dict[str, Any]) -> dict[sympy.Symbol, Any]:
    """Numbers for the symbols of each named array of ``eq`` (an array or None)."""
    mapping: dict[sympy.Symbol, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        symbols = eq.symbols[name]
        numbers = np.asarray(value).reshape(symbols.shape)
        mapping.update(zip(symbols.flat, numbers.flat, strict=True))
    return mapping


def _assert_exact(
    eq: Equations, solved: dict[sympy.Symbol, Any], key: str, numeric: Any, label: str
) -> None:
    """Every equation of ``eq.symbols[key]`` evaluates to ``numeric``'s entry, exactly."""
    symbols = eq.symbols[key]
    numbers = np.asarray(numeric).reshape(symbols.shape)
    for symbol, number in zip(symbols.flat, numbers.flat, strict=True):
        value = solved[symbol]
        assert value == exact(number), (
            f"{eq.title}: {symbol} = {eq[symbol]} evaluates to {value}, "
            f"but {label} computes {number}"
        )


def _assert_close(
    eq: Equations, solved: dict[sympy.Symbol, Any], key: str, numeric: Any, label: str
) -> None:
    """Like :func:`_assert_exact`, to the rounding of a float64 evaluation of exp and tanh."""
    symbols = eq.symbols[key]
    numbers = np.asarray(numeric, dtype=np.float64).reshape(symbols.shape)
    values = np.array([float(sympy.N(solved[s], 30)) for s in symbols.flat]).reshape(symbols.shape)
    np.testing.assert_allclose(
        values, numbers, rtol=1e-12, atol=1e-14, err_msg=f"{eq.title}: {key} against {label}"
    )


# ------------------------------------------------------------------- configurations


@st.composite
def conv2d_configs(draw: st.DrawFn) -> dict[str, Any]:
    """Small conv2d calls, valid by construction; 2-D shapes half the time."""
    shorthand = draw(st.booleans(), label="2-D shapes")
    n = c_in_g = c_out_g = groups = 1
    if not shorthand:
        n = draw(st.integers(1, 2), label="N")
        groups = draw(st.integers(1, 2), label="groups")
        c_in_g = draw(st.integers(1, 2), label="C_in / groups") if groups == 1 else 1
        c_out_g = draw(st.integers(1, 2), label="C_out / groups") if groups == 1 else 1
    kh, kw = draw(st.integers(1, 3), label="kh"), draw(st.integers(1, 3), label="kw")
    dilation = (draw(st.integers(1, 2), label="d_h"), draw(st.integers(1, 2), label="d_w"))
    padding = draw(
        st.sampled_from([0, 1, (1, 0), (0, 1, 1, 0), (2, 0, 0, 1), "valid", "same"]),
        label="padding",
    )
    stride = (1, 1)
    if padding != "same":
        stride = (draw(st.integers(1, 2), label="s_h"), draw(st.integers(1, 3), label="s_w"))
    top, bottom, left, right = padding_sides(padding, (kh, kw), dilation)
    h = max(1, dilation[0] * (kh - 1) + 1 - top - bottom) + draw(st.integers(0, 1), label="+H")
    w = max(1, dilation[1] * (kw - 1) + 1 - left - right) + draw(st.integers(0, 1), label="+W")
    c_in, c_out = groups * c_in_g, groups * c_out_g
    x = (h, w) if shorthand else (n, c_in, h, w)
    weight = (kh, kw) if shorthand else (c_out, c_in_g, kh, kw)
    return {
        "x": x,
        "weight": weight,
        "bias": draw(st.booleans(), label="bias"),
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
    }


@st.composite
def linear_configs(draw: st.DrawFn) -> dict[str, Any]:
    """Any number of leading axes, one output unit as a 1-D weight half the time."""
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2), label="leading axes"))
    inputs = draw(st.integers(1, 4), label="in_features")
    single = draw(st.booleans(), label="1-D weight")
    outputs = 1 if single else draw(st.integers(1, 3), label="out_features")
    weight = (inputs,) if single else (outputs, inputs)
    return {"x": (*lead, inputs), "weight": weight, "bias": draw(st.booleans(), label="bias")}


@st.composite
def pool_configs(draw: st.DrawFn, dilation: bool) -> dict[str, Any]:
    """Pooling windows with padding, strides, ceil mode and (for max) dilation."""
    kernel = (draw(st.integers(1, 3), label="kh"), draw(st.integers(1, 3), label="kw"))
    stride = draw(st.none() | st.tuples(st.integers(1, 3), st.integers(1, 3)), label="stride")
    dil = (1, 1)
    if dilation:
        dil = (draw(st.integers(1, 2), label="d_h"), draw(st.integers(1, 2), label="d_w"))
    # dilation with padding can leave a window wholly in the padding (rejected): not both
    pad_max = [0, 0] if max(dil) > 1 else [k // 2 for k in kernel]
    padding = (draw(st.integers(0, pad_max[0]), label="p_h"), draw(st.integers(0, pad_max[1])))
    extent = [d * (k - 1) + 1 for d, k in zip(dil, kernel, strict=True)]
    size = [
        max(1, e - 2 * p) + draw(st.integers(0, 2), label="extra")
        for e, p in zip(extent, padding, strict=True)
    ]
    lead = draw(st.sampled_from([(), (2,), (1, 2), (2, 1)]), label="N, C")
    config: dict[str, Any] = {
        "x": (*lead, *size),
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "ceil_mode": draw(st.booleans(), label="ceil_mode"),
    }
    if dilation:
        config["dilation"] = dil
    return config


def _full(shape: tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """A shorthand shape with the leading axes of size 1 the symbolic layer adds."""
    return (1,) * (ndim - len(shape)) + shape


# ------------------------------------------------------------ substitution = loops


@settings(max_examples=_budget(8))
@given(config=conv2d_configs(), dtype=st.sampled_from(DTYPES), data=st.data())
def test_symbolic_conv2d_substitution_equals_loops_and_vectorized(
    config: dict[str, Any], dtype: np.dtype[Any], data: st.DataObject
) -> None:
    """The printed conv2d equations, given grid numbers, are both namespaces' results exactly.

    Rejects any printed equation with a wrong, missing or extra term.
    """
    eq = _equations("conv2d", **config)
    x = data.draw(arrays(dtype, _full(config["x"], 4)), label="x values")
    weight = data.draw(arrays(dtype, _full(config["weight"], 4)), label="weight values")
    c_out = weight.shape[0]
    bias = data.draw(arrays(dtype, (c_out,)), label="bias values") if config["bias"] else None
    hyper = {k: config[k] for k in ("stride", "padding", "dilation", "groups")}
    z = loops.conv2d(x, weight, bias, **hyper)
    dz = data.draw(arrays(dtype, z.shape), label="upstream")
    solved = eq.substitute(_assign(eq, {"x": x, "weight": weight, "bias": bias, "grad_output": dz}))
    for name, ns in NAMESPACES.items():
        grads = ns.conv2d_backward(dz, x, weight, bias, **hyper)
        _assert_exact(eq, solved, "output", ns.conv2d(x, weight, bias, **hyper), name)
        for key, grad in zip(("grad_x", "grad_weight", "grad_bias"), grads, strict=True):
            if grad is not None:
                _assert_exact(eq, solved, key, grad, name)


@settings(max_examples=_budget(4))
@given(config=linear_configs(), dtype=st.sampled_from(DTYPES), data=st.data())
def test_symbolic_linear_substitution_equals_loops_and_vectorized(
    config: dict[str, Any], dtype: np.dtype[Any], data: st.DataObject
) -> None:
    """z = Σ W·x + b and its three gradients, evaluated, are both namespaces' results exactly."""
    eq = _equations("linear", **config)
    weight_shape = config["weight"] if len(config["weight"]) == 2 else (1, *config["weight"])
    x = data.draw(arrays(dtype, config["x"]), label="x values")
    weight = data.draw(arrays(dtype, weight_shape), label="weight values")
    bias = data.draw(arrays(dtype, weight_shape[:1]), label="bias") if config["bias"] else None
    z = loops.linear(x, weight, bias)
    dz = data.draw(arrays(dtype, z.shape), label="upstream")
    solved = eq.substitute(_assign(eq, {"x": x, "weight": weight, "bias": bias, "grad_output": dz}))
    for name, ns in NAMESPACES.items():
        grads = ns.linear_backward(dz, x, weight, bias)
        _assert_exact(eq, solved, "output", ns.linear(x, weight, bias), name)
        for key, grad in zip(("grad_x", "grad_weight", "grad_bias"), grads, strict=True):
            if grad is not None:
                _assert_exact(eq, solved, key, grad, name)


@settings(max_examples=_budget(4))
@given(config=pool_configs(dilation=False), dtype=st.sampled_from(DTYPES), data=st.data())
def test_symbolic_avg_pool2d_substitution_equals_loops_and_vectorized(
    config: dict[str, Any], dtype: np.dtype[Any], data: st.DataObject
) -> None:
    """Window means and their gradients (every divisor rule), evaluated, exactly.

    The values are grid values times the lcm of every possible divisor, so that
    each division by ``D_ab`` is exact in floating point too.
    """
    include = data.draw(st.booleans(), label="count_include_pad")
    override = data.draw(st.none() | st.integers(1, 6), label="divisor_override")
    config = {**config, "count_include_pad": include, "divisor_override": override}
    eq = _equations("avg_pool2d", **config)
    kh, kw = config["kernel_size"]
    scale = math.lcm(*range(1, kh * kw + 1), override or 1)
    shape = _full(config["x"], 4) if len(config["x"]) == 2 else config["x"]
    x = data.draw(arrays(dtype, shape), label="x values") * dtype.type(scale)
    hyper = {k: v for k, v in config.items() if k != "x"}
    y = loops.avg_pool2d(x, **hyper)
    dy = data.draw(arrays(dtype, y.shape), label="upstream") * dtype.type(scale)
    solved = eq.substitute(_assign(eq, {"x": x, "grad_output": dy}))
    for name, ns in NAMESPACES.items():
        _assert_exact(eq, solved, "output", ns.avg_pool2d(x, **hyper), name)
        _assert_exact(eq, solved, "grad_x", ns.avg_pool2d_backward(dy, x, **hyper), name)


@settings(max_examples=_budget(4))
@given(config=pool_configs(dilation=True), dtype=st.sampled_from(DTYPES), data=st.data())
def test_symbolic_max_pool2d_substitution_equals_loops_and_vectorized(
    config: dict[str, Any], dtype: np.dtype[Any], data: st.DataObject
) -> None:
    """Each window's winner and the routed gradients, ties included, as both namespaces route.

    Values mix the grid with repeated 0s and 1s so that windows tie often: the
    printed ``Z_ab = X_rq`` must name torch's first maximum in row-major order.
    """
    shape = _full(config["x"], 4) if len(config["x"]) == 2 else config["x"]
    values = st.one_of(GRID, st.sampled_from([0.0, 1.0]))
    x = data.draw(arrays(dtype, shape, values), label="x values")
    eq = equations("max_pool2d", **config, x_values=x)
    hyper = {k: v for k, v in config.items() if k != "x"}
    y = loops.max_pool2d(x, **hyper)
    dy = data.draw(arrays(dtype, y.shape), label="upstream")
    solved = eq.substitute(_assign(eq, {"x": x, "grad_output": dy}))
    for name, ns in NAMESPACES.items():
        _assert_exact(eq, solved, "output", ns.max_pool2d(x, **hyper), name)
        _assert_exact(eq, solved, "grad_x", ns.max_pool2d_backward(dy, x, **hyper), name)


@settings(max_examples=_budget(5))
@given(
    formula=st.sampled_from(["sigmoid", "tanh", "softmax"]),
    shape=st.sampled_from([(1,), (3,), (2, 3), (3, 2)]),
    axis=st.sampled_from([0, -1]),
    data=st.data(),
)
def test_symbolic_sigmoid_tanh_softmax_substitution_equals_loops_and_vectorized(
    formula: str, shape: tuple[int, ...], axis: int, data: st.DataObject
) -> None:
    """σ, tanh and softmax's Jacobian-vector product, evaluated, to float64 rounding.

    The gradient equations are written with the outputs (``dZ1·Z1·(1 − Z1)``);
    the forward equations give those outputs their numbers first.
    """
    arguments: dict[str, Any] = {"x": shape}
    hyper: dict[str, Any] = {}
    if formula == "softmax":
        arguments["axis"] = hyper["axis"] = axis
    eq = _equations(formula, **arguments)
    x = data.draw(arrays(np.dtype(np.float64), shape), label="x values")
    dz = data.draw(arrays(np.dtype(np.float64), shape), label="upstream")
    solved = eq.substitute(_assign(eq, {"x": x, "grad_output": dz}))
    for name, ns in NAMESPACES.items():
        forward, backward = getattr(ns, formula), getattr(ns, f"{formula}_backward")
        _assert_close(eq, solved, "output", forward(x, **hyper), name)
        _assert_close(eq, solved, "grad_x", backward(dz, x, **hyper), name)


@settings(max_examples=_budget(5))
@given(shape=st.sampled_from([(1,), (4,), (2, 3)]), data=st.data())
def test_symbolic_relu_substitution_with_and_without_values(
    shape: tuple[int, ...], data: st.DataObject
) -> None:
    """ReLU's indicator form, and the branch picked from values, both evaluate to the loops'.

    Zeros are drawn on purpose: relu'(0) = 0 in the printed ``1[X > 0]`` as in torch.
    """
    x = data.draw(arrays(np.dtype(np.float64), shape, st.one_of(GRID, st.just(0.0))))
    dz = data.draw(arrays(np.dtype(np.float64), shape), label="upstream")
    for eq in (_equations("relu", x=shape), equations("relu", x=shape, x_values=x)):
        solved = eq.substitute(_assign(eq, {"x": x, "grad_output": dz}))
        for name, ns in NAMESPACES.items():
            _assert_exact(eq, solved, "output", ns.relu(x), name)
            _assert_exact(eq, solved, "grad_x", ns.relu_backward(dz, x), name)


# ------------------------------------------------------------------- the perceptron


@settings(max_examples=_budget(8))
@given(inputs=st.integers(1, 3), hidden=st.integers(1, 3), data=st.data())
def test_symbolic_mlp_chain_equals_the_chained_loops(
    inputs: int, hidden: int, data: st.DataObject
) -> None:
    """The δ recursion, evaluated, is the loops chained by hand: forward, δ2, δ1, every gradient.

    Values in [−1, 1] keep ŷ away from 0 and 1, where torch's clamps would act.
    """
    eq = _equations_mlp(inputs, hidden)
    small = st.integers(-16, 16).map(lambda k: k / 16)
    f64 = np.dtype(np.float64)
    x = data.draw(arrays(f64, (inputs,), small), label="x")
    w1 = data.draw(arrays(f64, (hidden, inputs), small), label="W1")
    b1 = data.draw(arrays(f64, (hidden,), small), label="b1")
    w2 = data.draw(arrays(f64, (1, hidden), small), label="W2")
    b2 = data.draw(arrays(f64, (1,), small), label="b2")
    y = np.array([float(data.draw(st.integers(0, 1), label="y"))])

    z1 = loops.linear(x, w1, b1)
    a1 = loops.relu(z1)
    z2 = loops.linear(a1, w2, b2)
    y_hat = loops.sigmoid(z2)
    loss = loops.binary_cross_entropy(y_hat, y, reduction="sum")
    d_y_hat = loops.binary_cross_entropy_backward(np.array(1.0), y_hat, y, reduction="sum")
    delta2 = loops.sigmoid_backward(d_y_hat, z2)
    d_a1, d_w2, d_b2 = loops.linear_backward(delta2, a1, w2, b2)
    delta1 = loops.relu_backward(d_a1, z1)
    _, d_w1, d_b1 = loops.linear_backward(delta1, x, w1, b1)

    solved = eq.substitute(_assign(eq, {"x": x, "W1": w1, "b1": b1, "W2": w2, "b2": b2, "y": y}))
    expected = {
        "z1": z1,
        "a1": a1,
        "z2": z2,
        "ŷ": y_hat,
        "L": loss,
        "δ2": delta2,
        "δ1": delta1,
    }
    for key, value in expected.items():
        _assert_close(eq, solved, key, value, "the chained loops")
    gradients = {"dW2": d_w2, "db2": d_b2, "da1": d_a1, "dW1": d_w1, "db1": d_b1}
    for prefix, value in gradients.items():
        got = [float(sympy.N(v, 30)) for s, v in solved.items() if s.name.startswith(prefix)]
        np.testing.assert_allclose(got, value.ravel(), rtol=1e-12, atol=1e-14, err_msg=prefix)


@functools.lru_cache(maxsize=16)
def _equations_mlp(inputs: int, hidden: int) -> Equations:
    return mlp(inputs=inputs, hidden=hidden)


def test_symbolic_mlp_delta_recursion_is_printed_simplified() -> None:
    """δ2 simplifies to ŷ − y (the σ' factor cancels) and δ1_j = W2_1j·δ2·1[z1_j > 0].

    Rejects a δ2 left as (ŷ − y)/(ŷ(1 − ŷ))·ŷ(1 − ŷ), or a δ1 without the ReLU indicator.
    """
    eq = _equations_mlp(2, 3)
    s = {name: sympy.Symbol(name) for name in ("ŷ", "y", "δ2")}
    assert eq["δ2"] == s["ŷ"] - s["y"]
    for j in (1, 2, 3):
        z = sympy.Symbol(f"z1_{j}")
        expected = sympy.Piecewise((sympy.Symbol(f"W2_1{j}") * s["δ2"], z > 0), (0, True))
        assert eq[f"δ1_{j}"] == expected
    lines = eq.text().splitlines()
    assert any(line.strip().startswith("δ2 = dŷ·ŷ·(1 − ŷ) = ŷ − y") for line in lines)
    assert any(
        line.strip().startswith("δ1_1 = da1_1·1[z1_1 > 0] = W2_11·δ2·1[z1_1 > 0]") for line in lines
    )


# ----------------------------------------------------------- golden: the worked example


def _section(text: str, title: str) -> list[str]:
    block = text.split(f"\n{title}\n", 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in block.splitlines()]


def _published(equations_: dict[str, list[tuple[str, str]]]) -> list[str]:
    return [
        f"dX{position} = " + " + ".join(f"dZ{a}·K{b}" for a, b in terms)
        for position, terms in equations_.items()
    ]


def test_symbolic_conv2d_golden_3x3_input_2x2_kernel() -> None:
    """The nine printed ∂L/∂X equations are the derivations' nine, term for term and in order.

    Rejects a printed list that differs from the unsigned post's (or corrected Saraswat's).
    """
    printed = _section(
        equations("conv2d", x=(3, 3), weight=(2, 2)).text(), "Gradient with respect to x"
    )
    assert printed == _published(UNSIGNED_POST_GRAD_INPUT)
    assert printed == _published(SARASWAT_GRAD_INPUT)


def test_symbolic_conv2d_saraswat_slips_differ_from_the_printed_equations() -> None:
    """As printed, Saraswat's ∂L/∂X23 has K11 for K12 and ∂L/∂X33 dZ21 for dZ22 (erratum 4).

    The golden difference: exactly those two lines differ, by these terms.
    """
    eq = equations("conv2d", x=(3, 3), weight=(2, 2))
    printed = _section(eq.text(), "Gradient with respect to x")
    theirs = _published(SARASWAT_GRAD_INPUT_AS_PRINTED)
    differ = {(a, b) for a, b in zip(theirs, printed, strict=True) if a != b}
    assert differ == {
        ("dX23 = dZ12·K22 + dZ22·K11", "dX23 = dZ12·K22 + dZ22·K12"),
        ("dX33 = dZ21·K22", "dX33 = dZ22·K22"),
    }
    dz, k = sympy.symbols("dZ21 dZ22"), sympy.symbols("K11 K12 K22")
    # ours minus theirs: the missing and the extra term
    slip_23 = eq["dX23"] - (sympy.Symbol("dZ12") * k[2] + dz[1] * k[0])
    assert sympy.expand(slip_23 - dz[1] * (k[1] - k[0])) == 0
    assert sympy.expand(eq["dX33"] - dz[0] * k[2] - (dz[1] - dz[0]) * k[2]) == 0


# ------------------------------------------------------------ every term names itself


def _terms(expr: sympy.Expr) -> list[sympy.Expr]:
    return [] if expr == 0 else list(sympy.Add.make_args(expr))


def _assert_products(eq: Equations, key: str, first: str, second: str | None) -> None:
    """Each term is coefficient 1 times one ``first`` symbol (times one ``second`` symbol)."""
    for lhs in eq.symbols[key].flat:
        rhs = eq[lhs]
        terms = _terms(rhs)
        assert len(set(terms)) == len(terms)
        for term in terms:
            coefficient, factors = term.as_coeff_mul()
            letters = sorted(re.sub(r"[\d_]", "", str(f)) for f in factors)
            expected = sorted([first] if second is None else [first, second])
            assert coefficient == 1 and all(isinstance(f, sympy.Symbol) for f in factors), (
                f"{lhs} = {rhs}: the term {term} hides a coefficient or a compound factor"
            )
            assert letters == expected, f"{lhs} = {rhs}: the term {term} is not {expected}"


@settings(max_examples=_budget(8))
@given(config=conv2d_configs())
def test_symbolic_conv2d_every_term_names_itself(config: dict[str, Any]) -> None:
    """∂L/∂X terms are dZ·K, ∂L/∂K terms dZ·X, ∂L/∂b terms dZ, Z terms X·K (and b), no doubles.

    Rejects an equation where two contributions merged into 2·dZ·K, or a hidden factor.
    """
    eq = _equations("conv2d", **config)
    _assert_products(eq, "grad_x", "dZ", "K")
    _assert_products(eq, "grad_weight", "dZ", "X")
    if config["bias"]:
        _assert_products(eq, "grad_bias", "dZ", None)
    for lhs in eq.symbols["output"].flat:
        for term in _terms(eq[lhs]):
            if term.is_Symbol:
                assert term.name.startswith("b"), f"{lhs} = {eq[lhs]}"
            else:
                assert term.as_coeff_mul()[0] == 1 and len(term.args) == 2, f"{lhs} = {eq[lhs]}"


@settings(max_examples=_budget(8))
@given(config=linear_configs())
def test_symbolic_linear_every_term_names_itself(config: dict[str, Any]) -> None:
    """∂L/∂X terms are dZ·W, ∂L/∂W terms dZ·X, ∂L/∂b terms dZ."""
    eq = _equations("linear", **config)
    _assert_products(eq, "grad_x", "dZ", "W")
    _assert_products(eq, "grad_weight", "dZ", "X")
    if config["bias"]:
        _assert_products(eq, "grad_bias", "dZ", None)


# ------------------------------------------------------------------------------ LaTeX


def _latex_samples() -> list[Equations]:
    return [
        equations("conv2d", x=(3, 3), weight=(2, 2), bias=True),
        equations("conv2d", x=(1, 2, 3, 3), weight=(2, 2, 2, 2), stride=2, padding=1),
        equations("linear", x=(2, 3), weight=(2, 3), bias=True),
        equations("avg_pool2d", x=(3, 3), kernel_size=2, stride=1, padding=1),
        equations("max_pool2d", x=(3, 3), kernel_size=2, stride=1, seed=0),
        equations("sigmoid", x=(2,)),
        equations("tanh", x=(2,)),
        equations("softmax", x=(3,)),
    ]


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_symbolic_latex_renders_with_pdflatex(tmp_path: Path) -> None:
    """Every printer's LaTeX, including the perceptron's indicators, compiles with amsmath."""
    more = [
        equations("linear", x=(2, 12), weight=(1, 12), bias=True),  # indices X_{1,10}
        equations("relu", x=(2,)),
        mlp(2, 2),
    ]
    blocks = [eq.latex() for eq in [*_latex_samples(), *more]]
    preamble = [r"\documentclass{article}", r"\usepackage{amsmath}", r"\begin{document}"]
    document = "\n".join([*preamble, *blocks, r"\end{document}"])
    (tmp_path / "equations.tex").write_text(document, encoding="utf-8")
    ran = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "equations.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    log = (tmp_path / "equations.log").read_text(encoding="utf-8", errors="replace")
    errors = [line for line in log.splitlines() if line.startswith("!")]
    assert ran.returncode == 0 and not errors, "\n".join(errors) or ran.stdout[-2000:]
    assert (tmp_path / "equations.pdf").stat().st_size > 0


def test_symbolic_latex_parses_back_to_the_same_expressions() -> None:
    """Each LaTeX right-hand side, parsed by SymPy's LaTeX parser, is the equation's expression.

    ``\\frac{\\partial L}{\\partial Z_{11}}`` parses as ``L/Z_{11}``, and ``e^{x}`` as a symbol
    ``e`` to a power: both are mapped back before comparing.
    """
    pytest.importorskip("antlr4")
    from sympy.parsing.latex import parse_latex

    for eq in _latex_samples():
        renamed: dict[sympy.Basic, sympy.Basic] = {}
        for symbol, tex in eq.names.latex.items():
            match = re.fullmatch(r"\\frac\{\\partial L\}\{\\partial (.+)\}", tex)
            if match:
                renamed[symbol] = sympy.Symbol("L") / sympy.Symbol(match.group(1))
            else:
                renamed[symbol] = sympy.Symbol(tex)
        body = eq.latex().split(r"\begin{align}")[1:]
        lines = [line for block in body for line in block.split(r"\end{align}")[0].split("\\\\")]
        rows = [line.strip() for line in lines if line.strip()]
        assert len(rows) == len(eq.equations())
        for row, (lhs, rhs) in zip(rows, eq.equations().items(), strict=True):
            tex_rhs = row.split("&=", 1)[1]
            parsed = parse_latex(tex_rhs).xreplace({sympy.Symbol("e"): sympy.E})
            expected = rhs.xreplace(renamed)
            difference = sympy.expand(parsed - expected)
            assert difference == 0 or sympy.simplify(difference) == 0, (
                f"{eq.title}: {lhs}: {tex_rhs}"
            )


# ------------------------------------------------------------- the command and README


def test_symbolic_command_prints_conv2d_text_latex_and_markdown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``python -m reference_impl.symbolic conv2d --x 3x3 --weight 2x2`` in its three formats."""
    assert main(["conv2d", "--x", "3x3", "--weight", "2x2"]) == 0
    text = capsys.readouterr().out
    assert "  dX23 = dZ12·K22 + dZ22·K12\n" in text
    assert main(["conv2d", "--x", "3x3", "--weight", "2x2", "--latex"]) == 0
    latex = capsys.readouterr().out
    assert r"\begin{align}" in latex and r"K_{12}" in latex
    assert main(["conv2d", "--x", "3x3", "--weight", "2x2", "--markdown"]) == 0
    assert "| `dX23` | `dZ12·K22 + dZ22·K12` |" in capsys.readouterr().out
    assert main(["max_pool2d", "--x", "2x2", "--kernel-size", "2", "--x-values", "1 3; 3 2"]) == 0
    assert "dX12 = dZ\n" in capsys.readouterr().out  # the first of the two 3s
    assert main(["mlp", "--inputs", "1", "--hidden", "1"]) == 0
    assert "δ2 = dŷ·ŷ·(1 − ŷ) = ŷ − y" in capsys.readouterr().out


def test_symbolic_command_reports_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad command line exits with 2 and a message naming the argument."""
    assert main(["conv2d", "--x", "3x3", "--weight", "2x2", "--stride", "0"]) == 2
    assert re.search(r"(?<![\w.])stride(?!\w)", capsys.readouterr().err)
    assert main(["max_pool2d", "--x", "3x3", "--kernel-size", "2"]) == 2
    assert re.search(r"(?<![\w.])x_values(?!\w)", capsys.readouterr().err)


def _readme_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("\n## Print the derivation\n", 1)[1].split("\n## ", 1)[0]


def test_symbolic_conv2d_readme_example_is_the_command_output(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """README's "Print the derivation" shows the command's actual output, text and LaTeX."""
    section = _readme_section()
    text_block = re.findall(r"```text\n(.*?)```", section, flags=re.DOTALL)[0]
    assert main(["conv2d", "--x", "3x3", "--weight", "2x2"]) == 0
    assert text_block == capsys.readouterr().out
    latex_block = re.findall(r"```latex\n(.*?)```", section, flags=re.DOTALL)[0]
    assert main(["conv2d", "--x", "3x3", "--weight", "2x2", "--latex"]) == 0
    latex = capsys.readouterr().out
    assert all(line in latex.splitlines() for line in latex_block.splitlines())


# ------------------------------------------------------------------- bad input, imports

_NAMED = r"(?<![\w.]){}(?!\w)"

BAD_CALLS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("cross_entropy", {"input": (2, 3)}, ValueError, "cross_entropy"),
    ("no_such_formula", {"x": (3,)}, ValueError, "no_such_formula"),
    ("conv2d", {"x": np.zeros((3, 3)), "weight": (2, 2)}, TypeError, "x"),
    ("conv2d", {"x": (3, 3), "weight": (2.0, 2.0)}, TypeError, "weight"),
    ("conv2d", {"x": (3, 3), "weight": (2, 2), "stride": (1, 2, 3)}, TypeError, "stride"),
    ("conv2d", {"x": (3, 3), "weight": (2, 2), "padding": np.zeros(2)}, TypeError, "padding"),
    ("conv2d", {"x": (3, 3), "weight": (1, 1, 2, 2)}, ValueError, "weight"),
    ("conv2d", {"x": (3, 3)}, TypeError, "weight"),
    ("conv2d", {"x": (3, 3), "weight": (2, 2), "kernel": 2}, TypeError, "kernel"),
    ("conv2d", {"x": (17, 17), "weight": (2, 2)}, ValueError, "x"),
    ("conv2d", {"x": (16, 16), "weight": (1, 1), "padding": 1}, ValueError, "output"),
    ("conv2d", {"x": (3, 3), "weight": (2, 2), "seed": 0}, TypeError, "seed"),
    ("max_pool2d", {"x": (3, 3), "kernel_size": 2}, TypeError, "x_values"),
    ("max_pool2d", {"x": (3, 3), "kernel_size": 2, "x_values": [1, 2]}, ValueError, "x_values"),
    ("linear", {"x": (2,), "weight": (3,)}, ValueError, "x"),
    ("softmax", {"x": (3,), "axis": 1}, ValueError, "axis"),
]


@pytest.mark.parametrize(("formula", "arguments", "error", "name"), BAD_CALLS)
def test_symbolic_bad_input_names_the_argument(
    formula: str, arguments: dict[str, Any], error: type[Exception], name: str
) -> None:
    """No symbolic form, a shape for an array or the reverse, too large: the message names it."""
    with pytest.raises(error, match=_NAMED.format(re.escape(name))):
        equations(formula, **arguments)


@pytest.mark.parametrize(
    ("arguments", "error", "name"),
    [({"hidden": 17}, ValueError, "hidden"), ({"inputs": 2.0}, TypeError, "inputs")],
)
def test_symbolic_mlp_bad_input_names_the_argument(
    arguments: dict[str, Any], error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=_NAMED.format(name)):
        mlp(**arguments)


def test_symbolic_elements_are_admitted_only_inside_the_context() -> None:
    """Object arrays pass float_array inside symbolic_elements() only, and hold numbers or SymPy."""
    symbols = np.array([sympy.Symbol("a"), 1.5], dtype=object)
    with pytest.raises(TypeError, match=_NAMED.format("x")):
        float_array("x", symbols)
    with symbolic_elements():
        assert float_array("x", symbols) is symbols
        with pytest.raises(TypeError, match=_NAMED.format("x")):
            float_array("x", np.array(["a"], dtype=object))
    with pytest.raises(TypeError, match=_NAMED.format("x")):
        float_array("x", symbols)
    equations("sigmoid", x=(1,))
    assert sympy.Add(1, 1) == 2  # SymPy evaluates again after a symbolic run
    with pytest.raises(TypeError, match=_NAMED.format("x")):
        loops.sigmoid(symbols)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )


def test_symbolic_import_reference_impl_loads_numpy_only() -> None:
    """``import reference_impl`` (and both namespaces) never imports SymPy."""
    ran = _python(
        "import sys, reference_impl, reference_impl.loops, reference_impl.vectorized\n"
        "assert 'sympy' not in sys.modules, 'sympy was imported'"
    )
    assert ran.returncode == 0, ran.stderr


def test_symbolic_without_sympy_says_how_to_install_it() -> None:
    """Without SymPy, ``import reference_impl.symbolic`` names the extra to install."""
    ran = _python(
        "import sys\nsys.modules['sympy'] = None\n"
        "try:\n    import reference_impl.symbolic\n"
        "except ImportError as error:\n    print(error)\n"
    )
    assert 'pip install "reference-impl[symbolic]"' in ran.stdout, ran.stdout + ran.stderr


@pytest.mark.parametrize(("shape", "affine"), [((2, 1), True), ((2, 2), True), ((3, 1), False)])
def test_symbolic_batch_norm_substitution_equals_loops_and_vectorized(
    shape: tuple[int, ...], affine: bool
) -> None:
    """Rejects printed equations that drift from the loop (a wrong μ, σ², r or dx term)."""
    arguments: dict[str, Any] = {} if affine else {"weight": None, "bias": None}
    eq = _equations("batch_norm", x=shape, **arguments)
    rng = np.random.default_rng(sum(shape))
    channels = shape[1]
    x = rng.integers(-8, 9, size=shape) / 4.0
    dz = rng.integers(-8, 9, size=shape) / 4.0
    w = rng.integers(1, 9, size=channels) / 4.0 if affine else None
    b = rng.integers(-8, 9, size=channels) / 4.0 if affine else None
    eps = 1e-5
    values: dict[Any, Any] = {"ε": eps, **_assign(eq, {"x": x, "grad_output": dz})}
    if affine:
        values.update(_assign(eq, {"weight": w, "bias": b}))
    solved = eq.substitute(values)
    for namespace in NAMESPACES.values():
        out = namespace.batch_norm(x, weight=w, bias=b, training=True, eps=eps)
        grads = namespace.batch_norm_backward(dz, x, weight=w, bias=b, training=True, eps=eps)
        pairs = [("output", out), ("grad_x", grads[0])]
        if affine:
            pairs += [("grad_weight", grads[1]), ("grad_bias", grads[2])]
        for key, numeric in pairs:
            symbols = eq.symbols[key]
            got = np.array([float(solved[s]) for s in symbols.flat]).reshape(symbols.shape)
            np.testing.assert_allclose(got, numeric, rtol=1e-12, atol=1e-12, err_msg=key)


def test_symbolic_batch_norm_n2_dx_is_the_three_term_formula() -> None:
    """Rejects a dx without the mean(dy) or the x̂·mean(dy·x̂) term (or with γ misplaced)."""
    eq = _equations("batch_norm", x=(2, 1))
    gamma, r = eq.symbols["weight"][0], eq.symbols["rstd"][0]
    dz, xhat = eq.symbols["grad_output"][:, 0], eq.symbols["xhat"][:, 0]
    mean_dz = (dz[0] + dz[1]) / 2
    mean_dz_xhat = (dz[0] * xhat[0] + dz[1] * xhat[1]) / 2
    for i in range(2):
        three_terms = gamma * r * (dz[i] - mean_dz - xhat[i] * mean_dz_xhat)
        assert sympy.expand(eq[f"dX{i + 1}1"] - three_terms) == 0
    # and in the inputs: μ, σ², r, x̂ substituted, the same function of X, γ, dZ, ε
    env: dict[sympy.Basic, sympy.Basic] = {}
    for lhs, rhs in eq.forward.items():
        env[lhs] = rhs.xreplace(env)
    x = eq.symbols["x"][:, 0]
    mu = (x[0] + x[1]) / 2
    rstd = 1 / sympy.sqrt(((x[0] - mu) ** 2 + (x[1] - mu) ** 2) / 2 + sympy.Symbol("ε"))
    xh = [(x[i] - mu) * rstd for i in range(2)]
    for i in range(2):
        expected = (
            gamma
            * rstd
            * (dz[i] - (dz[0] + dz[1]) / 2 - xh[i] * (dz[0] * xh[0] + dz[1] * xh[1]) / 2)
        )
        assert sympy.simplify(eq[f"dX{i + 1}1"].xreplace(env) - expected) == 0


def test_symbolic_batch_norm_command_prints_the_statistics_and_dx(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Rejects a command that prints dx unnamed (the sums repeated) or in eval mode."""
    assert main(["batch_norm", "--x", "2x1"]) == 0
    printed = capsys.readouterr().out
    assert "μ = (X11 + X21)/2" in printed
    assert "r = 1/sqrt(σ² + ε)" in printed
    assert "dX11 = r·(dZ11·γ − dZ21·γ − x̂11·(dZ11·γ·x̂11 + dZ21·γ·x̂21))/2" in printed
    assert main(["batch_norm", "--x", "2x1", "--training", "false"]) == 2
    assert "training" in capsys.readouterr().err


@pytest.mark.parametrize(("inputs", "hidden", "bias"), [(1, 1, True), (2, 1, False), (1, 2, True)])
def test_symbolic_lstm_cell_substitution_equals_loops_and_vectorized(
    inputs: int, hidden: int, bias: bool
) -> None:
    """Rejects printed LSTM equations that drift from the loop (a gate, c' or a δ wrong)."""
    eq = _equations("lstm_cell", x=(inputs,), hx=(hidden,), bias=bias)
    rng = np.random.default_rng(10 * inputs + hidden)

    def draw(*shape: int) -> np.ndarray[Any, Any]:
        return rng.integers(-8, 9, size=shape) / 8.0

    x, h, c = draw(inputs), draw(hidden), draw(hidden)
    w_ih, w_hh = draw(4 * hidden, inputs), draw(4 * hidden, hidden)
    b_ih, b_hh = (draw(4 * hidden), draw(4 * hidden)) if bias else (None, None)
    dh, dc = draw(hidden), draw(hidden)
    given: dict[str, Any] = {"x": x, "hx": h, "cx": c, "weight_ih": w_ih, "weight_hh": w_hh}
    if bias:
        given.update({"bias_ih": b_ih, "bias_hh": b_hh})
    solved = eq.substitute(_assign(eq, {**given, "grad_h'": dh, "grad_c'": dc}))
    args = (x, h, c, w_ih, w_hh, b_ih, b_hh)
    for namespace in NAMESPACES.values():
        h_new, c_new = namespace.lstm_cell(*args)
        grads = namespace.lstm_cell_backward((dh, dc), *args)
        pairs = [("h'", h_new), ("c'", c_new)]
        pairs += [(f"grad_{n}", g) for n, g in zip(given, grads, strict=False)]
        for key, numeric in pairs:
            symbols = eq.symbols[key]
            got = np.array([float(solved[s]) for s in symbols.flat]).reshape(symbols.shape)
            np.testing.assert_allclose(got, numeric, rtol=1e-12, atol=1e-13, err_msg=key)


def test_symbolic_lstm_cell_gradients_are_written_with_the_gates() -> None:
    """Rejects a printer that repeats the gates' sums (unnamed) or a wrong cell-state path."""
    eq = _equations("lstm_cell", x=(1,), hx=(1,))
    i, f, g, o, c, c_new, dh, dc = sympy.symbols("i f g o c c' dh' dc'")
    assert eq["c'"] == f * c + i * g
    assert sympy.expand(eq["dc"] - f * (dc + dh * o * (1 - sympy.tanh(c_new) ** 2))) == 0
    assert sympy.expand(eq["dbo"] - dh * sympy.tanh(c_new) * o * (1 - o)) == 0
