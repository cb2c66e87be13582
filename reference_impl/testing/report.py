"""Statistics behind the derivation report printed at the end of a run.

Each check records, per formula: which property ran and on how many examples,
the worst error seen as a fraction of its tolerance (``assert_close``'s ratio;
1 is the bound), the corner cases its examples reached (``Case.corners``, plus
"float32" and "non-contiguous" added by the generic properties), and the
corners the spec claims its strategy reaches. ``conftest.py`` gathers these
from every xdist worker (``dump`` on the worker, ``merge`` on the controller)
and prints :func:`format_report`'s table; a claimed corner that no example
reached gets a warning line, because it means the strategy does not test what
it says it tests.

Comparisons made while searching for an erratum's counterexample measure a
wrong formula, not a reference: they run inside :func:`paused` and leave the
statistics alone.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

#: corners the generic properties add to every formula's examples
GENERIC_CORNERS = ("float32", "non-contiguous")


@dataclass
class FormulaStats:
    examples: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    worst_ratio: float = 0.0
    compared: bool = False
    corners: set[str] = field(default_factory=set)
    claimed: set[str] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        return {
            "examples": dict(self.examples),
            "worst_ratio": self.worst_ratio,
            "compared": self.compared,
            "corners": sorted(self.corners),
            "claimed": sorted(self.claimed),
        }

    def merge_json(self, data: Mapping[str, Any]) -> None:
        for prop, count in data["examples"].items():
            self.examples[prop] += count
        self.worst_ratio = max(self.worst_ratio, data["worst_ratio"])
        self.compared = self.compared or data.get("compared", True)
        self.corners.update(data["corners"])
        self.claimed.update(data["claimed"])

    @property
    def total(self) -> int:
        return sum(self.examples.values())

    @property
    def unreached(self) -> list[str]:
        return sorted(self.claimed - self.corners)


Stats = dict[str, FormulaStats]

STATS: Stats = defaultdict(FormulaStats)

_paused = 0


@contextmanager
def paused() -> Iterator[None]:
    """Record nothing inside the block (the comparisons of a wrong formula)."""
    global _paused
    _paused += 1
    try:
        yield
    finally:
        _paused -= 1


def record_example(
    formula: str, prop: str, corners: frozenset[str], claimed: frozenset[str]
) -> None:
    """One example of property ``prop`` ran on ``formula`` and reached ``corners``."""
    if _paused:
        return
    stats = STATS[formula]
    stats.examples[prop] += 1
    stats.corners.update(corners)
    stats.claimed.update(claimed)


def record_error(formula: str, ratio: float) -> None:
    """A comparison of ``formula`` used ``ratio`` of its tolerance."""
    if _paused:
        return
    stats = STATS[formula]
    stats.compared = True
    if ratio == ratio:  # not NaN
        stats.worst_ratio = max(stats.worst_ratio, ratio)


def dump(stats: Stats | None = None) -> dict[str, Any]:
    """The statistics as JSON-able data, to send from an xdist worker."""
    stats = STATS if stats is None else stats
    return {name: item.to_json() for name, item in stats.items()}


def merge(data: Mapping[str, Any], into: Stats | None = None) -> None:
    """Add one worker's :func:`dump` to ``into`` (default: this process's statistics)."""
    into = STATS if into is None else into
    for name, item in data.items():
        if name not in into:
            into[name] = FormulaStats()
        into[name].merge_json(item)


def warnings(stats: Stats | None = None) -> list[str]:
    """One line per claimed corner that no example reached."""
    stats = STATS if stats is None else stats
    return [
        f"WARNING {name}: claimed corner never reached: {corner}"
        for name in sorted(stats)
        for corner in stats[name].unreached
    ]


def _legend(stats: Stats) -> dict[str, str]:
    """A one-letter key per property name (A, B, ...), in alphabetical order of the names."""
    names = sorted({prop for item in stats.values() for prop in item.examples})
    keys = [chr(ord("A") + i) if i < 26 else f"P{i}" for i in range(len(names))]
    return dict(zip(names, keys, strict=True))


def format_report(stats: Stats | None = None, width: int = 100) -> list[str]:
    """The report as fixed-width lines: legend, one row per formula, then the warnings.

    ::

        properties: A = dtype errors, B = layout invariance, C = loop = vectorized = torch
        formula   examples  err/tol  examples per property / corners reached
        linear          82   0.0123  A 20 · B 20 · C 22
                                     corners: 1-D input, batch of one, float32, ...
    """
    stats = STATS if stats is None else stats
    if not stats:
        return []
    legend = _legend(stats)
    name_width = max(len("formula"), *(len(name) for name in stats))
    indent = " " * (name_width + 2 + 8 + 2 + 7 + 2)
    text_width = max(width - len(indent), 30)
    lines = textwrap.wrap(
        "properties: " + ", ".join(f"{key} = {prop}" for prop, key in legend.items()),
        width,
        subsequent_indent="  ",
        break_on_hyphens=False,
    )
    lines += [
        f"{'formula':<{name_width}}  {'examples':>8}  {'err/tol':>7}  "
        "examples per property / corners reached",
        f"{'-' * name_width}  {'-' * 8}  {'-' * 7}  {'-' * min(text_width, 39)}",
    ]
    for name in sorted(stats):
        item = stats[name]
        ratio = f"{item.worst_ratio:.3g}" if item.compared else "-"
        counts = " · ".join(
            f"{legend[prop]} {count}" for prop, count in sorted(item.examples.items())
        )
        lines.append(f"{name:<{name_width}}  {item.total:>8}  {ratio:>7}  {counts or '-'}")
        reached = ", ".join(sorted(item.corners)) or "none"
        corner_lines = textwrap.wrap(
            f"corners: {reached}", text_width, subsequent_indent="  ", break_on_hyphens=False
        )
        lines.extend(indent + line for line in corner_lines)
    lines.extend(warnings(stats))
    return lines


def write_summary(terminal: Any) -> None:
    """Print the report to pytest's terminal, warnings in yellow."""
    lines = format_report(width=max(getattr(terminal, "fullwidth", 100), 80))
    if not lines:
        return
    terminal.write_sep("=", "derivation report (err/tol: worst error as a fraction of its bound)")
    for line in lines:
        if line.startswith("WARNING"):
            terminal.write_line(line, yellow=True)
        else:
            terminal.write_line(line)
