r"""Two-dimensional convolution (cross-correlation): forward and backward passes.

Notation
========
``x`` has shape ``(N, C_in, H, W)``, ``weight`` has torch's layout
``(C_out, C_in / groups, kh, kw)``, ``bias`` has shape ``(C_out,)``. Stride
``s = (s_h, s_w)``, dilation ``d = (d_h, d_w)`` and padding
``(p_top, p_bottom, p_left, p_right)`` act per axis. Write ``x̄`` for ``x``
surrounded by zeros (``p_top`` rows above, ``p_bottom`` below, and so on), of
size ``H_p × W_p`` with ``H_p = H + p_top + p_bottom``.

With ``G = groups``, the input channels split into ``G`` consecutive blocks of
``C_g = C_in / G`` and the output channels into ``G`` blocks of ``C_out / G``;
output channel ``o`` sees only the input block ``g(o) = o // (C_out / G)``.

Forward
=======
Every output element is one dot product between the kernel and a window of
``x̄`` whose taps are ``d`` apart and whose origin moves by ``s``::

    z[n, o, i, j] = b[o] + Σ_{c < C_g} Σ_{a < kh} Σ_{e < kw}
                    x̄[n, g(o)·C_g + c, i·s_h + a·d_h, j·s_w + e·d_w] · w[o, c, a, e]

The last window must fit inside ``x̄``, which fixes the output size::

    H_out = ⌊(H_p − d_h·(kh − 1) − 1) / s_h⌋ + 1        (likewise W_out)

Padding
=======
``padding`` may be an int (all four sides), ``(p_h, p_w)`` (both sides of an
axis), ``(top, bottom, left, right)``, ``"valid"`` (none) or ``"same"``. For
``"same"`` (stride 1 only) the output keeps the input size, which needs a total
of ``d·(k − 1)`` zeros per axis; like torch, the odd extra row or column goes
to the bottom or right. Hand-derived notes sometimes put it top-left instead;
pass that as an explicit four-sided padding, for example ``(1, 0, 1, 0)``.

Backward
========
Let ``δ = ∂L/∂z`` (``grad_output``). Each parameter receives the sum, over all
outputs it influences, of ``δ`` times the partial derivative of that output.

Bias. ``∂z[n, o, i, j] / ∂b[o] = 1``, so::

    ∂L/∂b[o] = Σ_n Σ_i Σ_j δ[n, o, i, j]

Weight. ``∂z[n, o, i, j] / ∂w[o, c, a, e] = x̄[n, g(o)·C_g + c, i·s_h + a·d_h, j·s_w + e·d_w]``.
The weight of output channel ``o`` touches only outputs of channel ``o``, so
the sum runs over the batch and the output positions, never over channels::

    ∂L/∂w[o, c, a, e] = Σ_n Σ_i Σ_j δ[n, o, i, j] · x̄[n, g(o)·C_g + c, i·s_h + a·d_h, j·s_w + e·d_w]

Read with ``δ`` as the kernel, this is a correlation of ``x̄`` with ``δ``
whose taps are ``s`` apart: ``∂L/∂w = x̄ ⋆ dilate_s(δ)``, evaluated only at
the offsets ``(a·d_h, e·d_w)``. ``dilate_s`` inserts ``s − 1`` zeros between
neighbours, so ``dilate_s(δ)`` has ``(H_out − 1)·s_h + 1`` rows.

Input. An input element ``x̄[n, C, r, q]`` of channel ``C = g·C_g + c`` feeds
every output ``z[n, o, i, j]`` of group ``g`` with ``i·s_h + a·d_h = r`` and
``j·s_w + e·d_w = q`` for some tap ``(a, e)``, with weight ``w[o, c, a, e]``::

    ∂L/∂x̄[n, C, r, q] = Σ_{o in group g} Σ_{(a, i): i·s_h + a·d_h = r}
                        Σ_{(e, j): j·s_w + e·d_w = q} δ[n, o, i, j] · w[o, c, a, e]

and ``∂L/∂x`` is ``∂L/∂x̄`` with the padding rows and columns cropped away.
Substituting ``a → kh − 1 − a`` turns this into a correlation: dilate ``δ`` by
``s``, pad it with ``d·(k − 1)`` zeros on each side (plus, at the bottom/right,
the rows the forward windows never reached), and correlate it, with dilation
``d``, against the kernel rotated by 180° with its two channel axes swapped::

    ∂L/∂x̄ = pad(dilate_s(δ)) ⋆_d rot180(w)ᵀ          ("full" correlation)

Both implementations below evaluate exactly these sums; see the individual
docstrings for how.
"""

