"""The one comparison helper: every agreement check of the suite goes through here.

A failure names the two implementations that disagree, the quantity, the
worst element with both values, the error against its bound, and the command
that reruns the failing test.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from oracle_tests import report, tolerances


def current_test() -> str:
    """The node id of the running test, for "rerun with" lines."""
    return os.environ.get("PYTEST_CURRENT_TEST", "<unknown test>").rsplit(" ", 1)[0]


def rerun_hint() -> str:
    return (
        f"rerun: pytest '{current_test()}' -n 0 "
        "(Hypothesis prints the falsifying example and a @reproduce_failure line above)"
    )


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
    """Assert that two results agree within the derived bound; return the error ratio.

    ``None`` must meet ``None`` (an absent bias has no gradient). Shapes must
    match exactly; the dtype of ``actual`` must be ``dtype`` unless it came
    from torch.
    """
    where = f"{formula} {quantity}: {actual_name} vs {expected_name}"
    if actual is None or expected is None:
        assert actual is None and expected is None, (
            f"{where}: one is None ({actual_name}: {type(actual).__name__}, "
            f"{expected_name}: {type(expected).__name__}){context}\n{rerun_hint()}"
        )
        return 0.0
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (
        f"{where}: shape {actual.shape} but {expected_name} has {expected.shape}"
        f"{context}\n{rerun_hint()}"
    )
    ratio, index, rel = worst_ratio(actual, expected, dtype, reduction_length)
    if record:
        report.record_error(formula, ratio)
    if ratio > 1.0:
        a = actual[index] if actual.ndim else actual[()]
        e = expected[index] if expected.ndim else expected[()]
        raise AssertionError(
            f"{where} disagree: {quantity}{list(index)} = {a!r} ({actual_name}), "
            f"but should be {e!r} ({expected_name}); |diff| = {abs(float(a) - float(e)):.3e} "
            f"is {ratio:.3g}× the allowed error (relative bound {rel:.2e}, "
            f"dtype {np.dtype(dtype).name}, reduction length {reduction_length})"
            f"{context}\n{rerun_hint()}"
        )
    return ratio
