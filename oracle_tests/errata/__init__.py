"""The errata catalog: deliberately wrong formulas that the oracle must reject.

Each :class:`Erratum` replaces the forward and/or backward of one registered
formula by a wrong version, taken from a published derivation or from a
classic slip. ``test_errata.py`` asks Hypothesis, drawing from the formula's
own strategy, for a case on which the wrong version disagrees with torch, and
fails if none is found: a strategy that cannot reach the corner where a
formula goes wrong is a hole in the suite. The shrunk counterexample is
recorded in each erratum's docstring.

Add a wrong formula to the module of its family; list new modules in ``MODULES``.
"""

from __future__ import annotations

from oracle_tests.errata import activations, conv, dense, losses, pooling
from oracle_tests.errata.catalog import Erratum

MODULES = [dense, activations, losses, conv, pooling]

ERRATA: list[Erratum] = [erratum for module in MODULES for erratum in module.ERRATA]

__all__ = ["ERRATA", "Erratum"]
