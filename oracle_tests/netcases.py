"""Drawn networks for the composite tests: architecture, weights, data and their tolerance.

A :class:`NetCase` is a :class:`reference_impl.networks.Sequential` with
weights set from the dyadic grid, a loss, an input and a target. The checks
compare its loss, input gradient and every parameter gradient with autograd on
the torch twin (``network_oracles.torch_gradients``) through
:func:`assert_network_close`, which fills in the suite's one comparison helper.

Tolerance of a network
    Each layer is one of the formulas of the registry, so its rounding is
    bounded by ``tolerances.bound(dtype, K_layer)``, with ``K_layer`` its own
    longest reduction, forward or backward (``in + out + batch`` for a linear
    layer: the forward sums over ``in``, ``∂L/∂x`` over ``out``, ``∂L/∂W`` over
    the batch). A relative error made by one layer passes through the later
    ones multiplied by their (small, bounded) Jacobians, and to first order the
    relative errors of a chain add up. The network's reduction length is
    therefore the sum of its layers' lengths and the loss's (``network_length``).

    Values are kept at most 1 in magnitude (multiples of 1/16 in [−1, 1]) and
    widths small, so the activations, hence the Jacobians, stay of order one.

Kinks and forks
    A ReLU or a max pool after a rounded layer (a normalization) may take a
    different branch in the two implementations when its input sits within
    rounding of the kink: torch's batch norm, for one, computes ``x·a + b``
    with ``b = β − μ·a`` and leaves ±1e-6 (float32) where the exact x̂ is 0.
    There the gradients differ for good reasons. ``check_kinks`` first
    asserts that the inputs of every ReLU and max pool agree within the
    network's bound, then discards the example (``assume``) if a gate or an
    arg-max still differs. The strategies keep such forks rare: the bias of a
    normalization before a ReLU is drawn non-zero.

    A normalization layer (batch, layer or group norm) has the effective
    length of ``tolerances.normalization_length``, computed from the values
    that reach it. It also magnifies errors made elsewhere, where the additive
    rule above assumed Jacobians of order one: forward, an absolute error in
    its input becomes one ``r`` times larger in x̂, ``κ = M·r`` times larger
    relative to the input's magnitude M; backward, ``∂L/∂x = γ r (dy − ...)``
    multiplies an error in ``dy`` by ``Γ·R`` (Γ = max(1, max|γ|), R the largest
    ``r``) while ``∂L/∂x`` itself may cancel far below that. So the length of
    every layer before a normalization is multiplied by its κ, and of every
    layer after it (and of the loss) by its Γ·R (``network_length``); with
    several normalizations the factors multiply. (Dropout scales elements by
    1/(1 − p) and its gradient with them: relative errors pass unchanged.)

    A recurrent layer has the time-unrolled length of
    ``tolerances.unrolled_length`` (T steps of I + H + 2 terms forward and
    G·H + 2 backward, then N·T for the weight gradients), under the stability
    assumption stated there: weights in [−1, 1], H ≤ 3, T ≤ 3 here. An
    embedding's weight gradient sums over every index position.

    ``Sigmoid`` followed by ``BCELoss`` evaluates ``log(1 − σ(z))`` through the
    rounded ``σ(z)``: an error of one unit in σ becomes a relative error
    ``u / (1 − σ)`` in ``1 − σ``, and the same near ``σ = 0``. The condition
    number ``κ = max(1/σ, 1/(1 − σ))`` over the outputs is added to the
    reduction length, and the output layer of such a network is drawn with
    weights at most 1/4 in magnitude so that σ never saturates (κ stays below
    a hundred).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from hypothesis import assume, strategies as st

from oracle_tests.network_oracles import torch_gradients, torch_model
from reference_impl import loops, networks, vectorized
from reference_impl.testing import report, strategies, tolerances
from reference_impl.testing.comparison import assert_close
from reference_impl.testing.specs.normalization import RUNNING_VAR
from reference_impl.testing.specs.recurrent import RELU_WEIGHTS

#: grid values in [−1, 1], with exact zeros favoured (the ReLU kink)
SMALL = st.one_of(
    st.just(0.0),
    st.integers(-strategies.GRID_STEP, strategies.GRID_STEP).map(
        lambda k: k / strategies.GRID_STEP
    ),
)
#: grid values in [−1/4, 1/4], for an output layer feeding Sigmoid + BCELoss
TINY = st.integers(-strategies.GRID_STEP // 4, strategies.GRID_STEP // 4).map(
    lambda k: k / strategies.GRID_STEP
)
#: BCE targets: the labels 0 and 1 and probabilities between
BCE_TARGETS = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])
#: grid values in [−1, 1] but 0, for the bias of a normalization before a ReLU (see "Kinks")
NONZERO = st.tuples(st.integers(1, strategies.GRID_STEP), st.sampled_from([-1, 1])).map(
    lambda ks: ks[0] * ks[1] / strategies.GRID_STEP
)
NORMALIZATIONS: tuple[type[networks.Functional], ...] = (networks.BatchNorm1d,)
NORMALIZATIONS += (networks.BatchNorm2d, networks.LayerNorm, networks.GroupNorm)
RECURRENT = (networks.RNN, networks.LSTM, networks.GRU)


@dataclass
class NetCase:
    model: networks.Sequential
    loss: networks.Loss
    x: np.ndarray[Any, Any]
    target: np.ndarray[Any, Any]
    corners: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        batch_axis = 1 if self.time_major else 0
        self.corners |= {"batch of one"} if self.x.shape[batch_axis] == 1 else set()
        self.corners |= {"float32"} if self.dtype == np.float32 else set()

    @property
    def time_major(self) -> bool:
        """The input is a (T, N, ...) sequence: a recurrent layer without ``batch_first``."""
        first = next((layer for layer in self.model if isinstance(layer, RECURRENT)), None)
        return first is not None and not first.batch_first

    @property
    def dtype(self) -> np.dtype[Any]:
        """The float dtype of the case: ``x``'s, or the weights' when ``x`` holds indices."""
        if self.x.dtype.kind == "f":
            dtype: np.dtype[Any] = self.x.dtype
            return dtype
        return next(v.dtype for v in self.model.state_dict().values() if v.dtype.kind == "f")

    def describe(self) -> str:
        layers = ", ".join(repr(layer) for layer in self.model)
        mode = "training" if self.model.training else "eval"
        return (
            f"[{layers}] ({mode} mode) + {self.loss!r}, x: {self.x.dtype.name}"
            f"{list(self.x.shape)}, target: {self.target.dtype.name}{list(self.target.shape)}"
        )


def set_weights(
    draw: st.DrawFn,
    model: networks.Sequential,
    dtype: np.dtype[Any],
    elements: dict[int | str, st.SearchStrategy[float]] | None = None,
) -> None:
    """Replace every float parameter and buffer by grid values.

    ``elements`` overrides ``SMALL`` by layer index (``i``) or state_dict key
    (``"i.name"``, which wins). Running variances are drawn from
    ``RUNNING_VAR`` (non-negative), counters (``num_batches_tracked``) from 0…3.
    """
    state: dict[str, Any] = {}
    chosen = elements or {}
    for key, value in model.state_dict().items():
        if value.dtype.kind != "f":
            state[key] = np.array(draw(st.integers(0, 3), label=key), dtype=value.dtype)
            continue
        index = int(key.split(".")[0])
        default = RUNNING_VAR if key.endswith("running_var") else SMALL
        values = chosen.get(key, chosen.get(index, default))
        state[key] = draw(strategies.arrays(dtype, value.shape, values), label=key)
    model.load_state_dict(state)


HEADS = ["mse", "bce", "bce_logits", "ce_index", "ce_prob"]


def draw_head(
    draw: st.DrawFn, head: str, dtype: np.dtype[Any], batch: int, out: int
) -> tuple[networks.Loss, np.ndarray[Any, Any]]:
    """The loss of ``head`` (one of ``HEADS``) and a target for outputs of shape (batch, out)."""
    if head == "ce_index":
        classes = st.integers(0, out - 1)
        target = draw(strategies.arrays(np.dtype(np.int64), (batch,), classes), label="target")
        return networks.CrossEntropyLoss(), target
    values = SMALL if head == "mse" else BCE_TARGETS
    target = draw(strategies.arrays(dtype, (batch, out), values), label="target")
    if head == "mse":
        return networks.MSELoss(draw(st.sampled_from(["mean", "sum"]), label="reduction")), target
    kinds = {"bce": networks.BCELoss, "bce_logits": networks.BCEWithLogitsLoss}
    return kinds.get(head, networks.CrossEntropyLoss)(), target


def layer_length(
    layer: networks.Layer, x: np.ndarray[Any, Any], output: np.ndarray[Any, Any]
) -> tuple[int, float, float]:
    """The longest reduction of one layer, forward or backward, for its input ``x``; and
    the factors by which it magnifies errors made before it (forward) and after it
    (backward): κ and Γ·R for a normalization, 1 for the others (module docstring)."""
    batch = x.shape[0]
    if isinstance(layer, networks.Linear):
        return layer.in_features + layer.out_features + batch, 1.0, 1.0
    if isinstance(layer, networks.Conv2d):
        taps = layer.kernel_size[0] * layer.kernel_size[1]
        positions = batch * output.shape[2] * output.shape[3]
        groups = int(layer.hyper["groups"])
        return (layer.in_channels // groups + layer.out_channels) * taps + positions, 1.0, 1.0
    if isinstance(layer, (networks.MaxPool2d, networks.AvgPool2d)):
        return int(np.prod(np.broadcast_to(layer.hyper["kernel_size"], 2))), 1.0, 1.0
    if isinstance(layer, NORMALIZATIONS):
        return normalization_length(layer, x)
    if isinstance(layer, networks.Embedding):
        return max(1, x.size), 1.0, 1.0
    if isinstance(layer, RECURRENT):
        steps, batch = (x.shape[1], x.shape[0]) if layer.batch_first else x.shape[:2]
        hidden, gates = layer.hidden_size, layer.gates
        length = tolerances.unrolled_length(
            steps, layer.input_size + hidden + 2, gates * hidden + 2, batch * steps
        )
        return length, 1.0, 1.0
    return 1, 1.0, 1.0


def normalization_length(
    layer: networks.Layer, x: np.ndarray[Any, Any]
) -> tuple[int, float, float]:
    """``tolerances.normalization_length`` of a normalization layer for its input ``x``,
    with its forward (κ) and backward (Γ·R) magnification factors."""
    running: tuple[Any, Any] = (None, None)
    if isinstance(layer, (networks.BatchNorm1d, networks.BatchNorm2d)):
        sets = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)
        size = together = sets.shape[1]
        if not layer.training and layer.track_running_stats:
            running = (layer.running_mean, layer.running_var)
    elif isinstance(layer, networks.LayerNorm):
        size = math.prod(layer.normalized_shape)
        sets = x.reshape(-1, size)
        together = sets.shape[0]
    else:
        assert isinstance(layer, networks.GroupNorm)
        sets = x.reshape(x.shape[0] * layer.num_groups, -1)
        size, together = sets.shape[1], x.shape[0] * math.prod(x.shape[2:])
    kappa, xhat, rstd = tolerances.normalization_sets(sets, layer.eps, *running)
    weight = layer.parameters().get("weight")
    gain = 1.0 if weight is None else max(1.0, float(np.max(np.abs(weight))))
    length = tolerances.normalization_length(size, together, kappa, xhat, rstd, gain)
    return length, max(1.0, kappa), max(1.0, gain * rstd)


NAMESPACE_MEMO = {id(loops): loops, id(vectorized): vectorized}


def network_length(case: NetCase) -> int:
    """The reduction length sizing the network's tolerance (module docstring).

    Runs the layers on a copy of the model: a forward pass updates running
    statistics and draws dropout masks (the copy draws the same mask the model
    will draw next).
    """
    model = copy.deepcopy(case.model, dict(NAMESPACE_MEMO))
    lengths, forward, backward = [], [], []
    value = case.x
    for layer in model:
        output = layer.forward(value, vectorized)
        own, kappa, gain = layer_length(layer, value, output)
        lengths.append(own)
        forward.append(kappa)
        backward.append(gain)
        value = output
    loss = case.target.size if case.target.dtype.kind == "f" else case.target.shape[0]
    if isinstance(case.loss, networks.BCELoss):
        closest = float(np.min(np.minimum(value, 1.0 - value)))
        assert closest > 0, "σ saturated: the strategy must keep BCELoss inputs inside (0, 1)"
        loss += math.ceil(1.0 / closest)
    total = loss * math.prod(backward)
    for j, own in enumerate(lengths):
        total += own * math.prod(forward[j + 1 :]) * math.prod(backward[:j])
    return math.ceil(total)


def running_stats_length(values_per_channel: int, magnitude: float, steps: int, drift: int) -> int:
    """The reduction length bounding running statistics after ``steps`` training passes.

    One pass, on inputs known exactly (``test_normalization.running_stats_length``):
    μ off by at most 3n·u·M, the unbiased variance by (n + 3)u relative, three
    roundings in the update; earlier errors are carried forward multiplied by
    1 − m ≤ 1, so they add up: ``steps·(3nM + n + 8)``. Inputs computed by a
    network whose parameters drift (``drift_length``) carry a relative error
    ``bound(drift)``: an absolute ``M·bound(drift)`` in the mean, twice that
    in the variance (a square). Each running statistic is a weighted average
    of the batch statistics with weights summing to at most 1, so the drift
    term enters once: ``+ 2M·drift``. M = max(1, max |input|).
    """
    n, m = values_per_channel, magnitude
    return math.ceil(steps * (3 * n * m + n + 8) + 2 * m * drift)


def drift_length(case: NetCase, steps: int) -> int:
    """The reduction length bounding the drift from torch after ``steps`` SGD steps.

    One step computes the gradients, with relative rounding at most
    ``bound(dtype, K_net)`` (``K_net = network_length(case)``), then
    ``sgd_step`` adds a few roundings per element (4, as in test_optim.py).
    The parameters after step ``s`` carry the errors of all ``s`` steps; with
    lr ≤ 1/8 and weights and data at most 1, the step map ``w ↦ w − lr ∇L(w)``
    is non-expanding to first order (lr times the curvature stays below 1),
    and a momentum buffer is a sum of at most ``s`` earlier gradients, so the
    errors accumulate at most linearly: drift ≤ ``bound(dtype, s · (K_net + 4))``.
    """
    return steps * (network_length(case) + 4)


def assert_network_close(
    case: NetCase,
    label: str,
    quantity: str,
    actual: Any,
    expected: Any,
    names: tuple[str, str],
    length: int,
    context: str = "",
) -> None:
    """``comparison.assert_close`` of ``names[0]`` against ``names[1]`` for ``case``.

    Arrays (but the loss) must keep the case's dtype.
    """
    if isinstance(actual, np.ndarray) and actual.ndim:
        assert actual.dtype == case.dtype, f"{label}: {quantity} has dtype {actual.dtype}"
    assert_close(
        actual,
        expected,
        quantity=quantity,
        actual_name=names[0],
        expected_name=names[1],
        formula=label,
        dtype=case.dtype,
        reduction_length=length,
        context=f"\n  network: {case.describe()}{context}",
    )


def record(label: str, prop: str, case: NetCase, claimed: frozenset[str], *extra: str) -> None:
    """Count one example of ``label`` with the corners it reached."""
    report.record_example(label, prop, frozenset(case.corners | set(extra)), claimed)


KINKS = (networks.ReLU, networks.MaxPool2d)


def watch_kinks(model: networks.Sequential, twin: torch.nn.Sequential) -> dict[int, Any]:
    """The input of every twin module of a ReLU or MaxPool2d, as of its last forward."""
    seen: dict[int, Any] = {}
    for index, (layer, module) in enumerate(zip(model, twin, strict=True)):
        if isinstance(layer, KINKS):

            def keep(_: Any, inputs: Any, __: Any, index: int = index) -> None:
                seen[index] = inputs[0].detach().numpy().copy()

            module.register_forward_hook(keep)
    return seen


def _pool_choices(layer: networks.Layer, values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The arg-max of every window, as torch's ``max_pool2d`` picks it."""
    assert isinstance(layer, networks.MaxPool2d)
    tensor = torch.from_numpy(np.array(values, copy=True))
    _, where = torch.nn.functional.max_pool2d(tensor, **layer.hyper, return_indices=True)
    return where.numpy()


