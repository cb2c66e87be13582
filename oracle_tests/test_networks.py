"""Composite networks against their torch.nn twins: gradients, the δ recursion, SGD trajectories.

Each network is built in :mod:`reference_impl.networks`, its grid-valued
weights copied into the equivalent ``torch.nn.Sequential``, and the loss, the
input gradient and every parameter gradient compared through
``comparison.assert_close`` with the tolerance of ``netcases.network_length``.
Most examples run the vectorized namespace; a few tiny ones the loop namespace.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings, strategies as st

from oracle_tests import network_oracles
from oracle_tests.netcases import (
    NetCase,
    check_against_torch,
    cnn_cases,
    dense_cases,
    mlp_cases,
    network_length,
    pool_cases,
    stacked_conv_cases,
)
from reference_impl import loops, networks, vectorized
from reference_impl.testing import report, strategies
from reference_impl.testing.comparison import assert_close

MLP_CORNERS = frozenset({"batch of one", "dead ReLU unit", "ReLU input exactly 0", "float32"})
DENSE_CORNERS = frozenset({"batch of one", "flatten", "no bias", "float32"})


def any_dtype_case(cases: Any, **kwargs: Any) -> st.SearchStrategy[NetCase]:
    return strategies.dtypes().flatmap(lambda dtype: cases(dtype, **kwargs))


# ------------------------------------------------------------------ gradients vs torch


@given(any_dtype_case(mlp_cases))
def test_mlp_gradients_match_torch(case: NetCase) -> None:
    """Seed 003: Linear → ReLU → Linear → Sigmoid → BCE, every gradient as autograd's."""
    check_against_torch(case, "network: MLP (seed 003)", claimed=MLP_CORNERS)


@given(any_dtype_case(dense_cases))
def test_dense_networks_match_torch(case: NetCase) -> None:
    """Drawn dense architectures (1–3 layers, any activation and loss head)."""
    check_against_torch(case, "network: dense", claimed=DENSE_CORNERS)


POOL_CORNERS = frozenset(
    {"max pool", "avg pool", "overlapping windows", "padding", "ceil_mode", "float32"}
)


@given(any_dtype_case(pool_cases))
def test_pooling_networks_match_torch(case: NetCase) -> None:
    """Max or average pooling between an activation and a linear layer."""
    check_against_torch(case, "network: pooling", claimed=POOL_CORNERS)


CNN_CORNERS = frozenset(
    {"stride > 1", "dilation > 1", "padding", "overlapping windows", "batch of one", "float32"}
)
STACKED_CORNERS = frozenset(
    {"2 convolutions", "3 convolutions", "stride > 1", "dilation > 1", "padding", "float32"}
)


@given(any_dtype_case(cnn_cases))
def test_cnn_gradients_match_torch(case: NetCase) -> None:
    """Seed 002: Conv2d → ReLU → MaxPool2d → Flatten → Linear → softmax cross-entropy."""
    check_against_torch(case, "network: CNN (seed 002)", claimed=CNN_CORNERS)


@given(any_dtype_case(stacked_conv_cases))
def test_stacked_convolutions_match_torch(case: NetCase) -> None:
    """Seeds 000 and 004: two or three convolutions with activations between, MSE loss.

    The kernel gradient of every convolution but the last needs the input
    gradient (the "full" correlation with the rotated kernel) of the one after.
    """
    check_against_torch(case, "network: stacked convolutions", claimed=STACKED_CORNERS)


@settings(max_examples=3)
@given(any_dtype_case(cnn_cases, max_batch=1, max_extra=1))
def test_loop_namespace_cnn_matches_torch(case: NetCase) -> None:
    """The CNN index by index, on tiny images."""
    check_against_torch(case, "network: CNN (seed 002)", namespace="loops")


@settings(max_examples=3)
@given(any_dtype_case(stacked_conv_cases, max_batch=1, max_extra=1))
def test_loop_namespace_stacked_convolutions_match_torch(case: NetCase) -> None:
    check_against_torch(case, "network: stacked convolutions", namespace="loops")


@settings(max_examples=5)
@given(any_dtype_case(mlp_cases, max_batch=2, max_in=2, max_hidden=2, max_out=1))
def test_loop_namespace_mlp_matches_torch(case: NetCase) -> None:
    """The same MLP index by index (tiny shapes: the loop namespace is slow)."""
    check_against_torch(case, "network: MLP (seed 003)", namespace="loops")


