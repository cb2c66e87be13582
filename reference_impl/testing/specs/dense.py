"""Spec of the dense layer: ``linear``."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from reference_impl.testing.registry import Case, ErrorInput, FormulaSpec, Steer
from reference_impl.testing.strategies import arrays, grad_seeds


@st.composite
def linear_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer) -> Case:
    """``x`` of shape (*, in) with zero to two leading axes, batch of one included."""
    if steer.flag(draw, "batch of one"):
        batch: tuple[int, ...] = draw(st.sampled_from([(), (1,), (1, 1)]), label="batch shape")
    else:
        batch = draw(
            st.lists(st.integers(1, 4), min_size=1, max_size=2)
            .map(tuple)
            .filter(lambda shape: int(np.prod(shape)) > 1),
            label="batch shape",
        )
    in_features = draw(st.integers(1, 5), label="in_features")
    out_features = draw(st.integers(1, 5), label="out_features")
    x = draw(arrays(dtype, (*batch, in_features)), label="x")
    weight = draw(arrays(dtype, (out_features, in_features)), label="weight")
    with_bias = "bias" not in steer.fixed and steer.flag(draw, "bias")
    bias = draw(arrays(dtype, (out_features,)), label="bias") if with_bias else None
    corners = {
        "batch of one" if int(np.prod(batch)) == 1 else "batch",
        "bias" if with_bias else "no bias",
        f"{len(batch) + 1}-D input",
    }
    return Case({"x": x, "weight": weight, "bias": bias}, draw(grad_seeds()), steer.settle(corners))


def _linear_length(args: Any) -> int:
    x = args["x"]
    return int(max(x.shape[-1], args["weight"].shape[0], max(1, x.size // x.shape[-1])))


def _good() -> dict[str, Any]:
    return {"x": np.zeros((3, 4)), "weight": np.zeros((2, 4)), "bias": np.zeros(2)}


SPECS = [
    FormulaSpec(
        name="linear",
        cases=linear_cases,
        grad_wrt=("x", "weight", "bias"),
        reduction_length=_linear_length,
        corners=frozenset({"batch of one", "bias", "no bias", "1-D input", "3-D input"}),
        error_base=_good,
        error_inputs=[
            ErrorInput("features", {"x": np.zeros((3, 5))}, ValueError, "x", "input features"),
            ErrorInput("x 0-D", {"x": np.zeros(())}, ValueError, "x", "at least 1 dimension"),
            ErrorInput("weight rank", {"weight": np.zeros(4)}, ValueError, "weight"),
            ErrorInput("bias length", {"bias": np.zeros(3)}, ValueError, "bias", "shape"),
            ErrorInput("bias rank", {"bias": np.zeros((1, 2))}, ValueError, "bias"),
            ErrorInput("x list", {"x": np.zeros((3, 4)).tolist()}, TypeError, "x", "numpy"),
            ErrorInput("mixed", {"weight": np.zeros((2, 4), np.float32)}, TypeError, "weight"),
            ErrorInput("x int", {"x": np.zeros((3, 4), np.int32)}, TypeError, "x", "dtype"),
            ErrorInput("bias complex", {"bias": np.zeros(2, np.complex64)}, TypeError, "bias"),
        ],
    )
]
