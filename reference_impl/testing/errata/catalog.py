"""The :class:`Erratum` record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Erratum:
    """A wrong formula for the registered formula ``formula``.

    ``forward`` / ``backward`` replace the vectorized reference's; the one left
    ``None`` stays correct. ``source`` says where the mistake is published (or
    "classic slip"), ``mistake`` what is wrong, in one line; the function's
    docstring holds the shrunk counterexample.
    """

    name: str
    formula: str
    source: str
    mistake: str
    forward: Callable[..., Any] | None = None
    backward: Callable[..., Any] | None = None

    def __str__(self) -> str:
        return self.name