from __future__ import annotations

import numpy as np

from reference_impl import window as wnd
from reference_impl._scalars import real
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

Padding = int | tuple[int, int] | tuple[int, int, int, int] | str


def _arguments(
    x: object,
    weight: object,
    bias: object,
    stride: object,
    padding: object,
    dilation: object,
    groups: object,
) -> tuple[FloatArray, FloatArray, FloatArray | None, int, wnd.Window]:
    """Validate every argument of a forward or backward call; return the arrays, groups, window."""
    x = float_array("x", x)
    weight = float_array("weight", weight)
    bias = None if bias is None else float_array("bias", bias)
    same_dtype(x=x, weight=weight, bias=bias)
    check_ndim("x", x, 4)
    check_ndim("weight", weight, 4)
    stride_hw = int_pair("stride", stride, 1)
    dilation_hw = int_pair("dilation", dilation, 1)
    n_groups = int_scalar("groups", groups, 1)
    c_in, (c_out, c_in_group, kh, kw) = x.shape[1], weight.shape
    if c_in % n_groups or c_out % n_groups:
        raise ValueError(
            f"groups={n_groups} must divide both the input channels of x ({c_in}) "
            f"and the output channels of weight ({c_out})"
        )
    if c_in_group * n_groups != c_in:
        raise ValueError(
            f"weight expects {c_in_group * n_groups} input channels "
            f"(weight.shape[1]={c_in_group} times groups={n_groups}), but x has {c_in}"
        )
    if min(kh, kw) < 1:
        raise ValueError(f"weight must have a kernel of at least 1x1, got shape {weight.shape}")
    if bias is not None:
        check_ndim("bias", bias, 1)
        check_shape("bias", bias, (c_out,))
    if isinstance(padding, str) and padding == "same" and stride_hw != (1, 1):
        raise ValueError(f"padding='same' requires stride 1, got stride={stride_hw}")
    sides = wnd.padding_sides(padding, (kh, kw), dilation_hw)
    win = wnd.window(x.shape[2:], (kh, kw), stride_hw, dilation_hw, sides)
    if min(win.out) < 1:
        raise ValueError(
            f"the dilated kernel of weight ({dilation_hw[0] * (kh - 1) + 1}x"
            f"{dilation_hw[1] * (kw - 1) + 1}) is larger than the padded input x "
            f"({win.h.padded}x{win.w.padded})"
        )
    return x, weight, bias, n_groups, win


def _out_shape(x: FloatArray, weight: FloatArray, win: wnd.Window) -> tuple[int, ...]:
    return (x.shape[0], weight.shape[0], *win.out)


def dilate2d(array: FloatArray, stride: Pair) -> FloatArray:
    """Insert ``s − 1`` zeros between neighbours along the last two axes.

    A length ``L`` becomes ``(L − 1)·s + 1``. This is how a stride of the
    forward pass reappears in the backward pass.
    """
    array = float_array("array", array)
    s_h, s_w = int_pair("stride", stride, 1)
    h, w = array.shape[-2:]
    out = np.zeros((*array.shape[:-2], (h - 1) * s_h + 1, (w - 1) * s_w + 1), dtype=array.dtype)
    out[..., ::s_h, ::s_w] = array
    return out


# --------------------------------------------------------------------------- #
# Explicit loops
# --------------------------------------------------------------------------- #


