"""Specs of the losses: mse, l1, binary cross-entropy (probabilities and logits), cross-entropy."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from oracle_tests import oracles
from oracle_tests.registry import Case, FormulaSpec
from oracle_tests.specs.activations import EXTREME_LOGITS
from oracle_tests.strategies import GRID, GRID_STEP, arrays, grad_seeds, grid_or

REDUCTIONS = st.sampled_from(["mean", "sum", "none"])
LOSS_SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=5)
#: probabilities on the grid, the ends 0 and 1 included (torch clamps log 0 at −100)
PROBABILITIES = st.integers(0, GRID_STEP).map(lambda k: k / GRID_STEP)


def _base_corners(dtype: np.dtype[Any], reduction: str) -> set[str]:
    corners = {f"reduction={reduction}"}
    if dtype == np.float32:
        corners.add("float32")
    return corners


@st.composite
def pair_cases(
    draw: st.DrawFn,
    dtype: np.dtype[Any],
    inputs: st.SearchStrategy[float],
    targets: st.SearchStrategy[float],
    tie_target: bool,
) -> Case:
    """``input`` and ``target`` of one shape; with ``tie_target``, some targets equal the input."""
    shape = draw(LOSS_SHAPES, label="shape")
    reduction = draw(REDUCTIONS, label="reduction")
    x = draw(arrays(dtype, shape, inputs), label="input")
    y = draw(arrays(dtype, shape, targets), label="target")
    corners = _base_corners(dtype, reduction)
    if tie_target:
        mask = draw(arrays(np.dtype(bool), shape, st.booleans()), label="input == target at")
        y = np.where(mask, x, y)
    if np.any(x == y):
        corners.add("input == target")
    if np.any((x == 0) | (x == 1)):
        corners.add("probability 0 or 1")
    if x.size and np.max(np.abs(x)) >= 89:
        corners.add("extreme logits")
    return Case(
        {"input": x, "target": y, "reduction": reduction}, draw(grad_seeds()), frozenset(corners)
    )


@st.composite
def cross_entropy_cases(draw: st.DrawFn, dtype: np.dtype[Any]) -> Case:
    batch = draw(st.integers(1, 4), label="N")
    classes = draw(st.integers(1, 5), label="C")
    reduction = draw(REDUCTIONS, label="reduction")
    x = draw(arrays(dtype, (batch, classes), grid_or(*EXTREME_LOGITS)), label="input")
    corners = _base_corners(dtype, reduction)
    if draw(st.booleans(), label="class-index target"):
        target = draw(hnp.arrays(np.int64, (batch,), elements=st.integers(0, classes - 1)))
        corners.add("class-index target")
    else:
        target = draw(arrays(dtype, (batch, classes), PROBABILITIES), label="target")
        corners.add("probability target")
    if batch == 1:
        corners.add("batch of one")
    if np.max(np.abs(x)) >= 89:
        corners.add("extreme logits")
    return Case(
        {"input": x, "target": target, "reduction": reduction},
        draw(grad_seeds()),
        frozenset(corners),
    )


def _reduced_length(args: Any) -> int:
    return 1 if args["reduction"] == "none" else max(1, int(args["input"].size))


def _cross_entropy_length(args: Any) -> int:
    batch, classes = args["input"].shape
    return int(classes * (1 if args["reduction"] == "none" else batch))


def _pair_spec(
    name: str,
    oracle: Callable[..., Any],
    inputs: st.SearchStrategy[float],
    targets: st.SearchStrategy[float],
    claims: set[str],
    tie_target: bool = False,
) -> FormulaSpec:
    return FormulaSpec(
        name=name,
        oracle=oracle,
        cases=partial(pair_cases, inputs=inputs, targets=targets, tie_target=tie_target),
        grad_wrt=("input",),
        reduction_length=_reduced_length,
        corners=frozenset(
            {"float32", "reduction=mean", "reduction=sum", "reduction=none", *claims}
        ),
    )


SPECS = [
    _pair_spec("mse_loss", oracles.mse_loss, GRID, GRID, {"input == target"}, tie_target=True),
    _pair_spec("l1_loss", oracles.l1_loss, GRID, GRID, {"input == target"}, tie_target=True),
    _pair_spec(
        "binary_cross_entropy",
        oracles.binary_cross_entropy,
        PROBABILITIES,
        PROBABILITIES,
        {"probability 0 or 1"},
    ),
    _pair_spec(
        "binary_cross_entropy_with_logits",
        oracles.binary_cross_entropy_with_logits,
        grid_or(*EXTREME_LOGITS),
        PROBABILITIES,
        {"extreme logits"},
    ),
    FormulaSpec(
        name="cross_entropy",
        oracle=oracles.cross_entropy,
        cases=cross_entropy_cases,
        grad_wrt=("input",),
        reduction_length=_cross_entropy_length,
        integer_args=frozenset({"target"}),
        corners=frozenset(
            {
                "float32",
                "extreme logits",
                "class-index target",
                "probability target",
                "batch of one",
                "reduction=mean",
                "reduction=none",
            }
        ),
    ),
]
