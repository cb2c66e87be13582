"""The scalar arithmetic of the loop implementations: Python floats, or SymPy expressions.

A loop reads one array element at a time, turns it into a Python float (so that
float32 inputs accumulate in double precision) and combines it with ``exp``,
``log``, comparisons and the like, exactly as the derivation writes it. The
functions below are those few operations. On numbers they are the plain
Python ones; on a SymPy expression (an element of an object array admitted by
:func:`reference_impl._validation.symbolic_elements`) they stay symbolic, so
:mod:`reference_impl.symbolic` runs the very same loop code on symbols and
prints the equations it evaluates.

SymPy is never imported here: an element is symbolic only if SymPy made it,
in which case SymPy is already loaded.

Two numerical devices have no symbolic counterpart and are documented as such:

* guards against overflow or division by zero (the shift of softmax by its
  largest input, torch's clamps in binary cross-entropy) are taken as inactive
  on symbols, i.e. the symbols stand for values where the guard does not bite;
* a branch between two forms of one function (the overflow-free sigmoid)
  takes the first form on a symbol whose sign SymPy does not know.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any, overload

import numpy as np


def is_symbolic(value: object) -> bool:
    """True when ``value`` is a SymPy object."""
    sympy = sys.modules.get("sympy")
    return sympy is not None and isinstance(value, sympy.Basic)


def _sympy() -> Any:
    return sys.modules["sympy"]


def real(value: Any) -> Any:
    """An array element as a Python float; a SymPy expression passes through unchanged."""
    try:
        return float(value)
    except TypeError:
        if is_symbolic(value):
            return value
        raise


@overload
def exp(value: float) -> float: ...
@overload
def exp(value: Any) -> Any: ...
def exp(value: Any) -> Any:
    """``e^value``: :func:`math.exp`, or ``sympy.exp`` on a symbol."""
    try:
        return math.exp(value)
    except TypeError:
        if is_symbolic(value):
            return _sympy().exp(value)
        raise


@overload
def log(value: float) -> float: ...
@overload
def log(value: Any) -> Any: ...
def log(value: Any) -> Any:
    """Natural logarithm, ``−inf`` at exactly 0 (as ``numpy.log``); ``sympy.log`` on a symbol."""
    if is_symbolic(value):
        return _sympy().log(value)
    return -math.inf if value == 0 else math.log(value)


@overload
def tanh(value: float) -> float: ...
@overload
def tanh(value: Any) -> Any: ...
def tanh(value: Any) -> Any:
    """:func:`math.tanh`, or ``sympy.tanh`` on a symbol."""
    try:
        return math.tanh(value)
    except TypeError:
        if is_symbolic(value):
            return _sympy().tanh(value)
        raise


@overload
def sqrt(value: float) -> float: ...
@overload
def sqrt(value: Any) -> Any: ...
def sqrt(value: Any) -> Any:
    """:func:`math.sqrt`, or ``sympy.sqrt`` on a symbol."""
    try:
        return math.sqrt(value)
    except TypeError:
        if is_symbolic(value):
            return _sympy().sqrt(value)
        raise


def where(condition: Any, if_true: Any, if_false: Any) -> Any:
    """``if_true if condition else if_false``; an undecided symbolic condition gives a Piecewise.

    Both branches are evaluated, as in ``numpy.where``: use it for cheap values only.
    """
    if not isinstance(condition, (bool, np.bool_)) and is_symbolic(condition):
        sympy = _sympy()
        if condition not in (sympy.true, sympy.false):
            return sympy.Piecewise((if_true, condition), (if_false, True))
    return if_true if condition else if_false


@overload
def at_least(value: float, floor: float) -> float: ...
@overload
def at_least(value: Any, floor: float) -> Any: ...
def at_least(value: Any, floor: float) -> Any:
    """``max(value, floor)``, a numerical guard; on a symbol the guard is taken as inactive."""
    if is_symbolic(value):
        return value
    return max(value, floor)


def exp_shift(values: Sequence[Any]) -> Any:
    """The shift ``m`` subtracted before exponentiating: ``max(values)``, so no exponent is > 0.

    It cancels in every ratio ``e^{x_i − m} / Σ_j e^{x_j − m}``; on symbols it is 0,
    and the equations show the unshifted ratio.
    """
    if any(is_symbolic(v) for v in values):
        return 0
    return max(values)


def nonnegative(value: Any) -> bool:
    """``value >= 0``; on a symbol, True unless SymPy knows it is negative.

    For branches between two forms of one function that differ only in how
    they avoid overflow: a symbol has no overflow, and either form is exact.
    """
    if is_symbolic(value):
        return value.is_negative is not True
    return bool(value >= 0)


__all__ = [
    "at_least",
    "exp",
    "exp_shift",
    "is_symbolic",
    "log",
    "nonnegative",
    "real",
    "sqrt",
    "tanh",
    "where",
]
