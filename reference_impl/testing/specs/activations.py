"""Specs of the activations: sigmoid, relu, tanh, softmax, log_softmax, leaky_relu, elu, gelu,
softplus, silu."""

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


def hyper_parameter(
    draw: st.DrawFn,
    steer: Steer,
    name: str,
    usual: tuple[Any, ...],
    kinds: dict[str, tuple[Any, ...]],
) -> Any:
    """A value of ``name``: from a required corner's ``kinds`` entry, else from every allowed one.

    ``kinds`` maps a corner ("zero slope") to the values that reach it;
    ``usual`` values reach none. A held value is returned as it is.
    """
    required = [kind for kind in kinds if kind in steer.require]
    if required:
        pool = kinds[required[0]]
    else:
        pool = usual + tuple(v for kind, vs in kinds.items() if steer.allows(kind) for v in vs)
    return steer.value(draw, name, st.sampled_from(pool))


#: leaky_relu's negative_slope: the default, and slopes that make each corner
SLOPES = {"zero slope": (0.0,), "negative slope": (-0.25, -1.0), "slope > 1": (2.0, 1.5)}


def slope_corners(slope: float) -> set[str]:
    if slope == 0:
        return {"zero slope"}
    if slope < 0:
        return {"negative slope"}
    return {"slope > 1"} if slope > 1 else set()


@st.composite
def leaky_relu_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer) -> Case:
    x = _array(draw, dtype, steer, _shape(draw, steer, 0), ("exact zero",))
    slope = hyper_parameter(draw, steer, "negative_slope", (0.01, 0.5), SLOPES)
    corners = value_corners(x) | slope_corners(slope)
    return Case({"x": x, "negative_slope": slope}, draw(grad_seeds()), steer.settle(corners))


#: ELU's alpha: 1, and the values that make each corner
ALPHAS = {"alpha ≠ 1": (0.5, 2.0, 1.5), "zero alpha": (0.0,), "negative alpha": (-0.5,)}


def alpha_corners(alpha: float) -> set[str]:
    if alpha == 0:
        return {"zero alpha"}
    if alpha < 0:
        return {"negative alpha"}
    return {"alpha ≠ 1"} if alpha != 1 else set()


@st.composite
def elu_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer) -> Case:
    x = _array(draw, dtype, steer, _shape(draw, steer, 0), ("exact zero", "extreme logits"))
    alpha = hyper_parameter(draw, steer, "alpha", (1.0,), ALPHAS)
    corners = value_corners(x) | alpha_corners(alpha)
    return Case({"x": x, "alpha": alpha}, draw(grad_seeds()), steer.settle(corners))


@st.composite
def gelu_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer) -> Case:
    x = _array(draw, dtype, steer, _shape(draw, steer, 0), ("exact zero", "extreme logits"))
    approximate = hyper_parameter(draw, steer, "approximate", ("none",), {"tanh form": ("tanh",)})
    corners = value_corners(x) | ({"tanh form"} if approximate == "tanh" else set())
    return Case({"x": x, "approximate": approximate}, draw(grad_seeds()), steer.settle(corners))


#: softplus's beta and threshold: the defaults, and values that make each corner. Every
#: threshold / beta is a multiple of 1/16, so βx = threshold is reached exactly.
BETAS = {"beta ≠ 1": (2.0, 0.5, 4.0), "negative beta": (-1.0, -2.0)}
THRESHOLDS = {"small threshold": (1.0, 0.0, 2.0, -1.0)}


