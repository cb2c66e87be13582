"""Specs of the losses: mse, l1, binary cross-entropy (probabilities and logits), cross-entropy,
nll, smooth L1, Huber, KL divergence."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference_impl.testing import oracles
from reference_impl.testing.registry import Case, ErrorInput, FormulaSpec, Steer
from reference_impl.testing.specs.activations import EXTREME_LOGITS, hyper_parameter
from reference_impl.testing.strategies import GRID, GRID_STEP, arrays, grad_seeds, grid_or

REDUCTIONS = ("mean", "sum", "none")
LOSS_SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=5)
#: probabilities on the grid, the ends 0 and 1 included (torch clamps log 0 at −100)
PROBABILITIES = st.integers(0, GRID_STEP).map(lambda k: k / GRID_STEP)
#: probabilities strictly inside (0, 1)
INTERIOR = st.integers(1, GRID_STEP - 1).map(lambda k: k / GRID_STEP)
REDUCTION_CORNERS = frozenset(f"reduction={r}" for r in REDUCTIONS)


def _reduction(draw: st.DrawFn, steer: Steer) -> str:
    allowed = [r for r in REDUCTIONS if steer.allows(f"reduction={r}")]
    return str(steer.value(draw, "reduction", st.sampled_from(allowed)))


def _plant(
    draw: st.DrawFn, steer: Steer, corner: str, x: np.ndarray[Any, Any], value: Any
) -> np.ndarray[Any, Any]:
    """``x`` with ``value`` at one drawn position when ``corner`` is required."""
    if corner not in steer.require:
        return x
    x = x.copy()
    at = draw(st.integers(0, x.size - 1), label=f"{corner} at")
    x.reshape(-1)[at] = value
    return x


@st.composite
def pair_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer, kind: str) -> Case:
    """``input`` and ``target`` of one shape, with the value corners of each ``kind``.

    ``difference`` (mse, l1): some targets equal the input ("input == target",
    where l1's gradient is 0); ``probability`` (bce): inputs 0 and 1, where
    torch clamps the log; ``logits`` (bce with logits): extreme logits.
    """
    shape = draw(LOSS_SHAPES, label="shape")
    reduction = _reduction(draw, steer)
    if kind == "difference":
        x = draw(arrays(dtype, shape, GRID), label="input")
        y = draw(arrays(dtype, shape, GRID), label="target")
        if steer.allows("input == target"):
            mask = draw(arrays(np.dtype(bool), shape, st.booleans()), label="input == target at")
            y = np.where(mask, x, y)
        else:
            y = np.where(x == y, x + 1, y)
        y = _plant(draw, steer, "input == target", y - x, 0.0) + x
    elif kind == "probability":
        ends = steer.allows("probability 0 or 1")
        x = draw(arrays(dtype, shape, PROBABILITIES if ends else INTERIOR), label="input")
        x = _plant(draw, steer, "probability 0 or 1", x, draw(st.sampled_from([0.0, 1.0])))
        y = draw(arrays(dtype, shape, PROBABILITIES), label="target")
    else:
        extreme = steer.allows("extreme logits")
        x = draw(arrays(dtype, shape, grid_or(*EXTREME_LOGITS) if extreme else GRID), "input")
        x = _plant(draw, steer, "extreme logits", x, draw(st.sampled_from(EXTREME_LOGITS)))
        y = draw(arrays(dtype, shape, PROBABILITIES), label="target")
    x, y = np.asarray(x, dtype=dtype), np.asarray(y, dtype=dtype)
    corners = {f"reduction={reduction}"}
    if kind == "difference" and np.any(x == y):
        corners.add("input == target")
    if kind == "probability" and np.any((x == 0) | (x == 1)):
        corners.add("probability 0 or 1")
    if kind == "logits" and x.size and np.max(np.abs(x)) >= 89:
        corners.add("extreme logits")
    args = {"input": x, "target": y, "reduction": reduction}
    return Case(args, draw(grad_seeds()), steer.settle(corners))


#: class weights: nonnegative multiples of 1/4 (0 makes the corner "zero weight")
WEIGHT_VALUES = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
#: label smoothing ε: 0, and the values that make each corner (exact in binary)
SMOOTHINGS = {"label smoothing": (0.25, 0.5, 0.125), "smoothing = 1": (1.0,)}
CLASS_CORNERS = frozenset(
    {
        "batch of one",
        "class weights",
        "zero weight",
        "zero total weight",
        "ignored target",
        "every target ignored",
        "ignore_index a class",
        *REDUCTION_CORNERS,
    }
)


def _ignore_index(draw: st.DrawFn, steer: Steer, classes: int, probabilities: bool) -> int:
    """−100, −1, or (class indices, two classes or more) a class in [0, C)."""
    if not probabilities and classes > 1 and steer.flag(draw, "ignore_index a class"):
        pool: st.SearchStrategy[int] = st.integers(0, classes - 1)
    else:
        pool = st.sampled_from([-100, -1])
    return int(steer.value(draw, "ignore_index", pool))


def _index_targets(
    draw: st.DrawFn, steer: Steer, batch: int, classes: int, ignore_index: int
) -> np.ndarray[Any, Any]:
    """Class indices other than ``ignore_index``; then some rows, or all, set to it when steered.

    Drawing the classes without ``ignore_index`` keeps "ignored target" a steered
    corner even when ``ignore_index`` is itself a class.
    """
    pool = [c for c in range(classes) if c != ignore_index] or [0]
    target = np.array(draw(st.lists(st.sampled_from(pool), min_size=batch, max_size=batch)))
    if steer.flag(draw, "every target ignored", one_in=8):
        target[:] = ignore_index
    elif batch > 1 and steer.flag(draw, "ignored target"):
        count = draw(st.integers(1, batch - 1), label="ignored rows")
        rows = draw(st.permutations(range(batch)), label="rows")[:count]
        target[list(rows)] = ignore_index
    return target.astype(np.int64)


def _class_weights(
    draw: st.DrawFn, steer: Steer, dtype: np.dtype[Any], target: np.ndarray[Any, Any], classes: int
) -> np.ndarray[Any, Any] | None:
    if "weight" in steer.fixed:
        fixed: np.ndarray[Any, Any] | None = steer.fixed["weight"]
        return fixed
    if not steer.flag(draw, "class weights"):
        return None
    values = WEIGHT_VALUES + ((0.0,) if steer.allows("zero weight") else ())
    weight = np.array(draw(st.lists(st.sampled_from(values), min_size=classes, max_size=classes)))
    if "zero weight" in steer.require:
        weight[draw(st.integers(0, classes - 1), label="zero weight at")] = 0.0
    kept = target[(target >= 0) & (target < classes)]
    if steer.flag(draw, "zero total weight", one_in=8):
        weight[kept] = 0.0
    return weight.astype(dtype)


def class_corners(
    target: np.ndarray[Any, Any],
    weight: np.ndarray[Any, Any] | None,
    ignore_index: int,
    classes: int,
) -> set[str]:
    corners = set()
    ignored = target == ignore_index
    if ignored.all():
        corners.add("every target ignored")
    elif ignored.any():
        corners.add("ignored target")
    if 0 <= ignore_index < classes:
        corners.add("ignore_index a class")
    if weight is not None:
        corners.add("class weights")
        if np.any(weight == 0):
            corners.add("zero weight")
        if not ignored.all() and weight[target[~ignored]].sum() == 0:
            corners.add("zero total weight")
    return corners


@st.composite
def class_cases(
    draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer, formula: str = "cross_entropy"
) -> Case:
    """nll_loss (``formula="nll_loss"``: log-probabilities, class indices) or cross_entropy.

    cross_entropy draws logits (extreme ones mixed in), class indices or
    probabilities, and a label smoothing; both draw class weights with zeros,
    ignored rows and an ignore_index that may be a class.
    """
    nll = formula == "nll_loss"
    batch = 1 if steer.flag(draw, "batch of one") else draw(st.integers(2, 4), label="N")
    classes = draw(st.integers(1, 5), label="C")
    reduction = _reduction(draw, steer)
    if nll:
        indices = True
        x = draw(arrays(dtype, (batch, classes), GRID), label="input")
    else:
        extreme = steer.allows("extreme logits")
        x = draw(arrays(dtype, (batch, classes), grid_or(*EXTREME_LOGITS) if extreme else GRID))
        x = _plant(draw, steer, "extreme logits", x, draw(st.sampled_from(EXTREME_LOGITS)))
        if "class-index target" in steer.require or not steer.allows("probability target"):
            indices = True
        elif "probability target" in steer.require or not steer.allows("class-index target"):
            indices = False
        else:
            indices = draw(st.booleans(), label="class-index target")
    ignore_index = _ignore_index(draw, steer, classes, not indices)
    target: np.ndarray[Any, Any]
    if indices:
        target = _index_targets(draw, steer, batch, classes, ignore_index)
    else:
        target = draw(arrays(dtype, (batch, classes), PROBABILITIES), label="target")
    weight = _class_weights(draw, steer, dtype, target if indices else np.zeros(0, int), classes)
    corners = {f"reduction={reduction}", "batch of one" if batch == 1 else "batch"}
    if indices:
        corners |= class_corners(target, weight, ignore_index, classes)
    elif weight is not None:
        corners.add("class weights")
        if np.any(weight == 0):
            corners.add("zero weight")
    args: dict[str, Any] = {"input": x, "target": target, "weight": weight}
    args["ignore_index"] = ignore_index
    args["reduction"] = reduction
    if not nll:
        corners.add("class-index target" if indices else "probability target")
        if np.max(np.abs(x)) >= 89:
            corners.add("extreme logits")
        smoothing = hyper_parameter(draw, steer, "label_smoothing", (0.0,), SMOOTHINGS)
        if smoothing == 1:
            corners.add("smoothing = 1")
        elif smoothing > 0:
            corners.add("label smoothing")
        args["label_smoothing"] = smoothing
    return Case(args, draw(grad_seeds()), steer.settle(corners))


#: smooth_l1_loss's beta and huber_loss's delta: 1, and values that make each corner
BETAS = {"beta ≠ 1": (0.5, 2.0, 0.25), "beta = 0": (0.0,)}
DELTAS = {"delta ≠ 1": (0.5, 2.0, 0.25)}


@st.composite
def robust_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer, name: str) -> Case:
    """smooth_l1_loss (``name="beta"``) or huber_loss (``"delta"``): differences at the switch.

    ``|d| = beta`` (``|d| = delta``) plants a difference of exactly ±beta, where
    the quadratic piece hands over to the linear one.
    """
    shape = draw(LOSS_SHAPES, label="shape")
    reduction = _reduction(draw, steer)
    kinds = BETAS if name == "beta" else DELTAS
    width = hyper_parameter(draw, steer, name, (1.0,), kinds)
    x = draw(arrays(dtype, shape, GRID), label="input")
    d = draw(arrays(dtype, shape, GRID), label="difference")
    switch = f"|d| = {name}"
    if steer.flag(draw, switch):
        sign = draw(st.sampled_from([-1.0, 1.0]), label="sign")
        d = d.copy()
        d.reshape(-1)[draw(st.integers(0, d.size - 1), label=f"{switch} at")] = sign * width
    if steer.allows("input == target"):
        d = _plant(draw, steer, "input == target", d, 0.0)
    else:
        d = np.where(d == 0, width + 1, d)
    y = np.asarray(x - d, dtype=dtype)
    d = x - y
    corners = {f"reduction={reduction}"}
    if np.any(d == 0):
        corners.add("input == target")
    if np.any(np.abs(d) == width):
        corners.add(switch)
    corners |= {kind for kind, values in kinds.items() if width in values}
    args = {"input": x, "target": y, "reduction": reduction, name: width}
    return Case(args, draw(grad_seeds()), steer.settle(corners))


KL_REDUCTIONS = (*REDUCTIONS, "batchmean")


@st.composite
def kl_div_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer) -> Case:
    """``input`` = log q on the grid; ``target`` = probabilities with zeros, or log-targets."""
    shape = draw(LOSS_SHAPES, label="shape")
    allowed = [r for r in KL_REDUCTIONS if steer.allows(f"reduction={r}")]
    reduction = str(steer.value(draw, "reduction", st.sampled_from(allowed)))
    log_target = bool(steer.value(draw, "log_target", st.just(steer.flag(draw, "log targets"))))
    x = draw(arrays(dtype, shape, GRID), label="input")
    if log_target:
        t = draw(arrays(dtype, shape, GRID), label="target")
    else:
        zeros = steer.allows("zero target probability")
        t = draw(arrays(dtype, shape, PROBABILITIES if zeros else INTERIOR), label="target")
        t = _plant(draw, steer, "zero target probability", t, 0.0)
    corners = {f"reduction={reduction}"}
    if log_target:
        corners.add("log targets")
    elif np.any(t == 0):
        corners.add("zero target probability")
    args = {"input": x, "target": t, "reduction": reduction, "log_target": log_target}
    return Case(args, draw(grad_seeds()), steer.settle(corners))


def _reduced_length(args: Any) -> int:
    return 1 if args["reduction"] == "none" else max(1, int(args["input"].size))


def _reduced_rows(args: Any) -> int:
    """nll_loss: a reduced loss sums one term per row (and divides by the weight sum)."""
    return 1 if args["reduction"] == "none" else int(args["input"].shape[0])


def _cross_entropy_length(args: Any) -> int:
    batch, classes = args["input"].shape
    return int(classes * (1 if args["reduction"] == "none" else batch))


P = np.array([[0.25, 0.5], [0.75, 1.0]])
PAIR_ERRORS = [
    ErrorInput("unknown reduction", {"reduction": "average"}, ValueError, "reduction"),
    ErrorInput("reduction None", {"reduction": None}, ValueError, "reduction"),
    ErrorInput("target larger", {"target": np.zeros((2, 3))}, ValueError, "target", "same shape"),
    ErrorInput("target smaller", {"target": np.zeros(2)}, ValueError, "target", "same shape"),
    ErrorInput("mixed", {"target": np.zeros((2, 2), np.float32)}, TypeError, "target"),
    ErrorInput("input int", {"input": P.astype(np.int64)}, TypeError, "input"),
]


def _pair_spec(name: str, kind: str, claims: set[str], errors: list[ErrorInput]) -> FormulaSpec:
    return FormulaSpec(
        name=name,
        cases=partial(pair_cases, kind=kind),
        grad_wrt=("input",),
        reduction_length=_reduced_length,
        corners=frozenset({*REDUCTION_CORNERS, *claims}),
        error_base=lambda: {"input": P, "target": P, "reduction": "mean"},
        error_inputs=[*PAIR_ERRORS, *errors],
    )


OUTSIDE_UNIT = [
    ErrorInput(f"input {p}", {"input": np.array([[0.5, p], [0, 0]])}, ValueError, "input")
    for p in (1.5, -0.25)
]
LOGITS = np.zeros((2, 3))
CLASS_ERRORS = [
    ErrorInput("index too large", {"target": np.array([0, 3])}, ValueError, "target"),
    ErrorInput("index negative", {"target": np.array([-1, 0])}, ValueError, "target"),
    ErrorInput("index count", {"target": np.array([0, 1, 2])}, ValueError, "target"),
    ErrorInput("target list", {"target": [0, 1]}, TypeError, "target", "numpy"),
    ErrorInput("target bool", {"target": np.array([True, False])}, TypeError, "target"),
    ErrorInput("input rank", {"input": np.zeros(3)}, ValueError, "input", "2 dimensions"),
    ErrorInput("input int", {"input": LOGITS.astype(np.int64)}, TypeError, "input"),
    ErrorInput("unknown reduction", {"reduction": "average"}, ValueError, "reduction"),
    ErrorInput("weight length", {"weight": np.ones(2)}, ValueError, "weight", "shape"),
    ErrorInput("weight rank", {"weight": np.ones((1, 3))}, ValueError, "weight", "shape"),
    ErrorInput("weight mixed", {"weight": np.ones(3, np.float32)}, TypeError, "weight"),
    ErrorInput("weight int", {"weight": np.ones(3, np.int64)}, TypeError, "weight"),
    ErrorInput("weight list", {"weight": [1.0, 1.0, 1.0]}, TypeError, "weight"),
    ErrorInput("ignore_index float", {"ignore_index": -100.0}, TypeError, "ignore_index"),
    ErrorInput("ignore_index bool", {"ignore_index": True}, TypeError, "ignore_index"),
]

SPECS = [
    _pair_spec("mse_loss", "difference", {"input == target"}, []),
    _pair_spec("l1_loss", "difference", {"input == target"}, []),
    _pair_spec("binary_cross_entropy", "probability", {"probability 0 or 1"}, OUTSIDE_UNIT),
    _pair_spec("binary_cross_entropy_with_logits", "logits", {"extreme logits"}, []),
    FormulaSpec(
        name="cross_entropy",
        cases=class_cases,
        grad_wrt=("input",),
        reduction_length=_cross_entropy_length,
        integer_args=frozenset({"target"}),
        corners=frozenset(
            {
                *CLASS_CORNERS,
                "extreme logits",
                "class-index target",
                "probability target",
                *SMOOTHINGS,
            }
        ),
        error_base=lambda: {"input": LOGITS, "target": np.array([0, 1]), "reduction": "mean"},
        error_inputs=[
            *CLASS_ERRORS,
            ErrorInput("probability shape", {"target": np.zeros((2, 2))}, ValueError, "target"),
            ErrorInput("mixed", {"target": np.zeros((2, 3), np.float32)}, TypeError, "target"),
            ErrorInput(
                "smoothing above 1", {"label_smoothing": 1.5}, ValueError, "label_smoothing"
            ),
            ErrorInput(
                "smoothing negative", {"label_smoothing": -0.25}, ValueError, "label_smoothing"
            ),
            ErrorInput("smoothing str", {"label_smoothing": "0.1"}, TypeError, "label_smoothing"),
            ErrorInput(
                "ignore_index with probabilities",
                {"target": np.full((2, 3), 1 / 3), "ignore_index": 0},
                ValueError,
                "ignore_index",
            ),
            ErrorInput(
                "positional reduction with reduction",
                {"weight": "sum", "reduction": "none"},
                TypeError,
                "weight",
            ),
        ],
    ),
    FormulaSpec(
        name="nll_loss",
        cases=partial(class_cases, formula="nll_loss"),
        grad_wrt=("input",),
        reduction_length=_reduced_rows,
        integer_args=frozenset({"target"}),
        corners=CLASS_CORNERS,
        error_base=lambda: {"input": LOGITS, "target": np.array([0, 1]), "reduction": "mean"},
        error_inputs=[
            *CLASS_ERRORS,
            ErrorInput("target float", {"target": np.zeros(2)}, TypeError, "target", "integer"),
        ],
    ),
    FormulaSpec(
        name="smooth_l1_loss",
        cases=partial(robust_cases, name="beta"),
        grad_wrt=("input",),
        reduction_length=_reduced_length,
        corners=frozenset({*REDUCTION_CORNERS, "input == target", "|d| = beta", *BETAS}),
        error_base=lambda: {"input": P, "target": P, "reduction": "mean", "beta": 1.0},
        error_inputs=[
            *PAIR_ERRORS,
            ErrorInput("beta negative", {"beta": -1.0}, ValueError, "beta"),
            ErrorInput("beta nan", {"beta": float("nan")}, ValueError, "beta"),
            ErrorInput("beta str", {"beta": "1"}, TypeError, "beta"),
        ],
    ),
    FormulaSpec(
        name="huber_loss",
        cases=partial(robust_cases, name="delta"),
        grad_wrt=("input",),
        reduction_length=_reduced_length,
        corners=frozenset({*REDUCTION_CORNERS, "input == target", "|d| = delta", *DELTAS}),
        error_base=lambda: {"input": P, "target": P, "reduction": "mean", "delta": 1.0},
        error_inputs=[
            *PAIR_ERRORS,
            ErrorInput("delta negative", {"delta": -1.0}, ValueError, "delta"),
            ErrorInput("delta zero", {"delta": 0.0}, ValueError, "delta", "positive"),
            ErrorInput("delta None", {"delta": None}, TypeError, "delta"),
        ],
    ),
    FormulaSpec(
        name="kl_div",
        cases=kl_div_cases,
        grad_wrt=("input",),
        oracle=oracles.kl_div,
        reduction_length=_reduced_length,
        corners=frozenset(
            {
                *REDUCTION_CORNERS,
                "reduction=batchmean",
                "zero target probability",
                "log targets",
            }
        ),
        error_base=lambda: {"input": P, "target": P, "reduction": "batchmean", "log_target": False},
        error_inputs=[
            *PAIR_ERRORS,
            ErrorInput("log_target int", {"log_target": 1}, TypeError, "log_target"),
            ErrorInput("log_target str", {"log_target": "yes"}, TypeError, "log_target"),
        ],
    ),
]