def check_kinks(
    case: NetCase, seen: dict[int, Any], label: str, length: int, context: str = ""
) -> None:
    """At every ReLU and max pool: the inputs agree within the bound, then the same branch.

    A gate or an arg-max that still differs sits within rounding of its kink:
    the example is discarded (module docstring, "Kinks and forks").
    """
    names = ("reference", "torch")
    for index, theirs in sorted(seen.items()):
        layer = case.model[index]
        assert isinstance(layer, networks.Functional)
        ours = layer.saved_input
        quantity = f"input of layer {index} ({layer!r})"
        assert_network_close(case, label, quantity, ours, theirs, names, length, context)
        if isinstance(layer, networks.ReLU):
            assume(np.array_equal(ours > 0, theirs > 0))
        else:
            assume(np.array_equal(_pool_choices(layer, ours), _pool_choices(layer, theirs)))


def batch_norm_inputs(model: networks.Sequential) -> dict[int, np.ndarray[Any, Any]]:
    """The input of every batch-norm layer in the last forward pass."""
    return {
        i: layer.saved_input
        for i, layer in enumerate(model)
        if isinstance(layer, (networks.BatchNorm1d, networks.BatchNorm2d))
    }


def check_buffers(
    case: NetCase,
    twin: torch.nn.Sequential,
    label: str,
    steps: int,
    drift: int,
    magnitudes: dict[int, float],
    context: str = "",
) -> None:
    """Running statistics (within ``running_stats_length``) and ``num_batches_tracked``
    (exactly) as torch's after ``steps`` passes; ``magnitudes`` holds each batch-norm
    layer's largest input so far (at least 1)."""
    expected = twin.state_dict()
    names = ("reference", "torch")
    for key, value in case.model.state_dict().items():
        index, name = key.split(".", 1)
        layer = case.model[int(index)]
        if name not in layer.buffers():
            continue
        wanted = expected[key].numpy()
        if value.dtype.kind != "f":
            assert value.dtype == wanted.dtype and np.array_equal(value, wanted), (
                f"{label}: {key} = {value} after {steps} passes, torch has {wanted}{context}"
            )
            continue
        x = layer.saved_input  # type: ignore[attr-defined]
        n = x.size // x.shape[1]
        length = running_stats_length(n, magnitudes[int(index)], steps, drift)
        quantity = f"{key} after {steps} training passes"
        assert_network_close(case, label, quantity, value, wanted, names, length, context)


