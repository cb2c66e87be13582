"""Composite networks against their torch.nn twins: gradients, the δ recursion, SGD trajectories.

Each network is built in :mod:`reference_impl.networks`, its grid-valued
weights copied into the equivalent ``torch.nn.Sequential``, and the loss, the
input gradient and every parameter gradient compared through
``comparison.assert_close`` (by way of ``netcases.assert_network_close``) with
the tolerance of ``netcases.network_length``.
Most examples run the vectorized namespace; a few tiny ones the loop namespace.
"""

from __future__ import annotations

import re
from collections.abc import Set
from typing import Any
from unittest.mock import Mock

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings, strategies as st

from oracle_tests import network_oracles
from oracle_tests.netcases import (
    NetCase,
    assert_network_close,
    check_against_torch,
    cnn_cases,
    dense_cases,
    drift_length,
    mlp_cases,
    network_length,
    pool_cases,
    record,
    stacked_conv_cases,
)
from reference_impl import loops, networks, vectorized
from reference_impl.testing import strategies

MLP, CNN = "network: chanchishing's two-layer perceptron", "network: Saraswat's CNN"
POOL, STACKED = "network: pooling", "network: stacked convolutions"
MLP_CORNERS = frozenset({"batch of one", "dead ReLU unit", "ReLU input exactly 0", "float32"})
CNN_CORNERS = {"stride > 1", "dilation > 1", "padding", "overlapping windows", "batch of one"}
STACKED_CORNERS = {"2 convolutions", "3 convolutions", "stride > 1", "dilation > 1", "padding"}
#: label: (strategy, corners its examples must reach besides float32)
NETWORKS: dict[str, tuple[Any, Set[str]]] = {
    # Linear → ReLU → Linear → Sigmoid → BCE
    MLP: (mlp_cases, MLP_CORNERS),
    # 1–3 linear layers, any activation and loss head
    "network: dense": (dense_cases, {"batch of one", "flatten", "no bias"}),
    # max or average pooling between an activation and a linear layer
    POOL: (pool_cases, {"max pool", "avg pool", "overlapping windows", "padding", "ceil_mode"}),
    # Conv2d → ReLU → MaxPool2d → Flatten → Linear → cross-entropy
    CNN: (cnn_cases, CNN_CORNERS),
    # Benaicha's and Diba's: 2 or 3 convolutions, activations between, MSE; the kernel gradient
    # of each but the last needs the input gradient ("full" correlation) of the one after
    STACKED: (stacked_conv_cases, STACKED_CORNERS),
}
#: tiny shapes for the loop namespace, which is slow
LOOP_SIZES = {
    MLP: {"max_batch": 2, "max_in": 2, "max_hidden": 2, "max_out": 1},
    CNN: {"max_batch": 1, "max_extra": 1},
    STACKED: {"max_batch": 1, "max_extra": 1},
}


def any_dtype_case(cases: Any, **kwargs: Any) -> st.SearchStrategy[NetCase]:
    return strategies.dtypes().flatmap(lambda dtype: cases(dtype, **kwargs))


# ------------------------------------------------------------------ gradients vs torch


@pytest.mark.parametrize("label", NETWORKS)
@given(data=st.data())
def test_network_gradients_match_torch(label: str, data: st.DataObject) -> None:
    """Loss, ∂L/∂x and every parameter gradient of the vectorized network, as autograd's."""
    cases, claimed = NETWORKS[label]
    claimed = frozenset(claimed | {"float32"})
    check_against_torch(data.draw(any_dtype_case(cases)), label, claimed=claimed)


@pytest.mark.parametrize("label", LOOP_SIZES)
@settings(max_examples=5)
@given(data=st.data())
def test_loop_namespace_matches_torch(label: str, data: st.DataObject) -> None:
    """The same networks index by index, on tiny shapes."""
    cases = any_dtype_case(NETWORKS[label][0], **LOOP_SIZES[label])
    check_against_torch(data.draw(cases), label, namespace="loops")


