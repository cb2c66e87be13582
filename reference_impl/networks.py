r"""Composite networks: a ``Sequential`` of layers, the losses, and SGD training.

Every layer calls the public formulas of one namespace, either
:mod:`reference_impl.loops` or :mod:`reference_impl.vectorized` (pass the
module or its name, ``"loops"`` / ``"vectorized"``), so a whole network can be
run index by index or on whole arrays. Parameters use torch's layouts and
``state_dict`` names (``"0.weight"``, ``"0.bias"``, ...): the weights of a
:class:`Sequential` load unchanged into the equivalent ``torch.nn.Sequential``.

Backpropagation is the chain rule applied layer by layer, from the loss back to
the input. ``forward`` keeps each layer's input; ``backward`` hands the
gradient with respect to a layer's output, ``δ``, to that layer's
``*_backward`` formula, which returns the gradient with respect to the layer's
input (the ``δ`` of the layer before) and the gradients of its parameters.

The δ recursion (seed 003). For the two-layer perceptron

    z1 = W1 x + b1,   a1 = relu(z1),   z2 = W2 a1 + b2,   ŷ = σ(z2),
    L = −[y log ŷ + (1 − y) log(1 − ŷ)],

write ``δ2 = ∂L/∂z2`` and ``δ1 = ∂L/∂z1``. Then

    δ2 = ∂L/∂ŷ · σ'(z2) = (ŷ − y) / (ŷ (1 − ŷ)) · ŷ (1 − ŷ) = ŷ − y
    δ1 = (W2ᵀ δ2) ⊙ 1[z1 > 0]
    ∂L/∂W2 = δ2 a1ᵀ,   ∂L/∂b2 = δ2,   ∂L/∂W1 = δ1 xᵀ,   ∂L/∂b1 = δ1

For a batch of N examples in rows (torch's layout) and the mean over the N·k
outputs, each row of δ2 is divided by N·k and the parameter gradients sum over
the batch: ``∂L/∂W = δᵀ A`` and ``∂L/∂b = Σ_n δ_n``. The general rule for any
layer ``l`` with activation ``f`` is ``δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ f'(z_l)``,
and a convolution takes the place of ``W_{l+1}ᵀ`` by its "full" correlation
with the rotated kernel (seeds 001 and 002); a pooling layer routes δ to the
window positions that produced each output (seed 002).

The chained formulas never use the cancelled forms: ``Sigmoid`` followed by
``BCELoss`` multiplies ``binary_cross_entropy_backward`` by
``sigmoid_backward``, exactly as torch does, so that the identity
``δ2 = ŷ − y`` is a property to check, not an assumption.

Training: :class:`SGD` keeps one momentum buffer per parameter and applies the
namespace's ``sgd_step``; :func:`train_epoch` runs one pass over mini-batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from reference_impl import loops, vectorized
from reference_impl._validation import FloatArray, float_array, int_pair

__all__ = [
    "SGD",
    "AvgPool2d",
    "BCELoss",
    "BCEWithLogitsLoss",
    "Conv2d",
    "CrossEntropyLoss",
    "Flatten",
    "Layer",
    "Linear",
    "Loss",
    "MSELoss",
    "MaxPool2d",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "batches",
    "loss_and_gradients",
    "resolve_namespace",
    "train_epoch",
]

Namespace = ModuleType | str
IntPair = int | tuple[int, int]

_NAMESPACES = {"loops": loops, "vectorized": vectorized}


def resolve_namespace(namespace: Namespace) -> ModuleType:
    """The module for ``"loops"``, ``"vectorized"`` or one of the two modules itself."""
    if isinstance(namespace, str):
        if namespace not in _NAMESPACES:
            raise ValueError(f"namespace must be 'loops' or 'vectorized', got {namespace!r}")
        return _NAMESPACES[namespace]
    if namespace is loops or namespace is vectorized:
        return namespace
    raise TypeError(
        "namespace must be reference_impl.loops, reference_impl.vectorized or their name, "
        f"got {namespace!r}"
    )


def _uniform(
    rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, dtype: np.dtype[Any]
) -> FloatArray:
    """torch's default initialisation: U(−1/√fan_in, 1/√fan_in)."""
    limit = 1.0 / math.sqrt(max(fan_in, 1))
    return np.asarray(rng.uniform(-limit, limit, size=shape), dtype=dtype)


