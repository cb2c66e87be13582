"""The δ recursion of a two-layer perceptron, chained from the loop formulas on symbols.

The network, for one example ``x`` with a binary target ``y``::

    z1 = W1 x + b1        (linear)          a1 = relu(z1)       (relu)
    z2 = W2 a1 + b2       (linear)          ŷ = σ(z2)           (sigmoid)
    L = −[y log ŷ + (1 − y) log(1 − ŷ)]     (binary_cross_entropy, reduction="sum")

Each layer's loop runs on symbols for its own inputs (``z1_1``, ``a1_1``, ...),
and each backward loop on a symbol for its upstream gradient (``dŷ``, ``δ2``,
``da1_1``), as a derivation names them. Substituting the upstream gradient's
own equation then gives the chain rule's product, which SymPy cancels::

    dŷ = (ŷ − y)/(ŷ·(1 − ŷ))                          binary_cross_entropy_backward
    δ2 = dŷ·ŷ·(1 − ŷ) = ŷ − y                         sigmoid_backward
    da1_j = W2_1j·δ2                                  linear_backward (Wᵀδ)
    δ1_j = da1_j·1[z1_j > 0] = W2_1j·δ2·1[z1_j > 0]   relu_backward

that is ``δ1 = W2ᵀδ2 ⊙ 1[z1 > 0]``. The symbols stand for values inside the
range where torch's numerical clamps in binary cross-entropy do not act
(``0 < ŷ < 1``), see :mod:`reference_impl._scalars`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy

from reference_impl import loops
from reference_impl.symbolic._core import (
    Equations,
    Names,
    ObjectArray,
    finished,
    outputs_named,
    run,
)

#: the roles of the symbols, in the order they are written in a product
ROLES = ("W2", "W1", "δ2", "δ1", "dŷ", "da1", "a1", "x", "ŷ", "y", "z1", "z2", "b")
#: the widest layer printed: the hidden layer's weights already give 16 × 16 equations
MAX_UNITS = 16


def _units(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not 1 <= int(value) <= MAX_UNITS:
        raise ValueError(
            f"{name} must be between 1 and {MAX_UNITS}, got {value!r}: each weight gets its "
            "own gradient equation, and the list is for reading"
        )
    return int(value)


def mlp(inputs: int = 2, hidden: int = 2) -> Equations:
    """Forward equations and the δ recursion of a two-layer perceptron with one output."""
    n, h = _units("inputs", inputs), _units("hidden", hidden)
    names = Names()
    role = {r: i for i, r in enumerate(ROLES)}

    def array(letter: str, shape: tuple[int, ...], kind: str, latex: str, **kw: Any) -> ObjectArray:
        return names.array(letter, shape, role[kind], latex=latex, **kw)

    x = array("x", (n,), "x", "x")
    w1 = array("W1_", (h, n), "W1", "W^{(1)}")
    b1 = array("b1_", (h,), "b", "b^{(1)}")
    z1 = array("z1_", (h,), "z1", "z^{(1)}")
    a1 = array("a1_", (h,), "a1", "a^{(1)}")
    w2 = array("W2_", (1, h), "W2", "W^{(2)}")
    b2 = array("b2_", (1,), "b", "b^{(2)}")
    z2 = array("z2_", (1,), "z2", "z^{(2)}")
    y_hat = array("ŷ", (1,), "ŷ", r"\hat{y}")
    y = array("y", (1,), "y", "y")
    loss = array("L", (), "y", "L")
    d_y_hat = array("ŷ", (1,), "dŷ", r"\hat{y}", gradient=True)
    delta2 = array("δ2_", (1,), "δ2", r"\delta^{(2)}")
    d_w2 = array("W2_", (1, h), "W2", "W^{(2)}", gradient=True)
    d_b2 = array("b2_", (1,), "b", "b^{(2)}", gradient=True)
    d_a1 = array("a1_", (h,), "da1", "a^{(1)}", gradient=True)
    delta1 = array("δ1_", (h,), "δ1", r"\delta^{(1)}")
    d_w1 = array("W1_", (h, n), "W1", "W^{(1)}", gradient=True)
    d_b1 = array("b1_", (h,), "b", "b^{(1)}", gradient=True)

    forward: dict[sympy.Symbol, sympy.Expr] = {}
    gradients: dict[sympy.Symbol, sympy.Expr] = {}
    steps: dict[sympy.Symbol, tuple[sympy.Expr, ...]] = {}
    notes: dict[sympy.Symbol, str] = {}

    def record(
        table: dict[sympy.Symbol, sympy.Expr],
        lhs: ObjectArray,
        raw: Any,
        note: str,
        named: dict[sympy.Basic, sympy.Expr] | None = None,
        upstream: dict[sympy.Basic, sympy.Expr] | None = None,
    ) -> None:
        """Equations ``lhs = raw``; with ``upstream``, the chain form, then substituted."""
        raw = np.asarray(raw, dtype=object).reshape(lhs.shape)
        for index in np.ndindex(*lhs.shape):
            symbol = lhs[index]
            rhs = finished(raw[index], named)
            if upstream:
                steps[symbol] = (rhs,)
                rhs = rhs.xreplace(upstream)
            table[symbol] = rhs
            notes[symbol] = note

    # forward, one loop formula per layer
    record(forward, z1, run(loops.linear, x, w1, b1), "linear")
    record(forward, a1, run(loops.relu, z1), "relu")
    record(forward, z2, run(loops.linear, a1, w2, b2), "linear")
    raw_y_hat = run(loops.sigmoid, z2)
    record(forward, y_hat, raw_y_hat, "sigmoid")
    bce = run(loops.binary_cross_entropy, y_hat, y, reduction="sum")
    record(forward, loss, bce, "binary_cross_entropy")

    # backward: each loop takes the symbol of its upstream gradient
    one = np.array(1.0, dtype=object)  # ∂L/∂L
    record(
        gradients,
        d_y_hat,
        run(loops.binary_cross_entropy_backward, one, y_hat, y, reduction="sum"),
        "binary_cross_entropy_backward",
    )
    record(
        gradients,
        delta2,
        run(loops.sigmoid_backward, d_y_hat, z2),
        "sigmoid_backward",
        named=outputs_named(np.asarray(raw_y_hat), y_hat),
        upstream={d_y_hat[0]: gradients[d_y_hat[0]]},
    )
    grad_a1, grad_w2, grad_b2 = run(loops.linear_backward, delta2, a1, w2, b2)
    record(gradients, d_w2, grad_w2, "linear_backward")
    record(gradients, d_b2, grad_b2, "linear_backward")
    record(gradients, d_a1, grad_a1, "linear_backward")
    record(
        gradients,
        delta1,
        run(loops.relu_backward, d_a1, z1),
        "relu_backward",
        upstream={d_a1[j]: gradients[d_a1[j]] for j in range(h)},
    )
    _, grad_w1, grad_b1 = run(loops.linear_backward, delta1, x, w1, b1)
    record(gradients, d_w1, grad_w1, "linear_backward")
    record(gradients, d_b1, grad_b1, "linear_backward")

    def keys(*arrays: ObjectArray) -> tuple[sympy.Symbol, ...]:
        return tuple(s for a in arrays for s in a.flat)

    return Equations(
        title=(
            f"Two-layer perceptron: {n} input{'s' * (n > 1)}, {h} hidden ReLU unit"
            f"{'s' * (h > 1)}, one sigmoid output, binary cross-entropy, one example"
        ),
        forward=forward,
        gradients=gradients,
        sections=(
            ("Forward", keys(z1, a1, z2, y_hat, loss)),
            ("Backward: the output layer (δ2 = ∂L/∂z2)", keys(d_y_hat, delta2, d_w2, d_b2)),
            ("Backward: the hidden layer (δ1_j = ∂L/∂z1_j)", keys(d_a1, delta1, d_w1, d_b1)),
        ),
        names=names,
        legend=(
            "z1 = W1·x + b1, a1 = relu(z1), z2 = W2·a1 + b2, ŷ = σ(z2), "
            "L = binary_cross_entropy(ŷ, y)",
            "each line runs the loop formula in brackets (reference_impl.loops) on symbols; "
            "a backward loop takes its upstream gradient as a symbol, then that symbol's "
            "equation is substituted",
            "dV stands for ∂L/∂V; 0 < ŷ < 1, where torch's clamps in the loss do not act",
            "element by element: δ2 = ŷ − y and δ1 = W2ᵀδ2 ⊙ 1[z1 > 0]",
        ),
        symbols={
            "x": x,
            "W1": w1,
            "b1": b1,
            "W2": w2,
            "b2": b2,
            "y": y,
            "z1": z1,
            "a1": a1,
            "z2": z2,
            "ŷ": y_hat,
            "L": loss,
            "δ2": delta2,
            "δ1": delta1,
        },
        steps=steps,
        notes=notes,
    )
