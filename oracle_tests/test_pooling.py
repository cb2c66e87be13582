"""Properties specific to the pooling family, beyond the generic registry properties.

* ``test_max_pool2d_window_gradients_sum_to_upstream``: with a one-hot upstream
  gradient, the input gradient is the gradient of a single window; it must be
  one entry equal to the upstream value, inside that window. Rejects routing
  to every tied maximum (the sum doubles), routing into the padding (the sum
  is lost) and routing outside the window.
* ``test_max_pool2d_non_overlapping_gradient_is_a_partition``: without overlap every
  input element belongs to at most one window, so the input gradient, summed
  over each window, is that window's upstream gradient.

Bad arguments (ranks, dtypes, kernels, strides, paddings, a dilation that
leaves a window wholly in the padding) are declared in the specs'
``error_inputs`` and run by ``test_properties.py``.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, strategies as st

import reference_impl.loops
import reference_impl.vectorized
from reference_impl._validation import int_pair
from reference_impl.testing.registry import NO_STEER
from reference_impl.testing.specs.pooling import TIES, max_pool2d_cases
from reference_impl.testing.strategies import arrays, dtypes

#: Hypothesis tests take the namespace as a parameter (a fixture would be shared by examples)
EACH_NAMESPACE = pytest.mark.parametrize(
    "ns", [reference_impl.loops, reference_impl.vectorized], ids=["loops", "vectorized"]
)


@EACH_NAMESPACE
@given(data=st.data())
def test_max_pool2d_window_gradients_sum_to_upstream(ns: ModuleType, data: st.DataObject) -> None:
    dtype = data.draw(dtypes(), label="dtype")
    case = data.draw(max_pool2d_cases(dtype, NO_STEER), label="case")
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
def test_max_pool2d_non_overlapping_gradient_is_a_partition(
    ns: ModuleType, data: st.DataObject
) -> None:
    dtype = data.draw(dtypes(), label="dtype")
    kh, kw = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 3)), label="kernel")
    oh, ow = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 3)), label="windows")
    x = data.draw(arrays(dtype, (2, 2, oh * kh, ow * kw), TIES), label="x")
    g = data.draw(arrays(dtype, (2, 2, oh, ow), st.integers(-8, 8).map(float)), label="g")
    grad = ns.max_pool2d_backward(g, x, (kh, kw))
    per_window = grad.reshape(2, 2, oh, kh, ow, kw).sum(axis=(3, 5))
    np.testing.assert_array_equal(per_window, g)
