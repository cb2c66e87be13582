"""Running implementations on a case and comparing them: the body of every property.

One evaluation path: torch's forward runs once and fixes the output shapes,
the seeded upstream gradients are made for those shapes, and each
implementation then runs its forward once and its backward once on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from reference_impl.testing import oracles, report, strategies
from reference_impl.testing.comparison import assert_agree
from reference_impl.testing.registry import NAMESPACES, NO_STEER, Case, FormulaSpec, Steer

Implementation = tuple[Callable[..., Any], Callable[..., Any]]


@dataclass(frozen=True)
class Result:
    """Forward outputs and input gradients, each a tuple in the spec's order."""

    outputs: tuple[Any, ...]
    grads: tuple[Any, ...]
    grad_outputs: tuple[Any, ...] = ()

    def quantities(self, spec: FormulaSpec) -> list[tuple[str, Any]]:
        return list(zip(spec.quantities, (*self.outputs, *self.grads), strict=True))


def any_case(
    spec: FormulaSpec,
    steer: Steer = NO_STEER,
    dtypes: Iterable[np.dtype[Any]] = strategies.FLOAT_DTYPES,
) -> st.SearchStrategy[Case]:
    """A valid case of ``spec`` in one of ``dtypes``, drawn under ``steer``."""
    return st.tuples(st.sampled_from(tuple(dtypes)), steer.resolved()).flatmap(
        lambda pair: spec.cases(*pair)
    )


def reached_corners(case: Case) -> frozenset[str]:
    """The case's own corners plus the generic ones it reaches ("float32")."""
    if case.dtype == np.float32:
        return case.corners | {"float32"}
    return case.corners


def claimed_corners(spec: FormulaSpec, *generic: str) -> frozenset[str]:
    """What the spec claims, plus "float32" (every property draws both dtypes) and ``generic``."""
    return spec.corners | {"float32", *generic}


def implementations(spec: FormulaSpec) -> dict[str, Implementation]:
    return {name: (spec.forward(name), spec.backward(name)) for name in NAMESPACES}


def upstream(spec: FormulaSpec, case: Case, outputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """The seeded upstream gradient of each output (zeros for the case's silent outputs)."""
    grads = []
    for k, (name, output) in enumerate(zip(spec.outputs, outputs, strict=True)):
        grad = strategies.upstream_gradient(np.shape(output), case.dtype, case.grad_seed + k)
        grads.append(np.zeros_like(grad) if name in case.silent else grad)
    return tuple(grads)


def as_outputs(spec: FormulaSpec, value: Any) -> tuple[Any, ...]:
    """A forward's return value as a tuple of outputs."""
    return tuple(value) if len(spec.outputs) > 1 else (value,)


def upstream_argument(spec: FormulaSpec, grad_outputs: tuple[Any, ...]) -> Any:
    """What ``name_backward`` takes: one array, or a tuple for several outputs."""
    return grad_outputs if len(spec.outputs) > 1 else grad_outputs[0]


def run(
    spec: FormulaSpec,
    implementation: Implementation,
    case: Case,
    grad_outputs: tuple[Any, ...] | None = None,
    *,
    args: Mapping[str, Any] | None = None,
) -> Result:
    """The forward once, then the backward on ``grad_outputs``.

    Without ``grad_outputs`` the case's seeded upstream gradients are made for
    this forward's output shapes. ``args`` replaces the case's arguments (the
    same values in another memory layout, say).
    """
    forward, backward = implementation
    args = case.args if args is None else args
    outputs = as_outputs(spec, forward(**args))
    if grad_outputs is None:
        grad_outputs = upstream(spec, case, outputs)
    grads = backward(upstream_argument(spec, grad_outputs), **args)
    if len(spec.grad_wrt) == 1:
        grads = (grads,)
    return Result(outputs, tuple(grads), grad_outputs)


def torch_result(spec: FormulaSpec, case: Case) -> tuple[Result, tuple[Any, ...]]:
    """torch's outputs and gradients, and the upstream gradients they were taken with."""
    made: list[tuple[Any, ...]] = []

    def make(outputs: tuple[Any, ...]) -> tuple[Any, ...]:
        made.append(upstream(spec, case, outputs))
        return made[0]

    outputs, grads = oracles.run_oracle(spec.name, spec.oracle, case.args, spec.grad_wrt, make)
    return Result(outputs, grads, made[0]), made[0]


def check_dtypes(spec: FormulaSpec, name: str, result: Result, dtype: np.dtype[Any]) -> None:
    """Outputs are ndarrays of the input's float dtype (``None`` only for absent inputs)."""
    for quantity, value in result.quantities(spec):
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
    """Every output and gradient of ``left`` against ``right``; the worst ratio.

    ``record=False`` keeps the errors out of the derivation report (for errata).
    """
    expected = dict(right.quantities(spec))
    return assert_agree(
        [(quantity, value, expected[quantity]) for quantity, value in left.quantities(spec)],
        formula=spec.name,
        actual_name=left_name,
        expected_name=right_name,
        dtype=case.dtype,
        reduction_length=spec.reduction_length(case.args),
        context=f"\n  case: {case.describe()}",
        record=record,
    )


def three_way(spec: FormulaSpec, case: Case) -> None:
    """Loops, vectorized and torch agree on every output and every input gradient.

    Also checks that both references return the input's dtype and torch's shapes.
    """
    expected, grad_outputs = torch_result(spec, case)
    results = {
        name: run(spec, impl, case, grad_outputs) for name, impl in implementations(spec).items()
    }
    for name, result in results.items():
        check_dtypes(spec, name, result, case.dtype)
        compare(spec, case, name, result, "torch", expected)
    compare(spec, case, "loops", results["loops"], "vectorized", results["vectorized"])
    report.record_example(
        spec.name, "loops = vectorized = torch", reached_corners(case), claimed_corners(spec)
    )
