"""Every comparison bound of the suite, derived in one place.

What is compared
    ``|actual_i − expected_i| ≤ bound · (|expected_i| + max(‖expected‖∞, 1))``

The first term makes the bound relative element by element; the second keeps
it meaningful when an element is the result of cancellation (a sum of terms
much larger than itself), where rounding error scales with the terms, not the
result. The ``1`` floor is the scale of the drawn data (see below).

Where the error comes from
    The strategies draw ordinary values on a dyadic grid (multiples of 1/16
    with magnitude ≤ 4, ``strategies.GRID``), so every product of two inputs
    and every partial sum of such products is exactly representable in
    float64, and in float32 up to reduction lengths far beyond the shapes
    drawn. Linear formulas (linear, conv, pooling, sums) are therefore
    computed exactly by any summation order, and loop, vectorized and torch
    differ only through the non-linear steps: exp, log, tanh, division.

    Each such step is correctly rounded to within a few units in the last
    place, ``u = eps / 2`` of the dtype. Higham's bound for a sum of ``K``
    terms, each carrying a relative error ``δ ≤ c·u``, is
    ``|fl(Σ) − Σ| ≤ (K + c) · u · Σ|terms|`` to first order. Two
    implementations each make such an error, so their difference is at
    most twice that. Hence, with ``K`` the longest reduction that feeds
    one output element (the number of classes for softmax, n for a mean,
    C_in·kh·kw for conv2d):

        bound(dtype, K) = SAFETY · u(dtype) · (K + ELEMENTARY_ULPS)

    ``ELEMENTARY_ULPS = 16`` covers a chain of a few elementary functions
    each within 2 ulp (libm, SLEEF and Python's ``math`` all are), and
    ``SAFETY = 4`` covers the factor 2 of two implementations and the factor
    2 between Σ|terms| and the scale the comparison uses.

    NumPy has no erf: the exact GELU's vectorized version uses the rational
    approximations of ``reference_impl/_erf.py``, measured within 1 ulp of
    the correctly rounded erf (float64, and float32 for the float32 path),
    so erf is one more elementary function of the allowance. GELU chains
    erf, 1 + erf, ×½ and ×x: a handful of ulps. Where 1 + erf cancels (x
    below −3, where torch's float32 erf leaves Φ(x) = ½(1 + erf) with an
    absolute error of about u), the error is absolute, of order u·|x|, and
    the comparison's scale floor of 1 covers it; the drawn values stay
    within |x| ≤ 4 there (the extreme values ±89, ±750, ±1e4 have Φ exactly
    0 or 1 in both implementations).

    float64: u = 1.1e-16, so K = 1 gives 8.9e-15 and K = 1000 gives 4.5e-13.
    float32: u = 6.0e-8,  so K = 1 gives 4.8e-6  and K = 1000 gives 2.4e-4.

A wrong formula (a missing factor, a wrong index, a sign) produces relative
errors of order 1, many orders of magnitude above these bounds, which is what
lets the errata tests in ``reference_impl/testing/errata`` fail every wrong formula.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: elementary-function error allowance, in units in the last place.
ELEMENTARY_ULPS = 16
#: two implementations, each off by at most the first-order bound, plus scale slack.
SAFETY = 4


def unit_roundoff(dtype: np.dtype[Any] | type) -> float:
    """``u = eps / 2``: the largest relative error of one correctly rounded operation."""
    return float(np.finfo(dtype).eps) / 2


def bound(dtype: np.dtype[Any] | type, reduction_length: int) -> float:
    """The relative bound for outputs that each sum ``reduction_length`` terms."""
    if reduction_length < 1:
        reduction_length = 1
    return SAFETY * unit_roundoff(dtype) * (reduction_length + ELEMENTARY_ULPS)
