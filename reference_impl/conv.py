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

from typing import Any

import numpy as np

from reference_impl import window as wnd
from reference_impl._scalars import real
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


#: Bytes of the patch-matrix block that one pass of the vectorized functions
#: builds and multiplies: about half of a core's L2 cache, so that the copy, the
#: products and the scatter of a block find it in cache. On the shared benchmark
#: machine, GEMMs on whole-batch patch matrices of tens of MB ran at 0.8 of their
#: in-cache rate when it was quiet and at a third when it was busy.
BLOCK_BYTES = 2**21

#: A patch matrix larger than this is split into at least two blocks.
SPLIT_BYTES = 2**20

#: What NumPy's per-run overhead costs, in elements: a strided copy or addition
#: of ``m`` elements in runs of ``r`` costs about ``m·(1 + RUN_COST/r)`` (a copy
#: pays about 24 elements per run, an addition about 70, on the benchmark machine).
RUN_COST = 32

#: What a transposed copy costs per element, in elements of a contiguous copy.
TRANSPOSE_COST = 2

#: ``X_col_g Δ_gᵀ = (Δ_g X_col_gᵀ)ᵀ`` is the faster BLAS call for the weight
#: gradient (up to twice as fast for few output channels), but its result must
#: then be transposed; from this many windows on, the product dominates.
TRANSPOSED_DW_WINDOWS = 256


#: From this many output positions per image on, the forward multiplies image by
#: image (:func:`_forward_by_image`): each product then writes its image's NCHW
#: output where it belongs, sparing the transposed copy of the output that the
#: whole-batch blocks need. Below it, one BLAS call per image costs more than that
#: copy. Measured on 17 geometries (groups 1 to 64, kernels 3 to 7, strides 1
#: to 3), forward time by image / by whole-batch blocks: 0.67–1.04 from 256
#: positions on (0.87 in the median), 1.03 at 14×14, 1.13 (float32) at 8×8.
IMAGE_COLUMNS = 256


def _matmul(a: FloatArray, b: FloatArray, out: FloatArray | None = None) -> FloatArray:
    """``a @ b`` (stacked); a contraction of length 1 is an outer product, done as a broadcast.

    NumPy hands a contraction of length 1 to its own slow loop instead of BLAS.
    """
    if a.shape[-1] == 1:
        return np.multiply(a, b, out=out)
    return np.matmul(a, b, out=out)


def _pointwise(weight: FloatArray, win: wnd.Window) -> bool:
    """A 1×1 kernel at unit stride without padding: the patch matrix of image ``n`` is ``x[n]``."""
    axes = (win.h, win.w)
    return all(a.kernel == 1 and a.stride == 1 and a.before == a.after == 0 for a in axes)


