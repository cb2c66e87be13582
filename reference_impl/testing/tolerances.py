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


# ----------------------------------------------------------------------------- normalization
#
# Batch, layer and group norm are not covered by the grid argument above: the
# mean of a set of n grid values is rounded unless n is a power of two (and
# torch's Welford and fused kernels round it even then), the variance is a
# reduction of length n, and the reciprocal square root amplifies nothing but
# is itself a few ulps. What makes normalization different is *cancellation*:
# x − μ subtracts two numbers of size M = max|x| to get one of size σ, and the
# rounding error of μ (or of torch's fused ``x·a + b`` form, which subtracts
# μ·a from x·a) is an absolute error of order u·M, which x̂ = (x − μ)·r turns
# into u·M·r. Grid values make neither the mean nor the fused form exact, so
# the bound has to carry that factor explicitly.


def normalization_length(
    n: int,
    m: int,
    kappa: float,
    xhat_max: float,
    rstd_max: float,
    gain: float,
) -> int:
    """The effective reduction length of a normalization, for :func:`bound`.

    The quantities, per set of statistics (one channel for batch norm, one
    row for layer norm, one example's group for group norm), maximised over
    the sets and computed exactly from the case's arguments:

    ``n``
        the set's size: the length of the sums giving μ and σ²;
    ``m``
        the length of the sums giving ∂L/∂γ and ∂L/∂β (n for batch norm, the
        number of rows for layer norm, N·∏spatial for group norm);
    ``kappa``  κ = M·r
        with M the largest |x| (or |μ|) of the set and r = 1/√(σ² + ε): how
        many "standard deviations" the data sits from zero, the amplification
        of an absolute error in μ into x̂;
    ``xhat_max``  X = max |x̂|;
    ``rstd_max``  R = max r;
    ``gain``  Γ = max(1, max |γ|).

    Derivation, to first order in u, for one implementation (the upstream
    gradient dy is drawn on the grid with |dy| ≤ 2, and γ on the grid, so
    g = γ·dy and sums of grid values are exact):

    1. μ. Any summation order (sequential, pairwise, BLAS, Welford's update
       ``m += (x − m)/k``) has |Δμ| ≤ 3n·u·M: Higham's bound (n − 1)u·Σ|x|/n
       plus the division, and Welford's per-step errors of at most 3uM.
    2. σ². The two-pass sum Σ(x − μ̃)²/n has relative error (n + 3)u; the
       error of μ̃ enters only to second order, because Σ(x − μ) = 0.
       Welford's update has relative error n·u·√(1 + μ²/σ²) (Chan, Golub and
       LeVeque, "Algorithms for computing the sample variance: analysis and
       recommendations", The American Statistician, 1983), that is
       |Δσ²| ≤ n·u·σ·√(σ² + μ²) ≤ n·u·σ·M. Through r = (σ² + ε)^(−1/2), whose
       own rounding is 2u, |Δr|/r ≤ ½·n·u·σ·M/(σ² + ε) + 2u ≤ ½·n·u·κ + 2u,
       because σ ≤ √(σ² + ε).
    3. x̂ = (x − μ)·r. |Δx̂| ≤ r·|Δμ| + |x̂|·(|Δr|/r + u)
       ≤ 3n·u·κ + X·(½n·u·κ + 3u) ≤ u·D,  with  D = nκ(3 + X) + 3X.
       The fused form ``x·(γr) + (β − μγr)`` of torch's kernels rounds two
       products of size M·r·|γ| before they cancel: u·κ·Γ, inside Γ·D.
    4. y = γ x̂ + β: |Δy| ≤ Γ·u·D.                → ``forward = Γ D``
    5. ∂L/∂x = r (g − mean g) − r x̂ mean(g x̂), with |g| ≤ 2Γ.
       First term: g − mean g is exact but for two roundings, of size at
       most 4Γ; r carries |Δr|/r ≤ ½nuκ + 2u: at most 2rΓ·u·(nκ + 4n + 8).
       Second term: mean(g x̂) has size at most 2Γ·X and error
       2Γ(|Δx̂| + 3nuX); with x̂ and its error,
       r·(|Δx̂|·2ΓX + X·2Γ(|Δx̂| + 3nuX)) ≤ 2rΓ·u·(2X·D + 3nX²).
       The result can cancel far below the size of its terms (with n = 2 it
       is of order ε/σ² only), so the error is measured against the
       comparison's floor of 1, not against ∂L/∂x:
       → ``backward = 2RΓ (nκ + 4n + 8 + 2XD + 3nX²)``
    6. ∂L/∂γ = Σ dy x̂ over m terms: 2m·u·D + (m + 2)u·2m·X
       → ``parameters = 2m (D + (m + 2) X)``.
       ∂L/∂β = Σ dy is a sum of grid values: exact.

    The effective length is the largest of the three (and at least n); it
    goes into :func:`bound`, whose SAFETY factor covers the two
    implementations being compared, each within the estimate above. Running
    statistics have their own bound: see ``oracle_tests/test_normalization.py``.

    Orders of magnitude: grid data (M ≤ 4, σ ≈ 1.5, r ≈ 0.6, κ ≈ 3, X ≈ 2) with
    n = 6 and Γ = 4 gives a few thousand, i.e. about 1e-3 in float32 and
    2e-12 in float64. A set whose mean sits far from zero relative to its
    spread (x ≈ 3 ± 1/32: κ ≈ 100) or whose variance is below ε (r = 1/√ε ≈ 316)
    makes the float32 bound loose (up to ~1) while float64 stays near 1e-9:
    those corners are decided in float64. A wrong formula (a missing term, a
    biased for an unbiased variance, a wrong axis) is off by a relative O(1).
    """
    d = n * kappa * (3 + xhat_max) + 3 * xhat_max
    forward = gain * d
    backward = (
        2 * rstd_max * gain * (n * kappa + 4 * n + 8 + 2 * xhat_max * d + 3 * n * xhat_max**2)
    )
    parameters = 2 * m * (d + (m + 2) * xhat_max)
    return int(np.ceil(max(n, forward, backward, parameters)))


def normalization_sets(
    sets: np.ndarray[Any, Any],
    eps: float,
    mean: np.ndarray[Any, Any] | None = None,
    var: np.ndarray[Any, Any] | None = None,
) -> tuple[float, float, float]:
    """``(κ, X, R)`` of the sets, one per row of ``sets`` (each row one set), in float64.

    ``mean`` and ``var`` replace the sets' own (biased) statistics, for eval
    mode's running statistics.
    """
    values = np.asarray(sets, dtype=np.float64)
    if values.size == 0:
        return 0.0, 0.0, 0.0
    mu = values.mean(axis=1) if mean is None else np.asarray(mean, dtype=np.float64)
    variance = values.var(axis=1) if var is None else np.asarray(var, dtype=np.float64)
    rstd = 1 / np.sqrt(variance + eps)
    magnitude = np.maximum(np.abs(values).max(axis=1), np.abs(mu))
    kappa = float(np.max(magnitude * rstd))
    xhat = float(np.max(np.abs(values - mu[:, None]) * rstd[:, None]))
    return kappa, xhat, float(np.max(rstd))
