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

    ``Sigmoid`` followed by ``BCELoss`` evaluates ``log(1 − σ(z))`` through the
    rounded ``σ(z)``: an error of one unit in σ becomes a relative error
    ``u / (1 − σ)`` in ``1 − σ``, and the same near ``σ = 0``. The condition
    number ``κ = max(1/σ, 1/(1 − σ))`` over the outputs is added to the
    reduction length, and the output layer of such a network is drawn with
    weights at most 1/4 in magnitude so that σ never saturates (κ stays below
    a hundred).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

from oracle_tests.network_oracles import torch_gradients
from reference_impl import networks, vectorized
from reference_impl.testing import report, strategies
from reference_impl.testing.comparison import assert_close

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


@dataclass
class NetCase:
    model: networks.Sequential
    loss: networks.Loss
    x: np.ndarray[Any, Any]
    target: np.ndarray[Any, Any]
    corners: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.corners |= {"batch of one"} if self.x.shape[0] == 1 else set()
        self.corners |= {"float32"} if self.dtype == np.float32 else set()

    @property
    def dtype(self) -> np.dtype[Any]:
        dtype: np.dtype[Any] = self.x.dtype
        return dtype

    def describe(self) -> str:
        layers = ", ".join(repr(layer) for layer in self.model)
        return (
            f"[{layers}] + {self.loss!r}, x: {self.dtype.name}{list(self.x.shape)}, "
            f"target: {self.target.dtype.name}{list(self.target.shape)}"
        )


def set_weights(
    draw: st.DrawFn,
    model: networks.Sequential,
    dtype: np.dtype[Any],
    elements: dict[int, st.SearchStrategy[float]] | None = None,
) -> None:
    """Replace every parameter by grid values (``elements[i]`` for layer ``i`` if given)."""
    state = {}
    for key, value in model.state_dict().items():
        index = int(key.split(".")[0])
        values = (elements or {}).get(index, SMALL)
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
    layer: networks.Layer, input_shape: tuple[int, ...], output_shape: tuple[int, ...]
) -> int:
    """The longest reduction of one layer, forward or backward."""
    batch = input_shape[0]
    if isinstance(layer, networks.Linear):
        return layer.in_features + layer.out_features + batch
    if isinstance(layer, networks.Conv2d):
        taps = layer.kernel_size[0] * layer.kernel_size[1]
        positions = batch * output_shape[2] * output_shape[3]
        groups = int(layer.hyper["groups"])
        return (layer.in_channels // groups + layer.out_channels) * taps + positions
    if isinstance(layer, (networks.MaxPool2d, networks.AvgPool2d)):
        return int(np.prod(np.broadcast_to(layer.hyper["kernel_size"], 2)))
    return 1


def network_length(case: NetCase) -> int:
    """The reduction length sizing the network's tolerance (module docstring)."""
    length = 0
    value = case.x
    for layer in case.model:
        output = layer.forward(value, vectorized)
        length += layer_length(layer, value.shape, output.shape)
        value = output
    length += case.target.size if case.target.dtype.kind == "f" else case.target.shape[0]
    if isinstance(case.loss, networks.BCELoss):
        closest = float(np.min(np.minimum(value, 1.0 - value)))
        assert closest > 0, "σ saturated: the strategy must keep BCELoss inputs inside (0, 1)"
        length += math.ceil(1.0 / closest)
    return int(length)


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


def check_against_torch(
    case: NetCase, label: str, namespace: str = "vectorized", claimed: frozenset[str] = frozenset()
) -> None:
    """Loss, ``∂L/∂x`` and every parameter gradient of ``namespace`` agree with autograd.

    A parameter gradient present on one side only is a ``None`` meeting an array.
    """
    length = network_length(case)
    value, grad_x, grads = networks.loss_and_gradients(
        case.model, case.loss, case.x, case.target, namespace
    )
    expected = torch_gradients(case.model, case.loss, case.x, case.target)
    compared: list[tuple[str, Any, Any]] = [
        ("loss", np.asarray(value), np.asarray(expected[0])),
        ("grad_x", grad_x, expected[1]),
    ]
    for key in sorted(grads.keys() | expected[2].keys()):
        compared.append((f"grad {key}", grads.get(key), expected[2].get(key)))
    for quantity, actual, wanted in compared:
        names = (namespace, "torch.autograd")
        assert_network_close(case, label, quantity, actual, wanted, names, length)
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
    elements: dict[int, st.SearchStrategy[float]] = {}
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
