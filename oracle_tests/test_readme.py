"""The README's errata table lists exactly the errata of the catalog, so it cannot go stale."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from reference_impl.testing.errata import ERRATA

README = Path(__file__).resolve().parent.parent / "README.md"


def _errata_table() -> dict[str, str]:
    """Erratum name → formula, from the table of the README's "Errata catalog" section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Errata catalog\n", 1)[1].split("\n## ", 1)[0]
    section = section.split("\n### ", 1)[0]  # sub-tables (optimizer errata) are checked apart
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


def _python_blocks(section_title: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split(f"\n## {section_title}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_check_your_own_derivation_examples_run_outside_the_repository(tmp_path: Path) -> None:
    """The README's checker examples run as written, from a directory outside the clone."""
    blocks = _python_blocks("Check your own derivation")
    assert len(blocks) == 2, "the section shows a Python call and a test file"
    call, test_file = blocks
    ran = subprocess.run(
        [sys.executable, "-c", call], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stderr
    assert "behaves like erratum-1-sigmoid-derivative-is-sigma" in ran.stdout
    (tmp_path / "test_my_derivation.py").write_text(test_file, encoding="utf-8")
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_derivation.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
