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
    grad_output: Any,
    input: Any,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Any:
    """Classic slip: ``∂ℓ/∂x = softmax(x) − y`` also for probability targets.

    The general form is softmax(x)·Σ_k y_k − y; the two agree only when each
    target row sums to 1 (always so for class indices). Shrunk counterexample:
    probability target [[0.0]] with one class: the gradient is 0, not 1.
    """
    if np.issubdtype(target.dtype, np.integer) or weight is not None or label_smoothing:
        return vectorized.cross_entropy_backward(
            grad_output, input, target, weight, ignore_index, reduction, label_smoothing
        )
    probs = vectorized.softmax(input, 1) - target
    upstream = grad_output / input.shape[0] if reduction == "mean" else grad_output
    return probs * (upstream[:, None] if reduction == "none" else upstream)


def nll_mean_over_batch_size(
    input: Any,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Any:
    """Classic slip: the weighted mean divided by the batch size N instead of ``Σ_n w_{y_n}``.

    torch divides by the total weight of the rows that are not ignored; with
    no weight and no ignored row that is N, and nothing tells the two apart.
    (PyTorch issues #69339 and #91383 are crashes in exactly this weighted
    normalisation.) Shrunk counterexample: input = zeros (2, 2), target = [-100, -100],
    reduction="mean": 0.0 instead of torch's NaN (no row left, 0/0).
    """
    if reduction != "mean":
        return vectorized.nll_loss(input, target, weight, ignore_index, reduction)
    total = vectorized.nll_loss(input, target, weight, ignore_index, "sum")
    return np.asarray(total / input.shape[0], dtype=input.dtype)


def cross_entropy_mean_over_batch_size(
    input: Any,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Any:
    """Classic slip: for class indices, the mean divided by N instead of the weight sum ``D``.

    torch's mean of class-index cross-entropy is ``Σ_n ℓ_n / Σ_n w_{y_n}`` over
    the rows that are not ignored, the smoothing term included. Shrunk
    counterexample: input = [[0.0, 0.0]], target = [-100],
    reduction="mean": 0.0 instead of torch's NaN.
    """
    if reduction != "mean" or not np.issubdtype(target.dtype, np.integer):
        return vectorized.cross_entropy(
            input, target, weight, ignore_index, reduction, label_smoothing
        )
    total = vectorized.cross_entropy(input, target, weight, ignore_index, "sum", label_smoothing)
    return np.asarray(total / input.shape[0], dtype=input.dtype)


def cross_entropy_smoothing_counts_ignored_rows(
    input: Any,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Any:
    """PyTorch issue #73205: the uniform (smoothing) term sums over ignored rows too.

    ``S_n = −Σ_c w_c log p_{n,c}`` is added for every row, ignored or not, while
    the one-hot term skips ignored rows; the label-smoothing losses posted in
    PyTorch issue #7455 do the same. torch sets ``S_n = 0`` for ignored rows.
    Shrunk counterexample: input = zeros (3, 3), target = [-100, 0, 0],
    label_smoothing = 0.25, reduction="mean": 1.23594 instead of log 3 = 1.09861.
    """
    right = vectorized.cross_entropy(
        input, target, weight, ignore_index, reduction, label_smoothing
    )
    if not np.issubdtype(target.dtype, np.integer) or label_smoothing == 0:
        return right
    ignored = target == ignore_index
    count = input.shape[1]
    w = np.ones(count, dtype=input.dtype) if weight is None else weight
    extra = -(vectorized.log_softmax(input, 1)[ignored] @ w) * (label_smoothing / count)
    if reduction == "none":
        wrong = right.copy()
        wrong[ignored] += extra
        return wrong
    kept = target[~ignored]
    divisor = float(w[kept].sum()) if reduction == "mean" else 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(right + extra.sum() / divisor, dtype=input.dtype)


def cross_entropy_backward_softmax_minus_onehot(
    grad_output: Any,
    input: Any,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Any:
    """Classic slip: ``∂L/∂x_n = a_n (softmax(x_n) − onehot(y_n))`` whatever the weights and ε.

    That is the gradient only for ``w = 1`` and ``ε = 0``; torch's is
    ``G − softmax · Σ_c G_c`` with ``G_{n,c} = −a_n w_c y'_{n,c}``, the weighted,
    smoothed target, and the mean's ``a_n = g / Σ_n w_{y_n}``. Shrunk
    counterexample: input = zeros (2, 3), target = [0, 0],
    label_smoothing = 0.25, reduction="mean", g = 1.75: ∂L/∂x[0, 0] = −0.58333
    instead of −0.4375.
    """
    if not np.issubdtype(target.dtype, np.integer):
        return vectorized.cross_entropy_backward(
            grad_output, input, target, weight, ignore_index, reduction, label_smoothing
        )
    return vectorized.cross_entropy_backward(
        grad_output, input, target, None, ignore_index, reduction
    )


def kl_div_mean_for_batchmean(
    input: Any, target: Any, reduction: str = "mean", log_target: bool = False
) -> Any:
    """Classic slip: ``"mean"`` (divide by every element) where ``"batchmean"`` is meant.

    The KL divergence of each example is the sum over its distribution;
    ``"batchmean"`` averages those sums over the batch (``input.shape[0]``),
    ``"mean"`` also divides by the distribution's size. Shrunk counterexample:
    input = zeros (3, 3), target = zeros but 0.0625 at [2, 2],
    reduction="batchmean": −0.019254 instead of −0.057762.
    """
    reduced = "mean" if reduction == "batchmean" else reduction
    return vectorized.kl_div(input, target, reduced, log_target)


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
    Erratum(
        name="nll-mean-over-batch-size",
        formula="nll_loss",
        source="classic slip",
        mistake="the mean divided by the batch size N instead of the total weight Σ w_{y_n}",
        forward=nll_mean_over_batch_size,
    ),
    Erratum(
        name="cross-entropy-mean-over-batch-size",
        formula="cross_entropy",
        source="classic slip",
        mistake="the mean of class-index losses divided by N instead of Σ w_{y_n} over kept rows",
        forward=cross_entropy_mean_over_batch_size,
    ),
    Erratum(
        name="cross-entropy-smoothing-counts-ignored-rows",
        formula="cross_entropy",
        source="PyTorch issue #73205; the label-smoothing losses of PyTorch issue #7455",
        mistake="the label-smoothing term ε/C·Σ_c w_c log p_c summed over ignored rows too",
        forward=cross_entropy_smoothing_counts_ignored_rows,
    ),
    Erratum(
        name="cross-entropy-gradient-softmax-minus-onehot",
        formula="cross_entropy",
        source="classic slip",
        mistake="softmax − onehot(y) as the gradient despite class weights or label smoothing",
        backward=cross_entropy_backward_softmax_minus_onehot,
    ),
    Erratum(
        name="kl-div-mean-for-batchmean",
        formula="kl_div",
        source="classic slip",
        mistake='reduction "mean" (divide by every element) where "batchmean" is meant',
        forward=kl_div_mean_for_batchmean,
    ),
]
