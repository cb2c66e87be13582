"""``equations(formula, **arguments)``: one formula's equations, from its loop implementation."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from math import prod
from typing import Any

import numpy as np
import sympy

from reference_impl import loops
from reference_impl.symbolic._core import (
    Equations,
    Names,
    ObjectArray,
    check_size,
    exact,
    finished,
    outputs_named,
    run,
)

Shape = tuple[int, ...]

#: how many values a seed draws from: single digits read well and tie often
SEED_VALUES = (0, 9)


@dataclass(frozen=True)
class Form:
    """How one formula's arguments become symbols and its results equations.

    ``arrays`` maps each array argument to its letter (in signature order),
    ``gradients`` names the arguments whose gradients the backward returns (in
    its order), ``roles`` orders the factors of a printed product (upstream
    gradient first, as derivations write ``∂L/∂Z11·K11``), ``compares`` says
    whether the loop compares input values (then ``x_values`` or ``seed`` give
    numbers: required for max pooling, optional for ReLU), ``names_outputs``
    whether the backward recomputes forward outputs, then written as ``Z``.
    """

    arrays: dict[str, str]
    gradients: tuple[str, ...]
    roles: tuple[str, ...]
    summary: str
    compares: str = "never"  # "never", "optional" or "required"
    names_outputs: bool = False


FORMS: dict[str, Form] = {
    "conv2d": Form(
        {"x": "X", "weight": "K", "bias": "b"},
        ("x", "weight", "bias"),
        ("dZ", "X", "K", "b"),
        "Z = X ⋆ K, plus b with a bias: torch's conv2d, a cross-correlation",
    ),
    "linear": Form(
        {"x": "X", "weight": "W", "bias": "b"},
        ("x", "weight", "bias"),
        ("dZ", "W", "X", "b"),
        "Z = X Wᵀ, i.e. Z_o = Σ_i W_oi·X_i, plus b_o with a bias",
    ),
    "avg_pool2d": Form({"x": "X"}, ("x",), ("dZ", "X"), "Z = the mean of each window of X"),
    "max_pool2d": Form(
        {"x": "X"},
        ("x",),
        ("dZ", "X"),
        "Z = the maximum of each window of X (ties: the first in row-major order)",
        compares="required",
    ),
    "sigmoid": Form(
        {"x": "X"}, ("x",), ("dZ", "Z", "X"), "Z = σ(X) = 1/(1 + e^(−X))", names_outputs=True
    ),
    "tanh": Form({"x": "X"}, ("x",), ("dZ", "Z", "X"), "Z = tanh(X)", names_outputs=True),
    "relu": Form(
        {"x": "X"}, ("x",), ("dZ", "X"), "Z = max(X, 0), relu'(0) = 0", compares="optional"
    ),
    "softmax": Form(
        {"x": "X"},
        ("x",),
        ("dZ", "Z", "X"),
        "Z_i = e^(X_i) / Σ_j e^(X_j) along axis; the gradient is the Jacobian-vector product",
        names_outputs=True,
    ),
    "batch_norm": Form(
        {"x": "X", "weight": "γ", "bias": "β"},
        ("x", "weight", "bias"),
        ("dZ", "r", "γ", "X", "x̂", "μ", "β"),
        "training mode: Z = γ·(X − μ)·r + β per channel, r = 1/√(σ² + ε); γ and β "
        "are given unless weight/bias is None",
    ),
    "lstm_cell": Form(
        {"x": "x", "hx": "h"},
        ("x", "hx", "cx", "weight_ih", "weight_hh", "bias_ih", "bias_hh"),
        ("dh'", "x", "h"),
        "one LSTM step for one example: --x I --hx H (with both biases unless --bias false)",
    ),
}

#: formulas being built elsewhere; supported here once they exist in the namespaces
PENDING: tuple[str, ...] = ()


def supported() -> tuple[str, ...]:
    """The formulas :func:`equations` prints."""
    return tuple(FORMS)


# --------------------------------------------------------------------------- shapes


def _shape(name: str, value: object) -> Shape:
    """A shape given in place of an array: an int or a tuple of positive ints."""
    if isinstance(value, np.ndarray):
        raise TypeError(
            f"{name} must be a shape such as (3, 3), not an array: the symbols stand for "
            "its elements"
        )
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        value = (int(value),)
    if not isinstance(value, (tuple, list)) or not all(
        isinstance(n, (int, np.integer)) and not isinstance(n, (bool, np.bool_)) for n in value
    ):
        raise TypeError(f"{name} must be a shape (a tuple of ints such as (3, 3)), got {value!r}")
    shape = tuple(int(n) for n in value)
    if any(n < 1 for n in shape):
        raise ValueError(f"{name} must have sizes of at least 1, got {shape}")
    return shape


@dataclass
class Layout:
    """The shapes the loop sees and the shapes the symbols are named by."""

    given: dict[str, Shape]  # as the user gave them (names and gradients use these)
    full: dict[str, Shape]  # as the loop receives them
    squeeze: Callable[[Shape], Shape]  # the output's full shape -> its named shape


def _layout(formula: str, shapes: dict[str, Shape], bias: object) -> Layout:
    given = dict(shapes)
    full = dict(shapes)

    def keep(out: Shape) -> Shape:
        return out

    squeeze = keep
    if formula == "conv2d":
        x, w = shapes["x"], shapes["weight"]
        if len(x) == 2 and len(w) == 2:
            full["x"], full["weight"] = (1, 1, *x), (1, 1, *w)

            def spatial(out: Shape) -> Shape:
                return out[2:]

            squeeze = spatial
        elif len(x) == 2 or len(w) == 2:
            raise ValueError(
                "x and weight must both be 2-D shapes (the shorthand for N = C_in = C_out = 1) "
                f"or both be 4-D, got x {x} and weight {w}"
            )
        channels = full["weight"][0]
    elif formula == "linear":
        w = shapes["weight"]
        if len(w) == 1:
            full["weight"] = (1, *w)

            def single(out: Shape) -> Shape:
                return out[:-1] if len(out) > 1 else out

            squeeze = single
        channels = full["weight"][0]
    elif formula in ("avg_pool2d", "max_pool2d"):
        x = shapes["x"]
        if len(x) == 2:
            full["x"] = (1, 1, *x)

            def spatial(out: Shape) -> Shape:
                return out[2:]

            squeeze = spatial
    if "bias" in FORMS[formula].arrays and bias is not None and bias is not False:
        if bias is True:
            given["bias"] = full["bias"] = (channels,)
        else:
            shape = _shape("bias", bias)
            given["bias"] = shape
            full["bias"] = (1,) if shape == () and channels == 1 else shape
    return Layout(given, full, squeeze)


def _values(x_values: object, seed: object, shape: Shape) -> np.ndarray[Any, Any]:
    if x_values is not None and seed is not None:
        raise TypeError("give x_values or seed, not both")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an int, got {seed!r}")
        low, high = SEED_VALUES
        drawn = np.random.default_rng(int(seed)).integers(low, high + 1, size=shape)
        return drawn.astype(np.float64)
    try:
        values = np.asarray(x_values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"x_values must be numbers, got {x_values!r}") from None
    if values.size != prod(shape):
        raise ValueError(
            f"x_values must hold {prod(shape)} numbers for x of shape {shape}, got {values.size}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError("x_values must be finite")
    return values.reshape(shape)


# ------------------------------------------------------------------------ equations


def equations(formula: str, **arguments: Any) -> Equations:
    """The forward and gradient equations of ``formula``, element by element.

    Arguments are those of the numeric function, with a shape in place of
    each array: ``equations("conv2d", x=(3, 3), weight=(2, 2), stride=1)``.
    For ``conv2d``, 2-D shapes for both ``x`` and ``weight`` are shorthand for
    ``N = C_in = C_out = 1`` (and for the pools, a 2-D ``x`` for ``N = C = 1``);
    for ``linear``, a 1-D ``weight`` is one output unit. ``bias=True`` means a
    bias of the right shape. ``max_pool2d`` (and, optionally, ``relu``) compare
    values: give ``x_values`` (numbers, x's shape or flat) or ``seed``.

    Symbols are 1-based: ``X11`` is ``x[0, 0]``; an array with more than 9
    entries along some axis separates its indices (``X1_10``); every axis of
    the given shape is indexed (``X1211`` is ``x[0, 1, 0, 0]`` for a 4-D x);
    a one-element array is the bare letter (``b``). ``dV`` is ``∂L/∂V``, and
    ``dZ`` (the upstream gradient) is an input.

    The loop implementation (:mod:`reference_impl.loops`) is run on these
    symbols; see :mod:`reference_impl.symbolic._core` for how.
    """
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a name such as 'conv2d', got {formula!r}")
    if formula not in FORMS:
        known = ", ".join(FORMS)
        if formula in loops.__all__:
            raise ValueError(f"formula {formula!r} has no symbolic form here; supported: {known}")
        raise ValueError(f"formula {formula!r} is not a formula of reference_impl; try: {known}")
    if formula == "batch_norm":
        from reference_impl.symbolic._normalization import batch_norm_equations

        return batch_norm_equations(**arguments)
    if formula == "lstm_cell":
        from reference_impl.symbolic._recurrent import lstm_cell_equations

        return lstm_cell_equations(**arguments)
    form = FORMS[formula]
    forward = getattr(loops, formula)
    backward = getattr(loops, f"{formula}_backward")
    parameters = list(inspect.signature(forward).parameters)
    x_values = arguments.pop("x_values", None)
    seed = arguments.pop("seed", None)
    for name in arguments:
        if name not in parameters:
            raise TypeError(
                f"{name} is not an argument of {formula} (its arguments: {', '.join(parameters)})"
            )
    bias = arguments.pop("bias", None) if "bias" in form.arrays else None
    shapes: dict[str, Shape] = {}
    for name in form.arrays:
        if name == "bias":
            continue
        if name not in arguments:
            raise TypeError(f"{formula} needs the shape of {name}, e.g. {name}=(3, 3)")
        shapes[name] = _shape(name, arguments.pop(name))
    hyper = arguments
    layout = _layout(formula, shapes, bias)
    for name, shape in layout.given.items():
        check_size(name, shape)

    values = None
    if form.compares == "never" and (x_values is not None or seed is not None):
        raise TypeError(f"{formula} compares no values: x_values and seed are for max_pool2d, relu")
    if x_values is not None or seed is not None:
        values = _values(x_values, seed, layout.given["x"])
    elif form.compares == "required":
        raise TypeError(
            f"{formula} routes each gradient by comparing values: give x_values (numbers, "
            "x's shape) or seed"
        )

    # The numeric loop on zeros (or the given values) validates every argument with the
    # numeric function's own messages, and gives the output's shape.
    numeric = {
        name: (np.zeros(shape) if name != "x" or values is None else values.reshape(shape))
        for name, shape in layout.full.items()
    }
    out_full = forward(**numeric, **hyper).shape
    out_shape = layout.squeeze(out_full)
    check_size("the output", out_shape)

    roles = {letter: rank for rank, letter in enumerate(form.roles)}
    names = Names()
    arrays: dict[str, ObjectArray] = {}
    for name, letter in form.arrays.items():
        if name in layout.given:
            arrays[name] = names.array(
                letter,
                layout.given[name],
                roles[letter],
                values=values if name == "x" else None,
            )
    z = names.array("Z", out_shape, roles.get("Z", len(roles)))
    dz = names.array("Z", out_shape, roles["dZ"], gradient=True)
    loop_args = {name: arrays[name].reshape(layout.full[name]) for name in arrays}
    raw_out = run(forward, **loop_args, **hyper).reshape(out_shape)
    raw_grads = run(backward, dz.reshape(out_full), **loop_args, **hyper)
    if not isinstance(raw_grads, tuple):
        raw_grads = (raw_grads,)

    forward_eqs = {z[i]: finished(raw_out[i]) for i in np.ndindex(*out_shape)}
    named: dict[sympy.Basic, sympy.Expr] = {}
    if form.names_outputs:
        named = outputs_named(raw_out, z)
    gradient_eqs: dict[sympy.Symbol, sympy.Expr] = {}
    sections: list[tuple[str, tuple[sympy.Symbol, ...]]] = [("Forward", tuple(forward_eqs))]
    gradient_arrays: dict[str, ObjectArray] = {}
    for name, raw in zip(form.gradients, raw_grads, strict=True):
        if raw is None:
            continue
        letter, shape = form.arrays[name], layout.given[name]
        lhs = names.array(letter, shape, roles[letter], gradient=True)
        gradient_arrays[f"grad_{name}"] = lhs
        raw = raw.reshape(shape)
        for i in np.ndindex(*shape):
            gradient_eqs[lhs[i]] = finished(raw[i], named)
        sections.append((f"Gradient with respect to {name}", tuple(lhs.flat)))

    given = ", ".join(f"{name}: {'×'.join(map(str, s))}" for name, s in layout.given.items())
    options = ", ".join(f"{k}={v!r}" for k, v in hyper.items())
    title = f"{formula}({given}{', ' if options else ''}{options})"
    legend = [f"{form.summary}."]
    for name, array in arrays.items():
        legend.append(f"{_span(array)}: {name}{_axes(formula, name, array.ndim)}")
    legend.append(
        f"{_span(z)}: the output{_axes(formula, 'output', z.ndim)}; "
        f"{_span(dz)}: the upstream gradient ∂L/∂Z"
    )
    legend.append("dV stands for ∂L/∂V; indices are 1-based")
    if values is not None:
        legend.append(f"with x = {_numbers(values)} (comparisons use these values)")
    symbol_values: dict[sympy.Symbol, sympy.Rational] = {}
    if values is not None:
        symbol_values = {s: exact(v) for s, v in zip(arrays["x"].flat, values.flat, strict=True)}
    return Equations(
        title=title,
        forward=forward_eqs,
        gradients=gradient_eqs,
        sections=tuple(sections),
        names=names,
        legend=tuple(legend),
        symbols={**arrays, "output": z, "grad_output": dz, **gradient_arrays},
        values=symbol_values,
    )


#: what the indices of a 4-D (or 3-D) array of the window formulas stand for
AXES = {
    ("conv2d", "x"): ("sample", "channel", "row", "column"),
    ("conv2d", "weight"): ("output channel", "input channel", "row", "column"),
    ("conv2d", "output"): ("sample", "channel", "row", "column"),
    ("avg_pool2d", "x"): ("sample", "channel", "row", "column"),
    ("avg_pool2d", "output"): ("sample", "channel", "row", "column"),
    ("max_pool2d", "x"): ("sample", "channel", "row", "column"),
    ("max_pool2d", "output"): ("sample", "channel", "row", "column"),
}


def _axes(formula: str, name: str, ndim: int) -> str:
    """`` (indices: sample, channel, row, column)`` for an array named by more than 2 axes."""
    axes = AXES.get((formula, name))
    if axes is None or ndim <= 2:
        return ""
    return f" (indices: {', '.join(axes[-ndim:])})"


def _span(array: ObjectArray) -> str:
    first, last = array.flat[0], array.flat[-1]
    return str(first) if array.size == 1 else f"{first}…{last}"


def _numbers(values: np.ndarray[Any, Any]) -> str:
    def show(v: Any) -> str:
        if isinstance(v, list):
            return "[" + ", ".join(show(e) for e in v) + "]"
        number = float(v)
        return str(int(number)) if number.is_integer() else repr(number)

    return show(values.tolist())
