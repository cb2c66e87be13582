"""Specs of the normalization family: batch_norm, layer_norm, group_norm, dropout.

Every case is valid by construction. Batch norm in training needs more than
one value per channel, so a batch of one always gets spatial positions there;
group norm needs N·(C/G)·∏spatial > 1 (torch's own check), so a batch of one
with one channel per group and no spatial extent gets a second position.

Values are grid values, with the corners planted on purpose: a constant
channel, row or group (σ² = 0, so ε alone sets the scale), the whole input
scaled by 2^20 (σ² ≫ ε) or 2^−20 (σ² ≪ ε: again ε decides), and a set whose
mean sits far from zero relative to its spread (3 + k/256), where x − μ
cancels. Weight and bias are each present or absent.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference_impl.testing import oracles, tolerances
from reference_impl.testing.registry import Case, ErrorInput, FormulaSpec, Steer
from reference_impl.testing.strategies import GRID, arrays, grad_seeds

#: ε values: torch's default, a larger one, and one that dominates grid variances
EPS = st.sampled_from([1e-5, 1e-3, 0.5])
#: momentum values (unused by the forward, validated)
MOMENTUM = st.sampled_from([0.1, 0.0, 0.5, 1.0])
#: running variances: grid values in [0, 4], zero included
RUNNING_VAR = st.integers(0, 64).map(lambda k: k / 16)
#: values near 3, 1/256 apart: the mean is far from zero relative to the spread
OFFSET = st.integers(-16, 16).map(lambda k: 3 + k / 256)
#: exact power-of-two scales for the "huge scale" and "tiny scale" corners
HUGE, TINY = 2.0**20, 2.0**-20

VALUE_CORNERS = ("huge scale", "tiny scale", "mean far from zero")
RANKS = {"2-D input": 2, "3-D input": 3, "4-D input": 4}


def _rank(draw: st.DrawFn, steer: Steer, ranks: tuple[int, ...]) -> int:
    for corner, rank in RANKS.items():
        if corner in steer.require:
            return rank
    allowed = [r for r in ranks if steer.allows(f"{r}-D input")]
    return int(draw(st.sampled_from(allowed), label="rank"))


def _values(
    draw: st.DrawFn, steer: Steer, dtype: np.dtype[Any], shape: tuple[int, ...]
) -> tuple[np.ndarray[Any, Any], set[str]]:
    """Grid values, or values near 3, scaled by 2^±20 when a scale corner is steered."""
    corners: set[str] = set()
    if steer.flag(draw, "mean far from zero"):
        x = draw(arrays(dtype, shape, OFFSET), label="x")
        corners.add("mean far from zero")
    else:
        x = draw(arrays(dtype, shape), label="x")
    if steer.flag(draw, "huge scale"):
        x = (x * HUGE).astype(dtype)
        corners.add("huge scale")
    elif steer.flag(draw, "tiny scale"):
        x = (x * TINY).astype(dtype)
        corners.add("tiny scale")
    return x, corners


def _affine(
    draw: st.DrawFn, steer: Steer, dtype: np.dtype[Any], shape: tuple[int, ...]
) -> tuple[np.ndarray[Any, Any] | None, np.ndarray[Any, Any] | None, set[str]]:
    """Weight and bias of ``shape``, each present or absent, even odds (corners "weight"...)."""
    found: list[np.ndarray[Any, Any] | None] = []
    corners = set()
    for name in ("weight", "bias"):
        if name in steer.fixed:
            value = steer.fixed[name]
        else:
            if f"no {name}" in steer.require or name in steer.exclude:
                present = False
            elif name in steer.require or f"no {name}" in steer.exclude:
                present = True
            else:
                present = draw(st.booleans(), label=f"{name} present")
            value = draw(arrays(dtype, shape), label=name) if present else None
        found.append(value)
        corners.add(f"no {name}" if value is None else name)
    return found[0], found[1], corners


def _make_constant(
    draw: st.DrawFn, x: np.ndarray[Any, Any], index: tuple[Any, ...]
) -> np.ndarray[Any, Any]:
    """A copy of x with ``x[index]`` set to one of its own values (σ² = 0 there)."""
    x = x.copy()
    region = x[index]
    if region.size:
        x[index] = region.reshape(-1)[draw(st.integers(0, region.size - 1), label="constant")]
    return x


# ---------------------------------------------------------------------------- batch_norm


def _batch_shape(
    draw: st.DrawFn, steer: Steer, rank: int, training: bool
) -> tuple[tuple[int, ...], set[str]]:
    """(N, C, *spatial) with more than one value per channel when training."""
    corners: set[str] = set()
    channels = 1 if steer.flag(draw, "one channel") else draw(st.integers(2, 3), label="C")
    spatial_rank = rank - 2
    if steer.flag(draw, "two values per channel"):
        # N · ∏spatial = 2: the two values are the batch, or a batch of one's positions
        if spatial_rank and draw(st.booleans(), label="two positions"):
            spatial = [1] * spatial_rank
            spatial[draw(st.integers(0, spatial_rank - 1), label="axis")] = 2
            batch = 1
        else:
            batch, spatial = 2, [1] * spatial_rank
    else:
        batch = 1 if steer.flag(draw, "batch of one") else draw(st.integers(2, 3), label="N")
        spatial = [draw(st.integers(1, 3), label="spatial") for _ in range(spatial_rank)]
        if training and batch * math.prod(spatial) < 2 and spatial_rank:
            spatial[-1] = draw(st.integers(2, 3), label="spatial")
    shape = (batch, channels, *spatial)
    if batch == 1:
        corners.add("batch of one")
    if channels == 1:
        corners.add("one channel")
    if batch * math.prod(spatial) == 2:
        corners.add("two values per channel")
    return shape, corners


@st.composite
def batch_norm_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer) -> Case:
    """(N, C), (N, C, L) or (N, C, H, W); training or eval; every corner of the module docstring."""
    if "training" in steer.fixed:
        training = bool(steer.fixed["training"])
    else:
        training = not steer.flag(draw, "eval mode")
    rank = _rank(draw, steer, (2, 3, 4))
    if training and rank == 2 and "batch of one" in steer.require:
        rank = 3  # a batch of one needs spatial positions in training
    shape, corners = _batch_shape(draw, steer, rank, training)
    if training and shape[0] * math.prod(shape[2:]) < 2:
        shape = (2, *shape[1:])  # one value per channel is invalid in training
        corners.discard("batch of one")
    corners.add(f"{rank}-D input")
    x, value_corners = _values(draw, steer, dtype, shape)
    corners |= value_corners
    channels = shape[1]
    if steer.flag(draw, "constant channel"):
        c = draw(st.integers(0, channels - 1), label="constant channel")
        x = _make_constant(draw, x, (slice(None), c))
        corners.add("constant channel")
    weight, bias, affine = _affine(draw, steer, dtype, (channels,))
    corners |= affine
    running_mean = running_var = None
    if not training or steer.flag(draw, "running statistics in training"):
        running_mean = draw(arrays(dtype, (channels,)), label="running_mean")
        running_var = draw(arrays(dtype, (channels,), RUNNING_VAR), label="running_var")
        if training:
            corners.add("running statistics in training")
    if not training:
        corners.add("eval mode")
    args = {
        "x": x,
        "running_mean": running_mean,
        "running_var": running_var,
        "weight": weight,
        "bias": bias,
        "training": training,
        "momentum": steer.value(draw, "momentum", MOMENTUM),
        "eps": steer.value(draw, "eps", EPS),
    }
    return Case(args, draw(grad_seeds()), steer.settle(corners))


def _channel_sets(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Batch norm's sets: one row per channel, every (n, position) along it."""
    n, c = x.shape[:2]
    return np.moveaxis(x.reshape(n, c, -1), 1, 0).reshape(c, -1)


