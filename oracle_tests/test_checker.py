"""The public checker, ``reference_impl.testing.check_formula``, on right and wrong candidates.

* The references pass (every erratum of the catalog, handed to the checker,
  is rejected and named: ``test_errata.py``).
* A conv2d backward wrong only for stride > 1 gets the corner diagnosis
  "agrees on every case without stride > 1".
* A max-pool candidate that takes only ``kernel_size`` and ``stride`` is
  checked inside that space, with overlapping windows and distinct values
  required by construction (no filtering).
* Bad use (unknown formula, a candidate that is not callable, unknown fixed
  names, values outside the valid space, the wrong number of gradients)
  raises ``ValueError``/``TypeError`` at once; the command line exits 0, 1, 2.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from reference_impl import loops, vectorized
from reference_impl.testing import (
    CandidateShapeError,
    FormulaMismatch,
    available_corners,
    check_formula,
)
from reference_impl.testing.__main__ import main
from reference_impl.testing.specs import SPECS


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_checker_passes_the_references(spec: Any) -> None:
    for namespace in (loops, vectorized):
        report = check_formula(
            spec.name,
            forward=getattr(namespace, spec.name),
            backward=getattr(namespace, spec.name + "_backward"),
            max_examples=20,
        )
        assert sum(report.examples.values()) == 20
        assert spec.name in str(report)


def conv2d_backward_stride_slip(
    grad_output: Any, x: Any, weight: Any, bias: Any, stride: Any, padding: Any
) -> Any:
    """Right for stride 1; for stride > 1 the input gradient ignores every other row of δ."""
    grads = vectorized.conv2d_backward(grad_output, x, weight, bias, stride=stride, padding=padding)
    if stride in (1, (1, 1)):
        return grads
    thinned = grad_output.copy()
    thinned[..., 1::2, :] = 0
    grad_input = vectorized.conv2d_backward(thinned, x, weight, bias, stride, padding)[0]
    return grad_input, grads[1], grads[2]


def test_conv2d_stride_bug_is_diagnosed_by_corner() -> None:
    with pytest.raises(FormulaMismatch) as raised:
        check_formula("conv2d", backward=conv2d_backward_stride_slip, max_examples=100)
    message = str(raised.value)
    assert "disagree on grad_x; agree on grad_weight, grad_bias" in message
    assert "agrees on every case without stride > 1" in message
    assert "Held: dilation=1, groups=1" in message
    assert "stride = (" in message and "grad_output = np.array(" in message


def max_pool_two_slips(grad_output: Any, x: Any, kernel_size: Any, stride: Any) -> Any:
    """Gradient to every tied maximum, assigned (=) per window: two published slips."""
    kh = kw = kernel_size
    sh = sw = stride
    grad = np.zeros_like(x)
    out_h, out_w = grad_output.shape[-2:]
    for i in range(out_h):
        for j in range(out_w):
            window = x[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            peak = window.max(axis=(2, 3), keepdims=True)
            target = grad[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            upstream = np.broadcast_to(grad_output[:, :, i : i + 1, j : j + 1], target.shape)
            np.copyto(target, upstream, where=window == peak)
    return grad


def test_max_pool_candidate_checked_in_its_own_space() -> None:
    """Square int kernel and stride only: overlapping windows of distinct values, drawn directly."""
    with pytest.raises(FormulaMismatch) as raised:
        check_formula(
            "max_pool2d",
            backward=max_pool_two_slips,
            fixed={"kernel_size": 2, "stride": 1},
            require=["overlapping windows"],
            exclude=["ties", "3-D input"],
            max_examples=60,
        )
    message = str(raised.value)
    assert "behaves like erratum-6-max-pool-gradient-assigned" in message
    assert "Held: padding=0, dilation=1, ceil_mode=False, kernel_size=2, stride=1" in message


def test_warnings_of_the_candidate_are_listed() -> None:
    def sigmoid_naive(x: Any) -> Any:
        return 1 / (1 + np.exp(-x))

    report_or_error: Any
    try:
        report_or_error = check_formula("sigmoid", forward=sigmoid_naive, max_examples=200)
    except FormulaMismatch as mismatch:
        report_or_error = mismatch
    assert "overflow encountered in exp" in str(report_or_error)


def test_corner_names_are_listed() -> None:
    assert "stride > 1" in available_corners("conv2d")
    assert "ties" in available_corners("max_pool2d")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"formula": "conv2dd", "backward": vectorized.conv2d_backward}, ValueError, "conv2d"),
        ({"formula": "conv2d"}, TypeError, "forward or a backward"),
        ({"formula": "conv2d", "backward": 3}, TypeError, "callable"),
        (
            {"formula": "conv2d", "backward": vectorized.conv2d_backward, "fixed": {"group": 1}},
            ValueError,
            "group",
        ),
        (
            {"formula": "conv2d", "backward": vectorized.conv2d_backward, "fixed": {"groups": 0}},
            ValueError,
            "valid",
        ),
        (
            {"formula": "conv2d", "backward": vectorized.conv2d_backward, "exclude": ["strides"]},
            ValueError,
            "unknown corners",
        ),
        (
            {"formula": "linear", "forward": vectorized.linear, "fixed": {"dtype": "int8"}},
            ValueError,
            "dtype",
        ),
    ],
)
def test_bad_use_is_a_clear_error(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    formula = kwargs.pop("formula")
    with pytest.raises(error, match=match):
        check_formula(formula, max_examples=5, **kwargs)


def test_wrong_number_of_gradients_is_a_usage_error() -> None:
    def two_of_three(grad_output: Any, x: Any, weight: Any, bias: Any = None) -> Any:
        return vectorized.linear_backward(grad_output, x, weight, bias)[:2]

    with pytest.raises(
        CandidateShapeError, match="returned 2 gradients; linear_backward returns 3"
    ):
        check_formula("linear", backward=two_of_three, max_examples=5)


def test_a_candidate_without_bias_returns_two_gradients() -> None:
    def no_bias(grad_output: Any, x: Any, weight: Any) -> Any:
        return vectorized.linear_backward(grad_output, x, weight)[:2]

    report = check_formula("linear", backward=no_bias, max_examples=20)
    assert report.held == {"bias": None}


def test_command_line_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    right = "reference_impl.vectorized:conv2d_backward"
    wrong = "oracle_tests.test_checker:conv2d_backward_stride_slip"
    assert main(["conv2d", "--backward", right, "--max-examples", "10"]) == 0
    fixed = ["--fixed", "groups=1", "dilation=1"]
    assert main(["conv2d", "--backward", wrong, *fixed, "--max-examples", "100"]) == 1
    assert "agrees on every case without stride > 1" in capsys.readouterr().out
    assert main(["conv2dd", "--backward", right]) == 2
    assert main(["conv2d", "--backward", "no.such.module:f"]) == 2
    assert "cannot import" in capsys.readouterr().err