@given(any_dtype_case(mlp_cases))
def test_mlp_delta_recursion(case: NetCase) -> None:
    """δ2 = ŷ − y and δ1 = W2ᵀδ2 ⊙ 1[z1 > 0], against torch's intermediate gradients.

    With the mean over the N·k outputs, δ2 = (ŷ − y) / (N·k) row by row. The
    chained backward never forms the cancelled expression, so agreement of
    all three (chained, closed form, autograd) checks the cancellation.
    """
    model, x, target = case.model, case.x, case.target
    dtype, length = case.dtype, network_length(case)
    networks.loss_and_gradients(model, case.loss, x, target, "vectorized")
    chained_delta2, chained_delta1 = model.grad_inputs[3], model.grad_inputs[1]

    w1, b1 = model[0].parameters()["weight"], model[0].parameters()["bias"]
    w2 = model[2].parameters()["weight"]
    z1 = vectorized.linear(x, w1, b1)
    y_hat = model.forward(x)
    delta2 = (y_hat - target) / dtype.type(target.size)
    delta1 = (delta2 @ w2) * (z1 > 0)

    twin = network_oracles.torch_model(model, dtype)
    z1_t = twin[0](torch.from_numpy(x.copy()))
    z1_t.retain_grad()
    z2_t = twin[2](twin[1](z1_t))
    z2_t.retain_grad()
    target_t = torch.from_numpy(target.copy())
    loss_t = torch.nn.functional.binary_cross_entropy(twin[3](z2_t), target_t)
    loss_t.backward()  # type: ignore[no-untyped-call]
    assert z1_t.grad is not None and z2_t.grad is not None
    torch_delta2, torch_delta1 = z2_t.grad.numpy(), z1_t.grad.numpy()

    label = "network: MLP δ recursion"
    for quantity, closed, chained, autograd in [
        ("δ2 = ŷ − y", delta2, chained_delta2, torch_delta2),
        ("δ1 = W2ᵀδ2 ⊙ 1[z1 > 0]", delta1, chained_delta1, torch_delta1),
    ]:
        for actual, name in [(closed, "closed form"), (chained, "chained backward")]:
            names = (name, "torch retain_grad")
            assert_network_close(case, label, quantity, actual, autograd, names, length)
    record(label, "δ recursion = torch", case, MLP_CORNERS)


# ---------------------------------------------------------------------- SGD trajectory

MIN_STEPS = 5
SGD_NETWORKS: dict[str, Any] = {
    "mlp": mlp_cases,
    "dense": dense_cases,
    "stacked convolutions": stacked_conv_cases,
}


def _relu_gates(model: networks.Sequential) -> list[np.ndarray]:
    """``1[z > 0]`` at every ReLU of the last forward pass."""
    return [layer.saved_input > 0 for layer in model if isinstance(layer, networks.ReLU)]


@st.composite
def sgd_runs(draw: st.DrawFn) -> dict[str, Any]:
    dtype = draw(strategies.dtypes(), label="dtype")
    network = draw(st.sampled_from(sorted(SGD_NETWORKS)), label="network")
    case = draw(SGD_NETWORKS[network](dtype), label="case")
    momentum = draw(st.sampled_from([0.0, 0.5, 0.875]), label="momentum")
    nesterov = momentum > 0 and draw(st.booleans(), label="nesterov")
    return {
        "network": network,
        "case": case,
        "steps": draw(st.integers(MIN_STEPS, MIN_STEPS + 2), label="steps"),
        "lr": draw(st.sampled_from([1 / 8, 1 / 16, 1 / 32]), label="lr"),
        "momentum": momentum,
        "dampening": 0.0 if nesterov else draw(st.sampled_from([0.0, 0.25]), label="dampening"),
        "nesterov": nesterov,
        "weight_decay": draw(st.sampled_from([0.0, 1 / 64]), label="weight_decay"),
    }


