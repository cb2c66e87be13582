"""One LSTM step, printed from its loop code on symbols.

The loops (:func:`reference_impl.loops.lstm_cell` and its backward) compute,
for each hidden unit j, the four pre-activations ``a = W_ih x + b_ih + W_hh h
+ b_hh`` (torch's gate rows i, f, g, o), the gates ``i = σ(a_i)``, ``f =
σ(a_f)``, ``g = tanh(a_g)``, ``o = σ(a_o)``, then ``c' = f·c + i·g`` and ``h'
= o·tanh(c')``. Written out in the inputs every gradient would repeat the
gates many times over; as a derivation does, the loop's own expression trees
for the pre-activations, the gates and ``c'`` are replaced by their symbols,
which are listed first as equations of their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy

from reference_impl import loops
from reference_impl.recurrent import LOOPS, _affine, _cell_problem
from reference_impl.symbolic._core import (
    Equations,
    Names,
    ObjectArray,
    check_size,
    finished,
    index_label,
    run,
)

GATES = "ifgo"
#: the order of the factors in a printed product
ROLES = ("dh'", "dc'", "o", "i", "f", "g", "c'", "h'", "W", "U", "x", "h", "c", "a", "b")


def _pre_activation(p: Any, x_row: list[Any], h_row: list[Any], r: int) -> Any:
    """Row ``r``'s pre-activation, built as the forward loop builds it."""
    return _affine(p.weight_ih, p.bias_ih, x_row, r) + _affine(p.weight_hh, p.bias_hh, h_row, r)


