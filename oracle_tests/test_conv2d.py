"""What is specific to ``conv2d``, beyond the generic properties of every formula.

* two stacked convolutions with a ReLU between them: ``∂L/∂x`` of the second
  layer is the upstream gradient of the first, all six gradients against torch;
* the textbook closed forms (the baseline of the errata in
  ``reference_impl/testing/errata/conv.py``) against torch, so that each erratum is one
  mistake away from a right formula;
* the hand-written 3×3 input / 2×2 kernel gradients of the published worked
  example (the unsigned post and Saraswat, docs/derivations.md), entry by entry;
* Diba's (2024) padding convention (the odd extra row and column on the
  top-left) as an explicit four-sided padding, beside torch's ``"same"``;
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, strategies as st

from reference_impl import loops, vectorized
from reference_impl.testing import evaluate, report
from reference_impl.testing.comparison import assert_close
from reference_impl.testing.errata.conv import closed_form_backward
from reference_impl.testing.specs import spec_named
from reference_impl.testing.strategies import arrays, grad_seeds, upstream_gradient
from reference_impl.window import output_size, padding_sides

NAMESPACES = {"loops": loops, "vectorized": vectorized}
SPEC = spec_named("conv2d")


def _torch_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: Any, **params: Any) -> Any:
    padding = params.pop("padding", 0)
    if isinstance(padding, tuple) and len(padding) == 4:
        top, bottom, left, right = padding
        x = F.pad(x, (left, right, top, bottom))
        padding = 0
    return F.conv2d(x, weight, bias, padding=padding, **params)


def _tensor(array: np.ndarray[Any, Any] | None) -> Any:
    if array is None:
        return None
    return torch.from_numpy(array.copy()).requires_grad_(True)


# ------------------------------------------------------------------ stacked layers


@st.composite
def _layer(draw: st.DrawFn, size: tuple[int, int]) -> dict[str, Any]:
    """Hyper-parameters of one convolution valid on an input of ``size``."""
    kernel = (draw(st.integers(1, min(3, size[0]))), draw(st.integers(1, min(3, size[1]))))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.sampled_from([0, 1, (1, 0), (0, 1, 1, 0), "valid"]))
    return {"kernel": kernel, "stride": stride, "padding": padding}


@given(data=st.data())
def test_conv2d_stacked(data: st.DataObject) -> None:
    """conv → ReLU → conv: the second layer's ``grad_input`` drives the first layer's gradients.

    Both namespaces run every example, each against torch's autograd of the composition.
    """
    dtype: np.dtype[Any] = data.draw(
        st.sampled_from([np.dtype(np.float64), np.dtype(np.float32)]), label="dtype"
    )
    n = data.draw(st.integers(1, 2), label="N")
    channels = [data.draw(st.integers(1, 2), label=f"C{i}") for i in range(3)]
    size = (data.draw(st.integers(3, 6), label="H"), data.draw(st.integers(3, 6), label="W"))
    first = data.draw(_layer(size), label="layer 1")
    top, bottom, left, right = padding_sides(first["padding"], first["kernel"], (1, 1))
    (kh, kw), (sh, sw) = first["kernel"], first["stride"]
    hidden = (output_size(size[0], kh, sh, top, bottom), output_size(size[1], kw, sw, left, right))
    second = data.draw(_layer(hidden), label="layer 2")

    x = data.draw(arrays(dtype, (n, channels[0], *size)), label="x")
    w1 = data.draw(arrays(dtype, (channels[1], channels[0], *first["kernel"])), label="w1")
    b1 = data.draw(arrays(dtype, (channels[1],)), label="b1")
    w2 = data.draw(arrays(dtype, (channels[2], channels[1], *second["kernel"])), label="w2")
    b2 = data.draw(st.none() | arrays(dtype, (channels[2],)), label="b2")
    params1 = {"stride": first["stride"], "padding": first["padding"]}
    params2 = {"stride": second["stride"], "padding": second["padding"]}

    grad_seed = data.draw(grad_seeds(), label="grad seed")
    tx, tw1, tb1, tw2, tb2 = (_tensor(v) for v in (x, w1, b1, w2, b2))
    tz1 = _torch_conv2d(tx, tw1, tb1, **params1)
    tz2 = _torch_conv2d(torch.relu(tz1), tw2, tb2, **params2)
    grad_z2 = upstream_gradient(tuple(tz2.shape), dtype, grad_seed)
    tz2.backward(torch.from_numpy(grad_z2.copy()))
    expected = {
        "output": tz2,
        "grad_x": tx.grad,
        "grad_w1": tw1.grad,
        "grad_b1": tb1.grad,
        "grad_w2": tw2.grad,
        "grad_b2": None if tb2 is None else tb2.grad,
    }
    # One element of z2 sums C1·kh2·kw2 first-layer outputs of C0·kh1·kw1 products each;
    # a weight gradient sums over N and every output position.
    length = max(
        channels[1] * int(np.prod(second["kernel"])) * channels[0] * int(np.prod(first["kernel"])),
        n * int(np.prod(size)) * channels[2] * int(np.prod(second["kernel"])),
    )
    for name, ns in NAMESPACES.items():
        z1 = ns.conv2d(x, w1, b1, **params1)
        a1 = ns.relu(z1)
        z2 = ns.conv2d(a1, w2, b2, **params2)
        grad_a1, grad_w2, grad_b2 = ns.conv2d_backward(grad_z2, a1, w2, b2, **params2)
        grad_z1 = ns.relu_backward(grad_a1, z1)
        grad_x, grad_w1, grad_b1 = ns.conv2d_backward(grad_z1, x, w1, b1, **params1)
        ours = {
            "output": z2,
            "grad_x": grad_x,
            "grad_w1": grad_w1,
            "grad_b1": grad_b1,
            "grad_w2": grad_w2,
            "grad_b2": grad_b2,
        }
        for quantity, value in ours.items():
            theirs = expected[quantity]
            assert_close(
                value,
                None if theirs is None else theirs.detach().numpy(),
                quantity=f"stacked {quantity}",
                actual_name=name,
                expected_name="torch",
                formula="conv2d",
                dtype=dtype,
                reduction_length=length,
                context=f"\n  layer 1: {params1}, layer 2: {params2}",
            )
    report.record_example("conv2d", "stacked layers", frozenset(), frozenset())


# ------------------------------------------------------------- closed forms


@given(data=st.data())
def test_conv2d_closed_forms_agree_with_torch(data: st.DataObject) -> None:
    """``dW = x̄ ⋆ dilate(δ)`` and ``dX = crop(pad(dilate(δ)) ⋆ rot180(w)ᵀ)`` are right.

    These whole-correlation forms are the baseline every conv erratum departs from.
    """
    case = data.draw(evaluate.any_case(SPEC), label="case")
    expected, grad_outputs = evaluate.torch_result(SPEC, case)
    closed = evaluate.Result(
        expected.outputs, closed_form_backward(grad_outputs[0], **case.args), grad_outputs
    )
    evaluate.compare(SPEC, case, "closed forms", closed, "torch", expected)
    report.record_example("conv2d", "closed forms = torch", case.corners, SPEC.corners)


# ----------------------------------------------- the published worked examples


def _symbols(dtype: Any = np.float64) -> tuple[Any, Any, Any]:
    """A 3×3 input, 2×2 kernel and 2×2 upstream gradient with all-distinct entries."""
    x = (np.arange(1, 10, dtype=dtype) / 16).reshape(1, 1, 3, 3)
    k = np.array([[2.0, 3.0], [5.0, 7.0]], dtype=dtype).reshape(1, 1, 2, 2)
    dz = np.array([[11.0, 13.0], [17.0, 19.0]], dtype=dtype).reshape(1, 1, 2, 2)
    return x, k, dz


def test_seed_worked_example_3x3_input_2x2_kernel(namespace: ModuleType) -> None:
    """The unsigned post's nine ``∂L/∂x`` equations, Saraswat's four ``∂L/∂K`` and ``Z11``."""
    ns = namespace
    x, k, dz = _symbols()
    X, K, D = x[0, 0], k[0, 0], dz[0, 0]
    z = ns.conv2d(x, k)
    assert (
        z[0, 0, 0, 0]
        == X[0, 0] * K[0, 0] + X[0, 1] * K[0, 1] + X[1, 0] * K[1, 0] + X[1, 1] * K[1, 1]
    )
    grad_x, grad_k, grad_b = ns.conv2d_backward(dz, x, k)
    assert grad_b is None
    expected_x = np.array(
        [
            [D[0, 0] * K[0, 0], D[0, 0] * K[0, 1] + D[0, 1] * K[0, 0], D[0, 1] * K[0, 1]],
            [
                D[0, 0] * K[1, 0] + D[1, 0] * K[0, 0],
                D[0, 0] * K[1, 1] + D[0, 1] * K[1, 0] + D[1, 0] * K[0, 1] + D[1, 1] * K[0, 0],
                D[0, 1] * K[1, 1] + D[1, 1] * K[0, 1],
            ],
            [D[1, 0] * K[1, 0], D[1, 0] * K[1, 1] + D[1, 1] * K[1, 0], D[1, 1] * K[1, 1]],
        ]
    )
    np.testing.assert_array_equal(grad_x[0, 0], expected_x)
    expected_k = np.array(
        [
            [
                D[0, 0] * X[0, 0] + D[0, 1] * X[0, 1] + D[1, 0] * X[1, 0] + D[1, 1] * X[1, 1],
                D[0, 0] * X[0, 1] + D[0, 1] * X[0, 2] + D[1, 0] * X[1, 1] + D[1, 1] * X[1, 2],
            ],
            [
                D[0, 0] * X[1, 0] + D[0, 1] * X[1, 1] + D[1, 0] * X[2, 0] + D[1, 1] * X[2, 1],
                D[0, 0] * X[1, 1] + D[0, 1] * X[1, 2] + D[1, 0] * X[2, 1] + D[1, 1] * X[2, 2],
            ],
        ]
    )
    np.testing.assert_array_equal(grad_k[0, 0], expected_k)


def test_seed_002_input_gradient_slips_are_wrong(namespace: ModuleType) -> None:
    """Saraswat's ``∂L/∂X23`` (K11 for K12) and ``∂L/∂X33`` (dZ21 for dZ22) differ from ours."""
    x, k, dz = _symbols()
    K, D = k[0, 0], dz[0, 0]
    grad_x = namespace.conv2d_backward(dz, x, k)[0][0, 0]
    assert grad_x[1, 2] == D[0, 1] * K[1, 1] + D[1, 1] * K[0, 1]
    assert grad_x[1, 2] != D[0, 1] * K[1, 1] + D[1, 1] * K[0, 0]
    assert grad_x[2, 2] == D[1, 1] * K[1, 1]
    assert grad_x[2, 2] != D[1, 0] * K[1, 1]


