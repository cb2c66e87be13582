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
    "recurrent": 2.0,
    "normalization": 2.0,
    "conv_transpose2d": 1.5,
    "optimizers": 2.0,
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
#: (T, N, I, H) of the recurrent problems, batch first
RECURRENT_SHAPE = (32, 16, 64, 128)
RECURRENT = ("lstm", "gru")
#: (N, C, H, W) for batch_norm and group_norm (8 groups); (rows, features) for layer_norm
NORM_IMAGE_SHAPE = (32, 64, 28, 28)
NORM_GROUPS = 8
NORM_ROWS_SHAPE = (4096, 1024)
NORMALIZATIONS = ("batch_norm", "layer_norm", "group_norm")
ACTIVATIONS = (
    "sigmoid",
    "relu",
    "tanh",
    "softmax",
    "log_softmax",
    "leaky_relu",
    "elu",
    "gelu",
    "softplus",
    "silu",
)
# (N, heads, L, S, E per head)
ATTENTION_SHAPES = [(8, 8, 128, 128, 64)]
#: (N, L, d_model, nhead, dim_feedforward) of the transformer encoder block, batch first
ENCODER_SHAPES = [(8, 128, 512, 8, 2048)]
LOSSES = (
    "mse_loss",
    "l1_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "nll_loss",
    "smooth_l1_loss",
    "huber_loss",
    "kl_div",
)

TorchForward = Callable[..., Any]


def _torch_sequence(name: str) -> TorchForward:
    """``nn.LSTM`` / ``nn.GRU``'s op with one layer and both biases, in training mode.

    States come in as (N, H) and go out as (N, H), as ours; torch's op takes
    and returns them as (1, N, H).
    """
    op = torch.lstm if name == "lstm" else torch.gru

    def forward(*tensors: torch.Tensor, batch_first: bool) -> tuple[torch.Tensor, ...]:
        x, *rest = tensors
        count = 2 if name == "lstm" else 1
        states, params = rest[:count], list(rest[count:])
        hx: Any = tuple(s.unsqueeze(0) for s in states) if name == "lstm" else states[0][None]
        out = op(x, hx, params, True, 1, 0.0, True, False, batch_first)
        return (out[0], *(s.squeeze(0) for s in out[1:]))

    return forward


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
    "lstm": _torch_sequence("lstm"),
    "gru": _torch_sequence("gru"),
    "batch_norm": F.batch_norm,
    "layer_norm": F.layer_norm,
    "group_norm": F.group_norm,
    "conv_transpose2d": F.conv_transpose2d,
    "leaky_relu": F.leaky_relu,
    "elu": F.elu,
    "gelu": F.gelu,
    "softplus": F.softplus,
    "silu": F.silu,
    "nll_loss": F.nll_loss,
    "smooth_l1_loss": F.smooth_l1_loss,
    "huber_loss": F.huber_loss,
    "kl_div": F.kl_div,
    "scaled_dot_product_attention": F.scaled_dot_product_attention,
}


