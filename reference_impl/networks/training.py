"""One forward and backward pass, optimizers (SGD, Adam, AdamW, RMSprop) and mini-batch epochs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

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


class _Adaptive:
    """An optimizer of ``torch.optim`` keeping a state dict per parameter (``optim.<name>_step``).

    ``state`` maps each parameter's ``state_dict`` key to its optimizer state
    (torch's keys, ``step`` an ``int``), from its first step on. The step is the
    ``<name>_step`` of the namespace the model last ran in, else of the
    model's own namespace, as :class:`SGD`'s.

    :meth:`state_dict` has ``torch.optim.Optimizer.state_dict()``'s layout:
    ``{"state": {index: {...}}, "param_groups": [{hyper-parameters..., "params":
    [0, 1, ...]}]}`` with parameters numbered in the model's order (that of
    ``torch_model.parameters()``), holding NumPy arrays and an ``int`` step.
    Made tensors (``torch.from_numpy(array)``, ``torch.tensor(float(step))``),
    it loads into the torch optimizer of the twin model; :meth:`load_state_dict`
    takes either layout back.
    """

    #: the step function's name in the namespaces
    _step_name: ClassVar[str]
    #: torch's param_group entries this implementation does not vary, with torch's defaults
    _torch_only: ClassVar[dict[str, Any]]

    def __init__(self, model: Sequential, **hyper: Any) -> None:
        self.model = model
        self.hyper = hyper
        self.state: dict[str, dict[str, Any]] = {}

    def _keys(self) -> list[str]:
        """The model's parameter keys (no buffers), in torch's ``parameters()`` order."""
        return [f"{i}.{name}" for i, layer in enumerate(self.model) for name in layer.parameters()]

    def step(self, grads: Mapping[str, FloatArray]) -> None:
        """Update every parameter that has a gradient in ``grads``."""
        ns = self.model.last_namespace or self.model.namespace
        step = getattr(ns, self._step_name)
        weights = self.model.state_dict()
        for key in [key for key in self._keys() if key in grads]:
            weights[key], self.state[key] = step(
                weights[key], grads[key], self.state.get(key), **self.hyper
            )
        self.model.load_state_dict(weights)

    def state_dict(self) -> dict[str, Any]:
        """``torch.optim``'s layout (class docstring); the arrays are copies."""
        keys = self._keys()
        state = {
            index: {
                name: np.array(value, copy=True) if name != "step" else int(value)
                for name, value in self.state[key].items()
            }
            for index, key in enumerate(keys)
            if key in self.state
        }
        group = {**self.hyper, **self._torch_only, "params": list(range(len(keys)))}
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Take the state and hyper-parameters of :meth:`state_dict` or of torch's optimizer.

        Tensors are read as arrays (``numpy.asarray``), ``step`` as an ``int``.
        """
        keys = self._keys()
        (group,) = state_dict["param_groups"]
        if len(group["params"]) != len(keys):
            raise ValueError(
                f"state_dict has {len(group['params'])} parameters, the model {len(keys)}"
            )
        position = {index: keys[i] for i, index in enumerate(group["params"])}
        self.hyper = {name: group[name] for name in self.hyper}
        if "betas" in self.hyper:
            self.hyper["betas"] = tuple(self.hyper["betas"])
        self.state = {
            position[index]: {
                name: int(value) if name == "step" else np.asarray(value).copy()
                for name, value in entry.items()
            }
            for index, entry in state_dict["state"].items()
        }


class Adam(_Adaptive):
    """``torch.optim.Adam`` over a :class:`Sequential`, one ``adam_step`` per parameter."""

    _step_name = "adam_step"
    _torch_only: ClassVar[dict[str, Any]] = {
        "foreach": None,
        "capturable": False,
        "differentiable": False,
        "fused": None,
        "decoupled_weight_decay": False,
    }

    def __init__(
        self,
        model: Sequential,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            model,
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
        )


class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay, one ``adamw_step`` per parameter."""

    _step_name = "adamw_step"
    _torch_only: ClassVar[dict[str, Any]] = {
        **Adam._torch_only,
        "decoupled_weight_decay": True,
    }

    def __init__(
        self,
        model: Sequential,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(model, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)


class RMSprop(_Adaptive):
    """``torch.optim.RMSprop`` over a :class:`Sequential`, one ``rmsprop_step`` per parameter."""

    _step_name = "rmsprop_step"
    _torch_only: ClassVar[dict[str, Any]] = {
        "capturable": False,
        "foreach": None,
        "differentiable": False,
    }

    def __init__(
        self,
        model: Sequential,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            model,
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )


Optimizer = SGD | Adam | AdamW | RMSprop


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
    optimizer: Optimizer,
    x: NDArray[Any],
    target: NDArray[Any],
    batch_size: int,
    order: Sequence[int] | NDArray[Any] | None = None,
) -> float:
    """One pass over the data in mini-batches, one optimizer step each; the mean batch loss."""
    values = []
    for xb, yb in batches(x, target, batch_size, order):
        value, _, grads = loss_and_gradients(model, loss, xb, yb)
        optimizer.step(grads)
        values.append(value)
    return float(np.mean(values)) if values else float("nan")
