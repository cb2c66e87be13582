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

    float64: u = 1.1e-16, so K = 1 gives 8.9e-15 and K = 1000 gives 4.5e-13.
    float32: u = 6.0e-8,  so K = 1 gives 4.8e-6  and K = 1000 gives 2.4e-4.

Time-unrolled formulas (recurrent layers, backpropagation through time)
    A recurrent formula reaches a quantity through a chain of steps rather
    than one reduction. To first order, the rounding error of a chain is the
    sum of the errors each link makes, carried forward by the derivatives of
    the later links. Step ``t`` of the forward pass sums ``K_f`` terms (the
    pre-activation ``b_ih + W_ih x + b_hh + W_hh h``: ``K_f = I + H + 2``) and
    then applies a few elementary functions and products (the gates, the
    cell update), within ``ELEMENTARY_ULPS``; step ``t`` of the backward pass
    sums ``K_b`` terms (``δ W_hh`` plus the carried and the upstream terms:
    ``K_b = G·H + 2`` for ``G`` gate blocks) after its own elementary chain.
    A weight gradient finally sums ``N·T`` products over batch and time. The
    longest chain behind one element of an output or a gradient crosses all
    ``T`` forward steps, all ``T`` backward steps and that last sum, so the
    reduction length to use in ``bound`` is

        K = T · (K_f + K_b + 2 · ELEMENTARY_ULPS) + N · T        (``unrolled_length``)

    This is the first-order bound when the derivative factors of the later
    links are at most about 1 in magnitude (a stable recurrence): an error in
    ``h_{t−1}`` reaches ``h_t`` through ``φ'(a) W_hh``, an error in ``c_{t−1}``
    reaches ``c_t`` through ``f ≤ 1``. The recurrent strategies keep those
    factors small, drawing the weights in [−1, 1] rather than on the whole
    grid (with H ≤ 3, ``‖W_hh‖∞ ≤ 3``, damped by ``σ' ≤ 1/4`` and
    ``tanh' ≤ 1``) and the shapes small (T ≤ 4, N ≤ 2, I, H ≤ 3); the rounding
    errors of a step are sums of terms of both signs, far below the
    worst-case ``K·u`` that the bound charges for each. (Measured: the worst
    error is about a tenth of the bound, 0.09 to 0.11 in runs of 2000
    examples per recurrent formula, 0.16 with weights on the whole grid.)
    With T = 4, I = H = 3, G = 4 and N = 2 this gives K = 224: 1.1e-13 in
    float64, 5.8e-5 in float32. A cell is the case T = 1. The ReLU RNN is
    linear between its kinks: its strategy draws weights in steps of 1/2, so
    that every product and sum stays exact in float32 through four steps and
    the kinks fall where torch's do.

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


def unrolled_length(steps: int, step_forward: int, step_backward: int, final_sum: int) -> int:
    """The reduction length of a time-unrolled formula (see "Time-unrolled formulas" above).

    ``steps`` time steps, each summing ``step_forward`` terms forward and
    ``step_backward`` terms backward after a chain of elementary functions,
    then a sum of ``final_sum`` terms over batch and time.
    """
    return steps * (step_forward + step_backward + 2 * ELEMENTARY_ULPS) + final_sum
