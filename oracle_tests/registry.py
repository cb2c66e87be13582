"""The registry of formula specs: each formula declared once, as data.

A :class:`FormulaSpec` names a public formula (``linear``, ``conv2d``...), the
torch oracle that computes the same forward pass with autograd, a Hypothesis
strategy of valid arguments, and which arguments are differentiated. The loop
and vectorized implementations are looked up by name in
``reference_impl.loops`` and ``reference_impl.vectorized``, so a spec cannot
test anything but the public functions.

Generic properties in ``test_properties.py`` run over every spec; adding a
formula is adding a spec to a module in ``oracle_tests/specs/``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

import reference_impl.loops
import reference_impl.vectorized

Forward = Callable[..., Any]
Backward = Callable[..., Any]

#: the two implementations every spec is run with
IMPLEMENTATIONS = ("loop", "vectorized")


@dataclass(frozen=True)
class Case:
    """One drawn example: keyword arguments shared by forward and backward.

    ``args`` is in signature order and uses the public parameter names, so the
    call is ``forward(**args)`` and ``backward(grad_output, **args)``. The
    upstream gradient is made from ``grad_seed`` once the forward's output
    shape is known (see ``strategies.upstream_gradient``). ``corners`` names
    the corner cases this example reaches, for the derivation report.
    """

    args: Mapping[str, Any]
    grad_seed: int = 0
    corners: frozenset[str] = frozenset()

    @property
    def dtype(self) -> np.dtype[Any]:
        for value in self.args.values():
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                return np.dtype(value.dtype)
        raise ValueError("a case needs at least one float array")

    def arrays(self) -> dict[str, np.ndarray[Any, Any]]:
        return {k: v for k, v in self.args.items() if isinstance(v, np.ndarray)}

    def with_args(self, **changes: Any) -> Case:
        return Case({**self.args, **changes}, self.grad_seed, self.corners)

    def describe(self) -> str:
        parts = []
        for name, value in self.args.items():
            if isinstance(value, np.ndarray):
                parts.append(f"{name}: {value.dtype.name}{list(value.shape)}")
            else:
                parts.append(f"{name}={value!r}")
        return ", ".join(parts)


@dataclass(frozen=True)
class FormulaSpec:
    """A formula under test.

    name
        The public name; ``name`` and ``name + "_backward"`` must exist in
        both ``reference_impl.loops`` and ``reference_impl.vectorized``.
    oracle
        Called with the case's arguments, arrays turned into torch tensors
        (those in ``grad_wrt`` with ``requires_grad``); returns the forward
        output as a tensor. Gradients come from ``torch.autograd``.
    cases
        ``cases(dtype)`` is a strategy of valid :class:`Case` objects.
    grad_wrt
        The arguments ``name_backward`` differentiates, in the order it returns
        their gradients (a lone gradient is returned bare, not in a tuple).
    reduction_length
        The longest sum feeding one output element, given the arguments; it
        sizes the tolerance (``tolerances.py``).
    corners
        The corner cases the strategy claims to reach; the report warns about
        any that no example reached.
    integer_args
        Arguments that legitimately take integer arrays (class indices).
    """

    name: str
    oracle: Callable[..., Any]
    cases: Callable[[np.dtype[Any]], st.SearchStrategy[Case]]
    grad_wrt: tuple[str, ...]
    reduction_length: Callable[[Mapping[str, Any]], int] = lambda args: 1
    corners: frozenset[str] = field(default_factory=frozenset)
    integer_args: frozenset[str] = field(default_factory=frozenset)

    def forward(self, implementation: str) -> Forward:
        return getattr(_namespace(implementation), self.name)  # type: ignore[no-any-return]

    def backward(self, implementation: str) -> Backward:
        return getattr(  # type: ignore[no-any-return]
            _namespace(implementation), self.name + "_backward"
        )

    def __str__(self) -> str:
        return self.name


def _namespace(implementation: str) -> Any:
    if implementation == "loop":
        return reference_impl.loops
    if implementation == "vectorized":
        return reference_impl.vectorized
    raise ValueError(f"unknown implementation {implementation!r}")
