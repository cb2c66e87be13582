"""Explicit-loop references: every output element computed as the derivation writes it.

Slow by design. Read them beside the derivations, check a hand computation on a
small example, and use them as the second opinion beside
:mod:`reference_impl.vectorized`, which exposes the same names and signatures.

Every ``name_loop`` function of a formula family module is exposed here as ``name``.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reference_impl._families import namespace

globals().update(namespace("_loop"))
__all__ = list(namespace("_loop"))

if TYPE_CHECKING:

    def __getattr__(name: str) -> Callable[..., Any]: ...