def _image_blocks(n: int, image_bytes: int) -> list[tuple[int, int]]:
    """Consecutive ranges of images holding about :data:`BLOCK_BYTES` each (at least one image)."""
    count = max(1, min(n, -(-n * image_bytes // BLOCK_BYTES)))
    size = -(-n // count)
    return [(i, min(i + size, n)) for i in range(0, n, size)]


#: How each layout (see :class:`_Layout`) stores an ``(N, C, H, W)`` array:
#: its axes in memory order.
_STORAGE = {"image": (0, 1, 2, 3), "batch": (1, 2, 3, 0)}
#: How each layout stores a block of the patch matrix: the axes, in memory
#: order, of the grouped window view ``(n, g, c, i, j, a, e)`` that is
#: ``x̄[n, g·C_g + c, i·s_h + a·d_h, j·s_w + e·d_w]``.
_PATCHES = {
    "image": (1, 2, 5, 6, 0, 3, 4),  # (g, c, a, e | n, i, j): rows (c, a, e) per group
    "batch": (1, 2, 5, 6, 3, 4, 0),  # (g, c, a, e | i, j, n)
}


class _Layout:
    """How the vectorized functions store ``x̄`` and the patch matrix, and in what blocks.

    The patch matrix of a block of output rows ``i0 ≤ i < i1`` has one row per
    kernel entry ``(c, a, e)`` of a group (channel-major, so each group's rows
    are one consecutive block) and one column per window ``(n, i, j)``. NumPy
    copies and adds strided arrays in runs along their last contiguous axis
    and pays a fixed cost per run, so the column order is chosen to make the
    copies of the patch matrix (twice) and its scatter (once) run long:

    * ``"image"``, columns ``(n, i, j)``: ``x̄`` is ``(N, C, H_p, W_p)`` as
      :func:`reference_impl.window.pad` makes it; runs of ``W_out``;
    * ``"batch"``, columns ``(i, j, n)``: ``x̄`` is stored ``(C, H_p, W_p, N)``;
      runs of ``W_out·N`` at unit stride along the width, else ``N``. This
      needs transposed copies of ``x``, of the output, of ``δ`` and of
      ``∂L/∂x``, each a fraction of the patch matrix.

    :data:`RUN_COST` and :data:`TRANSPOSE_COST` weigh one against the other.
    Every array keeps the ``(N, C, H, W)`` axis order as a view, so the
    window view, the scatter and the crop work unchanged on both.
    """

    def __init__(self, x: FloatArray, weight: FloatArray, groups: int, win: wnd.Window) -> None:
        n, c_in = x.shape[:2]
        c_out, c_g, kh, kw = weight.shape
        w_out = win.w.out
        self.n, self.c_in, self.groups, self.c_g, self.win = n, c_in, groups, c_g, win
        patches = c_in * kh * kw * n * win.h.out * w_out
        moved = TRANSPOSE_COST * 2 * (x.size + n * c_out * win.h.out * w_out)
        batch_run = n * w_out if win.w.stride == 1 else n
        costs = {
            "image": float(patches * (3 + 3 * RUN_COST / w_out)),
            "batch": float(patches * (3 + 3 * RUN_COST / batch_run) + moved),
        }
        self.order = self.choose(costs)
        row_bytes = c_in * kh * kw * n * w_out * x.itemsize
        total = win.h.out * row_bytes
        # blocks of at most BLOCK_BYTES, and at least two past SPLIT_BYTES (so that a
        # block, x̄ and ∂L/∂x̄ together stay within two patch matrices), of equal rows
        count = max(-(-total // BLOCK_BYTES), 2 if total > SPLIT_BYTES else 1)
        rows = -(-win.h.out // min(count, win.h.out))
        self.blocks = [(i, min(i + rows, win.h.out)) for i in range(0, win.h.out, rows)]
        self.block_columns = rows * w_out * n

    def choose(self, costs: dict[str, float]) -> str:
        """The cheapest layout."""
        return min(costs, key=lambda k: costs[k])

    def buffer(self, dtype: np.dtype[Any], zeros: bool, padded: bool = True) -> FloatArray:
        """A ``(N, C, H_p, W_p)`` (or unpadded ``(N, C, H, W)``) array in this layout, as a view."""
        axis_h, axis_w = self.win.h, self.win.w
        h, w = (axis_h.padded, axis_w.padded) if padded else (axis_h.size, axis_w.size)
        shape = (self.n, self.c_in, h, w)
        axes = _STORAGE[self.order]
        stored = tuple(shape[a] for a in axes)
        buf = np.zeros(stored, dtype) if zeros else np.empty(stored, dtype)
        view: FloatArray = buf.transpose(np.argsort(axes))
        return view

    def padded(self, x: FloatArray) -> FloatArray:
        """``x̄`` in this layout (``x`` itself when image-major and unpadded)."""
        if self.order == "image":
            return wnd.pad(x, self.win)
        return wnd.pad(x, self.win, out=self.buffer(x.dtype, zeros=False))

    def grouped(self, array: FloatArray) -> FloatArray:
        """An ``(N, C, …)`` array as an ``(N, G, C_g, …)`` view."""
        view: FloatArray = array.reshape(array.shape[0], self.groups, -1, *array.shape[2:])
        return view

    def staging(self, per_column: int, dtype: np.dtype[Any]) -> FloatArray:
        """Memory for ``per_column`` values per column of the largest block, reused by all."""
        return np.empty(per_column * self.block_columns, dtype)

    def patch_block(self, staging: FloatArray, windows: FloatArray) -> FloatArray:
        """Copy a block of the window view ``(N, C, rows, W_out, kh, kw)`` into ``staging``.

        Returns the block's storage, axes ordered as in ``_PATCHES`` (whose ``c``
        is split into ``(g, c)``).
        """
        view = windows.reshape(self.n, self.groups, self.c_g, *windows.shape[2:])
        view = view.transpose(_PATCHES[self.order])
        block: FloatArray = staging[: view.size].reshape(view.shape)
        np.copyto(block, view)
        return block

    def operand(self, block: FloatArray) -> FloatArray:
        """A patch block as stacked matrices ``(G, K_g, P_b)``."""
        return block.reshape(self.groups, -1, int(np.prod(block.shape[4:])))

    def values(self, block: FloatArray, a: int, e: int) -> FloatArray:
        """Tap ``(a, e)`` of a block laid out like the patches, as ``(N, G, C_g, rows, W_out)``."""
        order = (2, 0, 1, 3, 4) if self.order == "image" else (4, 0, 1, 2, 3)
        view: FloatArray = block[:, :, a, e].transpose(order)
        return view

    def products(self, staging: FloatArray, per_group: int, rows: int) -> FloatArray:
        """Product memory of a block: ``(G, per_group, P_b)``."""
        shape = (self.groups, per_group, self.n * rows * self.win.w.out)
        return staging[: int(np.prod(shape))].reshape(shape)

    def as_grouped_nchw(self, product: FloatArray, rows: int) -> FloatArray:
        """Stacked product memory of a block as an ``(N, G, per_group, rows, W_out)`` view."""
        g, w_out, n = self.groups, self.win.w.out, self.n
        if self.order == "image":
            view: FloatArray = product.reshape(g, -1, n, rows, w_out).transpose(2, 0, 1, 3, 4)
        else:
            view = product.reshape(g, -1, rows, w_out, n).transpose(4, 0, 1, 2, 3)
        return view


def _image_blocks_of_rows(n: int, h_out: int, row_bytes: int) -> list[tuple[int, int, int, int]]:
    """Blocks ``(n0, n1, i0, i1)`` of patches within BLOCK_BYTES (whole images if one fits)."""
    image_bytes = h_out * row_bytes
    if image_bytes <= BLOCK_BYTES:
        return [(n0, n1, 0, h_out) for n0, n1 in _image_blocks(n, image_bytes)]
    rows = max(1, BLOCK_BYTES // row_bytes)
    return [
        (image, image + 1, i0, min(i0 + rows, h_out))
        for image in range(n)
        for i0 in range(0, h_out, rows)
    ]


def _forward_by_image(
    x: FloatArray, weight: FloatArray, bias: FloatArray | None, groups: int, win: wnd.Window
) -> FloatArray:
    """``Z_g[n] = W_mat_g @ X_col_g[n]`` for each image ``n``, written in place in NCHW.

    The patch matrix of image ``n`` has one column per output position ``(i, j)``
    of that image, so its product with ``W_mat_g`` is ``z[n, group g]`` as a
    ``(C_out/G, H_out·W_out)`` matrix: the product is written straight into the
    output. Images are taken a block at a time (all of an image's rows when they
    fit in :data:`BLOCK_BYTES`, else blocks of its rows), copied from the window
    view into one staging buffer and multiplied as one stacked call.
    """
    n, c_in = x.shape[:2]
    c_out, c_g, kh, kw = weight.shape
    h_out, w_out = win.h.out, win.w.out
    windows = wnd.windows(wnd.pad(x, win), win)  # (N, C, H_out, W_out, kh, kw)
    w_mat = weight.reshape(groups, c_out // groups, -1)
    out = np.empty((n, c_out, h_out, w_out), dtype=x.dtype)
    out_g = out.reshape(n, groups, c_out // groups, h_out * w_out)
    bias_g = None if bias is None else bias.reshape(groups, -1, 1)
    blocks = _image_blocks_of_rows(n, h_out, c_in * kh * kw * w_out * x.itemsize)
    largest = max((n1 - n0) * (i1 - i0) for n0, n1, i0, i1 in blocks)
    staging = np.empty(largest * c_in * kh * kw * w_out, dtype=x.dtype)
    for n0, n1, i0, i1 in blocks:
        view = windows[n0:n1, :, i0:i1].reshape(n1 - n0, groups, c_g, i1 - i0, w_out, kh, kw)
        view = view.transpose(0, 1, 2, 5, 6, 3, 4)  # (n, g, c, a, e | i, j)
        cols = staging[: view.size].reshape(view.shape)
        np.copyto(cols, view)
        z = out_g[n0:n1, :, :, i0 * w_out : i1 * w_out]
        _matmul(w_mat, cols.reshape(n1 - n0, groups, -1, (i1 - i0) * w_out), out=z)
        if bias_g is not None:
            z += bias_g
    return out


def _by_correlation(weight: FloatArray, groups: int, win: wnd.Window) -> bool:
    """Whether the input gradient is taken as the correlation of ``δ`` with the flipped kernel.

    That is at unit stride, with no more padding on any side than the dilated
    kernel reaches (``p ≤ d·(k − 1)``), when no group has more output than
    input channels and the input has at least :data:`IMAGE_COLUMNS` positions
    per image. The correlation builds the patches of ``δ``, ``C_out·kh·kw``
    rows, and multiplies them image by image like a forward pass; the scatter
    writes ``D = W_matᵀ Δ``, ``C_in·kh·kw`` rows, and adds them up one tap at a
    time, so the correlation moves less data when ``C_out ≤ C_in``. Measured,
    whole backward with / without it: 0.43–0.99 on 21 such geometries
    (depthwise ones 0.43–0.86; one float64 case 1.05), 1.05–1.92 on six with
    more output channels, where it is not used; on 2×2 images, where the
    correlation's forward goes by whole-batch blocks, 1.27.
    """
    axes = (win.h, win.w)
    return (
        weight.shape[0] <= weight.shape[1] * groups
        and win.h.size * win.w.size >= IMAGE_COLUMNS
        and all(a.stride == 1 for a in axes)
        and all(max(a.before, a.after) <= a.dilation * (a.kernel - 1) for a in axes)
    )


def _input_gradient_by_correlation(
    grad_output: FloatArray, weight: FloatArray, groups: int, win: wnd.Window
) -> FloatArray:
    """``∂L/∂x = crop(pad(δ) ⋆_d rot180(w)ᵀ)`` at unit stride, as one forward convolution.

    The module docstring's full correlation pads ``δ`` with ``d·(k − 1)`` on
    every side and crops the forward padding ``p`` afterwards; the two combine
    into the padding ``d·(k − 1) − p`` of each side. ``rot180(w)ᵀ`` swaps the
    two channel axes within each group and reverses both kernel axes.
    """
    c_out, c_g, kh, kw = weight.shape
    per_group = weight.reshape(groups, c_out // groups, c_g, kh, kw)[..., ::-1, ::-1]
    flipped = np.ascontiguousarray(per_group.transpose(0, 2, 1, 3, 4))
    flipped = flipped.reshape(groups * c_g, c_out // groups, kh, kw)
    reach_h, reach_w = win.h.dilation * (kh - 1), win.w.dilation * (kw - 1)
    padding = (  # (top, bottom, left, right)
        reach_h - win.h.before,
        reach_h - win.h.after,
        reach_w - win.w.before,
        reach_w - win.w.after,
    )
    dilation = (win.h.dilation, win.w.dilation)
    return conv2d_vectorized(grad_output, flipped, None, 1, padding, dilation, groups)


def conv2d_vectorized(
    x: FloatArray,
    weight: FloatArray,
    bias: FloatArray | None = None,
    stride: Pair = 1,
    padding: Padding = 0,
    dilation: Pair = 1,
    groups: int = 1,
) -> FloatArray:
    """Forward pass as one BLAS matrix product per group and block of output rows (im2col).

    The index sum contracts ``(c, a, e)`` between the kernel and one window
    of ``x̄``. Lay the kernel out as ``W_mat`` of shape ``(C_out, C_g·kh·kw)``
    (a free reshape of torch's layout) and the windows as the columns of the
    patch matrix ``X_col`` of shape ``(C_in·kh·kw, N·H_out·W_out)``, whose
    entry ``[(c, a, e), (n, i, j)]`` is ``x̄[n, c, i·s_h + a·d_h, j·s_w + e·d_w]``.
    Then, for group ``g`` (rows of ``W_mat`` and of ``X_col`` restricted to
    that group's block)::

        Z_g = W_mat_g @ X_col_g,        z[n, o, i, j] = Z[o, (n, i, j)] + b[o]

    The columns are independent, so ``X_col`` is built and multiplied a block
    of output rows at a time (all images, all channels; about
    :data:`BLOCK_BYTES` of patches): each block is copied once from the
    strided window view of ``x̄`` and multiplied while it is in cache, and
    ``numpy.matmul`` runs the ``G`` group products of a block as one stacked
    call. The column order within a block (image-major or batch-last, see
    :class:`_Layout`) only changes which copy is contiguous; the block of
    ``Z`` is written into ``z`` in NCHW order together with the bias. From
    :data:`IMAGE_COLUMNS` output positions per image on, the columns of one
    image are multiplied on their own instead (:func:`_forward_by_image`), so
    that each product lands in ``z`` in NCHW order as it is computed. A 1×1
    kernel at unit stride without padding has ``X_col[n] = x[n]``, so ``x`` is
    multiplied as it stands, one stacked product over the images.
    """
    x, weight, bias, groups, win = _arguments(x, weight, bias, stride, padding, dilation, groups)
    c_out = weight.shape[0]
    if _pointwise(weight, win):
        # X_col[n] is x[n]: one product per image and group, straight into z.
        n = x.shape[0]
        w_mat = weight.reshape(groups, c_out // groups, -1)
        z = _matmul(w_mat, x.reshape(n, groups, w_mat.shape[2], -1))
        z = z.reshape(_out_shape(x, weight, win))
        if bias is not None:
            z += bias[:, None, None]
        return z
    if win.h.out * win.w.out >= IMAGE_COLUMNS:
        return _forward_by_image(x, weight, bias, groups, win)
    layout = _Layout(x, weight, groups, win)
    windows = wnd.windows(layout.padded(x), win)
    w_mat = weight.reshape(groups, c_out // groups, -1)
    out = np.empty(_out_shape(x, weight, win), dtype=x.dtype)
    out_g = layout.grouped(out)
    bias_g = None if bias is None else bias.reshape(groups, -1, 1, 1)
    cols_memory = layout.staging(w_mat.shape[2] * groups, x.dtype)
    z_memory = layout.staging(c_out, x.dtype)
    for i0, i1 in layout.blocks:
        cols = layout.operand(layout.patch_block(cols_memory, windows[:, :, i0:i1]))
        z = _matmul(w_mat, cols, out=layout.products(z_memory, c_out // groups, i1 - i0))
        z_block = layout.as_grouped_nchw(z, i1 - i0)
        if bias_g is None:
            np.copyto(out_g[:, :, :, i0:i1], z_block)
        else:
            np.add(z_block, bias_g, out=out_g[:, :, :, i0:i1])
    return out


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

    Let ``Δ`` be ``grad_output`` laid out as ``(C_out, N·H_out·W_out)``, with
    the same column order as ``X_col`` of :func:`conv2d_vectorized` (built,
    like ``X_col``, one block of output rows at a time). Per group ``g``:

    * ``∂L/∂b = Σ δ`` over ``(n, i, j)``.
    * ``∂L/∂w = x̄ ⋆ dilate_s(δ)``. Column ``(n, i, j)`` of ``X_col`` holds the
      values ``x̄[n, c, i·s_h + a·d_h, j·s_w + e·d_w]``: exactly the entries of
      ``x̄`` that the ``s``-dilated ``δ`` meets when placed at kernel offset
      ``(a·d_h, e·d_w)``. The correlation is therefore the contraction over
      ``(n, i, j)``, ``Δ_g @ X_col_gᵀ``, in ``weight``'s layout: one product per
      block, summed over the blocks (past :data:`TRANSPOSED_DW_WINDOWS`
      windows as ``(X_col_g @ Δ_gᵀ)ᵀ``, the faster BLAS call).
    * ``∂L/∂x = crop(pad(dilate_s(δ)) ⋆_d rot180(w)ᵀ)``: dilate ``δ`` by the
      stride, pad it with ``d·(k − 1)`` zeros on every side (plus, bottom and
      right, any rows and columns the forward windows never reached), correlate
      it with dilation ``d`` against the kernel rotated by 180° with its channel
      axes swapped, then crop the forward padding. This routine evaluates the
      same sum in its scattered (col2im) form, which never multiplies the
      inserted zeros: the product ``D_g = W_mat_gᵀ @ Δ_g`` holds, in row
      ``(c, a, e)`` and column ``(n, i, j)``, the term
      ``Σ_o w[o, c, a, e] · δ[n, o, i, j]`` destined for
      ``x̄[n, c, i·s_h + a·d_h, j·s_w + e·d_w]``; for each tap ``(a, e)``, rows
      ``(·, a, e)`` of ``D`` are added into the stride-``s`` view of ``∂L/∂x̄``
      that starts at ``(a·d_h, e·d_w)`` (:func:`reference_impl.window.scatter_add`;
      the terms that land in the padding are dropped there, as the crop would).
      ``D`` is formed block by block, in the memory of the block's ``X_col``,
      so one product per group and block replaces ``kh·kw`` products per tap.

      Equivalence: the full correlation computes, at padded row ``r``,
      ``Σ_a dilate_s(δ)[r − a·d_h] · w[a]``; after the substitution
      ``a → kh − 1 − a`` this is written with ``rot180(w)`` and a ``δ`` shifted by
      ``d·(kh − 1)`` rows, which is what the padding provides. Its non-zero terms
      are the pairs ``(i, a)`` with ``i·s_h + a·d_h = r``, the very pairs the
      scatter visits, only enumerated by tap instead of by destination; columns
      work the same way. Python loops run over blocks of output rows and over
      the taps only.

    When no group has more output than input channels, at unit stride and
    with padding within the dilated kernel's reach (:func:`_by_correlation`), ``∂L/∂x`` is
    taken in the correlation form itself, as a forward convolution of ``δ``
    with ``rot180(w)ᵀ`` (:func:`_input_gradient_by_correlation`), and the
    blocks compute ``∂L/∂w`` alone.

    A 1×1 kernel at unit stride without padding has ``X_col[n] = x[n]``: then
    ``D[n] = W_matᵀ @ Δ[n]`` is ``∂L/∂x[n]`` as it stands (one stacked product,
    no scatter), and ``∂L/∂W_mat = Σ_n Δ[n] @ x[n]ᵀ`` is summed over blocks of
    images.
    """
    x, weight, bias, groups, win = _arguments(x, weight, bias, stride, padding, dilation, groups)
    grad_output = check_grad_output(grad_output, _out_shape(x, weight, win), x)
    grad_bias = None if bias is None else channel_sums(grad_output)
    c_out = weight.shape[0]
    if _pointwise(weight, win):
        # X_col[n] is x[n] and D[n] = W_matᵀ Δ[n] lands on x[n] as it is: no copy, no scatter.
        n = x.shape[0]
        w_mat = weight.reshape(groups, c_out // groups, -1)
        x_g = x.reshape(n, groups, w_mat.shape[2], -1)
        delta_n = grad_output.reshape(n, groups, w_mat.shape[1], -1)
        grad_x = _matmul(w_mat.transpose(0, 2, 1), delta_n).reshape(x.shape)
        grad_w_t = np.zeros((groups, w_mat.shape[2], w_mat.shape[1]), x.dtype)  # (∂L/∂W_mat)ᵀ
        for n0, n1 in _image_blocks(n, groups * grad_w_t[0].nbytes):
            grad_w_t += _matmul(x_g[n0:n1], delta_n[n0:n1].transpose(0, 1, 3, 2)).sum(axis=0)
        grad_w = np.ascontiguousarray(grad_w_t.transpose(0, 2, 1)).reshape(weight.shape)
        return grad_x, grad_w, grad_bias
    layout = _Layout(x, weight, groups, win)
    windows = wnd.windows(layout.padded(x), win)
    correlation = _by_correlation(weight, groups, win)
    # ∂L/∂x̄ less its padding, the scatter's target (the correlation makes its own)
    scattered = None if correlation else layout.buffer(x.dtype, zeros=True, padded=False)
    grad_output_g = layout.grouped(grad_output)
    w_mat = weight.reshape(groups, c_out // groups, -1)
    c_out_g, k_g = w_mat.shape[1:]
    windows_count = x.shape[0] * win.h.out * win.w.out
    transpose_dw = windows_count >= TRANSPOSED_DW_WINDOWS
    grad_w = np.zeros((groups, k_g, c_out_g) if transpose_dw else w_mat.shape, x.dtype)
    cols_memory = layout.staging(k_g * groups, x.dtype)
    delta_memory = layout.staging(c_out, x.dtype)
    for i0, i1 in layout.blocks:
        delta = layout.products(delta_memory, c_out_g, i1 - i0)
        np.copyto(layout.as_grouped_nchw(delta, i1 - i0), grad_output_g[:, :, :, i0:i1])
        block = layout.patch_block(cols_memory, windows[:, :, i0:i1])
        cols = layout.operand(block)
        if transpose_dw:
            grad_w += _matmul(cols, delta.transpose(0, 2, 1))  # (Δ_g X_col_gᵀ)ᵀ
        else:
            grad_w += _matmul(delta, cols.transpose(0, 2, 1))  # Δ_g X_col_gᵀ
        if scattered is None:
            continue  # ∂L/∂x comes from the correlation below
        _matmul(w_mat.transpose(0, 2, 1), delta, out=cols)  # D = W_matᵀ Δ, over X_col's memory

        def tap_values(a: int, e: int, d: FloatArray = block) -> FloatArray:
            return layout.values(d, a, e)

        wnd.scatter_add(layout.grouped(scattered), win, tap_values, rows=(i0, i1), cropped=True)
    del windows, block, cols, delta, cols_memory, delta_memory
    if scattered is None:
        grad_x = _input_gradient_by_correlation(grad_output, weight, groups, win)
    else:
        grad_x = np.ascontiguousarray(scattered)  # NCHW (a copy for the batch-last layout)
    if transpose_dw:
        grad_w = grad_w.transpose(0, 2, 1)
    return grad_x, np.ascontiguousarray(grad_w).reshape(weight.shape), grad_bias
