"""``check_formula``: hand your own forward or backward to the oracle.

The candidate is called like the reference, with keyword arguments by the
reference's parameter names (the upstream gradient first, by position, for a
backward). Parameters the candidate does not take are held at the
reference's default and not passed, and ``fixed`` holds more; the formula's
strategy then draws valid cases inside that space by construction. Every
output and gradient the candidate returns is compared with ``torch.autograd``
under the suite's derived tolerances.

On disagreement, :class:`FormulaMismatch` (an ``AssertionError``) says which
quantities disagree and which agree, prints the smallest failing case as code
to paste into a Python prompt, diagnoses by corner (searching again with each
of the failing case's corners excluded) and by catalog (which known erratum
the candidate behaves like), and lists the RuntimeWarnings the candidate
raised. On agreement, :func:`check_formula` returns a :class:`CheckReport`.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, find, settings
from hypothesis.errors import NoSuchExample, Unsatisfiable

from reference_impl.testing import evaluate, report
from reference_impl.testing.comparison import Verdict, measure, summarize
from reference_impl.testing.errata import Erratum, errata_of
from reference_impl.testing.registry import Case, FormulaSpec, Steer
from reference_impl.testing.specs import SPECS, spec_named
from reference_impl.testing.strategies import FLOAT_DTYPES

#: examples per dtype-agnostic search when the caller gives no budget
DEFAULT_EXAMPLES = 200
#: examples of each corner-excluded search in the diagnosis (half the budget by default)
DIAGNOSIS_EXAMPLES = DEFAULT_EXAMPLES // 2
#: failing cases the catalog diagnosis compares the candidate and each erratum on
CATALOG_CASES = 4
#: corners every case has, which no steer can exclude
_GENERIC = {"float32"}


class FormulaMismatch(AssertionError):
    """The candidate disagrees with torch; the message says where, how and why."""


class CandidateShapeError(ValueError):
    """The candidate returned the wrong number of values: a usage error, not a mismatch."""


@dataclass
class CheckReport:
    """What an agreeing check covered."""

    formula: str
    examples: dict[str, int]
    corners: set[str]
    claimed: set[str]
    worst_ratio: float
    held: dict[str, Any]
    quantities: tuple[str, ...]
    warnings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        stats: report.Stats = {}
        item = report.FormulaStats()
        for dtype, count in self.examples.items():
            item.examples[f"agrees with torch ({dtype})"] = count
        item.worst_ratio, item.compared = self.worst_ratio, True
        item.corners = set(self.corners)
        stats[self.formula] = item
        lines = [
            f"{self.formula}: the candidate agrees with torch.autograd on "
            f"{', '.join(self.quantities)} ({sum(self.examples.values())} examples)"
        ]
        if self.held:
            lines.append(f"held: {_kwargs(self.held)}")
        lines += report.format_report(stats)
        unreached = sorted(self.claimed - self.corners)
        if unreached:
            lines.append(
                "not reached (held parameters, or raise max_examples): " + ", ".join(unreached)
            )
        lines += [f"RuntimeWarning from the candidate: {w}" for w in self.warnings]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Candidate:
    spec: FormulaSpec
    forward: Callable[..., Any] | None
    backward: Callable[..., Any] | None
    forward_takes: frozenset[str] | None
    backward_takes: frozenset[str] | None

    @property
    def quantities(self) -> tuple[str, ...]:
        outputs = self.spec.outputs if self.forward else ()
        grads = tuple(f"grad_{n}" for n in self.spec.grad_wrt) if self.backward else ()
        return (*outputs, *grads)

    def run(self, case: Case, grad_outputs: tuple[Any, ...]) -> dict[str, Any]:
        """The candidate's outputs and gradients on ``case``, keyed by quantity."""
        spec, found = self.spec, dict[str, Any]()
        if self.forward is not None:
            result = self.forward(**_taken(case.args, self.forward_takes))
            outputs = evaluate.as_outputs(spec, result)
            _expect_count("forward", self.forward, outputs, spec.outputs)
            found.update(zip(spec.outputs, outputs, strict=True))
        if self.backward is not None:
            upstream = evaluate.upstream_argument(spec, grad_outputs)
            grads = self.backward(upstream, **_taken(case.args, self.backward_takes))
            found.update(self._grads(grads, case))
        return found

    def _grads(self, grads: Any, case: Case) -> dict[str, Any]:
        spec, names = self.spec, self.spec.grad_wrt
        taken = [n for n in names if self.backward_takes is None or n in self.backward_takes]
        if len(names) == 1:
            return {f"grad_{names[0]}": grads}
        grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
        if len(grads) == len(names):
            return {f"grad_{n}": g for n, g in zip(names, grads, strict=True)}
        if len(grads) == len(taken):
            # arguments the candidate does not take (an absent bias) have no gradient
            by_name = dict(zip(taken, grads, strict=True))
            return {f"grad_{n}": by_name.get(n) for n in names}
        assert self.backward is not None
        without = ""
        if taken != list(names):
            without = f", or {len(taken)} without the arguments it does not take"
        raise CandidateShapeError(
            f"{_name(self.backward)} returned {len(grads)} gradients; "
            f"{spec.name}_backward returns {len(names)} ({', '.join(names)}){without}"
        )