def _gain(weight: Any) -> float:
    return 1.0 if weight is None else max(1.0, float(np.max(np.abs(weight), initial=0.0)))


def _batch_norm_length(args: Any) -> int:
    sets = _channel_sets(args["x"])
    if args["training"]:
        kappa, xhat, rstd = tolerances.normalization_sets(sets, args["eps"])
    else:
        kappa, xhat, rstd = tolerances.normalization_sets(
            sets, args["eps"], args["running_mean"], args["running_var"]
        )
    n = sets.shape[1]
    return tolerances.normalization_length(n, n, kappa, xhat, rstd, _gain(args["weight"]))


def _batch_norm_base() -> dict[str, Any]:
    return {
        "x": np.arange(24.0).reshape(3, 2, 4),
        "running_mean": np.zeros(2),
        "running_var": np.ones(2),
        "weight": np.ones(2),
        "bias": np.zeros(2),
        "training": False,
        "momentum": 0.1,
        "eps": 1e-5,
    }


ONE_VALUE = "more than 1 value per channel"
BATCH_NORM_ERRORS = [
    ErrorInput(
        "one value per channel in training",
        {"x": np.zeros((1, 2)), "training": True},
        ValueError,
        "x",
        ONE_VALUE,
    ),
    ErrorInput(
        "one value per channel, 3-D, in training",
        {"x": np.zeros((1, 2, 1)), "training": True},
        ValueError,
        "x",
        ONE_VALUE,
    ),
    ErrorInput(
        "eval without running statistics",
        {"running_mean": None, "running_var": None},
        ValueError,
        "running_mean",
        "eval mode",
    ),
    ErrorInput("running_var alone missing", {"running_var": None}, ValueError, "running_var"),
    ErrorInput("running_mean alone missing", {"running_mean": None}, ValueError, "running_mean"),
    ErrorInput("running_mean length", {"running_mean": np.zeros(3)}, ValueError, "running_mean"),
    ErrorInput("running_var length", {"running_var": np.ones(1)}, ValueError, "running_var"),
    ErrorInput(
        "running_var negative", {"running_var": np.array([1.0, -1.0])}, ValueError, "running_var"
    ),
    ErrorInput("weight length", {"weight": np.ones(3)}, ValueError, "weight", "one value"),
    ErrorInput("weight 2-D", {"weight": np.ones((2, 1))}, ValueError, "weight"),
    ErrorInput("bias length", {"bias": np.zeros(1)}, ValueError, "bias"),
    ErrorInput("x 1-D", {"x": np.zeros(4)}, ValueError, "x", "2, 3 or 4 dimensions"),
    ErrorInput("x 5-D", {"x": np.zeros((2, 2, 2, 2, 2))}, ValueError, "x", "2, 3 or 4"),
    ErrorInput("x list", {"x": [[0.0, 1.0]]}, TypeError, "x", "numpy"),
    ErrorInput("momentum above 1", {"momentum": 1.5}, ValueError, "momentum", r"\[0, 1\]"),
    ErrorInput("momentum negative", {"momentum": -0.1}, ValueError, "momentum"),
    ErrorInput("momentum None", {"momentum": None}, TypeError, "momentum"),
    ErrorInput("eps zero", {"eps": 0.0}, ValueError, "eps", "positive"),
    ErrorInput("eps negative", {"eps": -1e-5}, ValueError, "eps", "positive"),
    ErrorInput("eps nan", {"eps": float("nan")}, ValueError, "eps"),
    ErrorInput("training int", {"training": 1}, TypeError, "training", "bool"),
    ErrorInput("weight int", {"weight": np.ones(2, np.int64)}, TypeError, "weight"),
    ErrorInput(
        "running_var float32", {"running_var": np.ones(2, np.float32)}, TypeError, "running_var"
    ),
]


