"""Argument checks shared by every formula family.

Every public function validates its arguments before touching them, so that a
wrong shape, rank or dtype surfaces as a ``ValueError`` or ``TypeError`` whose
message names the offending argument, instead of an ``IndexError`` from deep
inside a loop or a silently broadcast wrong answer.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.floating[Any]]

IndexArray = NDArray[np.integer[Any]]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_SYMBOLIC: ContextVar[bool] = ContextVar("reference_impl_symbolic_elements", default=False)


@contextmanager
def symbolic_elements() -> Iterator[None]:
    """While active, :func:`float_array` also admits object arrays of SymPy expressions.

    This is how :mod:`reference_impl.symbolic` runs the loop implementations on
    symbols: every other check (ranks, shapes, hyper-parameters) runs as usual,
    and the loops' scalar arithmetic (:mod:`reference_impl._scalars`) keeps
    SymPy elements symbolic. Outside the block, object arrays are rejected.
    """
    token = _SYMBOLIC.set(True)
    try:
        yield
    finally:
        _SYMBOLIC.reset(token)


def holds_symbols(array: NDArray[Any]) -> bool:
    """True for an object array admitted by :func:`symbolic_elements` (no values to check)."""
    return array.dtype == object


def float_array(name: str, value: object) -> FloatArray:
    """Return ``value`` if it is a float32 or float64 ``numpy.ndarray``.

    Raises ``TypeError`` naming ``name`` otherwise. Nothing is copied. Inside
    :func:`symbolic_elements`, an object array whose elements are SymPy
    expressions or real numbers is accepted too.
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(value).__name__}")
    if value.dtype not in FLOAT_DTYPES:
        if value.dtype == object and _SYMBOLIC.get():
            return _symbolic_array(name, value)
        raise TypeError(f"{name} must have dtype float32 or float64, got {value.dtype}")
    return value


def index_array(name: str, value: object) -> IndexArray:
    """Return ``value`` if it is a ``numpy.ndarray`` of integers (not booleans).

    Raises ``TypeError`` naming ``name`` otherwise (float indices included).
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy.ndarray of integer indices, got {type(value).__name__}"
        )
    if value.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer indices, got dtype {value.dtype}")
    return value


def _symbolic_array(name: str, value: NDArray[Any]) -> NDArray[Any]:
    sympy = sys.modules.get("sympy")
    admitted: tuple[type, ...] = (int, float, np.integer, np.floating)
    if sympy is not None:
        admitted = (*admitted, sympy.Basic)
    for element in value.flat:
        if isinstance(element, bool) or not isinstance(element, admitted):
            raise TypeError(
                f"{name} must hold SymPy expressions or real numbers, "
                f"got an element of type {type(element).__name__}"
            )
    return value


def same_dtype(**arrays: FloatArray | None) -> np.dtype[Any]:
    """Check that every given array (``None`` entries are skipped) shares one dtype."""
    present = {name: a for name, a in arrays.items() if a is not None}
    dtypes = {a.dtype for a in present.values()}
    if len(dtypes) > 1:
        listing = ", ".join(f"{name}: {a.dtype}" for name, a in present.items())
        raise TypeError(f"mixed dtypes are not allowed ({listing})")
    return next(iter(dtypes))


def check_ndim(name: str, array: FloatArray, ndims: int | Sequence[int]) -> None:
    """Raise ``ValueError`` unless ``array.ndim`` is one of ``ndims``."""
    allowed = (ndims,) if isinstance(ndims, int) else tuple(ndims)
    if array.ndim not in allowed:
        want = " or ".join(str(n) for n in allowed)
        raise ValueError(f"{name} must have {want} dimensions, got shape {array.shape}")


def check_shape(name: str, array: FloatArray, shape: tuple[int, ...]) -> None:
    """Raise ``ValueError`` unless ``array.shape == shape``."""
    if array.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {array.shape}")


def check_reduction(reduction: object) -> str:
    """Validate a loss ``reduction`` argument."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return str(reduction)


def check_grad_output(
    grad_output: object, shape: tuple[int, ...], like: FloatArray, like_name: str = "x"
) -> FloatArray:
    """Validate an upstream gradient: a float array of ``shape`` and ``like``'s dtype.

    ``like`` is the (already validated) input named ``like_name``; errors name
    ``grad_output``.
    """
    grad_output = float_array("grad_output", grad_output)
    same_dtype(grad_output=grad_output, **{like_name: like})
    check_shape("grad_output", grad_output, shape)
    return grad_output


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` as a ``bool`` if it is one (Python or NumPy); ``TypeError`` otherwise."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def check_axis(name: str, axis: object, ndim: int) -> int:
    """Normalise an axis index for an array of rank ``ndim``."""
    index = int_scalar(name, axis)
    if not -ndim <= index < ndim:
        raise ValueError(f"{name}={axis} is out of range for an array with {ndim} dimensions")
    return index % ndim


def is_int(value: object) -> bool:
    """True for Python and NumPy integers, but not for ``bool``."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def int_scalar(name: str, value: object, minimum: int | None = None) -> int:
    """Return an int (not a ``bool``) that is at least ``minimum`` (when given)."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r}")
    result: int = int(value)  # type: ignore[call-overload]
    if minimum is not None and result < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return result


def int_pair(name: str, value: object, minimum: int) -> tuple[int, int]:
    """Turn an int or a pair of ints into ``(h, w)``, each at least ``minimum``."""
    if is_int(value):
        pair = (int(value), int(value))  # type: ignore[call-overload]
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(is_int(v) for v in value):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return pair


def scalar(name: str, value: object, *, minimum: float | None = None) -> float:
    """Validate a real scalar hyper-parameter (a learning rate, a momentum...)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    result = float(value)
    if not np.isfinite(result):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if minimum is not None and result < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return result
