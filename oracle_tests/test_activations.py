"""What is specific to the activations: kinks and saturation."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

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
