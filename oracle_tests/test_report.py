"""The derivation report: aggregation across xdist workers, the table, the warnings."""

from __future__ import annotations

import json
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest

import conftest
from reference_impl.testing import report


@pytest.fixture
def fresh_stats(monkeypatch: pytest.MonkeyPatch) -> report.Stats:
    """Module-level statistics of this test only (the run's own report is left alone)."""
    stats: report.Stats = defaultdict(report.FormulaStats)
    monkeypatch.setattr(report, "STATS", stats)
    return stats


def _worker(records: list[tuple[str, str, set[str], set[str]]], ratio: float) -> dict[str, Any]:
    """What one worker dumps after running ``records`` (and one comparison of ``ratio``)."""
    stats: report.Stats = defaultdict(report.FormulaStats)
    for formula, prop, corners, claimed in records:
        stats[formula].examples[prop] += 1
        stats[formula].corners.update(corners)
        stats[formula].claimed.update(claimed)
        stats[formula].compared = True
        stats[formula].worst_ratio = max(stats[formula].worst_ratio, ratio)
    sent: dict[str, Any] = json.loads(json.dumps(report.dump(stats)))  # as xdist sends it
    return sent


CLAIMED = {"stride > 1", "float32", "ties"}


def test_merge_of_two_workers_adds_counts_and_keeps_the_worst_error() -> None:
    first = _worker(
        [
            ("conv2d", "loop = vectorized = torch", {"stride > 1"}, CLAIMED),
            ("conv2d", "layout invariance", {"non-contiguous"}, CLAIMED),
        ],
        ratio=0.25,
    )
    second = _worker(
        [
            ("conv2d", "loop = vectorized = torch", {"float32", "ties"}, CLAIMED),
            ("relu", "dtype errors", set(), set()),
        ],
        ratio=0.5,
    )
    merged: report.Stats = {}
    report.merge(first, into=merged)
    report.merge(second, into=merged)
    conv = merged["conv2d"]
    assert dict(conv.examples) == {"loop = vectorized = torch": 2, "layout invariance": 1}
    assert conv.total == 3
    assert conv.worst_ratio == 0.5
    assert conv.corners == {"stride > 1", "non-contiguous", "float32", "ties"}
    assert conv.unreached == []
    assert report.warnings(merged) == []
    assert set(merged) == {"conv2d", "relu"}


def test_a_claimed_corner_no_worker_reached_is_warned_about() -> None:
    merged: report.Stats = {}
    report.merge(_worker([("conv2d", "p", {"stride > 1"}, CLAIMED)], 0.1), into=merged)
    report.merge(_worker([("conv2d", "p", {"float32"}, CLAIMED)], 0.1), into=merged)
    assert report.warnings(merged) == ["WARNING conv2d: claimed corner never reached: ties"]
    lines = report.format_report(merged)
    assert lines[-1] == "WARNING conv2d: claimed corner never reached: ties"


def test_table_is_fixed_width_and_shows_every_column() -> None:
    merged: report.Stats = {}
    corners = {f"corner number {k}" for k in range(12)}
    report.merge(
        _worker([("max_pool2d", "loop = vectorized = torch", corners, corners)], 0.0123), merged
    )
    report.merge(_worker([("sgd_step", "trajectory = torch", set(), set())], 0.0), merged)
    merged["sgd_step"].compared = False
    lines = report.format_report(merged, width=80)
    assert lines[0] == "properties: A = loop = vectorized = torch, B = trajectory = torch"
    assert lines[1].split()[:3] == ["formula", "examples", "err/tol"]
    assert all(len(line) <= 80 for line in lines)
    row = next(line for line in lines if line.startswith("max_pool2d"))
    assert row.split()[1:] == ["1", "0.0123", "A", "1"]
    column = lines[1].index("examples per property")
    corner_lines = [line for line in lines if "corner number" in line]
    assert len(corner_lines) > 1  # wrapped, in the properties column
    assert all(line[:column].strip() == "" for line in corner_lines)
    assert next(line for line in lines if line.startswith("sgd_step")).split()[1:] == [
        "1",
        "-",
        "B",
        "1",
    ]


def test_paused_comparisons_are_not_recorded(fresh_stats: report.Stats) -> None:
    report.record_error("linear", 0.5)
    with report.paused():
        report.record_error("linear", 1e14)
        report.record_example("linear", "p", frozenset({"x"}), frozenset({"x"}))
    assert fresh_stats["linear"].worst_ratio == 0.5
    assert fresh_stats["linear"].total == 0


def test_conftest_hooks_carry_a_worker_dump_to_the_controller(
    fresh_stats: report.Stats,
) -> None:
    report.record_example("softmax", "p", frozenset({"float32"}), frozenset({"float32", "ties"}))
    report.record_error("softmax", 0.25)
    worker_config = SimpleNamespace(workeroutput={})
    conftest.pytest_sessionfinish(SimpleNamespace(config=worker_config))  # type: ignore[arg-type]
    fresh_stats.clear()
    node = SimpleNamespace(workeroutput=worker_config.workeroutput)
    conftest.pytest_testnodedown(node, None)
    conftest.pytest_testnodedown(node, None)  # a second worker with the same statistics
    assert fresh_stats["softmax"].total == 2
    assert fresh_stats["softmax"].worst_ratio == 0.25
    assert report.warnings() == ["WARNING softmax: claimed corner never reached: ties"]
