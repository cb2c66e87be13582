"""The registry's records: a formula declared once, as data.

A :class:`FormulaSpec` names a public formula (``linear``, ``conv2d``...), the
Hypothesis strategy of its valid arguments, which arguments it
differentiates, its outputs, the torch oracle when torch's function of the
same name does not do (see ``oracles.py``), the corners its strategy promises
to reach and the bad arguments it must reject. The loop and vectorized
implementations are looked up by name in :mod:`reference_impl.loops` and
:mod:`reference_impl.vectorized`, so a spec can only test the public functions.

Strategies are *steered*, not filtered: ``spec.cases(dtype, steer)`` draws
valid cases under a :class:`Steer` (arguments held at fixed values, corners
required or excluded) by construction, so narrowing the space to what a
candidate supports costs no rejected draws.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
from hypothesis import assume, strategies as st

import reference_impl.loops
import reference_impl.vectorized

#: the two namespaces every spec is run in, by their module names
NAMESPACES: dict[str, ModuleType] = {
    "loops": reference_impl.loops,
    "vectorized": reference_impl.vectorized,
}


@dataclass(frozen=True)
class Steer:
    """Constraints a strategy honours while it draws.

    ``fixed`` holds arguments at given values (``None`` for an absent optional
    array), or draws them from a given Hypothesis strategy (``st.integers(1, 3)``
    for a function that takes an int stride only); ``require`` and ``exclude``
    name corners every drawn case must, or must not, reach. A strategy steers
    each parameter axis it knows (:meth:`value`, :meth:`flag`) and calls
    :meth:`settle` last, which rejects the rare case a corner it cannot steer
    went the wrong way.
    """

    fixed: Mapping[str, Any] = field(default_factory=dict)
    require: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()

    def value(self, draw: st.DrawFn, name: str, strategy: st.SearchStrategy[Any]) -> Any:
        """``fixed[name]`` if the argument is held, else a draw from ``strategy``."""
        if name in self.fixed:
            return self.fixed[name]
        return draw(strategy, label=name)

    def flag(self, draw: st.DrawFn, corner: str, one_in: int = 4) -> bool:
        """Whether the case should reach ``corner``: forced by require/exclude, else drawn.

        Unforced, one case in ``one_in`` reaches it; shrinking goes towards not.
        """
        if corner in self.require:
            return True
        if corner in self.exclude:
            return False
        return bool(draw(st.integers(1, one_in), label=corner) == one_in)

    def allows(self, corner: str) -> bool:
        return corner not in self.exclude

    def settle(self, corners: set[str] | frozenset[str]) -> frozenset[str]:
        """The case's corners, after rejecting it if it breaks a requirement or an exclusion."""
        assume(self.require <= corners and not (self.exclude & corners))
        return frozenset(corners)

    def resolved(self) -> st.SearchStrategy[Steer]:
        """This steer with every held value that is a strategy drawn once, for one case."""
        if not any(isinstance(v, st.SearchStrategy) for v in self.fixed.values()):
            return st.just(self)
        return st.fixed_dictionaries(
            {
                k: v if isinstance(v, st.SearchStrategy) else st.just(v)
                for k, v in self.fixed.items()
            }
        ).map(lambda fixed: Steer(fixed, self.require, self.exclude))

    def excluding(self, *corners: str) -> Steer:
        return Steer(self.fixed, self.require, self.exclude | set(corners))


NO_STEER = Steer()


@dataclass(frozen=True)
class Case:
    """One drawn example: keyword arguments shared by forward and backward.

    ``args`` is in signature order and uses the public parameter names, so the
    call is ``forward(**args)`` and ``backward(grad_output, **args)``. The
    upstream gradient is made from ``grad_seed`` once the output shapes are
    known (``strategies.upstream_gradient``); the outputs named in ``silent``
    get an upstream gradient of zeros (a loss on the final state only, say).
    ``corners`` names the corner cases this example reaches.
    """

    args: Mapping[str, Any]
    grad_seed: int = 0
    corners: frozenset[str] = frozenset()
    silent: frozenset[str] = frozenset()

    @property
    def dtype(self) -> np.dtype[Any]:
        for value in self.args.values():
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                return np.dtype(value.dtype)
        raise ValueError("a case needs at least one float array")

    def arrays(self) -> dict[str, np.ndarray[Any, Any]]:
        return {k: v for k, v in self.args.items() if isinstance(v, np.ndarray)}

    def describe(self) -> str:
        parts = []
        for name, value in self.args.items():
            if isinstance(value, np.ndarray):
                parts.append(f"{name}: {value.dtype.name}{list(value.shape)}")
            else:
                parts.append(f"{name}={value!r}")
        return ", ".join(parts)


@dataclass(frozen=True)
class ErrorInput:
    """A bad call that both namespaces must reject, forward and backward.

    ``changes`` replace arguments of the spec's ``error_base``; the error must
    be ``error`` and its message must name ``argument`` as a word (and match
    ``match``, a regular expression, when given). A misshapen or mistyped
    ``grad_output`` needs no entry: generic properties draw those.
    """

    id: str
    changes: Mapping[str, Any]
    error: type[Exception]
    argument: str
    match: str | None = None


CaseStrategy = Callable[[np.dtype[Any], Steer], st.SearchStrategy[Case]]


@dataclass(frozen=True)
class FormulaSpec:
    """A formula under test.

    name
        The public name; ``name`` and ``name + "_backward"`` exist in both
        namespaces.
    cases
        ``cases(dtype, steer)``: a strategy of valid :class:`Case` objects.
    grad_wrt
        The arguments ``name_backward`` differentiates, in the order it returns
        their gradients (a lone gradient is returned bare, not in a tuple).
    outputs
        The forward's outputs; with several, the forward returns a tuple and
        ``name_backward`` takes a tuple of upstream gradients in that order.
    oracle
        Called with the case's arguments, arrays turned into tensors; returns
        the forward output(s). ``None``: torch's function of the same name
        (``oracles.default_oracle``).
    reduction_length
        The longest sum feeding one element of an output or a gradient, given
        the arguments; it sizes the tolerance (``tolerances.py``).
    corners
        The corner cases the strategy claims to reach; the report warns about
        any that no example reached.
    integer_args
        Arguments that legitimately take integer arrays (class indices).
    error_base, error_inputs
        Good arguments, and the bad calls made from them (:class:`ErrorInput`).
    """

    name: str
    cases: CaseStrategy
    grad_wrt: tuple[str, ...]
    outputs: tuple[str, ...] = ("output",)
    oracle: Callable[..., Any] | None = None
    reduction_length: Callable[[Mapping[str, Any]], int] = lambda args: 1
    corners: frozenset[str] = field(default_factory=frozenset)
    integer_args: frozenset[str] = field(default_factory=frozenset)
    error_base: Callable[[], dict[str, Any]] | None = None
    error_inputs: Sequence[ErrorInput] = ()

    def forward(self, namespace: str) -> Callable[..., Any]:
        return getattr(NAMESPACES[namespace], self.name)  # type: ignore[no-any-return]

    def backward(self, namespace: str) -> Callable[..., Any]:
        return getattr(NAMESPACES[namespace], self.name + "_backward")  # type: ignore[no-any-return]

    @property
    def quantities(self) -> tuple[str, ...]:
        """Names of everything compared: the outputs, then ``grad_<arg>`` per gradient."""
        return (*self.outputs, *(f"grad_{name}" for name in self.grad_wrt))

    def __str__(self) -> str:
        return self.name