def check_against_torch(
    case: NetCase, label: str, namespace: str = "vectorized", claimed: frozenset[str] = frozenset()
) -> None:
    """Loss, ``∂L/∂x`` and every parameter gradient of ``namespace`` agree with autograd.

    A parameter gradient present on one side only is a ``None`` meeting an array
    (``∂L/∂x`` is ``None`` on both sides for an input of indices). The twin is
    built before the pass, so that buffers a training pass updates (running
    statistics, ``num_batches_tracked``) are compared after it too; the kinks
    are checked before the gradients (``check_kinks``).
    """
    length = network_length(case)
    twin = torch_model(case.model, case.dtype)
    seen = watch_kinks(case.model, twin)
    value, grad_x, grads = networks.loss_and_gradients(
        case.model, case.loss, case.x, case.target, namespace
    )
    expected = torch_gradients(case.model, case.loss, case.x, case.target, twin)
    compared: list[tuple[str, Any, Any]] = [
        ("loss", np.asarray(value), np.asarray(expected[0])),
        ("grad_x", grad_x, expected[1]),
    ]
    for key in sorted(grads.keys() | expected[2].keys()):
        compared.append((f"grad {key}", grads.get(key), expected[2].get(key)))
    names = (namespace, "torch.autograd")
    assert_network_close(case, label, "loss", *compared[0][1:], names, length)
    check_kinks(case, seen, label, length)
    for quantity, actual, wanted in compared[1:]:
        assert_network_close(case, label, quantity, actual, wanted, names, length)
    magnitudes = {
        i: max(1.0, float(np.max(np.abs(x)))) for i, x in batch_norm_inputs(case.model).items()
    }
    check_buffers(case, twin, label, 1, 0, magnitudes)
    record(label, f"{namespace} = torch", case, claimed)


