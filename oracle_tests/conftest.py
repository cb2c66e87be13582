"""Fixtures shared by the family test files."""

from __future__ import annotations

from types import ModuleType

import pytest

import reference_impl.loops
import reference_impl.vectorized


@pytest.fixture(params=["loops", "vectorized"])
def namespace(request: pytest.FixtureRequest) -> ModuleType:
    """Each public namespace in turn: bad input must be rejected by both."""
    return reference_impl.loops if request.param == "loops" else reference_impl.vectorized