@given(sgd_runs())
def test_sgd_trajectory_follows_torch(run: dict[str, Any]) -> None:
    """Several full-batch SGD steps (with and without momentum) stay near torch.optim.SGD's.

    The tolerance after step ``s`` is the drift bound of ``netcases.drift_length``.
    The bound holds while both trainers stay on the same smooth piece of the
    loss. A ReLU input within rounding of 0 may switch its gate in one trainer
    and not in the other, and from there the trajectories fork for good
    reasons; such runs are discarded (the gates are compared at every step).
    Max pooling has the same fork at near-ties, so the CNN is left out here.
    """
    case: NetCase = run["case"]
    hyper = {k: run[k] for k in ("lr", "momentum", "dampening", "weight_decay", "nesterov")}
    dtype = case.dtype
    twin = network_oracles.torch_model(case.model, dtype)
    torch_optimizer = torch.optim.SGD(twin.parameters(), **hyper)
    torch_loss = network_oracles.torch_loss(case.loss)
    x_t = torch.from_numpy(case.x.copy())
    target_t = network_oracles.torch_target(case.target)
    optimizer = networks.SGD(case.model, **hyper)
    torch_gates: list[np.ndarray] = []
    for module in twin:
        if isinstance(module, torch.nn.ReLU):
            module.register_forward_hook(
                lambda _, inputs, __: torch_gates.append(inputs[0].detach().numpy() > 0)
            )
    label = "network: SGD trajectory"
    for step in range(1, run["steps"] + 1):
        length = drift_length(case, step)  # before the step's forward: _relu_gates reads it
        _, _, grads = networks.loss_and_gradients(case.model, case.loss, case.x, case.target)
        optimizer.step(grads)
        torch_gates.clear()
        torch_optimizer.zero_grad()
        torch_loss(twin(x_t), target_t).backward()
        torch_optimizer.step()
        gates = _relu_gates(case.model)
        assume(all(np.array_equal(a, b) for a, b in zip(gates, torch_gates, strict=True)))
        expected = {k: v.detach().numpy() for k, v in twin.state_dict().items()}
        for key, value in case.model.state_dict().items():
            quantity, names = f"{key} after step {step}", ("networks.SGD", "torch.optim.SGD")
            sgd = f"\n  SGD: {hyper}"
            assert_network_close(case, label, quantity, value, expected[key], names, length, sgd)
    corners = ["momentum" if run["momentum"] else "plain SGD", run["network"]]
    corners += ["nesterov"] if run["nesterov"] else []
    record(label, "trajectory = torch", case, frozenset({"momentum", "plain SGD"}), *corners)


