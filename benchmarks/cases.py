"""The benchmarked problems: one forward + backward per family, shape and dtype.

A :class:`Problem` holds NumPy arrays and names; :func:`problems` yields them
lazily so that only one problem's data is alive at a time.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

Array = np.ndarray[Any, Any]

#: Target for the geometric mean of ours / torch, per family (each dtype separately).
TARGETS = {
    "conv2d": 1.5,
    "max_pool2d": 2.0,
    "avg_pool2d": 2.0,
    "linear": 1.1,
    "activations": 2.5,
    "losses": 2.5,
    "attention": 1.5,
}

# (N, C_in, H, W, C_out, k, stride, padding, dilation)
CONV2D_SHAPES = [
    (8, 16, 32, 32, 32, 3, 1, 1, 1),
    (8, 16, 32, 32, 32, 3, 2, 1, 1),
    (32, 3, 64, 64, 16, 5, 1, 2, 1),
    (4, 64, 16, 16, 64, 3, 1, 1, 1),
    (16, 32, 28, 28, 32, 1, 1, 0, 1),
    (8, 16, 32, 32, 32, 3, 1, 2, 2),
]
# (N, C, H, W, k, stride, padding)
POOL_SHAPES = [
    (16, 32, 32, 32, 2, 2, 0),
    (16, 32, 32, 32, 3, 2, 1),
    (8, 64, 56, 56, 3, 1, 1),
]
# (N, in_features, out_features)
LINEAR_SHAPES = [(256, 1024, 1024), (4096, 256, 10)]
ELEMENTWISE_SHAPE = (4096, 1000)
ACTIVATIONS = ("sigmoid", "relu", "tanh", "softmax", "log_softmax")
# (N, heads, L, S, E per head)
ATTENTION_SHAPES = [(8, 8, 128, 128, 64)]
LOSSES = (
    "mse_loss",
    "l1_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
)

TorchForward = Callable[..., torch.Tensor]

_TORCH: dict[str, TorchForward] = {
    "conv2d": F.conv2d,
    "max_pool2d": F.max_pool2d,
    "avg_pool2d": F.avg_pool2d,
    "linear": F.linear,
    "sigmoid": torch.sigmoid,
    "relu": F.relu,
    "tanh": torch.tanh,
    "softmax": lambda x, axis: F.softmax(x, dim=axis),
    "log_softmax": lambda x, axis: F.log_softmax(x, dim=axis),
    "mse_loss": F.mse_loss,
    "l1_loss": F.l1_loss,
    "binary_cross_entropy": F.binary_cross_entropy,
    "binary_cross_entropy_with_logits": F.binary_cross_entropy_with_logits,
    "cross_entropy": F.cross_entropy,
    "scaled_dot_product_attention": F.scaled_dot_product_attention,
}


@dataclass
class Problem:
    """One forward + backward call, with everything both sides need.

    ``arrays`` are the forward's array arguments in signature order, batch
    first; ``options`` its other keyword arguments; ``grad`` the upstream
    gradient (a 0-d one for a reduced loss); ``diff`` the names of the arrays
    torch differentiates, in the order the backward returns them.
    """

    family: str
    function: str
    label: str
    dtype: str
    cost: int  # multiply-adds or elements: picks the smallest problem of a family
    arrays: dict[str, Array]
    options: dict[str, Any]
    grad: Array
    diff: tuple[str, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def batch(self) -> int:
        return int(next(iter(self.arrays.values())).shape[0])

    def head(self, n: int) -> Problem:
        """The same problem on the first ``n`` examples of the batch."""
        arrays = {k: np.ascontiguousarray(v[:n]) if v.ndim else v for k, v in self.arrays.items()}
        arrays.update({k: v for k, v in self.arrays.items() if k in self.extra.get("shared", ())})
        grad = np.ascontiguousarray(self.grad[:n]) if self.grad.ndim else self.grad
        return Problem(
            self.family,
            self.function,
            self.label,
            self.dtype,
            self.cost,
            arrays,
            self.options,
            grad,
            self.diff,
            self.extra,
        )

    def ours(self, namespace: Any) -> Callable[[], None]:
        """Forward then backward through ``namespace`` (vectorized or loops)."""
        forward = getattr(namespace, self.function)
        backward = getattr(namespace, self.function + "_backward")
        args = list(self.arrays.values())
        options, grad = self.options, self.grad

        def step() -> None:
            forward(*args, **options)
            backward(grad, *args, **options)

        return step

    def torch(self) -> Callable[[], None]:
        """torch's forward then ``torch.autograd.grad`` for the same inputs."""
        forward = _TORCH[self.function]
        tensors = {
            k: torch.from_numpy(v.copy()).requires_grad_(k in self.diff)
            for k, v in self.arrays.items()
        }
        leaves = [tensors[k] for k in self.diff]
        args = list(tensors.values())
        options = self.options
        grad = torch.from_numpy(self.grad.copy())

        def step() -> None:
            out = forward(*args, **options)
            torch.autograd.grad(out, leaves, grad)

        return step