# ------------------------------------------------------------------------ strategies


@st.composite
def mlp_cases(
    draw: st.DrawFn,
    dtype: np.dtype[Any],
    max_batch: int = 4,
    max_in: int = 3,
    max_hidden: int = 4,
    max_out: int = 2,
) -> NetCase:
    """The two-layer perceptron of chanchishing's wiki page "04 Forward and Back Propagation".

    Linear → ReLU → Linear → Sigmoid, with BCELoss.
    """
    batch = draw(st.integers(1, max_batch), label="batch")
    n_in = draw(st.integers(1, max_in), label="in_features")
    hidden = draw(st.integers(1, max_hidden), label="hidden")
    n_out = draw(st.integers(1, max_out), label="out_features")
    model = networks.Sequential(
        networks.Linear(n_in, hidden, dtype=dtype),
        networks.ReLU(),
        networks.Linear(hidden, n_out, dtype=dtype),
        networks.Sigmoid(),
    )
    set_weights(draw, model, dtype, {2: TINY})
    x = draw(strategies.arrays(dtype, (batch, n_in), SMALL), label="x")
    loss, target = draw_head(draw, "bce", dtype, batch, n_out)
    case = NetCase(model, loss, x, target)
    z1 = x @ model[0].parameters()["weight"].T + model[0].parameters()["bias"]
    if np.any(z1 < 0):
        case.corners.add("dead ReLU unit")
    if np.any(z1 == 0):
        case.corners.add("ReLU input exactly 0")
    return case


ACTIVATIONS: dict[str, type[networks.Layer]] = {
    "relu": networks.ReLU,
    "sigmoid": networks.Sigmoid,
    "tanh": networks.Tanh,
}


