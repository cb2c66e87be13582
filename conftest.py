"""Suite-wide configuration: threads, Hypothesis profiles and the derivation report.

Profiles (choose with ``HYPOTHESIS_PROFILE=<name>``):

* ``dev`` (default): quick, random, for the edit-test loop;
* ``ci`` (picked automatically when ``CI`` is set): derandomized, so a CI run
  is reproducible, with more examples;
* ``thorough``: ten times ``ci``'s examples, for a release or a new formula;
* ``debug``: ``dev`` with verbose output of every example.
"""

from __future__ import annotations

import json
import os

# One thread per xdist worker: two workers on two cores must not oversubscribe,
# and a BLAS that spawns threads makes timings and float32 sums less predictable.
for _variable in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
):
    os.environ.setdefault(_variable, "1")

from typing import Any  # noqa: E402

import pytest  # noqa: E402
from hypothesis import HealthCheck, Verbosity, settings  # noqa: E402

from reference_impl.testing import report  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """Pin torch to one thread and warm it up, in every process that runs tests.

    The xdist controller only hands out tests, so it does not pay for
    importing torch (seconds) before it can start the workers.
    """
    is_worker = hasattr(config, "workerinput")
    distributed = bool(config.getoption("numprocesses", None))
    if distributed and not is_worker:
        return
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    # The first call of a torch op loads kernels and is slow; make it here, once
    # per worker, instead of inside a test. The profiles have no deadline anyway.
    torch.nn.functional.conv2d(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 1, 1)).sum()


_COMMON: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("dev", max_examples=100, **_COMMON)
settings.register_profile(
    "ci", max_examples=200, derandomize=True, database=None, print_blob=True, **_COMMON
)
settings.register_profile("thorough", max_examples=2000, print_blob=True, **_COMMON)
settings.register_profile(
    "debug", max_examples=20, verbosity=Verbosity.verbose, print_blob=True, **_COMMON
)
_default_profile = "ci" if os.environ.get("CI") else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default_profile))


# ---------------------------------------------------------------- derivation report

_REPORT_KEY = "derivation_report"


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the statistics to the controller
        workeroutput[_REPORT_KEY] = json.dumps(report.dump())


def pytest_testnodedown(node: Any, error: Any) -> None:
    data = getattr(node, "workeroutput", {}).get(_REPORT_KEY)
    if data:
        report.merge(json.loads(data))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if getattr(terminalreporter.config, "workeroutput", None) is not None:
        return
    report.write_summary(terminalreporter)
