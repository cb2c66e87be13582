"""torch twins of :mod:`reference_impl.networks`: the same architecture and weights in torch.nn."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from reference_impl import networks


def _int_or_pair(value: Any) -> Any:
    return tuple(value) if isinstance(value, (tuple, list)) else value


def torch_layer(layer: networks.Layer) -> torch.nn.Module:
    """The ``torch.nn`` module computing what ``layer`` computes (parameters not yet set)."""
    if isinstance(layer, networks.Linear):
        return torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
    if isinstance(layer, networks.Conv2d):
        return torch.nn.Conv2d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            stride=_int_or_pair(layer.stride),
            padding=_int_or_pair(layer.padding),
            dilation=_int_or_pair(layer.dilation),
            groups=layer.groups,
            bias=layer.bias is not None,
        )
    if isinstance(layer, networks.MaxPool2d):
        return torch.nn.MaxPool2d(
            _int_or_pair(layer.kernel_size),
            stride=_int_or_pair(layer.stride),
            padding=_int_or_pair(layer.padding),
            dilation=_int_or_pair(layer.dilation),
            ceil_mode=layer.ceil_mode,
        )
    if isinstance(layer, networks.AvgPool2d):
        return torch.nn.AvgPool2d(
            _int_or_pair(layer.kernel_size),
            stride=_int_or_pair(layer.stride),
            padding=_int_or_pair(layer.padding),
            ceil_mode=layer.ceil_mode,
            count_include_pad=layer.count_include_pad,
            divisor_override=layer.divisor_override,
        )
    simple: dict[type, type[torch.nn.Module]] = {
        networks.ReLU: torch.nn.ReLU,
        networks.Sigmoid: torch.nn.Sigmoid,
        networks.Tanh: torch.nn.Tanh,
        networks.Flatten: torch.nn.Flatten,
    }
    return simple[type(layer)]()


def torch_model(model: networks.Sequential, dtype: np.dtype[Any]) -> torch.nn.Sequential:
    """``torch.nn.Sequential`` with ``model``'s layers and a copy of its weights."""
    twin = torch.nn.Sequential(*(torch_layer(layer) for layer in model))
    twin.to(torch.float64 if dtype == np.float64 else torch.float32)
    state = {key: torch.from_numpy(value.copy()) for key, value in model.state_dict().items()}
    twin.load_state_dict(state, strict=True)
    return twin


def torch_loss(loss: networks.Loss) -> torch.nn.Module:
    kinds: dict[type, type[torch.nn.Module]] = {
        networks.MSELoss: torch.nn.MSELoss,
        networks.BCELoss: torch.nn.BCELoss,
        networks.BCEWithLogitsLoss: torch.nn.BCEWithLogitsLoss,
        networks.CrossEntropyLoss: torch.nn.CrossEntropyLoss,
    }
    return kinds[type(loss)](reduction=loss.reduction)


def torch_target(target: np.ndarray[Any, Any]) -> torch.Tensor:
    tensor = torch.from_numpy(np.array(target, copy=True))
    return tensor.to(torch.int64) if target.dtype.kind in "iu" else tensor


def torch_gradients(
    model: networks.Sequential,
    loss: networks.Loss,
    x: np.ndarray[Any, Any],
    target: np.ndarray[Any, Any],
) -> tuple[float, np.ndarray[Any, Any], dict[str, np.ndarray[Any, Any]]]:
    """``(L, ∂L/∂x, parameter gradients)`` from autograd on the torch twin of ``model``."""
    twin = torch_model(model, x.dtype)
    inputs = torch.from_numpy(x.copy()).requires_grad_(True)
    value = torch_loss(loss)(twin(inputs), torch_target(target))
    value.backward()
    assert inputs.grad is not None
    grads = {}
    for key, param in twin.state_dict(keep_vars=True).items():
        assert param.grad is not None, key
        grads[key] = param.grad.numpy().copy()
    return float(value.detach()), inputs.grad.numpy().copy(), grads
