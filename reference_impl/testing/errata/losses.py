"""Wrong formulas of the losses."""

from __future__ import annotations

from typing import Any

import numpy as np

from reference_impl import vectorized
from reference_impl.testing.errata.catalog import Erratum


def mse_mean_without_division(
    grad_output: Any, input: Any, target: Any, reduction: str = "mean"
) -> Any:
    """Classic slip: the ``"mean"`` gradient without the 1/n.

    Shrunk counterexample: input = [0.0, 0.0], target = [0.0, 0.0625], reduction="mean".
    """
    reduced = "sum" if reduction == "mean" else reduction
    return vectorized.mse_loss_backward(grad_output, input, target, reduced)


def bce_unclamped(input: Any, target: Any, reduction: str = "mean") -> Any:
    """Classic slip: BCE forward without torch's clamp of log at −100.

    At p = 0 the term y·log p is 0·(−inf) = nan for y = 0 and +inf for y > 0,
    where torch gives 0 and 100·y. Shrunk counterexample: input = 0.0, target =
    0.0 (0-d), reduction="mean": nan instead of 0.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = -(target * np.log(input) + (1 - target) * np.log1p(-input))
    if reduction == "none":
        return loss
    total = loss.sum()
    return np.asarray(total / loss.size if reduction == "mean" else total, dtype=input.dtype)


def cross_entropy_ignores_target_mass(
    grad_output: Any, input: Any, target: Any, reduction: str = "mean"
) -> Any:
    """Classic slip: ``∂ℓ/∂x = softmax(x) − y`` also for probability targets.

    The general form is softmax(x)·Σ_k y_k − y; the two agree only when each
    target row sums to 1 (always so for class indices). Shrunk counterexample:
    probability target [[0.0]] with one class: the gradient is 0, not 1.
    """
    if np.issubdtype(target.dtype, np.integer):
        return vectorized.cross_entropy_backward(grad_output, input, target, reduction)
    probs = vectorized.softmax(input, 1) - target
    upstream = grad_output / input.shape[0] if reduction == "mean" else grad_output
    return probs * (upstream[:, None] if reduction == "none" else upstream)


ERRATA = [
    Erratum(
        name="mse-mean-missing-1-over-n",
        formula="mse_loss",
        source="classic slip",
        mistake="the mean reduction's gradient is not divided by n",
        backward=mse_mean_without_division,
    ),
    Erratum(
        name="bce-without-log-clamp",
        formula="binary_cross_entropy",
        source="classic slip",
        mistake="log 0 = −inf is not clamped at −100 as torch does",
        forward=bce_unclamped,
    ),
    Erratum(
        name="cross-entropy-target-mass",
        formula="cross_entropy",
        source="classic slip",
        mistake="softmax − y used for probability targets that do not sum to 1",
        backward=cross_entropy_ignores_target_mass,
    ),
]
