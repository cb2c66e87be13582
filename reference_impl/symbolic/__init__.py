"""Print the derivation: element-by-element equations generated from the loop code.

``equations("conv2d", x=(3, 3), weight=(2, 2))`` runs
:func:`reference_impl.loops.conv2d` and ``conv2d_backward`` on NumPy object
arrays of SymPy symbols and returns every output and gradient element as the
sum the loop evaluated (``dX23 = dZ12·K22 + dZ22·K12``); :func:`mlp` chains
the loop formulas of a two-layer perceptron into its δ recursion. The command
``python -m reference_impl.symbolic conv2d --x 3x3 --weight 2x2`` prints them
as text, ``--latex`` or ``--markdown``.

Needs SymPy: ``pip install "reference-impl[symbolic]"``.
"""

try:
    import sympy  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        'reference_impl.symbolic needs SymPy: pip install "reference-impl[symbolic]"'
    ) from error

from reference_impl.symbolic._core import MAX_ELEMENTS, Equations, Valued
from reference_impl.symbolic._formulas import PENDING, equations, supported
from reference_impl.symbolic._mlp import mlp

__all__ = ["MAX_ELEMENTS", "PENDING", "Equations", "Valued", "equations", "mlp", "supported"]
