"""``networks.Adam``, ``AdamW``, ``RMSprop`` against ``torch.optim``; ``networks.ConvTranspose2d``.

Optimizers
    A training run of chanchishing's two-layer perceptron (``netcases.mlp_cases``)
    is split where the error analysis splits it. At every step the loss and
    the gradients the reference computes are compared with autograd on the
    torch twin *at the same parameters* (the tolerance of
    ``netcases.network_length``); then the reference optimizer and the torch
    optimizer are handed the *same* gradients (the reference's, copied into
    ``param.grad``). Both optimizer trajectories are then functions of the same
    starting parameters and gradients, each within the running bound of
    ``tolerances.adam_drift`` / ``rmsprop_drift`` of the exact one, so they agree
    within twice that bound, parameter and every state array, at every step.

    Halfway, the reference's ``state_dict()`` (arrays made tensors) is loaded
    into a fresh torch optimizer over a twin holding the reference's current
    weights, which continues with the same gradients. Its trajectory is one
    whose first steps were rounded by the reference and the rest by torch:
    every operation is still correctly rounded, so the same bound holds for it
    and it stays within twice the bound of the reference. Its hyper-parameters
    must be the original torch optimizer's, its step counts equal.

ConvTranspose2d
    One layer and an MSE loss, weights copied into ``torch.nn.ConvTranspose2d``
    (built from the layer's ``arguments``): output, loss, ``∂L/∂x`` and both
    parameter gradients, through ``netcases.assert_network_close``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings, strategies as st

from oracle_tests import network_oracles
from oracle_tests.netcases import (
    SMALL,
    NetCase,
    assert_network_close,
    mlp_cases,
    network_length,
    record,
)
from reference_impl import networks, vectorized
from reference_impl.testing import strategies, tolerances
from reference_impl.testing.comparison import drift_ratio

TORCH_OPTIMIZERS: dict[str, Any] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
}
OURS: dict[str, Any] = {"adam": networks.Adam, "adamw": networks.AdamW, "rmsprop": networks.RMSprop}
#: small enough that a few steps keep σ away from 0 and 1 (Adam moves a weight by about lr a
#: step; RMSprop's first step by lr/√(1 − α), up to 10 lr)
ADAM_LR = st.sampled_from([1 / 32, 1 / 64])
RMSPROP_LR = st.sampled_from([1 / 256, 1 / 512])


@st.composite
def hyper_parameters(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """Every hyper-parameter of the optimizer (the drift bounds take them all)."""
    common = {
        "eps": draw(st.sampled_from([1e-8, 1 / 64]), label="eps"),
        "weight_decay": draw(st.sampled_from([0.0, 1 / 64]), label="weight_decay"),
        "maximize": draw(st.booleans(), label="maximize"),
    }
    if name == "rmsprop":
        return {
            "lr": draw(RMSPROP_LR, label="lr"),
            "alpha": draw(st.sampled_from([0.75, 0.99]), label="alpha"),
            "momentum": draw(st.sampled_from([0.0, 0.5]), label="momentum"),
            "centered": draw(st.booleans(), label="centered"),
            **common,
        }
    betas = draw(st.sampled_from([(0.9, 0.999), (0.5, 0.75)]), label="betas")
    amsgrad = draw(st.booleans(), label="amsgrad")
    return {"lr": draw(ADAM_LR, label="lr"), "betas": betas, "amsgrad": amsgrad, **common}


@st.composite
def optimizer_runs(draw: st.DrawFn, name: str) -> dict[str, Any]:
    dtype = draw(strategies.dtypes(), label="dtype")
    case = draw(mlp_cases(dtype, max_batch=3, max_in=2, max_hidden=3, max_out=1), label="case")
    steps = draw(st.integers(3, 4), label="steps")
    return {
        "name": name,
        "case": case,
        "hyper": draw(hyper_parameters(name), label="hyper"),
        "steps": steps,
        "load_at": draw(st.integers(1, steps - 1), label="load state_dict after step"),
    }


def torch_state_dict(state_dict: dict[str, Any]) -> dict[str, Any]:
    """The reference optimizer's ``state_dict`` with tensors, as torch's holds them."""

    def tensor(name: str, value: Any) -> torch.Tensor:
        if name == "step":
            return torch.tensor(float(value))
        return torch.from_numpy(np.array(value, copy=True))

    state = {
        index: {name: tensor(name, value) for name, value in entry.items()}
        for index, entry in state_dict["state"].items()
    }
    return {"state": state, "param_groups": state_dict["param_groups"]}


def torch_pass(
    case: NetCase, twin: torch.nn.Sequential
) -> tuple[float, dict[str, np.ndarray], list[np.ndarray]]:
    """Loss, parameter gradients and ReLU gates of autograd on ``twin``."""
    gates: list[np.ndarray] = []
    hooks = [
        module.register_forward_hook(lambda _, i, __: gates.append(i[0].detach().numpy() > 0))
        for module in twin
        if isinstance(module, torch.nn.ReLU)
    ]
    twin.zero_grad()
    value = network_oracles.torch_loss(case.loss)(
        twin(torch.from_numpy(case.x.copy())), network_oracles.torch_target(case.target)
    )
    value.backward()
    for hook in hooks:
        hook.remove()
    grads = {}
    for key, param in twin.named_parameters():
        assert param.grad is not None
        grads[key] = param.grad.numpy().copy()
    return float(value.detach()), grads, gates


def set_grads(twin: torch.nn.Sequential, grads: dict[str, np.ndarray]) -> None:
    for key, param in twin.named_parameters():
        param.grad = torch.from_numpy(grads[key].copy())


def drift_bounds(
    name: str, hyper: dict[str, Any], start: np.ndarray, grads: list[np.ndarray]
) -> dict[str, np.ndarray]:
    """Twice the running error bound after the last of ``grads``: two trajectories, each within."""
    dtype = start.dtype
    if name == "rmsprop":
        bounds = tolerances.rmsprop_drift(start, grads, dtype=dtype, **hyper)
    else:
        decoupled = name == "adamw"
        bounds = tolerances.adam_drift(start, grads, dtype=dtype, decoupled=decoupled, **hyper)
    return {key: 2 * value for key, value in bounds[-1].items()}


def assert_within_drift(
    quantity: str, ours: Any, theirs: Any, allowed: np.ndarray, context: str
) -> None:
    ratio, index = drift_ratio(ours, theirs, allowed)
    assert ratio <= 1, (
        f"{quantity}{list(index)}: {np.asarray(ours)[index]!r} (networks) vs "
        f"{np.asarray(theirs)[index]!r} (torch.optim), allowed |diff| ≤ "
        f"{float(allowed[index]):.3e}{context}"
    )


def check_optimizer_run(run: dict[str, Any]) -> None:
    name, case, hyper = run["name"], run["case"], run["hyper"]
    model, label = case.model, f"network: {name} trajectory"
    keys = list(model.state_dict())  # the MLP has parameters only
    start = model.state_dict()
    history: dict[str, list[np.ndarray]] = {key: [] for key in keys}
    optimizer = OURS[name](model, **hyper)
    twin = network_oracles.torch_model(model, case.dtype)
    torch_optimizer = TORCH_OPTIMIZERS[name](twin.parameters(), **hyper)
    resumed: tuple[torch.nn.Sequential, torch.optim.Optimizer] | None = None
    context = f"\n  network: {case.describe()}\n  {name}: {hyper}"
    for step in range(1, run["steps"] + 1):
        # the loss and gradients at the reference's parameters, against autograd there
        length = network_length(case)
        value, _, grads = networks.loss_and_gradients(model, case.loss, case.x, case.target)
        gates = [layer.saved_input > 0 for layer in model if isinstance(layer, networks.ReLU)]
        here = network_oracles.torch_model(model, case.dtype)
        torch_value, torch_grads, torch_gates = torch_pass(case, here)
        # a ReLU input within rounding of 0 may gate differently: no bound for that
        assume(all(np.array_equal(a, b) for a, b in zip(gates, torch_gates, strict=True)))
        names = ("networks", "torch.autograd")
        quantity = f"loss at step {step}"
        assert_network_close(
            case, label, quantity, np.asarray(value), np.asarray(torch_value), names, length
        )
        for key in keys:
            quantity = f"grad {key} at step {step}"
            assert_network_close(case, label, quantity, grads[key], torch_grads[key], names, length)
        # one step on the same gradients
        optimizer.step(grads)
        set_grads(twin, grads)
        torch_optimizer.step()
        if resumed is not None:
            set_grads(resumed[0], grads)
            resumed[1].step()
        ours = model.state_dict()
        for key, param in zip(keys, twin.parameters(), strict=True):
            history[key].append(grads[key])
            allowed = drift_bounds(name, hyper, start[key], history[key])
            torch_state = torch_optimizer.state[param]
            assert int(optimizer.state[key]["step"]) == int(torch_state["step"]) == step
            assert set(optimizer.state[key]) == set(torch_state), key
            where = f"{context}\n  after step {step}"
            theirs = param.detach().numpy()
            assert_within_drift(f"{key}", ours[key], theirs, allowed["param"], where)
            for entry in set(torch_state) - {"step"}:
                mine, torch_value_ = optimizer.state[key][entry], torch_state[entry].numpy()
                assert mine.dtype == case.dtype, (key, entry)
                assert_within_drift(f"{key} {entry}", mine, torch_value_, allowed[entry], where)
            if resumed is not None:
                continued = dict(resumed[0].named_parameters())[key].detach().numpy()
                where += f" (torch optimizer resumed from the state_dict after {run['load_at']})"
                assert_within_drift(f"{key}", ours[key], continued, allowed["param"], where)
        if step == run["load_at"]:
            resumed = load_into_torch(name, optimizer, case, torch_optimizer)
    corners = {name, "maximize" if hyper["maximize"] else "minimize"}
    corners |= {"weight decay"} if hyper["weight_decay"] else set()
    corners |= {"amsgrad"} if hyper.get("amsgrad") else set()
    corners |= {"centered"} if hyper.get("centered") else set()
    corners |= {"momentum"} if hyper.get("momentum") else set()
    record(label, "trajectory = torch.optim", case, frozenset({name, "float32"}), *corners)


def load_into_torch(
    name: str, optimizer: Any, case: NetCase, original: torch.optim.Optimizer
) -> tuple[torch.nn.Sequential, torch.optim.Optimizer]:
    """A fresh torch optimizer (default hyper-parameters) loaded from the reference's state_dict."""
    state_dict = optimizer.state_dict()
    twin = network_oracles.torch_model(case.model, case.dtype)
    fresh = TORCH_OPTIMIZERS[name](twin.parameters())
    fresh.load_state_dict(torch_state_dict(state_dict))
    (group,) = fresh.param_groups
    (expected,) = original.param_groups
    for key, value in expected.items():
        if key != "params":
            assert group[key] == value, f"{name} state_dict: param_group {key!r}"
    reference_layout = original.state_dict()
    assert state_dict["param_groups"] == reference_layout["param_groups"]
    assert set(state_dict["state"]) == set(reference_layout["state"])
    for index, entry in reference_layout["state"].items():
        assert set(state_dict["state"][index]) == set(entry)
    return twin, fresh


