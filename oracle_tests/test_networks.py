"""Composite networks against their torch.nn twins: gradients, the δ recursion, SGD trajectories.

Each network is built in :mod:`reference_impl.networks`, its grid-valued
weights copied into the equivalent ``torch.nn.Sequential``, and the loss, the
input gradient and every parameter gradient compared through
``comparison.assert_close`` (by way of ``netcases.assert_network_close``) with
the tolerance of ``netcases.network_length``.
Most examples run the vectorized namespace; a few tiny ones the loop namespace.

The normalization, dropout and recurrent layers are compared the same way
(batch norm in training and eval mode, with the running statistics and
``num_batches_tracked`` after each pass; dropout with its mask replayed in
torch), and through SGD trajectories; their API (torch's ``state_dict``,
modes, masks, index inputs) is checked at the end.
"""

from __future__ import annotations

import re
from collections.abc import Set
from functools import partial
from typing import Any
from unittest.mock import Mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from oracle_tests import network_oracles
from oracle_tests.netcases import (
    CELLS,
    NORM_ARCHITECTURES,
    NetCase,
    assert_network_close,
    batch_norm_cnn_cases,
    batch_norm_inputs,
    check_against_torch,
    check_buffers,
    check_kinks,
    cnn_cases,
    dense_cases,
    drift_length,
    mlp_cases,
    network_length,
    normalization_cases,
    pool_cases,
    record,
    sequence_cases,
    stacked_conv_cases,
    watch_kinks,
)
from reference_impl import loops, networks, vectorized
from reference_impl.testing import strategies