def test_sgd_training_lowers_the_loss() -> None:
    """A sanity check of the training loop on two separable blobs."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-1.5, 0.5, (16, 2)), rng.normal(1.5, 0.5, (16, 2))])
    y = np.concatenate([np.zeros((16, 1)), np.ones((16, 1))])
    model = networks.Sequential(
        networks.Linear(2, 4, rng=rng),
        networks.ReLU(),
        networks.Linear(4, 1, rng=rng),
        networks.Sigmoid(),
    )
    optimizer = networks.SGD(model, lr=0.5, momentum=0.5)
    losses = [
        networks.train_epoch(model, networks.BCELoss(), optimizer, x, y, 8) for _ in range(10)
    ]
    assert losses[-1] < losses[0] / 2
    assert set(optimizer.buffers) == set(model.state_dict())


# ------------------------------------------------------------------------- the API


def test_reprs_state_dict_and_output_shapes_are_torchs() -> None:
    """``repr`` and the torch twin come from one record, ``arguments``; shapes from the formulas."""
    model = networks.Sequential(
        networks.Conv2d(2, 4, (3, 2), stride=(2, 1), padding=1, groups=2),
        networks.Tanh(),
        networks.AvgPool2d(3, 1, 1, count_include_pad=False),
        networks.MaxPool2d(2, ceil_mode=True),
        networks.Flatten(),
        networks.Linear(24, 3),
        networks.Linear(3, 2, bias=False),
    )
    assert repr(model).splitlines()[1:-1] == [
        "  (0): Conv2d(2, 4, kernel_size=(3, 2), stride=(2, 1), padding=1, dilation=1, groups=2, "
        "bias=True)",
        "  (1): Tanh()",
        "  (2): AvgPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=False, "
        "count_include_pad=False, divisor_override=None)",
        "  (3): MaxPool2d(kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=True)",
        "  (4): Flatten()",
        "  (5): Linear(24, 3, bias=True)",
        "  (6): Linear(3, 2, bias=False)",
    ]
    twin = network_oracles.torch_model(model, np.dtype(np.float64))
    ours = model.state_dict()
    keys = ["0.weight", "0.bias", "5.weight", "5.bias", "6.weight"]
    assert list(ours) == list(twin.state_dict()) == keys
    assert all(ours[key].shape == tuple(value.shape) for key, value in twin.state_dict().items())
    x = torch.zeros((1, 2, 5, 4), dtype=torch.float64)
    for layer, module in zip(model, twin, strict=True):
        shape, x = layer.output_shape(tuple(x.shape)), module(x)
        assert shape == tuple(x.shape), repr(layer)
    functional = networks.Functional("max_pool2d", kernel_size=2, stride=2)
    assert repr(functional) == "Functional('max_pool2d', kernel_size=2, stride=2)"


@pytest.mark.parametrize(
    ("model_namespace", "run_namespace"),
    [("loops", None), (vectorized, None), ("vectorized", loops), (loops, "vectorized")],
)
def test_a_model_runs_differentiates_and_steps_in_one_namespace(
    monkeypatch: pytest.MonkeyPatch, model_namespace: Any, run_namespace: Any
) -> None:
    """Every formula, SGD's ``sgd_step`` too, is the namespace's of the pass (name or module)."""
    counts = {"linear": 1, "linear_backward": 1, "mse_loss": 1, "mse_loss_backward": 1}
    counts["sgd_step"] = 2  # weight and bias
    spies = {(ns, f): Mock(wraps=getattr(ns, f)) for ns in (loops, vectorized) for f in counts}
    for (ns, name), spy in spies.items():
        monkeypatch.setattr(ns, name, spy)
    model = networks.Sequential(networks.Linear(2, 1), namespace=model_namespace)
    x, target = np.ones((1, 2)), np.zeros((1, 1))
    _, _, grads = networks.loss_and_gradients(model, networks.MSELoss(), x, target, run_namespace)
    networks.SGD(model, lr=0.5).step(grads)
    ran = networks.resolve_namespace(model_namespace if run_namespace is None else run_namespace)
    called = {(ns, name): spy.call_count for (ns, name), spy in spies.items() if spy.call_count}
    assert called == {(ran, name): count for name, count in counts.items()}


def test_functional_keywords_none_gradient_second_output_and_pre_forward(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What new layers rely on: arguments by keyword, a ``None`` gradient dropped, a second
    output answered with zeros, a buffer that ``pre_forward`` updates before the formula."""

    def shift(x: Any, *, weight: Any, bias: Any, mean: Any, momentum: float) -> Any:
        return x * weight + bias - mean, x.sum(axis=1)

    def shift_backward(grad: Any, x: Any, *, weight: Any, bias: Any, **_: Any) -> Any:
        grad_y, grad_sums = grad
        assert grad_sums.shape == (2,) and not grad_sums.any()  # the second output is silent
        return grad_y * weight, (grad_y * x).sum(axis=0), None  # bias frozen: no gradient

    class Shift(networks.Functional):
        mean: np.ndarray

        def pre_forward(self, x: Any, ns: Any) -> None:
            self.mean = self.mean + self.hyper["momentum"] * (x.mean(axis=0) - self.mean)

    for ns in (loops, vectorized):
        monkeypatch.setattr(ns, "shift", shift, raising=False)
        monkeypatch.setattr(ns, "shift_backward", shift_backward, raising=False)
    params, buffers = {"weight": np.full(2, 2.0), "bias": np.ones(2)}, {"mean": np.zeros(2)}
    model = networks.Sequential(Shift("shift", params=params, buffers=buffers, momentum=0.5))
    out = model.forward(np.array([[1.0, 3.0], [3.0, 5.0]]))
    grad_x, grads = model.backward(np.ones((2, 2)))
    networks.SGD(model, lr=0.5).step(grads)
    state = model.state_dict()
    assert list(state) == ["0.weight", "0.bias", "0.mean"] and list(grads) == ["0.weight"]
    checks: list[tuple[Any, Any]] = [
        (out, [[2, 5], [6, 9]]),  # with the mean pre_forward set: [1, 2]
        (grad_x, np.full((2, 2), 2)),
        (grads["0.weight"], [4, 8]),
        (state["0.weight"], [0, -2]),
        (state["0.bias"], [1, 1]),
        (state["0.mean"], [1, 2]),
    ]
    assert all(np.array_equal(actual, expected) for actual, expected in checks), checks


