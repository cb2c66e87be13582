"""Meta-tests: the registry covers the public surface, and the strategies do what they claim."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import reference_impl.loops as loops
import reference_impl.vectorized as vectorized
from reference_impl.testing import evaluate, strategies, tolerances
from reference_impl.testing.registry import NAMESPACES, Case, FormulaSpec
from reference_impl.testing.specs import OTHER_PUBLIC_NAMES, SPECS, spec_named

PUBLIC = sorted({*loops.__all__, *vectorized.__all__})


def _expected_names() -> set[str]:
    return {n for spec in SPECS for n in (spec.name, spec.name + "_backward")} | set(
        OTHER_PUBLIC_NAMES
    )


@pytest.mark.parametrize("namespace", list(NAMESPACES))
def test_every_spec_is_public_and_every_public_name_has_a_spec(namespace: str) -> None:
    exposed = set(NAMESPACES[namespace].__all__)
    missing = sorted(_expected_names() - exposed)
    unchecked = sorted(exposed - _expected_names())
    assert not missing, f"reference_impl.{namespace} lacks {missing}, which a spec registers"
    assert not unchecked, (
        f"reference_impl.{namespace} exposes {unchecked}, which no spec in "
        "reference_impl/testing/specs registers"
    )


@pytest.mark.parametrize("name", PUBLIC)
def test_namespaces_have_the_same_signatures(name: str) -> None:
    for namespace, module in NAMESPACES.items():
        assert callable(getattr(module, name, None)), f"reference_impl.{namespace} lacks {name}"
        assert getattr(module, name).__doc__, f"{namespace}.{name} has no docstring"
    assert inspect.signature(getattr(loops, name)) == inspect.signature(getattr(vectorized, name))


@pytest.mark.parametrize("name", sorted(OTHER_PUBLIC_NAMES))
def test_other_public_names_have_a_torch_test(name: str) -> None:
    module_name, test_name = OTHER_PUBLIC_NAMES[name].split(":")
    test = getattr(importlib.import_module(module_name), test_name, None)
    assert test is not None, f"{OTHER_PUBLIC_NAMES[name]} does not exist"
    assert name in test.__name__, f"{test_name} must carry {name!r} so that -k {name} selects it"


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_spec_names_are_unique(spec: object) -> None:
    assert [s.name for s in SPECS].count(str(spec)) == 1


def test_unknown_formula_suggests_close_names() -> None:
    with pytest.raises(KeyError, match="max_pool2d"):
        spec_named("max_pool_2d")


def test_package_imports_numpy_only() -> None:
    code = (
        "import sys, reference_impl, reference_impl.loops, reference_impl.vectorized;"
        "print(sorted(m for m in ('torch', 'hypothesis', 'sympy') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]", f"import reference_impl loads {loaded.strip()}"


@given(
    hnp.arrays(
        strategies.dtypes(),
        hnp.array_shapes(min_dims=0, max_dims=4, max_side=4),
        elements=strategies.GRID,
    ),
    st.sampled_from(strategies.LAYOUTS),
)
def test_relayout_keeps_values_and_changes_layout(array: np.ndarray, layout: str) -> None:
    moved = strategies.relayout(array, layout)
    assert moved.dtype == array.dtype and moved.shape == array.shape
    assert np.array_equal(moved, array)
    if layout in ("strided", "reversed") and array.size > 1:
        assert strategies.is_non_contiguous(moved)


@given(hnp.array_shapes(min_dims=0, max_dims=3, max_side=5), st.integers(0, 2**32 - 1))
def test_upstream_gradient_is_never_zero(shape: tuple[int, ...], seed: int) -> None:
    for dtype in strategies.FLOAT_DTYPES:
        grad = strategies.upstream_gradient(shape, dtype, seed)
        assert grad.shape == shape and grad.dtype == dtype
        assert np.all(grad != 0)
        assert np.all(np.abs(grad) <= 2)


def test_grid_values_are_exact_in_float32() -> None:
    values = (
        np.arange(-4 * strategies.GRID_STEP, 4 * strategies.GRID_STEP + 1) / strategies.GRID_STEP
    )
    assert np.array_equal(values.astype(np.float32).astype(np.float64), values)


def test_tolerance_grows_with_reduction_length_and_precision() -> None:
    assert tolerances.bound(np.float64, 1) < 1e-14
    assert tolerances.bound(np.float32, 1) < 1e-5
    assert tolerances.bound(np.float32, 1000) > 10 * tolerances.bound(np.float32, 1)
    assert tolerances.bound(np.float32, 1) > 1e6 * tolerances.bound(np.float64, 1) / 4


def _two_outputs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.tanh(x), x * x


def _two_outputs_backward(grad_output: tuple[np.ndarray, np.ndarray], x: np.ndarray) -> Any:
    grad_a, grad_b = grad_output
    return grad_a * (1 - np.tanh(x) ** 2) + grad_b * 2 * x


def _ignores_b(grad_output: tuple[np.ndarray, np.ndarray], x: np.ndarray) -> Any:
    return grad_output[0] * (1 - np.tanh(x) ** 2)


def test_formulas_with_several_outputs_and_silent_upstream_gradients() -> None:
    """A forward returning ``(a, b)`` and a backward taking ``(grad_a, grad_b)``.

    The torch oracle returns a tuple too; a silent output gets a zero upstream
    gradient; a backward that ignores ``grad_b`` passes only while ``b`` is silent.
    """
    import torch

    spec = FormulaSpec(
        name="tanh_and_square",
        cases=lambda dtype, steer: st.nothing(),
        grad_wrt=("x",),
        outputs=("a", "b"),
        oracle=lambda x: (torch.tanh(x), x * x),
    )
    x = np.array([[-1.0, 0.5], [2.0, 0.25]])
    for silent, backward, agrees in [
        (frozenset(), _two_outputs_backward, True),
        (frozenset({"b"}), _ignores_b, True),
        (frozenset(), _ignores_b, False),
    ]:
        case = Case({"x": x}, grad_seed=5, silent=silent)
        expected, grad_outputs = evaluate.torch_result(spec, case)
        assert len(expected.outputs) == 2 and len(grad_outputs) == 2
        assert np.all(grad_outputs[1] == 0) == ("b" in silent)
        result = evaluate.run(spec, (_two_outputs, backward), case, grad_outputs)
        assert [q for q, _ in result.quantities(spec)] == ["a", "b", "grad_x"]
        if agrees:
            evaluate.compare(spec, case, "two outputs", result, "torch", expected, record=False)
        else:
            with pytest.raises(AssertionError, match="disagree on grad_x; agree on a, b"):
                evaluate.compare(spec, case, "two outputs", result, "torch", expected, record=False)