@dataclass
class Problem:
    """One forward + backward call, with everything both sides need.

    ``arrays`` are the forward's array arguments in signature order, batch
    first; ``options`` its other keyword arguments; ``grad`` the upstream
    gradient (a 0-d one for a reduced loss; a tuple of them, batch first, for
    a forward with several outputs); ``diff`` the names of the arrays torch
    differentiates, in the order the backward returns them. The first
    ``extra["positional"]`` arrays (default: all) are passed by position, the
    others by keyword (``layer_norm(x, normalized_shape, weight=..., bias=...)``).
    """

    family: str
    function: str
    label: str
    dtype: str
    cost: int  # multiply-adds or elements: picks the smallest problem of a family
    arrays: dict[str, Array]
    options: dict[str, Any]
    grad: Array | tuple[Array, ...]
    diff: tuple[str, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def batch(self) -> int:
        return int(next(iter(self.arrays.values())).shape[0])

    def head(self, n: int) -> Problem:
        """The same problem on the first ``n`` examples of the batch."""
        arrays = {k: np.ascontiguousarray(v[:n]) if v.ndim else v for k, v in self.arrays.items()}
        arrays.update({k: v for k, v in self.arrays.items() if k in self.extra.get("shared", ())})
        grads = self.grad if isinstance(self.grad, tuple) else (self.grad,)
        heads = tuple(np.ascontiguousarray(g[:n]) if g.ndim else g for g in grads)
        grad = heads if isinstance(self.grad, tuple) else heads[0]
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

    def _split(self, values: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """The positional arrays and the keyword arrays plus options of one call."""
        count = int(self.extra.get("positional", len(values)))
        names = list(values)
        keywords = {k: values[k] for k in names[count:]}
        return [values[k] for k in names[:count]], {**keywords, **self.options}

    def ours(self, namespace: Any) -> Callable[[], None]:
        """Forward then backward through ``namespace`` (vectorized or loops)."""
        forward = getattr(namespace, self.function)
        backward = getattr(namespace, self.function + "_backward")
        args, options = self._split(self.arrays)
        grad = self.grad

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
        args, options = self._split(tensors)
        grads = self.grad if isinstance(self.grad, tuple) else (self.grad,)
        upstream = [torch.from_numpy(g.copy()) for g in grads]

        def step() -> None:
            out = forward(*args, **options)
            outs = list(out) if isinstance(out, tuple) else [out]
            torch.autograd.grad(outs, leaves, upstream)

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
    elif function in ("cross_entropy", "nll_loss"):
        x = 3 * _normal(rng, shape, dtype)
        if function == "nll_loss":  # log-probabilities
            x = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
        target = rng.integers(0, shape[1], shape[0], dtype=np.int64)
    elif function == "kl_div":  # log q against p, one distribution per row
        x = 3 * _normal(rng, shape, dtype)
        x = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
        target = np.exp(3 * _normal(rng, shape, dtype))
        target /= target.sum(axis=1, keepdims=True)
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
        {"reduction": "batchmean"} if function == "kl_div" else {},
        np.asarray(1.0, dtype=dtype),
        ("input",),
    )


def _recurrent(function: str, dtype: str) -> Problem:
    """A one-layer LSTM or GRU over a batch-first sequence, torch's initialisation."""
    steps, n, fan_in, hidden = RECURRENT_SHAPE
    rng = _rng(function, RECURRENT_SHAPE, dtype)
    rows = (4 if function == "lstm" else 3) * hidden
    bound = 1 / math.sqrt(hidden)

    def uniform(shape: tuple[int, ...]) -> Array:
        return rng.uniform(-bound, bound, shape).astype(dtype)

    states = ("h0", "c0") if function == "lstm" else ("h0",)
    arrays = {"x": _normal(rng, (n, steps, fan_in), dtype)}
    arrays.update({name: _normal(rng, (n, hidden), dtype) for name in states})
    arrays.update(
        weight_ih=uniform((rows, fan_in)),
        weight_hh=uniform((rows, hidden)),
        bias_ih=uniform((rows,)),
        bias_hh=uniform((rows,)),
    )
    finals = [_normal(rng, (n, hidden), dtype) for _ in states]
    grad = (_normal(rng, (n, steps, hidden), dtype), *finals)
    return Problem(
        "recurrent",
        function,
        f"T={steps} N={n} I={fan_in} H={hidden}",
        dtype,
        steps * n * rows * (fan_in + hidden),
        arrays,
        {"batch_first": True},
        grad,
        tuple(arrays),
        {"shared": ("weight_ih", "weight_hh", "bias_ih", "bias_hh")},
    )


def _normalization(function: str, dtype: str) -> Problem:
    """Training-mode batch norm and group norm on images, layer norm on rows; γ and β given."""
    rng = _rng(function, dtype)
    shape = NORM_ROWS_SHAPE if function == "layer_norm" else NORM_IMAGE_SHAPE
    features = shape[-1] if function == "layer_norm" else shape[1]
    x = 2 * _normal(rng, shape, dtype) + 1
    arrays: dict[str, Array] = {"x": x}
    options: dict[str, Any] = {}
    extra: dict[str, Any] = {"shared": ("running_mean", "running_var", "weight", "bias")}
    if function == "batch_norm":
        arrays["running_mean"] = np.zeros(features, dtype=dtype)
        arrays["running_var"] = np.ones(features, dtype=dtype)
        options["training"] = True
        label = f"{','.join(map(str, shape))} training"
    elif function == "layer_norm":
        options["normalized_shape"] = (features,)
        extra["positional"] = 1
        label = f"{shape[0]},{shape[1]} over ({features},)"
    else:
        options["num_groups"] = NORM_GROUPS
        extra["positional"] = 1
        label = f"{','.join(map(str, shape))} G={NORM_GROUPS}"
    arrays["weight"] = 1 + _normal(rng, (features,), dtype) / 4
    arrays["bias"] = _normal(rng, (features,), dtype)
    return Problem(
        "normalization",
        function,
        label,
        dtype,
        math.prod(shape),
        arrays,
        options,
        _normal(rng, shape, dtype),
        ("x", "weight", "bias"),
        extra,
    )


def _conv_transpose(shape: tuple[int, ...], dtype: str) -> Problem:
    """The transpose of the conv2d problem ``shape``: its output size in, its input size out.

    ``x`` has the conv2d output's shape and ``weight`` is the conv2d weight
    ``(C_out, C_in, k, k)``, read as ``(C_in, C_out / groups, k, k)`` of the
    transposed layer; ``output_padding`` recovers the conv2d input size.
    """
    n, c_in, h, w, c_out, k, stride, padding, dilation = shape
    rng = _rng("conv_transpose2d", shape, dtype)
    h_small = output_size(h, k, stride, padding, padding, dilation)
    w_small = output_size(w, k, stride, padding, padding, dilation)
    extra = (h + 2 * padding - dilation * (k - 1) - 1) % stride
    label = f"{n},{c_out},{h_small},{w_small} -> {c_in} k{k} s{stride} p{padding}"
    if dilation != 1:
        label += f" d{dilation}"
    return Problem(
        "conv_transpose2d",
        "conv_transpose2d",
        label,
        dtype,
        n * c_out * h_small * w_small * c_in * k * k,
        {
            "x": _normal(rng, (n, c_out, h_small, w_small), dtype),
            "weight": _normal(rng, (c_out, c_in, k, k), dtype) / math.sqrt(c_out * k * k),
            "bias": _normal(rng, (c_in,), dtype),
        },
        {"stride": stride, "padding": padding, "output_padding": extra, "dilation": dilation},
        _normal(rng, (n, c_in, h, w), dtype),
        ("x", "weight", "bias"),
        {"shared": ("weight", "bias")},
    )


#: one optimizer step on a parameter of this many elements
OPTIMIZER_SHAPE = (1000, 1000)
OPTIMIZERS = ("adam_step",)
_TORCH_OPTIMIZERS = {"adam_step": torch.optim.Adam}


class StepProblem(Problem):
    """One optimizer step: ours chains ``(param, state)`` from call to call, as torch does.

    torch's side is ``optimizer.step()`` of ``torch.optim`` with its defaults,
    which on the CPU is the single-tensor loop (``foreach`` and ``fused`` are
    for accelerators unless asked for).
    """

    def head(self, n: int) -> StepProblem:
        arrays = {k: np.ascontiguousarray(v[:n]) for k, v in self.arrays.items()}
        return StepProblem(
            self.family, self.function, self.label, self.dtype, self.cost, arrays,
            self.options, self.grad, self.diff, self.extra,
        )  # fmt: skip

    def ours(self, namespace: Any) -> Callable[[], None]:
        step = getattr(namespace, self.function)
        grad, options = self.arrays["grad"], self.options
        param, state = step(self.arrays["param"], grad, None, **options)

        def run() -> None:
            nonlocal param, state
            param, state = step(param, grad, state, **options)

        return run

    def torch(self) -> Callable[[], None]:
        param = torch.nn.Parameter(torch.from_numpy(self.arrays["param"].copy()))
        param.grad = torch.from_numpy(self.arrays["grad"].copy())
        optimizer = _TORCH_OPTIMIZERS[self.function]([param], **self.options)
        optimizer.step()

        def run() -> None:
            optimizer.step()

        return run


def _optimizer(function: str, dtype: str) -> Problem:
    rng = _rng(function, dtype)
    shape = OPTIMIZER_SHAPE
    return StepProblem(
        "optimizers",
        function,
        f"{shape[0]}x{shape[1]}",
        dtype,
        shape[0] * shape[1],
        {"param": _normal(rng, shape, dtype), "grad": _normal(rng, shape, dtype)},
        {"lr": 1e-3},
        np.asarray(0.0, dtype=dtype),
        (),
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


@dataclass
class EncoderProblem(Problem):
    """``networks.TransformerEncoderLayer`` (post-norm, ReLU) forward + backward, batch first.

    torch's twin runs in training mode with ``dropout=0.0`` and autograd on
    (its differentiable path, not the inference fast path) and differentiates
    the input and every parameter, as the reference's backward does.
    """

    def head(self, n: int) -> EncoderProblem:
        arrays = {k: np.ascontiguousarray(v[:n]) for k, v in self.arrays.items()}
        grad = self.grad
        assert isinstance(grad, np.ndarray)
        return EncoderProblem(
            self.family, self.function, self.label, self.dtype, self.cost, arrays,
            self.options, np.ascontiguousarray(grad[:n]), self.diff, self.extra,
        )  # fmt: skip

    def _layer(self) -> Any:
        from reference_impl import networks

        rng = _rng("encoder weights", self.label, self.dtype)
        d_model, heads, feedforward = self.options["sizes"]
        return networks.TransformerEncoderLayer(
            d_model, heads, feedforward, batch_first=True, dtype=np.dtype(self.dtype), rng=rng
        )

    def ours(self, namespace: Any) -> Callable[[], None]:
        layer, x, grad = self._layer(), self.arrays["x"], self.grad

        def step() -> None:
            layer.forward(x, namespace)
            layer.backward(grad, namespace)

        return step

    def torch(self) -> Callable[[], None]:
        ours = self._layer()
        d_model, heads, feedforward = self.options["sizes"]
        twin = torch.nn.TransformerEncoderLayer(
            d_model, heads, feedforward, dropout=0.0, batch_first=True
        )
        twin.to(torch.float64 if self.dtype == "float64" else torch.float32).train()
        state = {k: torch.from_numpy(v.copy()) for k, v in ours.state().items()}
        twin.load_state_dict(state, strict=True)
        x = torch.from_numpy(self.arrays["x"].copy()).requires_grad_(True)
        assert isinstance(self.grad, np.ndarray)
        upstream = torch.from_numpy(self.grad.copy())
        leaves = [x, *twin.parameters()]

        def step() -> None:
            torch.autograd.grad([twin(x)], leaves, [upstream])

        return step


def _encoder(shape: tuple[int, int, int, int, int], dtype: str) -> Problem:
    n, length, d_model, heads, feedforward = shape
    rng = _rng("encoder", shape, dtype)
    return EncoderProblem(
        "attention",
        "transformer_encoder_layer",
        f"encoder N{n} L{length} E{d_model} h{heads} ff{feedforward}",
        dtype,
        n * length * (4 * d_model * d_model + 2 * d_model * feedforward + length * d_model),
        {"x": _normal(rng, (n, length, d_model), dtype)},
        {"sizes": (d_model, heads, feedforward)},
        _normal(rng, (n, length, d_model), dtype),
        ("x",),
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
    elif family == "recurrent":
        for name in RECURRENT:
            yield partial(_recurrent, name, dtype)
    elif family == "normalization":
        for name in NORMALIZATIONS:
            yield partial(_normalization, name, dtype)
    elif family == "conv_transpose2d":
        for conv_shape in CONV2D_SHAPES:
            yield partial(_conv_transpose, conv_shape, dtype)
    elif family == "optimizers":
        for name in OPTIMIZERS:
            yield partial(_optimizer, name, dtype)
    elif family == "attention":
        for attention_shape in ATTENTION_SHAPES:
            yield partial(_attention, attention_shape, dtype)
        for encoder_shape in ENCODER_SHAPES:
            yield partial(_encoder, encoder_shape, dtype)
    else:
        raise ValueError(f"unknown family {family!r}")


def functions(family: str) -> tuple[str, ...]:
    """The public names a family needs in a namespace."""
    if family == "activations":
        return ACTIVATIONS
    if family == "losses":
        return LOSSES
    if family == "recurrent":
        return RECURRENT
    if family == "normalization":
        return NORMALIZATIONS
    if family == "optimizers":
        return OPTIMIZERS
    if family == "attention":
        return ("scaled_dot_product_attention", "multi_head_attention", "layer_norm", "linear")
    return (family,)
