"""Wrong formulas of the convolution family.

Most are one switch away from :func:`closed_form_backward`, the textbook
closed forms written with whole correlations (``dW = x̄ ⋆ dilate_s(δ)``,
``dX = crop(pad(dilate_s(δ)) ⋆_d rot180(w)ᵀ)``), which ``test_conv2d.py``
checks against torch: each erratum then differs from a right formula by
exactly the one mistake it is named after.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from reference_impl import vectorized
from reference_impl._validation import int_pair
from reference_impl.conv import dilate2d
from reference_impl.testing.errata.catalog import Erratum
from reference_impl.window import padding_sides

Dilate = Callable[[Any, tuple[int, int]], Any]


def _pad_to(array: Any, height: int, width: int) -> Any:
    """Zeros at the bottom and right up to at least ``height × width``."""
    extra_h, extra_w = max(0, height - array.shape[2]), max(0, width - array.shape[3])
    return np.pad(array, ((0, 0), (0, 0), (0, extra_h), (0, extra_w)))


def closed_form_backward(
    grad_output: Any,
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    *,
    dilate: Dilate = dilate2d,
    rotate: bool = True,
    pad_x_for_weight_grad: bool = True,
    weight_grad_over_output_channels: bool = False,
) -> tuple[Any, Any, Any]:
    """The backward pass as whole correlations, built from the forward ``conv2d``.

    With the default switches this is right (checked in ``test_conv2d.py``).

    * ``grad_weight``: correlate ``x̄`` (batch axis as channels) with
      ``dilate(δ)`` (batch axis as channels) at output stride ``d``, keep
      ``kh × kw``; ``weight_grad_over_output_channels`` also sums over ``o``.
    * ``grad_input``: pad ``dilate(δ)`` by ``d·(k − 1)`` (and the unreached
      rows), correlate with dilation ``d`` against ``rot180(w)`` (or ``w`` when
      ``rotate`` is false) with the channel axes swapped, crop the padding.
    """
    kh, kw = weight.shape[2:]
    stride, dilation = int_pair("stride", stride, 0), int_pair("dilation", dilation, 0)
    top, bottom, left, right = padding_sides(padding, (kh, kw), dilation)
    _, c_in, h, w = x.shape
    c_out = weight.shape[0]
    cg, og = c_in // groups, c_out // groups
    grad_bias = None if bias is None else grad_output.sum(axis=(0, 2, 3))
    delta_dilated = dilate(grad_output, stride)

    x_bar = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    source = x_bar if pad_x_for_weight_grad else x
    parts = []
    for g in range(groups):
        xg = np.ascontiguousarray(source[:, g * cg : (g + 1) * cg].transpose(1, 0, 2, 3))
        dg = np.ascontiguousarray(delta_dilated[:, g * og : (g + 1) * og].transpose(1, 0, 2, 3))
        need_h = (kh - 1) * dilation[0] + dg.shape[2]
        need_w = (kw - 1) * dilation[1] + dg.shape[3]
        corr = vectorized.conv2d(_pad_to(xg, need_h, need_w), dg, stride=dilation)
        parts.append(corr[:, :, :kh, :kw].transpose(1, 0, 2, 3))
    grad_weight = np.concatenate(parts, axis=0)
    if weight_grad_over_output_channels:
        grad_weight = np.broadcast_to(grad_weight.sum(axis=0), weight.shape).copy()

    flipped = weight.reshape(groups, og, cg, kh, kw).transpose(0, 2, 1, 3, 4)
    flipped = flipped.reshape(c_in, og, kh, kw)
    if rotate:
        flipped = flipped[:, :, ::-1, ::-1]
    ext_h, ext_w = (kh - 1) * dilation[0], (kw - 1) * dilation[1]
    unreached_h = max(0, x_bar.shape[2] - delta_dilated.shape[2] - ext_h)
    unreached_w = max(0, x_bar.shape[3] - delta_dilated.shape[3] - ext_w)
    delta_bar = np.pad(
        delta_dilated,
        ((0, 0), (0, 0), (ext_h, ext_h + unreached_h), (ext_w, ext_w + unreached_w)),
    )
    grad_x_bar = vectorized.conv2d(
        delta_bar, np.ascontiguousarray(flipped), dilation=dilation, groups=groups
    )
    grad_input = np.ascontiguousarray(grad_x_bar[:, :, top : top + h, left : left + w])
    return grad_input, grad_weight, grad_bias


def dilated_gradient_one_too_wide(
    grad_output: Any,
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> tuple[Any, Any, Any]:
    """Diba (2024), §3.2 and §3.4: the dilated gradient is ``h_out(s + 1) − 1`` wide.

    See docs/derivations.md, erratum 2.

    That width means ``s`` zeros between neighbours instead of ``s − 1``, so
    ``δ`` is spread over a grid of pitch ``s + 1`` while the forward windows
    move by ``s``; the right width is ``(h_out − 1)·s + 1``.
    Shrunk counterexample: x of shape (1, 1, 3, 3), a 2×2 kernel whose only
    nonzero weight is K22 = 1/16, stride 1, no padding: with pitch 2 only
    ``δ11`` lands on the input; ∂L/∂x23, ∂L/∂x32 and ∂L/∂x33 come out 0.
    """
    return closed_form_backward(
        grad_output,
        x,
        weight,
        bias,
        stride,
        padding,
        dilation,
        groups,
        dilate=lambda array, s: dilate2d(array, (s[0] + 1, s[1] + 1)),
    )


def weight_grad_summed_over_output_channels(
    grad_output: Any,
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> tuple[Any, Any, Any]:
    """Diba (2024), eqs. 12, 14 and 15: ``dW_μν`` carries a sum over the output channels ν.

    See docs/derivations.md, erratum 3.

    The filter of output channel ν only touches ``z_ν``; summing over ν hands
    every filter the same gradient. The sum runs over the batch and the
    output positions only.
    Shrunk counterexample: x of shape (1, 1, 3, 3) with only x33 = 1/16, two
    2×2 filters, stride 1: both filters get ∂L/∂K22 = (δ⁰22 + δ¹22)/16 instead
    of δ⁰22/16 and δ¹22/16.
    """
    return closed_form_backward(
        grad_output,
        x,
        weight,
        bias,
        stride,
        padding,
        dilation,
        groups,
        weight_grad_over_output_channels=True,
    )


def input_grad_summed_over_input_channel_range(
    grad_output: Any,
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> tuple[Any, Any, Any]:
    """Diba (2024), eq. 28: ``dq`` sums ``dz̄_ν ⋆ rot(W_μν)`` for ν up to ``ch_in − 1``.

    See docs/derivations.md, erratum 3.

    The sum belongs over the output channels ν < ch_out. Written over the
    input channel range it drops output channels when ch_in < ch_out; when
    ch_in > ch_out the channels it names beyond ch_out do not exist and add
    nothing, so the result is right there and the oracle must find the former.
    Groups are handled by writing the kernel as a dense block-diagonal one.
    Shrunk counterexample: x of shape (1, 1, 3, 3) (one input channel), weight
    (2, 1, 2, 2) with only W[1, 0, 1, 1] = 1/16, "valid" padding: output
    channel 1's share of dX is dropped.
    """
    _, grad_weight, grad_bias = closed_form_backward(
        grad_output, x, weight, bias, stride, padding, dilation, groups
    )
    c_out, cg = weight.shape[:2]
    c_in = x.shape[1]
    og = c_out // groups
    dense = np.zeros((c_out, c_in, *weight.shape[2:]), dtype=weight.dtype)
    for o in range(c_out):
        first = (o // og) * cg
        dense[o, first : first + cg] = weight[o]
    # Diba's range ν < ch_in; the right one is ν < ch_out. Channels the
    # printed range names beyond ch_out do not exist and contribute nothing.
    kept = min(c_in, c_out)
    grad_input, _, _ = closed_form_backward(
        np.ascontiguousarray(grad_output[:, :kept]),
        x,
        np.ascontiguousarray(dense[:kept]),
        None,
        stride,
        padding,
        dilation,
        1,
    )
    return grad_input, grad_weight, grad_bias


def input_grad_list_with_wrong_terms(
    grad_output: Any,
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> tuple[Any, Any, Any]:
    """Saraswat's element-by-element ``∂L/∂X`` for a 3×3 input and a 2×2 kernel.

    See docs/derivations.md, erratum 4.

    The list has two slips: ``∂L/∂X23`` uses ``K11`` where ``K12`` belongs and
    ``∂L/∂X33`` uses ``dZ21`` where ``dZ22`` belongs (the unsigned post
    "Backward propagation in CNNs" lists both right). The list is applied to
    every (batch, output channel, input channel) triple of that geometry
    (stride 1, no padding, no dilation); any other
    geometry gets the right gradient, so only the worked-example corner of the
    strategy can expose it.
    Shrunk counterexample: the worked example's geometry itself, one channel, kernel
    K = [[0, 0], [0, 1/16]]: ∂L/∂X33 comes out dZ21/16 instead of dZ22/16.
    """
    grad_input, grad_weight, grad_bias = vectorized.conv2d_backward(
        grad_output, x, weight, bias, stride, padding, dilation, groups
    )
    geometry = (
        x.shape[2:],
        weight.shape[2:],
        int_pair("stride", stride, 0),
        int_pair("dilation", dilation, 0),
    )
    sides = padding_sides(padding, weight.shape[2:], int_pair("dilation", dilation, 0))
    if geometry != ((3, 3), (2, 2), (1, 1), (1, 1)) or any(sides):
        return grad_input, grad_weight, grad_bias
    c_out, cg = weight.shape[:2]
    og = c_out // groups
    grad_input = np.zeros_like(x)
    for n in range(x.shape[0]):
        for o in range(c_out):
            dz = grad_output[n, o]
            for c in range(cg):
                k = weight[o, c]
                # Saraswat's 1-based names: dZ11 = dz[0, 0], K12 = k[0, 1], X23 = dx[1, 2].
                dx = grad_input[n, (o // og) * cg + c]
                dx[0, 0] += dz[0, 0] * k[0, 0]
                dx[0, 1] += dz[0, 0] * k[0, 1] + dz[0, 1] * k[0, 0]
                dx[0, 2] += dz[0, 1] * k[0, 1]
                dx[1, 0] += dz[0, 0] * k[1, 0] + dz[1, 0] * k[0, 0]
                dx[1, 1] += dz[0, 0] * k[1, 1] + dz[0, 1] * k[1, 0]
                dx[1, 1] += dz[1, 0] * k[0, 1] + dz[1, 1] * k[0, 0]
                dx[1, 2] += dz[0, 1] * k[1, 1] + dz[1, 1] * k[0, 0]  # printed: K11, right: K12
                dx[2, 0] += dz[1, 0] * k[1, 0]
                dx[2, 1] += dz[1, 0] * k[1, 1] + dz[1, 1] * k[1, 0]
                dx[2, 2] += dz[1, 0] * k[1, 1]  # printed: dZ21, right: dZ22
    return grad_input, grad_weight, grad_bias


def input_grad_kernel_not_rotated(
    grad_output: Any,
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> tuple[Any, Any, Any]:
    """Classic slip: ``dX = pad(dilate(δ)) ⋆ w`` without rotating the kernel by 180°.

    The padded ``δ`` is read from the far side of each window, so tap
    ``(a, e)`` meets the weight of tap ``(kh − 1 − a, kw − 1 − e)``. Right only
    for kernels symmetric under the rotation (1×1 among them).
    Shrunk counterexample: x of shape (1, 1, 3, 3), kernel K = [[0, 0], [0, 1/16]],
    stride 1: the gradient lands on the top-left 2×2 block of x instead of the
    bottom-right one.
    """
    return closed_form_backward(
        grad_output, x, weight, bias, stride, padding, dilation, groups, rotate=False
    )


def gradient_not_dilated(
    grad_output: Any,
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> tuple[Any, Any, Any]:
    """Classic slip: the stride-1 formulas used for stride > 1, ``δ`` not dilated.

    Without the ``s − 1`` zeros between neighbours, output ``(i, j)`` is paired
    with the input window at ``(i, j)`` instead of ``(i·s_h, j·s_w)``.
    Shrunk counterexample: x of shape (1, 1, 3, 1), 1×1 kernel, stride (2, 1):
    the second output's δ goes to row 2 of x instead of row 3.
    """
    return closed_form_backward(
        grad_output,
        x,
        weight,
        bias,
        stride,
        padding,
        dilation,
        groups,
        dilate=lambda array, _: array,
    )


def weight_grad_without_padding(
    grad_output: Any,
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> tuple[Any, Any, Any]:
    """Classic slip: ``dW = x ⋆ dilate(δ)`` on the unpadded input instead of ``x̄``.

    The forward pass saw ``x̄``; correlating ``δ`` with ``x`` shifts every
    window by the top/left padding and drops the border zeros.
    Shrunk counterexample: x of shape (1, 1, 1, 1), 1×1 kernel, padding 1:
    ∂L/∂w is δ11·x11 (δ at the padded corner) instead of δ22·x11.
    """
    return closed_form_backward(
        grad_output,
        x,
        weight,
        bias,
        stride,
        padding,
        dilation,
        groups,
        pad_x_for_weight_grad=False,
    )


ERRATA = [
    Erratum(
        name="erratum-2-dilated-gradient-width",
        formula="conv2d",
        source="Diba (2024), §3.2 and §3.4; docs/derivations.md, erratum 2",
        mistake="δ dilated to width h_out(s + 1) − 1 (s zeros between neighbours)",
        backward=dilated_gradient_one_too_wide,
    ),
    Erratum(
        name="erratum-3-weight-grad-channel-sum",
        formula="conv2d",
        source="Diba (2024), eqs. 12, 14, 15; docs/derivations.md, erratum 3",
        mistake="dW_μν summed over the output channels ν",
        backward=weight_grad_summed_over_output_channels,
    ),
    Erratum(
        name="erratum-3-input-grad-channel-range",
        formula="conv2d",
        source="Diba (2024), eq. 28; docs/derivations.md, erratum 3",
        mistake="dX sums over ν < ch_in instead of the output channels ν < ch_out",
        backward=input_grad_summed_over_input_channel_range,
    ),
    Erratum(
        name="erratum-4-input-grad-list-wrong-terms",
        formula="conv2d",
        source="Saraswat, 3×3 / 2×2 input-gradient list; docs/derivations.md, erratum 4",
        mistake="∂L/∂X23 uses K11 instead of K12; ∂L/∂X33 uses dZ21 instead of dZ22",
        backward=input_grad_list_with_wrong_terms,
    ),
    Erratum(
        name="conv-input-grad-kernel-not-rotated",
        formula="conv2d",
        source="classic slip",
        mistake="dX correlates the padded δ with w instead of rot180(w)",
        backward=input_grad_kernel_not_rotated,
    ),
    Erratum(
        name="conv-gradient-not-dilated",
        formula="conv2d",
        source="classic slip",
        mistake="δ not dilated for stride > 1 in dW and dX",
        backward=gradient_not_dilated,
    ),
    Erratum(
        name="conv-weight-grad-without-padding",
        formula="conv2d",
        source="classic slip",
        mistake="dW correlates δ with the unpadded x instead of x̄",
        backward=weight_grad_without_padding,
    ),
]
