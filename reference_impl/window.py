r"""Sliding windows over the last two axes: the geometry shared by convolution and pooling.

Along one axis of length ``n``, with kernel size ``k``, stride ``s``, dilation
``d`` and ``p_before``/``p_after`` padding, tap ``t < k`` of output ``o`` reads
input position

.. math::

    r(o, t) = o s - p_\text{before} + t d ,

that is position ``o s + t d`` of the padded axis. The number of outputs is
:func:`output_size`. In a padded buffer ``x̄`` (the input surrounded by a fill
value: zeros for convolution and average pooling, −∞ for max pooling), the
windows of a whole ``(…, H, W)`` array form one strided view of shape
``(…, H_out, W_out, k_h, k_w)``, built without moving any data::

    windows(x̄)[…, i, j, a, e] = x̄[…, i·s_h + a·d_h, j·s_w + e·d_w]

Fixing the tap ``(a, e)`` selects, for every window at once, the element at
that tap: a stride-``s`` slice of ``x̄``. Backward passes run this the other
way: :func:`scatter_add` adds one ``(…, H_out, W_out)`` array per tap into the
same slices of a gradient buffer, so an element covered by several windows
collects all their contributions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import NDArray

from reference_impl._validation import int_pair, is_int

Pair = int | tuple[int, int]
Sides = tuple[int, int, int, int]


def padding_sides(padding: object, kernel_size: Pair, dilation: Pair) -> Sides:
    """Any accepted ``padding`` as ``(top, bottom, left, right)``.

    ``padding`` is an int (all four sides), ``(p_h, p_w)`` (both sides of an
    axis), ``(top, bottom, left, right)``, ``"valid"`` (none) or ``"same"``:
    a total of ``d·(k − 1)`` per axis, the odd extra going after the input
    (bottom or right), as in torch.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ValueError(f"padding must be 'valid' or 'same' when a string, got {padding!r}")
        kh, kw = int_pair("kernel_size", kernel_size, 1)
        dh, dw = int_pair("dilation", dilation, 1)
        th, tw = dh * (kh - 1), dw * (kw - 1)
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    if is_int(padding):
        sides = (int(padding),) * 4  # type: ignore[call-overload]
    elif isinstance(padding, (tuple, list)) and all(is_int(v) for v in padding):
        if len(padding) not in (2, 4):
            raise ValueError(
                "padding must be an int, (pad_h, pad_w) or (top, bottom, left, right), "
                f"got {padding!r}"
            )
        p = [int(v) for v in padding]
        sides = (p[0], p[0], p[1], p[1]) if len(p) == 2 else (p[0], p[1], p[2], p[3])
    else:
        raise TypeError(
            f"padding must be an int, a tuple of 2 or 4 ints, 'valid' or 'same', got {padding!r}"
        )
    if min(sides) < 0:
        raise ValueError(f"padding must be non-negative, got {padding!r}")
    return sides


