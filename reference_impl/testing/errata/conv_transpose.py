"""Wrong formulas of the transposed convolution.

Each is one switch away from :func:`closed_form` and :func:`closed_form_backward`,
the textbook construction of ``conv_transpose2d`` from ``conv2d``: dilate
``x`` by the stride, pad it with ``d(k − 1)`` zeros on every side (plus the
output padding at the bottom and right), correlate it with the kernel rotated
by 180° and its channel axes swapped, crop the padding ``p``. With the default
switches both are right (``test_conv_transpose2d.py`` checks them against
torch); the backward of each is the exact adjoint of its forward, computed
through ``conv2d_backward``, so a wrong backward is caught as well as a wrong
forward.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference_impl import vectorized
from reference_impl._validation import int_pair
from reference_impl.conv import dilate2d
from reference_impl.conv_transpose import output_size
from reference_impl.testing.errata.catalog import Erratum


def _parts(
    x: Any,
    weight: Any,
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: int,
    dilation: Any,
    rotate: bool,
    swap_channels: bool,
    output_padding_after: bool,
) -> tuple[Any, Any, tuple[int, int], tuple[int, int], tuple[int, int]]:
    """``(x̄, kernel, (top, left) of x inside x̄, p, (H_out, W_out))`` of the construction."""
    s = int_pair("stride", stride, 1)
    p = int_pair("padding", padding, 0)
    q = int_pair("output_padding", output_padding, 0)
    d = int_pair("dilation", dilation, 1)
    c_in, c_out_g, kh, kw = weight.shape
    c_g = c_in // groups
    reach = (d[0] * (kh - 1), d[1] * (kw - 1))
    before = [r + (0 if output_padding_after else e) for r, e in zip(reach, q, strict=True)]
    after = [r + (e if output_padding_after else 0) for r, e in zip(reach, q, strict=True)]
    x_bar = np.pad(dilate2d(x, s), ((0, 0), (0, 0), (before[0], after[0]), (before[1], after[1])))
    if swap_channels:
        blocks = weight.reshape(groups, c_g, c_out_g, kh, kw).transpose(0, 2, 1, 3, 4)
        kernel = blocks.reshape(groups * c_out_g, c_g, kh, kw)
    else:  # torch's (C_in, C_out / groups) read as conv2d's (C_out, C_in / groups)
        kernel = weight
    if rotate:
        kernel = kernel[:, :, ::-1, ::-1]
    out = (
        output_size(x.shape[2], kh, s[0], p[0], q[0], d[0]),
        output_size(x.shape[3], kw, s[1], p[1], q[1], d[1]),
    )
    return x_bar, np.ascontiguousarray(kernel), (before[0], before[1]), p, out


def closed_form(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
    *,
    rotate: bool = True,
    swap_channels: bool = True,
    output_padding_after: bool = True,
) -> Any:
    """``crop_p(conv2d(pad(dilate_s(x)), rot180(w)ᵀ, dilation=d))`` (+ bias), per group."""
    x_bar, kernel, _, p, out = _parts(
        x, weight, stride, padding, output_padding, groups, dilation,
        rotate, swap_channels, output_padding_after,
    )  # fmt: skip
    full = vectorized.conv2d(x_bar, kernel, dilation=dilation, groups=groups)
    y = np.ascontiguousarray(full[:, :, p[0] : p[0] + out[0], p[1] : p[1] + out[1]])
    if bias is not None:
        y += bias[:, None, None]
    return y


def closed_form_backward(
    grad_output: Any,
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
    *,
    rotate: bool = True,
    swap_channels: bool = True,
    output_padding_after: bool = True,
) -> tuple[Any, Any, Any]:
    """The adjoint of :func:`closed_form` with the same switches, through ``conv2d_backward``."""
    x_bar, kernel, origin, p, out = _parts(
        x, weight, stride, padding, output_padding, groups, dilation,
        rotate, swap_channels, output_padding_after,
    )  # fmt: skip
    full = vectorized.conv2d(x_bar, kernel, dilation=dilation, groups=groups)
    grad_full = np.zeros_like(full)
    grad_full[:, :, p[0] : p[0] + out[0], p[1] : p[1] + out[1]] = grad_output
    grad_x_bar, grad_kernel, _ = vectorized.conv2d_backward(
        grad_full, x_bar, kernel, None, dilation=dilation, groups=groups
    )
    s = int_pair("stride", stride, 1)
    rows, cols = (x.shape[2] - 1) * s[0] + 1, (x.shape[3] - 1) * s[1] + 1
    dilated = grad_x_bar[:, :, origin[0] : origin[0] + rows, origin[1] : origin[1] + cols]
    grad_x = np.ascontiguousarray(dilated[:, :, :: s[0], :: s[1]])
    if rotate:
        grad_kernel = grad_kernel[:, :, ::-1, ::-1]
    c_in, c_out_g, kh, kw = weight.shape
    if swap_channels:
        blocks = grad_kernel.reshape(groups, c_out_g, c_in // groups, kh, kw)
        grad_weight = blocks.transpose(0, 2, 1, 3, 4).reshape(weight.shape)
    else:
        grad_weight = grad_kernel
    grad_bias = None if bias is None else grad_output.sum(axis=(0, 2, 3))
    return grad_x, np.ascontiguousarray(grad_weight), grad_bias


def _square(x: Any, weight: Any, groups: int) -> bool:
    """Whether the weight can be misread: ``C_in / groups == C_out / groups``."""
    return bool(x.shape[1] // groups == weight.shape[1])


def output_padding_top_left(*args: Any, **kwargs: Any) -> Any:
    """Classic slip: the ``output_padding`` rows and columns added at the top and left.

    torch adds them at the bottom and right, where a conv2d input of that size
    has the rows its windows never reach; on the top-left every output moves
    down and right by ``q``.
    Shrunk counterexample: x of shape (1, 1, 1, 1), a 1×1 kernel ``w = 1/16``,
    stride 1, dilation (2, 1), output_padding (1, 0), so two output rows: x
    reaches row 0 and ``∂L/∂x = δ[0]·w = 0.109375`` for ``δ = (1.75, −1.3125)``;
    the slip puts x in row 1 and reads ``δ[1]·w = −0.08203125``.
    """
    return closed_form(*args, output_padding_after=False, **kwargs)


def output_padding_top_left_backward(*args: Any, **kwargs: Any) -> Any:
    """The adjoint of :func:`output_padding_top_left`: ``δ`` read ``q`` rows too low."""
    return closed_form_backward(*args, output_padding_after=False, **kwargs)


def weight_not_transposed(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Any:
    """Classic slip: torch's ``(C_in, C_out / groups, kh, kw)`` weight read as conv2d's layout.

    Output channel ``o`` then takes ``w[o, c]`` where ``w[c, o]`` belongs, the
    transpose of each group's channel block. Only expressible when the blocks
    are square (``C_in == C_out``); otherwise the shapes betray it at once, so
    the right result is returned there, and only square cases can expose it.
    Shrunk counterexample: x of shape (2, 2, 1, 1), a 1×1 kernel of shape
    (2, 2, 1, 1) whose only nonzero entry is ``w[1, 0] = 1/16``: input channel
    1 feeds output channel 0, so ``∂L/∂x[0, 1] = δ[0, 0]·w[1, 0] = −0.109375``
    for ``δ[0] = (−1.75, −1.3125)``; the slip gives 0 there.
    """
    args = (x, weight, bias, stride, padding, output_padding, groups, dilation)
    return closed_form(*args, swap_channels=not _square(x, weight, groups))


def weight_not_transposed_backward(
    grad_output: Any,
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Any:
    """The adjoint of :func:`weight_not_transposed`."""
    args = (x, weight, bias, stride, padding, output_padding, groups, dilation)
    return closed_form_backward(grad_output, *args, swap_channels=not _square(x, weight, groups))


def kernel_not_rotated(*args: Any, **kwargs: Any) -> Any:
    """Classic slip: ``conv2d(pad(dilate_s(x)), wᵀ)`` without rotating the kernel by 180°.

    The correlation then reads each footprint from the far side: input
    ``(i, j)`` reaches output ``(i s + (kh − 1 − a) d − p, …)`` through
    ``w[a, e]``. Right only for kernels symmetric under the rotation.
    Shrunk counterexample: x of shape (2, 1, 1, 1), a 2×2 kernel whose only
    nonzero entry is ``w[0, 0, 1, 1] = 1/16``, stride 1: x reaches output
    ``(1, 1)``, so ``∂L/∂x[0] = δ[0, 0, 1, 1]·w = 0.03515625`` for
    ``δ[0, 0] = [[−1.75, 1.3125], [1.0625, 0.5625]]``; the slip reads
    ``δ[0, 0, 0, 0]·w = −0.109375``.
    """
    return closed_form(*args, rotate=False, **kwargs)


def kernel_not_rotated_backward(*args: Any, **kwargs: Any) -> Any:
    """The adjoint of :func:`kernel_not_rotated`."""
    return closed_form_backward(*args, rotate=False, **kwargs)


ERRATA = [
    Erratum(
        name="conv-transpose-output-padding-top-left",
        formula="conv_transpose2d",
        source="classic slip",
        mistake="output_padding rows and columns added at the top and left, not bottom and right",
        forward=output_padding_top_left,
        backward=output_padding_top_left_backward,
    ),
    Erratum(
        name="conv-transpose-weight-not-transposed",
        formula="conv_transpose2d",
        source="classic slip",
        mistake="weight (C_in, C_out/G, kh, kw) read as conv2d's (C_out, C_in/G, kh, kw)",
        forward=weight_not_transposed,
        backward=weight_not_transposed_backward,
    ),
    Erratum(
        name="conv-transpose-kernel-not-rotated",
        formula="conv_transpose2d",
        source="classic slip",
        mistake="the dilated, padded x correlated with w instead of rot180(w)",
        forward=kernel_not_rotated,
        backward=kernel_not_rotated_backward,
    ),
]
