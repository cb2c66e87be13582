"""What is specific to the activations: kinks, thresholds, saturation, the erf."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from reference_impl._erf import EDGE_CDF_SINGLE, erf, normal_cdf_single_block

ALONG_AXIS = ["softmax", "log_softmax"]


def test_relu_derivative_at_zero_is_zero(namespace: ModuleType) -> None:
    x = np.array([-0.0, 0.0, 1.0, -1.0])
    grad = namespace.relu_backward(np.full(4, 3.0), x)
    assert grad.tolist() == [0.0, 0.0, 3.0, 0.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_saturates_without_overflow(namespace: ModuleType, dtype: Any) -> None:
    x = np.array([-1e4, -750.0, 0.0, 750.0, 1e4], dtype=dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        s = namespace.sigmoid(x)
        grad = namespace.sigmoid_backward(np.ones_like(x), x)
    assert s.tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert grad.tolist() == [0.0, 0.0, 0.25, 0.0, 0.0]


@pytest.mark.parametrize("name", ALONG_AXIS)
def test_softmax_family_is_shift_invariant_at_extremes(namespace: ModuleType, name: str) -> None:
    x = np.array([[1e4, 1e4 - 1.0, -1e4]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        shifted = getattr(namespace, name)(x)
        reference = getattr(namespace, name)(x - 1e4)
    np.testing.assert_allclose(shifted, reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("slope", [0.5, -0.25, 2.0, 0.0])
def test_leaky_relu_gradient_at_zero_is_the_slope(namespace: ModuleType, slope: float) -> None:
    """torch takes the x ≤ 0 branch at 0; rejects ``1[x ≥ 0]`` (gradient 1 at 0)."""
    x = np.array([-0.0, 0.0, 1.0, -1.0])
    grad = namespace.leaky_relu_backward(np.full(4, 3.0), x, slope)
    assert grad.tolist() == [3 * slope, 3 * slope, 3.0, 3 * slope]


@pytest.mark.parametrize("alpha", [0.5, 2.0, -1.0])
def test_elu_gradient_at_zero_is_alpha(namespace: ModuleType, alpha: float) -> None:
    """ELU'(0) = α (the x ≤ 0 branch α e^0), not 1; value at 0 is 0."""
    x = np.array([-0.0, 0.0, 1.0])
    assert namespace.elu(x, alpha).tolist() == [0.0, 0.0, 1.0]
    assert namespace.elu_backward(np.full(3, 2.0), x, alpha).tolist() == [2 * alpha, 2 * alpha, 2]


def test_gelu_golden_values(namespace: ModuleType) -> None:
    """x Φ(x) at ±1 and the tanh form at 1 (torch's values); rejects Φ(x) alone and x σ(1.702 x)."""
    x = np.array([1.0, -1.0, 0.0])
    np.testing.assert_allclose(
        namespace.gelu(x), [0.8413447460685429, -0.15865525393145707, 0.0], rtol=1e-15
    )
    np.testing.assert_allclose(
        namespace.gelu(x, "tanh"), [0.8411919906082768, -0.15880800939172324, 0.0], rtol=1e-15
    )
    # GELU'(0) = Φ(0) = 1/2 in both forms
    assert namespace.gelu_backward(np.ones(1), np.zeros(1)).tolist() == [0.5]
    assert namespace.gelu_backward(np.ones(1), np.zeros(1), "tanh").tolist() == [0.5]


def test_gelu_erf_within_one_ulp_of_math_erf() -> None:
    """The vectorized erf against ``math.erf``: rejects a coarse erf (Abramowitz–Stegun 7.1.26,
    error 1.5e−7) and any branch with a wrong coefficient.

    Both are within 1 ulp of the correctly rounded value, so they differ by at most 2 ulps in
    float64; rounded to float32, the fast float32 path is within 1 ulp of ``math.erf``'s.
    """
    rng = np.random.default_rng(7)
    edges = [0.84375, 1.25, 4.0, 6.0, 3.9192]
    x = np.concatenate(
        [
            rng.uniform(-7, 7, 20000),
            10.0 ** rng.uniform(-30, 0, 2000),
            *[e + np.arange(-50, 50) * np.spacing(e) for e in edges],
            -np.array(edges),
            [0.0, -0.0, np.inf, -np.inf],
        ]
    )
    expected = np.array([math.erf(v) for v in x])
    ours = erf(x)
    assert np.all(np.abs(ours - expected) <= 2 * np.spacing(np.abs(expected)))
    single = erf(x.astype(np.float32), single=True).astype(np.float32)
    reference = expected.astype(np.float32)
    assert np.all(np.abs(single - reference) <= np.spacing(np.abs(reference)))
    assert np.isnan(erf(np.array([np.nan]))[0]) and np.isnan(
        erf(np.array([np.nan]), single=True)[0]
    )