def _name(function: Callable[..., Any]) -> str:
    return getattr(function, "__qualname__", None) or repr(function)


def _expect_count(kind: str, function: Any, values: Sequence[Any], names: Sequence[str]) -> None:
    if len(values) != len(names):
        raise CandidateShapeError(
            f"the {kind} candidate {_name(function)} returned {len(values)} values; "
            f"expected {len(names)} ({', '.join(names)})"
        )


def _taken(args: Mapping[str, Any], takes: frozenset[str] | None) -> dict[str, Any]:
    return dict(args) if takes is None else {k: v for k, v in args.items() if k in takes}


def _accepted(
    function: Callable[..., Any], reference: Callable[..., Any], skip: int
) -> tuple[frozenset[str] | None, dict[str, Any]]:
    """Which reference parameters ``function`` takes, and the defaults of those it does not."""
    if not callable(function):
        raise TypeError(f"the candidate must be callable, got {type(function).__name__}")
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return None, {}
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return None, {}
    reference_parameters = list(inspect.signature(reference).parameters.values())[skip:]
    takes = frozenset(p.name for p in reference_parameters if p.name in parameters)
    held = {}
    for p in reference_parameters:
        if p.name in takes:
            continue
        if p.default is p.empty:
            raise TypeError(
                f"{_name(function)} does not take {p.name!r}, which the reference "
                f"{reference.__name__}{inspect.signature(reference)} needs"
            )
        held[p.name] = p.default
    return takes, held