# ---------------------------------------------------------------------------- layer_norm


@st.composite
def layer_norm_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer) -> Case:
    """Zero to two leading dims, one to three normalized dims; int or tuple normalized_shape."""
    corners: set[str] = set()
    several = steer.flag(draw, "several normalized dims")
    count = draw(st.integers(2, 3), label="normalized dims") if several else 1
    if steer.flag(draw, "one element normalized"):
        normalized = (1,) * count
        corners.add("one element normalized")
    else:
        normalized = tuple(draw(st.integers(1, 4), label="size") for _ in range(count))
        if math.prod(normalized) == 1:
            normalized = (*normalized[:-1], 2)
    if steer.flag(draw, "no leading dims"):
        lead: tuple[int, ...] = ()
    else:
        lead = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2), label="leading"))
    corners.add("several normalized dims" if count > 1 else "one normalized dim")
    if not lead:
        corners.add("no leading dims")
    x, value_corners = _values(draw, steer, dtype, (*lead, *normalized))
    corners |= value_corners
    if steer.flag(draw, "constant row"):
        row = tuple(draw(st.integers(0, n - 1), label="row") for n in lead)
        x = _make_constant(draw, x, row)
        corners.add("constant row")
    weight, bias, affine = _affine(draw, steer, dtype, normalized)
    corners |= affine
    shape_arg: Any = normalized
    if count == 1 and steer.flag(draw, "int normalized_shape"):
        shape_arg = normalized[0]
        corners.add("int normalized_shape")
    elif draw(st.booleans(), label="as list"):
        shape_arg = list(normalized)
    args = {
        "x": x,
        "normalized_shape": shape_arg,
        "weight": weight,
        "bias": bias,
        "eps": steer.value(draw, "eps", EPS),
    }
    return Case(args, draw(grad_seeds()), steer.settle(corners))


