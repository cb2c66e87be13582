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

from reference_impl._validation import int_pair
from reference_impl.testing import oracles
from reference_impl.testing.registry import Case, ErrorInput, FormulaSpec, Steer
from reference_impl.testing.strategies import arrays, grad_seeds
from reference_impl.window import padding_sides

PADDING_FORMS = ("int", "pair", "four-sided", "valid", "same")
#: every way of asking for no padding, with its form
_NO_PADDING = (("valid", "valid"), ("int", 0), ("pair", (0, 0)), ("four-sided", (0, 0, 0, 0)))
#: the hand-derived geometry of the worked examples (see docs/derivations.md)
WORKED_EXAMPLE = "3x3 input, 2x2 kernel"


def _pair(draw: st.DrawFn, steer: Steer, name: str, corner: str, high: int) -> tuple[int, int]:
    """``(1, 1)``, or a pair with an entry above 1 when ``corner`` is steered in."""
    if name in steer.fixed:
        return int_pair(name, steer.fixed[name], 1)
    if not steer.flag(draw, corner):
        return (1, 1)
    pair = draw(st.tuples(st.integers(1, high), st.integers(1, high)), label=name)
    return pair if max(pair) > 1 else (high, pair[1])


def _padding(draw: st.DrawFn, steer: Steer, stride: tuple[int, int]) -> tuple[str, Any]:
    """The padding form and value: none, symmetric, asymmetric or torch's "same"."""
    if "padding" in steer.fixed:
        padding = steer.fixed["padding"]
        if isinstance(padding, str):
            return padding, padding
        if isinstance(padding, int):
            return "int", padding
        return ("pair" if len(padding) == 2 else "four-sided"), tuple(padding)
    if not steer.flag(draw, "padding", one_in=2):
        return draw(st.sampled_from(_NO_PADDING), label="padding")
    side = st.integers(0, 2)
    if stride == (1, 1) and steer.allows("padding same") and draw(st.integers(0, 4)) == 0:
        return "same", "same"
    if steer.flag(draw, "asymmetric padding", one_in=2):
        top, left = draw(side, label="top"), draw(side, label="left")
        bottom = draw(side.filter(lambda b: b != top), label="bottom")
        return "four-sided", (top, bottom, left, draw(side, label="right"))
    value = draw(st.tuples(side, side).filter(any), label="padding")
    form = draw(st.sampled_from(["int", "pair", "four-sided"]), label="padding form")
    if form == "int":
        return form, max(value)
    return form, value if form == "pair" else (value[0], value[0], value[1], value[1])


@st.composite
def conv2d_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer) -> Case:
    """Small convolutions reaching every padding form, groups, strides and dilations.

    Each parameter axis is steered (held fixed, or its corner required or
    excluded) before the next is drawn; the input size comes last, from the
    smallest size the dilated kernel fits in once padded upward.
    """
    groups = steer.value(draw, "groups", st.just(1))
    if "groups" not in steer.fixed and steer.flag(draw, "groups"):
        groups = draw(st.integers(2, 3), label="groups")
    c_in_group = draw(st.integers(1, 2), label="C_in / groups")
    c_out_group = draw(st.integers(1, 2), label="C_out / groups")
    n = 1 if steer.flag(draw, "batch of one") else 2
    worked = {"stride", "padding", "dilation"}.isdisjoint(steer.fixed) and steer.flag(
        draw, WORKED_EXAMPLE
    )
    if worked:
        # Hand-derived in the worked examples: 3×3 input, 2×2 kernel, stride 1, no padding.
        kh = kw = 2
        stride, dilation = (1, 1), (1, 1)
        form, padding = draw(st.sampled_from(_NO_PADDING), label="padding")
        h = w = 3
    else:
        kh = draw(st.integers(1, 3), label="kh")
        kw = draw(st.integers(1, 3), label="kw") if steer.flag(draw, "kh != kw") else kh
        dilation = _pair(draw, steer, "dilation", "dilation > 1", 2)
        stride = _pair(draw, steer, "stride", "stride > 1", 4)
        form, padding = _padding(draw, steer, stride)
        sides = padding_sides(padding, (kh, kw), dilation)
        # The smallest input the dilated kernel fits in once padded, then a little more.
        extent = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
        h = max(1, extent[0] - sides[0] - sides[1]) + draw(st.integers(0, 3), label="extra rows")
        w = max(1, extent[1] - sides[2] - sides[3])
        w += draw(st.integers(0, 3), label="extra cols") if steer.flag(draw, "H != W") else 0
    sides = padding_sides(padding, (kh, kw), dilation)
    extent = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)

    c_in, c_out = groups * c_in_group, groups * c_out_group
    x = draw(arrays(dtype, (n, c_in, h, w)), label="x")
    weight = draw(arrays(dtype, (c_out, c_in_group, kh, kw)), label="weight")
    with_bias = "bias" not in steer.fixed and not steer.flag(draw, "no bias")
    bias = draw(arrays(dtype, (c_out,)), label="bias") if with_bias else None

    corners = {f"padding {form}", "bias" if with_bias else "no bias"}
    if worked:
        corners.add(WORKED_EXAMPLE)
    corners.add("batch of one" if n == 1 else "batch")
    if groups > 1:
        corners.add("groups")
    if max(stride) > 1:
        corners.add("stride > 1")
    if max(dilation) > 1:
        corners.add("dilation > 1")
    if any(sides):
        corners.add("padding")
    if sides[0] != sides[1] or sides[2] != sides[3]:
        corners.add("asymmetric padding")
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
    args = {
        "x": x,
        "weight": weight,
        "bias": bias,
        # a held value reaches the candidate as given (an int stays an int)
        "stride": steer.fixed.get("stride", stride),
        "padding": steer.fixed.get("padding", padding),
        "dilation": steer.fixed.get("dilation", dilation),
        "groups": groups,
    }
    return Case(args, draw(grad_seeds()), steer.settle(corners))


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
        "stride > 1",
        "dilation > 1",
        "padding",
        "asymmetric padding",
        WORKED_EXAMPLE,
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
    }
)