def output_size(
    size: int,
    kernel: int,
    stride: int,
    pad_before: int,
    pad_after: int,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Number of windows along one axis (possibly < 1: the caller rejects those).

    ``⌊(size + p_before + p_after − d·(k − 1) − 1) / s⌋ + 1``: the last window
    ends inside the padded axis. With ``ceil_mode`` the floor becomes a ceiling,
    but, as in torch, the extra window is kept only if it starts inside the
    input or the leading padding, i.e. before position ``size + p_before`` of
    the padded axis.
    """
    reach = size + pad_before + pad_after - dilation * (kernel - 1) - 1
    out = (-(-reach // stride) if ceil_mode else reach // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_before:
        out -= 1
    return out


@dataclass(frozen=True)
class Axis:
    """The windows along one axis: input length, kernel, stride, dilation, padding, outputs."""

    size: int
    kernel: int
    stride: int
    dilation: int
    before: int
    after: int
    out: int

    def position(self, o: int, t: int) -> int:
        """Input index ``o·s − p_before + t·d`` of tap ``t`` of output ``o`` (maybe outside)."""
        return o * self.stride - self.before + t * self.dilation

    @cached_property
    def positions(self) -> NDArray[np.intp]:
        """``(out, kernel)`` array of :meth:`position` for every output and tap."""
        starts = np.arange(self.out, dtype=np.intp) * self.stride - self.before
        return starts[:, None] + np.arange(self.kernel, dtype=np.intp) * self.dilation

    @property
    def padded(self) -> int:
        """Length of a padded buffer holding every tap of every window.

        ``size + p_before + p_after``, or more when ``ceil_mode`` lets the last
        window run past the trailing padding.
        """
        reach = (self.out - 1) * self.stride + self.dilation * (self.kernel - 1) + 1
        return max(self.size + self.before + self.after, reach)


def identity(size: int) -> Axis:
    """The axis of windows of one element at unit stride: output ``o`` is input ``o``."""
    return Axis(size, 1, 1, 1, 0, 0, size)


@dataclass(frozen=True)
class Window:
    """Windows over a ``(…, H, W)`` array: one :class:`Axis` per spatial axis."""

    h: Axis
    w: Axis

    @property
    def out(self) -> tuple[int, int]:
        return (self.h.out, self.w.out)

    def rows(self) -> Window:
        """The windows of the height axis alone, over ``(…, H_b, W_b)``: the width passes."""
        return Window(self.h, identity(self.w.padded))

    def columns(self) -> Window:
        """The windows of the width axis alone, over ``(…, H_out, W_b)``: the height is done."""
        return Window(identity(self.h.out), self.w)


def window(
    size: tuple[int, ...],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    sides: Sides,
    ceil_mode: bool = False,
) -> Window:
    """The :class:`Window` of a ``size = (H, W)`` input padded by ``sides``."""
    top, bottom, left, right = sides
    axes = [
        Axis(n, k, s, d, lo, hi, output_size(n, k, s, lo, hi, d, ceil_mode))
        for n, k, s, d, lo, hi in zip(
            size, kernel, stride, dilation, (top, left), (bottom, right), strict=True
        )
    ]
    return Window(axes[0], axes[1])


def pad(
    x: NDArray[Any], win: Window, fill: float = 0.0, out: NDArray[Any] | None = None
) -> NDArray[Any]:
    """``x̄``: ``x`` inside a ``(…, H_b, W_b)`` buffer of ``fill``, H_b = ``win.h.padded``.

    Without ``out``, returns ``x`` itself (no copy) when no padding is needed,
    else a new C-ordered buffer. With ``out`` (an array of the padded shape in
    any memory order, e.g. a transposed view of a batch-last buffer), fills and
    returns ``out``.
    """
    hb, wb = win.h.padded, win.w.padded
    top, left = win.h.before, win.w.before
    h, w = x.shape[-2:]
    if out is not None:
        if out.shape != (*x.shape[:-2], hb, wb):
            raise ValueError(f"out of shape {out.shape} is not padded for {win}")
        buf = out
    elif (hb, wb) == (h, w):
        return x
    else:
        buf = np.empty((*x.shape[:-2], hb, wb), dtype=x.dtype)
    buf[..., :top, :] = fill
    buf[..., top + h :, :] = fill
    buf[..., top : top + h, :left] = fill
    buf[..., top : top + h, left + w :] = fill
    buf[..., top : top + h, left : left + w] = x
    return buf


def crop(buf: NDArray[Any], win: Window) -> NDArray[Any]:
    """The input-sized region of a padded buffer: ``buf`` itself, or a contiguous copy."""
    top, h, left, w = win.h.before, win.h.size, win.w.before, win.w.size
    if buf.shape[-2:] == (h, w):
        return buf
    return np.ascontiguousarray(buf[..., top : top + h, left : left + w])


def _strided(buf: NDArray[Any], win: Window, writeable: bool) -> NDArray[Any]:
    if buf.shape[-2:] != (win.h.padded, win.w.padded):
        raise ValueError(f"buffer of shape {buf.shape} is not padded for {win}")
    sh, sw = buf.strides[-2:]
    view: NDArray[Any] = as_strided(
        buf,
        shape=(*buf.shape[:-2], win.h.out, win.w.out, win.h.kernel, win.w.kernel),
        strides=(
            *buf.strides[:-2],
            sh * win.h.stride,
            sw * win.w.stride,
            sh * win.h.dilation,
            sw * win.w.dilation,
        ),
        writeable=writeable,
    )
    return view


def windows(buf: NDArray[Any], win: Window) -> NDArray[Any]:
    """Read-only view ``(…, H_out, W_out, k_h, k_w)`` of the windows of a padded buffer.

    Entry ``[…, i, j, a, e]`` is ``buf[…, i·s_h + a·d_h, j·s_w + e·d_w]``;
    ``buf`` must come from :func:`pad` (or have its shape).
    """
    return _strided(buf, win, writeable=False)


def _inside_range(axis: Axis, tap: int, first: int, stop: int) -> tuple[int, int]:
    """The outputs ``first ≤ o < stop`` whose tap ``tap`` reads the input (not the padding)."""
    offset = tap * axis.dilation - axis.before  # input position of tap ``tap`` of output 0
    lo = max(first, -(offset // axis.stride))  # ceil(−offset / s)
    hi = min(stop, -(-(axis.size - offset) // axis.stride))  # ceil((size − offset) / s)
    return lo, max(lo, hi)


def scatter_add(
    buf: NDArray[Any],
    win: Window,
    tap_values: Callable[[int, int], NDArray[Any]],
    rows: tuple[int, int] | None = None,
    cropped: bool = False,
) -> None:
    """Add ``tap_values(a, e)[…, i, j]`` into ``buf[…, i·s_h + a·d_h, j·s_w + e·d_w]``.

    ``buf`` is a padded gradient buffer (any memory order), updated in place, one
    tap ``(a, e)`` at a time, so windows that overlap add up instead of
    overwriting each other. With ``rows = (i0, i1)`` only the windows of output
    rows ``i0 ≤ i < i1`` are visited, and ``tap_values`` returns their
    ``(…, i1 − i0, W_out)`` values: a caller can scatter a block of windows
    while it is still in cache. With ``cropped``, ``buf`` is the unpadded
    ``(…, H, W)`` array itself and the terms that would land in the padding
    are dropped (they are cropped away anyway), which spares a padded buffer
    and the copy out of it.
    """
    i0, i1 = rows if rows is not None else (0, win.h.out)
    if not cropped:
        view = _strided(buf, win, writeable=True)[..., i0:i1, :, :, :]
        for a in range(win.h.kernel):
            for e in range(win.w.kernel):
                tap = view[..., a, e]
                np.add(tap, tap_values(a, e), out=tap)
        return
    if buf.shape[-2:] != (win.h.size, win.w.size):
        raise ValueError(f"buffer of shape {buf.shape} is not the unpadded input of {win}")
    for a in range(win.h.kernel):
        r0, r1 = _inside_range(win.h, a, i0, i1)
        for e in range(win.w.kernel):
            c0, c1 = _inside_range(win.w, e, 0, win.w.out)
            if r0 == r1 or c0 == c1:
                continue
            top, left = win.h.position(r0, a), win.w.position(c0, e)
            tap = buf[
                ...,
                top : top + (r1 - r0 - 1) * win.h.stride + 1 : win.h.stride,
                left : left + (c1 - c0 - 1) * win.w.stride + 1 : win.w.stride,
            ]
            np.add(tap, tap_values(a, e)[..., r0 - i0 : r1 - i0, c0:c1], out=tap)
