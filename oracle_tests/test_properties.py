"""Generic properties, run over every formula in the registry.

For each property, the wrong formulas it rejects:

* ``test_loops_vectorized_and_torch_agree``: any formula error in either
  implementation (a wrong index, factor, sign, sum range, dilation, padding
  or tie rule); outputs of the wrong shape or dtype. The upstream gradient is
  random, so a gradient that is only right for all-ones (softmax) fails.
* ``test_non_contiguous_inputs``: code that reads ``.data``/strides as if the
  array were C-contiguous (``as_strided`` with assumed strides, a ``reshape``
  that should have been a copy, ``ravel`` order).
* ``test_inputs_are_not_mutated``: in-place updates of an argument
  (``x -= ...``, ``np.exp(x, out=x)``), results that alias an input, and
  gradients that alias each other (``grad_bias`` a view of ``grad_input``).
* ``test_rejects_bad_dtypes``: integer, complex or mixed-precision arrays
  accepted and silently promoted.
* ``test_rejects_misshapen_grad_output``: an upstream gradient broadcast
  against the output instead of rejected.
* ``test_rejects_bad_arguments``: each spec's ``error_inputs``, forward and
  backward, in both namespaces; the message must name the argument as a word.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reference_impl.testing import evaluate, report, strategies
from reference_impl.testing.registry import NAMESPACES, Case, ErrorInput, FormulaSpec
from reference_impl.testing.specs import SPECS

EACH_SPEC = pytest.mark.parametrize("spec", SPECS, ids=str)
#: The agreement with torch gets the profile's whole budget; the properties of
#: the calling contract (layouts, mutation, dtypes, shapes) fail on any case of
#: the wrong kind, not on a rare corner, so a quarter of it finds them.
CONTRACT = settings(max_examples=max(10, settings().max_examples // 4))


def names(argument: str) -> str:
    """A pattern that finds ``argument`` as a word: ``x`` is not found in "mixed"."""
    return rf"(?<![\w.]){re.escape(argument)}(?!\w)"


@EACH_SPEC
@given(data=st.data())
def test_loops_vectorized_and_torch_agree(spec: FormulaSpec, data: st.DataObject) -> None:
    case = data.draw(evaluate.any_case(spec), label="case")
    evaluate.three_way(spec, case)


def _float_arrays(case: Case) -> list[str]:
    return [k for k, v in case.arrays().items() if v.dtype.kind == "f" and v.ndim > 0]


@EACH_SPEC
@CONTRACT
@given(data=st.data())
def test_non_contiguous_inputs(spec: FormulaSpec, data: st.DataObject) -> None:
    case = data.draw(evaluate.any_case(spec), label="case")
    layouts = {
        name: data.draw(st.sampled_from(strategies.LAYOUTS[1:]), label=f"layout of {name}")
        for name in _float_arrays(case)
    }
    moved = {
        **case.args,
        **{name: strategies.relayout(case.args[name], layout) for name, layout in layouts.items()},
    }
    corners = evaluate.reached_corners(case)
    if any(strategies.is_non_contiguous(moved[name]) for name in layouts):
        corners = corners | {"non-contiguous"}
    for name, impl in evaluate.implementations(spec).items():
        expected = evaluate.run(spec, impl, case)
        moved_grads = tuple(strategies.relayout(g, "strided") for g in expected.grad_outputs)
        actual = evaluate.run(spec, impl, case, moved_grads, args=moved)
        evaluate.compare(spec, case, f"{name} on {layouts}", actual, f"{name} contiguous", expected)
    report.record_example(
        spec.name, "layout invariance", corners, evaluate.claimed_corners(spec, "non-contiguous")
    )


def _snapshot(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v.copy() for k, v in args.items() if isinstance(v, np.ndarray)}


@EACH_SPEC
@CONTRACT
@given(data=st.data())
def test_inputs_are_not_mutated(spec: FormulaSpec, data: st.DataObject) -> None:
    case = data.draw(evaluate.any_case(spec), label="case")
    for name, impl in evaluate.implementations(spec).items():
        args = dict(case.args)
        before = _snapshot(args)
        grad_outputs = evaluate.run(spec, impl, case).grad_outputs
        grads_before = [g.copy() for g in grad_outputs]
        result = evaluate.run(spec, impl, case, grad_outputs, args=args)
        for arg, value in before.items():
            assert np.array_equal(args[arg], value, equal_nan=True), (
                f"{spec.name} ({name}) modified its argument {arg!r}"
            )
        for upstream, saved in zip(grad_outputs, grads_before, strict=True):
            assert np.array_equal(upstream, saved), (
                f"{spec.name}_backward ({name}) modified grad_output"
            )
        produced = [(k, v) for k, v in result.quantities(spec) if v is not None]
        inputs = [(k, v) for k, v in args.items() if isinstance(v, np.ndarray)]
        inputs += [("grad_output", g) for g in grad_outputs]
        for label, value in produced:
            for arg, array in inputs:
                assert not np.shares_memory(value, array), (
                    f"{spec.name} ({name}): {label} shares memory with the argument {arg!r}"
                )
        for i, (label, value) in enumerate(produced):
            for other, array in produced[i + 1 :]:
                assert not np.shares_memory(value, array), (
                    f"{spec.name} ({name}): {label} and {other} share memory"
                )
    report.record_example(
        spec.name,
        "no mutation or aliasing",
        evaluate.reached_corners(case),
        evaluate.claimed_corners(spec),
    )


@EACH_SPEC
@CONTRACT
@given(data=st.data())
def test_rejects_bad_dtypes(spec: FormulaSpec, data: st.DataObject) -> None:
    """Integer, complex and mixed-precision arrays raise a TypeError naming the argument."""
    case = data.draw(evaluate.any_case(spec), label="case")
    floats = [k for k, v in case.arrays().items() if v.dtype.kind == "f"]
    name = data.draw(st.sampled_from(floats), label="argument")
    other = np.float32 if case.dtype == np.float64 else np.float64
    choices: list[Any] = [np.complex128, other]
    if name not in spec.integer_args:
        choices += [np.int64, np.int32]
    bad_dtype = data.draw(st.sampled_from(choices), label="dtype")
    with np.errstate(invalid="ignore"):  # a float mask's −inf has no integer: any value will do
        bad = {**case.args, name: case.args[name].astype(bad_dtype)}
    # A lone array of the other float dtype is valid; it is "mixed" only beside another.
    forward_rejects = bad_dtype != other or len(floats) > 1
    for namespace in NAMESPACES:
        if forward_rejects:
            with pytest.raises(TypeError, match=names(name)):
                spec.forward(namespace)(**bad)
        grad_outputs = evaluate.run(spec, (spec.forward(namespace), spec.backward(namespace)), case)
        upstream = evaluate.upstream_argument(spec, grad_outputs.grad_outputs)
        with pytest.raises(TypeError, match=names(name)):
            spec.backward(namespace)(upstream, **bad)
        bad_upstream = tuple(g.astype(bad_dtype) for g in grad_outputs.grad_outputs)
        with pytest.raises(TypeError, match=names("grad_output")):
            spec.backward(namespace)(evaluate.upstream_argument(spec, bad_upstream), **case.args)
    report.record_example(
        spec.name, "dtype errors", evaluate.reached_corners(case), evaluate.claimed_corners(spec)
    )


@EACH_SPEC
@CONTRACT
@given(data=st.data())
def test_rejects_misshapen_grad_output(spec: FormulaSpec, data: st.DataObject) -> None:
    """An upstream gradient with an extra axis, or one axis longer, raises a ValueError."""
    case = data.draw(evaluate.any_case(spec), label="case")
    for namespace in NAMESPACES:
        impl = (spec.forward(namespace), spec.backward(namespace))
        grad_outputs = list(evaluate.run(spec, impl, case).grad_outputs)
        k = data.draw(st.integers(0, len(grad_outputs) - 1), label="which output")
        good = grad_outputs[k]
        if good.ndim and data.draw(st.booleans(), label="longer axis"):
            axis = data.draw(st.integers(0, good.ndim - 1), label="axis")
            grad_outputs[k] = np.concatenate([good, good.take([0], axis=axis)], axis=axis)
        else:
            grad_outputs[k] = good[np.newaxis]
        with pytest.raises(ValueError, match=names("grad_output")):
            spec.backward(namespace)(
                evaluate.upstream_argument(spec, tuple(grad_outputs)), **case.args
            )


ERROR_INPUTS = [
    pytest.param(spec, error, id=f"{spec.name}-{error.id}")
    for spec in SPECS
    for error in spec.error_inputs
]


@pytest.mark.parametrize("namespace", list(NAMESPACES))
@pytest.mark.parametrize(("spec", "error"), ERROR_INPUTS)
def test_rejects_bad_arguments(spec: FormulaSpec, error: ErrorInput, namespace: str) -> None:
    """Each declared bad call raises its error, naming the argument, forward and backward."""
    assert spec.error_base is not None, f"{spec.name} declares error inputs without a base"
    good = spec.error_base()
    upstream = evaluate.upstream_argument(
        spec,
        tuple(
            np.ones_like(out) for out in evaluate.as_outputs(spec, spec.forward(namespace)(**good))
        ),
    )
    bad = {**good, **error.changes}
    calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
        (spec.forward(namespace), ()),
        (spec.backward(namespace), (upstream,)),
    ]
    for function, upstream_args in calls:
        with pytest.raises(error.error, match=names(error.argument)) as raised:
            function(*upstream_args, **bad)
        if error.match:
            assert re.search(error.match, str(raised.value)), (
                f"{spec.name} {error.id}: message {str(raised.value)!r} "
                f"does not match {error.match!r}"
            )


def test_every_formula_declares_bad_arguments() -> None:
    lacking = [spec.name for spec in SPECS if not spec.error_inputs]
    assert not lacking, f"specs without error_inputs: {lacking}"