def _layer_norm_length(args: Any) -> int:
    shape = args["normalized_shape"]
    size = shape if isinstance(shape, int) else math.prod(shape)
    rows = args["x"].reshape(-1, size)
    kappa, xhat, rstd = tolerances.normalization_sets(rows, args["eps"])
    return tolerances.normalization_length(
        size, rows.shape[0], kappa, xhat, rstd, _gain(args["weight"])
    )


def _layer_norm_base() -> dict[str, Any]:
    return {
        "x": np.arange(24.0).reshape(2, 3, 4),
        "normalized_shape": (3, 4),
        "weight": np.ones((3, 4)),
        "bias": np.zeros((3, 4)),
        "eps": 1e-5,
    }


LAYER_NORM_ERRORS = [
    ErrorInput(
        "normalized_shape not trailing",
        {"normalized_shape": (4, 3)},
        ValueError,
        "normalized_shape",
        "trailing",
    ),
    ErrorInput(
        "normalized_shape longer than x",
        {"normalized_shape": (1, 2, 3, 4), "weight": None, "bias": None},
        ValueError,
        "normalized_shape",
    ),
    ErrorInput(
        "normalized_shape int not trailing",
        {"normalized_shape": 3, "weight": None, "bias": None},
        ValueError,
        "normalized_shape",
    ),
    ErrorInput("normalized_shape empty", {"normalized_shape": ()}, ValueError, "normalized_shape"),
    ErrorInput("normalized_shape float", {"normalized_shape": 4.0}, TypeError, "normalized_shape"),
    ErrorInput(
        "normalized_shape of floats",
        {"normalized_shape": (3.0, 4.0)},
        TypeError,
        "normalized_shape",
    ),
    ErrorInput(
        "normalized_shape zero",
        {"x": np.zeros((2, 0)), "normalized_shape": (0,), "weight": None, "bias": None},
        ValueError,
        "normalized_shape",
    ),
    ErrorInput("weight shape", {"weight": np.ones(4)}, ValueError, "weight", "normalized_shape"),
    ErrorInput("bias shape", {"bias": np.zeros((4, 3))}, ValueError, "bias"),
    ErrorInput("eps zero", {"eps": 0.0}, ValueError, "eps"),
    ErrorInput("x int", {"x": np.zeros((2, 3, 4), np.int32)}, TypeError, "x"),
    ErrorInput("weight float32", {"weight": np.ones((3, 4), np.float32)}, TypeError, "weight"),
]


# ---------------------------------------------------------------------------- group_norm


