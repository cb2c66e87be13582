"""The oracle as a tool: check a formula, yours or ours, against ``torch.autograd``.

This subpackage holds the machinery the project's own suite runs on: the
registry of formula specs (``specs/``), the Hypothesis strategies that draw
valid arguments (``strategies.py``), the torch oracles (``oracles.py``), the
derived tolerances (``tolerances.py``), the comparison (``comparison.py``), the
catalog of known-wrong formulas (``errata/``) and the derivation report.

It needs torch and Hypothesis, which ``import reference_impl`` never loads:
install them with ``pip install "reference-impl[test]"``.
"""

from __future__ import annotations

import importlib.util

_MISSING = [name for name in ("torch", "hypothesis") if importlib.util.find_spec(name) is None]
if _MISSING:
    raise ImportError(
        f"reference_impl.testing needs {' and '.join(_MISSING)}, which are not installed; "
        'install the test extra: pip install "reference-impl[test]" '
        '(or pip install -e ".[test]" in a clone)'
    )

from reference_impl.testing.checker import (  # noqa: E402
    CandidateShapeError,
    CheckReport,
    FormulaMismatch,
    available_corners,
    check_formula,
)

__all__ = [
    "CandidateShapeError",
    "CheckReport",
    "FormulaMismatch",
    "available_corners",
    "check_formula",
]
