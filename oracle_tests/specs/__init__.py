"""All formula specs. A family module defines ``SPECS``; list it in ``FAMILIES`` below."""

from __future__ import annotations

from oracle_tests.registry import FormulaSpec
from oracle_tests.specs import activations, conv, dense, losses, pooling

FAMILIES = [dense, activations, losses, conv, pooling]

SPECS: list[FormulaSpec] = [spec for family in FAMILIES for spec in family.SPECS]

#: public names that are not forward/backward pairs, with the test module that covers them
OTHER_PUBLIC_NAMES = {"sgd_step": "oracle_tests/test_optim.py"}


def spec_named(name: str) -> FormulaSpec:
    for spec in SPECS:
        if spec.name == name:
            return spec
    raise KeyError(name)
