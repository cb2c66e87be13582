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

import math
from dataclasses import dataclass
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


# --------------------------------------------------------------------------- optimizer trajectories
#
# An optimizer step is not one formula with one reduction but a chain of them,
# repeated, that divides by √v: the relative bound above does not carry over.
# The functions below bound the error of every quantity of a trajectory element
# by element, following the same recurrences. See ``adam_drift``.

Array = np.ndarray[Any, Any]


def _sqrt_error(value: Array, error: Array) -> Array:
    """Bound on ``|√a − √a'|`` for the exact ``a ≈ value ≥ 0`` and ``|a − a'| ≤ error``.

    ``|√a − √a'| = |a − a'| / (√a + √a') ≤ |a − a'| / √a``, and always
    ``≤ √|a − a'|``; ``value`` is itself computed, so ``a ≥ value − error``.
    """
    low = np.maximum(value - error, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(low > 0, error / np.sqrt(low), np.inf)
    return np.minimum(relative, np.sqrt(error))


def _quotient_error(magnitude: Array, error: Array, divisor: Array, divisor_error: Array) -> Array:
    """Bound on ``|n/d − n'/d'|`` for ``|n| ≤ magnitude``, ``|n − n'| ≤ error``, ``|d − d'|``.

    ``n/d − n'/d' = ((n − n')d + n'(d' − d)) / (d d')``, so the difference is at most
    ``(error + magnitude·divisor_error/d) / d'`` with ``d ≥ divisor − divisor_error``
    and ``d' ≥ divisor − 2·divisor_error`` (``divisor`` is itself computed). Infinite
    when the divisor may vanish: the quotient is then not determined at all.
    """
    low = divisor - divisor_error
    lower = divisor - 2 * divisor_error
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = (error + magnitude * divisor_error / low) / lower
    return np.where((low > 0) & (lower > 0), bound, np.inf)


def _finite_or_inf(*arrays: Array) -> list[Array]:
    """Each array with ``nan`` (from ``0·∞``) replaced by ``∞``: no bound there."""
    return [np.where(np.isnan(array), np.inf, array) for array in arrays]


def adam_drift(
    param: Array,
    grads: list[Array],
    *,
    dtype: np.dtype[Any] | type,
    lr: float,
    betas: tuple[float, float],
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    maximize: bool,
    decoupled: bool,
) -> list[dict[str, Array]]:
    r"""Running error bounds of an Adam (``decoupled=False``) or AdamW trajectory.

    Returns, after each step, arrays bounding ``|computed − exact|`` element by
    element for ``param`` and each state array (torch's keys), where "exact" is
    the same trajectory in exact arithmetic from the same ``param`` and
    ``grads`` (with ``1 − βᵗ`` and ``α/(1 − β₁ᵗ)`` as computed in double, which
    every implementation computes identically). Two implementations may each be
    off by that much, so they agree within twice the bound.

    Why not ``bound(dtype, K)``
        ``m`` is a moving average of gradients of both signs and may cancel, so
        its error is relative to ``M = Σ|terms|``, not to ``|m|``; the update
        divides it by ``√v̂ + ε``, which may be small, and the division turns an
        error in ``v`` into one in ``θ`` through ``|m|/(√v̂ + ε)²``. The error of
        one step is therefore ``lr·M/(√v̂ + ε)`` times a few ``u``, not
        ``|θ|`` times a few ``u``; and L2 decay feeds ``θ``'s error back into ``g``.

    Model
        Every operation (``+ − × / √``, and each conversion of a hyper-parameter
        to the dtype) is correctly rounded: ``fl(a ∘ b) = (a ∘ b)(1 + δ)``,
        ``|δ| ≤ u``. A sum of terms each carrying relative errors ``≤ k u`` is off
        by ``k u`` times the sum of their magnitudes (first order: terms in
        ``u²`` are dropped). Capital letters are such magnitudes, ``e_x`` the error
        bound of ``x``; ``G = |grad| + λ_L|θ|`` with ``λ_L`` the L2 decay (0 for AdamW).

    Recurrences, per step ``t`` (from ``e = 0``: ``param`` and ``grads`` are exact)
        * ``g = ±grad + λ_L θ``: the propagated ``λ_L e_θ``, and three roundings
          (``λ_L``, the product, the sum) of terms at most ``G``:
          ``e_g = λ_L e_θ + 3u G``.
        * AdamW ``θ ← θ(1 − αλ)``: the factor and the product round:
          ``e_θ ← |1 − αλ| e_θ + 2u |θ(1 − αλ)|``.
        * ``m = β₁m + (1 − β₁)g``, ``M = β₁M + (1 − β₁)G``. Written so, three
          roundings and two coefficients; as torch's ``lerp``
          ``m + w(g − m)`` (``w = 1 − β₁``, or ``g − (g − m)(1 − w)`` when
          ``w ≥ 1/2``) the difference ``g − m`` is at most ``G + M_{t−1}``, and its
          weight times that is at most ``2M_t`` in either branch, so seven
          roundings of terms at most ``M_t``, one more for the coefficient:
          ``e_m = β₁e_m + (1 − β₁)e_g + 8u M``.
        * ``v = β₂v + (1 − β₂)g²``: terms of one sign, so relative: two roundings
          per term plus the sum, four with the coefficients, and the propagated
          ``|g² − g'²| ≤ 2G e_g + e_g²``:
          ``e_v = β₂e_v + (1 − β₂)(2G e_g + e_g²) + 4u v``.
        * AMSGrad ``v_max = max(v_max, v)``: the maximum is 1-Lipschitz in each
          argument and exact: ``e_max = max(e_max, e_v)``.
        * ``r = √w / √(1 − β₂ᵗ)`` (``w`` = ``v`` or ``v_max``): ``|√w − √w'| ≤
          min(e_w / √w, √e_w)`` (the first is the derivative bound, the second
          holds for every ``w ≥ 0``), plus the root and the division:
          ``e_r = min(e_w/√w, √e_w)/√(1 − β₂ᵗ) + 2u r``.
        * ``d = r + ε``: ``e_d = e_r + 2u d`` (``ε``'s conversion, the sum).
        * ``Δ = (α/(1 − β₁ᵗ))·m/d``, magnitude ``A = (α/(1 − β₁ᵗ))·M/d``: the quotient
          rule ``|m/d − m'/d'| ≤ (e_m + M e_d/d)/d'`` with ``d' ≥ d − e_d`` (infinite
          when ``d`` may vanish: the step is then not determined), plus the
          factor's conversion, the product and the division: ``e_Δ = (α/(1 −
          β₁ᵗ))·(e_m + M e_d/d)/d' + 3u A``. Here the division by ``√v`` shows: an
          ``e_m`` relative to ``M``, not ``|m|``, is amplified by ``α/d``, and the
          ratio ``M/d`` (which ``|m|/√v`` never exceeds by much: Cauchy–Schwarz
          bounds ``M/√v̂`` by ``(Σ_k w₁ₖ²/w₂ₖ)^{1/2}`` with the two bias-corrected
          weight sequences, about 1 for the first steps) sets the scale.
        * ``θ ← θ − Δ``: the final sum rounds ``u(|θ_old| + A) ≤ u(|θ_new| + 2A)``:
          ``e_θ ← e_θ + e_Δ + u(|θ_new| + 2A)``.

    The loop versions compute each element in double and round once per stored
    value: fewer roundings in the dtype than counted, so the same bound holds.
    The exact values and magnitudes are evaluated along the trajectory in
    float64 (a first-order approximation, like the rest), and a ``nan`` from
    ``0·∞`` becomes ``∞``: no bound for that element.
    """
    u = unit_roundoff(dtype)
    beta1, beta2 = betas
    l2 = 0.0 if decoupled else weight_decay
    factor = 1.0 - lr * weight_decay if decoupled else 1.0
    theta = np.array(param, dtype=np.float64)
    zeros = np.zeros_like(theta)
    m, v, v_max, big_m = zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy()
    e_theta, e_m, e_v, e_max = zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy()
    bounds = []
    with np.errstate(invalid="ignore", over="ignore"):
        for t, grad in enumerate(grads, start=1):
            grad = np.asarray(grad, dtype=np.float64)
            magnitude = np.abs(grad) + l2 * np.abs(theta)
            g = (-grad if maximize else grad) + l2 * theta
            e_g = l2 * e_theta + 3 * u * magnitude
            if decoupled and weight_decay != 0:
                theta = theta * factor
                e_theta = abs(factor) * e_theta + 2 * u * np.abs(theta)
            m = beta1 * m + (1 - beta1) * g
            big_m = beta1 * big_m + (1 - beta1) * magnitude
            e_m = beta1 * e_m + (1 - beta1) * e_g + 8 * u * big_m
            v = beta2 * v + (1 - beta2) * g * g
            e_v = beta2 * e_v + (1 - beta2) * (2 * magnitude * e_g + e_g * e_g) + 4 * u * v
            w, e_w = v, e_v
            if amsgrad:
                v_max, e_max = np.maximum(v_max, v), np.maximum(e_max, e_v)
                w, e_w = v_max, e_max
            step_size = lr / (1 - beta1**t)
            root2 = (1 - beta2**t) ** 0.5
            r = np.sqrt(w) / root2
            e_r = _sqrt_error(w, e_w) / root2 + 2 * u * r
            d = r + eps
            e_d = e_r + 2 * u * d
            with np.errstate(divide="ignore"):
                size = np.where(big_m == 0, 0.0, step_size * big_m / d)
            e_delta = step_size * _quotient_error(big_m, e_m, d, e_d) + 3 * u * size
            if step_size == 0:
                e_delta = zeros.copy()
            with np.errstate(divide="ignore"):
                theta = theta - np.where(m == 0, 0.0, step_size * m / d)
            e_theta = e_theta + e_delta + u * (np.abs(theta) + 2 * size)
            e_theta, e_m, e_v, e_max = _finite_or_inf(e_theta, e_m, e_v, e_max)
            step = {"param": e_theta, "exp_avg": e_m, "exp_avg_sq": e_v}
            if amsgrad:
                step["max_exp_avg_sq"] = e_max
            bounds.append({key: np.asarray(value) for key, value in step.items()})
    return bounds


def rmsprop_drift(
    param: Array,
    grads: list[Array],
    *,
    dtype: np.dtype[Any] | type,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool,
) -> list[dict[str, Array]]:
    """Running error bounds of an RMSprop trajectory, as :func:`adam_drift` derives them.

    Same model and notation, with ``a`` = ``alpha``:

    * ``g``, ``e_g``: as Adam's with L2 decay ``λ``.
    * ``v = a v + (1 − a) g²``: ``e_v = a e_v + (1 − a)(2G e_g + e_g²) + 4u v``.
    * centered, ``ḡ = a ḡ + (1 − a) g`` (torch's ``lerp``), ``Ḡ = a Ḡ + (1 − a) G``:
      ``e_ḡ = a e_ḡ + (1 − a) e_g + 8u Ḡ``; then ``c = v − ḡ²`` (a product and a
      sum): ``e_c = e_v + 2Ḡ e_ḡ + e_ḡ² + 2u(v + Ḡ²)``. The subtraction may cancel
      (``c ≥ aᵗ v`` by Cauchy–Schwarz, since the weights of ``ḡ`` sum to
      ``1 − aᵗ``); the bound is relative to ``v + Ḡ²``, not to ``c``.
    * ``avg = √w + ε`` (``w`` = ``c`` or ``v``): ``e_avg = min(e_w/√w, √e_w) + 3u avg``.
    * ``q = g / avg``, ``Q = G / avg``: ``e_q = (e_g + G e_avg/avg)/avg' + u Q``.
    * momentum ``b = μ b + q``, ``B = μ B + Q``: ``e_b = μ e_b + e_q + 3u B``.
    * ``θ ← θ − α s`` (``s`` = ``b`` or ``q``, magnitude ``S``): the factor's
      conversion and the product, ``2u α S``, and the sum, ``u(|θ_old| + α S) ≤
      u(|θ_new| + 2α S)``: ``e_θ ← e_θ + α e_s + u(|θ_new| + 4α S)``.
    """
    u = unit_roundoff(dtype)
    theta = np.array(param, dtype=np.float64)
    zeros = np.zeros_like(theta)
    v, mean, big_mean, buffer, big_b = (zeros.copy() for _ in range(5))
    e_theta, e_v, e_mean, e_b = (zeros.copy() for _ in range(4))
    bounds = []
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        for grad in grads:
            grad = np.asarray(grad, dtype=np.float64)
            magnitude = np.abs(grad) + weight_decay * np.abs(theta)
            g = (-grad if maximize else grad) + weight_decay * theta
            e_g = weight_decay * e_theta + 3 * u * magnitude
            v = alpha * v + (1 - alpha) * g * g
            e_v = alpha * e_v + (1 - alpha) * (2 * magnitude * e_g + e_g * e_g) + 4 * u * v
            w, e_w = v, e_v
            if centered:
                mean = alpha * mean + (1 - alpha) * g
                big_mean = alpha * big_mean + (1 - alpha) * magnitude
                e_mean = alpha * e_mean + (1 - alpha) * e_g + 8 * u * big_mean
                w = v - mean * mean
                e_w = e_v + 2 * big_mean * e_mean + e_mean**2 + 2 * u * (v + big_mean**2)
            avg = np.sqrt(np.maximum(w, 0.0)) + eps
            e_avg = _sqrt_error(w, e_w) + 3 * u * avg
            size = np.where(magnitude == 0, 0.0, magnitude / avg)
            direction = np.where(g == 0, 0.0, g / avg)
            e_q = np.where(
                magnitude == 0, 0.0, _quotient_error(magnitude, e_g, avg, e_avg) + u * size
            )
            if momentum > 0:
                buffer = momentum * buffer + direction
                big_b = momentum * big_b + size
                e_b = momentum * e_b + e_q + 3 * u * big_b
                direction, size, e_s = buffer, big_b, e_b
            else:
                e_s = e_q
            theta = theta - lr * direction
            e_theta = e_theta + (lr * e_s if lr else 0.0) + u * (np.abs(theta) + 4 * lr * size)
            e_theta, e_v, e_mean, e_b = _finite_or_inf(e_theta, e_v, e_mean, e_b)
            step = {"param": e_theta, "square_avg": e_v}
            if momentum > 0:
                step["momentum_buffer"] = e_b
            if centered:
                step["grad_avg"] = e_mean
            bounds.append({key: np.asarray(value) for key, value in step.items()})
    return bounds


# ------------------------------------------------------------------------- attention
#
# Attention is not linear in its inputs, and its gradients cancel: ∂L/∂s = p ⊙ (dP − Σ p dP)
# is a small difference of large terms whenever one key dominates, so the error of ∂L/∂q
# scales with c·|k|·|dP|, not with the result, and can exceed the comparison's floor of
# max(‖expected‖∞, 1) by orders of magnitude. A count of terms alone would not bound it.
# The bound below is a first-order running error analysis in units of u, evaluated on the
# case's own values: every element's error bound is a sum, over the terms that feed it, of
# |term| × (the relative error the term carries + the roundings that combine it). The
# reduction length is its largest value, K = max error / u, so that the comparison's
# 4u(K + 16)·max(‖expected‖∞, 1) ≥ 4uK covers the two implementations' errors (each ≤ uK).


def _abs64(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.abs(np.asarray(x, dtype=np.float64))


def _swap(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.swapaxes(x, -1, -2)


@dataclass(frozen=True)
class AttentionErrors:
    """First-order error bounds (units of u) of attention's output and gradients.

    Each ``*_error`` array bounds the rounding error of one element as the
    implementations compute it; each ``*_size`` array bounds the sum of the
    magnitudes of the terms that element sums (a later sum over the element
    rounds in proportion to it). Shapes are those of the broadcast batch:
    ``output`` (B, L, Ev), ``query`` (B, L, E), ``key`` (B, S, E), ``value``
    (B, S, Ev).
    """

    output: np.ndarray[Any, Any]
    output_size: np.ndarray[Any, Any]
    query: np.ndarray[Any, Any]
    query_size: np.ndarray[Any, Any]
    key: np.ndarray[Any, Any]
    key_size: np.ndarray[Any, Any]
    value: np.ndarray[Any, Any]
    value_size: np.ndarray[Any, Any]


def attention_errors(
    query: np.ndarray[Any, Any],
    key: np.ndarray[Any, Any],
    value: np.ndarray[Any, Any],
    bias: np.ndarray[Any, Any] | None,
    scale: float,
    upstream: Any,
    dtype: np.dtype[Any] | type,
) -> AttentionErrors:
    r"""Error bounds of ``o = softmax(c q kᵀ + b) v`` and of its gradients, per element.

    ``bias`` holds ``−inf`` where a position is blocked; ``upstream`` bounds
    ``|∂L/∂o|`` element by element (broadcastable to the output). With
    ``a[l, j] = c Σ_e |q_le||k_je|`` (the size of a score's terms), first order
    in ``u``, for each implementation (ours, torch's math backend, torch's
    log-sum-exp "flash" backend, which recomputes ``p = e^{s − lse}``):

    * score: ``|δs| ≤ u σ``, ``σ = (E + 2) a + |s|`` — ``E`` rounded products
      and partial sums (torch's math backend scales ``q`` and ``k`` by ``√c``
      first, one rounding each), plus the scaling or the bias addition.
    * probability: ``|δp| ≤ u ρ p`` with
      ``ρ = σ + Σ_i p_i σ_i + |lse| + |s − lse| + S + 5``: the error of ``s``,
      of the shift (the maximum or the log-sum-exp, a ``p``-weighted mean of
      the scores' errors plus its own rounding ``u|lse|``), the rounding of the
      shifted argument, the exponential, the ``S``-term normalising sum and a
      division or logarithm. A blocked position has ``p = 0`` exactly.
    * output: ``|δo_d| ≤ u Σ_j p_j |v_jd| (ρ_j + S + 1)``.
    * with ``P_j = Σ_d |g_d||v_jd|`` bounding ``|dP_j|`` and ``T = Σ_j p_j P_j``
      bounding the row sum ``t = Σ_j p_j dP_j``: ``|δt| ≤ u (Σ_j p_j ρ_j P_j +
      (S + Ev + 1) T)`` (also when computed as ``Σ_d o_d g_d``), and
      ``|δ ds_j| ≤ u p_j ((ρ_j + 2)(P_j + T) + (Ev + 1) P_j + |δt|/u)``, with
      ``|ds_j| ≤ p_j (P_j + T)``.
    * ``dq_e = c Σ_j ds_j k_je``: ``u c Σ_j |k_je| (|δds_j|/u + (S + 2)|ds_j|)``;
      ``dk`` likewise over ``l`` with ``L + 2``; ``dv_jd = Σ_l p_lj g_ld``:
      ``u Σ_l |g_ld| p_lj (ρ_lj + L + 1)``.

    Products and sums of grid values are exact (module docstring), so ``dP``
    and the projections of ``multi_head_attention`` add nothing beyond the
    roundings counted. Where a key dominates (``p ≈ 1``) the bound keeps the
    ``c |k| (P + T) ρ`` of the cancelling difference; where ``p ≈ 0`` the
    large ``|s − lse|`` is multiplied by ``p`` and vanishes, which is what
    keeps extreme scores testable.
    """
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (query, key, value))
    aq, ak, av = np.abs(q), np.abs(k), np.abs(v)
    length, embed = q.shape[-2], q.shape[-1]
    positions, width = v.shape[-2], v.shape[-1]
    s = scale * np.matmul(q, _swap(k))
    if bias is not None:
        s = s + np.asarray(bias, dtype=np.float64)
    live = np.isfinite(s)
    shape = s.shape
    size = scale * np.broadcast_to(np.matmul(aq, _swap(ak)), shape)
    s_live = np.where(live, s, 0.0)
    dead = ~live.any(axis=-1, keepdims=True)
    m = np.where(live, s, -np.inf).max(axis=-1, keepdims=True, initial=-np.inf)
    m = np.where(dead, 0.0, m)
    e = np.exp(np.where(live, s_live - m, -np.inf))
    total = np.where(dead, 1.0, e.sum(axis=-1, keepdims=True))
    p = e / total
    lse = m + np.log(total)

    def shift(sigma: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        # |δs_j − Σ_i p_i δs_i| / u ≤ (1 − p_j) σ_j + Σ_{i≠j} p_i σ_i
        weighted = p * sigma
        shifted: np.ndarray[Any, Any] = (
            sigma - weighted + (weighted.sum(axis=-1, keepdims=True) - weighted)
        )
        return shifted

    magnitude = np.abs(s_live)
    rounding = positions + 5
    math_backend = shift((embed + 2) * size + magnitude) + np.abs(s_live - m) + rounding
    lse_rounding = np.minimum(np.abs(lse), (lse - m) / unit_roundoff(dtype))
    flash = shift(magnitude) + lse_rounding + np.abs(s_live - lse) + rounding
    rho = np.where(live, np.maximum(math_backend, flash), 0.0)
    output = np.matmul(p * rho, av) + (positions + 1) * np.matmul(p, av)
    output_size = np.matmul(p, av)
    g = np.broadcast_to(np.abs(np.asarray(upstream, dtype=np.float64)), output.shape)
    big_p = np.matmul(g, _swap(av))
    big_t = (p * big_p).sum(axis=-1, keepdims=True)
    t_error = (p * rho * big_p).sum(axis=-1, keepdims=True) + (positions + width + 1) * big_t
    spread = big_p + big_t
    ds_error = p * ((rho + 2) * spread + (width + 1) * big_p + t_error)
    ds_size = p * spread
    return AttentionErrors(
        output=output,
        output_size=output_size,
        query=scale * np.matmul(ds_error + (positions + 2) * ds_size, ak),
        query_size=scale * np.matmul(ds_size, ak),
        key=scale * np.matmul(_swap(ds_error + (length + 2) * ds_size), aq),
        key_size=scale * np.matmul(_swap(ds_size), aq),
        value=np.matmul(_swap(p * rho + (length + 1) * p), g),
        value_size=np.matmul(_swap(p), g),
    )


def _summed_to(
    error: np.ndarray[Any, Any], size: np.ndarray[Any, Any], shape: tuple[int, ...]
) -> np.ndarray[Any, Any]:
    """The error of summing ``error``'s broadcast copies back to an input of ``shape``."""
    copies = error.size // max(int(np.prod(shape)), 1) if error.size else 1
    lead = error.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and error.shape[lead + i] != 1
    )
    if not axes:
        return error
    summed: np.ndarray[Any, Any] = error.sum(axis=axes) + copies * size.sum(axis=axes)
    return summed


def attention_length(
    query: np.ndarray[Any, Any],
    key: np.ndarray[Any, Any],
    value: np.ndarray[Any, Any],
    bias: np.ndarray[Any, Any] | None,
    scale: float,
    upstream: float,
) -> int:
    """The reduction length of ``scaled_dot_product_attention``: its largest error bound / u.

    Inputs broadcast along batch axes receive sums of their copies'
    gradients; summing ``n`` copies adds ``n u Σ|copy|`` to their errors.
    """
    errors = attention_errors(query, key, value, bias, scale, upstream, query.dtype)
    worst = [errors.output]
    for error, size, array in (
        (errors.query, errors.query_size, query),
        (errors.key, errors.key_size, key),
        (errors.value, errors.value_size, value),
    ):
        worst.append(_summed_to(error, size, array.shape))
    return math.ceil(max((float(w.max(initial=0.0)) for w in worst), default=0.0))


def multi_head_attention_length(
    query: np.ndarray[Any, Any],
    key: np.ndarray[Any, Any],
    value: np.ndarray[Any, Any],
    heads: int,
    in_proj_weight: np.ndarray[Any, Any],
    in_proj_bias: np.ndarray[Any, Any] | None,
    out_proj_weight: np.ndarray[Any, Any],
    out_proj_bias: np.ndarray[Any, Any] | None,
    bias: np.ndarray[Any, Any] | None,
    upstream: float,
) -> int:
    """The reduction length of ``multi_head_attention``: its largest error bound / u.

    ``query``, ``key``, ``value`` are batch-first ``(N, T, E)``; ``bias`` is
    the heads' additive bias, broadcastable to ``(N, H, L, S)``. The
    projections are exact on the grid (products of sixteenths, a few terms),
    so the heads see exact ``Q``, ``K``, ``V`` and an exact upstream gradient
    ``g W_o``, bounded by ``|g| Σ_f |W_o[f, e]|``; :func:`attention_errors`
    bounds each head, and every later product adds, element by element,
    ``Σ |weight| × error`` plus the rounding of its own sum: ``(E + 1) Σ|terms|``
    for ``y = O W_oᵀ + b_o`` and ``∂L/∂x = ∂L/∂Q W``, ``(N·T + 1) Σ|terms|``
    for the weight and bias gradients summed over the batch and the sequence.
    """
    embed = query.shape[-1]
    width = embed // heads
    absolute_in = _abs64(in_proj_weight)
    absolute_out = _abs64(out_proj_weight)

    def project(x: np.ndarray[Any, Any], which: int) -> np.ndarray[Any, Any]:
        rows = slice(which * embed, (which + 1) * embed)
        out = np.matmul(np.asarray(x, dtype=np.float64), np.asarray(in_proj_weight[rows], float).T)
        if in_proj_bias is not None:
            out = out + np.asarray(in_proj_bias[rows], dtype=np.float64)
        n, length, _ = out.shape
        return np.swapaxes(out.reshape(n, length, heads, width), 1, 2)

    def merge(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        n, _, length, _ = x.shape
        return np.swapaxes(x, 1, 2).reshape(n, length, embed)

    upstream_heads = (upstream * absolute_out.sum(axis=0)).reshape(heads, 1, width)
    errors = attention_errors(
        project(query, 0),
        project(key, 1),
        project(value, 2),
        bias,
        1.0 / math.sqrt(width),
        upstream_heads,
        np.asarray(query).dtype,
    )
    output, output_size = merge(errors.output), merge(errors.output_size)
    out_bias = 0.0 if out_proj_bias is None else _abs64(out_proj_bias)
    rows = output.shape[0] * output.shape[1]
    worst = [
        np.matmul(output + (embed + 1) * output_size, absolute_out.T) + out_bias,
        upstream * (output + (rows + 1) * output_size).sum(axis=(0, 1)),
    ]
    for x, error, size, which in (
        (query, errors.query, errors.query_size, 0),
        (key, errors.key, errors.key_size, 1),
        (value, errors.value, errors.value_size, 2),
    ):
        error, size = merge(error), merge(size)
        weight = absolute_in[which * embed : (which + 1) * embed]
        ax = _abs64(x)
        terms = x.shape[0] * x.shape[1] + 1
        worst.append(np.matmul(error + (embed + 1) * size, weight))
        worst.append(np.einsum("ntf,nte->fe", error + terms * size, ax))
        worst.append((error + terms * size).sum(axis=(0, 1)))
    return math.ceil(max(float(w.max(initial=0.0)) for w in worst))