@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop"])
@settings(max_examples=8)
@given(data=st.data())
def test_adam_adamw_rmsprop_trajectories_follow_torch_optim(name: str, data: st.DataObject) -> None:
    """Several steps of a small MLP follow ``torch.optim``; the state_dict resumes in torch.

    Rejects: an optimizer stepping with the wrong formula or hyper-parameter
    (bias correction, decoupled decay, centering...), a state_dict with other
    keys, indices or param_group entries than torch's, or state that torch
    cannot resume from.
    """
    check_optimizer_run(data.draw(optimizer_runs(name), label="run"))


@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop"])
def test_adam_adamw_rmsprop_state_dict_round_trip(name: str) -> None:
    """torch's ``state_dict`` loads into the reference optimizer, which then steps as torch.

    Rejects: ``load_state_dict`` mapping torch's parameter indices to the wrong
    keys, or losing the step count or hyper-parameters.
    """
    rng = np.random.default_rng(1)
    model = networks.Sequential(
        networks.Linear(2, 3, rng=rng), networks.Tanh(), networks.Linear(3, 1, rng=rng)
    )
    twin = network_oracles.torch_model(model, np.dtype(np.float64))
    torch_optimizer = TORCH_OPTIMIZERS[name](twin.parameters(), lr=1 / 16, weight_decay=1 / 32)
    x, y = rng.standard_normal((4, 2)), rng.standard_normal((4, 1))
    for _ in range(2):
        torch_optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(twin(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()  # type: ignore[no-untyped-call]
        torch_optimizer.step()
    model.load_state_dict({k: v.detach().numpy() for k, v in twin.state_dict().items()})
    optimizer = OURS[name](model)
    optimizer.load_state_dict(torch_optimizer.state_dict())
    assert optimizer.hyper["lr"] == 1 / 16 and optimizer.hyper["weight_decay"] == 1 / 32
    assert [int(s["step"]) for s in optimizer.state.values()] == [2] * 4
    _, _, grads = networks.loss_and_gradients(model, networks.MSELoss(), x, y)
    optimizer.step(grads)
    set_grads(twin, grads)
    torch_optimizer.step()
    for key, value in twin.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[key], value.numpy(), rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------ ConvTranspose2d


@st.composite
def conv_transpose_cases(draw: st.DrawFn, dtype: np.dtype[Any], max_batch: int = 2) -> NetCase:
    """One ConvTranspose2d layer and MSE to a grid target; every geometry argument drawn.

    Per axis: stride s, dilation d, kernel k, input length n, output padding
    op < max(s, d) (torch's rule), then padding p small enough that the output
    length (n − 1)s − 2p + d(k − 1) + op + 1 is at least 1.
    """
    groups = draw(st.integers(1, 2), label="groups")
    in_channels = groups * draw(st.integers(1, 2), label="in per group")
    out_channels = groups * draw(st.integers(1, 2), label="out per group")
    axes: list[list[int]] = [[], [], [], [], [], []]
    kernel, stride, padding, output_padding, dilation, size = axes
    for _ in range(2):
        s, d = draw(st.integers(1, 3), label="stride"), draw(st.integers(1, 2), label="dilation")
        k, n = draw(st.integers(1, 3), label="kernel"), draw(st.integers(1, 3), label="size")
        op = draw(st.integers(0, max(s, d) - 1), label="output_padding")
        p = draw(st.integers(0, min(2, ((n - 1) * s + d * (k - 1) + op) // 2)), label="padding")
        for values, value in zip(
            (kernel, stride, padding, output_padding, dilation, size),
            (k, s, p, op, d, n),
            strict=True,
        ):
            values.append(value)
    bias = draw(st.booleans(), label="bias")
    layer = networks.ConvTranspose2d(
        in_channels,
        out_channels,
        (kernel[0], kernel[1]),
        (stride[0], stride[1]),
        (padding[0], padding[1]),
        (output_padding[0], output_padding[1]),
        groups,
        bias,
        (dilation[0], dilation[1]),
        dtype=dtype,
    )
    model = networks.Sequential(layer)
    state = {
        key: draw(strategies.arrays(dtype, value.shape, SMALL), label=key)
        for key, value in model.state_dict().items()
    }
    model.load_state_dict(state)
    batch = draw(st.integers(1, max_batch), label="batch")
    x = draw(strategies.arrays(dtype, (batch, in_channels, size[0], size[1]), SMALL), label="x")
    target_shape = layer.output_shape(x.shape)
    target = draw(strategies.arrays(dtype, target_shape, SMALL), label="target")
    flags = {
        "stride > 1": max(stride) > 1,
        "dilation > 1": max(dilation) > 1,
        "padding": max(padding) > 0,
        "output_padding": max(output_padding) > 0,
        "groups": groups > 1,
        "bias": bias,
    }
    corners = {flag for flag, hit in flags.items() if hit}
    return NetCase(model, networks.MSELoss(), x, target, corners)


def conv_transpose_length(case: NetCase) -> int:
    """The longest sum, forward or backward, and the loss's.

    Each output element sums at most ``C_in/groups · kh · kw`` products, each
    element of ``∂L/∂x`` at most ``C_out/groups · kh · kw``, ``∂L/∂W`` over
    the batch and the input positions, ``∂L/∂b`` over the batch and the output
    positions; the mean squared error sums over the output.
    """
    layer = case.model[0]
    assert isinstance(layer, networks.ConvTranspose2d)
    groups, taps = int(layer.hyper["groups"]), layer.kernel_size[0] * layer.kernel_size[1]
    out = layer.output_shape(case.x.shape)
    n, _, h, w = case.x.shape
    sums = [
        layer.in_channels // groups * taps,
        layer.out_channels // groups * taps,
        n * h * w,
        n * out[2] * out[3],
    ]
    return int(max(sums) + case.target.size)


CONV_TRANSPOSE = "network: ConvTranspose2d"
CONV_TRANSPOSE_CORNERS = frozenset({"stride > 1", "dilation > 1", "padding", "output_padding"})


@pytest.mark.parametrize("namespace", ["vectorized", "loops"])
@settings(max_examples=15)
@given(data=st.data())
def test_conv_transpose2d_layer_matches_torch(namespace: str, data: st.DataObject) -> None:
    """Output, loss, ∂L/∂x, ∂L/∂W and ∂L/∂b equal ``torch.nn.ConvTranspose2d``'s.

    Rejects: a weight read in Conv2d's layout (out, in/groups, ...), a group
    slicing the wrong channels, output_padding or dilation passed to the wrong
    slot, a bias gradient summed over the wrong axes.
    """
    dtype = data.draw(strategies.dtypes(), label="dtype")
    case = data.draw(conv_transpose_cases(dtype, max_batch=1 if namespace == "loops" else 2))
    length = conv_transpose_length(case)
    twin = network_oracles.torch_model(case.model, dtype)
    x_t = torch.from_numpy(case.x.copy()).requires_grad_(True)
    output_t = twin(x_t)
    loss_t = torch.nn.functional.mse_loss(output_t, torch.from_numpy(case.target.copy()))
    loss_t.backward()  # type: ignore[no-untyped-call]
    output = case.model.forward(case.x, namespace)
    value = case.loss.forward(output, case.target, case.model.last_namespace or vectorized)
    grad_x, grads = case.model.backward(case.loss.backward())
    assert x_t.grad is not None
    expected = {k: p.grad for k, p in twin.named_parameters()}
    compared: list[tuple[str, Any, Any]] = [
        ("output", output, output_t.detach().numpy()),
        ("loss", np.asarray(value), loss_t.detach().numpy()),
        ("grad_x", grad_x, x_t.grad.numpy()),
    ]
    for key in sorted(grads.keys() | expected.keys()):
        wanted = expected.get(key)
        compared.append((f"grad {key}", grads.get(key), None if wanted is None else wanted.numpy()))
    for quantity, actual, wanted in compared:
        names = (namespace, "torch.nn.ConvTranspose2d")
        assert_network_close(case, CONV_TRANSPOSE, quantity, actual, wanted, names, length)
    record(CONV_TRANSPOSE, f"{namespace} = torch", case, CONV_TRANSPOSE_CORNERS)


def test_conv_transpose2d_layout_init_and_repr_are_torchs() -> None:
    """Weight shape (in, out/groups, kh, kw), torch's init bound 1/√(out/groups·kh·kw), repr.

    Rejects: Conv2d's weight layout, or its fan-in (in/groups·kh·kw) for the bound.
    """
    layer = networks.ConvTranspose2d(4, 6, (3, 2), stride=2, groups=2, rng=np.random.default_rng(0))
    twin = network_oracles.torch_layer(layer)
    assert isinstance(twin, torch.nn.ConvTranspose2d)
    assert layer.weight.shape == tuple(twin.weight.shape) == (4, 3, 3, 2)
    assert layer.bias is not None and layer.bias.shape == (6,)
    limit = 1 / np.sqrt(3 * 3 * 2)
    assert np.abs(layer.weight).max() <= limit and np.abs(layer.weight).max() > limit / 2
    assert float(twin.weight.detach().abs().max()) <= limit
    assert repr(layer) == (
        "ConvTranspose2d(4, 6, kernel_size=(3, 2), stride=2, padding=0, output_padding=0, "
        "groups=2, dilation=1, bias=True)"
    )
    assert networks.ConvTranspose2d(2, 2, 2, bias=False).parameters().keys() == {"weight"}
    assert layer.output_shape((1, 4, 3, 3)) == tuple(twin(torch.zeros(1, 4, 3, 3)).shape)