@st.composite
def dense_cases(draw: st.DrawFn, dtype: np.dtype[Any], max_batch: int = 4) -> NetCase:
    """1 to 3 linear layers, activations between, an optional Flatten first, any loss head."""
    batch = draw(st.integers(1, max_batch), label="batch")
    widths = draw(st.lists(st.integers(1, 4), min_size=2, max_size=4), label="widths")
    head = draw(st.sampled_from(HEADS), label="head")
    flatten = draw(st.booleans(), label="flatten input")
    layers: list[networks.Layer] = []
    corners = {f"{len(widths) - 1} linear layers", f"head {head}"}
    if flatten:
        layers.append(networks.Flatten())
        corners.add("flatten")
    for i in range(len(widths) - 1):
        bias = draw(st.booleans(), label=f"bias {i}")
        layers.append(networks.Linear(widths[i], widths[i + 1], bias=bias, dtype=dtype))
        corners.add("bias" if bias else "no bias")
        if i < len(widths) - 2:
            name = draw(st.sampled_from(sorted(ACTIVATIONS)), label=f"activation {i}")
            layers.append(ACTIVATIONS[name]())
            corners.add(name)
    elements: dict[int | str, st.SearchStrategy[float]] = {}
    if head == "bce":
        layers.append(networks.Sigmoid())
        elements[len(layers) - 2] = TINY
    model = networks.Sequential(*layers)
    set_weights(draw, model, dtype, elements)
    if head == "bce":
        # Keep every hidden activation small enough that the sigmoid cannot saturate.
        for layer in model:
            if isinstance(layer, networks.Linear) and layer is not model[-2]:
                layer.set_parameter("weight", layer.weight / 4)
    shape: tuple[int, ...] = (batch, widths[0])
    if flatten:
        first = widths[0]
        shape = (batch, first, 1) if first % 2 else (batch, 2, first // 2)
    x = draw(strategies.arrays(dtype, shape, SMALL), label="x")
    loss, target = draw_head(draw, head, dtype, batch, widths[-1])
    return NetCase(model, loss, x, target, corners)


@st.composite
def pool_layer(draw: st.DrawFn, size: tuple[int, int], kind: str) -> networks.Layer:
    """A max or average pooling layer valid for an input of spatial ``size``."""
    kh, kw = (draw(st.integers(1, min(3, n)), label="kernel") for n in size)
    kernel = (kh, kw)
    strides = st.tuples(st.integers(1, 3), st.integers(1, 3))
    stride = draw(st.none() | st.just((1, 1)) | strides, label="stride")  # (1, 1): overlap
    padding = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    ceil_mode = draw(st.booleans(), label="ceil_mode")
    if kind == "max":
        return networks.MaxPool2d(kernel, stride, padding, ceil_mode=ceil_mode)
    include = draw(st.booleans(), label="count_include_pad")
    return networks.AvgPool2d(kernel, stride, padding, ceil_mode, count_include_pad=include)


def pool_corners(layer: networks.Layer) -> set[str]:
    assert isinstance(layer, (networks.MaxPool2d, networks.AvgPool2d))
    kernel, stride, padding = (layer.hyper[k] for k in ("kernel_size", "stride", "padding"))
    flags = {
        "overlapping windows": any(s < k for s, k in zip(stride or kernel, kernel, strict=True)),
        "padding": any(p > 0 for p in padding),
        "ceil_mode": layer.hyper["ceil_mode"],
    }
    kind = "max pool" if isinstance(layer, networks.MaxPool2d) else "avg pool"
    return {kind} | {name for name, hit in flags.items() if hit}


@st.composite
def pool_cases(draw: st.DrawFn, dtype: np.dtype[Any], max_batch: int = 3) -> NetCase:
    """[activation] → MaxPool2d or AvgPool2d → Flatten → Linear, with a logits head.

    Only ReLU may precede a max pool: it maps grid values to grid values, so
    torch and the reference see the same numbers and pick the same arg-max.
    After a rounded activation (σ, tanh) two nearly equal values could order
    differently in the two and route the gradient to different positions.
    """
    batch = draw(st.integers(1, max_batch), label="batch")
    channels = draw(st.integers(1, 2), label="channels")
    size = (draw(st.integers(1, 5), label="height"), draw(st.integers(1, 5), label="width"))
    kind = draw(st.sampled_from(["max", "avg"]), label="pooling")
    layers: list[networks.Layer] = []
    options = ["none", "relu"] if kind == "max" else ["none", *sorted(ACTIVATIONS)]
    activation = draw(st.sampled_from(options), label="activation")
    if activation != "none":
        layers.append(ACTIVATIONS[activation]())
    pool = draw(pool_layer(size, kind), label="pool")
    layers.append(pool)
    x = draw(strategies.arrays(dtype, (batch, channels, *size), SMALL), label="x")
    pooled = math.prod(pool.output_shape(x.shape)[1:])
    out = draw(st.integers(1, 3), label="out_features")
    layers += [networks.Flatten(), networks.Linear(pooled, out, dtype=dtype)]
    head = draw(st.sampled_from(["mse", "bce_logits", "ce_index"]), label="head")
    model = networks.Sequential(*layers)
    set_weights(draw, model, dtype)
    loss, target = draw_head(draw, head, dtype, batch, out)
    corners = pool_corners(pool) | {f"head {head}"} | ({activation} - {"none"})
    return NetCase(model, loss, x, target, corners)


@st.composite
def conv_layer(
    draw: st.DrawFn,
    dtype: np.dtype[Any],
    in_channels: int,
    size: tuple[int, int] | None = None,
    max_extra: int = 3,
) -> tuple[networks.Conv2d, tuple[int, int], set[str]]:
    """A Conv2d layer and its input size (``size`` if given, else drawn after the geometry).

    Per axis: padding p ≤ 1, dilation d, stride s, then a kernel k with
    d(k − 1) + 1 ≤ n + 2p, so that an input of length n gives at least one output.
    """
    out_channels = draw(st.integers(1, 3), label="out_channels")
    groups = 1
    if in_channels == out_channels == 2 and draw(st.booleans(), label="grouped"):
        groups = 2
    padding = (draw(st.integers(0, 1), label="ph"), draw(st.integers(0, 1), label="pw"))
    dilation = (draw(st.integers(1, 2), label="dh"), draw(st.integers(1, 2), label="dw"))
    stride = (draw(st.integers(1, 2), label="sh"), draw(st.integers(1, 2), label="sw"))
    kernel_list, size_list = [], []
    for axis in range(2):
        p, d = padding[axis], dilation[axis]
        if size is None:
            k = draw(st.integers(1, 3), label="kernel")
            n = draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), d * (k - 1) + 1 + max_extra))
        else:
            n = size[axis]
            k = draw(st.integers(1, min(3, (n + 2 * p - 1) // d + 1)), label="kernel")
        kernel_list.append(k)
        size_list.append(n)
    kernel = (kernel_list[0], kernel_list[1])
    bias = draw(st.booleans(), label="bias")
    layer = networks.Conv2d(
        in_channels, out_channels, kernel, stride, padding, dilation, groups, bias, dtype=dtype
    )
    flags = {
        "stride > 1": max(stride) > 1,
        "dilation > 1": max(dilation) > 1,
        "padding": max(padding) > 0,
        "groups": groups > 1,
        "non-square kernel": kernel[0] != kernel[1],
    }
    corners = {"bias" if bias else "no bias"} | {name for name, hit in flags.items() if hit}
    return layer, (size_list[0], size_list[1]), corners


@st.composite
def cnn_cases(
    draw: st.DrawFn, dtype: np.dtype[Any], max_batch: int = 2, max_extra: int = 3
) -> NetCase:
    """Saraswat's CNN: Conv2d → ReLU → MaxPool2d → Flatten → Linear, softmax cross-entropy.

    ReLU of a convolution of grid values is exact, so the max pool sees the same
    numbers in torch and in the reference (see ``pool_cases``).
    """
    batch = draw(st.integers(1, max_batch), label="batch")
    channels = draw(st.integers(1, 2), label="in_channels")
    conv, size, corners = draw(conv_layer(dtype, channels, max_extra=max_extra), label="conv")
    x = draw(strategies.arrays(dtype, (batch, channels, *size), SMALL), label="x")
    activated = conv.output_shape(x.shape)
    pool = draw(pool_layer((activated[2], activated[3]), "max"), label="pool")
    pooled = math.prod(pool.output_shape(activated)[1:])
    classes = draw(st.integers(2, 3), label="classes")
    linear = networks.Linear(pooled, classes, dtype=dtype)
    model = networks.Sequential(conv, networks.ReLU(), pool, networks.Flatten(), linear)
    set_weights(draw, model, dtype)
    loss, target = draw_head(draw, "ce_index", dtype, batch, classes)
    return NetCase(model, loss, x, target, corners | pool_corners(pool))


@st.composite
def stacked_conv_cases(
    draw: st.DrawFn, dtype: np.dtype[Any], max_batch: int = 2, max_extra: int = 2
) -> NetCase:
    """Stacked convolutions as in Benaicha's and Diba's derivations, MSE to a target.

    Conv2d → activation → Conv2d (→ activation → Conv2d).

    ∂L/∂X of each convolution is the upstream gradient of the layer before, so
    its kernel gradient is only right if the input gradient after it is.
    """
    batch = draw(st.integers(1, max_batch), label="batch")
    channels = draw(st.integers(1, 2), label="in_channels")
    depth = draw(st.integers(2, 3), label="convolutions")
    corners: set[str] = {f"{depth} convolutions"}
    layers: list[networks.Layer] = []
    size: tuple[int, int] | None = None
    input_size: tuple[int, int] | None = None
    channels_in = channels
    for i in range(depth):
        conv, layer_size, layer_corners = draw(
            conv_layer(dtype, channels_in, size, max_extra=max_extra), label=f"conv {i}"
        )
        input_size = input_size or layer_size
        corners |= layer_corners
        _, channels_in, *out = conv.output_shape((1, channels_in, *layer_size))
        size = (out[0], out[1])
        layers.append(conv)
        if i < depth - 1:
            name = draw(st.sampled_from(sorted(ACTIVATIONS)), label=f"activation {i}")
            layers.append(ACTIVATIONS[name]())
            corners.add(name)
    size = input_size
    assert size is not None
    model = networks.Sequential(*layers)
    set_weights(draw, model, dtype)
    x = draw(strategies.arrays(dtype, (batch, channels, *size), SMALL), label="x")
    output = model.forward(x, vectorized)
    target = draw(strategies.arrays(dtype, output.shape, SMALL), label="target")
    return NetCase(model, networks.MSELoss(), x, target, corners)


# ------------------------------------------------------- normalization and recurrent networks


@st.composite
def batch_norm_cnn_cases(
    draw: st.DrawFn,
    dtype: np.dtype[Any],
    max_batch: int = 2,
    max_extra: int = 2,
    training: bool | None = None,
) -> NetCase:
    """Conv2d → BatchNorm2d → ReLU → MaxPool2d → Flatten → Linear, cross-entropy.

    Training mode (batch statistics; the running statistics updated) or eval
    mode (running statistics drawn non-negative for the variance), ``training``
    if given. With the batch statistics, every channel gets at least two
    values: the batch grows to 2 when the convolution leaves one position.
    ``momentum`` 0.1, 1/2, 1 or None (cumulative average), with or without the
    affine parameters (or only the bias) and the running statistics. The
    batch-norm bias, when there is one, is non-zero ("Kinks and forks" in the
    module docstring).
    """
    mode = draw(st.booleans(), label="training") if training is None else training
    batch = draw(st.integers(1, max_batch), label="batch")
    channels = draw(st.integers(1, 2), label="in_channels")
    conv, size, corners = draw(conv_layer(dtype, channels, max_extra=max_extra), label="conv")
    _, features, height, width = conv.output_shape((1, channels, *size))
    track = draw(st.integers(0, 3), label="track_running_stats") > 0
    if (mode or not track) and batch * height * width < 2:
        batch = 2
    x = draw(strategies.arrays(dtype, (batch, channels, *size), SMALL), label="x")
    momentum = draw(st.sampled_from([0.1, 0.5, 1.0, None]), label="momentum")
    affine = draw(st.integers(0, 3), label="affine") > 0
    bias = not affine or draw(st.integers(0, 3), label="bias") > 0
    norm = networks.BatchNorm2d(
        features,
        momentum=momentum,
        affine=affine,
        track_running_stats=track,
        bias=bias,
        dtype=dtype,
    )
    activated = (batch, features, height, width)
    pool = draw(pool_layer((height, width), "max"), label="pool")
    pooled = math.prod(pool.output_shape(activated)[1:])
    classes = draw(st.integers(2, 3), label="classes")
    linear = networks.Linear(pooled, classes, dtype=dtype)
    model = networks.Sequential(conv, norm, networks.ReLU(), pool, networks.Flatten(), linear)
    set_weights(draw, model, dtype, {"1.bias": NONZERO})
    model.train(mode)
    loss, target = draw_head(draw, "ce_index", dtype, batch, classes)
    corners |= pool_corners(pool) | {"training mode" if mode else "eval mode"}
    flags = {
        "momentum None": momentum is None,
        "no affine": not affine,
        "no bias": not bias,
        "no running statistics": not track,
    }
    corners |= {name for name, hit in flags.items() if hit}
    return NetCase(model, loss, x, target, corners)


NORM_ARCHITECTURES = [
    "layer_norm mlp",
    "batch_norm1d mlp",
    "batch_norm1d on (N, C, L)",
    "group_norm cnn",
    "layer_norm cnn",
]


@st.composite
def normalization_cases(draw: st.DrawFn, dtype: np.dtype[Any], max_batch: int = 3) -> NetCase:
    """A normalization, an activation and an optional Dropout between layers, cross-entropy.

    * ``layer_norm mlp`` / ``batch_norm1d mlp``: Linear → LayerNorm or
      BatchNorm1d → activation → [Dropout] → Linear;
    * ``batch_norm1d on (N, C, L)``: BatchNorm1d → activation → [Dropout] →
      Flatten → Linear;
    * ``group_norm cnn`` / ``layer_norm cnn``: Conv2d → GroupNorm (any number
      of groups dividing C) or LayerNorm over (C, H, W) → activation →
      [Dropout] → Flatten → Linear.

    Training or eval mode; Dropout with p in {0, 1/4, 1/2, 3/4, 1} and its
    own seeded NumPy generator (its mask is replayed by the torch twin).
    Normalization biases are non-zero ("Kinks and forks").
    """
    mode = draw(st.booleans(), label="training")
    architecture = draw(st.sampled_from(NORM_ARCHITECTURES), label="architecture")
    batch = draw(st.integers(1, max_batch), label="batch")
    corners = {architecture, "training mode" if mode else "eval mode"}
    affine = draw(st.integers(0, 3), label="affine") > 0
    bias = not affine or draw(st.integers(0, 3), label="bias") > 0
    corners |= ({"no affine"} if not affine else set()) | ({"no bias"} if not bias else set())
    layers: list[networks.Layer] = []
    norm: networks.Layer
    if architecture.endswith("mlp"):
        n_in = draw(st.integers(1, 3), label="in_features")
        hidden = draw(st.integers(1, 4), label="hidden")
        layers.append(networks.Linear(n_in, hidden, dtype=dtype))
        if architecture.startswith("layer_norm"):
            norm = networks.LayerNorm(hidden, elementwise_affine=affine, bias=bias, dtype=dtype)
        else:
            norm = networks.BatchNorm1d(hidden, affine=affine, bias=bias, dtype=dtype)
            batch = max(batch, 2)
        shape: tuple[int, ...] = (batch, n_in)
        features: tuple[int, ...] = (hidden,)
    elif architecture.startswith("batch_norm1d"):
        channels = draw(st.integers(1, 3), label="C")
        length = draw(st.integers(1, 3), label="L")
        batch = max(batch, 1 if length > 1 else 2)
        norm = networks.BatchNorm1d(channels, affine=affine, bias=bias, dtype=dtype)
        shape, features = (batch, channels, length), (channels, length)
    else:
        in_channels = draw(st.integers(1, 2), label="in_channels")
        conv, size, _ = draw(conv_layer(dtype, in_channels), label="conv")
        _, channels, height, width = conv.output_shape((1, in_channels, *size))
        layers.append(conv)
        if architecture.startswith("group_norm"):
            divisors = [g for g in range(1, channels + 1) if channels % g == 0]
            groups = draw(st.sampled_from(divisors), label="num_groups")
            norm = networks.GroupNorm(groups, channels, affine=affine, bias=bias, dtype=dtype)
            if channels // groups * height * width == 1:
                batch = max(batch, 2)
            corners.add("num_groups = 1" if groups == 1 else f"num_groups {groups} of {channels}")
        else:
            shape3 = (channels, height, width)
            norm = networks.LayerNorm(shape3, elementwise_affine=affine, bias=bias, dtype=dtype)
        shape, features = (batch, in_channels, *size), (channels, height, width)
    layers.append(norm)
    activation = draw(st.sampled_from(sorted(ACTIVATIONS)), label="activation")
    layers.append(ACTIVATIONS[activation]())
    corners.add(activation)
    if draw(st.booleans(), label="dropout"):
        p = draw(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), label="p")
        seed = draw(st.integers(0, 2**16), label="dropout seed")
        layers.append(networks.Dropout(p, rng=np.random.default_rng(seed)))
        corners |= {"dropout", f"dropout p = {p:g}"}
    if len(features) > 1:
        layers.append(networks.Flatten())
    classes = draw(st.integers(2, 3), label="classes")
    layers.append(networks.Linear(math.prod(features), classes, dtype=dtype))
    model = networks.Sequential(*layers)
    norm_index = layers.index(norm)
    set_weights(draw, model, dtype, {f"{norm_index}.bias": NONZERO})
    model.train(mode)
    x = draw(strategies.arrays(dtype, shape, SMALL), label="x")
    loss, target = draw_head(draw, "ce_index", dtype, batch, classes)
    return NetCase(model, loss, x, target, corners)


CELLS = ["rnn tanh", "rnn relu", "lstm", "gru"]
INDEX_DTYPES: list[np.dtype[Any]] = [np.dtype(np.int64), np.dtype(np.int32)]


@st.composite
def sequence_cases(
    draw: st.DrawFn,
    dtype: np.dtype[Any],
    max_batch: int = 2,
    max_steps: int = 3,
    cells: tuple[str, ...] = tuple(CELLS),
    tokens: bool | None = None,
    flatten: bool | None = None,
) -> NetCase:
    """[Embedding →] RNN, LSTM or GRU → LastStep (or Flatten of every step) → Linear, CE.

    Tokens (integer indices, int64 or int32, through an Embedding with or
    without ``padding_idx``) or float feature sequences; time-first or
    ``batch_first``; with or without biases. Flatten reads every time step
    and needs ``batch_first`` (``flatten``: drawn if None). The ReLU RNN is
    exact in float32, so its kinks fall where torch's do: with its weights
    in steps of 1/2 (as the recurrent specs draw them) and inputs on the
    1/16 grid in [−1, 1], the pre-activations of step t ≤ 3 are multiples of
    2^−(4+t) of magnitude at most 5, 20, 65 (I, H ≤ 3): 14 bits at most.
    Every other value of the recurrences is rounded, and the cells are smooth.
    """
    cell_name = draw(st.sampled_from(cells), label="cell")
    use_tokens = draw(st.booleans(), label="tokens") if tokens is None else tokens
    batch_first = draw(st.booleans(), label="batch_first")
    steps = draw(st.integers(1, max_steps), label="T")
    batch = draw(st.integers(1, max_batch), label="N")
    hidden = draw(st.integers(1, 3), label="H")
    bias = draw(st.integers(0, 3), label="bias") > 0
    corners = {cell_name, "batch_first" if batch_first else "time first"}
    corners |= {"T = 1" if steps == 1 else "T > 1"} | ({"no bias"} if not bias else set())
    layout = (batch, steps) if batch_first else (steps, batch)
    layers: list[networks.Layer] = []
    if use_tokens:
        rows = draw(st.integers(1, 5), label="num_embeddings")
        dim = draw(st.integers(1, 3), label="embedding_dim")
        padding = draw(st.none() | st.integers(-rows, rows - 1), label="padding_idx")
        layers.append(networks.Embedding(rows, dim, padding, dtype=dtype))
        index_dtype: np.dtype[Any] = draw(st.sampled_from(INDEX_DTYPES), label="index dtype")
        indices = st.integers(0, rows - 1)
        x = draw(strategies.arrays(index_dtype, layout, indices), label="tokens")
        inputs = dim
        corners |= {"tokens", f"{index_dtype.name} tokens"}
        corners |= {"padding_idx"} if padding is not None else set()
    else:
        inputs = draw(st.integers(1, 3), label="input_size")
        x = draw(strategies.arrays(dtype, (*layout, inputs), SMALL), label="x")
        corners.add("feature sequence")
    options: dict[str, Any] = {"bias": bias, "batch_first": batch_first, "dtype": dtype}
    cell: networks.Layer
    if cell_name.startswith("rnn"):
        nonlinearity = cell_name.split()[1]
        cell = networks.RNN(inputs, hidden, nonlinearity=nonlinearity, **options)
    else:
        cell = {"lstm": networks.LSTM, "gru": networks.GRU}[cell_name](inputs, hidden, **options)
    layers.append(cell)
    readout = "last step"
    if flatten is None:
        flatten = batch_first and draw(st.booleans(), label="flatten every step")
    if flatten:
        assert batch_first, "Flatten reads every step of a batch_first sequence only"
        readout = "every step (Flatten)"
    layers.append(networks.LastStep(batch_first) if readout == "last step" else networks.Flatten())
    corners.add(readout)
    features = hidden if readout == "last step" else hidden * steps
    classes = draw(st.integers(2, 3), label="classes")
    layers.append(networks.Linear(features, classes, dtype=dtype))
    model = networks.Sequential(*layers)
    weights = RELU_WEIGHTS if cell_name == "rnn relu" else SMALL
    set_weights(draw, model, dtype, {layers.index(cell): weights})
    loss, target = draw_head(draw, "ce_index", dtype, batch, classes)
    return NetCase(model, loss, x, target, corners)
