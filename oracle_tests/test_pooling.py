"""Properties specific to the pooling family, beyond the generic registry properties.

* ``test_max_window_gradients_sum_to_upstream``: with a one-hot upstream
  gradient, the input gradient is the gradient of a single window; it must be
  one entry equal to the upstream value, inside that window. Rejects routing
  to every tied maximum (the sum doubles), routing into the padding (the sum
  is lost) and routing outside the window.
* ``test_non_overlapping_max_gradient_is_a_partition``: without overlap every
  input element belongs to at most one window, so the input gradient, summed
  over each window, is that window's upstream gradient.
* ``test_bad_arguments`` / ``test_bad_arrays``: every invalid parameter or
  array (rank, dtype, mixed dtypes, misshapen ``grad_output``) raises
  ``ValueError`` or ``TypeError`` naming it, in both namespaces, forward and
  backward.
* ``test_window_wholly_in_padding``: dilation that leaves a window with no
  tap inside the input is rejected instead of producing ``−∞``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, strategies as st

import reference_impl.loops
import reference_impl.vectorized
from oracle_tests.specs.pooling import TIES, max_pool2d_cases
from oracle_tests.strategies import arrays, dtypes
from reference_impl._validation import int_pair

#: Hypothesis tests take the namespace as a parameter (a fixture would be shared by examples)
EACH_NAMESPACE = pytest.mark.parametrize(
    "ns", [reference_impl.loops, reference_impl.vectorized], ids=["loops", "vectorized"]
)


@EACH_NAMESPACE
@given(data=st.data())
def test_max_window_gradients_sum_to_upstream(ns: ModuleType, data: st.DataObject) -> None:
    dtype = data.draw(dtypes(), label="dtype")
    case = data.draw(max_pool2d_cases(dtype), label="case")
    args = dict(case.args)
    x = args["x"]
    y = ns.max_pool2d(**args)
    window = tuple(
        data.draw(st.integers(0, n - 1), label=f"index {i}") for i, n in enumerate(y.shape)
    )
    upstream = np.zeros_like(y)
    upstream[window] = 1.5
    grad = ns.max_pool2d_backward(upstream, **args)
    assert grad.sum() == 1.5
    hit = np.argwhere(grad != 0)
    assert len(hit) == 1, f"gradient of one window reached {len(hit)} input elements"
    assert x[tuple(hit[0])] == y[window]
    # the element lies in that window: on each axis, at a tap position
    kernel, dilation = (
        int_pair("kernel_size", args["kernel_size"], 0),
        int_pair("dilation", args["dilation"], 0),
    )
    stride = kernel if args["stride"] is None else int_pair("stride", args["stride"], 0)
    padding = int_pair("padding", args["padding"], 0)
    for axis in (-2, -1):
        offset = hit[0][axis] - window[axis] * stride[axis] + padding[axis]
        assert offset % dilation[axis] == 0
        assert 0 <= offset // dilation[axis] < kernel[axis]
    assert hit[0][:-2].tolist() == list(window[:-2])


@EACH_NAMESPACE
@given(data=st.data())
def test_non_overlapping_max_gradient_is_a_partition(ns: ModuleType, data: st.DataObject) -> None:
    dtype = data.draw(dtypes(), label="dtype")
    kh, kw = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 3)), label="kernel")
    oh, ow = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 3)), label="windows")
    x = data.draw(arrays(dtype, (2, 2, oh * kh, ow * kw), TIES), label="x")
    g = data.draw(arrays(dtype, (2, 2, oh, ow), st.integers(-8, 8).map(float)), label="g")
    grad = ns.max_pool2d_backward(g, x, (kh, kw))
    per_window = grad.reshape(2, 2, oh, kh, ow, kw).sum(axis=(3, 5))
    np.testing.assert_array_equal(per_window, g)


def _x(shape: tuple[int, ...] = (1, 1, 4, 4), dtype: Any = np.float64) -> Any:
    return np.arange(np.prod(shape), dtype=dtype).reshape(shape)


MAX_BAD = [
    ({"kernel_size": 0}, ValueError, "kernel_size"),
    ({"kernel_size": (2, -1)}, ValueError, "kernel_size"),
    ({"kernel_size": 2.0}, TypeError, "kernel_size"),
    ({"kernel_size": (1, 2, 3)}, TypeError, "kernel_size"),
    ({"stride": 0}, ValueError, "stride"),
    ({"stride": (1, 0)}, ValueError, "stride"),
    ({"dilation": 0}, ValueError, "dilation"),
    ({"padding": -1}, ValueError, "padding"),
    ({"padding": 2}, ValueError, "padding"),
    ({"kernel_size": (3, 2), "padding": (1, 2)}, ValueError, "padding"),
    ({"kernel_size": 5}, ValueError, "output height"),
    ({"kernel_size": (1, 3), "dilation": (1, 2)}, ValueError, "output width"),
    ({"ceil_mode": 1}, TypeError, "ceil_mode"),
]
AVG_BAD = [
    ({"kernel_size": 0}, ValueError, "kernel_size"),
    ({"stride": -1}, ValueError, "stride"),
    ({"padding": -1}, ValueError, "padding"),
    ({"padding": 2}, ValueError, "padding"),
    ({"kernel_size": (5, 1)}, ValueError, "output height"),
    ({"divisor_override": 0}, ValueError, "divisor_override"),
    ({"divisor_override": 1.5}, TypeError, "divisor_override"),
    ({"count_include_pad": None}, TypeError, "count_include_pad"),
    ({"ceil_mode": "yes"}, TypeError, "ceil_mode"),
]


def _calls(namespace: ModuleType, name: str, x: Any, params: dict[str, Any]) -> list[Any]:
    forward = getattr(namespace, name)
    backward = getattr(namespace, name + "_backward")
    grad = np.ones((1, 1, 2, 2), dtype=x.dtype)
    return [lambda: forward(x, **params), lambda: backward(grad, x, **params)]


@pytest.mark.parametrize(
    ("name", "params", "error", "match"),
    [
        *(("max_pool2d", p, e, m) for p, e, m in MAX_BAD),
        *(("avg_pool2d", p, e, m) for p, e, m in AVG_BAD),
    ],
)
def test_bad_arguments(
    namespace: ModuleType, name: str, params: dict[str, Any], error: type[Exception], match: str
) -> None:
    params = {"kernel_size": 2, **params}
    for call in _calls(namespace, name, _x(), params):
        with pytest.raises(error, match=match):
            call()


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
def test_bad_arrays(namespace: ModuleType, name: str) -> None:
    forward = getattr(namespace, name)
    backward = getattr(namespace, name + "_backward")
    x = _x()
    grad = np.ones((1, 1, 2, 2))
    for bad_x in (_x((4, 4)), _x((1, 1, 1, 4, 4))):
        with pytest.raises(ValueError, match="x must have 3 or 4 dimensions"):
            forward(bad_x, 2)
        with pytest.raises(ValueError, match="x must have 3 or 4 dimensions"):
            backward(grad, bad_x, 2)
    for bad_x in (x.astype(np.int64), x.astype(np.float16), x.tolist()):
        with pytest.raises(TypeError, match="x must"):
            forward(bad_x, 2)
        with pytest.raises(TypeError, match="x must"):
            backward(grad, bad_x, 2)
    with pytest.raises(TypeError, match="grad_output"):
        backward(grad.astype(np.float32), x, 2)
    with pytest.raises(TypeError, match="grad_output"):
        backward(grad.astype(np.int32), x, 2)
    for bad_grad in (np.ones((1, 1, 2, 3)), np.ones((1, 2, 2)), np.ones((2, 1, 2, 2))):
        with pytest.raises(ValueError, match=r"grad_output must have shape \(1, 1, 2, 2\)"):
            backward(bad_grad, x, 2)
    with pytest.raises(ValueError, match=r"grad_output must have shape \(1, 2, 2\)"):
        backward(grad, x[0], 2)


@pytest.mark.parametrize(
    ("shape", "params"),
    [
        # the example of docs/derivations.md: taps at columns -1 and 1 of a 1-wide input
        ((1, 1, 3, 1), {"kernel_size": (1, 2), "padding": (0, 1), "dilation": (1, 2)}),
        ((1, 1, 1, 3), {"kernel_size": (2, 1), "padding": (1, 0), "dilation": (2, 1)}),
        # taps at rows -1 and 2 of a 2-high input, 3-D input
        ((1, 2, 3), {"kernel_size": (2, 1), "padding": (1, 0), "dilation": (3, 1)}),
    ],
)
def test_window_wholly_in_padding(
    namespace: ModuleType, shape: tuple[int, ...], params: dict[str, Any]
) -> None:
    x = _x(shape)
    with pytest.raises(ValueError, match="wholly in the padding"):
        namespace.max_pool2d(x, **params)
    with pytest.raises(ValueError, match="wholly in the padding"):
        namespace.max_pool2d_backward(np.ones((1, 1, 1, 1)), x, **params)