def _kwargs(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


def _snippet(case: Case, grad_outputs: tuple[Any, ...], candidate: _Candidate) -> str:
    """Code that rebuilds the case and calls the candidate, for a Python prompt."""
    lines = ["import numpy as np"]
    for name, value in case.args.items():
        if isinstance(value, np.ndarray):
            lines.append(f"{name} = np.array({value.tolist()!r}, dtype=np.{value.dtype.name})")
        else:
            lines.append(f"{name} = {value!r}")
    names = candidate.spec.outputs
    for name, grad in zip(names, grad_outputs, strict=True):
        label = "grad_output" if len(names) == 1 else f"grad_{name}"
        lines.append(f"{label} = np.array({grad.tolist()!r}, dtype=np.{grad.dtype.name})")
    if candidate.forward is not None:
        call = ", ".join(f"{k}={k}" for k in _taken(case.args, candidate.forward_takes))
        lines.append(f"{_name(candidate.forward)}({call})")
    if candidate.backward is not None:
        upstream = (
            "grad_output" if len(names) == 1 else "(" + ", ".join(f"grad_{n}" for n in names) + ")"
        )
        call = ", ".join(f"{k}={k}" for k in _taken(case.args, candidate.backward_takes))
        lines.append(f"{_name(candidate.backward)}({upstream}, {call})")
    return "\n".join("    " + line for line in lines)


@dataclass
class _Outcome:
    verdicts: list[Verdict]
    error: BaseException | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None or not all(v.ok for v in self.verdicts)


class _Search:
    """Runs the candidate against torch on drawn cases, remembering what it saw."""

    def __init__(self, candidate: _Candidate, dtypes: Sequence[np.dtype[Any]]) -> None:
        self.candidate = candidate
        self.dtypes = dtypes
        self.examples: dict[str, int] = {}
        self.corners: set[str] = set()
        self.worst = 0.0
        self.warnings: set[str] = set()
        #: cases each search of the diagnosis by corner draws
        self.diagnosis_examples = DIAGNOSIS_EXAMPLES

    def outcome(self, case: Case) -> tuple[_Outcome, tuple[Any, ...], dict[str, Any]]:
        spec = self.candidate.spec
        expected, grad_outputs = evaluate.torch_result(spec, case)
        wanted = dict(expected.quantities(spec))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            try:
                found = self.candidate.run(case, grad_outputs)
            except ValueError as error:
                if ("returned" in str(error) and "gradients" in str(error)) or "values;" in str(
                    error
                ):
                    raise
                return _Outcome([], error), grad_outputs, {}
            except Exception as error:  # a crash on a valid case is a failure of the candidate
                return _Outcome([], error), grad_outputs, {}
        self.warnings.update(str(w.message) for w in caught if w.category is RuntimeWarning)
        verdicts = [
            measure(
                found[q],
                wanted[q],
                quantity=q,
                actual_name="candidate",
                expected_name="torch",
                dtype=case.dtype,
                reduction_length=spec.reduction_length(case.args),
            )
            for q in self.candidate.quantities
        ]
        return _Outcome(verdicts), grad_outputs, found

    def fails(self, case: Case) -> bool:
        outcome, _, _ = self.outcome(case)
        dtype = case.dtype.name
        self.examples[dtype] = self.examples.get(dtype, 0) + 1
        self.corners |= evaluate.reached_corners(case)
        if outcome.verdicts and not outcome.failed:
            self.worst = max(self.worst, *(v.ratio for v in outcome.verdicts))
        return outcome.failed

    def sample(self, steer: Steer, count: int) -> list[tuple[Case, bool]]:
        """``count`` drawn cases, each with whether the candidate failed on it."""
        seen: list[tuple[Case, bool]] = []

        def record(case: Case) -> bool:
            seen.append((case, self.fails(case)))
            return False

        with contextlib.suppress(NoSuchExample, Unsatisfiable):
            find(
                evaluate.any_case(self.candidate.spec, steer, self.dtypes),
                record,
                settings=self._settings(count, shrink=False),
            )
        return seen

    def _settings(self, budget: int, shrink: bool) -> settings:
        return settings(
            max_examples=budget,
            phases=[Phase.generate, Phase.shrink] if shrink else [Phase.generate],
            derandomize=True,
            database=None,
            deadline=None,
            verbosity=Verbosity.quiet,
            suppress_health_check=list(HealthCheck),
        )

    def find(self, steer: Steer, budget: int, shrink: bool) -> Case | None:
        strategy = evaluate.any_case(self.candidate.spec, steer, self.dtypes)
        try:
            return find(strategy, self.fails, settings=self._settings(budget, shrink))
        except NoSuchExample:
            return None


def check_formula(
    formula: str,
    *,
    forward: Callable[..., Any] | None = None,
    backward: Callable[..., Any] | None = None,
    fixed: Mapping[str, Any] | None = None,
    require: Iterable[str] = (),
    exclude: Iterable[str] = (),
    max_examples: int | None = None,
    diagnosis: Iterable[str] = ("corner", "catalog"),
    shrink: bool = True,
) -> CheckReport:
    """Check a candidate ``forward`` and/or ``backward`` of ``formula`` against torch.

    formula
        A public formula name (``"conv2d"``, ``"max_pool2d"``...).
    forward, backward
        The candidates; at least one. Each is called like the reference
        (``backward(grad_output, x=..., weight=..., ...)``), with only the
        parameters its signature takes; the others are held at the
        reference's defaults.
    fixed
        Arguments held at these values (``{"groups": 1}``); ``"dtype"`` holds
        the float dtype (``"float64"`` or ``"float32"``).
    require, exclude
        Corner names every case must, or must not, reach (``"stride > 1"``,
        ``"ties"``...); ``available_corners(formula)`` lists them.
    max_examples
        Cases drawn (default 200); the diagnosis by corner draws a few hundred more.
    diagnosis
        Which diagnoses a failure gets: ``"corner"`` and/or ``"catalog"``.
    shrink
        Shrink the failing case to the smallest one (the default); without,
        the first failing case found is reported, which is much faster.

    Returns a :class:`CheckReport` on agreement; raises :class:`FormulaMismatch`
    on disagreement, ``ValueError``/``TypeError`` on bad use.
    """
    spec = _spec(formula)
    if forward is None and backward is None:
        raise TypeError("give a forward or a backward candidate (or both)")
    fixed = dict(fixed or {})
    held: dict[str, Any] = {}
    forward_takes = backward_takes = None
    if forward is not None:
        forward_takes, held_f = _accepted(forward, spec.forward("loops"), 0)
        held.update(held_f)
    if backward is not None:
        backward_takes, held_b = _accepted(backward, spec.backward("loops"), 1)
        held.update(held_b)
    dtypes = _dtypes(fixed.pop("dtype", None))
    parameters = list(inspect.signature(spec.forward("loops")).parameters)
    unknown = sorted(set(fixed) - set(parameters))
    if unknown:
        raise ValueError(
            f"fixed names {unknown}, which {formula} does not have; its parameters are "
            f"{', '.join(parameters)} (and 'dtype')"
        )
    require, exclude = frozenset(require), frozenset(exclude)
    known = spec.corners | _GENERIC
    strange = sorted((require | exclude) - known)
    if strange:
        raise ValueError(
            f"unknown corners {strange} for {formula}; its corners are {', '.join(sorted(known))}"
        )
    if "float32" in exclude:
        dtypes = [d for d in dtypes if d != np.float32]
    if "float32" in require:
        dtypes = [d for d in dtypes if d == np.float32]
    steer = Steer({**held, **fixed}, require - _GENERIC, exclude - _GENERIC)
    candidate = _Candidate(spec, forward, backward, forward_takes, backward_takes)
    search = _Search(candidate, dtypes)
    budget = DEFAULT_EXAMPLES if max_examples is None else int(max_examples)
    _validate_space(spec, steer, dtypes, formula)
    try:
        failing = search.find(steer, budget, shrink=shrink)
    except Unsatisfiable as error:
        raise ValueError(
            f"no valid case of {formula} satisfies fixed={fixed!r}, require={sorted(require)}, "
            f"exclude={sorted(exclude)}"
        ) from error
    if failing is None:
        return CheckReport(
            formula,
            dict(search.examples),
            search.corners,
            set(spec.corners | {"float32"}) - exclude,
            search.worst,
            {**held, **fixed},
            candidate.quantities,
            sorted(search.warnings),
        )
    kinds = frozenset(diagnosis)
    search.diagnosis_examples = max(20, budget // 2)
    raise FormulaMismatch(_explain(spec, candidate, search, steer, failing, held, fixed, kinds))


def _spec(formula: str) -> FormulaSpec:
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a formula name, got {type(formula).__name__}")
    try:
        return spec_named(formula)
    except KeyError as error:
        raise ValueError(
            f"{error.args[0]} (formulas: {', '.join(s.name for s in SPECS)})"
        ) from None


def _dtypes(value: Any) -> list[np.dtype[Any]]:
    if value is None:
        return list(FLOAT_DTYPES)
    try:
        dtype = np.dtype(value)
    except TypeError as error:
        raise ValueError(f"fixed dtype must be float32 or float64, got {value!r}") from error
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"fixed dtype must be float32 or float64, got {value!r}")
    return [dtype]


def _validate_space(
    spec: FormulaSpec, steer: Steer, dtypes: Sequence[np.dtype[Any]], formula: str
) -> None:
    """One drawn case through the reference: a held value outside the valid space fails here."""
    strategy = evaluate.any_case(spec, steer, dtypes)
    try:
        case = find(
            strategy,
            lambda _: True,
            settings=settings(database=None, phases=[Phase.generate], max_examples=50),
        )
    except (NoSuchExample, Unsatisfiable) as error:
        raise ValueError(f"no valid case of {formula} satisfies {steer}") from error
    except (ValueError, TypeError, KeyError, IndexError) as error:
        raise ValueError(f"{formula}: a held or fixed value is not valid here: {error}") from error
    try:
        spec.forward("vectorized")(**case.args)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"{formula}: the held or fixed values are outside the formula's valid space: {error}"
        ) from error


