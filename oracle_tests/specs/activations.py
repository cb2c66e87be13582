"""Specs of the activations: sigmoid, relu, tanh, softmax, log_softmax."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from oracle_tests import oracles
from oracle_tests.registry import Case, FormulaSpec
from oracle_tests.strategies import arrays, grad_seeds, grid_or

#: logits far outside the range where e^x is representable: σ and softmax must not overflow
EXTREME_LOGITS = (1e4, -1e4, 750.0, -750.0, 89.0, -89.0)
ELEMENTWISE_SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=5)


def _corners(dtype: np.dtype[Any], x: np.ndarray[Any, Any]) -> set[str]:
    corners = set()
    if dtype == np.float32:
        corners.add("float32")
    if x.size and np.max(np.abs(x)) >= 89:
        corners.add("extreme logits")
    if np.any(x == 0):
        corners.add("exact zero")
    if x.ndim and x.shape[0] == 1:
        corners.add("batch of one")
    return corners


@st.composite
def elementwise_cases(draw: st.DrawFn, dtype: np.dtype[Any], specials: tuple[float, ...]) -> Case:
    shape = draw(ELEMENTWISE_SHAPES, label="shape")
    x = draw(arrays(dtype, shape, grid_or(*specials)), label="x")
    return Case({"x": x}, draw(grad_seeds()), frozenset(_corners(dtype, x)))


@st.composite
def softmax_cases(draw: st.DrawFn, dtype: np.dtype[Any]) -> Case:
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5), label="shape")
    axis = draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    x = draw(arrays(dtype, shape, grid_or(*EXTREME_LOGITS)), label="x")
    corners = _corners(dtype, x)
    if x.shape[axis] == 1:
        corners.add("single class")
    return Case({"x": x, "axis": axis}, draw(grad_seeds()), frozenset(corners))


def _along_axis(args: Any) -> int:
    return int(args["x"].shape[args["axis"]])


def _elementwise(
    name: str, oracle: Any, specials: tuple[float, ...], claims: set[str]
) -> FormulaSpec:
    return FormulaSpec(
        name=name,
        oracle=oracle,
        cases=partial(elementwise_cases, specials=specials),
        grad_wrt=("x",),
        corners=frozenset({"float32", "batch of one", *claims}),
    )


SPECS = [
    _elementwise("sigmoid", oracles.sigmoid, EXTREME_LOGITS, {"extreme logits"}),
    _elementwise("relu", oracles.relu, (0.0, -0.0), {"exact zero"}),
    _elementwise("tanh", oracles.tanh, (20.0, -20.0, 1e4, -1e4), {"extreme logits"}),
    *(
        FormulaSpec(
            name=name,
            oracle=oracle,
            cases=softmax_cases,
            grad_wrt=("x",),
            reduction_length=_along_axis,
            corners=frozenset({"float32", "extreme logits", "single class", "batch of one"}),
        )
        for name, oracle in [("softmax", oracles.softmax), ("log_softmax", oracles.log_softmax)]
    ),
]
