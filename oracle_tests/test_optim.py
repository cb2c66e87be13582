"""Optimizer steps against ``torch.optim``: trajectories, states, wrong steps, argument checks.

* ``sgd_step``: five steps of loops and vectorized follow ``torch.optim.SGD``.
* ``adam_step``, ``adamw_step``, ``rmsprop_step``: eight steps follow
  ``torch.optim.Adam``, ``AdamW`` and ``RMSprop`` (the parameter and every state
  array) within the running error bound of ``tolerances.adam_drift`` /
  ``rmsprop_drift``, drawn over shapes, dtypes and hyper-parameters; each wrong
  step of ``reference_impl/testing/optimizer_errata.py`` is found leaving
  torch's trajectory by ``hypothesis.find`` over the same runs; README's
  "Optimizer errata" table lists exactly those wrong steps.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, find, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import reference_impl.loops as loops
import reference_impl.vectorized as vectorized
from reference_impl.testing import report, strategies, tolerances
from reference_impl.testing.comparison import assert_close, drift_ratio, rerun_hint
from reference_impl.testing.optimizer_errata import (
    STEP_ERRATA,
    StepErratum,
    adam_like_step,
    rmsprop_like_step,
)

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


# =========================================================================== #
# Adaptive optimizers: Adam, AdamW, RMSprop
# =========================================================================== #

#: steps of every adaptive trajectory: enough for AMSGrad's maximum and a
#: momentum buffer to matter, few enough for the loops
ADAPTIVE_STEPS = 8

TORCH_OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam_step": torch.optim.Adam,
    "adamw_step": torch.optim.AdamW,
    "rmsprop_step": torch.optim.RMSprop,
}
STATE_KEYS = {
    "adam_step": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    "adamw_step": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    "rmsprop_step": ("square_avg", "momentum_buffer", "grad_avg"),
}
ADAPTIVE_CORNERS = {
    "adam_step": frozenset(
        {"amsgrad", "maximize", "weight decay", "v falls", "float32", "0-d", "lr 0"}
    ),
    "adamw_step": frozenset({"amsgrad", "maximize", "weight decay", "v falls", "float32", "0-d"}),
    "rmsprop_step": frozenset(
        {"momentum", "centered", "maximize", "weight decay", "v falls", "float32", "0-d"}
    ),
}


@st.composite
def adaptive_runs(draw: st.DrawFn, formula: str) -> dict[str, Any]:
    """A parameter, ``ADAPTIVE_STEPS`` gradients and the hyper-parameters of ``formula``.

    Values on the grid; learning rates, betas, weight decays and momenta
    include exact powers of two and torch's defaults. With ``fade``, the
    second half of the gradients is scaled down (to 0 or by 1/8, exactly), so
    that ``v`` falls: AMSGrad's maximum then differs from ``v``.
    """
    dtype = draw(strategies.dtypes(), label="dtype")
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4), label="shape")
    param = draw(strategies.arrays(dtype, shape), label="param")
    grads = [
        draw(strategies.arrays(dtype, shape), label=f"grad {k}") for k in range(ADAPTIVE_STEPS)
    ]
    fade = draw(st.sampled_from([None, 0.0, 0.125]), label="fade")
    if fade is not None:
        for k in range(ADAPTIVE_STEPS // 2, ADAPTIVE_STEPS):
            grads[k] = np.multiply(grads[k], dtype.type(fade), out=np.empty_like(grads[k]))
    eps = draw(st.sampled_from([1e-8, 2.0**-10, 2.0**-4]), label="eps")
    maximize = draw(st.booleans(), label="maximize")
    hyper: dict[str, Any]
    if formula == "rmsprop_step":
        hyper = {
            "lr": draw(st.sampled_from([1e-2, 2.0**-4, 0.0]), label="lr"),
            "alpha": draw(st.sampled_from([0.99, 0.875, 0.5]), label="alpha"),
            "eps": eps,
            "weight_decay": draw(st.sampled_from([0.0, 2.0**-6, 0.01]), label="weight_decay"),
            "momentum": draw(st.sampled_from([0.0, 0.5, 0.9]), label="momentum"),
            "centered": draw(st.booleans(), label="centered"),
            "maximize": maximize,
        }
    else:
        decays = [0.0, 2.0**-6, 2.0**-3, 0.01] if formula == "adam_step" else [0.01, 0.0, 0.5]
        hyper = {
            "lr": draw(st.sampled_from([1e-3, 2.0**-4, 0.5, 0.0]), label="lr"),
            "betas": draw(
                st.sampled_from([(0.9, 0.999), (0.5, 0.875), (0.0, 0.5), (0.0, 0.0)]),
                label="betas",
            ),
            "eps": eps,
            "weight_decay": draw(st.sampled_from(decays), label="weight_decay"),
            "amsgrad": draw(st.booleans(), label="amsgrad"),
            "maximize": maximize,
        }
    return {"formula": formula, "param": param, "grads": grads, "fade": fade, "hyper": hyper}


def torch_adaptive_trajectory(run: dict[str, Any]) -> list[dict[str, Any]]:
    """``torch.optim``'s default CPU step (single-tensor, no foreach or fused kernel).

    After each step: ``param`` and every state array, as NumPy copies, and ``step``.
    """
    param = torch.nn.Parameter(torch.from_numpy(run["param"].copy()))
    optimizer = TORCH_OPTIMIZERS[run["formula"]]([param], **run["hyper"])
    trajectory = []
    for grad in run["grads"]:
        param.grad = torch.from_numpy(grad.copy())
        optimizer.step()
        state = optimizer.state[param]
        record = {"param": param.detach().numpy().copy(), "step": state["step"].item()}
        record.update({k: v.numpy().copy() for k, v in state.items() if k != "step"})
        trajectory.append(record)
    return trajectory


def reference_adaptive_trajectory(
    step: Callable[..., tuple[np.ndarray, dict[str, Any]]], run: dict[str, Any]
) -> list[dict[str, Any]]:
    """The same run through ``step(param, grad, state, **hyper)``."""
    param, state, trajectory = run["param"], None, []
    for grad in run["grads"]:
        param, state = step(param, grad, state, **run["hyper"])
        trajectory.append({"param": param, **state})
    return trajectory


def drift_bounds(run: dict[str, Any]) -> list[dict[str, np.ndarray]]:
    """Twice the running error bound of ``tolerances``: two implementations, each within it."""
    hyper, dtype = dict(run["hyper"]), run["param"].dtype
    if run["formula"] == "rmsprop_step":
        bounds = tolerances.rmsprop_drift(run["param"], run["grads"], dtype=dtype, **hyper)
    else:
        decoupled = run["formula"] == "adamw_step"
        bounds = tolerances.adam_drift(
            run["param"], run["grads"], dtype=dtype, decoupled=decoupled, **hyper
        )
    return [{key: 2 * bound for key, bound in step.items()} for step in bounds]


def trajectory_disagreement(
    actual: list[dict[str, Any]],
    expected: list[dict[str, Any]],
    bounds: list[dict[str, np.ndarray]],
    keys: tuple[str, ...],
) -> tuple[float, str]:
    """The worst drift ratio over the steps and ``keys``, and where it is."""
    worst, where = 0.0, ""
    for number, (mine, theirs, allowed) in enumerate(zip(actual, expected, bounds, strict=True)):
        for key in keys:
            if key not in theirs and key not in mine:
                continue
            if key not in mine or key not in theirs:
                return float("inf"), f"step {number + 1}: {key} is in only one state"
            ratio, index = drift_ratio(mine[key], theirs[key], allowed[key])
            if ratio > worst:
                a = np.asarray(mine[key])[index] if index else np.asarray(mine[key])
                e = np.asarray(theirs[key])[index] if index else np.asarray(theirs[key])
                b = allowed[key][index] if index else allowed[key]
                worst, where = (
                    ratio,
                    f"{key}{list(index)} after step {number + 1}: {float(a)!r} (ours), "
                    f"{float(e)!r} (torch), allowed |diff| ≤ {float(b):.3e}",
                )
    return worst, where


def adaptive_corners(run: dict[str, Any]) -> frozenset[str]:
    hyper, corners = run["hyper"], set()
    for flag in ("amsgrad", "maximize", "centered"):
        if hyper.get(flag):
            corners.add(flag)
    if hyper["weight_decay"]:
        corners.add("weight decay")
    if hyper.get("momentum"):
        corners.add("momentum")
    if hyper["lr"] == 0:
        corners.add("lr 0")
    if run["fade"] is not None:
        corners.add("v falls")
    if run["param"].dtype == np.float32:
        corners.add("float32")
    if run["param"].ndim == 0:
        corners.add("0-d")
    return frozenset(corners)


def check_adaptive_trajectory(run: dict[str, Any]) -> None:
    """Both namespaces follow torch on the parameter, every state array and the step count."""
    formula = run["formula"]
    expected = torch_adaptive_trajectory(run)
    bounds = drift_bounds(run)
    dtype = run["param"].dtype
    for name, namespace in [("loops", loops), ("vectorized", vectorized)]:
        actual = reference_adaptive_trajectory(getattr(namespace, formula), run)
        for number, (mine, theirs) in enumerate(zip(actual, expected, strict=True)):
            assert set(mine) == set(theirs), f"{name} state keys {sorted(mine)} != torch's"
            assert mine["step"] == theirs["step"] == number + 1
            assert isinstance(mine["step"], int)
            for key, value in mine.items():
                if key != "step":
                    assert value.dtype == dtype and value.shape == run["param"].shape, key
        worst, where = trajectory_disagreement(
            actual, expected, bounds, ("param", *STATE_KEYS[formula])
        )
        report.record_error(formula, worst)
        assert worst <= 1, (
            f"{formula}: {name} leaves torch.optim's trajectory: {where} "
            f"({worst:.3g}× the drift bound); hyper-parameters {run['hyper']}\n{rerun_hint()}"
        )
    report.record_example(
        formula, "trajectory = torch", adaptive_corners(run), ADAPTIVE_CORNERS[formula]
    )


@given(adaptive_runs("adam_step"))
def test_adam_step_trajectory_matches_torch(run: dict[str, Any]) -> None:
    """Eight Adam steps of loops and vectorized follow ``torch.optim.Adam``.

    Over shapes, both dtypes, learning rates (0 included), betas (0 included),
    eps, L2 weight decay, amsgrad and maximize; within twice the running
    error bound of ``tolerances.adam_drift`` on the parameter and on every
    state array. Rejects every ``adam_step`` entry of the optimizer errata
    (see ``test_optimizer_erratum_leaves_torch``).
    """
    check_adaptive_trajectory(run)


@given(adaptive_runs("adamw_step"))
def test_adamw_step_trajectory_matches_torch(run: dict[str, Any]) -> None:
    """Eight AdamW steps follow ``torch.optim.AdamW`` (decoupled decay ``θ(1 − αλ)``).

    Rejects the decay without the learning rate and the L2 decay of Adam.
    """
    check_adaptive_trajectory(run)


@given(adaptive_runs("rmsprop_step"))
def test_rmsprop_step_trajectory_matches_torch(run: dict[str, Any]) -> None:
    """Eight RMSprop steps follow ``torch.optim.RMSprop``, with momentum and centering.

    Within twice ``tolerances.rmsprop_drift``; rejects ``ε`` inside the root.
    """
    check_adaptive_trajectory(run)


# --------------------------------------------------------------------------- wrong steps

SHRINK = bool(os.environ.get("ERRATA_SHRINK"))
SEARCH = settings(
    max_examples=300,
    phases=[Phase.generate, Phase.shrink] if SHRINK else [Phase.generate],
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def leaves_torch(step: Callable[..., Any], run: dict[str, Any]) -> bool:
    """Whether ``step``'s parameter trajectory leaves torch's by more than the drift bound."""
    actual = reference_adaptive_trajectory(step, run)
    worst, _ = trajectory_disagreement(
        actual, torch_adaptive_trajectory(run), drift_bounds(run), ("param",)
    )
    return worst > 1


def baseline_step(formula: str) -> Callable[..., Any]:
    """The textbook step of ``formula`` that the wrong steps switch one thing in."""
    if formula == "rmsprop_step":
        return rmsprop_like_step

    def step(*args: Any, **kwargs: Any) -> Any:
        return adam_like_step(*args, decoupled=formula == "adamw_step", **kwargs)

    return step


@pytest.mark.parametrize("formula", sorted(TORCH_OPTIMIZERS))
@given(data=st.data())
def test_wrong_step_baseline_follows_torch(formula: str, data: st.DataObject) -> None:
    """With no switch set, the steps the wrong steps are built from follow torch.

    So each wrong step differs from a right one by exactly its mistake. The
    baseline computes ``m`` as ``β₁m + (1 − β₁)g`` (not ``lerp``) and divides
    ``v`` by ``1 − β₂ᵗ`` before the root: other roundings, within the bound.
    """
    run = data.draw(adaptive_runs(formula), label="run")
    actual = reference_adaptive_trajectory(baseline_step(formula), run)
    worst, where = trajectory_disagreement(
        actual, torch_adaptive_trajectory(run), drift_bounds(run), ("param",)
    )
    assert worst <= 1, f"{formula} baseline: {where} ({worst:.3g}× the drift bound)"


@pytest.mark.errata
@pytest.mark.parametrize("erratum", STEP_ERRATA, ids=lambda e: f"{e.formula}-{e.name}")
def test_optimizer_erratum_leaves_torch(erratum: StepErratum) -> None:
    """``hypothesis.find`` draws runs until the erratum's trajectory leaves torch's.

    Fails if none of 300 runs does: the run strategy would then miss the corner
    where the mistake shows. The references agree with torch on the run found.
    ``ERRATA_SHRINK=1 pytest -k NAME -s`` prints the shrunk run, recorded in the
    wrong step's docstring.
    """
    run = find(
        adaptive_runs(erratum.formula),
        lambda run: leaves_torch(erratum.step, run),
        settings=SEARCH,
    )
    with report.paused():
        check_adaptive_trajectory(run)
    report.record_example(erratum.formula, "erratum rejected", frozenset(), frozenset())
    print(f"{erratum.name}: {run['hyper']}, fade={run['fade']}, dtype {run['param'].dtype}")
    print(f"  param = {run['param'].tolist()!r}")
    for k, grad in enumerate(run["grads"]):
        print(f"  grad {k + 1} = {grad.tolist()!r}")


README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_optimizer_errata_table_lists_every_wrong_step() -> None:
    """README's "Optimizer errata" sub-table names exactly the wrong steps, with their optimizer."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Errata catalog\n", 1)[1].split("\n## ", 1)[0]
    table = section.split("\n### Optimizer errata\n", 1)[1].split("\n### ", 1)[0]
    rows = dict(re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|", table, flags=re.MULTILINE))
    assert rows == {e.name: e.formula for e in STEP_ERRATA}


# --------------------------------------------------------------------------- states and corners


@pytest.mark.parametrize("formula", sorted(TORCH_OPTIMIZERS))
def test_adaptive_step_state_loads_into_torch(formula: str, namespace: ModuleType) -> None:
    """Our state after three steps, loaded into ``torch.optim`` as it is, continues like ours.

    ``step`` becomes a 0-d float32 tensor, the arrays tensors: the keys are the same.
    Rejects a state whose arrays hold other quantities under torch's names (the
    bias-corrected moments, ``lr``-scaled buffers).
    """
    rng = np.random.default_rng(7)
    hyper: dict[str, Any] = (
        {"lr": 0.05, "momentum": 0.5, "centered": True, "weight_decay": 0.01}
        if formula == "rmsprop_step"
        else {"lr": 0.05, "amsgrad": True, "weight_decay": 0.01}
    )
    step = getattr(namespace, formula)
    param, state = rng.standard_normal((2, 3)), None
    for _ in range(3):
        param, state = step(param, rng.standard_normal((2, 3)), state, **hyper)
    assert state is not None
    tensor = torch.nn.Parameter(torch.from_numpy(param.copy()))
    optimizer = TORCH_OPTIMIZERS[formula]([tensor], **hyper)
    optimizer.state[tensor] = {
        key: torch.tensor(float(value)) if key == "step" else torch.from_numpy(value.copy())
        for key, value in state.items()
    }
    for _ in range(3):
        grad = rng.standard_normal((2, 3))
        param, state = step(param, grad, state, **hyper)
        tensor.grad = torch.from_numpy(grad)
        optimizer.step()
    np.testing.assert_allclose(param, tensor.detach().numpy(), rtol=1e-13, atol=1e-15)
    assert state["step"] == int(optimizer.state[tensor]["step"].item()) == 6


@pytest.mark.parametrize("formula", sorted(TORCH_OPTIMIZERS))
def test_adaptive_step_does_not_mutate(formula: str, namespace: ModuleType) -> None:
    """Inputs unchanged; the new parameter and state arrays are fresh and distinct."""
    hyper: dict[str, Any] = (
        {"momentum": 0.5, "centered": True} if formula == "rmsprop_step" else {"amsgrad": True}
    )
    step = getattr(namespace, formula)
    param, grad = np.arange(6.0).reshape(2, 3), np.ones((2, 3))
    _, state = step(param, grad, None, **hyper)
    saved = param.copy(), grad.copy(), {k: np.copy(v) for k, v in state.items()}
    new_param, new_state = step(param, grad, state, **hyper)
    assert np.array_equal(param, saved[0]) and np.array_equal(grad, saved[1])
    assert all(np.array_equal(state[k], v) for k, v in saved[2].items())
    outputs = [new_param, *(v for k, v in new_state.items() if k != "step")]
    inputs = [param, grad, *(v for k, v in state.items() if k != "step")]
    for i, out in enumerate(outputs):
        assert not any(np.shares_memory(out, x) for x in inputs)
        assert not any(np.shares_memory(out, other) for other in outputs[i + 1 :])


def test_adam_step_first_step_is_the_sign(namespace: ModuleType) -> None:
    """Kingma and Ba, §2: the first bias-corrected step is ``α g/(|g| + ε)``, ``±α`` for ε = 0.

    A zero gradient with ``eps = 0`` gives ``0/0``: ``nan``, as in torch, without a warning.
    Rejects a missing bias correction (the step would be ``α(1 − β₁)/√(1 − β₂)``).
    """
    param = np.array([1.0, 1.0, 1.0, 1.0])
    grad = np.array([0.5, -4.0, 1.0 / 16, 0.0])
    new_param, state = namespace.adam_step(param, grad, lr=0.25, eps=0.0)
    np.testing.assert_array_equal(new_param[:3], [0.75, 1.25, 0.75])
    assert np.isnan(new_param[3])
    assert state["step"] == 1
    tensor = torch.nn.Parameter(torch.from_numpy(param.copy()))
    optimizer = torch.optim.Adam([tensor], lr=0.25, eps=0.0)
    tensor.grad = torch.from_numpy(grad.copy())
    optimizer.step()
    np.testing.assert_array_equal(new_param, tensor.detach().numpy())


def test_adamw_step_decay_below_float32_resolution(namespace: ModuleType) -> None:
    """``1 − αλ`` rounds to 1 in float32 when ``αλ < 2⁻²⁵``: no decay, as in torch.

    torch multiplies by the factor in the parameter's dtype (computed in double,
    rounded once); a reference computing ``θ − αλθ`` would decay.
    """
    param = np.array([3.0, -2.0], dtype=np.float32)
    grad = np.zeros(2, dtype=np.float32)
    new_param, _ = namespace.adamw_step(param, grad, lr=1e-4, weight_decay=1e-4)
    tensor = torch.nn.Parameter(torch.from_numpy(param.copy()))
    optimizer = torch.optim.AdamW([tensor], lr=1e-4, weight_decay=1e-4)
    tensor.grad = torch.from_numpy(grad.copy())
    optimizer.step()
    np.testing.assert_array_equal(tensor.detach().numpy(), param)
    if namespace is vectorized:
        np.testing.assert_array_equal(new_param, param)
    else:  # the loop computes θ(1 − αλ) in double and rounds once: within half an ulp
        np.testing.assert_allclose(new_param, param, rtol=2**-24)


_SGD_STATE = {"momentum_buffer": np.zeros((2, 3))}
_ADAM_STATE = {"step": 1, "exp_avg": np.zeros((2, 3)), "exp_avg_sq": np.zeros((2, 3))}
_RMSPROP_STATE = {"step": 1, "square_avg": np.zeros((2, 3))}

_COMMON_ERRORS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"lr": -0.1}, ValueError, "lr"),
    ({"lr": float("nan")}, ValueError, "lr"),
    ({"lr": "0.1"}, TypeError, "lr"),
    ({"eps": -1e-8}, ValueError, "eps"),
    ({"weight_decay": -0.01}, ValueError, "weight_decay"),
    ({"maximize": 1}, TypeError, "maximize"),
    ({"grad": np.ones(3)}, ValueError, "grad"),
    ({"grad": np.ones((2, 3), dtype=np.float32)}, TypeError, "grad"),
    ({"param": [[0.0] * 3] * 2}, TypeError, "param"),
    ({"state": _SGD_STATE}, ValueError, "state"),
    ({"state": [1, 2]}, TypeError, "state"),
]
_ADAM_ERRORS = [
    *_COMMON_ERRORS,
    ({"betas": (1.0, 0.999)}, ValueError, "betas"),
    ({"betas": (0.9, -0.5)}, ValueError, "betas"),
    ({"betas": (0.9, float("inf"))}, ValueError, "betas"),
    ({"betas": 0.9}, TypeError, "betas"),
    ({"betas": (0.9, 0.99, 0.999)}, TypeError, "betas"),
    ({"betas": ("0.9", 0.999)}, TypeError, "betas"),
    ({"amsgrad": "yes"}, TypeError, "amsgrad"),
    ({"state": _RMSPROP_STATE}, ValueError, "state"),
    ({"state": _ADAM_STATE, "amsgrad": True}, ValueError, "state"),
    ({"state": {**_ADAM_STATE, "exp_avg": np.zeros(3)}}, ValueError, "state"),
    ({"state": {**_ADAM_STATE, "exp_avg": np.zeros((2, 3), np.float32)}}, TypeError, "state"),
    ({"state": {**_ADAM_STATE, "exp_avg_sq": [[0.0] * 3] * 2}}, TypeError, "state"),
    ({"state": {**_ADAM_STATE, "step": -1}}, ValueError, "state"),
    ({"state": {**_ADAM_STATE, "step": 1.5}}, TypeError, "state"),
    ({"state": {**_ADAM_STATE, "step": "1"}}, TypeError, "state"),
]
_RMSPROP_ERRORS = [
    *_COMMON_ERRORS,
    ({"alpha": -0.5}, ValueError, "alpha"),
    ({"alpha": 1.5}, ValueError, "alpha"),
    ({"momentum": -0.9}, ValueError, "momentum"),
    ({"centered": 1}, TypeError, "centered"),
    ({"state": _ADAM_STATE}, ValueError, "state"),
    ({"state": _RMSPROP_STATE, "momentum": 0.9}, ValueError, "state"),
    ({"state": _RMSPROP_STATE, "centered": True}, ValueError, "state"),
    ({"state": {**_RMSPROP_STATE, "square_avg": np.zeros((3, 2))}}, ValueError, "state"),
]
_BAD_CALLS = [
    pytest.param(formula, kwargs, error, word, id=f"{formula}-{word}-{i}")
    for formula, table in [
        ("adam_step", _ADAM_ERRORS),
        ("adamw_step", _ADAM_ERRORS),
        ("rmsprop_step", _RMSPROP_ERRORS),
    ]
    for i, (kwargs, error, word) in enumerate(table)
]


@pytest.mark.parametrize(("formula", "kwargs", "error", "word"), _BAD_CALLS)
def test_adaptive_step_rejects_bad_arguments(
    namespace: ModuleType, formula: str, kwargs: dict[str, Any], error: type[Exception], word: str
) -> None:
    """Each bad argument raises ``ValueError``/``TypeError`` naming it as a word.

    A state from another optimizer (SGD's buffer, RMSprop's ``square_avg`` in
    Adam, Adam's moments in RMSprop) or from other options (``amsgrad``,
    ``momentum``, ``centered``) is rejected by its keys.
    """
    args: dict[str, Any] = {"param": np.zeros((2, 3)), "grad": np.ones((2, 3))}
    args.update(kwargs)
    with pytest.raises(error, match=rf"(?<![\w.]){re.escape(word)}(?!\w)"):
        getattr(namespace, formula)(**args)
