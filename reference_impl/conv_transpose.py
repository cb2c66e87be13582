r"""Two-dimensional transposed convolution: conv2d's input gradient, run as a layer.

Notation
========
``x`` has shape ``(N, C_in, H, W)``; ``weight`` has torch's layout
``(C_in, C_out / groups, kh, kw)``, the layout of a ``conv2d`` weight whose
input and output channels are swapped; ``bias`` has shape ``(C_out,)``.
Stride ``s``, padding ``p``, output padding ``q`` and dilation ``d`` act per axis
(an int, or a pair ``(h, w)``). With ``G = groups``, the input channels split
into ``G`` blocks of ``C_g = C_in / G`` and the output channels into ``G`` blocks
of ``O_g = C_out / G``; input channel ``c`` only feeds the output block of its
group ``g(c) = c // C_g``.

Where it comes from
===================
Take a ``conv2d`` with stride ``s``, padding ``p``, dilation ``d`` and groups
``G``, whose weight ``w`` has conv2d's layout ``(C_out^conv, C_in^conv / G, kh,
kw)`` — the array called ``weight`` here, with ``C_out^conv = C_in`` and
``C_in^conv = C_out``. For an input ``x'`` of ``H'`` rows and an upstream
gradient ``δ`` of its ``H_conv = ⌊(H' + 2p − d(k − 1) − 1)/s⌋ + 1`` output rows,
``reference_impl/conv.py`` derives the input gradient (``x̄'`` is ``x'`` padded
by ``p``)::

    ∂L/∂x̄'[n, C, r, t] = Σ_{o in group g} Σ_{(i, a): i s + a d = r} Σ_{(j, e): j s + e d = t}
                         δ[n, o, i, j] · w[o, C − g·O_g, a, e]

Rename ``δ`` to ``x`` (the layer's input, ``C_in`` channels of ``H`` rows) and
``∂L/∂x'`` to ``y`` (its output): that map, from ``x`` to ``y``, is the
transposed convolution. Each input element spreads over a ``kh × kw``
footprint of the output, taps ``d`` apart, footprints ``s`` apart; where
footprints overlap the contributions add; the ``p`` outermost rows and
columns are cropped, as ``∂L/∂x`` crops ``∂L/∂x̄'``. Per element (a sum over
the inputs and taps landing on it)::

    y[n, O, r, t] = b[O] + Σ_{c in group g(O)} Σ_{(i, a): i s + a d − p = r}
                    Σ_{(j, e): j s + e d − p = t} x[n, c, i, j] · w[c, O − g(O)·O_g, a, e]

Output size
===========
The footprint of the last input row ends on padded row ``(H − 1)s + d(k − 1)``;
cropping ``p`` on each side leaves ``(H − 1)s − 2p + d(k − 1) + 1`` rows. But
``⌊·/s⌋`` in ``H_conv`` maps ``s`` different conv input sizes to the same ``H``,
so the transposed layer cannot know which one to return: ``output_padding``
``q`` chooses, adding ``q`` rows at the bottom (and columns at the right)::

    H_out = (H − 1)s − 2p + d(k − 1) + q + 1

Those rows receive contributions only when ``q ≤ p`` (otherwise the last
``q − p`` hold the bias alone). torch requires ``q < s`` or ``q < d`` on each
axis: for ``q < s`` this is the conv2d input size ``H'`` with ``H_conv = H``
exactly; ``s ≤ q < d`` is the larger size whose extra conv outputs would get a
zero ``δ``.

Backward
========
``y`` is linear in ``x``, ``w`` and ``b``; ``δ`` below is ``∂L/∂y`` and ``δ̄`` is
``δ`` padded with ``p`` zeros on each side (rows ``H_out + 2p``).

Bias. ``∂L/∂b[O] = Σ_n Σ_r Σ_t δ[n, O, r, t]``.

Input. ``x[n, c, i, j]`` reaches ``y[n, O, i s + a d − p, j s + e d − p]`` with
weight ``w[c, O − g·O_g, a, e]`` for every tap ``(a, e)`` and output channel
``O`` of its group::

    ∂L/∂x[n, c, i, j] = Σ_{o < O_g} Σ_a Σ_e δ̄[n, g(c)·O_g + o, i s + a d, j s + e d] · w[c, o, a, e]

That is ``conv2d(δ, w, stride=s, padding=p, dilation=d, groups=G)``: the
forward pass of the convolution the layer transposes, on the upstream
gradient, keeping its first ``H`` rows (it has ``H + ⌊q/s⌋``).

Weight. The same pairs, summed over the batch and the input positions::

    ∂L/∂w[c, o, a, e] = Σ_n Σ_i Σ_j x[n, c, i, j] · δ̄[n, g(c)·O_g + o, i s + a d, j s + e d]

a correlation of ``δ̄`` with ``x`` as the kernel, whose taps are ``s`` apart,
evaluated at the offsets ``(a d, e d)``: conv2d's weight gradient with the
roles of input and upstream gradient exchanged.

Implementations
===============
The loops compute each output element as the gather sum above (the tap ``a``
reaches row ``r`` from input row ``i = (r + p − a d)/s`` when that is a whole
number in ``[0, H)``), and each gradient element as its sum. The vectorized
versions use the window geometry of ``reference_impl/window.py``, with the
output ``y`` in the role of conv2d's input: a :class:`~reference_impl.window.Window`
over the ``H_out × W_out`` output padded by ``p``, whose ``H × W`` window
positions are the input elements. The forward adds, one tap at a time, the
products ``w[:, :, a, e]ᵀ x`` into the stride-``s`` view of the padded output
(:func:`~reference_impl.window.scatter_add`, conv2d's col2im) and crops;
the backward reads the windows of ``δ̄`` (:func:`~reference_impl.window.windows`)
as one patch matrix per image and contracts it with ``w`` (for ``∂L/∂x``) or
with ``x`` (for ``∂L/∂w``), one BLAS product per group.

Reference: Vincent Dumoulin and Francesco Visin, "A guide to convolution
arithmetic for deep learning" (2016, arXiv:1603.07285), chapter 4: §4.1–4.2
(a transposed convolution swaps the forward and backward passes of a
convolution, multiplying by ``Cᵀ`` where the convolution multiplies by ``C``)
and Relationship 14 in §4.6 (the equivalent direct convolution of the input
stretched by ``s − 1`` zeros and padded by ``k − p − 1``, and the
``a = (i + 2p − k) mod s`` zeros added at the bottom and right: torch's
``output_padding``). Dilation and groups follow torch.
"""

