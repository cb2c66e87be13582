"""torch oracles: the forward pass in torch, differentiated by ``torch.autograd``.

By default a formula's oracle is torch's function of the same name, looked up
in ``torch.nn.functional`` and then ``torch`` (as PyTorch's OpInfo defaults
``op``): the first argument is passed by position, the others by keyword,
renamed where torch names them differently (:data:`TORCH_NAMES`). Only the
formulas whose torch call really differs keep an oracle here.

:func:`run_oracle` converts a case, runs the oracle and collects every input
gradient with ``torch.autograd.grad``, for one output or several.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

#: our argument name → torch's keyword, where they differ
TORCH_NAMES = {"axis": "dim"}


def torch_function(name: str) -> Any:
    """``torch.nn.functional.<name>``, else ``torch.<name>``."""
    function = getattr(F, name, None) or getattr(torch, name, None)
    if function is None:
        raise LookupError(f"torch has no function {name!r}: give the spec an oracle")
    return function


def default_oracle(name: str, args: Mapping[str, Any]) -> Any:
    """Call torch's function of the same name with the case's arguments."""
    (first, *rest) = args.items()
    keywords = {TORCH_NAMES.get(key, key): value for key, value in rest}
    return torch_function(name)(first[1], **keywords)


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


def to_tensor(value: np.ndarray[Any, Any], requires_grad: bool) -> torch.Tensor:
    """A tensor with its own copy of the data (torch never sees our memory)."""
    tensor = torch.from_numpy(np.array(value, copy=True))
    if value.dtype.kind in "iu":
        tensor = tensor.to(torch.int64)
    return tensor.requires_grad_(requires_grad and value.dtype.kind == "f")


def _numpy(tensor: Any) -> Any:
    return tensor.detach().numpy() if isinstance(tensor, torch.Tensor) else tensor


def forward_outputs(
    name: str, oracle: Any, args: Mapping[str, Any], grad_wrt: Sequence[str]
) -> tuple[dict[str, Any], tuple[torch.Tensor, ...]]:
    """The tensors fed to torch and its outputs, as a tuple."""
    tensors = {
        key: to_tensor(value, key in grad_wrt) if isinstance(value, np.ndarray) else value
        for key, value in args.items()
    }
    output = oracle(**tensors) if oracle is not None else default_oracle(name, tensors)
    outputs = tuple(output) if isinstance(output, (tuple, list)) else (output,)
    return tensors, outputs


def run_oracle(
    name: str,
    oracle: Any,
    args: Mapping[str, Any],
    grad_wrt: Sequence[str],
    grad_outputs: Sequence[np.ndarray[Any, Any]] | None,
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """``(outputs, gradients)``: torch's forward outputs and the gradient of each ``grad_wrt``.

    An absent input (``None``) has the gradient ``None``; a present one that
    no output depends on, zeros. With ``grad_outputs=None`` only the forward
    runs and no gradients are returned.
    """
    tensors, outputs = forward_outputs(name, oracle, args, grad_wrt)
    numpy_outputs = tuple(_numpy(out) for out in outputs)
    if grad_outputs is None:
        return numpy_outputs, ()
    wrt = [tensors[key] for key in grad_wrt if isinstance(tensors[key], torch.Tensor)]
    pairs = [
        (out, torch.from_numpy(np.array(grad, copy=True)))
        for out, grad in zip(outputs, grad_outputs, strict=True)
        if isinstance(out, torch.Tensor) and out.requires_grad
    ]
    found: Sequence[Any] = [None] * len(wrt)
    if pairs and wrt:
        found = torch.autograd.grad(
            [out for out, _ in pairs], wrt, [grad for _, grad in pairs], allow_unused=True
        )
    by_name = dict(
        zip([k for k in grad_wrt if isinstance(tensors[k], torch.Tensor)], found, strict=True)
    )
    grads: list[Any] = []
    for key in grad_wrt:
        if args[key] is None:
            grads.append(None)
        elif by_name.get(key) is None:
            grads.append(np.zeros(np.shape(args[key]), dtype=args[key].dtype))
        else:
            grads.append(by_name[key].numpy())
    return numpy_outputs, tuple(grads)


def multi_head_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    num_heads: int,
    in_proj_weight: torch.Tensor,
    in_proj_bias: torch.Tensor | None,
    out_proj_weight: torch.Tensor,
    out_proj_bias: torch.Tensor | None,
    attn_mask: torch.Tensor | None = None,
    key_padding_mask: torch.Tensor | None = None,
    batch_first: bool = False,
) -> torch.Tensor:
    """``F.multi_head_attention_forward`` without dropout, in eval mode, output only.

    torch's functional form is sequence-first and positional; ``batch_first``
    transposes a batched input in and the output out, as ``nn.MultiheadAttention``
    does (an unbatched ``(L, E)`` input is left as it is).
    """
    transpose = batch_first and query.dim() == 3
    if transpose:
        query, key, value = (t.transpose(0, 1) for t in (query, key, value))
    with warnings.catch_warnings():
        # a boolean key_padding_mask beside a float attn_mask: torch warns the mix is deprecated
        warnings.simplefilter("ignore", UserWarning)
        output, _ = F.multi_head_attention_forward(
            query,
            key,
            value,
            query.shape[-1],
            num_heads,
            in_proj_weight,
            in_proj_bias,
            None,  # bias_k
            None,  # bias_v
            False,  # add_zero_attn
            0.0,  # dropout_p
            out_proj_weight,
            out_proj_bias,
            training=False,
            key_padding_mask=key_padding_mask,
            need_weights=False,
            attn_mask=attn_mask,
        )
    return output.transpose(0, 1) if transpose else output
