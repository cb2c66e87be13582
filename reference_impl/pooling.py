r"""Two-dimensional max pooling and average pooling, forward and backward.

Geometry
--------
The input ``x`` has shape ``(N, C, H, W)`` (or ``(C, H, W)``, treated as a
batch of one). Along the height axis, with kernel size ``k``, stride ``s``,
padding ``p`` and dilation ``d``, output row ``a`` looks at the input rows

.. math::

    r(a, i) = a s - p + i d, \qquad i = 0, \dots, k - 1,

and the width axis works the same way with its own ``k, s, p, d``, giving the
columns ``q(b, j)``. A window is therefore the product of a set of rows and a
set of columns, and every formula below factorises over the two axes wherever
it can.

The number of output rows is

.. math::

    H_\text{out} = \left\lfloor \frac{H + 2p - d(k - 1) - 1}{s} \right\rfloor + 1 ,

with the floor replaced by a ceiling when ``ceil_mode`` is set. In that case
the extra window is kept only if it starts inside the input or inside the
leading padding, i.e. ``H_out`` drops by one when ``(H_out - 1) s >= H + p``.
As in torch, the padding may be at most ``k // 2`` on each axis.

Max pooling
-----------
Forward:

.. math::

    y_{ncab} = \max_{(i, j) \text{ inside the input}} x_{n c\, r(a,i)\, q(b,j)} ,

where :math:`q(b, j)` is the column of tap ``j`` of output column ``b``.

Positions in the padding behave as :math:`-\infty` and are never selected. The
derivative of a maximum is the indicator of the element that attains it, so

.. math::

    \frac{\partial L}{\partial x_{nchw}}
        = \sum_{a, b} \frac{\partial L}{\partial y_{ncab}}\,
          [\, (h, w) = \operatorname{arg\,max} \text{ of window } (a, b) \,] .

Two conventions make this a function rather than a relation, and both follow
torch:

* **ties** -- when several entries of a window share the maximum, the whole
  upstream gradient goes to exactly one of them: the first one met when the
  window is scanned in row-major order ``(i, j) = (0, 0), (0, 1), ...``.
  Scanning keeps the current best and replaces it only on a *strictly*
  greater value;
* **overlap** -- when the stride is smaller than the (dilated) kernel, one
  input element can be the maximum of several windows. The sum over
  ``(a, b)`` above then has several non-zero terms and they are *added*.

With dilation a window can miss the input altogether (every tap in the
padding). Its maximum would be :math:`-\infty` with no element to route the
gradient to, so such parameters are rejected with a ``ValueError``.

Average pooling
---------------
Forward:

.. math::

    y_{ncab} = \frac{1}{D_{ab}} \sum_{i, j} x_{n c\, r(a,i)\, q(b,j)},

where padded positions contribute zero. The divisor follows torch exactly:

* ``divisor_override`` given: :math:`D_{ab}` is that number;
* otherwise, with ``count_include_pad=True``: the number of window positions
  inside the *padded* input, i.e. the window clipped to ``[-p, H + p)``.
  Positions that stick out beyond the padding (possible only with
  ``ceil_mode``) are not counted;
* with ``count_include_pad=False``: the number of window positions inside
  the input itself, ``[0, H)``.

Each count is a product of a row count and a column count. The window sum
factorises the same way, rows first:

.. math::

    \sum_{i, j} x_{n c\, r(a,i)\, q(b,j)} = \sum_j u_{n c\, a\, q(b,j)},
    \qquad u_{n c\, a\, q} = \sum_i x_{n c\, r(a,i)\, q} ,

so a ``k_h × k_w`` window costs ``k_h + k_w`` additions per output instead of
``k_h k_w``. The forward pass is linear in ``x``, so the backward pass is its
transpose: every input element collects
:math:`\partial L / \partial y_{ncab} / D_{ab}` from every window that covers
it, spread along the columns into ``∂L/∂u``, then along the rows.

Implementations
---------------
``*_loop`` functions visit every output element and every tap with explicit
Python loops, exactly as the formulas read. ``*_vectorized`` functions pad the
input once (with :math:`-\infty` for max, with zeros for average), take the
window view of :mod:`reference_impl.window` (the one convolution uses) and read
each kernel tap ``(i, j)`` as one strided slice of it, the slice that holds
tap ``(i, j)`` of every window at once. The maximum's forward pass combines
these ``k_h k_w`` slices in a running maximum, and its backward pass scatters
each upstream gradient to the flat position of its window's winner with
``numpy.bincount``. The average sums the ``k_h`` row taps of the windows of the
height axis alone, then the ``k_w`` column taps of that partial sum
(:meth:`reference_impl.window.Window.rows` and ``columns``), and its backward
pass adds ``g / D`` into the column slices of ``∂L/∂u``, then ``∂L/∂u`` into the
row slices of a padded gradient buffer. Both backward passes add, so
overlapping windows accumulate by construction. Only the kernel taps are
looped over in Python.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from reference_impl import window as wnd
from reference_impl._scalars import real
from reference_impl._validation import (
    FloatArray,
    check_bool,
    check_grad_output,
    check_ndim,
    float_array,
    int_pair,
    int_scalar,
)
from reference_impl.window import Pair

# --------------------------------------------------------------------------
# Argument checks shared by both pools and both implementations
# --------------------------------------------------------------------------


def _arguments(
    x: object,
    kernel_size: object,
    stride: object,
    padding: object,
    dilation: object,
    ceil_mode: object,
) -> tuple[FloatArray, wnd.Window]:
    """Validate the arguments shared by both pools and work out the window geometry."""
    xa = float_array("x", x)
    check_ndim("x", xa, (3, 4))
    kh, kw = int_pair("kernel_size", kernel_size, 1)
    strides = (kh, kw) if stride is None else int_pair("stride", stride, 1)
    ph, pw = int_pair("padding", padding, 0)
    dilations = int_pair("dilation", dilation, 1)
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(
            f"padding must be at most kernel_size // 2 on each axis, got padding "
            f"{(ph, pw)} for kernel_size {(kh, kw)}"
        )
    ceil = check_bool("ceil_mode", ceil_mode)
    win = wnd.window(xa.shape[-2:], (kh, kw), strides, dilations, (ph, ph, pw, pw), ceil)
    for label, axis in (("height", win.h), ("width", win.w)):
        if axis.out < 1:
            raise ValueError(
                f"output {label} would be {axis.out}: input {label} {axis.size} is too small "
                f"for kernel_size {axis.kernel}, dilation {axis.dilation} and padding "
                f"{axis.before}"
            )
        empty = ~_inside(axis).any(axis=1)
        if empty.any():
            raise ValueError(
                f"padding {axis.before} with dilation {axis.dilation} puts output {label} index "
                f"{int(np.argmax(empty))} wholly in the padding (no tap reads the input)"
            )
    return xa, win


def _inside(axis: wnd.Axis, lo: int = 0, hi: int | None = None) -> NDArray[np.bool_]:
    """``(out, kernel)`` mask of the taps at positions in ``[lo, hi)`` (default: the input)."""
    positions = axis.positions
    return (positions >= lo) & (positions < (axis.size if hi is None else hi))


def _avg_options(count_include_pad: object, divisor_override: object) -> tuple[bool, int | None]:
    include = check_bool("count_include_pad", count_include_pad)
    if divisor_override is None:
        return include, None
    divisor = int_scalar("divisor_override", divisor_override)
    if divisor == 0:
        raise ValueError("divisor_override must not be 0")
    return include, divisor


def _divisors(
    win: wnd.Window, count_include_pad: bool, divisor_override: int | None, dtype: np.dtype[Any]
) -> FloatArray:
    """``(H_out, W_out)`` array of the divisors ``D_ab``, each a row count times a column count."""
    if divisor_override is not None:
        return np.full(win.out, divisor_override, dtype=dtype)
    counts = [
        _inside(axis, -axis.before, axis.size + axis.after) if count_include_pad else _inside(axis)
        for axis in (win.h, win.w)
    ]
    divisors: FloatArray = np.multiply.outer(counts[0].sum(1), counts[1].sum(1)).astype(dtype)
    return divisors


# --------------------------------------------------------------------------
# Explicit loops
# --------------------------------------------------------------------------


def _as_batch(a: FloatArray) -> FloatArray:
    return a if a.ndim == 4 else a[None]


def _window_argmax_loop(plane: FloatArray, win: wnd.Window, a: int, b: int) -> tuple[int, int]:
    """Row-major scan of window ``(a, b)`` of one ``(H, W)`` plane.

    Taps in the padding are skipped (they hold minus infinity, which never wins). The
    first tap inside the input starts as the best; a later tap replaces it only
    if it is strictly greater, so ties go to the first maximum.
    """
    best: tuple[int, int] | None = None
    best_value = 0.0
    for i in range(win.h.kernel):
        r = win.h.position(a, i)
        if not 0 <= r < win.h.size:
            continue
        for j in range(win.w.kernel):
            q = win.w.position(b, j)
            if not 0 <= q < win.w.size:
                continue
            value = real(plane[r, q])
            if best is None or value > best_value:
                best, best_value = (r, q), value
    assert best is not None  # guaranteed by the geometry check
    return best


def max_pool2d_loop(
    x: FloatArray,
    kernel_size: Pair,
    stride: Pair | None = None,
    padding: Pair = 0,
    dilation: Pair = 1,
    ceil_mode: bool = False,
) -> FloatArray:
    """Max pooling, one window at a time: ``y[n, c, a, b] = x[n, c, argmax of window]``."""
    xa, win = _arguments(x, kernel_size, stride, padding, dilation, ceil_mode)
    x4 = _as_batch(xa)
    y = np.empty((*x4.shape[:2], *win.out), dtype=xa.dtype)
    for n in range(x4.shape[0]):
        for c in range(x4.shape[1]):
            for a in range(win.h.out):
                for b in range(win.w.out):
                    r, q = _window_argmax_loop(x4[n, c], win, a, b)
                    y[n, c, a, b] = x4[n, c, r, q]
    return y.reshape(*xa.shape[:-2], *win.out)


def max_pool2d_backward_loop(
    grad_output: FloatArray,
    x: FloatArray,
    kernel_size: Pair,
    stride: Pair | None = None,
    padding: Pair = 0,
    dilation: Pair = 1,
    ceil_mode: bool = False,
) -> FloatArray:
    """Gradient of :func:`max_pool2d_loop` with respect to ``x``.

    Each upstream gradient ``g[n, c, a, b]`` is added (not assigned) to the
    first maximum of window ``(a, b)``.
    """
    xa, win = _arguments(x, kernel_size, stride, padding, dilation, ceil_mode)
    g4 = _as_batch(check_grad_output(grad_output, (*xa.shape[:-2], *win.out), xa))
    x4 = _as_batch(xa)
    dx = np.zeros(x4.shape, dtype=xa.dtype)
    for n in range(x4.shape[0]):
        for c in range(x4.shape[1]):
            for a in range(win.h.out):
                for b in range(win.w.out):
                    r, q = _window_argmax_loop(x4[n, c], win, a, b)
                    dx[n, c, r, q] += g4[n, c, a, b]
    return dx.reshape(xa.shape)


def avg_pool2d_loop(
    x: FloatArray,
    kernel_size: Pair,
    stride: Pair | None = None,
    padding: Pair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> FloatArray:
    """Average pooling: the sum over the in-input taps of each window divided by ``D_ab``."""
    xa, win = _arguments(x, kernel_size, stride, padding, 1, ceil_mode)
    include, override = _avg_options(count_include_pad, divisor_override)
    x4 = _as_batch(xa)
    y = np.empty((*x4.shape[:2], *win.out), dtype=xa.dtype)
    for n in range(x4.shape[0]):
        for c in range(x4.shape[1]):
            for a in range(win.h.out):
                for b in range(win.w.out):
                    total = 0.0
                    for i in range(win.h.kernel):
                        for j in range(win.w.kernel):
                            r, q = win.h.position(a, i), win.w.position(b, j)
                            if 0 <= r < win.h.size and 0 <= q < win.w.size:
                                total += real(x4[n, c, r, q])
                    y[n, c, a, b] = total / _divisor_loop(win, a, b, include, override)
    return y.reshape(*xa.shape[:-2], *win.out)


def _divisor_loop(win: wnd.Window, a: int, b: int, include: bool, override: int | None) -> int:
    """``D_ab`` by counting the taps of window ``(a, b)`` one by one."""
    if override is not None:
        return override
    h, w = win.h, win.w
    count = 0
    for i in range(h.kernel):
        for j in range(w.kernel):
            r, q = h.position(a, i), w.position(b, j)
            if include:
                # inside the padded input [-p, size + p) on both axes
                inside = -h.before <= r < h.size + h.after and -w.before <= q < w.size + w.after
            else:
                inside = 0 <= r < h.size and 0 <= q < w.size
            count += inside
    return count


def avg_pool2d_backward_loop(
    grad_output: FloatArray,
    x: FloatArray,
    kernel_size: Pair,
    stride: Pair | None = None,
    padding: Pair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> FloatArray:
    """Gradient of :func:`avg_pool2d_loop`: each window hands ``g / D_ab`` to its in-input taps."""
    xa, win = _arguments(x, kernel_size, stride, padding, 1, ceil_mode)
    include, override = _avg_options(count_include_pad, divisor_override)
    g4 = _as_batch(check_grad_output(grad_output, (*xa.shape[:-2], *win.out), xa))
    x4 = _as_batch(xa)
    dx = np.zeros(x4.shape, dtype=xa.dtype)
    for n in range(x4.shape[0]):
        for c in range(x4.shape[1]):
            for a in range(win.h.out):
                for b in range(win.w.out):
                    share = g4[n, c, a, b] / _divisor_loop(win, a, b, include, override)
                    for i in range(win.h.kernel):
                        for j in range(win.w.kernel):
                            r, q = win.h.position(a, i), win.w.position(b, j)
                            if 0 <= r < win.h.size and 0 <= q < win.w.size:
                                dx[n, c, r, q] += share
    return dx.reshape(xa.shape)


# --------------------------------------------------------------------------
# Vectorized: the window view, one strided slice per kernel tap
# --------------------------------------------------------------------------


def _taps(x: FloatArray, win: wnd.Window, fill: float) -> list[FloatArray]:
    """The ``k_h k_w`` tap slices of the window view of ``x`` padded with ``fill``.

    Slice ``i * k_w + j`` has shape ``(…, H_out, W_out)`` and holds tap
    ``(i, j)`` of every window; the list is in row-major tap order.
    """
    view = wnd.windows(wnd.pad(x, win, fill), win)
    return [view[..., i, j] for i, j in np.ndindex(win.h.kernel, win.w.kernel)]


def _max_and_argtap(x: FloatArray, win: wnd.Window) -> tuple[FloatArray, NDArray[Any]]:
    """Running maximum over the taps, and the row-major index of the tap that won.

    The running best starts at minus infinity with the first in-input tap as
    its position, and a tap takes over only where it is strictly greater:
    the first maximum in row-major order wins, and padding never does.

    Because taps are visited in increasing order, the winning tap is the
    largest ``t`` at which tap ``t`` beat the running best (or the first
    in-input tap if none did), so the index is kept as a running maximum of
    ``t * beat`` -- cheap integer arithmetic instead of a masked assignment.
    """
    taps = _taps(x, win, -np.inf)
    shape = (*x.shape[:-2], *win.out)
    index_type = np.min_scalar_type(len(taps) - 1)
    best = np.full(shape, -np.inf, dtype=x.dtype)
    argtap = np.empty(shape, dtype=index_type)
    first_row = np.argmax(_inside(win.h), axis=1)
    first_col = np.argmax(_inside(win.w), axis=1)
    argtap[...] = first_row[:, None] * win.w.kernel + first_col[None, :]
    beat = np.empty(shape, dtype=np.bool_)
    beat_t = np.empty(shape, dtype=index_type)
    for t, tap in enumerate(taps):
        np.greater(tap, best, out=beat)
        np.multiply(beat.view(np.uint8), t, out=beat_t, casting="unsafe")
        np.maximum(argtap, beat_t, out=argtap)
        np.maximum(best, tap, out=best)
    return best, argtap


def max_pool2d_vectorized(
    x: FloatArray,
    kernel_size: Pair,
    stride: Pair | None = None,
    padding: Pair = 0,
    dilation: Pair = 1,
    ceil_mode: bool = False,
) -> FloatArray:
    """Max pooling as a running ``numpy.maximum`` over the ``k_h k_w`` tap slices."""
    xa, win = _arguments(x, kernel_size, stride, padding, dilation, ceil_mode)
    taps = _taps(xa, win, -np.inf)
    y: FloatArray = taps[0].copy()
    for tap in taps[1:]:
        np.maximum(y, tap, out=y)
    return y


def max_pool2d_backward_vectorized(
    grad_output: FloatArray,
    x: FloatArray,
    kernel_size: Pair,
    stride: Pair | None = None,
    padding: Pair = 0,
    dilation: Pair = 1,
    ceil_mode: bool = False,
) -> FloatArray:
    r"""Gradient of :func:`max_pool2d_vectorized` with respect to ``x``.

    Recomputes the winning tap of every window, turns it into the flat
    position of the winning element in a padded ``(N, C, H_b, W_b)`` buffer,

    .. math::

        \text{pos} = ((n C + c) H_b + a s_h + i^* d_h) W_b + b s_w + j^* d_w,

    and scatters the upstream gradient there with ``numpy.bincount``, which
    *adds* the weights of repeated positions: an element that wins several
    overlapping windows collects all their gradients. Positions in the padding
    never win, so cropping the buffer loses nothing. The within-plane part of
    ``pos`` is read from the window view of the flat indices of one plane.
    """
    xa, win = _arguments(x, kernel_size, stride, padding, dilation, ceil_mode)
    g = check_grad_output(grad_output, (*xa.shape[:-2], *win.out), xa)
    _, argtap = _max_and_argtap(xa, win)
    hb, wb = win.h.padded, win.w.padded
    index = wnd.windows(np.arange(hb * wb).reshape(hb, wb), win)  # (H_out, W_out, k_h, k_w)
    position = index[0, 0].ravel()[argtap]  # i* d_h W_b + j* d_w
    position += np.ascontiguousarray(index[:, :, 0, 0])  # a s_h W_b + b s_w
    planes = int(np.prod(xa.shape[:-2]))
    position += (np.arange(planes) * (hb * wb)).reshape(*xa.shape[:-2], 1, 1)
    flat = np.bincount(position.ravel(), weights=g.ravel(), minlength=planes * hb * wb)
    return wnd.crop(flat.reshape(*xa.shape[:-2], hb, wb).astype(xa.dtype, copy=False), win)


def avg_pool2d_vectorized(
    x: FloatArray,
    kernel_size: Pair,
    stride: Pair | None = None,
    padding: Pair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> FloatArray:
    """Average pooling: the window sums of the zero-padded input, rows then columns, over ``D_ab``.

    ``u`` sums the ``k_h`` row-tap slices of the height-only window view of
    ``x̄``; ``y`` sums the ``k_w`` column-tap slices of the width-only window
    view of ``u``.
    """
    xa, win = _arguments(x, kernel_size, stride, padding, 1, ceil_mode)
    include, override = _avg_options(count_include_pad, divisor_override)
    rows = wnd.windows(wnd.pad(xa, win, 0.0), win.rows())  # (…, H_out, W_b, k_h, 1)
    u: FloatArray = rows[..., 0, 0].copy()
    for i in range(1, win.h.kernel):
        u += rows[..., i, 0]
    columns = wnd.windows(u, win.columns())  # (…, H_out, W_out, 1, k_w)
    y: FloatArray = columns[..., 0, 0].copy()
    for j in range(1, win.w.kernel):
        y += columns[..., 0, j]
    y /= _divisors(win, include, override, xa.dtype)
    return y


def avg_pool2d_backward_vectorized(
    grad_output: FloatArray,
    x: FloatArray,
    kernel_size: Pair,
    stride: Pair | None = None,
    padding: Pair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> FloatArray:
    """Gradient of :func:`avg_pool2d_vectorized`, its two sums transposed in reverse order.

    ``g / D`` is added into the ``k_w`` column-tap slices of ``∂L/∂u`` (shape
    ``(…, H_out, W_b)``), which is added into the ``k_h`` row-tap slices of a
    padded gradient buffer.
    """
    xa, win = _arguments(x, kernel_size, stride, padding, 1, ceil_mode)
    include, override = _avg_options(count_include_pad, divisor_override)
    share = check_grad_output(grad_output, (*xa.shape[:-2], *win.out), xa) / _divisors(
        win, include, override, xa.dtype
    )
    lead = xa.shape[:-2]
    grad_u = np.zeros((*lead, win.h.out, win.w.padded), dtype=xa.dtype)
    wnd.scatter_add(grad_u, win.columns(), lambda a, e: share)
    buf = np.zeros((*lead, win.h.padded, win.w.padded), dtype=xa.dtype)
    wnd.scatter_add(buf, win.rows(), lambda a, e: grad_u)
    return wnd.crop(buf, win)
