"""torch oracles: the forward pass in torch, differentiated by ``torch.autograd``.

Each oracle takes the same keyword arguments as the reference formula, with
arrays replaced by tensors, and returns the forward output. ``run_oracle``
converts a case, runs the oracle and collects every input gradient.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

# ------------------------------------------------------------------ dense, activations


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return F.linear(x, weight, bias)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(x)


def relu(x: torch.Tensor) -> torch.Tensor:
    return F.relu(x)


def tanh(x: torch.Tensor) -> torch.Tensor:
    return torch.tanh(x)


def softmax(x: torch.Tensor, axis: int) -> torch.Tensor:
    return F.softmax(x, dim=axis)


def log_softmax(x: torch.Tensor, axis: int) -> torch.Tensor:
    return F.log_softmax(x, dim=axis)


# --------------------------------------------------------------------------- losses


def mse_loss(input: torch.Tensor, target: torch.Tensor, reduction: str) -> torch.Tensor:
    return F.mse_loss(input, target, reduction=reduction)


def l1_loss(input: torch.Tensor, target: torch.Tensor, reduction: str) -> torch.Tensor:
    return F.l1_loss(input, target, reduction=reduction)


def binary_cross_entropy(input: torch.Tensor, target: torch.Tensor, reduction: str) -> torch.Tensor:
    return F.binary_cross_entropy(input, target, reduction=reduction)


def binary_cross_entropy_with_logits(
    input: torch.Tensor, target: torch.Tensor, reduction: str
) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(input, target, reduction=reduction)


def cross_entropy(input: torch.Tensor, target: torch.Tensor, reduction: str) -> torch.Tensor:
    return F.cross_entropy(input, target, reduction=reduction)


# ---------------------------------------------------------------------- convolution


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
) -> torch.Tensor:
    """``F.conv2d``; a four-sided ``(top, bottom, left, right)`` padding goes through ``F.pad``."""
    if isinstance(padding, tuple) and len(padding) == 4:
        top, bottom, left, right = padding
        x = F.pad(x, (left, right, top, bottom))
        padding = 0
    with warnings.catch_warnings():
        # "same" with an even dilated kernel: torch warns that it pads a copy of the input.
        warnings.simplefilter("ignore", UserWarning)
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)


# -------------------------------------------------------------------------- pooling


def max_pool2d(
    x: torch.Tensor,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil_mode: bool,
) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)


def avg_pool2d(
    x: torch.Tensor,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
) -> torch.Tensor:
    return F.avg_pool2d(
        x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


# ---------------------------------------------------------------------------- runner


def to_tensor(value: np.ndarray[Any, Any], requires_grad: bool) -> torch.Tensor:
    """A tensor with its own copy of the data (torch never sees our memory)."""
    tensor = torch.from_numpy(np.array(value, copy=True))
    if value.dtype.kind in "iu":
        tensor = tensor.to(torch.int64)
    return tensor.requires_grad_(requires_grad)


def run_oracle(
    oracle: Any,
    args: Mapping[str, Any],
    grad_wrt: tuple[str, ...],
    grad_output: np.ndarray[Any, Any] | None,
) -> tuple[np.ndarray[Any, Any], tuple[np.ndarray[Any, Any] | None, ...]]:
    """Forward output and the gradients of ``grad_wrt`` (``None`` for absent inputs).

    With ``grad_output=None`` only the forward pass runs and no gradients are returned.
    """
    tensors = {
        name: to_tensor(value, name in grad_wrt and grad_output is not None)
        if isinstance(value, np.ndarray)
        else value
        for name, value in args.items()
    }
    output = oracle(**tensors)
    if grad_output is None:
        return output.detach().numpy(), ()
    output.backward(torch.from_numpy(np.array(grad_output, copy=True)))
    grads: list[np.ndarray[Any, Any] | None] = []
    for name in grad_wrt:
        tensor = tensors[name]
        if tensor is None:
            grads.append(None)
        elif tensor.grad is None:
            grads.append(np.zeros(tuple(tensor.shape), dtype=args[name].dtype))
        else:
            grads.append(tensor.grad.numpy())
    return output.detach().numpy(), tuple(grads)
