"""Running the loop implementations on symbols, and the equations they produce.

How the loops run on symbols
============================
Each array argument becomes a NumPy object array of SymPy symbols (``X11``,
``K11``, ...). The loop function of :mod:`reference_impl.loops` is then called
exactly as the oracle tests call it, with two switches on:

* :func:`reference_impl._validation.symbolic_elements`, so ``float_array``
  admits object arrays (every other check runs as usual);
* ``sympy.evaluate(False)``, so SymPy keeps every ``+``, ``·`` and ``/`` the
  loop performs as it was performed (nothing is simplified or reordered yet).

The loops' scalar operations (``real``, ``exp``, ``where``, ... in
:mod:`reference_impl._scalars`) keep SymPy elements symbolic. What each output
element or gradient element then holds is the expression the loop evaluated,
term by term. Three steps turn it into the printed equation:

1. *naming the forward outputs*: a backward pass that recomputes a forward
   output (σ(x) in the sigmoid's, sᵢ in the softmax's) recomputes the very same
   expression tree; each occurrence is replaced by the output's symbol (``Z1``),
   so ``dX1 = dZ1·Z1·(1 − Z1)`` reads like the derivation;
2. *exact numbers*: the loops' float literals (``0.0``, ``1.0``) become
   rationals (every float is one, exactly);
3. *evaluation*: the tree is rebuilt with SymPy's automatic simplification on,
   which drops the ``0 + …`` and ``0·K`` the loops start from or meet in the
   padding, and collects nothing else: terms that differ stay apart.

Comparisons need numbers. A :class:`Valued` symbol carries one and compares
by it (``X12 > X11`` is ``True`` or ``False``), so max pooling's argmax scan
and ReLU's test pick a branch as the numeric loop would, while the arithmetic
keeps the names. Without values, ReLU's test stays symbolic (a Piecewise,
printed ``1[z > 0]``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from math import prod
from typing import Any

import numpy as np
import sympy
from numpy.typing import NDArray

from reference_impl._validation import symbolic_elements

ObjectArray = NDArray[np.object_]

#: The largest array (input, parameter or output) printed, in elements. A list of
#: equations is for reading: a 16 × 16 input already gives 256 gradient equations.
#: The loops also run some thousand times slower on SymPy expressions than on
#: floats, so a bigger configuration takes minutes to print a list nobody reads.
MAX_ELEMENTS = 256


class Valued(sympy.Symbol):
    """A symbol that also carries a number, and compares by it.

    ``X12 > X11`` is a Python ``bool`` computed from the two numbers (or from
    the number and a plain number), so a loop's comparisons follow the concrete
    input while its arithmetic keeps the names. Comparisons with other
    expressions stay symbolic.
    """

    value: sympy.Rational

    def __new__(cls, name: str, value: object) -> Valued:
        # bypass SymPy's cache of symbols by name: the value is not part of the name
        obj: Valued = sympy.Symbol.__xnew__(cls, name)
        obj.value = exact(value)
        return obj

    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self.name, self.value), {}

    def _compare(self, other: object, op: Callable[[Any, Any], bool]) -> Any:
        if isinstance(other, Valued):
            return op(self.value, other.value)
        if isinstance(other, (int, float, np.integer, np.floating, sympy.Number)):
            return op(self.value, exact(other))
        return None

    def __gt__(self, other: Any) -> Any:
        decided = self._compare(other, operator.gt)
        return super().__gt__(other) if decided is None else decided

    def __ge__(self, other: Any) -> Any:
        decided = self._compare(other, operator.ge)
        return super().__ge__(other) if decided is None else decided

    def __lt__(self, other: Any) -> Any:
        decided = self._compare(other, operator.lt)
        return super().__lt__(other) if decided is None else decided

    def __le__(self, other: Any) -> Any:
        decided = self._compare(other, operator.le)
        return super().__le__(other) if decided is None else decided


def exact(value: object) -> sympy.Rational:
    """A real number as an exact SymPy rational (a float is a binary fraction, exactly)."""
    if isinstance(value, sympy.Rational):
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"expected a real number, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return sympy.Integer(int(value))
    if isinstance(value, (float, np.floating, sympy.Float)):
        number = float(value)
        if not np.isfinite(number):
            raise ValueError(f"expected a finite number, got {value!r}")
        return sympy.Rational(*number.as_integer_ratio())
    raise TypeError(f"expected a real number, got {type(value).__name__}")


# --------------------------------------------------------------------------- names


def index_label(index: tuple[int, ...], shape: tuple[int, ...], sep: str = "_") -> str:
    """1-based indices: ``"23"`` when every index is a single digit, else ``"1_10"``."""
    if prod(shape) == 1:
        return ""
    one_based = [i + 1 for i in index]
    if max(shape) <= 9:
        return "".join(str(i) for i in one_based)
    return sep.join(str(i) for i in one_based)


def latex_label(letter: str, index: tuple[int, ...], shape: tuple[int, ...]) -> str:
    """``X_{23}``, ``X_{1,10}``, or the bare letter for a one-element array."""
    label = index_label(index, shape, sep=",")
    return letter if not label else f"{letter}_{{{label}}}"


def gradient_latex(latex: str) -> str:
    """``∂L/∂v`` in LaTeX for a variable whose LaTeX is ``latex``."""
    return rf"\frac{{\partial L}}{{\partial {latex}}}"


@dataclass
class Names:
    """The symbols of one configuration, their LaTeX and their order in printed products."""

    latex: dict[sympy.Symbol, str] = field(default_factory=dict)
    rank: dict[sympy.Symbol, tuple[int, ...]] = field(default_factory=dict)

    def array(
        self,
        letter: str,
        shape: tuple[int, ...],
        role: int,
        latex: str | None = None,
        gradient: bool = False,
        values: NDArray[Any] | None = None,
    ) -> ObjectArray:
        """An object array of fresh symbols ``letter + 1-based indices`` of ``shape``.

        A trailing ``_`` of ``letter`` separates it from the indices (``W1_11``) and is
        dropped for a one-element array (``b2``).
        ``gradient`` names ``dX11`` (LaTeX ``∂L/∂X_{11}``) from the letter ``X``;
        ``values`` makes :class:`Valued` symbols; ``role`` orders the factors of a
        printed product (lower first), then the indices.
        """
        base = latex if latex is not None else letter
        array = np.empty(shape, dtype=object)
        for index in np.ndindex(*shape):
            label = index_label(index, shape)
            name = ("d" if gradient else "") + (letter + label if label else letter.rstrip("_"))
            symbol: sympy.Symbol = (
                sympy.Symbol(name) if values is None else Valued(name, values[index])
            )
            tex = latex_label(base, index, shape)
            self.latex[symbol] = gradient_latex(tex) if gradient else tex
            self.rank[symbol] = (role, *index)
            array[index] = symbol
        return array


# ------------------------------------------------------------------ running loops


def run(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a loop implementation on object arrays, recording its arithmetic unevaluated."""
    with symbolic_elements(), sympy.evaluate(False):
        return function(*args, **kwargs)


