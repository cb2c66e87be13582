"""Layers and :class:`Sequential`, the network that chains them.

Nearly every layer is one formula pair, ``<formula>`` and ``<formula>_backward``,
with parameters and fixed hyper-parameters: :class:`Functional`. The classes
named as ``torch.nn`` modules only choose its formula, parameters and
hyper-parameters, and record their namesake's constructor ``arguments``
(``repr`` shows them; the tests build the torch twin from them). The
normalization and dropout layers are in :mod:`.normalization`, the embedding
and recurrent layers in :mod:`.recurrent`.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from reference_impl import loops, vectorized
from reference_impl._validation import (
    FloatArray,
    check_bool,
    float_array,
    index_array,
    int_pair,
)

Namespace = ModuleType | str
IntPair = int | tuple[int, int]
#: a parameter or buffer: float, but for an integer counter such as ``num_batches_tracked``
Array = NDArray[Any]

_NAMESPACES = {"loops": loops, "vectorized": vectorized}


def resolve_namespace(namespace: Namespace) -> ModuleType:
    """The module for ``"loops"``, ``"vectorized"`` or one of the two modules itself."""
    if isinstance(namespace, str):
        if namespace not in _NAMESPACES:
            raise ValueError(f"namespace must be 'loops' or 'vectorized', got {namespace!r}")
        return _NAMESPACES[namespace]
    if namespace is loops or namespace is vectorized:
        return namespace
    raise TypeError(f"namespace must be the loops or vectorized module or its name: {namespace!r}")


class Layer(ABC):
    """A layer of a :class:`Sequential`: ``forward`` keeps what ``backward`` needs.

    ``parameters()`` (trained) and ``buffers()`` (kept but not trained, such as
    running statistics) map torch's local names to arrays, in torch's order;
    together they are the layer's part of the ``state_dict``, held as
    attributes of the same names. ``backward`` returns ``∂L/∂input`` and the
    gradients of the parameters, under the same names; ``∂L/∂input`` is
    ``None`` for a layer that reads integer indices (``index_input``).

    ``training`` is torch's ``Module.training``: True (the default) in
    training mode, False in eval mode; :meth:`Sequential.train` and
    :meth:`Sequential.eval` set it on every layer. Only ``BatchNorm*`` and
    ``Dropout`` read it.
    """

    #: positional and keyword arguments of the ``torch.nn`` module of the same class name
    arguments: tuple[tuple[Any, ...], dict[str, Any]] = ((), {})
    #: torch's ``Module.training``
    training: bool = True
    #: the layer's input is an array of integer indices, which has no gradient (``Embedding``)
    index_input: bool = False

    def parameters(self) -> dict[str, FloatArray]:
        return {}

    def buffers(self) -> dict[str, Array]:
        return {}

    def state(self) -> dict[str, Array]:
        """Parameters then buffers, as torch orders a module's ``state_dict``."""
        return {**self.parameters(), **self.buffers()}

    def set_parameter(self, name: str, value: Array) -> None:
        """Replace a parameter or buffer by a copy of ``value`` (same shape, its dtype).

        An integer buffer (``num_batches_tracked``) takes an integer array, the
        others a float32 or float64 one.
        """
        current = self.state().get(name)
        if current is None:
            raise KeyError(f"{type(self).__name__} has no parameter or buffer {name!r}")
        if current.dtype.kind in "iu":
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "iu":
                raise TypeError(f"{name} must be an integer numpy.ndarray, got {value!r}")
        else:
            value = float_array(name, value)
        if value.shape != current.shape:
            raise ValueError(f"{name} must have shape {current.shape}, got {value.shape}")
        setattr(self, name, np.array(value, dtype=current.dtype, copy=True))

    @abstractmethod
    def forward(self, x: Array, ns: ModuleType) -> FloatArray: ...

    @abstractmethod
    def backward(
        self, grad_output: FloatArray, ns: ModuleType
    ) -> tuple[FloatArray | None, dict[str, FloatArray]]: ...

    @abstractmethod
    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape ``forward`` returns for an input of shape ``input_shape``."""

    def __repr__(self) -> str:
        args, kwargs = self.arguments
        shown = [repr(v) for v in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
        return f"{type(self).__name__}({', '.join(shown)})"


class Functional(Layer):
    """The layer of one formula pair of the namespaces, ``<formula>`` and ``<formula>_backward``::

        forward:   ns.<formula>(x, **params, **buffers, **hyper)
        backward:  ns.<formula>_backward(grad_output, x, **params, **buffers, **hyper)
                   → grad_input, or (grad_input, grad_param_1, grad_param_2, ...)

    ``params`` maps parameter names (torch's, e.g. ``{"weight": w, "bias": b}``)
    to arrays, passed by keyword under the same names (a layer whose
    ``state_dict`` names differ from the formula's, torch's ``weight_ih_l0``
    for ``weight_ih``, says so in :meth:`formula_argument`). Their order is
    that of the gradients the backward returns after ``grad_input``. ``None``
    stands for an absent argument (``bias=False``, or an initial state left
    at zeros): it is passed as ``None``, has no gradient and no
    ``state_dict`` entry; its place in the backward's result is dropped.
    A layer whose input holds integer indices (``index_input``, as
    ``Embedding``) has no input gradient: every gradient the backward
    returns is a parameter's, and ``grad_input`` is ``None``.

    ``buffers`` are arrays passed by keyword and kept in the ``state_dict``
    but never trained.

    ``hyper`` are the other keyword arguments of both formulas (sizes, flags,
    arrays such as masks), passed unchanged: ``Functional("max_pool2d",
    kernel_size=2, stride=2)`` is ``MaxPool2d(2, 2)``.

    A formula with several outputs (a tuple, as the recurrent sequences'
    ``(output, h_n)``) makes the layer of its first output: the backward
    receives ``(grad_output, 0, ...)``, zeros for the others.

    :meth:`pre_forward` is the one place where a layer changes its own state
    during a pass, as torch's modules do inside their ``forward``: it runs
    before the formula, with the pass's input and namespace, and may replace
    buffers and hyper-parameters (``BatchNorm*`` updates its running
    statistics in training mode, ``Dropout`` draws its mask). The backward
    uses the arguments the forward was called with.

    A named layer for a new pair, ``layer_norm(x, normalized_shape, weight,
    bias, eps)`` say, is (the actual ``LayerNorm`` adds torch's options)::

        class LayerNorm(Functional):
            def __init__(self, normalized_shape, eps=1e-5):
                weight, bias = np.ones(normalized_shape), np.zeros(normalized_shape)
                super().__init__("layer_norm", params={"weight": weight, "bias": bias},
                                 normalized_shape=normalized_shape, eps=eps)
                self.arguments = ((normalized_shape,), {"eps": eps})  # torch.nn.LayerNorm's
    """

    def __init__(
        self,
        formula: str,
        /,
        *,
        params: Mapping[str, FloatArray | None] | None = None,
        buffers: Mapping[str, FloatArray] | None = None,
        **hyper: Any,
    ) -> None:
        if not isinstance(formula, str):
            raise TypeError(f"formula must be a str, got {type(formula).__name__}")
        names = (formula, formula + "_backward")
        if not all(hasattr(ns, name) for ns in _NAMESPACES.values() for name in names):
            raise ValueError(f"formula must name a formula pair of both namespaces: {formula!r}")
        self.formula, self.hyper = formula, dict(hyper)
        self.param_names, self.buffer_names = tuple(params or {}), tuple(buffers or {})
        self._saved: tuple[Array, dict[str, Any], tuple[FloatArray, ...]] | None = None
        for name, value in [*(params or {}).items(), *(buffers or {}).items()]:
            if not name.isidentifier() or name in dir(self) or name in self.hyper:
                raise ValueError(f"{name!r} cannot name a parameter or buffer of {formula}")
            setattr(self, name, None if value is None else float_array(name, value))
        self._check_keywords(getattr(vectorized, formula))
        self.arguments = ((formula,) if type(self) is Functional else (), dict(hyper))

    def _check_keywords(self, function: Callable[..., Any]) -> None:
        """Every parameter, buffer and hyper-parameter is a keyword the formula takes."""
        signature = inspect.signature(function)
        kinds = {p.kind for p in signature.parameters.values()}
        if inspect.Parameter.VAR_KEYWORD in kinds:
            return
        names = [*map(self.formula_argument, [*self.param_names, *self.buffer_names])]
        for name in [*names, *self.hyper]:
            if name not in signature.parameters:
                raise ValueError(
                    f"{self.formula} takes no argument {name!r}: parameters, buffers and "
                    "hyper-parameters are passed to the formula by keyword, under its names"
                )

    def parameters(self) -> dict[str, FloatArray]:
        values = {name: getattr(self, name) for name in self.param_names}
        return {name: value for name, value in values.items() if value is not None}

    def buffers(self) -> dict[str, Array]:
        return {name: getattr(self, name) for name in self.buffer_names}

    def formula_argument(self, name: str) -> str:
        """The formula's argument name for the parameter or buffer ``name`` (the same here)."""
        return name

    def _formula_arguments(self) -> dict[str, Any]:
        state = [*self.param_names, *self.buffer_names]
        named = {self.formula_argument(name): getattr(self, name) for name in state}
        return {**named, **self.hyper}

    def pre_forward(self, x: Array, ns: ModuleType) -> None:
        """Called by :meth:`forward` before the formula (see the class docstring); no-op here."""

    def forward(self, x: Array, ns: ModuleType) -> FloatArray:
        self.pre_forward(x, ns)
        kwargs = self._formula_arguments()
        out = getattr(ns, self.formula)(x, **kwargs)
        others: tuple[FloatArray, ...] = ()
        if isinstance(out, tuple):
            out, *rest = out
            others = tuple(rest)
        self._saved = (x, kwargs, others)
        result: FloatArray = out
        return result

    def backward(
        self, grad_output: FloatArray, ns: ModuleType
    ) -> tuple[FloatArray | None, dict[str, FloatArray]]:
        x, kwargs, others = self._saved_state()
        upstream: Any = grad_output
        if others:
            upstream = (grad_output, *(np.zeros_like(other) for other in others))
        result = getattr(ns, self.formula + "_backward")(upstream, x, **kwargs)
        grads = list(result) if isinstance(result, tuple) else [result]
        grad_input = None if self.index_input else grads.pop(0)
        if len(grads) != len(self.param_names):
            raise TypeError(
                f"{self.formula}_backward: {len(grads)} gradients for {self.param_names}"
            )
        named = zip(self.param_names, grads, strict=True)
        return grad_input, {name: grad for name, grad in named if grad is not None}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of the vectorized formula's output for zeros of ``input_shape``."""
        kwargs = self._formula_arguments()
        dtype = next(iter(self.parameters().values()), np.zeros(0)).dtype
        zeros = np.zeros(input_shape, np.int64 if self.index_input else dtype)
        out = getattr(vectorized, self.formula)(zeros, **kwargs)
        return tuple((out[0] if isinstance(out, tuple) else out).shape)

    @property
    def saved_input(self) -> Array:
        """The input of the last ``forward``, where ``backward`` takes the derivatives."""
        return self._saved_state()[0]

    def _saved_state(self) -> tuple[Array, dict[str, Any], tuple[FloatArray, ...]]:
        if self._saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._saved


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return int(value)


def _initializer(
    rng: np.random.Generator | None, dtype: type | np.dtype[Any], fan_in: int
) -> Callable[[tuple[int, ...]], FloatArray]:
    """torch's default initialisation of weights and biases: U(−1/√fan_in, 1/√fan_in)."""
    generator = np.random.default_rng() if rng is None else rng
    limit = 1.0 / math.sqrt(fan_in)
    return lambda shape: np.asarray(generator.uniform(-limit, limit, shape), dtype=dtype)


class Linear(Functional):
    """``z = x Wᵀ + b`` with ``W`` of shape (out_features, in_features), as ``torch.nn.Linear``."""

    weight: FloatArray
    bias: FloatArray | None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        dtype: type | np.dtype[Any] = np.float64,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.in_features = _count("in_features", in_features)
        self.out_features = _count("out_features", out_features)
        init = _initializer(rng, dtype, in_features)
        weight = init((out_features, in_features))
        bias_ = init((out_features,)) if bias else None
        super().__init__("linear", params={"weight": weight, "bias": bias_})
        self.arguments = ((in_features, out_features), {"bias": bias})


class Conv2d(Functional):
    """Cross-correlation with ``W`` of shape (out, in/groups, kh, kw), as ``torch.nn.Conv2d``."""

    weight: FloatArray
    bias: FloatArray | None

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
        self.in_channels = _count("in_channels", in_channels)
        self.out_channels = _count("out_channels", out_channels)
        self.kernel_size = kh, kw = int_pair("kernel_size", kernel_size, 1)
        _count("groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels and out_channels")
        init = _initializer(rng, dtype, in_channels // groups * kh * kw)
        weight = init((out_channels, in_channels // groups, kh, kw))
        hyper = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
        params = {"weight": weight, "bias": init((out_channels,)) if bias else None}
        super().__init__("conv2d", params=params, **hyper)
        torch_kwargs = {"kernel_size": (kh, kw), **hyper, "bias": bias}
        self.arguments = ((in_channels, out_channels), torch_kwargs)


class ReLU(Functional):
    """``max(z, 0)``; the gradient gate is ``1[z > 0]`` (0 at z = 0, as torch)."""

    def __init__(self) -> None:
        super().__init__("relu")


class Sigmoid(Functional):
    """``σ(z)``; ``σ'(z) = σ(z)(1 − σ(z))``."""

    def __init__(self) -> None:
        super().__init__("sigmoid")


class Tanh(Functional):
    """``tanh(z)``; ``tanh'(z) = 1 − tanh²(z)``."""

    def __init__(self) -> None:
        super().__init__("tanh")


class MaxPool2d(Functional):
    """Max pooling, as ``torch.nn.MaxPool2d``: the gradient goes to each window's arg-max."""

    def __init__(
        self,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        ceil_mode: bool = False,
    ) -> None:
        hyper: dict[str, Any] = {"kernel_size": kernel_size, "stride": stride, "padding": padding}
        super().__init__("max_pool2d", **hyper, dilation=dilation, ceil_mode=ceil_mode)


class AvgPool2d(Functional):
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
        hyper: dict[str, Any] = {"kernel_size": kernel_size, "stride": stride, "padding": padding}
        divisor: dict[str, Any] = {
            "count_include_pad": count_include_pad,
            "divisor_override": divisor_override,
        }
        super().__init__("avg_pool2d", **hyper, ceil_mode=ceil_mode, **divisor)


class Flatten(Layer):
    """``(N, d1, d2, ...) → (N, d1·d2·...)``, as ``torch.nn.Flatten()``; backward reshapes back."""

    def __init__(self) -> None:
        self._shape: tuple[int, ...] | None = None

    def forward(self, x: Array, ns: ModuleType) -> FloatArray:
        self._shape = x.shape
        return np.array(x, copy=True).reshape(self.output_shape(x.shape))

    def backward(
        self, grad_output: FloatArray, ns: ModuleType
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        if self._shape is None:
            raise RuntimeError("Flatten.backward called before forward")
        return np.array(grad_output, copy=True).reshape(self._shape), {}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) < 1:
            raise ValueError(f"Flatten needs at least one dimension, got shape {input_shape}")
        return (input_shape[0], math.prod(input_shape[1:]))


class Sequential:
    """Layers applied in order, as ``torch.nn.Sequential``.

    ``forward(x)`` runs every layer and keeps their inputs; ``backward(grad_output)``
    returns ``(∂L/∂x, {"<index>.<name>": ∂L/∂parameter})`` and leaves in
    :attr:`grad_inputs` the gradient with respect to each layer's input (so
    ``grad_inputs[i]`` is the δ arriving at layer ``i``). :attr:`last_namespace`
    is the namespace of the last ``forward``, which ``backward`` and
    :class:`~reference_impl.networks.SGD` use too.

    ``x`` is a float array, or an integer array of indices when the first
    layer reads indices (``Embedding``); then ``∂L/∂x`` is ``None``.
    :meth:`train` and :meth:`eval` switch every layer between training and
    eval mode, as torch's; a new model is in training mode.
    """

    def __init__(self, *layers: Layer, namespace: Namespace = "vectorized") -> None:
        for index, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{index}] must be a Layer, got {type(layer).__name__}")
        self.layers = list(layers)
        self.namespace = resolve_namespace(namespace)
        self.grad_inputs: list[FloatArray | None] = []
        self.last_namespace: ModuleType | None = None
        self.training = True

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Layer:
        return self.layers[index]

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"

    def train(self, mode: bool = True) -> Sequential:
        """Training mode (``mode=True``) or eval mode for every layer, as ``Module.train``."""
        self.training = check_bool("mode", mode)
        for layer in self.layers:
            layer.training = self.training
        return self

    def eval(self) -> Sequential:
        """Eval mode for every layer: ``train(False)``."""
        return self.train(False)

    def state_dict(self) -> dict[str, Array]:
        """Every parameter and buffer under torch's key, ``"<layer index>.<name>"``. Copies."""
        return {
            f"{i}.{name}": value.copy()
            for i, layer in enumerate(self.layers)
            for name, value in layer.state().items()
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace parameters and buffers by arrays (copied, cast to each one's dtype).

        Every key must be present and none may be unknown, as torch's strict loading.
        """
        expected = set(self.state_dict())
        missing, unknown = expected - set(state), set(state) - expected
        if missing or unknown:
            raise KeyError(f"state mismatch: missing {sorted(missing)}, unknown {sorted(unknown)}")
        for key, value in state.items():
            index, name = key.split(".", 1)
            layer = self.layers[int(index)]
            layer.set_parameter(name, np.asarray(value, dtype=layer.state()[name].dtype))

    def forward(self, x: Array, namespace: Namespace | None = None) -> FloatArray:
        """The output of the last layer, computed in ``namespace`` (default: the model's)."""
        ns = self.namespace if namespace is None else resolve_namespace(namespace)
        indices = bool(self.layers) and self.layers[0].index_input
        value: Array = index_array("x", x) if indices else float_array("x", x)
        for layer in self.layers:
            value = layer.forward(value, ns)
        self.last_namespace = ns
        return value

    __call__ = forward

    def backward(self, grad_output: FloatArray) -> tuple[FloatArray | None, dict[str, FloatArray]]:
        """``(∂L/∂x, parameter gradients by state_dict key)`` for the last ``forward``."""
        ns = self.last_namespace
        if ns is None:
            raise RuntimeError("Sequential.backward called before forward")
        grad: FloatArray | None = float_array("grad_output", grad_output)
        grads: dict[str, FloatArray] = {}
        grad_inputs: list[FloatArray | None] = []
        for index in reversed(range(len(self.layers))):
            if grad is None:  # only the first layer can read indices: nothing reaches here
                raise RuntimeError(f"layer {index + 1} has no input gradient to pass back")
            grad, layer_grads = self.layers[index].backward(grad, ns)
            grad_inputs.append(grad)
            grads.update({f"{index}.{name}": value for name, value in layer_grads.items()})
        self.grad_inputs = grad_inputs[::-1]
        return grad, {key: grads[key] for key in self.state_dict() if key in grads}


class ConvTranspose2d(Functional):
    """Transposed convolution, ``W`` (in, out/groups, kh, kw), as ``torch.nn.ConvTranspose2d``.

    torch initialises it as :class:`Conv2d`, from the fan-in its weight layout
    reads, ``weight.shape[1] · kh · kw = out/groups · kh · kw``.
    """

    weight: FloatArray
    bias: FloatArray | None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        output_padding: IntPair = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: IntPair = 1,
        *,
        dtype: type | np.dtype[Any] = np.float64,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.in_channels = _count("in_channels", in_channels)
        self.out_channels = _count("out_channels", out_channels)
        self.kernel_size = kh, kw = int_pair("kernel_size", kernel_size, 1)
        _count("groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels and out_channels")
        init = _initializer(rng, dtype, out_channels // groups * kh * kw)
        weight = init((in_channels, out_channels // groups, kh, kw))
        hyper: dict[str, Any] = {"stride": stride, "padding": padding}
        hyper |= {"output_padding": output_padding, "groups": groups, "dilation": dilation}
        params = {"weight": weight, "bias": init((out_channels,)) if bias else None}
        super().__init__("conv_transpose2d", params=params, **hyper)
        torch_kwargs = {"kernel_size": (kh, kw), **hyper, "bias": bias}
        self.arguments = ((in_channels, out_channels), torch_kwargs)