MLP, CNN = "network: chanchishing's two-layer perceptron", "network: Saraswat's CNN"
POOL, STACKED = "network: pooling", "network: stacked convolutions"
BATCH_NORM_CNN = "network: batch_norm CNN, training and eval mode"
NORMS = "network: layer_norm, group_norm, batch_norm1d and dropout"
SEQUENCES = "network: embedding, rnn, lstm and gru"
BATCH_NORM_CORNERS = {"training mode", "eval mode", "momentum None", "no affine", "no bias"}
BATCH_NORM_CORNERS |= {"no running statistics", "padding", "overlapping windows"}
NORM_CORNERS = {*NORM_ARCHITECTURES, "training mode", "eval mode", "dropout", "dropout p = 1"}
NORM_CORNERS |= {"relu", "num_groups = 1", "batch of one", "no affine", "no bias"}
SEQUENCE_CORNERS = {*CELLS, "tokens", "feature sequence", "batch_first", "time first"}
SEQUENCE_CORNERS |= {"padding_idx", "int32 tokens", "every step (Flatten)", "T = 1", "no bias"}
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
    # Conv2d → BatchNorm2d → ReLU → MaxPool2d → Flatten → Linear, either mode; the running
    # statistics and num_batches_tracked after the pass are compared too
    BATCH_NORM_CNN: (batch_norm_cnn_cases, BATCH_NORM_CORNERS),
    # LayerNorm, GroupNorm or BatchNorm1d, an activation, Dropout (mask replayed in torch)
    NORMS: (normalization_cases, NORM_CORNERS),
    # [Embedding →] RNN / LSTM / GRU → LastStep or Flatten → Linear → cross-entropy
    SEQUENCES: (sequence_cases, SEQUENCE_CORNERS),
}
#: tiny shapes for the loop namespace, which is slow
LOOP_SIZES = {
    MLP: {"max_batch": 2, "max_in": 2, "max_hidden": 2, "max_out": 1},
    CNN: {"max_batch": 1, "max_extra": 1},
    STACKED: {"max_batch": 1, "max_extra": 1},
    BATCH_NORM_CNN: {"max_batch": 1, "max_extra": 1},
    NORMS: {"max_batch": 2},
    SEQUENCES: {"max_batch": 1, "max_steps": 2},
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


@st.composite
def sgd_hyper(draw: st.DrawFn) -> dict[str, Any]:
    """``torch.optim.SGD``'s hyper-parameters: plain, momentum, Nesterov, weight decay."""
    momentum = draw(st.sampled_from([0.0, 0.5, 0.875]), label="momentum")
    nesterov = momentum > 0 and draw(st.booleans(), label="nesterov")
    return {
        "lr": draw(st.sampled_from([1 / 8, 1 / 16, 1 / 32]), label="lr"),
        "momentum": momentum,
        "dampening": 0.0 if nesterov else draw(st.sampled_from([0.0, 0.25]), label="dampening"),
        "nesterov": nesterov,
        "weight_decay": draw(st.sampled_from([0.0, 1 / 64]), label="weight_decay"),
    }


@st.composite
def sgd_runs(
    draw: st.DrawFn, cases: dict[str, Any] = SGD_NETWORKS, min_steps: int = MIN_STEPS
) -> dict[str, Any]:
    dtype = draw(strategies.dtypes(), label="dtype")
    network = draw(st.sampled_from(sorted(cases)), label="network")
    return {
        "network": network,
        "case": draw(cases[network](dtype), label="case"),
        "steps": draw(st.integers(min_steps, min_steps + 2), label="steps"),
        "hyper": draw(sgd_hyper(), label="SGD"),
    }


def follow_torch_sgd(run: dict[str, Any], label: str) -> None:
    """Full-batch SGD steps of ``networks.SGD`` and ``torch.optim.SGD`` from the same weights.

    After each step: every parameter within the drift bound of
    ``netcases.drift_length``; the buffers (running statistics within
    ``netcases.running_stats_length``, ``num_batches_tracked`` exactly), and,
    before them, the inputs of every ReLU and max pool (``netcases.check_kinks``).
    The bound holds while both trainers stay on the same smooth piece of the
    loss: a ReLU input or two window values within rounding of each other may
    branch differently in the two, and from there the trajectories fork for
    good reasons; ``check_kinks`` discards such runs.
    """
    case: NetCase = run["case"]
    hyper = run["hyper"]
    twin = network_oracles.torch_model(case.model, case.dtype)
    seen = watch_kinks(case.model, twin)
    torch_optimizer = torch.optim.SGD(twin.parameters(), **hyper)
    torch_loss = network_oracles.torch_loss(case.loss)
    x_t = torch.from_numpy(case.x.copy())
    target_t = network_oracles.torch_target(case.target)
    optimizer = networks.SGD(case.model, **hyper)
    magnitudes: dict[int, float] = {}
    names = ("networks.SGD", "torch.optim.SGD")
    for step in range(1, run["steps"] + 1):
        length = drift_length(case, step)
        _, _, grads = networks.loss_and_gradients(case.model, case.loss, case.x, case.target)
        optimizer.step(grads)
        torch_optimizer.zero_grad()
        torch_loss(twin(x_t), target_t).backward()
        torch_optimizer.step()
        context = f"\n  SGD: {hyper}, step {step}"
        check_kinks(case, seen, label, length, context)
        expected = {k: v.detach().numpy() for k, v in twin.named_parameters()}
        for key, value in case.model.state_dict().items():
            if key in expected:
                quantity = f"{key} after step {step}"
                assert_network_close(
                    case, label, quantity, value, expected[key], names, length, context
                )
        for index, x in batch_norm_inputs(case.model).items():
            magnitudes[index] = max(magnitudes.get(index, 1.0), float(np.max(np.abs(x))))
        check_buffers(case, twin, label, step, length, magnitudes, context)
    corners = ["momentum" if hyper["momentum"] else "plain SGD", run["network"]]
    corners += ["nesterov"] if hyper["nesterov"] else []
    record(label, "trajectory = torch", case, frozenset({"momentum", "plain SGD"}), *corners)


@given(sgd_runs())
def test_sgd_trajectory_follows_torch(run: dict[str, Any]) -> None:
    """Several full-batch SGD steps (with and without momentum) stay near torch.optim.SGD's.

    Max pooling forks at near-ties once the weights leave the grid, so the
    CNN is left out here (the batch-norm CNN below has its own run).
    """
    follow_torch_sgd(run, "network: SGD trajectory")


BATCH_NORM_SGD = {"batch_norm CNN": partial(batch_norm_cnn_cases, training=True)}


@given(sgd_runs(BATCH_NORM_SGD, min_steps=3))
def test_batch_norm_cnn_sgd_trajectory_and_running_statistics_follow_torch(
    run: dict[str, Any],
) -> None:
    """Training-mode SGD steps of the batch-norm CNN: the parameters, ``running_mean``,
    ``running_var`` and ``num_batches_tracked`` after each step stay with torch's.

    Rejects: running statistics updated in eval mode or not at all, the
    count not kept (or the momentum ``None`` average not taken from it), the
    biased batch variance in the running variance.
    """
    follow_torch_sgd(run, "network: batch_norm SGD trajectory")


LSTM_SGD = {"lstm classifier": partial(sequence_cases, cells=("lstm",), tokens=True, flatten=False)}


@given(sgd_runs(LSTM_SGD))
def test_lstm_sequence_classifier_sgd_trajectory_follows_torch(run: dict[str, Any]) -> None:
    """Embedding → LSTM → LastStep → Linear → cross-entropy: SGD steps stay with torch's.

    The drift bound is ``netcases.drift_length`` with the LSTM's time-unrolled
    length (``tolerances.unrolled_length``) and the embedding's index count in
    the network's length.
    """
    follow_torch_sgd(run, "network: lstm sequence classifier SGD trajectory")


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
        (lambda: networks.Functional("max_pool2d", kernel=2), ValueError, "kernel"),
        (
            lambda: networks.Functional("linear", params={"w": np.ones((1, 1))}),
            ValueError,
            "w",
        ),
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


# ---------------------------------------------- normalization, dropout and recurrent layers


def _torch_state_matches(model: networks.Sequential, torch_modules: list[torch.nn.Module]) -> None:
    """Keys, order, shapes, dtypes and initial values of ``model``'s state_dict are those of
    freshly constructed ``torch_modules`` (float64) — but for randomly initialised weights,
    compared by shape and dtype only."""
    fresh = torch.nn.Sequential(*torch_modules).double().state_dict()
    ours = model.state_dict()
    assert list(ours) == list(fresh)
    for key, value in fresh.items():
        assert ours[key].shape == tuple(value.shape), key
        assert ours[key].dtype == value.numpy().dtype, key
        if "running" in key or "num_batches" in key or "norm" in key.split(".")[1:]:
            assert np.array_equal(ours[key], value.numpy()), key


def test_batch_norm_layer_norm_group_norm_dropout_state_dict_and_shapes_are_torchs() -> None:
    """torch's state_dict (names, order, initial values, int64 ``num_batches_tracked``),
    output shapes and modes, for every option that changes the state_dict.

    Rejects: buffers in another order or dtype, a state entry for an absent
    weight or bias, ``num_batches_tracked`` as a float or missing.
    """
    model = networks.Sequential(
        networks.BatchNorm2d(3),
        networks.BatchNorm2d(3, affine=False, momentum=None),
        networks.BatchNorm2d(3, track_running_stats=False, bias=False),
        networks.GroupNorm(1, 3, bias=False),
        networks.GroupNorm(3, 3, affine=False),
        networks.LayerNorm((3, 2, 2)),
        networks.LayerNorm([2], bias=False),
        networks.LayerNorm(2, elementwise_affine=False),
        networks.Dropout(0.25),
        networks.Flatten(),
        networks.BatchNorm1d(12),
    )
    modules = [network_oracles.torch_layer(layer) for layer in model]
    _torch_state_matches(model, modules)
    ours = model.state_dict()
    assert ours["0.weight"].tolist() == [1.0] * 3 and ours["0.bias"].tolist() == [0.0] * 3
    assert ours["0.num_batches_tracked"].dtype == np.int64 and ours["0.num_batches_tracked"] == 0
    assert repr(model[0]) == repr(modules[0])  # BatchNorm2d(3, eps=1e-05, momentum=0.1, ...)
    assert model.train() is model and all(layer.training for layer in model)
    assert model.eval() is model and not any(layer.training for layer in model)
    x = torch.zeros((2, 3, 2, 2), dtype=torch.float64)
    twin = network_oracles.torch_model(model, np.dtype(np.float64))
    assert not any(module.training for module in twin)
    for layer, module in zip(model, twin, strict=True):
        shape, x = layer.output_shape(tuple(x.shape)), module(x)
        assert shape == tuple(x.shape), repr(layer)


def test_embedding_rnn_lstm_gru_state_dict_and_shapes_are_torchs() -> None:
    """torch's names ``weight_ih_l0`` ..., gate blocks stacked G·H high, no biases with
    ``bias=False``; torch's initialisation (N(0, 1) with the padding row zeroed;
    U(−1/√H, 1/√H)); output sequences in both layouts; LastStep = ``h_n``.

    Rejects: the formula's names (``weight_ih``) in the state_dict, weights
    with the gate blocks side by side, a padding row left random.
    """
    rng = np.random.default_rng(0)
    model = networks.Sequential(
        networks.Embedding(6, 3, padding_idx=-2, rng=rng),
        networks.LSTM(3, 4, batch_first=True, rng=rng),
        networks.GRU(4, 2, bias=False, batch_first=True, rng=rng),
        networks.RNN(2, 5, nonlinearity="relu", batch_first=True, rng=rng),
        networks.LastStep(batch_first=True),
    )
    torch_modules = [
        torch.nn.Embedding(6, 3, padding_idx=-2),
        torch.nn.LSTM(3, 4, batch_first=True),
        torch.nn.GRU(4, 2, bias=False, batch_first=True),
        torch.nn.RNN(2, 5, nonlinearity="relu", batch_first=True),
        torch.nn.Identity(),
    ]
    _torch_state_matches(model, torch_modules)
    state = model.state_dict()
    assert np.array_equal(state["0.weight"][4], np.zeros(3))
    for key, hidden in [("1.weight_hh_l0", 4), ("2.weight_ih_l0", 2), ("3.bias_hh_l0", 5)]:
        assert np.max(np.abs(state[key])) <= 1 / np.sqrt(hidden), key
    twin = network_oracles.torch_model(model, np.dtype(np.float64))
    tokens = rng.integers(0, 6, (2, 5))
    x: Any = torch.from_numpy(tokens)
    for layer, module in zip(model, twin, strict=True):
        shape, x = layer.output_shape(tuple(x.shape)), module(x)
        assert shape == tuple(x.shape), repr(layer)
    assert model.forward(tokens).shape == (2, 5)
    _, h_n = torch.nn.RNN(2, 5, nonlinearity="relu", batch_first=True).double()(
        torch.zeros((2, 5, 2), dtype=torch.float64)
    )
    assert tuple(h_n[0].shape) == model[4].output_shape((2, 5, 5))
    time_first = networks.Sequential(networks.GRU(3, 2, rng=rng), networks.LastStep())
    sequence = rng.standard_normal((4, 2, 3))  # (T, N, I)
    weights = {key.removesuffix("_l0"): value for key, value in time_first[0].parameters().items()}
    _, h_n = vectorized.gru(sequence, None, **weights)
    assert np.array_equal(time_first.forward(sequence), h_n)


def test_batch_norm_running_statistics_and_momentum_none_by_hand() -> None:
    """BatchNorm1d(1, momentum=None) on x = (1, 3), then (5, 7): the cumulative average.

    Pass 1: μ = 2, unbiased var = 2, momentum 1/1: running (2, 2), count 1.
    Pass 2: μ = 6, var = 2, momentum 1/2: running (4, 2), count 2.
    Eval: y = (x − 4)/√(2 + ε), nothing changes. Rejects: momentum 1/(count + 1),
    the biased variance (1 instead of 2), an update in eval mode.
    """
    for ns in (loops, vectorized):
        model = networks.Sequential(networks.BatchNorm1d(1, momentum=None), namespace=ns)
        for batch in ([[1.0], [3.0]], [[5.0], [7.0]]):
            model.forward(np.array(batch))
        after = model.state_dict()
        assert after["0.running_mean"].tolist() == [4.0]
        assert after["0.running_var"].tolist() == [2.0]
        assert int(after["0.num_batches_tracked"]) == 2
        model.eval()
        x = np.array([[2.0], [6.0]])
        assert np.allclose(model.forward(x), (x - 4.0) / np.sqrt(2.0 + 1e-5), rtol=0, atol=1e-15)
        grad_x, grads = model.backward(np.ones((2, 1)))
        assert grad_x is not None and np.allclose(grad_x, 1 / np.sqrt(2.0 + 1e-5))
        assert set(grads) == {"0.weight", "0.bias"}
        assert all(np.array_equal(v, after[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("namespace", ["loops", "vectorized"])
def test_batch_norm_running_stats_and_lstm_run_in_the_namespace_of_the_pass(
    monkeypatch: pytest.MonkeyPatch, namespace: str
) -> None:
    """The running-statistics update and the sequence formula are the pass's namespace's."""
    names = ["batch_norm", "batch_norm_running_stats", "lstm", "lstm_backward"]
    spies = {(ns, f): Mock(wraps=getattr(ns, f)) for ns in (loops, vectorized) for f in names}
    for (ns, name), spy in spies.items():
        monkeypatch.setattr(ns, name, spy)
    model = networks.Sequential(
        networks.LSTM(2, 2, batch_first=True), networks.Flatten(), networks.BatchNorm1d(6)
    )
    model.forward(np.ones((2, 3, 2)), namespace)
    model.backward(np.ones((2, 6)))
    ran = networks.resolve_namespace(namespace)
    called = {(ns, name): spy.call_count for (ns, name), spy in spies.items() if spy.call_count}
    assert called == {(ran, "batch_norm"): 1, (ran, "batch_norm_running_stats"): 1} | {
        (ran, "lstm"): 1,
        (ran, "lstm_backward"): 1,
    }


def test_dropout_mask_comes_from_its_generator_each_training_pass() -> None:
    """Training: ``mask = rng.random(shape) >= p`` drawn anew every forward, the backward
    with the forward's mask; eval: identity, no draw. p = 0 keeps all, p = 1 drops all.

    Rejects: p read as the keep probability, a mask reused across passes or
    redrawn for the backward, a draw in eval mode.
    """
    shape, p = (4, 50), 0.25
    layer = networks.Dropout(p, rng=np.random.default_rng(7))
    model = networks.Sequential(layer)
    twin_rng = np.random.default_rng(7)
    x = np.ones(shape)
    first = model.forward(x)
    first_mask = twin_rng.random(shape) >= p
    grad_x, _ = model.backward(np.full(shape, 2.0))
    assert grad_x is not None and layer.mask is not None and np.array_equal(layer.mask, first_mask)
    assert np.array_equal(first, first_mask / (1 - p))
    assert np.array_equal(grad_x, 2.0 * first_mask / (1 - p))
    assert 0.6 < first_mask.mean() < 0.9  # about 1 − p = 0.75 kept
    second = model.forward(x)
    assert np.array_equal(second, (twin_rng.random(shape) >= p) / (1 - p))
    assert not np.array_equal(first, second)
    model.eval()
    assert np.array_equal(model.forward(x), x) and layer.mask is None
    model.train()
    assert np.array_equal(model.forward(x), (twin_rng.random(shape) >= p) / (1 - p))
    kept = networks.Sequential(networks.Dropout(0.0)).forward(x)
    dropped = networks.Sequential(networks.Dropout(1.0)).forward(x)
    assert np.array_equal(kept, x) and np.array_equal(dropped, np.zeros(shape))


def test_embedding_network_has_no_input_gradient_and_takes_indices_only() -> None:
    """An Embedding first: integer x, ``∂L/∂x`` None (torch has none either), the weight's
    gradient summed over repeated indices. Rejects: a float input passed to the index
    gather, an Embedding that is not first."""
    model = networks.Sequential(networks.Embedding(3, 2), networks.Flatten())
    _, grad_x, grads = networks.loss_and_gradients(
        model, networks.MSELoss(reduction="sum"), np.array([[1, 1]]), np.zeros((1, 4))
    )
    weight = model.state_dict()["0.weight"]
    assert grad_x is None and model.grad_inputs[0] is None
    assert np.allclose(grads["0.weight"], [[0, 0], 4 * weight[1], [0, 0]])
    with pytest.raises(TypeError, match=r"(?<![\w.])x(?!\w)"):
        model.forward(np.array([[1.0, 1.0]]))
    second = networks.Sequential(networks.Flatten(), networks.Embedding(3, 2))
    with pytest.raises(TypeError, match=r"(?<![\w.])input(?!\w)"):
        second.forward(np.zeros((1, 2)))


UNTYPED: Any = networks  # for calls with arguments of the wrong type
UNTYPED_ONE: Any = ONE


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        pytest.param(lambda: networks.BatchNorm2d(0), ValueError, "num_features", id="batch_norm"),
        pytest.param(
            lambda: networks.BatchNorm1d(2, momentum=1.5), ValueError, "momentum", id="batch_norm"
        ),
        pytest.param(lambda: networks.BatchNorm1d(2, eps=0), ValueError, "eps", id="batch_norm"),
        pytest.param(
            lambda: networks.Sequential(networks.BatchNorm2d(2)).forward(np.zeros((2, 2))),
            ValueError,
            "x",
            id="batch_norm 2-D input",
        ),
        pytest.param(
            lambda: networks.Sequential(networks.BatchNorm1d(2)).forward(np.zeros((1, 2))),
            ValueError,
            "Expected more than 1 value per channel",
            id="batch_norm one value per channel",
        ),
        pytest.param(
            lambda: networks.BatchNorm1d(2).set_parameter("num_batches_tracked", np.zeros(())),
            TypeError,
            "num_batches_tracked",
            id="batch_norm float counter",
        ),
        pytest.param(lambda: networks.GroupNorm(2, 3), ValueError, "num_channels", id="group_norm"),
        pytest.param(
            lambda: UNTYPED.LayerNorm("a"), TypeError, "normalized_shape", id="layer_norm"
        ),
        pytest.param(
            lambda: networks.LayerNorm((2, 0)), ValueError, "normalized_shape", id="layer_norm"
        ),
        pytest.param(lambda: networks.Dropout(2.0), ValueError, "p", id="dropout"),
        pytest.param(lambda: UNTYPED.Dropout(rng=1), TypeError, "rng", id="dropout"),
        pytest.param(
            lambda: networks.Embedding(3, 2, padding_idx=3),
            ValueError,
            "padding_idx",
            id="embedding",
        ),
        pytest.param(lambda: UNTYPED.Embedding(3, 2.0), TypeError, "embedding_dim", id="embedding"),
        pytest.param(
            lambda: networks.RNN(2, 3, nonlinearity="sigmoid"), ValueError, "nonlinearity", id="rnn"
        ),
        pytest.param(lambda: networks.LSTM(2, 0), ValueError, "hidden_size", id="lstm"),
        pytest.param(lambda: UNTYPED.GRU(2, 3, batch_first=1), TypeError, "batch_first", id="gru"),
        pytest.param(lambda: UNTYPED.LSTM(2, 3, 1), TypeError, "positional", id="lstm num_layers"),
        pytest.param(
            lambda: networks.Sequential(networks.LastStep()).forward(np.zeros((2, 3))),
            ValueError,
            "x",
            id="last step 2-D input",
        ),
        pytest.param(lambda: UNTYPED_ONE.train("yes"), TypeError, "mode", id="train mode"),
    ],
)
def test_normalization_and_recurrent_layers_reject_bad_arguments(
    make: Any, error: type[Exception], match: str
) -> None:
    """The message names the argument as a word."""
    with pytest.raises(error, match=rf"(?<![\w.]){re.escape(match)}(?!\w)"):
        make()
