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

Each count is a product of a row count and a column count. The forward pass
is linear in ``x``, so the backward pass is its transpose: every input element
collects :math:`\partial L / \partial y_{ncab} / D_{ab}` from every window that
covers it.

Implementations
---------------
``*_loop`` functions visit every output element and every tap with explicit
Python loops, exactly as the formulas read. ``*_vectorized`` functions pad the
input once (with :math:`-\infty` for max, with zeros for average) and read
each kernel tap ``(i, j)`` as one strided slice of the padded array, the slice
that holds tap ``(i, j)`` of every window at once. The forward passes combine
these ``k_h k_w`` slices (a running maximum, a running sum). The average's
backward pass adds ``g / D`` into the same strided slices of a padded gradient
buffer; the maximum's scatters each upstream gradient to the flat position of
its window's winner with ``numpy.bincount``. Both add, so overlapping windows
accumulate by construction. Only the kernel taps are looped over in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from reference_impl._validation import (
    FloatArray,
    check_ndim,
    check_shape,
    float_array,
    int_pair,
    same_dtype,
)

__all__ = [
    "avg_pool2d_backward_loop",
    "avg_pool2d_backward_vectorized",
    "avg_pool2d_loop",
    "avg_pool2d_vectorized",
    "max_pool2d_backward_loop",
    "max_pool2d_backward_vectorized",
    "max_pool2d_loop",
    "max_pool2d_vectorized",
]

IntPair = int | tuple[int, int]

IntArray = NDArray[np.intp]


# --------------------------------------------------------------------------
# Geometry and argument checks shared by both pools and both implementations
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Axis:
    """Window geometry along one spatial axis."""

    size: int  # input length (H or W)
    kernel: int
    stride: int
    padding: int
    dilation: int
    out: int  # number of windows

    @property
    def span(self) -> int:
        """Distance from the first to the last tap of a window, plus one."""
        return self.dilation * (self.kernel - 1) + 1

    @property
    def padded(self) -> int:
        """Length of a padded buffer that holds every tap of every window."""
        needed = (self.out - 1) * self.stride + self.span
        return max(self.size + 2 * self.padding, needed)

    def tap(self, i: int) -> slice:
        """Positions, in the padded buffer, of tap ``i`` of windows ``0 .. out - 1``."""
        start = i * self.dilation
        return slice(start, start + (self.out - 1) * self.stride + 1, self.stride)

    def position(self, a: int, i: int) -> int:
        """Input index (possibly outside ``[0, size)``) of tap ``i`` of window ``a``."""
        return a * self.stride - self.padding + i * self.dilation

    def taps_inside(self) -> NDArray[np.bool_]:
        """``(out, kernel)`` mask: which taps of which windows fall inside the input."""
        index = (
            np.arange(self.out)[:, None] * self.stride
            - self.padding
            + np.arange(self.kernel)[None, :] * self.dilation
        )
        return (index >= 0) & (index < self.size)


