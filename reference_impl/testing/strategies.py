"""Hypothesis strategies shared by every spec: dtypes, values, layouts, gradients.

Values are drawn on a dyadic grid (:data:`GRID`) so that linear formulas are
computed exactly in any summation order (see ``tolerances.py``); the corner
values a family needs (exact zeros at kinks, ties, extreme logits,
probabilities 0 and 1) are mixed in on purpose by the family's spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

#: the two float dtypes every formula supports
FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
#: ordinary values: multiples of 1/16 in [−4, 4], exact in both dtypes
GRID_STEP = 16
GRID = st.integers(-4 * GRID_STEP, 4 * GRID_STEP).map(lambda k: k / GRID_STEP)

#: the largest magnitude of a seeded upstream gradient (:func:`upstream_gradient`)
UPSTREAM_MAX = 2.0

#: memory layouts a drawn array can be handed over in
LAYOUTS = ("contiguous", "fortran", "strided", "reversed")


def dtypes() -> st.SearchStrategy[np.dtype[Any]]:
    return st.sampled_from(FLOAT_DTYPES)


def arrays(
    dtype: np.dtype[Any],
    shape: Sequence[int],
    elements: st.SearchStrategy[float] = GRID,
) -> st.SearchStrategy[np.ndarray[Any, Any]]:
    """A C-contiguous array of ``shape`` with the given elements."""
    return hnp.arrays(dtype, tuple(shape), elements=elements)


def grid_or(*specials: float) -> st.SearchStrategy[float]:
    """Grid values mixed with special values that the strategy must reach."""
    return st.one_of(GRID, st.sampled_from(specials))


def relayout(array: np.ndarray[Any, Any], layout: str) -> np.ndarray[Any, Any]:
    """The same values as ``array`` in another memory layout (a view where possible).

    ``fortran``: column-major copy; ``strided``: every other element of a
    larger buffer along each axis; ``reversed``: a view with negative strides.
    Zero-dimensional arrays are returned as they are.
    """
    if array.ndim == 0 or layout == "contiguous":
        return array
    if layout == "fortran":
        return np.asfortranarray(array)
    if layout == "strided":
        buffer = np.full(tuple(2 * n for n in array.shape), np.nan, dtype=array.dtype)
        view = buffer[tuple(slice(None, None, 2) for _ in array.shape)]
        view[...] = array
        return view
    if layout == "reversed":
        flipped = np.ascontiguousarray(array[tuple(slice(None, None, -1) for _ in array.shape)])
        return flipped[tuple(slice(None, None, -1) for _ in array.shape)]
    raise ValueError(f"unknown layout {layout!r}")


def is_non_contiguous(array: np.ndarray[Any, Any]) -> bool:
    return array.ndim > 0 and array.size > 1 and not array.flags.c_contiguous


def upstream_gradient(
    shape: tuple[int, ...], dtype: np.dtype[Any], seed: int
) -> np.ndarray[Any, Any]:
    """A random upstream gradient for an output of ``shape``.

    Drawn from a generator seeded by Hypothesis rather than element by element,
    so shrinking never collapses it to all zeros or all ones (with all ones
    the softmax gradient is exactly zero and a wrong formula passes). Values
    are nonzero multiples of 1/16 in [−2, 2], exact in both dtypes.
    """
    rng = np.random.default_rng(seed)
    magnitude = rng.integers(1, int(UPSTREAM_MAX * GRID_STEP) + 1, size=shape)
    sign = rng.choice(np.array([-1, 1]), size=shape)
    return np.asarray(sign * magnitude / GRID_STEP, dtype=dtype)


def grad_seeds() -> st.SearchStrategy[int]:
    return st.integers(0, 2**32 - 1)
