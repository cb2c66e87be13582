"""Spec of the transposed convolution: ``conv_transpose2d``.

Drawn valid by construction, each parameter before the ones it constrains:
groups and channels, kernel, dilation, stride, then the output padding (below
``max(stride, dilation)`` on each axis, torch's rule), the padding, and last
the input size, from the smallest one whose output is not cropped away.
torch's ``F.conv_transpose2d`` takes the same arguments under the same names,
so the default oracle calls it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from hypothesis import strategies as st

from reference_impl._validation import int_pair
from reference_impl.conv_transpose import output_size
from reference_impl.testing.registry import Case, ErrorInput, FormulaSpec, Steer
from reference_impl.testing.strategies import arrays, grad_seeds


def _pair(draw: st.DrawFn, steer: Steer, name: str, corner: str, high: int) -> tuple[int, int]:
    """``(1, 1)``, or a pair with an entry above 1 when ``corner`` is steered in."""
    if name in steer.fixed:
        return int_pair(name, steer.fixed[name], 0)
    if not steer.flag(draw, corner):
        return (1, 1)
    pair = draw(st.tuples(st.integers(1, high), st.integers(1, high)), label=name)
    return pair if max(pair) > 1 else (high, pair[1])


def _output_padding(
    draw: st.DrawFn,
    steer: Steer,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    beyond_stride: bool,
) -> tuple[int, int]:
    """Per axis below ``max(s, d)``; zero unless the ``output_padding`` corner is drawn."""
    if "output_padding" in steer.fixed:
        return int_pair("output_padding", steer.fixed["output_padding"], 0)
    if beyond_stride:  # s ≤ q < d on the first axis (the caller made d_h > s_h)
        first = draw(st.integers(stride[0], dilation[0] - 1), label="output_padding h")
        return (
            first,
            draw(st.integers(0, max(stride[1], dilation[1]) - 1), label="output_padding w"),
        )
    limits = (max(stride[0], dilation[0]) - 1, max(stride[1], dilation[1]) - 1)
    if max(limits) == 0 or not steer.flag(draw, "output_padding"):
        return (0, 0)
    pair = draw(
        st.tuples(st.integers(0, limits[0]), st.integers(0, limits[1])), label="output_padding"
    )
    return pair if max(pair) > 0 else ((1, pair[1]) if limits[0] else (pair[0], 1))


@st.composite
def conv_transpose2d_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer) -> Case:
    """Small transposed convolutions reaching every parameter axis and its corners."""
    groups = steer.value(draw, "groups", st.just(1))
    if "groups" not in steer.fixed and steer.flag(draw, "groups"):
        groups = draw(st.integers(2, 3), label="groups")
    c_in_group = draw(st.integers(1, 2), label="C_in / groups")
    c_out_group = draw(st.integers(1, 2), label="C_out / groups")
    n = 1 if steer.flag(draw, "batch of one") else 2
    kh = draw(st.integers(1, 3), label="kh")
    kw = draw(st.integers(1, 3), label="kw") if steer.flag(draw, "kh != kw") else kh

    # s ≤ q < d needs d > s on an axis: make room for it before drawing stride and dilation
    held = {"stride", "dilation", "output_padding"} & set(steer.fixed)
    beyond = not held and steer.flag(draw, "output_padding ≥ stride")
    if beyond:
        stride = (1, 1)
        dilation = (draw(st.integers(2, 3), label="dilation h"), 1)
    else:
        dilation = _pair(draw, steer, "dilation", "dilation > 1", 2)
        stride = _pair(draw, steer, "stride", "stride > 1", 3)
    extra = _output_padding(draw, steer, stride, dilation, beyond)
    if "stride" not in steer.fixed:
        # a held output_padding needs a stride (or dilation) above it on each axis
        stride = (
            stride[0] if extra[0] < max(stride[0], dilation[0]) else extra[0] + 1,
            stride[1] if extra[1] < max(stride[1], dilation[1]) else extra[1] + 1,
        )

    if "padding" in steer.fixed:
        padding: Any = steer.fixed["padding"]
        form = "int" if isinstance(padding, int) else "pair"
    elif steer.flag(draw, "padding", one_in=2):
        value = draw(st.tuples(st.integers(0, 2), st.integers(0, 2)).filter(any), label="padding")
        form = draw(st.sampled_from(["int", "pair"]), label="padding form")
        padding = max(value) if form == "int" else value
    else:
        form, padding = draw(st.sampled_from([("int", 0), ("pair", (0, 0))]), label="padding")
    pads = int_pair("padding", padding, 0)

    sizes = []
    for axis, (k, s, p, q, d) in enumerate(
        zip((kh, kw), stride, pads, extra, dilation, strict=True)
    ):
        # the smallest input whose output keeps at least one row: (H − 1)s ≥ 2p − d(k − 1) − q
        need = max(0, 2 * p - d * (k - 1) - q)
        smallest = 1 + -(-need // s)
        more = axis == 0 or steer.flag(draw, "H != W")
        sizes.append(
            smallest + (draw(st.integers(0, 2), label=f"extra {'hw'[axis]}") if more else 0)
        )
    h, w = sizes
    out = [
        output_size(size, k, s, p, q, d)
        for size, k, s, p, q, d in zip(sizes, (kh, kw), stride, pads, extra, dilation, strict=True)
    ]

    c_in, c_out = groups * c_in_group, groups * c_out_group
    x = draw(arrays(dtype, (n, c_in, h, w)), label="x")
    weight = draw(arrays(dtype, (c_in, c_out_group, kh, kw)), label="weight")
    with_bias = "bias" not in steer.fixed and not steer.flag(draw, "no bias")
    bias = draw(arrays(dtype, (c_out,)), label="bias") if with_bias else None

    corners = {f"padding {form}", "bias" if with_bias else "no bias"}
    corners.add("batch of one" if n == 1 else "batch")
    if groups > 1:
        corners.add("groups")
    if max(stride) > 1:
        corners.add("stride > 1")
    if max(dilation) > 1:
        corners.add("dilation > 1")
    if any(pads):
        corners.add("padding")
    if any(extra):
        corners.add("output_padding")
    if any(q >= s for q, s in zip(extra, stride, strict=True)):
        corners.add("output_padding ≥ stride")
    if any(q > p for q, p in zip(extra, pads, strict=True)):
        corners.add("output rows only the bias reaches")
    if h != w:
        corners.add("H != W")
    if kh != kw:
        corners.add("kh != kw")
    if kh == kw == 1:
        corners.add("1x1 kernel")
    if stride[0] != stride[1]:
        corners.add("unequal strides")
    if any(s > d * (k - 1) + 1 for s, d, k in zip(stride, dilation, (kh, kw), strict=True)):
        corners.add("stride larger than kernel")
    if any(s < d * (k - 1) + 1 for s, d, k in zip(stride, dilation, (kh, kw), strict=True)):
        corners.add("overlapping footprints")
    if min(out) == 1:
        corners.add("one output row or column")
    if c_in_group > 1 and c_out_group > 1:
        corners.add("several channels per group")
    args = {
        "x": x,
        "weight": weight,
        "bias": bias,
        # a held value reaches the candidate as given (an int stays an int)
        "stride": steer.fixed.get("stride", stride),
        "padding": padding,
        "output_padding": steer.fixed.get("output_padding", extra),
        "groups": groups,
        "dilation": steer.fixed.get("dilation", dilation),
    }
    return Case(args, draw(grad_seeds()), steer.settle(corners))


def _length(args: Mapping[str, Any]) -> int:
    """The longest sum behind one element of the output or of a gradient.

    Output: at most ``C_g·kh·kw`` products. ``grad_x``: ``O_g·kh·kw``.
    ``grad_weight``: ``N·H·W``. ``grad_bias``: ``N·H_out·W_out``, bounded
    here by ``N·(H + k)·(W + k)·s²·d`` (the output is at most that large).
    """
    x, weight = args["x"], args["weight"]
    c_in, c_out_group, kh, kw = weight.shape
    n, _, h, w = x.shape
    (sh, sw), (dh, dw) = (
        int_pair("stride", args["stride"], 0),
        int_pair("dilation", args["dilation"], 0),
    )
    outputs = n * (h * sh + dh * kh) * (w * sw + dw * kw)
    return int(max(c_in // args["groups"] * kh * kw, c_out_group * kh * kw, n * h * w, outputs))


CORNERS = frozenset(
    {
        "batch of one",
        "groups",
        "stride > 1",
        "dilation > 1",
        "padding",
        "padding int",
        "padding pair",
        "output_padding",
        "output_padding ≥ stride",
        "output rows only the bias reaches",
        "H != W",
        "kh != kw",
        "1x1 kernel",
        "unequal strides",
        "stride larger than kernel",
        "overlapping footprints",
        "one output row or column",
        "several channels per group",
        "bias",
        "no bias",
    }
)


def _good() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "x": rng.standard_normal((2, 4, 3, 3)),
        "weight": rng.standard_normal((4, 3, 2, 2)),
        "bias": rng.standard_normal(6),
        "stride": 2,
        "padding": 0,
        "output_padding": 1,
        "groups": 2,
        "dilation": 1,
    }


ERRORS = [
    ErrorInput(
        "output_padding equal to stride", {"output_padding": 2}, ValueError, "output_padding"
    ),
    ErrorInput(
        "output_padding not below stride or dilation",
        {"stride": 1, "dilation": 2, "output_padding": (0, 2)},
        ValueError,
        "output_padding",
    ),
    ErrorInput("output_padding without stride", {"stride": 1}, ValueError, "output_padding"),
    ErrorInput("negative output_padding", {"output_padding": -1}, ValueError, "output_padding"),
    ErrorInput("output_padding float", {"output_padding": 0.5}, TypeError, "output_padding"),
    ErrorInput("channels", {"weight": np.ones((3, 3, 2, 2))}, ValueError, "weight"),
    ErrorInput("groups not dividing C_in", {"groups": 3}, ValueError, "groups"),
    ErrorInput("groups zero", {"groups": 0}, ValueError, "groups"),
    ErrorInput("groups not an int", {"groups": 2.0}, TypeError, "groups"),
    ErrorInput("stride zero", {"stride": 0}, ValueError, "stride"),
    ErrorInput("stride not int", {"stride": 1.5}, TypeError, "stride"),
    ErrorInput("dilation zero", {"dilation": (0, 1)}, ValueError, "dilation"),
    ErrorInput("negative padding", {"padding": -1}, ValueError, "padding"),
    ErrorInput("padding same", {"padding": "same"}, TypeError, "padding"),
    ErrorInput("four-sided padding", {"padding": (1, 1, 1, 1)}, TypeError, "padding"),
    ErrorInput("padding crops everything", {"padding": 4}, ValueError, "padding"),
    ErrorInput("x rank", {"x": np.ones((4, 3, 3))}, ValueError, "x"),
    ErrorInput("weight rank", {"weight": np.ones((4, 3, 2))}, ValueError, "weight"),
    ErrorInput("bias rank", {"bias": np.ones((6, 1))}, ValueError, "bias"),
    ErrorInput("bias length", {"bias": np.ones(5)}, ValueError, "bias"),
    ErrorInput("mixed dtypes", {"weight": np.ones((4, 3, 2, 2), np.float32)}, TypeError, "weight"),
    ErrorInput("integer x", {"x": np.ones((2, 4, 3, 3), np.int64)}, TypeError, "x"),
    ErrorInput("list weight", {"weight": np.ones((4, 3, 2, 2)).tolist()}, TypeError, "weight"),
]

SPECS = [
    FormulaSpec(
        name="conv_transpose2d",
        cases=conv_transpose2d_cases,
        grad_wrt=("x", "weight", "bias"),
        reduction_length=_length,
        corners=CORNERS,
        error_base=_good,
        error_inputs=ERRORS,
    )
]
