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

from reference_impl.window import output_size

Array = np.ndarray[Any, Any]

#: Target for the geometric mean of ours / torch, per family (each dtype separately).
TARGETS = {
    "conv2d": 1.5,
    "max_pool2d": 2.0,
    "avg_pool2d": 2.0,
    "linear": 1.1,
    "activations": 2.5,
    "losses": 2.5,
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


def _pair_text(value: tuple[int, int]) -> str:
    return str(value[0]) if value[0] == value[1] else f"{value[0]}x{value[1]}"


def conv_problem(
    n: int,
    c_in: int,
    size: tuple[int, int],
    c_out: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    dtype: str,
    prefix: str = "",
) -> Problem:
    """A conv2d problem with bias; pairs are ``(height, width)``."""
    (h, w), (kh, kw) = size, kernel
    rng = _rng("conv2d", n, c_in, size, c_out, kernel, stride, padding, dilation, groups, dtype)
    h_out = output_size(h, kh, stride[0], padding[0], padding[0], dilation[0])
    w_out = output_size(w, kw, stride[1], padding[1], padding[1], dilation[1])
    label = (
        f"{prefix}{n},{c_in},{h},{w} -> {c_out} k{_pair_text(kernel)} s{_pair_text(stride)} "
        f"p{_pair_text(padding)}"
    )
    if dilation != (1, 1):
        label += f" d{_pair_text(dilation)}"
    if groups != 1:
        label += f" g{groups}"
    macs = n * c_out * h_out * w_out * (c_in // groups) * kh * kw
    options: dict[str, Any] = {
        "stride": stride[0] if stride[0] == stride[1] else stride,
        "padding": padding[0] if padding[0] == padding[1] else padding,
        "dilation": dilation[0] if dilation[0] == dilation[1] else dilation,
    }
    if groups != 1:
        options["groups"] = groups
    fan_in = c_in // groups * kh * kw
    return Problem(
        "conv2d",
        "conv2d",
        label,
        dtype,
        macs,
        {
            "x": _normal(rng, (n, c_in, h, w), dtype),
            "weight": _normal(rng, (c_out, c_in // groups, kh, kw), dtype) / math.sqrt(fan_in),
            "bias": _normal(rng, (c_out,), dtype),
        },
        options,
        _normal(rng, (n, c_out, h_out, w_out), dtype),
        ("x", "weight", "bias"),
        {
            "shared": ("weight", "bias"),
            "im2col_bytes": n * h_out * w_out * c_in * kh * kw * np.dtype(dtype).itemsize,
            "gemm_flops": 3 * 2 * macs,
        },
    )


def _conv(shape: tuple[int, ...], dtype: str) -> Problem:
    n, c_in, h, w, c_out, k, stride, padding, dilation = shape
    return conv_problem(
        n, c_in, (h, w), c_out, (k, k), (stride,) * 2, (padding,) * 2, (dilation,) * 2, 1, dtype
    )


def pool_problem(
    family: str,
    n: int,
    c: int,
    size: tuple[int, int],
    kernel: int,
    stride: int,
    padding: int,
    dtype: str,
    dilation: int = 1,
    ceil_mode: bool = False,
    prefix: str = "",
) -> Problem:
    """A max_pool2d or avg_pool2d problem (square kernel; ``dilation`` for max only)."""
    h, w = size
    rng = _rng(family, (n, c, h, w, kernel, stride, padding), dtype, dilation, ceil_mode)
    h_out = output_size(h, kernel, stride, padding, padding, dilation, ceil_mode)
    w_out = output_size(w, kernel, stride, padding, padding, dilation, ceil_mode)
    label = f"{prefix}{n},{c},{h},{w} k{kernel} s{stride} p{padding}"
    options: dict[str, Any] = {"kernel_size": kernel, "stride": stride, "padding": padding}
    if dilation != 1:
        label += f" d{dilation}"
        options["dilation"] = dilation
    if ceil_mode:
        label += " ceil"
        options["ceil_mode"] = True
    return Problem(
        family,
        family,
        label,
        dtype,
        n * c * h_out * w_out * kernel * kernel,
        {"x": _normal(rng, (n, c, h, w), dtype)},
        options,
        _normal(rng, (n, c, h_out, w_out), dtype),
        ("x",),
    )


def _pool(family: str, shape: tuple[int, ...], dtype: str) -> Problem:
    n, c, h, w, k, stride, padding = shape
    return pool_problem(family, n, c, (h, w), k, stride, padding, dtype)


def linear_problem(n: int, fan_in: int, fan_out: int, dtype: str, prefix: str = "") -> Problem:
    """A linear problem with bias."""
    rng = _rng("linear", (n, fan_in, fan_out), dtype)
    return Problem(
        "linear",
        "linear",
        f"{prefix}{n},{fan_in} -> {fan_out}",
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
        {"shared": ("weight", "bias"), "gemm_flops": 3 * 2 * n * fan_in * fan_out},
    )


def _linear(shape: tuple[int, int, int], dtype: str) -> Problem:
    return linear_problem(*shape, dtype)


def activation_problem(
    function: str,
    dtype: str,
    shape: tuple[int, int] = ELEMENTWISE_SHAPE,
    prefix: str = "",
) -> Problem:
    rng = _rng(function, dtype) if shape == ELEMENTWISE_SHAPE else _rng(function, dtype, shape)
    options = {"axis": -1} if function in ("softmax", "log_softmax") else {}
    return Problem(
        "activations",
        function,
        f"{prefix}{shape[0]},{shape[1]}",
        dtype,
        shape[0] * shape[1],
        {"x": 3 * _normal(rng, shape, dtype)},
        options,
        _normal(rng, shape, dtype),
        ("x",),
    )


def loss_problem(
    function: str,
    dtype: str,
    shape: tuple[int, int] = ELEMENTWISE_SHAPE,
    prefix: str = "",
) -> Problem:
    rng = _rng(function, dtype) if shape == ELEMENTWISE_SHAPE else _rng(function, dtype, shape)
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
        f"{prefix}{shape[0]},{shape[1]}",
        dtype,
        shape[0] * shape[1],
        {"input": x, "target": target},
        {},
        np.asarray(1.0, dtype=dtype),
        ("input",),
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
            yield partial(activation_problem, name, dtype)
    elif family == "losses":
        for name in LOSSES:
            yield partial(loss_problem, name, dtype)
    else:
        raise ValueError(f"unknown family {family!r}")


def functions(family: str) -> tuple[str, ...]:
    """The public names a family needs in a namespace."""
    if family == "activations":
        return ACTIVATIONS
    if family == "losses":
        return LOSSES
    return (family,)
