"""Specs of the pooling family: ``max_pool2d`` and ``avg_pool2d``.

The strategies build every parameter set valid by construction. Per axis they
draw a kernel size ``k``, a dilation ``d``, a padding ``p ≤ k // 2`` and a
stride, then an input length ``n ≥ max(d, d(k − 1) + 1 − 2p)``. The second
term gives at least one output. The first guarantees that no window lies
wholly in the padding: every window starts before the end of the input (torch's
output-size rule drops any later one), so a window starting at or after 0 has
its first tap inside; a window starting in the leading padding has its taps
``d`` apart with the last at ``−p + (k − 1)d ≥ 0``, so one of them falls in
``[0, d)``, which lies inside the input when ``n ≥ d``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference_impl._validation import int_pair
from reference_impl.testing.registry import Case, ErrorInput, FormulaSpec, Steer
from reference_impl.testing.strategies import GRID, grad_seeds
from reference_impl.window import output_size, pad, window, windows

#: few distinct small integers: most windows hold tied maxima
TIES = st.sampled_from([-2.0, -1.0, 0.0, 1.0])
#: strictly negative values: a zero pad value would beat every entry
NEGATIVE = st.integers(-4 * 16, -1).map(lambda k: k / 16)

#: distinct values (multiples of 1/64 in [−8, 8], exact in float32): no window can tie
DISTINCT = st.integers(-8 * 64, 8 * 64).map(lambda k: k / 64)

COMMON_CORNERS = {
    "overlapping windows",
    "padding",
    "stride > 1",
    "ceil_mode extra window",
    "non-square kernel",
    "non-square stride",
    "default stride",
    "batch of one",
    "3-D input",
}
MAX_CORNERS = frozenset(
    {*COMMON_CORNERS, "ties", "all-negative window at the padding", "dilation > 1", "ceil_mode"}
)
AVG_CORNERS = frozenset({*COMMON_CORNERS, "count_include_pad=False", "divisor_override"})


def _pair(
    draw: st.DrawFn, steer: Steer, pair: tuple[int, int], label: str
) -> int | tuple[int, int]:
    """A held value as given; a square pair as an int or a tuple; a non-square pair as a tuple."""
    if label in steer.fixed and steer.fixed[label] is not None:
        return steer.fixed[label]  # type: ignore[no-any-return]
    if pair[0] == pair[1] and draw(st.booleans(), label=f"{label} as int"):
        return pair[0]
    return pair


def _out_size(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> tuple[int, bool]:
    """Output length, and whether ceil_mode added a window that floor mode would not have."""
    out = output_size(size, k, s, p, p, d, ceil)
    return out, out > output_size(size, k, s, p, p, d, False)


def _axis_stride(draw: st.DrawFn, steer: Steer, extent: int, k: int) -> int:
    """A stride for one axis, steered towards or away from overlapping windows."""
    if "overlapping windows" in steer.require and extent > 1:
        return int(draw(st.integers(1, extent - 1), label="stride"))
    if "overlapping windows" in steer.exclude:
        return int(draw(st.integers(extent, extent + 1), label="stride"))
    return int(draw(st.integers(1, 3), label="stride"))


@st.composite
def _geometry(draw: st.DrawFn, steer: Steer, *, dilation: bool) -> dict[str, Any]:
    """Kernel, stride, padding, dilation, ceil_mode and spatial size, valid by construction.

    Each parameter is held at ``steer.fixed`` or drawn with its corner steered.
    """
    if "kernel_size" in steer.fixed:
        kernel = int_pair("kernel_size", steer.fixed["kernel_size"], 0)
    else:
        kh = draw(st.integers(1, 3), label="kernel height")
        kw = kh
        if steer.flag(draw, "non-square kernel"):
            kw = draw(st.integers(1, 3).filter(lambda k: k != kh), label="kernel width")
        kernel = (kh, kw)
    dil = (1, 1)
    if "dilation" in steer.fixed:
        dil = int_pair("dilation", steer.fixed["dilation"], 0)
    elif dilation and steer.flag(draw, "dilation > 1"):
        dil = draw(st.tuples(st.integers(1, 3), st.integers(2, 3)), label="dilation")
        dil = dil if draw(st.booleans(), label="swap dilation") else (dil[1], dil[0])
    extents = [d * (k - 1) + 1 for k, d in zip(kernel, dil, strict=True)]
    default_stride = "stride" in steer.fixed and steer.fixed["stride"] is None
    if "stride" in steer.fixed:
        stride = kernel if default_stride else int_pair("stride", steer.fixed["stride"], 0)
    elif steer.flag(draw, "default stride"):
        default_stride, stride = True, kernel
    else:
        stride = (
            _axis_stride(draw, steer, extents[0], kernel[0]),
            _axis_stride(draw, steer, extents[1], kernel[1]),
        )
    if "padding" in steer.fixed:
        padding = int_pair("padding", steer.fixed["padding"], 0)
    elif steer.flag(draw, "padding") and max(kernel) > 1:
        padding = draw(
            st.tuples(st.integers(0, kernel[0] // 2), st.integers(0, kernel[1] // 2)).filter(any),
            label="padding",
        )
    else:
        padding = (0, 0)
    ceil = steer.value(draw, "ceil_mode", st.booleans())
    size = tuple(
        draw(st.integers(max(d, e - 2 * p, 1), max(d, e) + 4), label="size")
        for e, p, d in zip(extents, padding, dil, strict=True)
    )
    return {
        "kernel": kernel,
        "stride": stride,
        "default_stride": default_stride,
        "padding": padding,
        "dilation": dil,
        "ceil": ceil,
        "size": size,
    }


def _input(
    draw: st.DrawFn, steer: Steer, dtype: np.dtype[Any], g: dict[str, Any], values: Any
) -> Any:
    channels = draw(st.integers(1, 2), label="channels")
    if steer.flag(draw, "3-D input"):
        shape: tuple[int, ...] = (channels, *g["size"])
    else:
        batch = 1 if steer.flag(draw, "batch of one") else 2
        shape = (batch, channels, *g["size"])
    unique = values is DISTINCT
    return draw(hnp.arrays(dtype, shape, elements=values, unique=unique), label="x")


def has_ties(x: np.ndarray[Any, Any], g: dict[str, Any]) -> bool:
    """Whether some window holds its maximum at two taps (the padding never counts)."""
    (ph, pw), size = g["padding"], x.shape[-2:]
    win = window(size, g["kernel"], g["stride"], g["dilation"], (ph, ph, pw, pw), g["ceil"])
    taps = windows(pad(x, win, fill=-np.inf), win)
    peaks = taps.max(axis=(-2, -1), keepdims=True)
    return bool(np.any((taps == peaks).sum(axis=(-2, -1)) > 1))


def _common_corners(x: Any, g: dict[str, Any]) -> set[str]:
    corners = set()
    kernel, stride, padding, dil = g["kernel"], g["stride"], g["padding"], g["dilation"]
    if x.ndim == 3:
        corners.add("3-D input")
    elif x.shape[0] == 1:
        corners.add("batch of one")
    if any(s < d * (k - 1) + 1 for k, s, d in zip(kernel, stride, dil, strict=True)):
        corners.add("overlapping windows")
    if any(padding):
        corners.add("padding")
    if max(stride) > 1:
        corners.add("stride > 1")
    if max(dil) > 1:
        corners.add("dilation > 1")
    if kernel[0] != kernel[1]:
        corners.add("non-square kernel")
    if stride[0] != stride[1]:
        corners.add("non-square stride")
    if g["default_stride"]:
        corners.add("default stride")
    if g["ceil"]:
        corners.add("ceil_mode")
        extra = [
            _out_size(n, k, s, p, d, True)[1]
            for n, k, s, p, d in zip(g["size"], kernel, stride, padding, dil, strict=True)
        ]
        if any(extra):
            corners.add("ceil_mode extra window")
    return corners


def _hyper(draw: st.DrawFn, steer: Steer, g: dict[str, Any]) -> dict[str, Any]:
    return {
        "kernel_size": _pair(draw, steer, g["kernel"], "kernel_size"),
        "stride": None if g["default_stride"] else _pair(draw, steer, g["stride"], "stride"),
        "padding": _pair(draw, steer, g["padding"], "padding"),
    }


@st.composite
def max_pool2d_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer) -> Case:
    """Small inputs with tied maxima, all-negative values or distinct values; every geometry."""
    g = draw(_geometry(steer, dilation=True))
    if "ties" in steer.require:
        mode = "ties"
    elif "ties" in steer.exclude:
        mode = "distinct"
    elif "all-negative window at the padding" in steer.require:
        mode = "negative"
    else:
        mode = draw(st.sampled_from(["ties", "negative", "grid", "distinct"]), label="values")
    values = {"ties": TIES, "negative": NEGATIVE, "grid": GRID, "distinct": DISTINCT}[mode]
    x = _input(draw, steer, dtype, g, values)
    corners = _common_corners(x, g)
    if has_ties(x, g):
        corners.add("ties")
    if np.all(x < 0) and any(g["padding"]):
        corners.add("all-negative window at the padding")
    args = {**_hyper(draw, steer, g), "dilation": _pair(draw, steer, g["dilation"], "dilation")}
    args = {"x": x, **args, "ceil_mode": g["ceil"]}
    return Case(args, draw(grad_seeds()), steer.settle(corners))


@st.composite
def avg_pool2d_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer) -> Case:
    """Small inputs on the grid; both divisor rules and a divisor override."""
    g = draw(_geometry(steer, dilation=False))
    x = _input(draw, steer, dtype, g, GRID)
    include = steer.value(draw, "count_include_pad", st.just(True))
    if "count_include_pad" not in steer.fixed and steer.flag(draw, "count_include_pad=False"):
        include = False
    override = steer.value(draw, "divisor_override", st.just(None))
    if "divisor_override" not in steer.fixed and steer.flag(draw, "divisor_override"):
        override = draw(st.sampled_from([1, 2, 3, 4, 8, -2]), label="divisor_override")
    corners = _common_corners(x, g)
    if not include:
        corners.add("count_include_pad=False")
    if override is not None:
        corners.add("divisor_override")
    args = {
        "x": x,
        **_hyper(draw, steer, g),
        "ceil_mode": g["ceil"],
        "count_include_pad": include,
        "divisor_override": override,
    }
    return Case(args, draw(grad_seeds()), steer.settle(corners))


def _window_length(args: Any) -> int:
    kh, kw = int_pair("kernel_size", args["kernel_size"], 0)
    return int(kh * kw)


def _x() -> np.ndarray[Any, Any]:
    return np.arange(16.0).reshape(1, 1, 4, 4)


ARRAY_ERRORS = [
    ErrorInput("x 2-D", {"x": np.zeros((4, 4))}, ValueError, "x", "3 or 4 dimensions"),
    ErrorInput("x 5-D", {"x": np.zeros((1, 1, 1, 4, 4))}, ValueError, "x", "3 or 4 dimensions"),
    ErrorInput("x int", {"x": np.zeros((1, 1, 4, 4), np.int64)}, TypeError, "x"),
    ErrorInput("x float16", {"x": np.zeros((1, 1, 4, 4), np.float16)}, TypeError, "x"),
    ErrorInput("x list", {"x": np.zeros((1, 1, 4, 4)).tolist()}, TypeError, "x"),
]
WHOLLY_IN_PADDING = "wholly in the padding"
MAX_ERRORS = [
    *ARRAY_ERRORS,
    ErrorInput("kernel zero", {"kernel_size": 0}, ValueError, "kernel_size"),
    ErrorInput("kernel negative", {"kernel_size": (2, -1)}, ValueError, "kernel_size"),
    ErrorInput("kernel float", {"kernel_size": 2.0}, TypeError, "kernel_size"),
    ErrorInput("kernel triple", {"kernel_size": (1, 2, 3)}, TypeError, "kernel_size"),
    ErrorInput("stride zero", {"stride": 0}, ValueError, "stride"),
    ErrorInput("stride pair zero", {"stride": (1, 0)}, ValueError, "stride"),
    ErrorInput("dilation zero", {"dilation": 0}, ValueError, "dilation"),
    ErrorInput("padding negative", {"padding": -1}, ValueError, "padding"),
    ErrorInput("padding over half kernel", {"padding": 2}, ValueError, "padding"),
    ErrorInput(
        "padding pair over half kernel",
        {"kernel_size": (3, 2), "padding": (1, 2)},
        ValueError,
        "padding",
    ),
    ErrorInput("no output rows", {"kernel_size": 5}, ValueError, "kernel_size", "output height"),
    ErrorInput(
        "no output columns",
        {"kernel_size": (1, 3), "dilation": (1, 2)},
        ValueError,
        "kernel_size",
        "output width",
    ),
    ErrorInput("ceil_mode int", {"ceil_mode": 1}, TypeError, "ceil_mode"),
    # taps at columns −1 and 1 of a one-column input: the window lies in the padding
    ErrorInput(
        "window in the column padding",
        {"x": np.zeros((1, 1, 3, 1)), "kernel_size": (1, 2), "padding": (0, 1), "dilation": (1, 2)},
        ValueError,
        "padding",
        WHOLLY_IN_PADDING,
    ),
    ErrorInput(
        "window in the row padding",
        {"x": np.zeros((1, 1, 1, 3)), "kernel_size": (2, 1), "padding": (1, 0), "dilation": (2, 1)},
        ValueError,
        "padding",
        WHOLLY_IN_PADDING,
    ),
    # taps at rows −1 and 2 of a two-row 3-D input
    ErrorInput(
        "window in the padding, 3-D input",
        {"x": np.zeros((1, 2, 3)), "kernel_size": (2, 1), "padding": (1, 0), "dilation": (3, 1)},
        ValueError,
        "padding",
        WHOLLY_IN_PADDING,
    ),
]
AVG_ERRORS = [
    *ARRAY_ERRORS,
    ErrorInput("kernel zero", {"kernel_size": 0}, ValueError, "kernel_size"),
    ErrorInput("stride negative", {"stride": -1}, ValueError, "stride"),
    ErrorInput("padding negative", {"padding": -1}, ValueError, "padding"),
    ErrorInput("padding over half kernel", {"padding": 2}, ValueError, "padding"),
    ErrorInput("no output rows", {"kernel_size": (5, 1)}, ValueError, "kernel_size"),
    ErrorInput("divisor zero", {"divisor_override": 0}, ValueError, "divisor_override"),
    ErrorInput("divisor float", {"divisor_override": 1.5}, TypeError, "divisor_override"),
    ErrorInput(
        "count_include_pad None", {"count_include_pad": None}, TypeError, "count_include_pad"
    ),
    ErrorInput("ceil_mode str", {"ceil_mode": "yes"}, TypeError, "ceil_mode"),
]

SPECS = [
    FormulaSpec(
        name="max_pool2d",
        cases=max_pool2d_cases,
        grad_wrt=("x",),
        reduction_length=_window_length,
        corners=MAX_CORNERS,
        error_base=lambda: {"x": _x(), "kernel_size": 2},
        error_inputs=MAX_ERRORS,
    ),
    FormulaSpec(
        name="avg_pool2d",
        cases=avg_pool2d_cases,
        grad_wrt=("x",),
        reduction_length=_window_length,
        corners=AVG_CORNERS,
        error_base=lambda: {"x": _x(), "kernel_size": 2},
        error_inputs=AVG_ERRORS,
    ),
]