@dataclass(frozen=True)
class _Geometry:
    batched: bool
    n: int
    c: int
    h: _Axis
    w: _Axis

    @property
    def out_shape(self) -> tuple[int, ...]:
        core = (self.h.out, self.w.out)
        return (self.n, self.c, *core) if self.batched else (self.c, *core)


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _out_size(
    name: str, size: int, kernel: int, stride: int, padding: int, dilation: int, ceil: bool
) -> int:
    numerator = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (-(-numerator // stride) if ceil else numerator // stride) + 1
    if ceil and (out - 1) * stride >= size + padding:
        out -= 1
    if out < 1:
        raise ValueError(
            f"output {name} would be {out}: input {name} {size} is too small for "
            f"kernel_size {kernel}, dilation {dilation} and padding {padding}"
        )
    return out


def _geometry(
    x: object,
    kernel_size: object,
    stride: object,
    padding: object,
    dilation: object,
    ceil_mode: object,
) -> tuple[FloatArray, _Geometry]:
    """Validate the arguments shared by both pools and work out the window geometry."""
    xa = float_array("x", x)
    check_ndim("x", xa, (3, 4))
    kh, kw = int_pair("kernel_size", kernel_size, 1)
    sh, sw = (kh, kw) if stride is None else int_pair("stride", stride, 1)
    ph, pw = int_pair("padding", padding, 0)
    dh, dw = int_pair("dilation", dilation, 1)
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(
            f"padding must be at most kernel_size // 2 on each axis, got padding "
            f"{(ph, pw)} for kernel_size {(kh, kw)}"
        )
    ceil = _check_bool("ceil_mode", ceil_mode)
    batched = xa.ndim == 4
    n, c, height, width = xa.shape if batched else (1, *xa.shape)
    axes = []
    for label, size, k, s, p, d in (
        ("height", height, kh, sh, ph, dh),
        ("width", width, kw, sw, pw, dw),
    ):
        axis = _Axis(size, k, s, p, d, _out_size(label, size, k, s, p, d, ceil))
        empty = ~axis.taps_inside().any(axis=1)
        if empty.any():
            raise ValueError(
                f"padding {p} with dilation {d} puts output {label} index "
                f"{int(np.argmax(empty))} wholly in the padding (no tap reads the input)"
            )
        axes.append(axis)
    return xa, _Geometry(batched, n, c, axes[0], axes[1])


def _grad_output(grad_output: object, x: FloatArray, geom: _Geometry) -> FloatArray:
    g = float_array("grad_output", grad_output)
    same_dtype(x=x, grad_output=g)
    check_shape("grad_output", g, geom.out_shape)
    return g


def _as_batch(a: FloatArray) -> FloatArray:
    return a if a.ndim == 4 else a[None]


def _unbatch(a: FloatArray, geom: _Geometry) -> FloatArray:
    return a if geom.batched else a[0]


def _avg_options(count_include_pad: object, divisor_override: object) -> tuple[bool, int | None]:
    include = _check_bool("count_include_pad", count_include_pad)
    if divisor_override is None:
        return include, None
    if isinstance(divisor_override, bool) or not isinstance(divisor_override, (int, np.integer)):
        raise TypeError(
            f"divisor_override must be None or an int, got {type(divisor_override).__name__}"
        )
    if divisor_override == 0:
        raise ValueError("divisor_override must not be 0")
    return include, int(divisor_override)


def _axis_counts(axis: _Axis, count_include_pad: bool) -> NDArray[np.int64]:
    """Per-window number of taps counted by the average along one axis."""
    start = np.arange(axis.out, dtype=np.int64) * axis.stride - axis.padding
    stop = np.minimum(start + axis.kernel, axis.size + axis.padding)
    if not count_include_pad:
        start = np.maximum(start, 0)
        stop = np.minimum(stop, axis.size)
    return stop - start


def _divisors(
    geom: _Geometry, count_include_pad: bool, divisor_override: int | None, dtype: np.dtype[Any]
) -> FloatArray:
    """``(H_out, W_out)`` array of the divisors ``D_ab``."""
    if divisor_override is not None:
        return np.full((geom.h.out, geom.w.out), divisor_override, dtype=dtype)
    rows = _axis_counts(geom.h, count_include_pad)
    cols = _axis_counts(geom.w, count_include_pad)
    return np.multiply.outer(rows, cols).astype(dtype)


# --------------------------------------------------------------------------
# Explicit loops
# --------------------------------------------------------------------------


def _window_argmax_loop(plane: FloatArray, geom: _Geometry, a: int, b: int) -> tuple[int, int]:
    """Row-major scan of window ``(a, b)`` of one ``(H, W)`` plane.

    Taps in the padding are skipped (they hold minus infinity, which never wins). The
    first tap inside the input starts as the best; a later tap replaces it only
    if it is strictly greater, so ties go to the first maximum.
    """
    best: tuple[int, int] | None = None
    best_value = 0.0
    for i in range(geom.h.kernel):
        r = geom.h.position(a, i)
        if not 0 <= r < geom.h.size:
            continue
        for j in range(geom.w.kernel):
            q = geom.w.position(b, j)
            if not 0 <= q < geom.w.size:
                continue
            value = float(plane[r, q])
            if best is None or value > best_value:
                best, best_value = (r, q), value
    assert best is not None  # guaranteed by the geometry check
    return best


def max_pool2d_loop(
    x: FloatArray,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
) -> FloatArray:
    """Max pooling, one window at a time: ``y[n, c, a, b] = x[n, c, argmax of window]``."""
    xa, geom = _geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
    x4 = _as_batch(xa)
    y = np.empty((geom.n, geom.c, geom.h.out, geom.w.out), dtype=xa.dtype)
    for n in range(geom.n):
        for c in range(geom.c):
            for a in range(geom.h.out):
                for b in range(geom.w.out):
                    r, q = _window_argmax_loop(x4[n, c], geom, a, b)
                    y[n, c, a, b] = x4[n, c, r, q]
    return _unbatch(y, geom)


def max_pool2d_backward_loop(
    grad_output: FloatArray,
    x: FloatArray,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
) -> FloatArray:
    """Gradient of :func:`max_pool2d_loop` with respect to ``x``.

    Each upstream gradient ``g[n, c, a, b]`` is added (not assigned) to the
    first maximum of window ``(a, b)``.
    """
    xa, geom = _geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
    g4 = _as_batch(_grad_output(grad_output, xa, geom))
    x4 = _as_batch(xa)
    dx = np.zeros(x4.shape, dtype=xa.dtype)
    for n in range(geom.n):
        for c in range(geom.c):
            for a in range(geom.h.out):
                for b in range(geom.w.out):
                    r, q = _window_argmax_loop(x4[n, c], geom, a, b)
                    dx[n, c, r, q] += g4[n, c, a, b]
    return _unbatch(dx, geom)


def avg_pool2d_loop(
    x: FloatArray,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> FloatArray:
    """Average pooling: the sum over the in-input taps of each window divided by ``D_ab``."""
    xa, geom = _geometry(x, kernel_size, stride, padding, 1, ceil_mode)
    include, override = _avg_options(count_include_pad, divisor_override)
    x4 = _as_batch(xa)
    y = np.empty((geom.n, geom.c, geom.h.out, geom.w.out), dtype=xa.dtype)
    for n in range(geom.n):
        for c in range(geom.c):
            for a in range(geom.h.out):
                for b in range(geom.w.out):
                    total = 0.0
                    for i in range(geom.h.kernel):
                        for j in range(geom.w.kernel):
                            r, q = geom.h.position(a, i), geom.w.position(b, j)
                            if 0 <= r < geom.h.size and 0 <= q < geom.w.size:
                                total += float(x4[n, c, r, q])
                    y[n, c, a, b] = total / _divisor_loop(geom, a, b, include, override)
    return _unbatch(y, geom)


def _divisor_loop(geom: _Geometry, a: int, b: int, include: bool, override: int | None) -> int:
    """``D_ab`` by counting the taps of window ``(a, b)`` one by one."""
    if override is not None:
        return override
    count = 0
    for i in range(geom.h.kernel):
        for j in range(geom.w.kernel):
            r, q = geom.h.position(a, i), geom.w.position(b, j)
            if include:
                # inside the padded input [-p, size + p) on both axes
                inside = -geom.h.padding <= r < geom.h.size + geom.h.padding and (
                    -geom.w.padding <= q < geom.w.size + geom.w.padding
                )
            else:
                inside = 0 <= r < geom.h.size and 0 <= q < geom.w.size
            count += inside
    return count


def avg_pool2d_backward_loop(
    grad_output: FloatArray,
    x: FloatArray,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> FloatArray:
    """Gradient of :func:`avg_pool2d_loop`: each window hands ``g / D_ab`` to its in-input taps."""
    xa, geom = _geometry(x, kernel_size, stride, padding, 1, ceil_mode)
    include, override = _avg_options(count_include_pad, divisor_override)
    g4 = _as_batch(_grad_output(grad_output, xa, geom))
    dx = np.zeros((geom.n, geom.c, geom.h.size, geom.w.size), dtype=xa.dtype)
    for n in range(geom.n):
        for c in range(geom.c):
            for a in range(geom.h.out):
                for b in range(geom.w.out):
                    share = g4[n, c, a, b] / _divisor_loop(geom, a, b, include, override)
                    for i in range(geom.h.kernel):
                        for j in range(geom.w.kernel):
                            r, q = geom.h.position(a, i), geom.w.position(b, j)
                            if 0 <= r < geom.h.size and 0 <= q < geom.w.size:
                                dx[n, c, r, q] += share
    return _unbatch(dx, geom)


# --------------------------------------------------------------------------
# Vectorized: one strided slice per kernel tap
# --------------------------------------------------------------------------


def _padded(x4: FloatArray, geom: _Geometry, fill: float) -> FloatArray:
    """``x4`` inside a buffer large enough for every tap of every window.

    Returns ``x4`` itself (no copy) when no padding is needed.
    """
    hb, wb = geom.h.padded, geom.w.padded
    if (hb, wb) == (geom.h.size, geom.w.size):
        return x4
    buf = np.empty((geom.n, geom.c, hb, wb), dtype=x4.dtype)
    ph, pw = geom.h.padding, geom.w.padding
    top, left = slice(0, ph), slice(0, pw)
    bottom, right = slice(ph + geom.h.size, hb), slice(pw + geom.w.size, wb)
    buf[:, :, top, :] = fill
    buf[:, :, bottom, :] = fill
    buf[:, :, :, left] = fill
    buf[:, :, :, right] = fill
    buf[:, :, ph : ph + geom.h.size, pw : pw + geom.w.size] = x4
    return buf


def _window_taps(buf: FloatArray, geom: _Geometry) -> list[FloatArray]:
    """The ``k_h k_w`` strided views ``buf[..., tap(i), tap(j)]`` in row-major tap order.

    View ``i * k_w + j`` has shape ``(N, C, H_out, W_out)`` and holds tap
    ``(i, j)`` of every window.
    """
    return [
        buf[:, :, geom.h.tap(i), geom.w.tap(j)]
        for i in range(geom.h.kernel)
        for j in range(geom.w.kernel)
    ]


def _crop(buf: FloatArray, geom: _Geometry) -> FloatArray:
    """The input-sized region of a padded buffer, as a fresh contiguous array."""
    if buf.shape[2:] == (geom.h.size, geom.w.size):
        return buf
    ph, pw = geom.h.padding, geom.w.padding
    return np.ascontiguousarray(buf[:, :, ph : ph + geom.h.size, pw : pw + geom.w.size])


def _first_inside_tap(geom: _Geometry) -> IntArray:
    """``(H_out, W_out)`` row-major index of the first tap of each window inside the input."""
    first_row = np.argmax(geom.h.taps_inside(), axis=1)
    first_col = np.argmax(geom.w.taps_inside(), axis=1)
    index: IntArray = (first_row[:, None] * geom.w.kernel + first_col[None, :]).astype(np.intp)
    return index


def _max_and_argtap(x4: FloatArray, geom: _Geometry) -> tuple[FloatArray, NDArray[Any]]:
    """Running maximum over the taps, and the row-major index of the tap that won.

    The running best starts at minus infinity with the first in-input tap as
    its position, and a tap takes over only where it is strictly greater:
    the first maximum in row-major order wins, and padding never does.

    Because taps are visited in increasing order, the winning tap is the
    largest ``t`` at which tap ``t`` beat the running best (or the first
    in-input tap if none did), so the index is kept as a running maximum of
    ``t * beat`` -- cheap integer arithmetic instead of a masked assignment.
    """
    taps = _window_taps(_padded(x4, geom, -np.inf), geom)
    shape = (geom.n, geom.c, geom.h.out, geom.w.out)
    index_type = np.min_scalar_type(len(taps) - 1)
    best = np.full(shape, -np.inf, dtype=x4.dtype)
    argtap = np.empty(shape, dtype=index_type)
    argtap[...] = _first_inside_tap(geom)
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
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
) -> FloatArray:
    """Max pooling as a running ``numpy.maximum`` over the ``k_h k_w`` tap views."""
    xa, geom = _geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
    taps = _window_taps(_padded(_as_batch(xa), geom, -np.inf), geom)
    y = taps[0].copy()
    for tap in taps[1:]:
        np.maximum(y, tap, out=y)
    return _unbatch(y, geom)


def max_pool2d_backward_vectorized(
    grad_output: FloatArray,
    x: FloatArray,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
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
    never win, so cropping the buffer loses nothing.
    """
    xa, geom = _geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
    g4 = _as_batch(_grad_output(grad_output, xa, geom))
    _, argtap = _max_and_argtap(_as_batch(xa), geom)
    h, w = geom.h, geom.w
    hb, wb = h.padded, w.padded
    tap_offset = (
        np.arange(h.kernel)[:, None] * (h.dilation * wb) + np.arange(w.kernel)[None, :] * w.dilation
    ).ravel()
    window_start = (
        np.arange(h.out)[:, None] * (h.stride * wb) + np.arange(w.out)[None, :] * w.stride
    )
    position = tap_offset[argtap]
    position += window_start
    position += (np.arange(geom.n * geom.c) * (hb * wb)).reshape(geom.n, geom.c, 1, 1)
    flat = np.bincount(position.ravel(), weights=g4.ravel(), minlength=geom.n * geom.c * hb * wb)
    buf = flat.reshape(geom.n, geom.c, hb, wb).astype(xa.dtype, copy=False)
    return _unbatch(_crop(buf, geom), geom)


def avg_pool2d_vectorized(
    x: FloatArray,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> FloatArray:
    """Average pooling: the sum of the zero-padded tap views, divided by ``D_ab``."""
    xa, geom = _geometry(x, kernel_size, stride, padding, 1, ceil_mode)
    include, override = _avg_options(count_include_pad, divisor_override)
    taps = _window_taps(_padded(_as_batch(xa), geom, 0.0), geom)
    y = taps[0].copy()
    for tap in taps[1:]:
        y += tap
    y /= _divisors(geom, include, override, xa.dtype)
    return _unbatch(y, geom)


def avg_pool2d_backward_vectorized(
    grad_output: FloatArray,
    x: FloatArray,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> FloatArray:
    """Gradient of :func:`avg_pool2d_vectorized`: ``g / D`` added into every tap view."""
    xa, geom = _geometry(x, kernel_size, stride, padding, 1, ceil_mode)
    include, override = _avg_options(count_include_pad, divisor_override)
    g4 = _as_batch(_grad_output(grad_output, xa, geom))
    share = g4 / _divisors(geom, include, override, xa.dtype)
    buf = np.zeros((geom.n, geom.c, geom.h.padded, geom.w.padded), dtype=xa.dtype)
    for tap in _window_taps(buf, geom):
        tap += share
    return _unbatch(_crop(buf, geom), geom)
