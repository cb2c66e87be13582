"""One forward and backward pass, SGD steps and mini-batch epochs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from reference_impl._validation import FloatArray
from reference_impl.networks.layers import Namespace, Sequential, resolve_namespace
from reference_impl.networks.losses import Loss


def loss_and_gradients(
    model: Sequential,
    loss: Loss,
    x: NDArray[Any],
    target: NDArray[Any],
    namespace: Namespace | None = None,
) -> tuple[float, FloatArray | None, dict[str, FloatArray]]:
    """One forward and backward pass: ``(L, ∂L/∂x, parameter gradients)``.

    ``∂L/∂x`` is ``None`` when ``x`` holds indices (an ``Embedding`` first).
    """
    ns = model.namespace if namespace is None else resolve_namespace(namespace)
    output = model.forward(x, ns)
    value = float(loss.forward(output, target, ns))
    grad_input, grads = model.backward(loss.backward())
    return value, grad_input, grads


@dataclass
class SGD:
    """``torch.optim.SGD`` over a :class:`Sequential`, one ``sgd_step`` per parameter.

    The step is the ``sgd_step`` of the namespace the model last ran in (the
    one that computed the gradients), else of the model's own namespace.
    ``buffers`` holds the momentum buffer of each parameter (by state_dict
    key) after the first step when ``momentum > 0``.
    """

    model: Sequential
    lr: float
    momentum: float = 0.0
    dampening: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False
    buffers: dict[str, FloatArray] = field(default_factory=dict)

    def step(self, grads: Mapping[str, FloatArray]) -> None:
        """Update every parameter that has a gradient in ``grads``."""
        ns = self.model.last_namespace or self.model.namespace
        state = self.model.state_dict()
        for key in [key for key in state if key in grads]:
            state[key], buffer = ns.sgd_step(
                state[key],
                grads[key],
                self.lr,
                momentum=self.momentum,
                dampening=self.dampening,
                weight_decay=self.weight_decay,
                nesterov=self.nesterov,
                momentum_buffer=self.buffers.get(key),
            )
            if buffer is not None:
                self.buffers[key] = buffer
        self.model.load_state_dict(state)


def batches(
    x: NDArray[Any],
    target: NDArray[Any],
    batch_size: int,
    order: Sequence[int] | NDArray[Any] | None = None,
) -> Iterable[tuple[NDArray[Any], NDArray[Any]]]:
    """Consecutive mini-batches of ``(x, target)`` in ``order`` (default: as stored)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    index = np.arange(len(x)) if order is None else np.asarray(order)
    for start in range(0, len(index), batch_size):
        chunk = index[start : start + batch_size]
        yield x[chunk], target[chunk]


def train_epoch(
    model: Sequential,
    loss: Loss,
    optimizer: SGD,
    x: NDArray[Any],
    target: NDArray[Any],
    batch_size: int,
    order: Sequence[int] | NDArray[Any] | None = None,
) -> float:
    """One pass over the data in mini-batches, one SGD step each; the mean batch loss."""
    values = []
    for xb, yb in batches(x, target, batch_size, order):
        value, _, grads = loss_and_gradients(model, loss, xb, yb)
        optimizer.step(grads)
        values.append(value)
    return float(np.mean(values)) if values else float("nan")
