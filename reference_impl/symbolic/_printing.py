"""Printing equations: plain text, LaTeX ``align`` blocks, Markdown tables.

Products are written upstream gradient first, then in each formula's order of
roles (``∂L/∂Z11·K12``, ``X11·K11``), and sums by their factors' indices, which
is the order in which derivations list them. A Piecewise that is an
expression or 0 is written with an indicator, ``e·1[z > 0]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sympy
from sympy.core.sorting import default_sort_key
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from reference_impl.symbolic._core import Equations

Rank = Mapping[sympy.Symbol, tuple[int, ...]]


# ------------------------------------------------------------------ display order


def _factor_key(factor: sympy.Basic, rank: Rank) -> tuple[Any, ...]:
    if isinstance(factor, sympy.Symbol):
        return (0, rank.get(factor, (len(rank),)), factor.name)
    if isinstance(factor, sympy.Piecewise):
        return (2, default_sort_key(factor))
    return (1, default_sort_key(factor))


def _term_key(term: sympy.Basic, rank: Rank) -> tuple[Any, ...]:
    if term.is_Number:
        return ((-1,),)
    _, rest = term.as_coeff_Mul()
    return tuple(sorted(_factor_key(f, rank) for f in sympy.Mul.make_args(rest)))


def arranged(expr: sympy.Basic, rank: Rank) -> sympy.Basic:
    """``expr`` unevaluated, its sums and products in display order."""
    if not expr.args:
        return expr
    if isinstance(expr, sympy.Add):
        coefficients = {term.as_coeff_Mul()[0] for term in expr.args}
        common = coefficients.pop() if len(coefficients) == 1 else sympy.S.One
        if common.is_Rational and common.p == 1 and common.q > 1:
            # a mean: (X11 + X12 + X21 + X22)/4 rather than X11/4 + X12/4 + ...
            inner = sympy.Add(*(term / common for term in expr.args))
            return sympy.Mul(common, arranged(inner, rank), evaluate=False)
        terms = sorted((arranged(t, rank) for t in expr.args), key=lambda t: _term_key(t, rank))
        return sympy.Add(*terms, evaluate=False)
    if isinstance(expr, sympy.Mul):
        coeff, rest = expr.as_coeff_Mul()
        factors = sorted(
            (arranged(f, rank) for f in sympy.Mul.make_args(rest)),
            key=lambda f: _factor_key(f, rank),
        )
        if coeff == 1:
            return sympy.Mul(*factors, evaluate=False) if len(factors) > 1 else factors[0]
        return sympy.Mul(coeff, *factors, evaluate=False)
    args = [arranged(a, rank) for a in expr.args]
    with sympy.evaluate(False):
        return expr.func(*args)


def _indicator(expr: sympy.Piecewise) -> tuple[sympy.Basic, sympy.Basic] | None:
    """``(e, c)`` when ``expr`` is ``e if c else 0``."""
    if len(expr.args) == 2:
        (value, condition), (zero, otherwise) = expr.args
        if zero == 0 and otherwise == sympy.true:
            return value, condition
    return None


# ----------------------------------------------------------------------- printers


class _Text(StrPrinter):
    def __init__(self) -> None:
        super().__init__({"order": "none"})

    def _print_Piecewise(self, expr: sympy.Piecewise) -> str:
        parts = _indicator(expr)
        if parts is None:
            return str(super()._print_Piecewise(expr))
        value, condition = parts
        shown = self._print(value)
        if isinstance(value, sympy.Add):
            shown = f"({shown})"
        return f"{shown}·1[{self._print(condition)}]"


class _Tex(LatexPrinter):
    def __init__(self, names: Mapping[sympy.Symbol, str]) -> None:
        super().__init__({"order": "none", "mul_symbol": "dot", "symbol_names": dict(names)})

    def _print_Piecewise(self, expr: sympy.Piecewise) -> str:
        parts = _indicator(expr)
        if parts is None:
            return str(super()._print_Piecewise(expr))
        value, condition = parts
        shown = self._print(value)
        if isinstance(value, sympy.Add):
            shown = rf"\left({shown}\right)"
        return rf"{shown} \cdot \mathbf{{1}}\left[{self._print(condition)}\right]"


def _plain(expr: sympy.Basic, rank: Rank) -> str:
    text = str(_Text().doprint(arranged(expr, rank)))
    return text.replace("**", "^").replace("*", "·").replace("-", "−")


def _tex(expr: sympy.Basic, equations: Equations) -> str:
    return str(_Tex(equations.names.latex).doprint(arranged(expr, equations.names.rank)))


def _rows(equations: Equations) -> list[tuple[str, list[tuple[sympy.Symbol, list[sympy.Basic]]]]]:
    table = equations.equations()
    return [
        (title, [(lhs, [*equations.steps.get(lhs, ()), table[lhs]]) for lhs in keys])
        for title, keys in equations.sections
    ]


def text(equations: Equations) -> str:
    """Title, legend, then each section's equations, ``lhs = rhs`` one per line."""
    rank = equations.names.rank
    lines = [equations.title, *(f"  {line}" for line in equations.legend)]
    for title, rows in _rows(equations):
        lines += ["", title]
        body = [
            " = ".join([_plain(lhs, rank), *(_plain(form, rank) for form in forms)])
            for lhs, forms in rows
        ]
        notes = [equations.notes.get(lhs, "") for lhs, _ in rows]
        width = max(len(b) for b in body) if any(notes) else 0
        for line, note in zip(body, notes, strict=True):
            lines.append(f"  {line.ljust(width)}    [{note}]" if note else f"  {line}")
    return "\n".join(lines) + "\n"


def latex(equations: Equations) -> str:
    """One ``align`` environment per section (amsmath), each preceded by a comment."""
    names = equations.names.latex
    lines = [f"% {equations.title}", *(f"% {line}" for line in equations.legend)]
    for title, rows in _rows(equations):
        lines += [f"% {title}", r"\begin{align}"]
        body = []
        for lhs, forms in rows:
            right = " = ".join(_tex(form, equations) for form in forms)
            body.append(f"{names.get(lhs, sympy.latex(lhs))} &= {right}")
        lines.append(" \\\\\n".join(body))
        lines.append(r"\end{align}")
    return "\n".join(lines) + "\n"


def markdown(equations: Equations) -> str:
    """A heading line, the legend as a list, then one table per section."""
    rank = equations.names.rank
    with_notes = bool(equations.notes)
    lines = [f"**{_escape(equations.title)}**", ""]
    lines += [f"- {_escape(line)}" for line in equations.legend]
    for title, rows in _rows(equations):
        lines += ["", f"*{title}*", ""]
        header = "| left-hand side | right-hand side |" + (" loop formula |" if with_notes else "")
        lines += [header, "|---|---|" + ("---|" if with_notes else "")]
        for lhs, forms in rows:
            right = " = ".join(_plain(form, rank) for form in forms)
            row = f"| `{_plain(lhs, rank)}` | `{right}` |"
            if with_notes:
                note = equations.notes.get(lhs, "")
                row += f" `{note}` |" if note else " |"
            lines.append(row)
    return "\n".join(lines) + "\n"


def _escape(line: str) -> str:
    return line.replace("|", r"\|").replace("_", r"\_").replace("*", r"\*")
