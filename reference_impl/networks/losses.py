"""The losses of a network: a formula of the namespace with torch's ``reduction``."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from reference_impl._validation import FloatArray
from reference_impl.networks.layers import Namespace, resolve_namespace


class Loss:
    """A scalar loss ``L(input, target)``: ``<formula>`` and ``<formula>_backward``.

    ``reduction`` is ``"mean"`` (the default) or ``"sum"``, as for torch's
    module of the same class name.
    """

    formula = ""

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum' for training, got {reduction!r}")
        self.reduction = reduction
        self._saved: tuple[FloatArray, NDArray[Any], ModuleType] | None = None

    def forward(
        self, input: FloatArray, target: NDArray[Any], namespace: Namespace = "vectorized"
    ) -> FloatArray:
        ns = resolve_namespace(namespace)
        self._saved = (input, target, ns)
        out: FloatArray = getattr(ns, self.formula)(input, target, reduction=self.reduction)
        return out

    __call__ = forward

    def backward(self) -> FloatArray:
        """``∂L/∂input`` for the last ``forward`` (the upstream gradient of L itself is 1)."""
        if self._saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        input, target, ns = self._saved
        one = np.ones((), dtype=input.dtype)
        grad: FloatArray = getattr(ns, self.formula + "_backward")(
            one, input, target, reduction=self.reduction
        )
        return grad

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class MSELoss(Loss):
    """``mean((x − y)²)``; ``∂L/∂x = 2 (x − y) / n``."""

    formula = "mse_loss"


class BCELoss(Loss):
    """Binary cross-entropy on probabilities (put a ``Sigmoid`` before it)."""

    formula = "binary_cross_entropy"


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on logits; ``∂L/∂z = (σ(z) − y) / n``."""

    formula = "binary_cross_entropy_with_logits"


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on logits (N, C), target class indices (N,) or probabilities."""

    formula = "cross_entropy"
