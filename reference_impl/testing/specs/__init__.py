"""All formula specs: every module of this package that defines ``SPECS`` is a family.

Adding a formula is adding a spec to its family's module here; a new family
is a new module, found without being listed anywhere.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil

from reference_impl.testing.registry import FormulaSpec

FAMILIES = [
    importlib.import_module(f"{__name__}.{info.name}")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name)
]

SPECS: list[FormulaSpec] = [spec for family in FAMILIES for spec in getattr(family, "SPECS", [])]

#: public names that are not forward/backward pairs → the test that checks each against torch
OTHER_PUBLIC_NAMES = {
    "sgd_step": "oracle_tests.test_optim:test_sgd_step_trajectory_matches_torch",
    "batch_norm_running_stats": (
        "oracle_tests.test_normalization:test_batch_norm_running_stats_follow_torch"
    ),
    "adam_step": "oracle_tests.test_optim:test_adam_step_trajectory_matches_torch",
    "adamw_step": "oracle_tests.test_optim:test_adamw_step_trajectory_matches_torch",
    "rmsprop_step": "oracle_tests.test_optim:test_rmsprop_step_trajectory_matches_torch",
}


def spec_named(name: str) -> FormulaSpec:
    """The spec of the public formula ``name``; a ``KeyError`` suggests close names."""
    for spec in SPECS:
        if spec.name == name:
            return spec
    close = difflib.get_close_matches(name, [spec.name for spec in SPECS], n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise KeyError(f"no formula named {name!r}{hint}")
