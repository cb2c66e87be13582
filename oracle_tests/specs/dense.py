"""Spec of the dense layer: ``linear``."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from oracle_tests import oracles
from oracle_tests.registry import Case, FormulaSpec
from oracle_tests.strategies import arrays, grad_seeds


@st.composite
def linear_cases(draw: st.DrawFn, dtype: np.dtype[Any]) -> Case:
    """``x`` of shape (*, in) with zero to two leading axes, batch of one included."""
    batch = draw(
        st.lists(st.integers(1, 4), min_size=0, max_size=2).map(tuple), label="batch shape"
    )
    in_features = draw(st.integers(1, 5), label="in_features")
    out_features = draw(st.integers(1, 5), label="out_features")
    x = draw(arrays(dtype, (*batch, in_features)), label="x")
    weight = draw(arrays(dtype, (out_features, in_features)), label="weight")
    bias = draw(st.none() | arrays(dtype, (out_features,)), label="bias")
    corners = {
        "batch of one" if int(np.prod(batch)) == 1 else "batch",
        "no bias" if bias is None else "bias",
        f"{len(batch) + 1}-D input",
    }
    if dtype == np.float32:
        corners.add("float32")
    return Case({"x": x, "weight": weight, "bias": bias}, draw(grad_seeds()), frozenset(corners))


def _linear_length(args: Any) -> int:
    x = args["x"]
    return int(max(x.shape[-1], args["weight"].shape[0], max(1, x.size // x.shape[-1])))


SPECS = [
    FormulaSpec(
        name="linear",
        oracle=oracles.linear,
        cases=linear_cases,
        grad_wrt=("x", "weight", "bias"),
        reduction_length=_linear_length,
        corners=frozenset({"batch of one", "no bias", "1-D input", "3-D input", "float32"}),
    )
]
