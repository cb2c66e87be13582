"""Spec of the convolution family: ``conv2d``.

Every parameter is drawn so that the call is valid by construction: the
padding form first (``"same"`` fixes the stride to 1), then the kernel,
dilation and padding, and last the input size, from the smallest size the
dilated kernel fits in upward. Nothing is filtered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from hypothesis import strategies as st

from oracle_tests import oracles
from oracle_tests.registry import Case, FormulaSpec
from oracle_tests.strategies import arrays, grad_seeds

PADDING_FORMS = ("int", "pair", "four-sided", "valid", "same")
#: every way of asking for no padding, with its form
_NO_PADDING = (("valid", "valid"), ("int", 0), ("pair", (0, 0)), ("four-sided", (0, 0, 0, 0)))


def _same_padding(kernel: int, dilation: int) -> tuple[int, int]:
    """torch's ``"same"``: total ``d·(k − 1)``, the odd extra after the input."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def padding_sides(
    padding: Any, kernel: tuple[int, int], dilation: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Any accepted ``padding`` as ``(top, bottom, left, right)``."""
    if padding == "same":
        return (*_same_padding(kernel[0], dilation[0]), *_same_padding(kernel[1], dilation[1]))
    if padding == "valid":
        return (0, 0, 0, 0)
    if isinstance(padding, int):
        return (padding,) * 4
    if len(padding) == 2:
        return (padding[0], padding[0], padding[1], padding[1])
    return tuple(padding)


@st.composite
def conv2d_cases(draw: st.DrawFn, dtype: np.dtype[Any]) -> Case:
    """Small convolutions reaching every padding form, groups, strides and dilations."""
    groups = draw(st.sampled_from([1, 1, 2, 3]), label="groups")
    c_in_group = draw(st.integers(1, 2), label="C_in / groups")
    c_out_group = draw(st.integers(1, 2), label="C_out / groups")
    n = draw(st.integers(1, 2), label="N")
    worked_example = draw(st.integers(0, 5), label="worked-example geometry") == 0
    padding: Any
    if worked_example:
        # The published hand-derived case: 3×3 input, 2×2 kernel, stride 1, no padding.
        kh = kw = 2
        stride, dilation = (1, 1), (1, 1)
        form, padding = draw(st.sampled_from(_NO_PADDING), label="padding")
        h = w = 3
    else:
        kh = draw(st.integers(1, 3), label="kh")
        kw = draw(st.integers(1, 3), label="kw")
        dilation = (draw(st.integers(1, 2), label="d_h"), draw(st.integers(1, 2), label="d_w"))
        form = draw(st.sampled_from(PADDING_FORMS), label="padding form")
        if form == "same":
            stride = (1, 1)
        else:
            stride = (draw(st.integers(1, 4), label="s_h"), draw(st.integers(1, 4), label="s_w"))
        if form in ("same", "valid"):
            padding = form
        elif form == "int":
            padding = draw(st.integers(0, 2), label="padding")
        elif form == "pair":
            padding = (draw(st.integers(0, 2), label="p_h"), draw(st.integers(0, 2), label="p_w"))
        else:
            padding = tuple(
                draw(st.integers(0, 2), label=side) for side in ("top", "bottom", "left", "right")
            )
        sides = padding_sides(padding, (kh, kw), dilation)
        # The smallest input the dilated kernel fits in once padded, then a little more.
        extent = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
        h = max(1, extent[0] - sides[0] - sides[1]) + draw(st.integers(0, 3), label="extra rows")
        w = max(1, extent[1] - sides[2] - sides[3]) + draw(st.integers(0, 3), label="extra cols")
    sides = padding_sides(padding, (kh, kw), dilation)
    extent = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)

    c_in, c_out = groups * c_in_group, groups * c_out_group
    x = draw(arrays(dtype, (n, c_in, h, w)), label="x")
    weight = draw(arrays(dtype, (c_out, c_in_group, kh, kw)), label="weight")
    bias = draw(st.none() | arrays(dtype, (c_out,)), label="bias")

    corners = {f"padding {form}", "no bias" if bias is None else "bias"}
    if worked_example:
        corners.add("seeds' 3x3 input, 2x2 kernel")
    corners.add("batch of one" if n == 1 else "batch")
    if groups > 1:
        corners.add("groups")
    if h != w:
        corners.add("H != W")
    if kh != kw:
        corners.add("kh != kw")
    if kh == kw == 1:
        corners.add("1x1 kernel")
    if kh % 2 == 0 or kw % 2 == 0:
        corners.add("even kernel" if form != "same" else "same with even kernel")
    if stride[0] != stride[1]:
        corners.add("unequal strides")
    if dilation[0] != dilation[1]:
        corners.add("unequal dilations")
    if max(stride) > 1 and max(dilation) > 1:
        corners.add("stride and dilation")
    if stride[0] > kh or stride[1] > kw:
        corners.add("stride larger than kernel")
    padded = (h + sides[0] + sides[1], w + sides[2] + sides[3])
    if padded[0] == extent[0] or padded[1] == extent[1]:
        corners.add("kernel as large as padded input")
    if (padded[0] - extent[0]) % stride[0] or (padded[1] - extent[1]) % stride[1]:
        corners.add("rows or columns no window reaches")
    if form == "four-sided" and ((sides[0] + sides[1]) % 2 or (sides[2] + sides[3]) % 2):
        corners.add("odd asymmetric padding")
    if dtype == np.float32:
        corners.add("float32")
    args = {
        "x": x,
        "weight": weight,
        "bias": bias,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
    }
    return Case(args, draw(grad_seeds()), frozenset(corners))


def _conv2d_length(args: Mapping[str, Any]) -> int:
    """The longest sum behind one element of the output or of a gradient.

    Output: ``C_g·kh·kw`` products. ``grad_weight`` and ``grad_bias``:
    ``N·H_out·W_out``, bounded here by the padded input size. ``grad_input``:
    at most ``(C_out / groups)·kh·kw``.
    """
    x, weight = args["x"], args["weight"]
    c_out, c_in_group, kh, kw = weight.shape
    n, _, h, w = x.shape
    top, bottom, left, right = padding_sides(args["padding"], (kh, kw), args["dilation"])
    positions = n * (h + top + bottom) * (w + left + right)
    return int(max(c_in_group * kh * kw, positions, c_out // args["groups"] * kh * kw))


CONV2D_CORNERS = frozenset(
    {
        "batch of one",
        "groups",
        "H != W",
        "kh != kw",
        "1x1 kernel",
        "same with even kernel",
        "unequal strides",
        "unequal dilations",
        "stride and dilation",
        "stride larger than kernel",
        "kernel as large as padded input",
        "rows or columns no window reaches",
        "odd asymmetric padding",
        *(f"padding {form}" for form in PADDING_FORMS),
        "bias",
        "no bias",
        "float32",
    }
)

SPECS = [
    FormulaSpec(
        name="conv2d",
        oracle=oracles.conv2d,
        cases=conv2d_cases,
        grad_wrt=("x", "weight", "bias"),
        reduction_length=_conv2d_length,
        corners=CONV2D_CORNERS,
    )
]
