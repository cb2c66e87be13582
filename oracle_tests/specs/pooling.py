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

from oracle_tests import oracles
from oracle_tests.registry import Case, FormulaSpec
from oracle_tests.strategies import GRID, arrays, grad_seeds

#: few distinct small integers: most windows hold tied maxima
TIES = st.sampled_from([-2.0, -1.0, 0.0, 1.0])
#: strictly negative values: a zero pad value would beat every entry
NEGATIVE = st.integers(-4 * 16, -1).map(lambda k: k / 16)

MAX_CORNERS = frozenset(
    {
        "ties",
        "overlapping windows",
        "all-negative window at the padding",
        "dilation",
        "ceil_mode",
        "ceil_mode extra window",
        "padding",
        "non-square kernel",
        "non-square stride",
        "default stride",
        "batch of one",
        "3-D input",
        "float32",
    }
)
AVG_CORNERS = frozenset(
    {
        "overlapping windows",
        "padding",
        "ceil_mode extra window",
        "count_include_pad=False",
        "divisor_override",
        "non-square kernel",
        "non-square stride",
        "default stride",
        "batch of one",
        "3-D input",
        "float32",
    }
)


def _pair(draw: st.DrawFn, pair: tuple[int, int], label: str) -> int | tuple[int, int]:
    """A square pair as an int or a tuple; a non-square pair as a tuple."""
    if pair[0] == pair[1] and draw(st.booleans(), label=f"{label} as int"):
        return pair[0]
    return pair


def _out_size(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> tuple[int, bool]:
    """Output length, and whether ceil_mode added a window that floor mode would not have."""
    numerator = size + 2 * p - d * (k - 1) - 1
    out = numerator // s + 1
    if ceil:
        ceiled = -(-numerator // s) + 1
        if (ceiled - 1) * s >= size + p:
            ceiled -= 1
        return ceiled, ceiled > out
    return out, False


@st.composite
def _geometry(draw: st.DrawFn, *, dilation: bool) -> dict[str, Any]:
    """Kernel, stride, padding, dilation, ceil_mode and spatial size, valid by construction."""
    kh = draw(st.integers(1, 3), label="kernel height")
    kw = draw(st.one_of(st.just(kh), st.integers(1, 3)), label="kernel width")
    kernel = (kh, kw)
    dil = (1, 1)
    if dilation:
        dil = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)), label="dilation")
    default_stride = draw(st.booleans(), label="default stride")
    stride = kernel
    if not default_stride:
        stride = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)), label="stride")
    padding = draw(st.tuples(st.integers(0, kh // 2), st.integers(0, kw // 2)), label="padding")
    ceil = draw(st.booleans(), label="ceil_mode")
    size = tuple(
        draw(st.integers(max(d, d * (k - 1) + 1 - 2 * p, 1), max(d, d * (k - 1) + 1) + 4))
        for k, p, d in zip(kernel, padding, dil, strict=True)
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


def _input(draw: st.DrawFn, dtype: np.dtype[Any], size: tuple[int, ...], values: Any) -> Any:
    batched = draw(st.booleans(), label="batched")
    channels = draw(st.integers(1, 2), label="channels")
    shape = (channels, *size)
    if batched:
        shape = (draw(st.integers(1, 2), label="batch"), *shape)
    return draw(arrays(dtype, shape, values), label="x")


def _common_corners(dtype: np.dtype[Any], x: Any, g: dict[str, Any]) -> set[str]:
    corners = set()
    kernel, stride, padding, dil = g["kernel"], g["stride"], g["padding"], g["dilation"]
    if dtype == np.float32:
        corners.add("float32")
    if x.ndim == 3:
        corners.add("3-D input")
    elif x.shape[0] == 1:
        corners.add("batch of one")
    if any(s < d * (k - 1) + 1 for k, s, d in zip(kernel, stride, dil, strict=True)):
        corners.add("overlapping windows")
    if any(padding):
        corners.add("padding")
    if max(dil) > 1:
        corners.add("dilation")
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


@st.composite
def max_pool2d_cases(draw: st.DrawFn, dtype: np.dtype[Any]) -> Case:
    """Small inputs with many ties or all-negative values, overlapping and dilated windows."""
    g = draw(_geometry(dilation=True))
    values = draw(st.sampled_from(["ties", "negative", "grid"]), label="values")
    x = _input(draw, dtype, g["size"], {"ties": TIES, "negative": NEGATIVE, "grid": GRID}[values])
    corners = _common_corners(dtype, x, g)
    if values == "ties":
        corners.add("ties")
    if values == "negative" and any(g["padding"]):
        corners.add("all-negative window at the padding")
    args = {
        "x": x,
        "kernel_size": _pair(draw, g["kernel"], "kernel_size"),
        "stride": None if g["default_stride"] else _pair(draw, g["stride"], "stride"),
        "padding": _pair(draw, g["padding"], "padding"),
        "dilation": _pair(draw, g["dilation"], "dilation"),
        "ceil_mode": g["ceil"],
    }
    return Case(args, draw(grad_seeds()), frozenset(corners))


@st.composite
def avg_pool2d_cases(draw: st.DrawFn, dtype: np.dtype[Any]) -> Case:
    """Small inputs on the grid; both divisor rules and a divisor override."""
    g = draw(_geometry(dilation=False))
    x = _input(draw, dtype, g["size"], GRID)
    include = draw(st.booleans(), label="count_include_pad")
    override = draw(st.none() | st.sampled_from([1, 2, 3, 4, 8, -2]), label="divisor_override")
    corners = _common_corners(dtype, x, g)
    if not include:
        corners.add("count_include_pad=False")
    if override is not None:
        corners.add("divisor_override")
    args = {
        "x": x,
        "kernel_size": _pair(draw, g["kernel"], "kernel_size"),
        "stride": None if g["default_stride"] else _pair(draw, g["stride"], "stride"),
        "padding": _pair(draw, g["padding"], "padding"),
        "ceil_mode": g["ceil"],
        "count_include_pad": include,
        "divisor_override": override,
    }
    return Case(args, draw(grad_seeds()), frozenset(corners))


def _window_length(args: Any) -> int:
    kernel = args["kernel_size"]
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    return int(kh * kw)


SPECS = [
    FormulaSpec(
        name="max_pool2d",
        oracle=oracles.max_pool2d,
        cases=max_pool2d_cases,
        grad_wrt=("x",),
        reduction_length=_window_length,
        corners=MAX_CORNERS,
    ),
    FormulaSpec(
        name="avg_pool2d",
        oracle=oracles.avg_pool2d,
        cases=avg_pool2d_cases,
        grad_wrt=("x",),
        reduction_length=_window_length,
        corners=AVG_CORNERS,
    ),
]
