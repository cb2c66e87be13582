"""Every erratum in the catalog is rejected by the checker, which names it.

Each wrong formula is handed to ``reference_impl.testing.check_formula`` as a
candidate, exactly as a user's function would be: the search draws from the
formula's own strategy, so an erratum that is never caught means the strategy
cannot reach the corner where the formula goes wrong. The diagnosis by
catalog must then name the erratum: the checker's own test. The smallest
counterexample of each is printed (``pytest -k NAME -s``) and recorded in the
wrong function's docstring and in docs/derivations.md.
"""

from __future__ import annotations

import os

import pytest

from reference_impl.testing import FormulaMismatch, check_formula, report
from reference_impl.testing.errata import ERRATA, Erratum
from reference_impl.testing.specs import spec_named

#: How hard to look: the search stops at the first counterexample, so a reachable
#: mistake costs a handful of examples; the budget only matters when the strategy
#: cannot reach the mistake, which is the failure reported.
BUDGET = 300
#: Shrinking the counterexample to the smallest one (the form recorded in each
#: erratum's docstring) costs far more than finding it, so it runs on request:
#: ``ERRATA_SHRINK=1 pytest oracle_tests/test_errata.py -s -k NAME``.
SHRINK = bool(os.environ.get("ERRATA_SHRINK"))


@pytest.mark.errata
@pytest.mark.parametrize("erratum", ERRATA, ids=lambda e: f"{e.formula}-{e.name}")
def test_checker_rejects_erratum_and_names_it(erratum: Erratum) -> None:
    with pytest.raises(FormulaMismatch) as raised:
        check_formula(
            erratum.formula,
            forward=erratum.forward,
            backward=erratum.backward,
            max_examples=BUDGET,
            diagnosis=("catalog",),
            shrink=SHRINK,
        )
    message = str(raised.value)
    assert f"behaves like {erratum.name}" in message, message
    report.record_example(erratum.formula, "erratum rejected", frozenset(), frozenset())
    print(message)


@pytest.mark.parametrize("erratum", ERRATA, ids=lambda e: f"{e.formula}-{e.name}")
def test_erratum_is_registered_and_documented(erratum: Erratum) -> None:
    spec_named(erratum.formula)
    assert erratum.forward or erratum.backward, f"{erratum.name} replaces nothing"
    assert erratum.source and erratum.mistake, f"{erratum.name} needs a source and a mistake"
    assert [e.name for e in ERRATA].count(erratum.name) == 1, f"{erratum.name} is not unique"
