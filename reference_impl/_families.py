"""The formula families, and the namespaces :mod:`reference_impl.loops` and ``.vectorized``.

Each family module defines, for every public formula ``name``, the functions
``name_loop`` and ``name_vectorized`` and, for its backward pass,
``name_backward_loop`` and ``name_backward_vectorized``. The two namespaces
collect them by that convention, so a new function needs no listing anywhere.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from reference_impl import (
    activations,
    attention,
    conv,
    conv_transpose,
    dense,
    losses,
    normalization,
    optim,
    pooling,
    recurrent,
)

FAMILIES = (
    activations,
    attention,
    conv,
    conv_transpose,
    dense,
    losses,
    normalization,
    optim,
    pooling,
    recurrent,
)


def namespace(suffix: str) -> dict[str, Callable[..., Any]]:
    """Every public function ``name + suffix`` defined in a family module, keyed by ``name``."""
    found: dict[str, Callable[..., Any]] = {}
    for module in FAMILIES:
        for attr, value in vars(module).items():
            if attr.startswith("_") or not attr.endswith(suffix) or not inspect.isfunction(value):
                continue
            if value.__module__ == module.__name__:
                name = attr.removesuffix(suffix)
                if name in found:
                    raise ImportError(f"{name}{suffix} is defined by two formula families")
                found[name] = value
    return dict(sorted(found.items()))
