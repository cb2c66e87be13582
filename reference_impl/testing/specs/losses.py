"""Specs of the losses: mse, l1, binary cross-entropy (probabilities and logits), cross-entropy."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference_impl.testing.registry import Case, ErrorInput, FormulaSpec, Steer
from reference_impl.testing.specs.activations import EXTREME_LOGITS
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


@st.composite
def cross_entropy_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer) -> Case:
    batch = 1 if steer.flag(draw, "batch of one") else draw(st.integers(2, 4), label="N")
    classes = draw(st.integers(1, 5), label="C")
    reduction = _reduction(draw, steer)
    extreme = steer.allows("extreme logits")
    x = draw(arrays(dtype, (batch, classes), grid_or(*EXTREME_LOGITS) if extreme else GRID))
    x = _plant(draw, steer, "extreme logits", x, draw(st.sampled_from(EXTREME_LOGITS)))
    corners = {f"reduction={reduction}", "batch of one" if batch == 1 else "batch"}
    if "class-index target" in steer.require or not steer.allows("probability target"):
        indices = True
    elif "probability target" in steer.require or not steer.allows("class-index target"):
        indices = False
    else:
        indices = draw(st.booleans(), label="class-index target")
    if indices:
        target = draw(hnp.arrays(np.int64, (batch,), elements=st.integers(0, classes - 1)))
        corners.add("class-index target")
    else:
        target = draw(arrays(dtype, (batch, classes), PROBABILITIES), label="target")
        corners.add("probability target")
    if np.max(np.abs(x)) >= 89:
        corners.add("extreme logits")
    args = {"input": x, "target": target, "reduction": reduction}
    return Case(args, draw(grad_seeds()), steer.settle(corners))


def _reduced_length(args: Any) -> int:
    return 1 if args["reduction"] == "none" else max(1, int(args["input"].size))


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

SPECS = [
    _pair_spec("mse_loss", "difference", {"input == target"}, []),
    _pair_spec("l1_loss", "difference", {"input == target"}, []),
    _pair_spec("binary_cross_entropy", "probability", {"probability 0 or 1"}, OUTSIDE_UNIT),
    _pair_spec("binary_cross_entropy_with_logits", "logits", {"extreme logits"}, []),
    FormulaSpec(
        name="cross_entropy",
        cases=cross_entropy_cases,
        grad_wrt=("input",),
        reduction_length=_cross_entropy_length,
        integer_args=frozenset({"target"}),
        corners=frozenset(
            {
                "extreme logits",
                "class-index target",
                "probability target",
                "batch of one",
                *REDUCTION_CORNERS,
            }
        ),
        error_base=lambda: {"input": LOGITS, "target": np.array([0, 1]), "reduction": "mean"},
        error_inputs=[
            ErrorInput("index too large", {"target": np.array([0, 3])}, ValueError, "target"),
            ErrorInput("index negative", {"target": np.array([-1, 0])}, ValueError, "target"),
            ErrorInput("index count", {"target": np.array([0, 1, 2])}, ValueError, "target"),
            ErrorInput("probability shape", {"target": np.zeros((2, 2))}, ValueError, "target"),
            ErrorInput("mixed", {"target": np.zeros((2, 3), np.float32)}, TypeError, "target"),
            ErrorInput("target list", {"target": [0, 1]}, TypeError, "target", "numpy"),
            ErrorInput("target bool", {"target": np.array([True, False])}, TypeError, "target"),
            ErrorInput("input rank", {"input": np.zeros(3)}, ValueError, "input", "2 dimensions"),
            ErrorInput("input int", {"input": LOGITS.astype(np.int64)}, TypeError, "input"),
            ErrorInput("unknown reduction", {"reduction": "average"}, ValueError, "reduction"),
        ],
    ),
]
