"""The one comparison helper: every agreement check goes through here.

:func:`measure` compares one quantity (an output or a gradient) against its
expected value and returns a :class:`Verdict`; :func:`assert_agree` measures
every quantity of a formula, keeps going after a failure, and raises one
``AssertionError`` that says which quantities disagree and which agree, the
worst element of each with both values, the error against its bound, the case
and how to rerun it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from reference_impl.testing import report, tolerances


def current_test() -> str:
    """The node id of the running test, for "rerun" lines."""
    return os.environ.get("PYTEST_CURRENT_TEST", "<unknown test>").rsplit(" ", 1)[0]


def rerun_hint() -> str:
    return (
        f"rerun: pytest '{current_test()}' -n 0 "
        "(Hypothesis prints the falsifying example and a @reproduce_failure line above)"
    )


@dataclass(frozen=True)
class Verdict:
    """The comparison of one quantity. ``ratio`` is error / allowed error: ≤ 1 agrees."""

    quantity: str
    ratio: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.ratio <= 1.0


def worst_ratio(
    actual: np.ndarray[Any, Any],
    expected: np.ndarray[Any, Any],
    dtype: np.dtype[Any],
    reduction_length: int,
) -> tuple[float, tuple[int, ...], float]:
    """``(error / allowed, index of the worst element, bound)``; ratio ≤ 1 passes."""
    rel = tolerances.bound(dtype, reduction_length)
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.size == 0:
        return 0.0, (), rel
    same_special = (np.isnan(a) & np.isnan(e)) | (np.isinf(a) & (a == e))
    scale = max(float(np.max(np.abs(e[np.isfinite(e)]), initial=0.0)), 1.0)
    with np.errstate(invalid="ignore"):
        diff = np.where(same_special, 0.0, np.abs(a - e))
    allowed = rel * (np.abs(np.where(np.isfinite(e), e, 0.0)) + scale)
    ratio = np.where(np.isnan(diff), np.inf, diff / allowed)
    flat = int(np.argmax(ratio))
    index = tuple(int(i) for i in np.unravel_index(flat, a.shape))
    return float(ratio.reshape(-1)[flat]), index, rel


def measure(
    actual: Any,
    expected: Any,
    *,
    quantity: str,
    actual_name: str,
    expected_name: str,
    dtype: np.dtype[Any],
    reduction_length: int,
) -> Verdict:
    """Compare one quantity; ``None`` must meet ``None`` and shapes must match exactly."""
    if actual is None or expected is None:
        if actual is None and expected is None:
            return Verdict(quantity, 0.0)
        return Verdict(
            quantity,
            float("inf"),
            f"{quantity}: {actual_name} gives {type(actual).__name__}, "
            f"{expected_name} gives {type(expected).__name__}",
        )
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        return Verdict(
            quantity,
            float("inf"),
            f"{quantity}: shape {actual.shape} from {actual_name}, "
            f"{expected.shape} from {expected_name}",
        )
    ratio, index, rel = worst_ratio(actual, expected, dtype, reduction_length)
    if ratio <= 1.0:
        return Verdict(quantity, ratio)
    a = actual[index] if actual.ndim else actual[()]
    e = expected[index] if expected.ndim else expected[()]
    return Verdict(
        quantity,
        ratio,
        f"{quantity}{list(index) if index else ''} = {float(a)!r} ({actual_name}), "
        f"but should be {float(e)!r} "
        f"({expected_name}); |diff| = {abs(float(a) - float(e)):.3e} is {ratio:.3g}× the "
        f"allowed error (relative bound {rel:.2e}, dtype {np.dtype(dtype).name}, "
        f"reduction length {reduction_length})",
    )


def summarize(
    verdicts: Sequence[Verdict], *, formula: str, actual_name: str, expected_name: str
) -> str:
    """One paragraph: what disagrees (with details), then what agrees."""
    bad = [v for v in verdicts if not v.ok]
    good = [v.quantity for v in verdicts if v.ok]
    lines = [
        f"{formula}: {actual_name} and {expected_name} disagree on "
        f"{', '.join(v.quantity for v in bad)}" + (f"; agree on {', '.join(good)}" if good else "")
    ]
    lines += [f"  {v.detail}" for v in bad]
    return "\n".join(lines)


def assert_agree(
    pairs: Sequence[tuple[str, Any, Any]],
    *,
    formula: str,
    actual_name: str,
    expected_name: str,
    dtype: np.dtype[Any],
    reduction_length: int,
    context: str = "",
    record: bool = True,
) -> float:
    """Every ``(quantity, actual, expected)`` within its bound; return the worst ratio.

    All quantities are measured before anything is raised, so the message
    names every disagreement, not only the first.
    """
    verdicts = [
        measure(
            actual,
            expected,
            quantity=quantity,
            actual_name=actual_name,
            expected_name=expected_name,
            dtype=dtype,
            reduction_length=reduction_length,
        )
        for quantity, actual, expected in pairs
    ]
    if record:
        for verdict in verdicts:
            report.record_error(formula, verdict.ratio)
    if not all(v.ok for v in verdicts):
        raise AssertionError(
            summarize(
                verdicts, formula=formula, actual_name=actual_name, expected_name=expected_name
            )
            + f"{context}\n{rerun_hint()}"
        )
    return max((v.ratio for v in verdicts), default=0.0)


def assert_close(
    actual: Any,
    expected: Any,
    *,
    quantity: str,
    actual_name: str,
    expected_name: str,
    formula: str,
    dtype: np.dtype[Any],
    reduction_length: int,
    context: str = "",
    record: bool = True,
) -> float:
    """One quantity within its derived bound; return the error ratio."""
    return assert_agree(
        [(quantity, actual, expected)],
        formula=formula,
        actual_name=actual_name,
        expected_name=expected_name,
        dtype=dtype,
        reduction_length=reduction_length,
        context=context,
        record=record,
    )


def drift_ratio(actual: Any, expected: Any, allowed: np.ndarray) -> tuple[float, tuple[int, ...]]:
    """``(max |actual − expected| / allowed, index)`` against an element-wise bound.

    For the trajectories whose bound is carried element by element (a running
    error analysis, ``tolerances.adam_drift``); the same ``nan`` or ``inf``
    agrees, and an infinite bound accepts anything.
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return float("inf"), ()
    if a.size == 0:
        return 0.0, ()
    same = (a == e) | (np.isnan(a) & np.isnan(e)) | np.isinf(allowed)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(same, 0.0, np.abs(a - e) / allowed)
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    flat = int(np.argmax(ratio))
    return float(ratio.reshape(-1)[flat]), tuple(int(i) for i in np.unravel_index(flat, a.shape))