def test_gelu_float32_normal_cdf_matches_math_erf() -> None:
    """The float32 path's Φ(x) = ½ + x F̂(x²)/Ĝ(x²) against ½ (1 + math.erf(x/√2)).

    Within 1.3e−9 (the fit's 2.6e−9 relative error of erf, halved) on |x| < 5.66, and exactly
    0 or 1 beyond. Rejects a coefficient scaled by the wrong power of 2 or without ½ · 1/√2,
    and a far fix on one side only (Φ(−10) = 6e−9 instead of 0).
    """
    rng = np.random.default_rng(11)
    edge = EDGE_CDF_SINGLE
    x = np.concatenate(
        [
            rng.uniform(-edge, edge, 20000),
            edge * (1 - np.arange(1, 50) * 1e-7),
            -edge * (1 - np.arange(1, 50) * 1e-7),
            [0.0, -0.0, 1e-30, -1e-30],
        ]
    )
    expected = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])
    assert np.max(np.abs(normal_cdf_single_block(x) - expected)) <= 1.3e-9
    far = np.array([edge, 5.7, 10.0, 89.0, 1e4, 3.4e38, np.inf])
    assert normal_cdf_single_block(far).tolist() == [1.0] * far.size
    assert normal_cdf_single_block(-far).tolist() == [0.0] * far.size
    assert np.isnan(normal_cdf_single_block(np.array([np.nan]))[0])


def test_softplus_threshold_is_strict(namespace: ModuleType) -> None:
    """βx = threshold still takes the log branch (torch's ``>``), βx above it the identity.

    Rejects ``βx ≥ threshold`` for the linear branch (off by log1p(e^−20) = 2e−9 at 20).
    """
    x = np.array([20.0, 21.0, 10.0, 10.5])
    beta = np.array([1.0, 1.0, 2.0, 2.0])
    for b in (1.0, 2.0):
        chosen = beta == b
        value = namespace.softplus(x[chosen], b)
        grad = namespace.softplus_backward(np.ones(2), x[chosen], b)
        at = 20.0 / b
        assert value[0] == pytest.approx(at + math.log1p(math.exp(-20.0)) / b, rel=1e-15)
        assert value[0] != at and grad[0] == pytest.approx(1 / (1 + math.exp(-20.0)), rel=1e-15)
        assert value[1] == x[chosen][1] and grad[1] == 1.0


def test_softplus_beyond_exp_range_stays_finite(namespace: ModuleType) -> None:
    """With a threshold raised past log(max float) the value stays x and the gradient 1.

    torch evaluates log1p(exp(βx)) there, which overflows to inf with a NaN gradient;
    the references compute max(z, 0) + log1p(e^{−|z|}) instead (documented difference).
    """
    x = np.array([800.0, -800.0], dtype=np.float64)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        value = namespace.softplus(x, 1.0, 1000.0)
        grad = namespace.softplus_backward(np.ones(2), x, 1.0, 1000.0)
    assert value.tolist() == [800.0, 0.0]
    assert grad.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("name", ["elu", "gelu", "softplus", "silu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elu_gelu_softplus_silu_saturate_without_overflow(
    namespace: ModuleType, name: str, dtype: Any
) -> None:
    """Extreme inputs give finite values and gradients and no floating-point warning.

    Rejects ``e^x`` evaluated on the positive side (ELU), an unguarded
    ``log1p(exp(z))`` or ``e^{−x}`` that overflows (softplus, SiLU), and ``x³``
    or ``cosh`` overflows reported as warnings (the tanh GELU).
    """
    x = np.array([-1e4, -750.0, -89.0, 89.0, 750.0, 1e4], dtype=dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        value = getattr(namespace, name)(x)
        grad = getattr(namespace, name + "_backward")(np.ones_like(x), x)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    assert value[-1] == 1e4 and grad[-1] == 1.0


def test_silu_golden_values(namespace: ModuleType) -> None:
    """SiLU(1) = σ(1), SiLU'(0) = ½; rejects the gradient σ(x) alone (½ is also σ(0), so 1)."""
    s = 1 / (1 + math.exp(-1.0))
    assert namespace.silu(np.array([1.0, 0.0])).tolist() == pytest.approx([s, 0.0], rel=1e-15)
    grad = namespace.silu_backward(np.ones(2), np.array([0.0, 1.0]))
    assert grad.tolist() == pytest.approx([0.5, s * (1 + (1 - s))], rel=1e-15)


@pytest.mark.parametrize("name", ALONG_AXIS)
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_softmax_family_vectorized_slabs_match_torch(
    monkeypatch: pytest.MonkeyPatch, name: str, axis: int
) -> None:
    """Slab by slab, with the shift applied in some slabs only, every lane as torch computes it.

    Slabs a few lanes wide force every cut of the array (an index range that
    splits a lane, or a lane dot product taken across slabs, would be off), and
    extreme logits in one slab only mix the unshifted and the max-shifted
    exponential in one call (a shift applied to one slab's values but not the
    sum it is divided by would be off by e^shift).
    """
    import torch

    from reference_impl import activations

    monkeypatch.setattr(activations, "_SLAB_BYTES", 64)
    rng = np.random.default_rng(0)
    x = 3 * rng.standard_normal((5, 6, 7))
    x[1, 2, 3], x[3, 0, 5] = 800.0, -900.0  # shift needed in their slabs only
    g = rng.standard_normal(x.shape)
    forward = getattr(torch.nn.functional, name)
    tx = torch.from_numpy(x).requires_grad_(True)
    out = forward(tx, dim=axis)
    (grad,) = torch.autograd.grad(out, [tx], torch.from_numpy(g))
    ours = getattr(activations, f"{name}_vectorized")(x, axis)
    ours_grad = getattr(activations, f"{name}_backward_vectorized")(g, x, axis)
    np.testing.assert_allclose(ours, out.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours_grad, grad.numpy(), rtol=1e-12, atol=1e-12)
