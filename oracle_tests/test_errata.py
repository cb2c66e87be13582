"""Every erratum in the catalog is rejected by the oracle, and the references are not."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, find, settings

from reference_impl.testing import evaluate, report
from reference_impl.testing.errata import ERRATA, Erratum
from reference_impl.testing.specs import spec_named

#: How hard to look. find() stops at the first counterexample, so a reachable
#: mistake costs a handful of examples; the budget only matters when the strategy
#: cannot reach the mistake, which is the failure reported. Shrinking the
#: counterexample to the smallest one (the form recorded in each erratum's
#: docstring) costs far more than finding it, so it runs only on request:
#: ``ERRATA_SHRINK=1 pytest oracle_tests/test_errata.py -s`` prints them shrunk.
SHRINK = bool(os.environ.get("ERRATA_SHRINK"))
SEARCH = settings(
    max_examples=300,
    phases=[Phase.generate, Phase.shrink] if SHRINK else [Phase.generate],
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.errata
@pytest.mark.parametrize("erratum", ERRATA, ids=lambda e: f"{e.formula}-{e.name}")
def test_oracle_rejects_erratum(erratum: Erratum) -> None:
    spec = spec_named(erratum.formula)
    wrong = (
        erratum.forward or spec.forward("vectorized"),
        erratum.backward or spec.backward("vectorized"),
    )
    counterexample = find(
        evaluate.any_case(spec),
        lambda case: evaluate.disagrees_with_torch(spec, case, wrong),
        settings=SEARCH,
    )
    # The counterexample is a valid case on which the real references agree with
    # torch, so the disagreement is the erratum's, not the oracle's. One shrunk
    # example says nothing about the strategy's corners, so it counts in the
    # report only as a rejected erratum.
    with report.paused():
        evaluate.three_way(spec, counterexample)
    report.record_example(
        erratum.formula, "erratum rejected", evaluate.reached_corners(counterexample), frozenset()
    )
    print(f"{erratum.name}: counterexample {counterexample.describe()}")
    for name, value in counterexample.args.items():
        print(f"  {name} = {value.tolist() if hasattr(value, 'tolist') else value!r}")


@pytest.mark.parametrize("erratum", ERRATA, ids=lambda e: f"{e.formula}-{e.name}")
def test_erratum_is_registered_and_documented(erratum: Erratum) -> None:
    spec_named(erratum.formula)
    assert erratum.forward or erratum.backward, f"{erratum.name} replaces nothing"
    assert erratum.source and erratum.mistake, f"{erratum.name} needs a source and a mistake"
    assert [e.name for e in ERRATA].count(erratum.name) == 1, f"{erratum.name} is not unique"
