"""The README's errata table lists exactly the errata of the catalog, so it cannot go stale."""

from __future__ import annotations

import re
from pathlib import Path

from reference_impl.testing.errata import ERRATA

README = Path(__file__).resolve().parent.parent / "README.md"


def _errata_table() -> dict[str, str]:
    """Erratum name → formula, from the table of the README's "Errata catalog" section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Errata catalog\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|", section, flags=re.MULTILINE)
    return dict(rows)


def test_readme_lists_every_erratum() -> None:
    table = _errata_table()
    catalog = {erratum.name: erratum.formula for erratum in ERRATA}
    missing = sorted(set(catalog) - set(table))
    stale = sorted(set(table) - set(catalog))
    assert not missing, f"README.md 'Errata catalog' lacks rows for {missing}"
    assert not stale, f"README.md 'Errata catalog' lists errata that no longer exist: {stale}"
    wrong = {
        name: (table[name], formula) for name, formula in catalog.items() if table[name] != formula
    }
    assert not wrong, f"README.md names the wrong formula (README, catalog): {wrong}"
