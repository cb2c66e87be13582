"""The errata catalog: deliberately wrong formulas that the oracle must reject.

Each :class:`Erratum` replaces the forward and/or backward of one registered
formula by a wrong version, taken from a published derivation or from a
classic slip. The suite asks Hypothesis, drawing from the formula's own
strategy, for a case on which the wrong version disagrees with torch, and
fails if none is found: a strategy that cannot reach the corner where a
formula goes wrong is a hole in the suite. The shrunk counterexample is
recorded in each erratum's docstring.

Add a wrong formula to the module of its family here (``ERRATA`` in a new
module is found without being listed).
"""

from __future__ import annotations

import importlib
import pkgutil

from reference_impl.testing.errata.catalog import Erratum

MODULES = [
    importlib.import_module(f"{__name__}.{info.name}")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name)
    if info.name != "catalog"
]

ERRATA: list[Erratum] = [erratum for module in MODULES for erratum in module.ERRATA]


def errata_of(formula: str) -> list[Erratum]:
    """The errata of one formula."""
    return [erratum for erratum in ERRATA if erratum.formula == formula]


__all__ = ["ERRATA", "Erratum", "errata_of"]
