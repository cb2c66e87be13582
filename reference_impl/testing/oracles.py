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
from collections.abc import Callable, Mapping, Sequence
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


def kl_div(
    input: torch.Tensor, target: torch.Tensor, reduction: str, log_target: bool
) -> torch.Tensor:
    """``F.kl_div``, without its warning that ``"mean"`` is not the KL divergence per example."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return F.kl_div(input, target, reduction=reduction, log_target=log_target)


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
    grad_outputs: Sequence[np.ndarray[Any, Any]]
    | Callable[[tuple[Any, ...]], Sequence[np.ndarray[Any, Any]]]
    | None,
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """``(outputs, gradients)``: torch's forward outputs and the gradient of each ``grad_wrt``.

    ``grad_outputs`` are the upstream gradients, or a function that makes them
    from the forward's outputs (so that one forward pass serves both). An
    absent input (``None``) has the gradient ``None``; a present one that no
    output depends on, zeros. With ``grad_outputs=None`` only the forward runs
    and no gradients are returned.
    """
    tensors, outputs = forward_outputs(name, oracle, args, grad_wrt)
    numpy_outputs = tuple(_numpy(out) for out in outputs)
    if grad_outputs is None:
        return numpy_outputs, ()
    if callable(grad_outputs):
        grad_outputs = grad_outputs(numpy_outputs)
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


# ---------------------------------------------------------------- recurrent layers
#
# torch.nn.functional has no recurrent functions. The cells below are the
# functional form of nn.RNNCell / nn.LSTMCell / nn.GRUCell.forward (an unbatched
# input gets a batch axis, a missing state is zeros, then torch's cell op), and
# the sequences call the ops behind nn.RNN / nn.LSTM / nn.GRU (``torch.lstm``
# and friends, the same as ``torch._VF.lstm``) with one layer, one direction,
# no dropout and states shaped (1, N, H). torch's sequence ops take both
# biases or neither: an absent one is passed as zeros that nothing
# differentiates, so its gradient stays None.


def _state(state: torch.Tensor | None, like: torch.Tensor, hidden: int) -> torch.Tensor:
    """``state``, or zeros (N, H) for a batch shaped like ``like`` (N, ·)."""
    if state is not None:
        return state
    return torch.zeros(like.size(0), hidden, dtype=like.dtype)


def _cell_inputs(
    x: torch.Tensor, states: Sequence[torch.Tensor | None], hidden: int
) -> tuple[bool, torch.Tensor, list[torch.Tensor]]:
    batched = x.dim() == 2
    if not batched:
        x = x.unsqueeze(0)
        states = [None if s is None else s.unsqueeze(0) for s in states]
    return batched, x, [_state(s, x, hidden) for s in states]


def rnn_cell(
    x: torch.Tensor,
    hx: torch.Tensor | None,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    nonlinearity: str,
) -> torch.Tensor:
    """``nn.RNNCell.forward``: ``torch.rnn_tanh_cell`` or ``torch.rnn_relu_cell``."""
    batched, x, (h,) = _cell_inputs(x, [hx], weight_hh.size(1))
    cell = torch.rnn_tanh_cell if nonlinearity == "tanh" else torch.rnn_relu_cell
    out = cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
    return out if batched else out.squeeze(0)


def lstm_cell(
    x: torch.Tensor,
    hx: torch.Tensor | None,
    cx: torch.Tensor | None,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``nn.LSTMCell.forward``: ``torch.lstm_cell``."""
    batched, x, (h, c) = _cell_inputs(x, [hx, cx], weight_hh.size(1))
    h, c = torch.lstm_cell(x, (h, c), weight_ih, weight_hh, bias_ih, bias_hh)
    return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


def gru_cell(
    x: torch.Tensor,
    hx: torch.Tensor | None,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
) -> torch.Tensor:
    """``nn.GRUCell.forward``: ``torch.gru_cell``."""
    batched, x, (h,) = _cell_inputs(x, [hx], weight_hh.size(1))
    out = torch.gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
    return out if batched else out.squeeze(0)