@given(any_dtype_case(mlp_cases))
def test_mlp_delta_recursion(case: NetCase) -> None:
    """δ2 = ŷ − y and δ1 = W2ᵀδ2 ⊙ 1[z1 > 0], against torch's intermediate gradients.

    With the mean over the N·k outputs, δ2 = (ŷ − y) / (N·k) row by row. The
    chained backward never forms the cancelled expression, so agreement of
    all three (chained, closed form, autograd) checks the cancellation.
    """
    model, x, target = case.model, case.x, case.target
    dtype = case.dtype
    length = network_length(case)
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
    loss_t = torch.nn.functional.binary_cross_entropy(
        twin[3](z2_t), torch.from_numpy(target.copy())
    )
    loss_t.backward()  # type: ignore[no-untyped-call]
    assert z1_t.grad is not None and z2_t.grad is not None
    torch_delta2, torch_delta1 = z2_t.grad.numpy(), z1_t.grad.numpy()

    label = "network: MLP δ recursion"
    for quantity, closed, chained, autograd in [
        ("δ2 = ŷ − y", delta2, chained_delta2, torch_delta2),
        ("δ1 = W2ᵀδ2 ⊙ 1[z1 > 0]", delta1, chained_delta1, torch_delta1),
    ]:
        for actual, actual_name in [(closed, "closed form"), (chained, "chained backward")]:
            assert_close(
                actual,
                autograd,
                quantity=quantity,
                actual_name=actual_name,
                expected_name="torch retain_grad",
                formula=label,
                dtype=dtype,
                reduction_length=length,
                context=f"\n  network: {case.describe()}",
            )
    corners = set(case.corners) | ({"float32"} if dtype == np.float32 else set())
    report.record_example(label, "δ recursion = torch", frozenset(corners), MLP_CORNERS)


# ---------------------------------------------------------------------- SGD trajectory

MIN_STEPS = 5
SGD_NETWORKS: dict[str, Any] = {
    "mlp": mlp_cases,
    "dense": dense_cases,
    "stacked convolutions": stacked_conv_cases,
}


def _relu_gates(model: networks.Sequential) -> list[np.ndarray]:
    """``1[z > 0]`` at every ReLU of the last forward pass."""
    return [layer._saved_input() > 0 for layer in model if isinstance(layer, networks.ReLU)]


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

    Drift bound. One step computes the gradients, with relative rounding at
    most ``bound(dtype, K_net)`` (``K_net`` = the network's reduction length),
    then ``sgd_step`` adds a few roundings per element (4, as in
    test_optim.py). The parameters after step ``s`` carry the errors of all
    ``s`` steps; with lr ≤ 1/8 and weights and data at most 1, the step map
    ``w ↦ w − lr ∇L(w)`` is non-expanding to first order (lr times the
    curvature stays below 1), and a momentum buffer is a sum of at most ``s``
    earlier gradients, so the errors accumulate at most linearly:

        drift after s steps ≤ bound(dtype, s · (K_net + 4))

    which is the tolerance used for the comparison after each step.

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
    length = 0
    for step in range(1, run["steps"] + 1):
        length = step * (network_length(case) + 4)
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
            assert value.dtype == dtype
            assert_close(
                value,
                expected[key],
                quantity=f"{key} after step {step}",
                actual_name="networks.SGD",
                expected_name="torch.optim.SGD",
                formula=label,
                dtype=dtype,
                reduction_length=length,
                context=f"\n  network: {case.describe()}\n  SGD: {hyper}",
            )
    corners = {"momentum" if run["momentum"] else "plain SGD", run["network"]}
    if run["nesterov"]:
        corners.add("nesterov")
    if dtype == np.float32:
        corners.add("float32")
    report.record_example(
        label, "trajectory = torch", frozenset(corners), frozenset({"momentum", "plain SGD"})
    )


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


def test_state_dict_keys_and_layouts_are_torchs() -> None:
    model = networks.Sequential(
        networks.Flatten(),
        networks.Linear(6, 3),
        networks.Tanh(),
        networks.Linear(3, 2, bias=False),
    )
    twin = network_oracles.torch_model(model, np.dtype(np.float64))
    ours = model.state_dict()
    assert list(ours) == list(twin.state_dict()) == ["1.weight", "1.bias", "3.weight"]
    for key, value in twin.state_dict().items():
        assert ours[key].shape == tuple(value.shape)


@pytest.mark.parametrize("namespace", ["loops", "vectorized", loops, vectorized])
def test_namespace_by_name_or_module(namespace: Any) -> None:
    model = networks.Sequential(networks.Linear(2, 2), namespace=namespace)
    assert model.namespace in (loops, vectorized)
    x = np.ones((1, 2))
    np.testing.assert_allclose(model.forward(x, "loops"), model.forward(x, vectorized))


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="namespace"):
        networks.Sequential(networks.ReLU(), namespace="fast")
    with pytest.raises(TypeError, match="namespace"):
        networks.Sequential(networks.ReLU(), namespace=np)
    model = networks.Sequential(networks.Linear(2, 1))
    with pytest.raises(RuntimeError, match="before forward"):
        model.backward(np.ones((1, 1)))
    with pytest.raises(KeyError, match="missing"):
        model.load_state_dict({"0.weight": np.zeros((1, 2))})
    with pytest.raises(ValueError, match="weight"):
        model.load_state_dict({"0.weight": np.zeros((2, 1)), "0.bias": np.zeros(1)})
    with pytest.raises(TypeError, match="x"):
        model.forward([[1.0, 2.0]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reduction"):
        networks.MSELoss(reduction="none")


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
    assert grad_x.shape == x.shape and not np.shares_memory(grad_x, x)
