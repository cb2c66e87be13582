"""Vectorized references: the same formulas as :mod:`reference_impl.loops`, on whole arrays.

No Python loop over array elements; where a loop remains it runs over kernel
taps or groups only. Names, signatures, dtypes and layouts are those of
:mod:`reference_impl.loops`, so one namespace can replace the other.

Every ``name_vectorized`` function of a formula family module is exposed here as ``name``.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reference_impl._families import namespace

globals().update(namespace("_vectorized"))
__all__ = list(namespace("_vectorized"))

if TYPE_CHECKING:

    def __getattr__(name: str) -> Callable[..., Any]: ...