@st.composite
def group_norm_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer) -> Case:
    """(N, C, *) with C = G · (C/G); num_groups 1, C, or in between."""
    corners: set[str] = set()
    if steer.flag(draw, "num_groups = 1"):
        groups, per_group = 1, draw(st.integers(1, 4), label="channels")
    elif steer.flag(draw, "num_groups = C"):
        groups, per_group = draw(st.integers(1, 4), label="groups"), 1
    else:
        groups = draw(st.integers(2, 3), label="groups")
        per_group = draw(st.integers(2, 3), label="channels per group")
    rank = _rank(draw, steer, (2, 3, 4))
    batch = 1 if steer.flag(draw, "batch of one") else draw(st.integers(2, 3), label="N")
    spatial = [draw(st.integers(1, 3), label="spatial") for _ in range(rank - 2)]
    if batch * per_group * math.prod(spatial) == 1:
        # torch rejects one example with one value per group
        if spatial:
            spatial[-1] = 2
        else:
            per_group = 2
    shape = (batch, groups * per_group, *spatial)
    x, value_corners = _values(draw, steer, dtype, shape)
    corners |= value_corners | {f"{rank}-D input"}
    if steer.flag(draw, "constant group"):
        n = draw(st.integers(0, batch - 1), label="example")
        g = draw(st.integers(0, groups - 1), label="group")
        x = _make_constant(draw, x, (n, slice(g * per_group, (g + 1) * per_group)))
        corners.add("constant group")
    weight, bias, affine = _affine(draw, steer, dtype, (shape[1],))
    corners |= affine
    if groups == 1:
        corners.add("num_groups = 1")
    if per_group == 1:
        corners.add("num_groups = C")
    if 1 < groups < shape[1]:
        corners.add("1 < num_groups < C")
    if batch == 1:
        corners.add("batch of one")
    args = {
        "x": x,
        "num_groups": groups,
        "weight": weight,
        "bias": bias,
        "eps": steer.value(draw, "eps", EPS),
    }
    return Case(args, draw(grad_seeds()), steer.settle(corners))


def _group_norm_length(args: Any) -> int:
    x, groups = args["x"], args["num_groups"]
    sets = x.reshape(x.shape[0] * groups, -1)
    kappa, xhat, rstd = tolerances.normalization_sets(sets, args["eps"])
    positions = x.shape[0] * math.prod(x.shape[2:])
    return tolerances.normalization_length(
        sets.shape[1], positions, kappa, xhat, rstd, _gain(args["weight"])
    )


def _group_norm_base() -> dict[str, Any]:
    return {
        "x": np.arange(24.0).reshape(2, 4, 3),
        "num_groups": 2,
        "weight": np.ones(4),
        "bias": np.zeros(4),
        "eps": 1e-5,
    }


GROUP_NORM_ERRORS = [
    ErrorInput("channels not divisible", {"num_groups": 3}, ValueError, "num_groups", "divisible"),
    ErrorInput("num_groups zero", {"num_groups": 0}, ValueError, "num_groups"),
    ErrorInput("num_groups negative", {"num_groups": -2}, ValueError, "num_groups"),
    ErrorInput("num_groups float", {"num_groups": 2.0}, TypeError, "num_groups"),
    ErrorInput("num_groups bool", {"num_groups": True}, TypeError, "num_groups"),
    ErrorInput("weight length", {"weight": np.ones(3)}, ValueError, "weight"),
    ErrorInput("bias length", {"bias": np.zeros(8)}, ValueError, "bias"),
    ErrorInput("x 1-D", {"x": np.zeros(4)}, ValueError, "x", "at least 2"),
    ErrorInput(
        "one value per group",
        {"x": np.zeros((1, 2)), "weight": None, "bias": None},
        ValueError,
        "x",
        ONE_VALUE,
    ),
    ErrorInput(
        "no value per group",
        {"x": np.zeros((2, 4, 0)), "weight": None, "bias": None},
        ValueError,
        "x",
    ),
    ErrorInput("eps negative", {"eps": -1.0}, ValueError, "eps"),
    ErrorInput("bias complex", {"bias": np.zeros(4, np.complex128)}, TypeError, "bias"),
]


# ---------------------------------------------------------------------------- dropout

#: drop probabilities: the two ends, the even split and a few others
PROBABILITIES = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])