def rebuilt(expr: sympy.Basic) -> sympy.Basic:
    """``expr`` with its floats made exact and every node evaluated again, bottom up."""
    if isinstance(expr, sympy.Float):
        return exact(expr)
    if not expr.args:
        return expr
    return expr.func(*(rebuilt(arg) for arg in expr.args))


def outputs_named(raw: ObjectArray, symbols: ObjectArray) -> dict[sympy.Basic, sympy.Expr]:
    """Each forward output's unevaluated tree (and its negation) mapped to its symbol.

    A backward pass that recomputes an output builds the same tree; a loop that
    subtracts it builds the negation the same way (SymPy folds the sign into a
    product's coefficient), so both are recognised.
    """
    named: dict[sympy.Basic, sympy.Expr] = {}
    with sympy.evaluate(False):
        for index in np.ndindex(*raw.shape):
            tree, symbol = sympy.sympify(raw[index]), symbols[index]
            if tree.args:
                named[tree] = symbol
                named[-tree] = -symbol
    return named


def finished(value: Any, names: Mapping[sympy.Basic, sympy.Expr] | None = None) -> sympy.Expr:
    """One element as an equation's right-hand side: named outputs, exact numbers, evaluated."""
    expr = sympy.sympify(value)
    if names:
        expr = expr.xreplace(dict(names))
    result: sympy.Expr = rebuilt(expr)
    return result


