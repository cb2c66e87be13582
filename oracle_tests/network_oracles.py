"""torch twins of :mod:`reference_impl.networks`: the same architecture and weights in torch.nn."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from reference_impl import networks


def torch_layer(layer: networks.Layer) -> torch.nn.Module:
    """The ``torch.nn`` module of the layer's class name, built from its ``arguments``."""
    args, kwargs = layer.arguments
    module: torch.nn.Module = getattr(torch.nn, type(layer).__name__)(*args, **kwargs)
    return module


def torch_model(model: networks.Sequential, dtype: np.dtype[Any]) -> torch.nn.Sequential:
    """``torch.nn.Sequential`` with ``model``'s layers and a copy of its weights."""
    twin = torch.nn.Sequential(*(torch_layer(layer) for layer in model))
    twin.to(torch.float64 if dtype == np.float64 else torch.float32)
    state = {key: torch.from_numpy(value.copy()) for key, value in model.state_dict().items()}
    twin.load_state_dict(state, strict=True)
    return twin


def torch_loss(loss: networks.Loss) -> torch.nn.Module:
    module: torch.nn.Module = getattr(torch.nn, type(loss).__name__)(reduction=loss.reduction)
    return module


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