def lstm_cell_equations(**arguments: Any) -> Equations:
    """``lstm_cell`` for one example: ``x`` a shape (I,), ``hx`` a shape (H,)."""
    from reference_impl.symbolic._formulas import _shape

    for name in ("x", "hx"):
        if name not in arguments:
            raise TypeError(f"lstm_cell needs the shape of {name}, e.g. {name}=(1,)")
    x_shape, h_shape = _shape("x", arguments.pop("x")), _shape("hx", arguments.pop("hx"))
    if len(x_shape) != 1 or len(h_shape) != 1:
        raise ValueError(
            f"x and hx must be 1-D shapes (I,) and (H,) (one example), got {x_shape} and {h_shape}"
        )
    bias = arguments.pop("bias", True)
    for name in arguments:
        raise TypeError(f"{name} is not an argument of the symbolic lstm_cell (x, hx, bias)")
    (inputs,), (hidden,) = x_shape, h_shape
    for name, shape in (
        ("x", x_shape),
        ("weight_ih", (4 * hidden, inputs)),
        ("weight_hh", (4 * hidden, hidden)),
    ):
        check_size(name, shape)

    names = Names()
    role = {r: k for k, r in enumerate(ROLES)}

    def symbol(name: str, latex: str, kind: str, index: tuple[int, ...]) -> sympy.Symbol:
        s = sympy.Symbol(name)
        names.latex[s] = latex
        names.rank[s] = (role[kind], *index)
        return s

    def vector(letter: str, latex: str, kind: str, size: int, **kw: Any) -> ObjectArray:
        return names.array(letter, (size,), role[kind], latex=latex, **kw)

    x = vector("x", "x", "x", inputs)
    h = vector("h", "h", "h", hidden)
    c = vector("c", "c", "c", hidden)

    def gate_matrix(letter: str, columns: int, kind: str) -> ObjectArray:
        array = np.empty((4 * hidden, columns), dtype=object)
        for k, q in enumerate(GATES):
            for j in range(hidden):
                for m in range(columns):
                    label = index_label((j, m), (hidden, columns))
                    array[k * hidden + j, m] = symbol(
                        f"{letter}{q}{label}",
                        f"{letter}_{{{q}{label}}}",
                        kind,
                        (k, j, m),
                    )
        return array

    def gate_vector(letter: str, latex: str, kind: str, gradient: bool = False) -> ObjectArray:
        array = np.empty(4 * hidden, dtype=object)
        for k, q in enumerate(GATES):
            for j in range(hidden):
                label = index_label((j,), (hidden,))
                name = f"{letter}{q}{label}"
                tex = f"{latex}_{{{q}{label}}}"
                if gradient:
                    name, tex = "d" + name, rf"\frac{{\partial L}}{{\partial {tex}}}"
                array[k * hidden + j] = symbol(name, tex, kind, (k, j))
        return array

    w_ih, w_hh = gate_matrix("W", inputs, "W"), gate_matrix("U", hidden, "U")
    b_ih = gate_vector("b", "b", "b") if bias else None
    b_hh = gate_vector("c_b", "c^b", "b") if bias else None
    if b_hh is not None:  # torch's two biases: b (with W) and bʰ (with U)
        for k, q in enumerate(GATES):
            for j in range(hidden):
                label = index_label((j,), (hidden,))
                b_hh[k * hidden + j] = symbol(f"bh{q}{label}", f"b^h_{{{q}{label}}}", "b", (k, j))
    pre = gate_vector("a", "a", "a")
    gate_symbols = {q: vector(q, q, q, hidden) for q in GATES}
    c_new = vector("c'", "c'", "c'", hidden)
    h_new = vector("h'", "h'", "h'", hidden)
    dh_new = vector("h'", "h'", "dh'", hidden, gradient=True)
    dc_new = vector("c'", "c'", "dc'", hidden, gradient=True)

    args = (x, h, c, w_ih, w_hh, b_ih, b_hh)
    raw_h, raw_c = run(loops.lstm_cell, *args)
    raw_grads = run(loops.lstm_cell_backward, (dh_new, dc_new), *args)

    # the loop's own trees: pre-activations, gates and c', each mapped to its symbol
    problem, _ = run(_cell_problem, "lstm", x, {"hx": h, "cx": c}, w_ih, w_hh, b_ih, b_hh)
    cache = run(LOOPS["lstm"].forward, problem)
    p = problem.params
    named: dict[sympy.Basic, sympy.Expr] = {}
    defined: dict[sympy.Symbol, sympy.Basic] = {}
    x_row, h_row = list(problem.xs[0, 0]), list(problem.states[0][0])
    for j in range(hidden):
        for k, q in enumerate(GATES):
            r = k * hidden + j
            a_tree = run(_pre_activation, p, x_row, h_row, r)
            gate_tree = cache["gates"][0, 0, r]
            defined[pre[r]] = a_tree
            defined[gate_symbols[q][j]] = gate_tree.xreplace({a_tree: pre[r]})
            named[a_tree] = pre[r]
            named[gate_tree] = gate_symbols[q][j]
            with sympy.evaluate(False):
                named[-gate_tree] = -gate_symbols[q][j]
        c_tree = cache["cs"][1, 0, j]
        defined[c_new[j]] = c_tree
        named[c_tree] = c_new[j]

    def equation(value: Any, skip: sympy.Basic | None = None) -> sympy.Expr:
        table = {k: v for k, v in named.items() if skip is None or k != skip}
        return finished(sympy.sympify(value).xreplace(table))

    forward: dict[sympy.Symbol, sympy.Expr] = {}
    for r in range(4 * hidden):
        forward[pre[r]] = finished(defined[pre[r]])  # in the inputs, nothing named
    for q in GATES:
        for j in range(hidden):
            forward[gate_symbols[q][j]] = equation(defined[gate_symbols[q][j]])
    for j in range(hidden):  # c' would name itself: its own tree is left out here
        forward[c_new[j]] = equation(raw_c[j], skip=cache["cs"][1, 0, j])
    for j in range(hidden):
        forward[h_new[j]] = equation(raw_h[j])

    gradients: dict[sympy.Symbol, sympy.Expr] = {}
    sections: list[tuple[str, tuple[sympy.Symbol, ...]]] = [
        ("Gates", (*pre.flat, *(s for q in GATES for s in gate_symbols[q].flat))),
        ("Forward", (*c_new.flat, *h_new.flat)),
    ]
    symbols: dict[str, ObjectArray] = {
        "x": x,
        "hx": h,
        "cx": c,
        "weight_ih": w_ih,
        "weight_hh": w_hh,
        "h'": h_new,
        "c'": c_new,
        "grad_h'": dh_new,
        "grad_c'": dc_new,
    }
    if b_ih is not None and b_hh is not None:
        symbols.update({"bias_ih": b_ih, "bias_hh": b_hh})
    order = ("x", "hx", "cx", "weight_ih", "weight_hh", "bias_ih", "bias_hh")
    for name, raw in zip(order, raw_grads, strict=True):
        if raw is None:
            continue
        array = symbols[name]
        lhs = np.empty(array.shape, dtype=object)
        for i in np.ndindex(*array.shape):
            base = array[i]
            lhs[i] = symbol(
                f"d{base.name}",
                rf"\frac{{\partial L}}{{\partial {names.latex[base]}}}",
                "dh'",
                (*names.rank[base],),
            )
            gradients[lhs[i]] = equation(raw[i])
        sections.append((f"Gradient with respect to {name}", tuple(lhs.flat)))
        symbols[f"grad_{name}"] = lhs

    return Equations(
        title=f"lstm_cell(x: {inputs}, hx: {hidden}, cx: {hidden}, bias={bool(bias)})",
        forward=forward,
        gradients=gradients,
        sections=tuple(sections),
        names=names,
        legend=(
            "one LSTM step, torch's gate rows i, f, g, o: a = W·x + b + U·h + bh per gate, "
            "i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o), c' = f·c + i·g, "
            "h' = o·tanh(c')",
            "W: weight_ih, U: weight_hh, b: bias_ih, bh: bias_hh; h, c: hx, cx",
            "dh', dc': the upstream gradients ∂L/∂h', ∂L/∂c'; dV stands for ∂L/∂V",
        ),
        symbols=symbols,
    )
