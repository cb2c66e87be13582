"""Running implementations on a case and comparing them: the body of every property."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from oracle_tests import oracles, report, strategies
from oracle_tests.comparison import assert_close
from oracle_tests.registry import IMPLEMENTATIONS, Case, FormulaSpec

Implementation = tuple[Callable[..., Any], Callable[..., Any]]


@dataclass(frozen=True)
class Result:
    output: Any
    grads: tuple[Any, ...]


def any_case(spec: FormulaSpec) -> st.SearchStrategy[Case]:
    """A valid case of ``spec`` in either float dtype."""
    return strategies.dtypes().flatmap(spec.cases)


def reached_corners(case: Case) -> frozenset[str]:
    """The case's own corners plus the generic ones it reaches ("float32")."""
    if case.dtype == np.float32:
        return case.corners | {"float32"}
    return case.corners


def claimed_corners(spec: FormulaSpec, *generic: str) -> frozenset[str]:
    """What the spec claims, plus "float32" (every property draws both dtypes) and ``generic``."""
    return spec.corners | {"float32", *generic}


def implementations(spec: FormulaSpec) -> dict[str, Implementation]:
    return {name: (spec.forward(name), spec.backward(name)) for name in IMPLEMENTATIONS}


def grad_output_for(output: Any, case: Case) -> np.ndarray[Any, Any]:
    return strategies.upstream_gradient(np.shape(output), case.dtype, case.grad_seed)


def run(
    spec: FormulaSpec,
    implementation: Implementation,
    args: Mapping[str, Any],
    grad_output: np.ndarray[Any, Any],
) -> Result:
    forward, backward = implementation
    output = forward(**args)
    grads = backward(grad_output, **args)
    if len(spec.grad_wrt) == 1:
        grads = (grads,)
    return Result(output, tuple(grads))


def check_dtypes(spec: FormulaSpec, name: str, result: Result, dtype: np.dtype[Any]) -> None:
    """Outputs are ndarrays of the input's float dtype (``None`` only for absent inputs)."""
    for quantity, value in [
        ("output", result.output),
        *zip(spec.grad_wrt, result.grads, strict=True),
    ]:
        if value is None:
            continue
        assert isinstance(value, np.ndarray), (
            f"{spec.name} {quantity} from {name} is a {type(value).__name__}, not an ndarray"
        )
        assert value.dtype == dtype, (
            f"{spec.name} {quantity} from {name} has dtype {value.dtype}, expected {dtype}"
        )


def compare(
    spec: FormulaSpec,
    case: Case,
    left_name: str,
    left: Result,
    right_name: str,
    right: Result,
    record: bool = True,
) -> float:
    """Forward output and every gradient of ``left`` against ``right``; the worst ratio.

    ``record=False`` keeps the errors out of the derivation report (for errata).
    """
    dtype = case.dtype
    length = spec.reduction_length(case.args)
    context = f"\n  case: {case.describe()}"
    worst = assert_close(
        left.output,
        right.output,
        quantity="output",
        actual_name=left_name,
        expected_name=right_name,
        formula=spec.name,
        dtype=dtype,
        reduction_length=length,
        context=context,
        record=record,
    )
    for name, actual, expected in zip(spec.grad_wrt, left.grads, right.grads, strict=True):
        worst = max(
            worst,
            assert_close(
                actual,
                expected,
                quantity=f"grad_{name}",
                actual_name=left_name,
                expected_name=right_name,
                formula=spec.name,
                dtype=dtype,
                reduction_length=length,
                context=context,
                record=record,
            ),
        )
    return worst


def torch_result(spec: FormulaSpec, case: Case, grad_output: np.ndarray[Any, Any]) -> Result:
    output, grads = oracles.run_oracle(spec.oracle, case.args, spec.grad_wrt, grad_output)
    return Result(output, grads)


def three_way(spec: FormulaSpec, case: Case) -> None:
    """Loop, vectorized and torch agree on the forward output and every input gradient.

    Also checks that both references return the input's dtype and torch's shapes.
    """
    impls = implementations(spec)
    loop_forward = impls["loop"][0](**case.args)
    grad_output = grad_output_for(loop_forward, case)
    results = {name: run(spec, impl, case.args, grad_output) for name, impl in impls.items()}
    expected = torch_result(spec, case, grad_output)
    for name, result in results.items():
        check_dtypes(spec, name, result, case.dtype)
        compare(spec, case, name, result, "torch", expected)
    compare(spec, case, "loop", results["loop"], "vectorized", results["vectorized"])
    report.record_example(
        spec.name, "loop = vectorized = torch", reached_corners(case), claimed_corners(spec)
    )


def disagrees_with_torch(spec: FormulaSpec, case: Case, implementation: Implementation) -> bool:
    """True when ``implementation`` fails the torch comparison on ``case``.

    An exception from the implementation is not a disagreement: it propagates,
    so a wrong formula that only ever crashes cannot pass as rejected.
    """
    forward, _ = implementation
    output = forward(**case.args)
    grad_output = grad_output_for(output, case)
    result = run(spec, implementation, case.args, grad_output)
    expected = torch_result(spec, case, grad_output)
    try:
        compare(spec, case, "candidate", result, "torch", expected, record=False)
    except AssertionError:
        return True
    return False
