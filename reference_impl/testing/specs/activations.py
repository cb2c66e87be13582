"""Specs of the activations: sigmoid, relu, tanh, softmax, log_softmax."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference_impl.testing.registry import Case, ErrorInput, FormulaSpec, Steer
from reference_impl.testing.strategies import GRID, arrays, grad_seeds

#: logits far outside the range where e^x is representable: σ and softmax must not overflow
EXTREME_LOGITS = (1e4, -1e4, 750.0, -750.0, 89.0, -89.0)
#: the values that make each value corner
VALUE_CORNERS = {"extreme logits": EXTREME_LOGITS, "exact zero": (0.0, -0.0)}


def values(draw: st.DrawFn, steer: Steer, corners: tuple[str, ...]) -> st.SearchStrategy[float]:
    """Grid values, mixed with the special values of each value corner the steer allows."""
    specials = [v for corner in corners if steer.allows(corner) for v in VALUE_CORNERS[corner]]
    return st.one_of(GRID, st.sampled_from(specials)) if specials else GRID


def value_corners(x: np.ndarray[Any, Any]) -> set[str]:
    corners = set()
    if x.size and np.max(np.abs(x)) >= 89:
        corners.add("extreme logits")
    if np.any(x == 0):
        corners.add("exact zero")
    if x.ndim and x.shape[0] == 1:
        corners.add("batch of one")
    return corners


def _array(
    draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer, shape: Any, corners: tuple[str, ...]
) -> np.ndarray[Any, Any]:
    x = draw(arrays(dtype, shape, values(draw, steer, corners)), label="x")
    # a required value corner is planted in one drawn position, never left to chance
    for corner in corners:
        if corner in steer.require and x.size:
            flat = x.reshape(-1).copy()
            at = draw(st.integers(0, x.size - 1), label=f"{corner} at")
            flat[at] = draw(st.sampled_from(VALUE_CORNERS[corner]), label=corner)
            x = flat.reshape(x.shape)
    return x


def _shape(draw: st.DrawFn, steer: Steer, min_dims: int) -> tuple[int, ...]:
    """A small shape; "batch of one" (a leading axis of length 1) steered."""
    shape = draw(
        hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=1, max_side=5), label="shape"
    )
    if steer.flag(draw, "batch of one"):
        return (1, *shape[1:])
    if shape and shape[0] == 1:
        return (2, *shape[1:])
    return tuple(shape)


@st.composite
def elementwise_cases(
    draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer, corners: tuple[str, ...]
) -> Case:
    x = _array(draw, dtype, steer, _shape(draw, steer, 0), corners)
    return Case({"x": x}, draw(grad_seeds()), steer.settle(value_corners(x)))


@st.composite
def softmax_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer) -> Case:
    fixed_axis = steer.fixed.get("axis", -1)
    shape = list(_shape(draw, steer, fixed_axis + 1 if fixed_axis >= 0 else -fixed_axis))
    axis = steer.value(draw, "axis", st.integers(-len(shape), len(shape) - 1))
    if steer.flag(draw, "single class"):
        shape[axis] = 1
    elif shape[axis] == 1:
        shape[axis] = 2
    x = _array(draw, dtype, steer, shape, ("extreme logits",))
    corners = value_corners(x) - {"exact zero"}
    if x.shape[axis] == 1:
        corners.add("single class")
    return Case({"x": x, "axis": axis}, draw(grad_seeds()), steer.settle(corners))


def _along_axis(args: Any) -> int:
    return int(args["x"].shape[args["axis"]])


def _elementwise_errors() -> list[ErrorInput]:
    return [
        ErrorInput("x list", {"x": [[1.0, 2.0]]}, TypeError, "x", "numpy"),
        ErrorInput("x int", {"x": np.zeros((2, 3), np.int64)}, TypeError, "x", "dtype"),
    ]


def _elementwise(name: str, corners: tuple[str, ...]) -> FormulaSpec:
    return FormulaSpec(
        name=name,
        cases=partial(elementwise_cases, corners=corners),
        grad_wrt=("x",),
        corners=frozenset({"batch of one", *corners}),
        error_base=lambda: {"x": np.zeros((2, 3))},
        error_inputs=_elementwise_errors(),
    )


def _along(name: str) -> FormulaSpec:
    return FormulaSpec(
        name=name,
        cases=softmax_cases,
        grad_wrt=("x",),
        reduction_length=_along_axis,
        corners=frozenset({"extreme logits", "single class", "batch of one"}),
        error_base=lambda: {"x": np.zeros((2, 3)), "axis": -1},
        error_inputs=[
            *_elementwise_errors(),
            ErrorInput("axis too large", {"axis": 2}, ValueError, "axis"),
            ErrorInput("axis too small", {"axis": -3}, ValueError, "axis"),
            ErrorInput("axis float", {"axis": 0.5}, TypeError, "axis"),
        ],
    )


SPECS = [
    _elementwise("sigmoid", ("extreme logits",)),
    _elementwise("relu", ("exact zero",)),
    _elementwise("tanh", ("extreme logits",)),
    _along("softmax"),
    _along("log_softmax"),
]
