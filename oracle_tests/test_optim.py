"""sgd_step: loop, vectorized and torch.optim.SGD over several steps, and its argument checks."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import reference_impl.loops as loops
import reference_impl.vectorized as vectorized
from reference_impl.testing import report, strategies
from reference_impl.testing.comparison import assert_close

STEPS = 5


@st.composite
def sgd_runs(draw: st.DrawFn) -> dict[str, Any]:
    dtype = draw(strategies.dtypes(), label="dtype")
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4), label="shape")
    momentum = draw(st.sampled_from([0.0, 0.5, 0.9]), label="momentum")
    nesterov = momentum > 0 and draw(st.booleans(), label="nesterov")
    dampening = 0.0 if nesterov else draw(st.sampled_from([0.0, 0.25]), label="dampening")
    return {
        "param": draw(strategies.arrays(dtype, shape), label="param"),
        "grads": [draw(strategies.arrays(dtype, shape), label=f"grad {k}") for k in range(STEPS)],
        "lr": draw(st.sampled_from([0.0, 0.01, 0.1, 0.5]), label="lr"),
        "momentum": momentum,
        "dampening": dampening,
        "weight_decay": draw(st.sampled_from([0.0, 0.01]), label="weight_decay"),
        "nesterov": nesterov,
    }


def torch_trajectory(run: dict[str, Any]) -> list[np.ndarray]:
    param = torch.nn.Parameter(torch.from_numpy(run["param"].copy()))
    optimizer = torch.optim.SGD(
        [param],
        lr=run["lr"],
        momentum=run["momentum"],
        dampening=run["dampening"],
        weight_decay=run["weight_decay"],
        nesterov=run["nesterov"],
    )
    trajectory = []
    for grad in run["grads"]:
        param.grad = torch.from_numpy(grad.copy())
        optimizer.step()
        trajectory.append(param.detach().numpy().copy())
    return trajectory


def reference_trajectory(namespace: ModuleType, run: dict[str, Any]) -> list[np.ndarray]:
    param, buffer, trajectory = run["param"], None, []
    hyper = {k: run[k] for k in ("lr", "momentum", "dampening", "weight_decay", "nesterov")}
    for grad in run["grads"]:
        param, buffer = namespace.sgd_step(param, grad, momentum_buffer=buffer, **hyper)
        assert (buffer is None) == (run["momentum"] == 0)
        trajectory.append(param)
    return trajectory


@given(sgd_runs())
def test_sgd_step_trajectory_matches_torch(run: dict[str, Any]) -> None:
    """Five steps of loop and vectorized SGD follow torch.optim.SGD.

    Rejects: a momentum buffer initialised to 0 instead of the first step's
    gradient, dampening applied on the first step, weight decay added after
    the momentum, Nesterov's look-ahead dropped.
    Each step adds at most a few roundings per element, so after ``STEPS``
    steps the drift is bounded by the tolerance for a reduction of ``4 · STEPS``.
    """
    dtype = run["param"].dtype
    expected = torch_trajectory(run)
    for name, namespace in [("loops", loops), ("vectorized", vectorized)]:
        for step, (actual, wanted) in enumerate(
            zip(reference_trajectory(namespace, run), expected, strict=True)
        ):
            assert actual.dtype == dtype
            assert_close(
                actual,
                wanted,
                quantity=f"param after step {step + 1}",
                actual_name=name,
                expected_name="torch.optim.SGD",
                formula="sgd_step",
                dtype=dtype,
                reduction_length=4 * STEPS,
            )
    corners = {"momentum" if run["momentum"] else "plain", "nesterov" if run["nesterov"] else ""}
    if dtype == np.float32:
        corners.add("float32")
    claimed = frozenset({"momentum", "plain", "float32"})
    report.record_example("sgd_step", "trajectory = torch", frozenset(corners - {""}), claimed)


def test_sgd_does_not_mutate(namespace: ModuleType) -> None:
    param = np.arange(6.0).reshape(2, 3)
    grad = np.ones((2, 3))
    buffer = np.full((2, 3), 0.5)
    saved = param.copy(), grad.copy(), buffer.copy()
    new_param, new_buffer = namespace.sgd_step(
        param, grad, 0.1, momentum=0.9, momentum_buffer=buffer
    )
    for before, after in zip(saved, (param, grad, buffer), strict=True):
        assert np.array_equal(before, after)
    assert not np.shares_memory(new_param, param)
    assert new_buffer is not None and not np.shares_memory(new_buffer, buffer)


def test_plain_sgd_is_the_seed_update(namespace: ModuleType) -> None:
    """Benaicha (2023): w ← w − α · (mean gradient over the batch)."""
    w = np.array([0.2, 0.5])
    per_example = np.array([[-20.0, -2.0], [-30.0, -4.0]])
    new_w, buffer = namespace.sgd_step(w, per_example.mean(axis=0), 0.01)
    assert buffer is None
    np.testing.assert_allclose(new_w, [0.45, 0.53])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lr": -0.1}, ValueError, "lr"),
        ({"lr": float("nan")}, ValueError, "lr"),
        ({"lr": "0.1"}, TypeError, "lr"),
        ({"momentum": -0.5}, ValueError, "momentum"),
        ({"weight_decay": -1.0}, ValueError, "weight_decay"),
        ({"nesterov": True}, ValueError, "nesterov"),
        ({"nesterov": True, "momentum": 0.9, "dampening": 0.1}, ValueError, "nesterov"),
        ({"nesterov": 1}, TypeError, "nesterov"),
        ({"grad": np.ones(3)}, ValueError, "grad"),
        ({"grad": np.ones((2, 3), dtype=np.float32)}, TypeError, "grad"),
        ({"grad": np.ones((2, 3), dtype=np.int64)}, TypeError, "grad"),
        ({"momentum": 0.9, "momentum_buffer": np.ones(2)}, ValueError, "momentum_buffer"),
        ({"param": [[1.0, 2.0, 3.0]] * 2}, TypeError, "param"),
    ],
)
def test_sgd_rejects_bad_arguments(
    namespace: ModuleType, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    args: dict[str, Any] = {"param": np.zeros((2, 3)), "grad": np.ones((2, 3)), "lr": 0.1}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        namespace.sgd_step(**args)
