"""torch twins of :mod:`reference_impl.networks`: the same architecture and weights in torch.nn."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from reference_impl import networks
from reference_impl.testing import oracles


class RNNOutput(torch.nn.RNN):
    """``torch.nn.RNN`` returning only ``output``: the reference's convention in a Sequential."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(input)[0]


class LSTMOutput(torch.nn.LSTM):
    """``torch.nn.LSTM`` returning only ``output``."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(input)[0]


class GRUOutput(torch.nn.GRU):
    """``torch.nn.GRU`` returning only ``output``."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(input)[0]


class LastStep(torch.nn.Module):
    """``output[-1]`` (``output[:, -1]`` with ``batch_first``): ``h_n[0]`` of one layer."""

    def __init__(self, batch_first: bool = False) -> None:
        super().__init__()
        self.batch_first = batch_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1] if self.batch_first else x[-1]


class MaskedDropout(torch.nn.Module):
    """torch's dropout kernel applied with the mask the reference layer drew in its last forward.

    ``torch.nn.Dropout`` draws its own mask from torch's generator; this twin
    replays the reference's (``oracles.dropout``: ``native_dropout_backward``,
    the kernel ``native_dropout`` scales with, which autograd differentiates).
    In eval mode it is ``F.dropout(training=False)``, the identity, as
    ``torch.nn.Dropout``'s. The reference layer must run first in each pass.
    """

    def __init__(self, layer: networks.Dropout) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = self.layer.mask
        if self.training and (mask is None or tuple(mask.shape) != tuple(x.shape)):
            raise RuntimeError("run the reference Dropout on this input before its twin")
        tensor = None if mask is None else torch.from_numpy(mask.copy())
        return oracles.dropout(x, tensor, self.layer.p, self.training)


#: layers whose twin is not the torch.nn module of the same name built from ``arguments``
SPECIAL = {"RNN": RNNOutput, "LSTM": LSTMOutput, "GRU": GRUOutput, "LastStep": LastStep}


def torch_layer(layer: networks.Layer) -> torch.nn.Module:
    """The ``torch.nn`` module of the layer's class name, built from its ``arguments``.

    Recurrent modules return their ``output`` only (``RNNOutput``...); ``LastStep``
    and a training ``Dropout`` have the twins above. The module gets the layer's mode.
    """
    if isinstance(layer, networks.Dropout):
        return MaskedDropout(layer).train(layer.training)
    args, kwargs = layer.arguments
    name = type(layer).__name__
    kind = SPECIAL[name] if name in SPECIAL else getattr(torch.nn, name)
    module: torch.nn.Module = kind(*args, **kwargs)
    return module.train(layer.training)


def torch_model(model: networks.Sequential, dtype: np.dtype[Any]) -> torch.nn.Sequential:
    """``torch.nn.Sequential`` with ``model``'s layers, modes and a copy of its weights and
    buffers."""
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
    twin: torch.nn.Sequential | None = None,
) -> tuple[float, np.ndarray[Any, Any] | None, dict[str, np.ndarray[Any, Any]]]:
    """``(L, ∂L/∂x, parameter gradients)`` from autograd on the torch twin of ``model``.

    ``twin`` defaults to ``torch_model(model)``; ``∂L/∂x`` is ``None`` for integer ``x``.
    """
    dtype = np.dtype(model.state_dict()[next(iter(model.state_dict()))].dtype)
    twin = torch_model(model, x.dtype if x.dtype.kind == "f" else dtype) if twin is None else twin
    inputs = torch.from_numpy(x.copy())
    if x.dtype.kind == "f":
        inputs.requires_grad_(True)
    value = torch_loss(loss)(twin(inputs), torch_target(target))
    value.backward()
    grads = {}
    for key, param in twin.named_parameters():
        assert param.grad is not None, key
        grads[key] = param.grad.numpy().copy()
    grad_x = None if inputs.grad is None else inputs.grad.numpy().copy()
    return float(value.detach()), grad_x, grads