def conv2d_loop(
    x: FloatArray,
    weight: FloatArray,
    bias: FloatArray | None = None,
    stride: Pair = 1,
    padding: Padding = 0,
    dilation: Pair = 1,
    groups: int = 1,
) -> FloatArray:
    """Forward pass, one output element at a time, exactly as the index sum reads::

        z[n, o, i, j] = b[o] + Σ_c Σ_a Σ_e w[o, c, a, e]
                               · x̄[n, g(o)·C_g + c, i·s_h + a·d_h, j·s_w + e·d_w]

    See the module docstring for the notation and the padding forms.
    """
    x, weight, bias, groups, win = _arguments(x, weight, bias, stride, padding, dilation, groups)
    x_bar = wnd.pad(x, win)
    (s_h, d_h), (s_w, d_w) = (win.h.stride, win.h.dilation), (win.w.stride, win.w.dilation)
    c_out, c_g, kh, kw = weight.shape
    z = np.zeros(_out_shape(x, weight, win), dtype=x.dtype)
    for n in range(x.shape[0]):
        for o in range(c_out):
            first_channel = (o // (c_out // groups)) * c_g
            for i in range(win.h.out):
                for j in range(win.w.out):
                    total = 0.0 if bias is None else real(bias[o])
                    for c in range(c_g):
                        for a in range(kh):
                            for e in range(kw):
                                row, col = i * s_h + a * d_h, j * s_w + e * d_w
                                x_value = real(x_bar[n, first_channel + c, row, col])
                                total += x_value * real(weight[o, c, a, e])
                    z[n, o, i, j] = total
    return z


def conv2d_backward_loop(
    grad_output: FloatArray,
    x: FloatArray,
    weight: FloatArray,
    bias: FloatArray | None = None,
    stride: Pair = 1,
    padding: Padding = 0,
    dilation: Pair = 1,
    groups: int = 1,
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    """Backward pass by the index-level chain rule.

    Returns ``(grad_input, grad_weight, grad_bias)``:

    * ``grad_bias[o]`` sums ``δ[n, o, i, j]`` over the batch and output positions.
    * ``grad_weight[o, c, a, e]`` gathers ``δ[n, o, i, j] · x̄[n, g(o)·C_g + c, i·s_h + a·d_h,
      j·s_w + e·d_w]`` over the batch and output positions (never over channels).
    * ``grad_input[n, C, r, q]`` gathers, from every output ``z[n, o, i, j]`` that the
      padded position ``(r + p_top, q + p_left)`` feeds, ``δ[n, o, i, j] · w[o, c, a, e]``:
      for each tap ``a``, the position lies in window row ``i = (r + p_top − a·d_h) / s_h``
      when that is a whole number in ``[0, H_out)`` (likewise for columns).

    ``grad_bias`` is ``None`` when ``bias`` is ``None``.
    """
    x, weight, bias, groups, win = _arguments(x, weight, bias, stride, padding, dilation, groups)
    grad_output = check_grad_output(grad_output, _out_shape(x, weight, win), x)
    x_bar = wnd.pad(x, win)
    (s_h, d_h), (s_w, d_w) = (win.h.stride, win.h.dilation), (win.w.stride, win.w.dilation)
    top, left = win.h.before, win.w.before
    (batch, c_in, h, w), (c_out, c_g, kh, kw) = x.shape, weight.shape
    c_out_g = c_out // groups

    grad_bias = None
    if bias is not None:
        grad_bias = np.zeros_like(bias)
        for o in range(c_out):
            total = 0.0
            for n in range(batch):
                for i in range(win.h.out):
                    for j in range(win.w.out):
                        total += real(grad_output[n, o, i, j])
            grad_bias[o] = total

    grad_weight = np.zeros_like(weight)
    for o in range(c_out):
        first_channel = (o // c_out_g) * c_g
        for c in range(c_g):
            for a in range(kh):
                for e in range(kw):
                    total = 0.0
                    for n in range(batch):
                        for i in range(win.h.out):
                            for j in range(win.w.out):
                                row, col = i * s_h + a * d_h, j * s_w + e * d_w
                                x_value = real(x_bar[n, first_channel + c, row, col])
                                total += real(grad_output[n, o, i, j]) * x_value
                    grad_weight[o, c, a, e] = total

    grad_input = np.zeros_like(x)
    for n in range(batch):
        for channel in range(c_in):
            group, c = divmod(channel, c_g)
            outputs = range(group * c_out_g, (group + 1) * c_out_g)
            for r in range(h):
                for q in range(w):
                    total = 0.0
                    for a in range(kh):
                        i, row_offset = divmod(r + top - a * d_h, s_h)
                        if row_offset != 0 or not 0 <= i < win.h.out:
                            continue
                        for e in range(kw):
                            j, col_offset = divmod(q + left - e * d_w, s_w)
                            if col_offset != 0 or not 0 <= j < win.w.out:
                                continue
                            for o in outputs:
                                total += real(grad_output[n, o, i, j]) * real(weight[o, c, a, e])
                    grad_input[n, channel, r, q] = total

    return grad_input, grad_weight, grad_bias


# --------------------------------------------------------------------------- #
# Vectorized
# --------------------------------------------------------------------------- #


def _im2col(x: FloatArray, win: wnd.Window) -> FloatArray:
    """The patch tensor ``X_col`` of shape ``(N, C_in·kh·kw, H_out·W_out)``, built with one copy.

    Entry ``[n, (c, a, e), (i, j)]`` is ``x̄[n, c, i·s_h + a·d_h, j·s_w + e·d_w]``: the
    window view of ``x̄`` (no data moved) with its tap axes moved before the
    output axes, made contiguous. For a 1×1 kernel with stride 1 and no padding
    the view already is contiguous and nothing is copied.
    """
    view = wnd.windows(wnd.pad(x, win), win).transpose(0, 1, 4, 5, 2, 3)
    cols: FloatArray = np.ascontiguousarray(view)
    return cols.reshape(x.shape[0], -1, win.h.out * win.w.out)


def _blocks(array: FloatArray, groups: int, axis: int) -> list[FloatArray]:
    """Split ``array`` along ``axis`` into ``groups`` equal consecutive blocks (views)."""
    size = array.shape[axis] // groups
    index: list[slice] = [slice(None)] * array.ndim
    blocks = []
    for g in range(groups):
        index[axis] = slice(g * size, (g + 1) * size)
        blocks.append(array[tuple(index)])
    return blocks


def _join(blocks: list[FloatArray], axis: int) -> FloatArray:
    """Concatenate per-group results along ``axis`` (no copy for a single group)."""
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=axis)


def conv2d_vectorized(
    x: FloatArray,
    weight: FloatArray,
    bias: FloatArray | None = None,
    stride: Pair = 1,
    padding: Padding = 0,
    dilation: Pair = 1,
    groups: int = 1,
) -> FloatArray:
    """Forward pass as a BLAS matrix product per group (im2col).

    The index sum contracts ``(c, a, e)`` between the kernel and one window
    of ``x̄``. Lay the kernel out as ``W_mat`` of shape ``(C_out, C_g·kh·kw)``
    (a free reshape of torch's layout) and the windows of image ``n`` as the
    columns of ``X_col[n]`` (shape ``(C_in·kh·kw, H_out·W_out)``, copied once
    from a strided view of ``x̄``). Then, for group ``g`` (rows of ``W_mat``
    and of ``X_col[n]`` restricted to that group's block)::

        Z[n]_g = W_mat_g @ X_col[n]_g

    ``numpy.matmul`` broadcasts ``W_mat_g`` over the batch and hands every
    product to BLAS. ``Z`` of shape ``(N, C_out, H_out·W_out)`` already is
    ``z`` in NCHW order; the bias is broadcast over ``(n, i, j)``.
    """
    x, weight, bias, groups, win = _arguments(x, weight, bias, stride, padding, dilation, groups)
    cols = _im2col(x, win)
    w_blocks = _blocks(weight.reshape(weight.shape[0], -1), groups, axis=0)
    col_blocks = _blocks(cols, groups, axis=1)
    out = _join([np.matmul(w_g, c_g) for w_g, c_g in zip(w_blocks, col_blocks, strict=True)], 1)
    del cols, col_blocks
    if bias is not None:
        out += bias[:, None]
    return out.reshape(_out_shape(x, weight, win))


def conv2d_backward_vectorized(
    grad_output: FloatArray,
    x: FloatArray,
    weight: FloatArray,
    bias: FloatArray | None = None,
    stride: Pair = 1,
    padding: Padding = 0,
    dilation: Pair = 1,
    groups: int = 1,
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    """Backward pass in closed form; returns ``(grad_input, grad_weight, grad_bias)``.

    Let ``Δ[n]`` be ``grad_output[n]`` viewed as ``(C_out, H_out·W_out)`` (a free
    reshape, with the same column order as ``X_col[n]`` of
    :func:`conv2d_vectorized`). Per group ``g``:

    * ``∂L/∂b = Σ δ`` over ``(n, i, j)``.
    * ``∂L/∂w = x̄ ⋆ dilate_s(δ)``. Column ``(i, j)`` of ``X_col[n]`` holds the
      values ``x̄[n, c, i·s_h + a·d_h, j·s_w + e·d_w]``: exactly the entries of
      ``x̄`` that the ``s``-dilated ``δ`` meets when placed at kernel offset
      ``(a·d_h, e·d_w)``. The correlation is therefore the contraction over
      ``(n, i, j)``, ``Σ_n Δ[n]_g @ X_col[n]_gᵀ``, in ``weight``'s layout.
    * ``∂L/∂x = crop(pad(dilate_s(δ)) ⋆_d rot180(w)ᵀ)``: dilate ``δ`` by the
      stride, pad it with ``d·(k − 1)`` zeros on every side (plus, bottom and
      right, any rows and columns the forward windows never reached), correlate
      it with dilation ``d`` against the kernel rotated by 180° with its channel
      axes swapped, then crop the forward padding. This routine evaluates the
      same sum in its scattered (col2im) form, which never multiplies the
      inserted zeros: for each tap ``(a, e)``, the product
      ``w[:, :, a, e]_gᵀ @ Δ[n]_g`` holds, in row ``c`` and column ``(i, j)``,
      the term ``Σ_o w[o, c, a, e] · δ[n, o, i, j]`` destined for
      ``x̄[n, c, i·s_h + a·d_h, j·s_w + e·d_w]``; it is added into the stride-``s``
      view of ``∂L/∂x̄`` that starts at ``(a·d_h, e·d_w)``. One tap at a time
      keeps the intermediate ``kh·kw`` times smaller than the patch tensor.

      Equivalence: the full correlation computes, at padded row ``r``,
      ``Σ_a dilate_s(δ)[r − a·d_h] · w[a]``; after the substitution
      ``a → kh − 1 − a`` this is written with ``rot180(w)`` and a ``δ`` shifted by
      ``d·(kh − 1)`` rows, which is what the padding provides. Its non-zero terms
      are the pairs ``(i, a)`` with ``i·s_h + a·d_h = r``, the very pairs the
      scatter visits, only enumerated by tap instead of by destination; columns
      work the same way. Python loops run over the groups and the taps only.
    """
    x, weight, bias, groups, win = _arguments(x, weight, bias, stride, padding, dilation, groups)
    grad_output = check_grad_output(grad_output, _out_shape(x, weight, win), x)
    grad_bias = None if bias is None else grad_output.sum(axis=(0, 2, 3), dtype=x.dtype)
    batch, c_in = x.shape[:2]
    delta = grad_output.reshape(batch, weight.shape[0], -1)
    delta_blocks = _blocks(delta, groups, axis=1)

    cols = _im2col(x, win)
    col_blocks = _blocks(cols, groups, axis=1)
    # Σ_n X_col[n]_g @ Δ[n]_gᵀ is (∂L/∂w_g)ᵀ; this operand order is the faster BLAS call.
    grad_weight_t = _join(
        [
            np.matmul(c_g, d_g.transpose(0, 2, 1)).sum(axis=0)
            for d_g, c_g in zip(delta_blocks, col_blocks, strict=True)
        ],
        1,
    )
    grad_weight = np.ascontiguousarray(grad_weight_t.T).reshape(weight.shape)
    del cols, col_blocks

    # w_taps[a, e] is w[:, :, a, e]ᵀ, of shape (C_g, C_out); its group blocks are columns.
    w_taps = weight.transpose(2, 3, 1, 0)

    def tap_values(a: int, e: int) -> FloatArray:
        w_blocks = _blocks(w_taps[a, e], groups, axis=1)
        products = [np.matmul(w_g, d_g) for w_g, d_g in zip(w_blocks, delta_blocks, strict=True)]
        return _join(products, 1).reshape(batch, c_in, *win.out)

    if w_taps.shape[:2] == (1, 1) and win.out == x.shape[2:] == (win.h.padded, win.w.padded):
        # One tap that lands on every input position: no scatter needed.
        return tap_values(0, 0), grad_weight, grad_bias
    grad_x_bar = np.zeros((batch, c_in, win.h.padded, win.w.padded), dtype=x.dtype)
    wnd.scatter_add(grad_x_bar, win, tap_values)
    return wnd.crop(grad_x_bar, win), grad_weight, grad_bias