ONE = networks.Sequential(networks.Linear(2, 1))  # never run: for the rejections below


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: networks.Sequential(networks.ReLU(), namespace="fast"), ValueError, "namespace"),
        (lambda: networks.Sequential(networks.ReLU(), namespace=np), TypeError, "namespace"),
        (lambda: networks.Sequential(networks.ReLU, networks.ReLU()), TypeError, "layers"),  # type: ignore[arg-type]
        (lambda: networks.MSELoss(reduction="none"), ValueError, "reduction"),
        (lambda: networks.Functional(len), TypeError, "formula"),  # type: ignore[arg-type]
        (lambda: networks.Functional("no_such_formula"), ValueError, "formula"),
        (lambda: networks.Functional("relu", params={"forward": None}), ValueError, "forward"),
        (
            lambda: networks.Functional("relu", params={"saved_input": None}),
            ValueError,
            "saved_input",
        ),
        (lambda: networks.Linear(2.0, 1), TypeError, "in_features"),  # type: ignore[arg-type]
        (lambda: networks.Conv2d(1, 0, 3), ValueError, "out_channels"),
        (lambda: networks.Conv2d(3, 2, 1, groups=2), ValueError, "groups"),
        (lambda: ONE.backward(np.ones((1, 1))), RuntimeError, "before forward"),
        (lambda: ONE.load_state_dict({"0.weight": np.zeros((1, 2))}), KeyError, "missing"),
        (
            lambda: ONE.load_state_dict({"0.weight": np.zeros((2, 1)), "0.bias": 0}),
            ValueError,
            "weight",
        ),
        (lambda: ONE.forward([[1.0, 2.0]]), TypeError, "x"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_are_rejected(make: Any, error: type[Exception], match: str) -> None:
    """The message names the argument as a word ("x" is not found in "mixed")."""
    with pytest.raises(error, match=rf"(?<![\w.]){re.escape(match)}(?!\w)"):
        make()


def test_forward_and_backward_leave_inputs_alone() -> None:
    rng = np.random.default_rng(1)
    model = networks.Sequential(
        networks.Flatten(), networks.Linear(4, 3, rng=rng), networks.Sigmoid()
    )
    x = rng.standard_normal((2, 2, 2))
    target = rng.uniform(size=(2, 3))
    saved_x, saved_state = x.copy(), model.state_dict()
    _, grad_x, grads = networks.loss_and_gradients(model, networks.BCELoss(), x, target)
    assert np.array_equal(x, saved_x)
    for key, value in model.state_dict().items():
        assert np.array_equal(value, saved_state[key])
        index, name = key.split(".")
        assert not np.shares_memory(grads[key], model[int(index)].parameters()[name])
    assert grad_x is not None
    assert grad_x.shape == x.shape and not np.shares_memory(grad_x, x)