def check_size(name: str, shape: tuple[int, ...]) -> None:
    """Refuse arrays above :data:`MAX_ELEMENTS` elements, naming the argument."""
    size = prod(shape)
    if size > MAX_ELEMENTS:
        raise ValueError(
            f"{name} would have {size} elements ({' x '.join(map(str, shape))}); the symbolic "
            f"equations are printed for at most {MAX_ELEMENTS} elements per array: the list "
            "is for reading, and the loops run about a thousand times slower on SymPy "
            "expressions than on floats"
        )


# ------------------------------------------------------------------ the equations


@dataclass(frozen=True)
class Equations:
    """The forward and gradient equations of one configuration, element by element.

    ``forward`` maps each output symbol (``Z11``) to its expression and
    ``gradients`` each gradient symbol (``dX11``, ``dK11``, ``db``) to its own,
    in the order they are printed; the two mappings are ordered so that an
    equation only uses left-hand sides listed before it. ``sections`` groups
    the left-hand sides under titles, ``legend`` explains the names, ``steps``
    holds the intermediate forms shown before a final right-hand side (the
    chain rule before simplification), ``notes`` a short comment per line
    (the loop formula that produced it), ``symbols`` the symbol array of each
    argument, ``values`` the numbers of :class:`Valued` symbols.
    """

    title: str
    forward: dict[sympy.Symbol, sympy.Expr]
    gradients: dict[sympy.Symbol, sympy.Expr]
    sections: tuple[tuple[str, tuple[sympy.Symbol, ...]], ...]
    names: Names
    legend: tuple[str, ...] = ()
    symbols: dict[str, ObjectArray] = field(default_factory=dict)
    values: dict[sympy.Symbol, sympy.Rational] = field(default_factory=dict)
    steps: dict[sympy.Symbol, tuple[sympy.Expr, ...]] = field(default_factory=dict)
    notes: dict[sympy.Symbol, str] = field(default_factory=dict)

    def __getitem__(self, name: str | sympy.Symbol) -> sympy.Expr:
        """The right-hand side of the equation whose left-hand side is ``name``."""
        for table in (self.forward, self.gradients):
            for lhs, rhs in table.items():
                if lhs == name or lhs.name == name:
                    return rhs
        raise KeyError(name)

    def equations(self) -> dict[sympy.Symbol, sympy.Expr]:
        """Forward and gradient equations together, in order."""
        return {**self.forward, **self.gradients}

    def substitute(
        self, values: Mapping[sympy.Symbol | str, object]
    ) -> dict[sympy.Symbol, sympy.Expr]:
        """Every left-hand side's value, given numbers for the symbols (by symbol or name).

        Equations are evaluated in order, each one's value substituted into the
        later ones, so a gradient written with ``Z1`` or ``δ2`` gets its number.
        Rational inputs give exact rationals wherever the formula is rational.
        """
        by_name = {s.name: s for s in self.names.latex}
        env: dict[sympy.Basic, sympy.Basic] = {}
        for key, value in values.items():
            symbol = by_name[key] if isinstance(key, str) else key
            env[symbol] = exact(value)
        for lhs, rhs in self.equations().items():
            env[lhs] = rhs.xreplace(env)
        return {lhs: env[lhs] for lhs in self.equations()}

    def text(self) -> str:
        """The equations as plain text, one per line."""
        from reference_impl.symbolic._printing import text

        return text(self)

    def latex(self) -> str:
        """The equations as LaTeX ``align`` blocks, one per section."""
        from reference_impl.symbolic._printing import latex

        return latex(self)

    def markdown(self) -> str:
        """The equations as Markdown tables, one per section."""
        from reference_impl.symbolic._printing import markdown

        return markdown(self)

    def __str__(self) -> str:
        return self.text()