# ------------------------------------------------------- padding conventions


def _seed_004_padding(size: int, kernel: int, stride: int, out: int) -> tuple[int, int]:
    """Diba (2024), eq. 7: total ``p = s(h_out − 1) + f − h_in``, the odd extra on the top/left."""
    total = stride * (out - 1) + kernel - size
    return (total + 1) // 2, total // 2


@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
@pytest.mark.parametrize(
    ("size", "kernel", "stride", "out"),
    [(4, 2, 1, 4), (5, 2, 2, 3), (6, 3, 2, 3), (5, 4, 1, 5)],
)
def test_seed_004_top_left_padding(
    namespace: ModuleType, size: int, kernel: int, stride: int, out: int
) -> None:
    """Diba (2024) pads an odd total with the extra row/column top-left: pass it four-sided."""
    ns = namespace
    top, bottom = _seed_004_padding(size, kernel, stride, out)
    assert top == bottom + 1  # every case here has an odd total
    padding = (top, bottom, top, bottom)
    rng = np.random.default_rng(size * 100 + kernel * 10 + stride)
    x = rng.integers(-64, 65, (2, 2, size, size)) / 16
    w = rng.integers(-64, 65, (3, 2, kernel, kernel)) / 16
    b = rng.integers(-64, 65, (3,)) / 16
    z = ns.conv2d(x, w, b, stride=stride, padding=padding)
    assert z.shape == (2, 3, out, out)
    grad_z = upstream_gradient(z.shape, z.dtype, 7)
    grads = ns.conv2d_backward(grad_z, x, w, b, stride=stride, padding=padding)

    tx, tw, tb = _tensor(x), _tensor(w), _tensor(b)
    tz = _torch_conv2d(tx, tw, tb, stride=stride, padding=padding)
    tz.backward(torch.from_numpy(grad_z))
    np.testing.assert_allclose(z, tz.detach().numpy(), rtol=1e-12, atol=1e-12)
    for ours, theirs in zip(grads, (tx.grad, tw.grad, tb.grad), strict=True):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12, atol=1e-12)

    if stride == 1:
        # torch's "same" puts the extra on the bottom/right: a different, shifted result.
        same = ns.conv2d(x, w, b, padding="same")
        swapped = ns.conv2d(x, w, b, padding=(bottom, top, bottom, top))
        np.testing.assert_array_equal(same, swapped)
        expected = F.conv2d(
            torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), padding="same"
        )
        np.testing.assert_allclose(same, expected.numpy(), rtol=1e-12, atol=1e-12)
        assert not np.array_equal(same, z)