def _explain(
    spec: FormulaSpec,
    candidate: _Candidate,
    search: _Search,
    steer: Steer,
    failing: Case,
    held: Mapping[str, Any],
    fixed: Mapping[str, Any],
    kinds: frozenset[str],
) -> str:
    outcome, grad_outputs, _ = search.outcome(failing)
    corners = sorted(evaluate.reached_corners(failing))
    who = " and ".join(
        f"{kind} {_name(f)}"
        for kind, f in (("forward", candidate.forward), ("backward", candidate.backward))
        if f is not None
    )
    lines = [f"{spec.name}: the candidate {who} disagrees with torch.autograd."]
    if outcome.error is not None:
        lines.append(f"  it raised {type(outcome.error).__name__}: {outcome.error} on a valid case")
    else:
        lines.append(
            summarize(
                outcome.verdicts,
                formula="  on the smallest failing case",
                actual_name="the candidate",
                expected_name="torch",
            )
        )
    lines.append(
        f"Smallest failing case ({failing.dtype.name}; corners: {', '.join(corners) or 'none'}):"
    )
    lines.append(_snippet(failing, grad_outputs, candidate))
    failures = [failing]
    if "corner" in kinds:
        lines.append("Diagnosis by corner:")
        lines += _diagnose_corners(search, steer, failing, failures)
    if "catalog" in kinds:
        lines.append("Diagnosis by catalog:")
        lines += _diagnose_catalog(spec, candidate, search, failures)
    if held or fixed:
        lines.append(f"Held: {_kwargs({**held, **fixed})} (parameters not taken or fixed)")
    if search.warnings:
        lines.append("RuntimeWarnings the candidate raised:")
        lines += [f"  {w}" for w in sorted(search.warnings)]
    return "\n".join(lines)