@st.composite
def softplus_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer) -> Case:
    """``βx = threshold`` (the log branch, by torch's strict ``>``) planted when steered."""
    x = _array(draw, dtype, steer, _shape(draw, steer, 0), ("exact zero", "extreme logits"))
    beta = hyper_parameter(draw, steer, "beta", (1.0,), BETAS)
    threshold = hyper_parameter(draw, steer, "threshold", (20.0,), THRESHOLDS)
    at = threshold / beta
    if x.size and steer.flag(draw, "βx = threshold"):
        flat = x.reshape(-1).copy()
        flat[draw(st.integers(0, x.size - 1), label="βx = threshold at")] = at
        x = flat.reshape(x.shape)
    corners = value_corners(x)
    z = beta * x.astype(np.float64)
    if np.any(z == threshold):
        corners.add("βx = threshold")
    if np.any(z > threshold):
        corners.add("βx > threshold")
    if beta < 0:
        corners.add("negative beta")
    elif beta != 1:
        corners.add("beta ≠ 1")
    if threshold != 20:
        corners.add("small threshold")
    args = {"x": x, "beta": beta, "threshold": threshold}
    return Case(args, draw(grad_seeds()), steer.settle(corners))


SPECS = [
    _elementwise("sigmoid", ("extreme logits",)),
    _elementwise("relu", ("exact zero",)),
    _elementwise("tanh", ("extreme logits",)),
    _along("softmax"),
    _along("log_softmax"),
    FormulaSpec(
        name="leaky_relu",
        cases=leaky_relu_cases,
        grad_wrt=("x",),
        corners=frozenset({"exact zero", "batch of one", *SLOPES}),
        error_base=lambda: {"x": np.zeros((2, 3)), "negative_slope": 0.01},
        error_inputs=[
            *_elementwise_errors(),
            ErrorInput("slope str", {"negative_slope": "0.1"}, TypeError, "negative_slope"),
            ErrorInput("slope nan", {"negative_slope": float("nan")}, ValueError, "negative_slope"),
            ErrorInput("slope array", {"negative_slope": np.ones(2)}, TypeError, "negative_slope"),
        ],
    ),
    FormulaSpec(
        name="elu",
        cases=elu_cases,
        grad_wrt=("x",),
        corners=frozenset({"exact zero", "extreme logits", "batch of one", *ALPHAS}),
        error_base=lambda: {"x": np.zeros((2, 3)), "alpha": 1.0},
        error_inputs=[
            *_elementwise_errors(),
            ErrorInput("alpha None", {"alpha": None}, TypeError, "alpha"),
            ErrorInput("alpha inf", {"alpha": float("inf")}, ValueError, "alpha"),
        ],
    ),
    FormulaSpec(
        name="gelu",
        cases=gelu_cases,
        grad_wrt=("x",),
        corners=frozenset({"exact zero", "extreme logits", "batch of one", "tanh form"}),
        error_base=lambda: {"x": np.zeros((2, 3)), "approximate": "none"},
        error_inputs=[
            *_elementwise_errors(),
            ErrorInput(
                "unknown approximation", {"approximate": "sigmoid"}, ValueError, "approximate"
            ),
            ErrorInput("approximate True", {"approximate": True}, ValueError, "approximate"),
            ErrorInput("approximate None", {"approximate": None}, ValueError, "approximate"),
        ],
    ),
    FormulaSpec(
        name="softplus",
        cases=softplus_cases,
        grad_wrt=("x",),
        corners=frozenset(
            {
                "exact zero",
                "extreme logits",
                "batch of one",
                "βx = threshold",
                "βx > threshold",
                *BETAS,
                *THRESHOLDS,
            }
        ),
        error_base=lambda: {"x": np.zeros((2, 3)), "beta": 1.0, "threshold": 20.0},
        error_inputs=[
            *_elementwise_errors(),
            ErrorInput("beta zero", {"beta": 0.0}, ValueError, "beta", "nonzero"),
            ErrorInput("beta str", {"beta": "1"}, TypeError, "beta"),
            ErrorInput("beta nan", {"beta": float("nan")}, ValueError, "beta"),
            ErrorInput("threshold inf", {"threshold": float("inf")}, ValueError, "threshold"),
            ErrorInput("threshold None", {"threshold": None}, TypeError, "threshold"),
        ],
    ),
    _elementwise("silu", ("extreme logits", "exact zero")),
]
