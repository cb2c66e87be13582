"""Generic properties, run over every formula in the registry.

For each property, the wrong formulas it rejects:

* ``test_loop_vectorized_and_torch_agree``: any formula error in either
  implementation (a wrong index, factor, sign, sum range, dilation, padding
  or tie rule); outputs of the wrong shape or dtype. The upstream gradient is
  random, so a gradient that is only right for all-ones (softmax) fails.
* ``test_non_contiguous_inputs``: code that reads ``.data``/strides as if the
  array were C-contiguous (``as_strided`` with assumed strides, a ``reshape``
  that should have been a copy, ``ravel`` order).
* ``test_inputs_are_not_mutated``: in-place updates of an argument
  (``x -= ...``, ``np.exp(x, out=x)``) and results that alias an input.
* ``test_rejects_bad_dtypes``: integer, complex or mixed-precision arrays
  accepted and silently promoted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, strategies as st

from oracle_tests import checks, report, strategies
from oracle_tests.registry import Case, FormulaSpec
from oracle_tests.specs import SPECS

pytestmark = pytest.mark.parametrize("spec", SPECS, ids=str)


@given(data=st.data())
def test_loop_vectorized_and_torch_agree(spec: FormulaSpec, data: st.DataObject) -> None:
    case = data.draw(checks.any_case(spec), label="case")
    checks.three_way(spec, case)


def _float_arrays(case: Case) -> list[str]:
    return [k for k, v in case.arrays().items() if v.dtype.kind == "f" and v.ndim > 0]


@given(data=st.data())
def test_non_contiguous_inputs(spec: FormulaSpec, data: st.DataObject) -> None:
    case = data.draw(checks.any_case(spec), label="case")
    layouts = {
        name: data.draw(st.sampled_from(strategies.LAYOUTS[1:]), label=f"layout of {name}")
        for name in _float_arrays(case)
    }
    moved = case.with_args(
        **{name: strategies.relayout(case.args[name], layout) for name, layout in layouts.items()}
    )
    corners = checks.reached_corners(case)
    if any(strategies.is_non_contiguous(moved.args[name]) for name in layouts):
        corners = corners | {"non-contiguous"}
    for name, impl in checks.implementations(spec).items():
        output = impl[0](**case.args)
        grad_output = checks.grad_output_for(output, case)
        moved_grad = strategies.relayout(grad_output, "strided")
        expected = checks.run(spec, impl, case.args, grad_output)
        actual = checks.run(spec, impl, moved.args, moved_grad)
        checks.compare(spec, case, f"{name} on {layouts}", actual, f"{name} contiguous", expected)
    report.record_example(
        spec.name,
        "layout invariance",
        corners,
        checks.claimed_corners(spec, "non-contiguous"),
    )


def _snapshot(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v.copy() for k, v in args.items() if isinstance(v, np.ndarray)}


@given(data=st.data())
def test_inputs_are_not_mutated(spec: FormulaSpec, data: st.DataObject) -> None:
    case = data.draw(checks.any_case(spec), label="case")
    for name, impl in checks.implementations(spec).items():
        args = dict(case.args)
        before = _snapshot(args)
        output = impl[0](**args)
        grad_output = checks.grad_output_for(output, case)
        grad_before = grad_output.copy()
        result = checks.run(spec, impl, args, grad_output)
        for arg, value in before.items():
            assert np.array_equal(args[arg], value, equal_nan=True), (
                f"{spec.name} ({name}) modified its argument {arg!r}"
            )
        assert np.array_equal(grad_output, grad_before), (
            f"{spec.name}_backward ({name}) modified grad_output"
        )
        produced = [("output", result.output), *zip(spec.grad_wrt, result.grads, strict=True)]
        inputs = [(k, v) for k, v in args.items() if isinstance(v, np.ndarray)]
        inputs.append(("grad_output", grad_output))
        for label, value in produced:
            if value is None:
                continue
            for arg, array in inputs:
                assert not np.shares_memory(value, array), (
                    f"{spec.name} ({name}): {label} shares memory with the argument {arg!r}"
                )
    report.record_example(
        spec.name,
        "no mutation or aliasing",
        checks.reached_corners(case),
        checks.claimed_corners(spec),
    )


@given(data=st.data())
def test_rejects_bad_dtypes(spec: FormulaSpec, data: st.DataObject) -> None:
    """Integer, complex and mixed-precision arrays raise a TypeError naming the argument."""
    case = data.draw(checks.any_case(spec), label="case")
    floats = [k for k, v in case.arrays().items() if v.dtype.kind == "f"]
    name = data.draw(st.sampled_from(floats), label="argument")
    other = np.float32 if case.dtype == np.float64 else np.float64
    choices: list[Any] = [np.complex128, other]
    if name not in spec.integer_args:
        choices += [np.int64, np.int32]
    bad_dtype = data.draw(st.sampled_from(choices), label="dtype")
    bad = case.with_args(**{name: case.args[name].astype(bad_dtype)})
    # A lone array of the other float dtype is valid; it is "mixed" only beside another.
    forward_rejects = bad_dtype != other or len(floats) > 1
    for impl_name in ("loop", "vectorized"):
        if forward_rejects:
            with pytest.raises(TypeError, match=name):
                spec.forward(impl_name)(**bad.args)
        output = spec.forward(impl_name)(**case.args)
        grad_output = checks.grad_output_for(output, case)
        with pytest.raises(TypeError, match=name):
            spec.backward(impl_name)(grad_output, **bad.args)
        with pytest.raises(TypeError, match="grad_output"):
            spec.backward(impl_name)(grad_output.astype(bad_dtype), **case.args)
    report.record_example(
        spec.name, "dtype errors", checks.reached_corners(case), checks.claimed_corners(spec)
    )