def _diagnose_corners(
    search: _Search, steer: Steer, failing: Case, failures: list[Case]
) -> list[str]:
    """Which of the failing case's corners the failures need.

    A broad sample counts failures with and without each corner; a corner
    with failures only when present is then searched again with it excluded
    (the claim "agrees on every case without it" rests on both).
    """
    sample = search.sample(steer, search.diagnosis_examples * 2)
    failures.extend(case for case, failed in sample if failed)
    del failures[CATALOG_CASES:]
    candidates: dict[str, tuple[float, str]] = {}
    for corner in sorted(failing.corners):
        with_it = [failed for case, failed in sample if corner in case.corners]
        without = [failed for case, failed in sample if corner not in case.corners]
        if any(without):
            continue
        try:
            found = search.find(steer.excluding(corner), search.diagnosis_examples, shrink=False)
        except Unsatisfiable:
            continue
        if found is None:
            candidates[corner] = (
                -sum(with_it) / max(len(with_it), 1),
                f"  agrees on every case without {corner} "
                f"({len(without) + search.diagnosis_examples} examples); fails with {corner} "
                f"({sum(with_it)} of {len(with_it)} sampled cases with it)",
            )
    # A claim survives only if the failures still vanish when the other claimed
    # corners are all required: "without padding" is refuted by a failure with
    # stride > 1 and no padding, which a plain sample may simply not have drawn.
    claims = []
    for corner, claim in candidates.items():
        others = frozenset(candidates) - {corner}
        narrowed = Steer(steer.fixed, steer.require | others, steer.exclude | {corner})
        try:
            refuted = bool(others) and search.find(
                narrowed, search.diagnosis_examples, shrink=False
            )
        except Unsatisfiable:
            refuted = False
        if not refuted:
            claims.append(claim)
    lines = [line for _, line in sorted(claims)]
    if not lines:
        lines.append(
            "  fails with each of the failing case's corners excluded in turn: "
            "the mistake is not tied to one corner"
        )
    return lines


def _diagnose_catalog(
    spec: FormulaSpec, candidate: _Candidate, search: _Search, failures: list[Case]
) -> list[str]:
    matches = [e for e in errata_of(spec.name) if _behaves_like(e, spec, candidate, failures)]
    if not matches:
        known = len(errata_of(spec.name))
        return [f"  behaves like none of the {known} known errata of {spec.name}"]
    return [f"  behaves like {e.name}: {e.mistake} (source: {e.source})" for e in matches]


def _behaves_like(
    erratum: Erratum, spec: FormulaSpec, candidate: _Candidate, failures: Sequence[Case]
) -> bool:
    """The candidate and ``erratum`` agree with each other on every failing case."""
    wrong = (
        erratum.forward or spec.forward("vectorized"),
        erratum.backward or spec.backward("vectorized"),
    )
    for case in failures:
        _, grad_outputs = evaluate.torch_result(spec, case)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = dict(evaluate.run(spec, wrong, case, grad_outputs).quantities(spec))
                ours = candidate.run(case, grad_outputs)
        except Exception:
            return False
        for quantity in candidate.quantities:
            verdict = measure(
                ours[quantity],
                theirs[quantity],
                quantity=quantity,
                actual_name="candidate",
                expected_name=erratum.name,
                dtype=case.dtype,
                reduction_length=spec.reduction_length(case.args),
            )
            if not verdict.ok:
                return False
    return True


def available_corners(formula: str) -> list[str]:
    """The corner names ``require`` and ``exclude`` accept for ``formula``."""
    return sorted(_spec(formula).corners | _GENERIC)