@st.composite
def dropout_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer) -> Case:
    """A mask drawn with every element kept or dropped; p = 0 keeps all, p = 1 drops all."""
    corners: set[str] = set()
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), label="shape")
    x = draw(arrays(dtype, shape, GRID), label="x")
    if steer.flag(draw, "p = 0"):
        p = 0.0
    elif steer.flag(draw, "p = 1"):
        p = 1.0
    else:
        p = steer.value(draw, "p", PROBABILITIES)
    if "training" in steer.fixed:
        training = bool(steer.fixed["training"])
    else:
        training = not steer.flag(draw, "not training")
    if p == 0.0:
        mask = np.ones(shape, dtype=bool)
    elif p == 1.0:
        mask = np.zeros(shape, dtype=bool)
    else:
        mask = draw(hnp.arrays(np.bool_, shape), label="mask")
    mask_arg: Any = mask
    if not training:
        corners.add("not training")
        if steer.flag(draw, "no mask"):
            mask_arg = None
            corners.add("no mask")
    if p == 0.0:
        corners.add("p = 0")
    if p == 1.0:
        corners.add("p = 1")
    args = {"x": x, "mask": mask_arg, "p": p, "training": training}
    return Case(args, draw(grad_seeds()), steer.settle(corners))


def _dropout_base() -> dict[str, Any]:
    return {
        "x": np.arange(6.0).reshape(2, 3),
        "mask": np.array([[True, False, True], [False, True, True]]),
        "p": 0.5,
        "training": True,
    }


DROPOUT_ERRORS = [
    ErrorInput("p negative", {"p": -0.1}, ValueError, "p", r"\[0, 1\]"),
    ErrorInput("p above 1", {"p": 1.5}, ValueError, "p", r"\[0, 1\]"),
    ErrorInput("p nan", {"p": float("nan")}, ValueError, "p"),
    ErrorInput("p str", {"p": "0.5"}, TypeError, "p"),
    ErrorInput("mask shape", {"mask": np.ones((3, 2), dtype=bool)}, ValueError, "mask"),
    ErrorInput("mask float", {"mask": np.ones((2, 3))}, TypeError, "mask", "bool"),
    ErrorInput("mask list", {"mask": [[True] * 3] * 2}, TypeError, "mask"),
    ErrorInput("mask None in training", {"mask": None}, TypeError, "mask"),
    ErrorInput("training int", {"training": 0}, TypeError, "training"),
    ErrorInput("x int", {"x": np.zeros((2, 3), np.int64)}, TypeError, "x"),
]

AFFINE_CORNERS = {"weight", "no weight", "bias", "no bias"}

SPECS = [
    FormulaSpec(
        name="batch_norm",
        cases=batch_norm_cases,
        grad_wrt=("x", "weight", "bias"),
        reduction_length=_batch_norm_length,
        corners=frozenset(
            {
                "2-D input",
                "3-D input",
                "4-D input",
                "batch of one",
                "one channel",
                "two values per channel",
                "constant channel",
                "eval mode",
                "running statistics in training",
                *VALUE_CORNERS,
                *AFFINE_CORNERS,
            }
        ),
        error_base=_batch_norm_base,
        error_inputs=BATCH_NORM_ERRORS,
    ),
    FormulaSpec(
        name="layer_norm",
        cases=layer_norm_cases,
        grad_wrt=("x", "weight", "bias"),
        oracle=oracles.layer_norm,
        reduction_length=_layer_norm_length,
        corners=frozenset(
            {
                "one normalized dim",
                "several normalized dims",
                "int normalized_shape",
                "no leading dims",
                "one element normalized",
                "constant row",
                *VALUE_CORNERS,
                *AFFINE_CORNERS,
            }
        ),
        error_base=_layer_norm_base,
        error_inputs=LAYER_NORM_ERRORS,
    ),
    FormulaSpec(
        name="group_norm",
        cases=group_norm_cases,
        grad_wrt=("x", "weight", "bias"),
        oracle=oracles.group_norm,
        reduction_length=_group_norm_length,
        corners=frozenset(
            {
                "num_groups = 1",
                "num_groups = C",
                "1 < num_groups < C",
                "2-D input",
                "3-D input",
                "4-D input",
                "batch of one",
                "constant group",
                *VALUE_CORNERS,
                *AFFINE_CORNERS,
            }
        ),
        error_base=_group_norm_base,
        error_inputs=GROUP_NORM_ERRORS,
    ),
    FormulaSpec(
        name="dropout",
        cases=dropout_cases,
        grad_wrt=("x",),
        oracle=oracles.dropout,
        corners=frozenset({"p = 0", "p = 1", "not training", "no mask"}),
        error_base=_dropout_base,
        error_inputs=DROPOUT_ERRORS,
    ),
]