def _layer(
    x: torch.Tensor,
    states: Sequence[torch.Tensor | None],
    weights: Sequence[torch.Tensor | None],
    batch_first: bool,
) -> tuple[list[torch.Tensor], list[torch.Tensor], bool]:
    """Initial states shaped (1, N, H) and torch's flat parameter list."""
    weight_ih, weight_hh, bias_ih, bias_hh = weights
    assert weight_ih is not None and weight_hh is not None
    batch = x.size(0 if batch_first else 1)
    hidden = weight_hh.size(1)
    initial = [
        (torch.zeros(batch, hidden, dtype=x.dtype) if s is None else s).unsqueeze(0) for s in states
    ]
    has_biases = bias_ih is not None or bias_hh is not None
    params = [weight_ih, weight_hh]
    if has_biases:
        zeros = torch.zeros(weight_ih.size(0), dtype=x.dtype)
        params += [zeros if b is None else b for b in (bias_ih, bias_hh)]
    return initial, params, has_biases


def rnn(
    x: torch.Tensor,
    h0: torch.Tensor | None,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    nonlinearity: str,
    batch_first: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``nn.RNN``'s op: ``torch.rnn_tanh`` or ``torch.rnn_relu``, one layer."""
    (h,), params, has_biases = _layer(
        x, [h0], [weight_ih, weight_hh, bias_ih, bias_hh], batch_first
    )
    function = torch.rnn_tanh if nonlinearity == "tanh" else torch.rnn_relu
    output, h_n = function(x, h, params, has_biases, 1, 0.0, False, False, batch_first)
    return output, h_n.squeeze(0)


def lstm(
    x: torch.Tensor,
    h0: torch.Tensor | None,
    c0: torch.Tensor | None,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    batch_first: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``nn.LSTM``'s op: ``torch.lstm``, one layer."""
    (h, c), params, has_biases = _layer(
        x, [h0, c0], [weight_ih, weight_hh, bias_ih, bias_hh], batch_first
    )
    output, h_n, c_n = torch.lstm(x, (h, c), params, has_biases, 1, 0.0, False, False, batch_first)
    return output, h_n.squeeze(0), c_n.squeeze(0)


def gru(
    x: torch.Tensor,
    h0: torch.Tensor | None,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
    batch_first: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``nn.GRU``'s op: ``torch.gru``, one layer."""
    (h,), params, has_biases = _layer(
        x, [h0], [weight_ih, weight_hh, bias_ih, bias_hh], batch_first
    )
    output, h_n = torch.gru(x, h, params, has_biases, 1, 0.0, False, False, batch_first)
    return output, h_n.squeeze(0)


def layer_norm(
    x: torch.Tensor,
    normalized_shape: Any,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    eps: float,
) -> torch.Tensor:
    """``F.layer_norm``; an int ``normalized_shape`` (as ``nn.LayerNorm`` takes) becomes a tuple."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    return F.layer_norm(x, tuple(normalized_shape), weight, bias, eps)


def dropout(x: torch.Tensor, mask: torch.Tensor | None, p: float, training: bool) -> torch.Tensor:
    """torch's dropout with a given mask: the kernel ``native_dropout`` applies its own mask with.

    ``torch.native_dropout(x, p, True)`` draws a mask and returns
    ``native_dropout_backward(x, mask, scale)``-equivalent output, with
    ``scale = 1/(1 − p)`` (0 for p = 1) as ATen computes it; autograd
    differentiates that kernel. Not training, ``F.dropout`` is the identity.
    (``oracle_tests/test_normalization.py`` checks the formula against
    ``native_dropout``'s own random masks as well.)
    """
    if not training:
        return F.dropout(x, p=p, training=False)
    assert mask is not None
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    output: torch.Tensor = torch.ops.aten.native_dropout_backward(x, mask, scale)
    return output


def group_norm(
    x: torch.Tensor,
    num_groups: int,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    eps: float,
) -> torch.Tensor:
    """``F.group_norm``; a missing weight beside a bias becomes a constant weight of ones.

    torch 2.13's CPU backward of ``group_norm`` with ``weight=None`` and a
    bias that requires grad fails ("tensor does not have a device"). A weight
    of ones that does not require grad is the same function and takes the
    working path; the gradient of the absent weight stays ``None``.
    """
    if weight is None and bias is not None:
        weight = torch.ones(x.shape[1], dtype=x.dtype)
    return F.group_norm(x, num_groups, weight, bias, eps)


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