# --------------------------------------------------------------------------- layers


class Layer:
    """A layer: ``forward`` keeps what ``backward`` needs.

    ``parameters()`` maps local names (``"weight"``, ``"bias"``) to arrays, in
    torch's order; ``backward`` returns the gradient with respect to the
    layer's input and a dict of parameter gradients with the same names.
    """

    def parameters(self) -> dict[str, FloatArray]:
        return {}

    def set_parameter(self, name: str, value: FloatArray) -> None:
        raise KeyError(f"{type(self).__name__} has no parameter {name!r}")

    def forward(self, x: FloatArray, ns: ModuleType) -> FloatArray:
        raise NotImplementedError

    def backward(
        self, grad_output: FloatArray, ns: ModuleType
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        raise NotImplementedError

    def _saved_input(self) -> FloatArray:
        saved: FloatArray | None = getattr(self, "_input", None)
        if saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return saved


class _ParametrizedLayer(Layer):
    weight: FloatArray
    bias: FloatArray | None

    def parameters(self) -> dict[str, FloatArray]:
        params = {"weight": self.weight}
        if self.bias is not None:
            params["bias"] = self.bias
        return params

    def set_parameter(self, name: str, value: FloatArray) -> None:
        current = self.parameters().get(name)
        if current is None:
            raise KeyError(f"{type(self).__name__} has no parameter {name!r}")
        value = float_array(name, value)
        if value.shape != current.shape:
            raise ValueError(f"{name} must have shape {current.shape}, got {value.shape}")
        setattr(self, name, np.array(value, dtype=current.dtype, copy=True))

    @staticmethod
    def _grads(grad_weight: FloatArray, grad_bias: FloatArray | None) -> dict[str, FloatArray]:
        grads = {"weight": grad_weight}
        if grad_bias is not None:
            grads["bias"] = grad_bias
        return grads


class Linear(_ParametrizedLayer):
    """``z = x Wᵀ + b`` with ``W`` of shape (out_features, in_features), as ``torch.nn.Linear``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        dtype: type | np.dtype[Any] = np.float64,
        rng: np.random.Generator | None = None,
    ) -> None:
        rng = np.random.default_rng() if rng is None else rng
        dt = np.dtype(dtype)
        self.in_features, self.out_features = in_features, out_features
        self.weight = _uniform(rng, (out_features, in_features), in_features, dt)
        self.bias = _uniform(rng, (out_features,), in_features, dt) if bias else None
        self._input: FloatArray | None = None

    def forward(self, x: FloatArray, ns: ModuleType) -> FloatArray:
        self._input = x
        out: FloatArray = ns.linear(x, self.weight, self.bias)
        return out

    def backward(
        self, grad_output: FloatArray, ns: ModuleType
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        grad_input, grad_weight, grad_bias = ns.linear_backward(
            grad_output, self._saved_input(), self.weight, self.bias
        )
        return grad_input, self._grads(grad_weight, grad_bias)

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features}, bias={self.bias is not None})"


class Conv2d(_ParametrizedLayer):
    """Cross-correlation with ``W`` of shape (out, in/groups, kh, kw), as ``torch.nn.Conv2d``.

    Calls ``conv2d`` / ``conv2d_backward`` of the namespace.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: Any = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        dtype: type | np.dtype[Any] = np.float64,
        rng: np.random.Generator | None = None,
    ) -> None:
        rng = np.random.default_rng() if rng is None else rng
        dt = np.dtype(dtype)
        kh, kw = int_pair("kernel_size", kernel_size, 1)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = (kh, kw)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        fan_in = in_channels // groups * kh * kw
        self.weight = _uniform(rng, (out_channels, in_channels // groups, kh, kw), fan_in, dt)
        self.bias = _uniform(rng, (out_channels,), fan_in, dt) if bias else None
        self._input: FloatArray | None = None

    def _hyper(self) -> dict[str, Any]:
        return {
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self.dilation,
            "groups": self.groups,
        }

    def forward(self, x: FloatArray, ns: ModuleType) -> FloatArray:
        self._input = x
        out: FloatArray = ns.conv2d(x, self.weight, self.bias, **self._hyper())
        return out

    def backward(
        self, grad_output: FloatArray, ns: ModuleType
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        grad_input, grad_weight, grad_bias = ns.conv2d_backward(
            grad_output, self._saved_input(), self.weight, self.bias, **self._hyper()
        )
        return grad_input, self._grads(grad_weight, grad_bias)

    def __repr__(self) -> str:
        return (
            f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            + ", ".join(f"{k}={v!r}" for k, v in self._hyper().items())
            + f", bias={self.bias is not None})"
        )


class _Elementwise(Layer):
    """An activation ``a = f(z)``: ``δ_z = δ_a ⊙ f'(z)``."""

    function = ""

    def __init__(self) -> None:
        self._input: FloatArray | None = None

    def forward(self, x: FloatArray, ns: ModuleType) -> FloatArray:
        self._input = x
        out: FloatArray = getattr(ns, self.function)(x)
        return out

    def backward(
        self, grad_output: FloatArray, ns: ModuleType
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        grad: FloatArray = getattr(ns, self.function + "_backward")(
            grad_output, self._saved_input()
        )
        return grad, {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(_Elementwise):
    """``max(z, 0)``; the gradient gate is ``1[z > 0]`` (0 at z = 0, as torch)."""

    function = "relu"


class Sigmoid(_Elementwise):
    """``σ(z)``; ``σ'(z) = σ(z)(1 − σ(z))``."""

    function = "sigmoid"


class Tanh(_Elementwise):
    """``tanh(z)``; ``tanh'(z) = 1 − tanh²(z)``."""

    function = "tanh"


class MaxPool2d(Layer):
    """Max pooling, as ``torch.nn.MaxPool2d``: the gradient goes to each window's arg-max."""

    def __init__(
        self,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        ceil_mode: bool = False,
    ) -> None:
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode
        self._input: FloatArray | None = None

    def _hyper(self) -> dict[str, Any]:
        return {
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self.dilation,
            "ceil_mode": self.ceil_mode,
        }

    def forward(self, x: FloatArray, ns: ModuleType) -> FloatArray:
        self._input = x
        out: FloatArray = ns.max_pool2d(x, self.kernel_size, **self._hyper())
        return out

    def backward(
        self, grad_output: FloatArray, ns: ModuleType
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        grad: FloatArray = ns.max_pool2d_backward(
            grad_output, self._saved_input(), self.kernel_size, **self._hyper()
        )
        return grad, {}

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v!r}" for k, v in self._hyper().items())
        return f"MaxPool2d(kernel_size={self.kernel_size!r}, {hyper})"


class AvgPool2d(Layer):
    """Average pooling, as ``torch.nn.AvgPool2d``: each window shares δ out equally."""

    def __init__(
        self,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override
        self._input: FloatArray | None = None

    def _hyper(self) -> dict[str, Any]:
        return {
            "stride": self.stride,
            "padding": self.padding,
            "ceil_mode": self.ceil_mode,
            "count_include_pad": self.count_include_pad,
            "divisor_override": self.divisor_override,
        }

    def forward(self, x: FloatArray, ns: ModuleType) -> FloatArray:
        self._input = x
        out: FloatArray = ns.avg_pool2d(x, self.kernel_size, **self._hyper())
        return out

    def backward(
        self, grad_output: FloatArray, ns: ModuleType
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        grad: FloatArray = ns.avg_pool2d_backward(
            grad_output, self._saved_input(), self.kernel_size, **self._hyper()
        )
        return grad, {}

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v!r}" for k, v in self._hyper().items())
        return f"AvgPool2d(kernel_size={self.kernel_size!r}, {hyper})"


class Flatten(Layer):
    """``(N, d1, d2, ...) → (N, d1·d2·...)``, as ``torch.nn.Flatten()``; backward reshapes back."""

    def __init__(self) -> None:
        self._shape: tuple[int, ...] | None = None

    def forward(self, x: FloatArray, ns: ModuleType) -> FloatArray:
        if x.ndim < 1:
            raise ValueError(f"Flatten needs at least one dimension, got shape {x.shape}")
        self._shape = x.shape
        return np.array(x, copy=True).reshape(x.shape[0], -1)

    def backward(
        self, grad_output: FloatArray, ns: ModuleType
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        if self._shape is None:
            raise RuntimeError("Flatten.backward called before forward")
        return np.array(grad_output, copy=True).reshape(self._shape), {}

    def __repr__(self) -> str:
        return "Flatten()"


# ----------------------------------------------------------------------- the network


class Sequential:
    """Layers applied in order, as ``torch.nn.Sequential``.

    ``forward(x)`` runs every layer and keeps their inputs; ``backward(grad_output)``
    returns ``(∂L/∂x, {"<index>.<name>": ∂L/∂parameter})`` and leaves in
    :attr:`grad_inputs` the gradient with respect to each layer's input (so
    ``grad_inputs[i]`` is the δ arriving at layer ``i``).
    """

    def __init__(self, *layers: Layer, namespace: Namespace = "vectorized") -> None:
        self.layers = list(layers)
        self.namespace = resolve_namespace(namespace)
        self.grad_inputs: list[FloatArray] = []
        self._forward_namespace: ModuleType | None = None

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Layer:
        return self.layers[index]

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"

    def state_dict(self) -> dict[str, FloatArray]:
        """Every parameter under torch's key, ``"<layer index>.<name>"``. Copies."""
        return {
            f"{i}.{name}": value.copy()
            for i, layer in enumerate(self.layers)
            for name, value in layer.parameters().items()
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace parameters by arrays (copied, cast to each parameter's dtype).

        Every parameter must be present and no key may be unknown, as torch's
        strict loading.
        """
        expected = set(self.state_dict())
        missing, unknown = expected - set(state), set(state) - expected
        if missing or unknown:
            raise KeyError(f"state mismatch: missing {sorted(missing)}, unknown {sorted(unknown)}")
        for key, value in state.items():
            index, name = key.split(".", 1)
            layer = self.layers[int(index)]
            current = layer.parameters()[name]
            layer.set_parameter(name, np.asarray(value, dtype=current.dtype))

    def forward(self, x: FloatArray, namespace: Namespace | None = None) -> FloatArray:
        """The output of the last layer, computed in ``namespace`` (default: the model's)."""
        ns = self.namespace if namespace is None else resolve_namespace(namespace)
        x = float_array("x", x)
        for layer in self.layers:
            x = layer.forward(x, ns)
        self._forward_namespace = ns
        return x

    __call__ = forward

    def backward(self, grad_output: FloatArray) -> tuple[FloatArray, dict[str, FloatArray]]:
        """``(∂L/∂x, parameter gradients by state_dict key)`` for the last ``forward``."""
        ns = self._forward_namespace
        if ns is None:
            raise RuntimeError("Sequential.backward called before forward")
        grad = float_array("grad_output", grad_output)
        grads: dict[str, FloatArray] = {}
        grad_inputs: list[FloatArray] = []
        for index in reversed(range(len(self.layers))):
            grad, layer_grads = self.layers[index].backward(grad, ns)
            grad_inputs.append(grad)
            for name, value in layer_grads.items():
                grads[f"{index}.{name}"] = value
        self.grad_inputs = grad_inputs[::-1]
        ordered = {key: grads[key] for key in self.state_dict() if key in grads}
        return grad, ordered


# --------------------------------------------------------------------------- losses


class Loss:
    """A scalar loss ``L(input, target)`` with torch's ``reduction`` (default ``"mean"``)."""

    function = ""

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum' for training, got {reduction!r}")
        self.reduction = reduction
        self._saved: tuple[FloatArray, NDArray[Any], ModuleType] | None = None

    def forward(
        self, input: FloatArray, target: NDArray[Any], namespace: Namespace = "vectorized"
    ) -> FloatArray:
        ns = resolve_namespace(namespace)
        self._saved = (input, target, ns)
        out: FloatArray = getattr(ns, self.function)(input, target, self.reduction)
        return out

    __call__ = forward

    def backward(self) -> FloatArray:
        """``∂L/∂input`` for the last ``forward`` (the upstream gradient of L itself is 1)."""
        if self._saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        input, target, ns = self._saved
        one = np.ones((), dtype=input.dtype)
        grad: FloatArray = getattr(ns, self.function + "_backward")(
            one, input, target, self.reduction
        )
        return grad

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class MSELoss(Loss):
    """``mean((x − y)²)``; ``∂L/∂x = 2 (x − y) / n``."""

    function = "mse_loss"


class BCELoss(Loss):
    """Binary cross-entropy on probabilities (put a :class:`Sigmoid` before it)."""

    function = "binary_cross_entropy"


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on logits; ``∂L/∂z = (σ(z) − y) / n``."""

    function = "binary_cross_entropy_with_logits"


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on logits (N, C), target class indices (N,) or probabilities."""

    function = "cross_entropy"


def loss_and_gradients(
    model: Sequential,
    loss: Loss,
    x: FloatArray,
    target: NDArray[Any],
    namespace: Namespace | None = None,
) -> tuple[float, FloatArray, dict[str, FloatArray]]:
    """One forward and backward pass: ``(L, ∂L/∂x, parameter gradients)``."""
    ns = model.namespace if namespace is None else resolve_namespace(namespace)
    output = model.forward(x, ns)
    value = float(loss.forward(output, target, ns))
    grad_input, grads = model.backward(loss.backward())
    return value, grad_input, grads


# ------------------------------------------------------------------------- training


@dataclass
class SGD:
    """``torch.optim.SGD`` over a :class:`Sequential`, one ``sgd_step`` per parameter.

    ``buffers`` holds the momentum buffer of each parameter (by state_dict
    key) after the first step when ``momentum > 0``.
    """

    model: Sequential
    lr: float
    momentum: float = 0.0
    dampening: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False
    buffers: dict[str, FloatArray] = field(default_factory=dict)

    def step(self, grads: Mapping[str, FloatArray]) -> None:
        """Update every parameter that has a gradient in ``grads``."""
        ns = self.model.namespace
        params = self.model.state_dict()
        updated: dict[str, FloatArray] = {}
        for key, param in params.items():
            if key not in grads:
                updated[key] = param
                continue
            new_param, buffer = ns.sgd_step(
                param,
                grads[key],
                self.lr,
                momentum=self.momentum,
                dampening=self.dampening,
                weight_decay=self.weight_decay,
                nesterov=self.nesterov,
                momentum_buffer=self.buffers.get(key),
            )
            updated[key] = new_param
            if buffer is not None:
                self.buffers[key] = buffer
        self.model.load_state_dict(updated)


def batches(
    x: FloatArray,
    target: NDArray[Any],
    batch_size: int,
    order: Sequence[int] | NDArray[Any] | None = None,
) -> Iterable[tuple[FloatArray, NDArray[Any]]]:
    """Consecutive mini-batches of ``(x, target)`` in ``order`` (default: as stored)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    index = np.arange(len(x)) if order is None else np.asarray(order)
    for start in range(0, len(index), batch_size):
        chunk = index[start : start + batch_size]
        yield x[chunk], target[chunk]


def train_epoch(
    model: Sequential,
    loss: Loss,
    optimizer: SGD,
    x: FloatArray,
    target: NDArray[Any],
    batch_size: int,
    order: Sequence[int] | NDArray[Any] | None = None,
) -> float:
    """One pass over the data in mini-batches, one SGD step each; the mean batch loss."""
    values = []
    for xb, yb in batches(x, target, batch_size, order):
        value, _, grads = loss_and_gradients(model, loss, xb, yb)
        optimizer.step(grads)
        values.append(value)
    return float(np.mean(values)) if values else float("nan")