def _good() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "x": rng.standard_normal((2, 4, 6, 5)),
        "weight": rng.standard_normal((6, 2, 3, 2)),
        "bias": rng.standard_normal(6),
        "stride": 1,
        "padding": 0,
        "dilation": 1,
        "groups": 2,
    }


ERRORS = [
    ErrorInput("channels", {"weight": np.ones((6, 3, 3, 2))}, ValueError, "weight"),
    ErrorInput("groups not dividing C_in", {"groups": 3}, ValueError, "groups"),
    ErrorInput("groups not dividing C_out", {"groups": 4}, ValueError, "groups"),
    ErrorInput("groups zero", {"groups": 0}, ValueError, "groups"),
    ErrorInput("groups not an int", {"groups": 2.0}, TypeError, "groups"),
    ErrorInput("kernel too tall", {"weight": np.ones((6, 2, 7, 2))}, ValueError, "weight"),
    ErrorInput("dilated kernel too wide", {"dilation": (1, 5)}, ValueError, "weight", "dilat"),
    ErrorInput("stride zero", {"stride": 0}, ValueError, "stride"),
    ErrorInput("stride pair with zero", {"stride": (1, 0)}, ValueError, "stride"),
    ErrorInput("stride not int", {"stride": 1.5}, TypeError, "stride"),
    ErrorInput("dilation zero", {"dilation": (0, 1)}, ValueError, "dilation"),
    ErrorInput("negative padding", {"padding": -1}, ValueError, "padding"),
    ErrorInput("negative side", {"padding": (0, 1, -1, 0)}, ValueError, "padding"),
    ErrorInput("padding of three", {"padding": (1, 1, 1)}, ValueError, "padding"),
    ErrorInput("padding not int", {"padding": 0.5}, TypeError, "padding"),
    ErrorInput("same with stride", {"padding": "same", "stride": (1, 2)}, ValueError, "padding"),
    ErrorInput("unknown padding string", {"padding": "full"}, ValueError, "padding"),
    ErrorInput("x rank", {"x": np.ones((4, 6, 5))}, ValueError, "x"),
    ErrorInput("weight rank", {"weight": np.ones((6, 2, 3))}, ValueError, "weight"),
    ErrorInput("bias rank", {"bias": np.ones((6, 1))}, ValueError, "bias"),
    ErrorInput("bias length", {"bias": np.ones(5)}, ValueError, "bias"),
    ErrorInput("mixed dtypes", {"weight": np.ones((6, 2, 3, 2), np.float32)}, TypeError, "weight"),
    ErrorInput("integer bias", {"bias": np.ones(6, np.int64)}, TypeError, "bias"),
    ErrorInput("integer x", {"x": np.ones((2, 4, 6, 5), np.int64)}, TypeError, "x"),
    ErrorInput("list weight", {"weight": np.ones((6, 2, 3, 2)).tolist()}, TypeError, "weight"),
]

SPECS = [
    FormulaSpec(
        name="conv2d",
        oracle=oracles.conv2d,
        cases=conv2d_cases,
        grad_wrt=("x", "weight", "bias"),
        reduction_length=_conv2d_length,
        corners=CONV2D_CORNERS,
        error_base=_good,
        error_inputs=ERRORS,
    )
]