# ------------------------------------------------------------------ blocks and layouts

_GEOMETRIES = [
    # N, C_in, (H, W), C_out, (kh, kw), stride, padding, dilation, groups
    (2, 3, (9, 7), 4, (3, 2), (1, 1), (1, 0, 2, 1), (1, 1), 1),
    (3, 4, (8, 9), 6, (3, 3), (2, 1), 1, (1, 2), 2),
    (2, 4, (7, 7), 8, (3, 3), (1, 2), (1, 1), (2, 1), 4),
    (3, 5, (6, 5), 5, (2, 2), (1, 1), 0, (1, 1), 5),
    (2, 4, (7, 6), 4, (3, 3), (1, 1), (1, 0, 2, 1), (2, 1), 4),
    (2, 4, (5, 6), 6, (1, 1), (1, 1), 0, (1, 1), 2),
    (2, 3, (6, 6), 2, (1, 1), (2, 2), 1, (1, 1), 1),
]


@pytest.mark.parametrize("transposed_dw", [False, True])
@pytest.mark.parametrize("layout", ["image", "batch"])
@pytest.mark.parametrize("geometry", _GEOMETRIES)
def test_conv2d_vectorized_blocks_and_layouts_match_torch(
    monkeypatch: pytest.MonkeyPatch, layout: str, geometry: tuple[Any, ...], transposed_dw: bool
) -> None:
    """Every layout and weight-gradient product, one output row per block, groups, 1×1 kernels.

    The property tests draw patch matrices far below one block; here each block
    holds one output row, so a window dropped, repeated or misplaced at a block
    edge, a group's rows taken from the wrong block of the patch matrix, or a
    layout that the forward and the two gradients read differently would show
    as a wrong entry (the 1×1 geometries take the product without patches).
    """
    from reference_impl import conv

    n, c_in, size, c_out, kernel, stride, padding, dilation, groups = geometry
    monkeypatch.setattr(conv, "BLOCK_BYTES", 1)
    monkeypatch.setattr(conv, "SPLIT_BYTES", 0)
    monkeypatch.setattr(conv._Layout, "choose", lambda self, costs: layout)
    monkeypatch.setattr(conv, "TRANSPOSED_DW_WINDOWS", 0 if transposed_dw else 10**9)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, c_in, *size))
    weight = rng.standard_normal((c_out, c_in // groups, *kernel))
    bias = rng.standard_normal(c_out)
    params: dict[str, Any] = {
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
    }
    tx, tw, tb = _tensor(x), _tensor(weight), _tensor(bias)
    out = _torch_conv2d(tx, tw, tb, **params)
    g = rng.standard_normal(tuple(out.shape))
    expected = torch.autograd.grad(out, [tx, tw, tb], torch.from_numpy(g))
    z = conv.conv2d_vectorized(x, weight, bias, **params)
    grads = conv.conv2d_backward_vectorized(g, x, weight, bias, **params)
    np.testing.assert_allclose(z, out.detach().numpy(), rtol=1e-12, atol=1e-12)
    for ours, theirs in zip(grads, expected, strict=True):
        assert ours is not None
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12, atol=1e-12)


@given(data=st.data())
def test_conv2d_image_by_image_and_by_correlation_match_torch(data: st.DataObject) -> None:
    """The paths taken from ``IMAGE_COLUMNS`` positions on agree with torch on every corner.

    The spec's images are smaller than ``IMAGE_COLUMNS``, so the property tests
    run the whole-batch blocks; here every forward goes through
    :func:`reference_impl.conv._forward_by_image`, with blocks of one output row
    of one image or of several whole images, and every backward at unit stride
    with ``C_out ≤ C_in`` takes the input gradient by correlation
    (:func:`reference_impl.conv._input_gradient_by_correlation`). Rejects a
    product written to the wrong image, group or rows of the output, a block
    edge that drops or repeats an output row, a bias added to a block twice or
    not at all, a kernel not flipped along an axis, and the correlation's
    padding taken for the wrong side or axis.
    """
    from reference_impl import conv

    spec = spec_named("conv2d")
    case = data.draw(evaluate.any_case(spec), label="case")
    block = data.draw(st.sampled_from([1, conv.BLOCK_BYTES]), label="block bytes")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv, "IMAGE_COLUMNS", 0)
        patch.setattr(conv, "BLOCK_BYTES", block)
        evaluate.three_way(spec, case)
