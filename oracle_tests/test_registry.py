"""Meta-tests: the registry covers the public surface, and the strategies do what they claim."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import reference_impl
import reference_impl.loops as loops
import reference_impl.vectorized as vectorized
from oracle_tests import strategies, tolerances
from oracle_tests.specs import OTHER_PUBLIC_NAMES, SPECS

ROOT = Path(__file__).resolve().parent.parent


def test_namespaces_expose_the_same_names() -> None:
    assert sorted(loops.__all__) == sorted(vectorized.__all__)
    for name in loops.__all__:
        assert callable(getattr(loops, name)) and callable(getattr(vectorized, name)), name


@pytest.mark.parametrize("name", sorted(loops.__all__))
def test_namespaces_have_the_same_signatures(name: str) -> None:
    assert inspect.signature(getattr(loops, name)) == inspect.signature(getattr(vectorized, name))
    assert getattr(loops, name).__doc__, f"loops.{name} has no docstring"
    assert getattr(vectorized, name).__doc__, f"vectorized.{name} has no docstring"


def test_every_public_name_has_a_spec() -> None:
    covered = set(OTHER_PUBLIC_NAMES)
    for spec in SPECS:
        covered |= {spec.name, spec.name + "_backward"}
    missing = sorted(set(loops.__all__) - covered)
    assert not missing, f"public names without a spec in oracle_tests/specs: {missing}"
    for name, module in OTHER_PUBLIC_NAMES.items():
        assert name in (ROOT / module).read_text(), f"{module} does not test {name}"


def test_spec_names_are_unique_and_public() -> None:
    names = [spec.name for spec in SPECS]
    assert len(names) == len(set(names))
    for name in names:
        assert name in loops.__all__ and name + "_backward" in loops.__all__, name


def test_package_imports_numpy_only() -> None:
    for path in Path(reference_impl.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert "import torch" not in text and "from torch" not in text, path.name


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