from __future__ import annotations

import numpy as np

from reference_impl import window as wnd
from reference_impl._sums import channel_sums
from reference_impl._validation import (
    FloatArray,
    check_grad_output,
    check_ndim,
    check_shape,
    float_array,
    int_pair,
    int_scalar,
    same_dtype,
)
from reference_impl.window import Pair


def output_size(
    size: int, kernel: int, stride: int, padding: int, output_padding: int, dilation: int
) -> int:
    """``(size − 1)·s − 2p + d·(k − 1) + q + 1``: rows (or columns) of the output."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def _arguments(
    x: object,
    weight: object,
    bias: object,
    stride: object,
    padding: object,
    output_padding: object,
    groups: object,
    dilation: object,
) -> tuple[FloatArray, FloatArray, FloatArray | None, int, wnd.Window]:
    """Validate a forward or backward call; return the arrays, groups and the window.

    The window is conv2d's, with the output ``y`` (padded by ``p``) as its
    input and the ``H × W`` input positions as its windows.
    """
    x = float_array("x", x)
    weight = float_array("weight", weight)
    bias = None if bias is None else float_array("bias", bias)
    same_dtype(x=x, weight=weight, bias=bias)
    check_ndim("x", x, 4)
    check_ndim("weight", weight, 4)
    stride_hw = int_pair("stride", stride, 1)
    padding_hw = int_pair("padding", padding, 0)
    extra_hw = int_pair("output_padding", output_padding, 0)
    dilation_hw = int_pair("dilation", dilation, 1)
    n_groups = int_scalar("groups", groups, 1)
    c_in, (c_w, c_out_group, kh, kw) = x.shape[1], weight.shape
    if c_in % n_groups:
        raise ValueError(f"groups={n_groups} must divide the input channels of x ({c_in})")
    if c_w != c_in:
        raise ValueError(
            f"weight has {c_w} input channels (weight.shape[0], layout (C_in, C_out / groups, "
            f"kh, kw)), but x has {c_in}"
        )
    if min(c_out_group, kh, kw) < 1:
        raise ValueError(
            f"weight must have at least one output channel and a 1x1 kernel, got {weight.shape}"
        )
    for axis, q, s, d in zip("hw", extra_hw, stride_hw, dilation_hw, strict=True):
        if q >= max(s, d):
            raise ValueError(
                f"output_padding must be smaller than either stride or dilation on each axis, "
                f"got output_padding={extra_hw}, stride={stride_hw}, dilation={dilation_hw} "
                f"(axis {axis})"
            )
    if bias is not None:
        check_ndim("bias", bias, 1)
        check_shape("bias", bias, (c_out_group * n_groups,))
    size = x.shape[2:]
    out = tuple(
        output_size(n, k, s, p, q, d)
        for n, k, s, p, q, d in zip(
            size, (kh, kw), stride_hw, padding_hw, extra_hw, dilation_hw, strict=True
        )
    )
    if min(out) < 1:
        raise ValueError(
            f"padding={padding_hw} crops the whole output: (H − 1)·stride − 2·padding + "
            f"dilation·(k − 1) + output_padding + 1 gives {out} for x of size {size}"
        )
    axes = [
        wnd.Axis(size=o, kernel=k, stride=s, dilation=d, before=p, after=p, out=n)
        for o, k, s, d, p, n in zip(
            out, (kh, kw), stride_hw, dilation_hw, padding_hw, size, strict=True
        )
    ]
    return x, weight, bias, n_groups, wnd.Window(axes[0], axes[1])


def _out_shape(x: FloatArray, weight: FloatArray, groups: int, win: wnd.Window) -> tuple[int, ...]:
    return (x.shape[0], weight.shape[1] * groups, win.h.size, win.w.size)


# --------------------------------------------------------------------------- #
# Explicit loops
# --------------------------------------------------------------------------- #


def conv_transpose2d_loop(
    x: FloatArray,
    weight: FloatArray,
    bias: FloatArray | None = None,
    stride: Pair = 1,
    padding: Pair = 0,
    output_padding: Pair = 0,
    groups: int = 1,
    dilation: Pair = 1,
) -> FloatArray:
    """Forward pass, one output element at a time, as the gather sum reads::

        y[n, O, r, t] = b[O] + Σ_c Σ_a Σ_e x[n, c, i, j] · w[c, O − g·O_g, a, e]
                        with i = (r + p_h − a·d_h) / s_h and j = (t + p_w − e·d_w) / s_w

    over the input channels ``c`` of ``O``'s group and the taps for which ``i``
    and ``j`` are whole numbers inside the input. Arguments in torch's order
    (``groups`` before ``dilation``); see the module docstring.
    """
    x, weight, bias, groups, win = _arguments(
        x, weight, bias, stride, padding, output_padding, groups, dilation
    )
    (batch, _, h, w), (_, c_out_g, kh, kw) = x.shape, weight.shape
    c_g = x.shape[1] // groups
    y = np.zeros(_out_shape(x, weight, groups, win), dtype=x.dtype)
    for n in range(batch):
        for channel in range(y.shape[1]):
            group, o = divmod(channel, c_out_g)
            for r in range(win.h.size):
                for t in range(win.w.size):
                    total = 0.0 if bias is None else float(bias[channel])
                    for c in range(group * c_g, (group + 1) * c_g):
                        for a in range(kh):
                            i, row_offset = divmod(
                                r + win.h.before - a * win.h.dilation, win.h.stride
                            )
                            if row_offset != 0 or not 0 <= i < h:
                                continue
                            for e in range(kw):
                                j, col_offset = divmod(
                                    t + win.w.before - e * win.w.dilation, win.w.stride
                                )
                                if col_offset != 0 or not 0 <= j < w:
                                    continue
                                total += float(x[n, c, i, j]) * float(weight[c, o, a, e])
                    y[n, channel, r, t] = total
    return y


def conv_transpose2d_backward_loop(
    grad_output: FloatArray,
    x: FloatArray,
    weight: FloatArray,
    bias: FloatArray | None = None,
    stride: Pair = 1,
    padding: Pair = 0,
    output_padding: Pair = 0,
    groups: int = 1,
    dilation: Pair = 1,
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    """Backward pass by the chain rule; returns ``(grad_input, grad_weight, grad_bias)``.

    With ``δ̄[n, O, ρ, τ]`` the upstream gradient at output row ``ρ − p_h`` and
    column ``τ − p_w`` (zero outside the output):

    * ``grad_bias[O] = Σ_{n, r, t} δ[n, O, r, t]`` (``None`` without a bias);
    * ``grad_weight[c, o, a, e] = Σ_{n, i, j} x[n, c, i, j] · δ̄[n, g(c)·O_g + o, i s_h + a d_h,
      j s_w + e d_w]``;
    * ``grad_input[n, c, i, j] = Σ_{o, a, e} δ̄[n, g(c)·O_g + o, i s_h + a d_h, j s_w + e d_w]
      · w[c, o, a, e]``: conv2d's forward on ``δ``.
    """
    x, weight, bias, groups, win = _arguments(
        x, weight, bias, stride, padding, output_padding, groups, dilation
    )
    grad_output = check_grad_output(grad_output, _out_shape(x, weight, groups, win), x)
    (batch, c_in, h, w), (_, c_out_g, kh, kw) = x.shape, weight.shape
    c_g = c_in // groups
    h_out, w_out = win.h.size, win.w.size

    def delta(n: int, channel: int, row: int, col: int) -> float:
        """``δ̄`` at padded position ``(row, col)``: zero in the cropped border."""
        r, t = row - win.h.before, col - win.w.before
        return float(grad_output[n, channel, r, t]) if 0 <= r < h_out and 0 <= t < w_out else 0.0

    grad_bias = None
    if bias is not None:
        grad_bias = np.zeros_like(bias)
        for channel in range(bias.shape[0]):
            total = 0.0
            for n in range(batch):
                for r in range(h_out):
                    for t in range(w_out):
                        total += float(grad_output[n, channel, r, t])
            grad_bias[channel] = total

    grad_weight = np.zeros_like(weight)
    for c in range(c_in):
        first_output = (c // c_g) * c_out_g
        for o in range(c_out_g):
            for a in range(kh):
                for e in range(kw):
                    total = 0.0
                    for n in range(batch):
                        for i in range(h):
                            for j in range(w):
                                row, col = (
                                    i * win.h.stride + a * win.h.dilation,
                                    j * win.w.stride + e * win.w.dilation,
                                )
                                total += float(x[n, c, i, j]) * delta(n, first_output + o, row, col)
                    grad_weight[c, o, a, e] = total

    grad_input = np.zeros_like(x)
    for n in range(batch):
        for c in range(c_in):
            first_output = (c // c_g) * c_out_g
            for i in range(h):
                for j in range(w):
                    total = 0.0
                    for o in range(c_out_g):
                        for a in range(kh):
                            for e in range(kw):
                                row, col = (
                                    i * win.h.stride + a * win.h.dilation,
                                    j * win.w.stride + e * win.w.dilation,
                                )
                                total += delta(n, first_output + o, row, col) * float(
                                    weight[c, o, a, e]
                                )
                    grad_input[n, c, i, j] = total

    return grad_input, grad_weight, grad_bias


# --------------------------------------------------------------------------- #
# Vectorized
# --------------------------------------------------------------------------- #


def _patches(grad_output: FloatArray, win: wnd.Window) -> FloatArray:
    """``(N, C_out·kh·kw, H·W)``: column ``(i, j)`` holds ``δ̄`` at every tap of input ``(i, j)``.

    The windows of the padded ``δ̄`` (one strided view, no data moved) with their
    tap axes before the position axes, made contiguous: conv2d's ``im2col``.
    """
    view = wnd.windows(wnd.pad(grad_output, win), win).transpose(0, 1, 4, 5, 2, 3)
    cols: FloatArray = np.ascontiguousarray(view)
    return cols.reshape(grad_output.shape[0], -1, win.h.out * win.w.out)


def conv_transpose2d_vectorized(
    x: FloatArray,
    weight: FloatArray,
    bias: FloatArray | None = None,
    stride: Pair = 1,
    padding: Pair = 0,
    output_padding: Pair = 0,
    groups: int = 1,
    dilation: Pair = 1,
) -> FloatArray:
    """Forward pass as a scatter of one matrix product per kernel tap (col2im).

    For tap ``(a, e)`` and group ``g``, ``w[:, :, a, e]_gᵀ @ X[n]_g`` (``X[n]`` is
    ``x[n]`` viewed as ``(C_in, H·W)``) holds, in row ``o`` and column ``(i, j)``,
    ``Σ_c x[n, c, i, j]·w[c, o, a, e]``: the contribution of input ``(i, j)`` to
    padded output position ``(i s_h + a d_h, j s_w + e d_w)``. It is added into
    that stride-``s`` view of a zero buffer of ``H_out + 2p_h`` rows, taps one at
    a time so that overlapping footprints add up; the border ``p`` is cropped
    and the bias broadcast over ``(n, r, t)``.
    """
    x, weight, bias, groups, win = _arguments(
        x, weight, bias, stride, padding, output_padding, groups, dilation
    )
    batch, c_in = x.shape[:2]
    c_g, c_out_g = c_in // groups, weight.shape[1]
    inputs = x.reshape(batch, c_in, -1)
    # taps[a, e] is w[:, :, a, e]ᵀ, of shape (C_out / groups, C_in); group g is a column block
    taps = weight.transpose(2, 3, 1, 0)

    def tap_values(a: int, e: int) -> FloatArray:
        products = [
            np.matmul(taps[a, e, :, g * c_g : (g + 1) * c_g], inputs[:, g * c_g : (g + 1) * c_g])
            for g in range(groups)
        ]
        joined = products[0] if groups == 1 else np.concatenate(products, axis=1)
        return joined.reshape(batch, c_out_g * groups, *win.out)

    buffer = np.zeros((batch, c_out_g * groups, win.h.padded, win.w.padded), dtype=x.dtype)
    wnd.scatter_add(buffer, win, tap_values)
    y = np.ascontiguousarray(wnd.crop(buffer, win))
    if bias is not None:
        y += bias[:, None, None]
    return y


def conv_transpose2d_backward_vectorized(
    grad_output: FloatArray,
    x: FloatArray,
    weight: FloatArray,
    bias: FloatArray | None = None,
    stride: Pair = 1,
    padding: Pair = 0,
    output_padding: Pair = 0,
    groups: int = 1,
    dilation: Pair = 1,
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    """Backward pass in closed form; returns ``(grad_input, grad_weight, grad_bias)``.

    Let ``D[n]`` be the patch matrix of ``δ̄`` (shape ``(C_out·kh·kw, H·W)``,
    column ``(i, j)`` holding ``δ̄[n, O, i s_h + a d_h, j s_w + e d_w]`` in row
    ``(O, a, e)``) and ``W_g`` group ``g``'s weight viewed as
    ``(C_g, O_g·kh·kw)``, a free reshape. Then, per group:

    * ``∂L/∂x[n]_g = W_g @ D[n]_g``: conv2d's forward (im2col) on ``δ``;
    * ``∂L/∂w_g = Σ_n X[n]_g @ D[n]_gᵀ``: the contraction over ``(n, i, j)``
      of ``x`` with the windows of ``δ̄``;
    * ``∂L/∂b = Σ δ`` over ``(n, r, t)``.
    """
    x, weight, bias, groups, win = _arguments(
        x, weight, bias, stride, padding, output_padding, groups, dilation
    )
    grad_output = check_grad_output(grad_output, _out_shape(x, weight, groups, win), x)
    grad_bias = None if bias is None else channel_sums(grad_output)
    batch, c_in = x.shape[:2]
    c_g, c_out_g = c_in // groups, weight.shape[1]
    patches = _patches(grad_output, win)
    rows = c_out_g * weight.shape[2] * weight.shape[3]
    inputs = x.reshape(batch, c_in, -1)
    w_mat = weight.reshape(c_in, rows)
    grad_inputs, grad_weights = [], []
    for g in range(groups):
        d_g = patches[:, g * rows : (g + 1) * rows]
        x_g = inputs[:, g * c_g : (g + 1) * c_g]
        grad_inputs.append(np.matmul(w_mat[g * c_g : (g + 1) * c_g], d_g))
        grad_weights.append(np.matmul(x_g, d_g.transpose(0, 2, 1)).sum(axis=0))
    grad_input = grad_inputs[0] if groups == 1 else np.concatenate(grad_inputs, axis=1)
    grad_weight = grad_weights[0] if groups == 1 else np.concatenate(grad_weights, axis=0)
    return (
        np.ascontiguousarray(grad_input).reshape(x.shape),
        np.ascontiguousarray(grad_weight).reshape(weight.shape),
        grad_bias,
    )
