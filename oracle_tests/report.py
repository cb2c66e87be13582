"""Statistics behind the derivation report printed at the end of a run.

Each check records, per formula, which property ran, the worst error seen as a
fraction of its bound, and the corners its examples reached. ``conftest.py``
gathers these from every xdist worker and prints the table.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FormulaStats:
    examples: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    worst_ratio: float = 0.0
    corners: set[str] = field(default_factory=set)
    claimed: set[str] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        return {
            "examples": dict(self.examples),
            "worst_ratio": self.worst_ratio,
            "corners": sorted(self.corners),
            "claimed": sorted(self.claimed),
        }

    def merge_json(self, data: dict[str, Any]) -> None:
        for prop, count in data["examples"].items():
            self.examples[prop] += count
        self.worst_ratio = max(self.worst_ratio, data["worst_ratio"])
        self.corners.update(data["corners"])
        self.claimed.update(data["claimed"])


STATS: dict[str, FormulaStats] = defaultdict(FormulaStats)


def record_example(
    formula: str, prop: str, corners: frozenset[str], claimed: frozenset[str]
) -> None:
    stats = STATS[formula]
    stats.examples[prop] += 1
    stats.corners.update(corners)
    stats.claimed.update(claimed)


def record_error(formula: str, ratio: float) -> None:
    stats = STATS[formula]
    if ratio == ratio:  # not NaN
        stats.worst_ratio = max(stats.worst_ratio, ratio)


def dump() -> dict[str, Any]:
    return {name: stats.to_json() for name, stats in STATS.items()}


def merge(data: dict[str, Any]) -> None:
    for name, item in data.items():
        STATS[name].merge_json(item)


def write_summary(terminal: Any) -> None:
    """Print one row per formula, then warn about claimed corners never reached."""
    if not STATS:
        return
    terminal.write_sep("=", "derivation report")
    header = f"{'formula':<34} {'examples':>8} {'worst err/bound':>15}  properties"
    terminal.write_line(header)
    warnings = []
    for name in sorted(STATS):
        stats = STATS[name]
        total = sum(stats.examples.values())
        props = ", ".join(f"{p} ×{n}" for p, n in sorted(stats.examples.items()))
        terminal.write_line(f"{name:<34} {total:>8} {stats.worst_ratio:>15.3g}  {props}")
        if stats.corners:
            terminal.write_line(f"{'':<34} corners: {', '.join(sorted(stats.corners))}")
        missed = stats.claimed - stats.corners
        if missed:
            warnings.append(f"{name}: claimed corners never reached: {', '.join(sorted(missed))}")
    for line in warnings:
        terminal.write_line(f"WARNING {line}", yellow=True)