def _rng(*key: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> Array:
    return rng.standard_normal(shape).astype(dtype)


def _conv(shape: tuple[int, ...], dtype: str) -> Problem:
    n, c_in, h, w, c_out, k, stride, padding, dilation = shape
    rng = _rng("conv2d", shape, dtype)
    h_out = (h + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    w_out = (w + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    label = f"{n},{c_in},{h},{w} -> {c_out} k{k} s{stride} p{padding}"
    if dilation != 1:
        label += f" d{dilation}"
    return Problem(
        "conv2d",
        "conv2d",
        label,
        dtype,
        n * c_out * h_out * w_out * c_in * k * k,
        {
            "x": _normal(rng, (n, c_in, h, w), dtype),
            "weight": _normal(rng, (c_out, c_in, k, k), dtype) / math.sqrt(c_in * k * k),
            "bias": _normal(rng, (c_out,), dtype),
        },
        {"stride": stride, "padding": padding, "dilation": dilation},
        _normal(rng, (n, c_out, h_out, w_out), dtype),
        ("x", "weight", "bias"),
        {
            "shared": ("weight", "bias"),
            "im2col_bytes": n * h_out * w_out * c_in * k * k * np.dtype(dtype).itemsize,
        },
    )


def _pool(family: str, shape: tuple[int, ...], dtype: str) -> Problem:
    n, c, h, w, k, stride, padding = shape
    rng = _rng(family, shape, dtype)
    h_out = (h + 2 * padding - k) // stride + 1
    w_out = (w + 2 * padding - k) // stride + 1
    return Problem(
        family,
        family,
        f"{n},{c},{h},{w} k{k} s{stride} p{padding}",
        dtype,
        n * c * h_out * w_out * k * k,
        {"x": _normal(rng, (n, c, h, w), dtype)},
        {"kernel_size": k, "stride": stride, "padding": padding},
        _normal(rng, (n, c, h_out, w_out), dtype),
        ("x",),
    )


def _linear(shape: tuple[int, int, int], dtype: str) -> Problem:
    n, fan_in, fan_out = shape
    rng = _rng("linear", shape, dtype)
    return Problem(
        "linear",
        "linear",
        f"{n},{fan_in} -> {fan_out}",
        dtype,
        n * fan_in * fan_out,
        {
            "x": _normal(rng, (n, fan_in), dtype),
            "weight": _normal(rng, (fan_out, fan_in), dtype) / math.sqrt(fan_in),
            "bias": _normal(rng, (fan_out,), dtype),
        },
        {},
        _normal(rng, (n, fan_out), dtype),
        ("x", "weight", "bias"),
        {"shared": ("weight", "bias")},
    )


def _activation(function: str, dtype: str) -> Problem:
    rng = _rng(function, dtype)
    shape = ELEMENTWISE_SHAPE
    options = {"axis": -1} if function in ("softmax", "log_softmax") else {}
    return Problem(
        "activations",
        function,
        f"{shape[0]},{shape[1]}",
        dtype,
        shape[0] * shape[1],
        {"x": 3 * _normal(rng, shape, dtype)},
        options,
        _normal(rng, shape, dtype),
        ("x",),
    )


def _loss(function: str, dtype: str) -> Problem:
    rng = _rng(function, dtype)
    shape = ELEMENTWISE_SHAPE
    target: Array
    if function == "binary_cross_entropy":
        x = rng.uniform(0.001, 0.999, shape).astype(dtype)
        target = rng.uniform(0.0, 1.0, shape).astype(dtype)
    elif function == "binary_cross_entropy_with_logits":
        x = 3 * _normal(rng, shape, dtype)
        target = rng.uniform(0.0, 1.0, shape).astype(dtype)
    elif function == "cross_entropy":
        x = 3 * _normal(rng, shape, dtype)
        target = rng.integers(0, shape[1], shape[0], dtype=np.int64)
    else:
        x = _normal(rng, shape, dtype)
        target = _normal(rng, shape, dtype)
    return Problem(
        "losses",
        function,
        f"{shape[0]},{shape[1]}",
        dtype,
        shape[0] * shape[1],
        {"input": x, "target": target},
        {},
        np.asarray(1.0, dtype=dtype),
        ("input",),
    )


def _attention(shape: tuple[int, int, int, int, int], dtype: str) -> Problem:
    n, heads, length, positions, width = shape
    rng = _rng("attention", shape, dtype)
    return Problem(
        "attention",
        "scaled_dot_product_attention",
        f"{n},{heads},{length},{width} S{positions}",
        dtype,
        n * heads * length * positions * width,
        {
            "query": _normal(rng, (n, heads, length, width), dtype),
            "key": _normal(rng, (n, heads, positions, width), dtype),
            "value": _normal(rng, (n, heads, positions, width), dtype),
        },
        {},
        _normal(rng, (n, heads, length, width), dtype),
        ("query", "key", "value"),
    )


def builders(family: str, dtype: str) -> Iterator[Callable[[], Problem]]:
    """Constructors of the problems of ``family`` in ``dtype``, in table order."""
    if family == "conv2d":
        for conv_shape in CONV2D_SHAPES:
            yield partial(_conv, conv_shape, dtype)
    elif family in ("max_pool2d", "avg_pool2d"):
        for pool_shape in POOL_SHAPES:
            yield partial(_pool, family, pool_shape, dtype)
    elif family == "linear":
        for linear_shape in LINEAR_SHAPES:
            yield partial(_linear, linear_shape, dtype)
    elif family == "activations":
        for name in ACTIVATIONS:
            yield partial(_activation, name, dtype)
    elif family == "losses":
        for name in LOSSES:
            yield partial(_loss, name, dtype)
    elif family == "attention":
        for attention_shape in ATTENTION_SHAPES:
            yield partial(_attention, attention_shape, dtype)
    else:
        raise ValueError(f"unknown family {family!r}")


def functions(family: str) -> tuple[str, ...]:
    """The public names a family needs in a namespace."""
    if family == "activations":
        return ACTIVATIONS
    if family == "losses":
        return LOSSES
    if family == "attention":
        return ("scaled_dot_product_attention",)
    return (family,)
