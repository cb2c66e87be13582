"""What is specific to ``conv_transpose2d``, beyond the generic properties of every formula.

* the identity it is built on: ``conv_transpose2d(δ, w, …)`` is the input
  gradient of the conv2d it transposes, ``conv2d_backward(δ, x', w, …)[0]``, and
  its own input gradient is that conv2d's forward on the upstream gradient;
  and, as a transpose, ``⟨conv_transpose2d(u), v⟩ = ⟨u, conv2d(v)⟩``;
* the textbook closed form (dilate, pad, correlate with the rotated kernel,
  crop), the baseline of the errata in ``reference_impl/testing/errata/conv_transpose.py``;
* hand-worked examples: stride 2 places scaled copies of the kernel side by
  side, stride 1 overlaps and adds them, ``output_padding`` rows go bottom/right;
* torch's rule for ``output_padding`` (below the stride or the dilation, per axis).
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
from reference_impl.testing import report
from reference_impl.testing.comparison import assert_close
from reference_impl.testing.errata.conv_transpose import closed_form, closed_form_backward
from reference_impl.testing.registry import NO_STEER, Case
from reference_impl.testing.specs import spec_named
from reference_impl.testing.strategies import FLOAT_DTYPES, upstream_gradient

NAMESPACES = {"loops": loops, "vectorized": vectorized}
SPEC = spec_named("conv_transpose2d")
LENGTH = SPEC.reduction_length


@st.composite
def _cases(draw: st.DrawFn) -> Case:
    dtype: np.dtype[Any] = draw(st.sampled_from(list(FLOAT_DTYPES)), label="dtype")
    return draw(SPEC.cases(dtype, NO_STEER), label="case")


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


@given(_cases())
def test_conv_transpose2d_is_the_input_gradient_of_conv2d(case: Case) -> None:
    """``conv_transpose2d(δ, w, …) = conv2d_backward(δ, x', w, …)[0]``, ``x'`` of the output size.

    ``x'`` is any input of ``H_out × W_out`` (its values do not matter: the
    input gradient is linear in ``δ`` alone). When ``output_padding ≥ stride``
    (allowed by the dilation), conv2d on ``x'`` has ``⌊q/s⌋`` more output rows,
    which get a zero ``δ``. Conversely the transposed layer's input gradient is
    conv2d's forward on its upstream gradient, first ``H × W`` positions. Both
    namespaces, every drawn case; exact on the grid. Rejects a transposed
    convolution with the kernel not rotated, the channel axes not swapped, or
    the output padding on the wrong side.
    """
    args = dict(case.args)
    x, weight, groups = args["x"], args["weight"], args["groups"]
    conv = {k: args[k] for k in ("stride", "padding", "dilation")}
    (sh, sw), (qh, qw) = _pair(args["stride"]), _pair(args["output_padding"])
    length = LENGTH(args)
    for name, ns in NAMESPACES.items():
        y = ns.conv_transpose2d(**{**args, "bias": None})
        x_prime = np.zeros((x.shape[0], y.shape[1], *y.shape[2:]), dtype=x.dtype)
        delta = np.pad(x, ((0, 0), (0, 0), (0, qh // sh), (0, qw // sw)))
        grad_x_prime, _, _ = ns.conv2d_backward(delta, x_prime, weight, None, groups=groups, **conv)
        assert_close(
            y,
            grad_x_prime,
            quantity="output",
            actual_name=f"{name}.conv_transpose2d",
            expected_name=f"{name}.conv2d_backward(...)[0]",
            formula="conv_transpose2d",
            dtype=x.dtype,
            reduction_length=length,
        )
        grad_output = upstream_gradient(y.shape, x.dtype, case.grad_seed)
        grad_x, _, _ = ns.conv_transpose2d_backward(grad_output, **args)
        forward = ns.conv2d(grad_output, weight, None, groups=groups, **conv)
        assert_close(
            grad_x,
            forward[:, :, : x.shape[2], : x.shape[3]],
            quantity="grad_x",
            actual_name=f"{name}.conv_transpose2d_backward",
            expected_name=f"{name}.conv2d",
            formula="conv_transpose2d",
            dtype=x.dtype,
            reduction_length=length,
        )
        # the transpose: ⟨conv_transpose2d(x), g⟩ = ⟨x, conv2d(g)⟩
        assert np.isclose(
            np.vdot(y, grad_output),
            np.vdot(x, forward[:, :, : x.shape[2], : x.shape[3]]),
            rtol=1e-12 if x.dtype == np.float64 else 1e-5,
            atol=1e-12 if x.dtype == np.float64 else 1e-5,
        )
    report.record_example(
        "conv_transpose2d", "= conv2d's input gradient", case.corners, SPEC.corners
    )


@given(_cases())
def test_conv_transpose2d_closed_form_matches_torch(case: Case) -> None:
    """``crop_p(conv2d(pad(dilate_s(x)), rot180(w)ᵀ, dilation=d))`` and its adjoint are torch's.

    The baseline of the errata: each differs from this by one switch.
    """
    args = dict(case.args)
    tensors: dict[str, Any] = {
        k: torch.from_numpy(v.copy()).requires_grad_(True) if isinstance(v, np.ndarray) else v
        for k, v in args.items()
    }
    x = tensors.pop("x")
    out = F.conv_transpose2d(x, **tensors)
    grad_output = upstream_gradient(tuple(out.shape), args["x"].dtype, case.grad_seed)
    wanted = torch.autograd.grad(
        out,
        [t for t in (x, tensors["weight"], tensors["bias"]) if t is not None],
        torch.from_numpy(grad_output.copy()),
    )
    ours = [closed_form(**args), *closed_form_backward(grad_output, **args)]
    expected = [out.detach().numpy(), *(g.numpy() for g in wanted)]
    for quantity, actual, theirs in zip(
        ["output", "grad_x", "grad_weight", "grad_bias"], ours, expected, strict=False
    ):
        assert_close(
            actual,
            theirs,
            quantity=quantity,
            actual_name="closed form",
            expected_name="torch",
            formula="conv_transpose2d",
            dtype=args["x"].dtype,
            reduction_length=LENGTH(args),
        )


def test_conv_transpose2d_stride_two_places_kernel_copies(namespace: ModuleType) -> None:
    """Stride = kernel size: each input element puts ``x·w`` in its own 2×2 block (Kronecker).

    With stride 1 the copies overlap by one row and column and add up: the
    "full" convolution of x with w. Rejects a kernel read without its rotation
    (the blocks would hold ``rot180(w)``) and a gather with the wrong stride.
    """
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    w = np.array([[[[1.0, 10.0], [100.0, 1000.0]]]])
    y = namespace.conv_transpose2d(x, w, stride=2)
    np.testing.assert_array_equal(y[0, 0], np.kron(x[0, 0], w[0, 0]))
    y = namespace.conv_transpose2d(x, w, stride=1)
    expected = [[1, 12, 20], [103, 1234, 2040], [300, 3400, 4000]]
    np.testing.assert_array_equal(y[0, 0], expected)


def test_conv_transpose2d_output_padding_rows_go_bottom_right(namespace: ModuleType) -> None:
    """``output_padding = 1``, stride 2: one more row and column, at the bottom and right.

    Nothing reaches them (padding 0), so they hold the bias alone; the rest is
    the stride-2 output without output padding. Rejects the rows on the top/left.
    """
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    w = np.array([[[[1.0, 10.0], [100.0, 1000.0]]]])
    bias = np.array([0.5])
    y = namespace.conv_transpose2d(x, w, bias, stride=2, output_padding=1)
    assert y.shape == (1, 1, 5, 5)
    np.testing.assert_array_equal(y[0, 0, :4, :4], np.kron(x[0, 0], w[0, 0]) + 0.5)
    np.testing.assert_array_equal(y[0, 0, 4, :], 0.5)
    np.testing.assert_array_equal(y[0, 0, :, 4], 0.5)


def test_conv_transpose2d_padding_crops_the_border(namespace: ModuleType) -> None:
    """``padding = p`` removes ``p`` rows and columns on every side of the full output."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((1, 2, 3, 4)), rng.standard_normal((2, 3, 3, 2))
    full = namespace.conv_transpose2d(x, w, stride=(2, 1), dilation=(1, 2))
    cropped = namespace.conv_transpose2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    np.testing.assert_allclose(cropped, full[:, :, 1:-1, 2:-2], rtol=1e-13)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_conv_transpose2d_output_padding_rule_is_torchs(dtype: np.dtype[Any]) -> None:
    """Every (stride, dilation, output_padding) up to 3 per axis: accepted exactly when torch does.

    torch: ``output_padding`` must be smaller than either the stride or the
    dilation, on each axis separately (it names both axes' values in its message).
    """
    x = torch.zeros((1, 1, 2, 2), dtype=torch.float64 if dtype == np.float64 else torch.float32)
    w = torch.zeros((1, 1, 2, 2), dtype=x.dtype)
    values = [1, 2, 3]
    for s, d, q in [(s, d, q) for s in values for d in values for q in range(4)]:
        for stride, dilation, extra in [((s, 1), (d, 1), (q, 0)), ((1, s), (1, d), (0, q))]:
            try:
                F.conv_transpose2d(x, w, stride=stride, output_padding=extra, dilation=dilation)
                torch_accepts = True
            except RuntimeError:
                torch_accepts = False
            call = {"stride": stride, "output_padding": extra, "dilation": dilation}
            zeros = np.zeros((1, 1, 2, 2), dtype)
            if torch_accepts:
                vectorized.conv_transpose2d(zeros, zeros, **call)
            else:
                with pytest.raises(ValueError, match="output_padding"):
                    vectorized.conv_transpose2d(zeros, zeros, **call)
