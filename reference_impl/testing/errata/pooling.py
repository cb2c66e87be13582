"""Wrong formulas of max pooling: two published backward passes and a padding slip.

Each takes the public arguments of ``max_pool2d`` / ``max_pool2d_backward``
and is written one window at a time, as its source writes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from reference_impl import vectorized
from reference_impl._validation import int_pair
from reference_impl.testing.errata.catalog import Erratum

Window = list[tuple[int, int, float]]


def _windows(
    x: np.ndarray[Any, Any],
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil_mode: bool,
    pad_value: float | None,
) -> Iterator[tuple[tuple[int, ...], Window]]:
    """Every window as ``(output index, [(row, col, value), ...])`` in row-major tap order.

    Taps in the padding are listed with ``pad_value``, or left out when it is ``None``.
    Rows and columns are input coordinates (negative or past the end in the padding).
    """
    out = vectorized.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)
    (kh, kw), (ph, pw), (dh, dw) = (
        int_pair("kernel_size", kernel_size, 0),
        int_pair("padding", padding, 0),
        int_pair("dilation", dilation, 0),
    )
    sh, sw = (kh, kw) if stride is None else int_pair("stride", stride, 0)
    height, width = x.shape[-2:]
    for index in np.ndindex(*out.shape):
        *lead, a, b = index
        taps: Window = []
        for i in range(kh):
            for j in range(kw):
                r, q = a * sh - ph + i * dh, b * sw - pw + j * dw
                if 0 <= r < height and 0 <= q < width:
                    element = (*lead, r, q)
                    taps.append((r, q, float(x[element])))
                elif pad_value is not None:
                    taps.append((r, q, pad_value))
        yield index, taps


def max_pool2d_backward_every_tie(
    grad_output: np.ndarray[Any, Any],
    x: np.ndarray[Any, Any],
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> np.ndarray[Any, Any]:
    """Saraswat, max pool layer, first backward (docs/derivations.md, erratum 5).

    Mistake: the upstream gradient goes to *every* position equal to the window
    maximum. With a tie the window hands out its gradient two or more times;
    torch gives it to the first maximum only. (Overlaps are accumulated here,
    so this isolates the tie mistake.)

    Shrunk counterexample: x = [[[-2, -2, -2, -2], [-2, -2, -2, -2]]] (C = 1, 2 × 4),
    kernel (2, 2), stride (3, 1), padding (1, 0), dilation (2, 3), g = [[[1.75]]]: the
    one window reads x[1, 0] and x[1, 3], both −2; torch gives 1.75 to x[1, 0]
    only, this version to both.
    """
    dx = np.zeros_like(x)
    for index, taps in _windows(x, kernel_size, stride, padding, dilation, ceil_mode, None):
        top = max(value for _, _, value in taps)
        for r, q, value in taps:
            if value == top:
                element = (*index[:-2], r, q)
                dx[element] += grad_output[index]
    return dx


def max_pool2d_backward_assigned(
    grad_output: np.ndarray[Any, Any],
    x: np.ndarray[Any, Any],
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> np.ndarray[Any, Any]:
    """Saraswat, max pool layer, second backward (docs/derivations.md, erratum 6).

    Mistake: ``dx[argmax] = g`` per window. Right when windows do not overlap;
    when one element is the maximum of two overlapping windows the second
    window overwrites the first instead of adding to it.

    Shrunk counterexample: x = [[[-2], [-2]]] (C = 1, 2 × 1), kernel (2, 2),
    stride (2, 1), padding (0, 1), g = [[[1.75, -1.3125]]]: both windows pick
    x[0, 0], whose gradient is 1.75 − 1.3125 = 0.4375; assignment leaves −1.3125.
    """
    dx = np.zeros_like(x)
    for index, taps in _windows(x, kernel_size, stride, padding, dilation, ceil_mode, None):
        r, q, _ = max(taps, key=lambda tap: tap[2])  # first maximum, as torch
        element = (*index[:-2], r, q)
        dx[element] = grad_output[index]
    return dx


def max_pool2d_zero_padding(
    x: np.ndarray[Any, Any],
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> np.ndarray[Any, Any]:
    """Max pooling over a zero-padded input (``np.pad`` with its default constant 0).

    Mistake: the padding must be −∞. A window whose entries next to the border
    are all negative returns 0 instead of its largest entry.

    Shrunk counterexample: x = [[[-2, -2]]] (C = 1, 1 × 2), kernel (1, 2),
    padding (0, 1), dilation (1, 2): the window reads the left padding and
    x[0, 1]; torch returns −2, this version 0.
    """
    out: np.ndarray[Any, Any] = vectorized.max_pool2d(
        x, kernel_size, stride, padding, dilation, ceil_mode
    )
    for index, taps in _windows(x, kernel_size, stride, padding, dilation, ceil_mode, 0.0):
        out[index] = max(value for _, _, value in taps)
    return out


def max_pool2d_backward_zero_padding(
    grad_output: np.ndarray[Any, Any],
    x: np.ndarray[Any, Any],
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> np.ndarray[Any, Any]:
    """Backward of :func:`max_pool2d_zero_padding`.

    Mistake: where a padded zero is the maximum, the gradient goes to the padding
    and is dropped with it, so those inputs get nothing.

    Shrunk counterexample: the one of :func:`max_pool2d_zero_padding`, with
    g = [[[1.75]]]: torch sends 1.75 to x[0, 1], this version sends it nowhere.
    """
    dx = np.zeros_like(x)
    height, width = x.shape[-2:]
    for index, taps in _windows(x, kernel_size, stride, padding, dilation, ceil_mode, 0.0):
        r, q, _ = max(taps, key=lambda tap: tap[2])
        if 0 <= r < height and 0 <= q < width:
            element = (*index[:-2], r, q)
            dx[element] += grad_output[index]
    return dx


ERRATA = [
    Erratum(
        name="erratum-5-max-pool-gradient-to-every-tie",
        formula="max_pool2d",
        source="Saraswat, first max-pool backward; docs/derivations.md, erratum 5",
        mistake="the gradient goes to every position equal to the window maximum, not the first",
        backward=max_pool2d_backward_every_tie,
    ),
    Erratum(
        name="erratum-6-max-pool-gradient-assigned",
        formula="max_pool2d",
        source="Saraswat, second max-pool backward; docs/derivations.md, erratum 6",
        mistake="dx[argmax] = g per window: overlapping windows overwrite instead of adding",
        backward=max_pool2d_backward_assigned,
    ),
    Erratum(
        name="max-pool-zero-padding",
        formula="max_pool2d",
        source="classic slip",
        mistake="the input is padded with 0 instead of −∞, so the padding can win",
        forward=max_pool2d_zero_padding,
        backward=max_pool2d_backward_zero_padding,
    ),
]
