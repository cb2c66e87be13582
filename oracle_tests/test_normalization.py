"""Normalization and dropout: what the generic properties cannot say.

* batch_norm_running_stats against torch over several training steps, and
  the wrong running-statistics updates it must reject;
* batch norm worked by hand on three values (the three-term dx, number by
  number);
* dropout against torch's own random masks (``torch.native_dropout``);
* layer norm and group norm processed in several blocks (the vectorized
  versions loop over blocks of rows; the generic cases are one block).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, Phase, find, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import reference_impl.loops as loops
import reference_impl.normalization as normalization
import reference_impl.vectorized as vectorized
from reference_impl.testing import evaluate, report, strategies
from reference_impl.testing.comparison import assert_close
from reference_impl.testing.specs import spec_named
from reference_impl.testing.specs.normalization import RUNNING_VAR

Array = np.ndarray[Any, Any]
NAMESPACES = [("loops", loops), ("vectorized", vectorized)]

# ------------------------------------------------------------------ running statistics

STEPS = 3
MOMENTA = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0])


@st.composite
def running_stats_runs(draw: st.DrawFn) -> dict[str, Any]:
    """``STEPS`` training batches of one shape (n ≥ 2 per channel), initial statistics, momentum."""
    dtype = draw(strategies.dtypes(), label="dtype")
    rank = draw(st.integers(2, 4), label="rank")
    channels = draw(st.integers(1, 3), label="C")
    spatial = [draw(st.integers(1, 3), label="spatial") for _ in range(rank - 2)]
    batch = draw(st.integers(1 if spatial and max(spatial) > 1 else 2, 3), label="N")
    shape = (batch, channels, *spatial)
    batches = []
    for k in range(STEPS):
        x = draw(strategies.arrays(dtype, shape), label=f"batch {k}")
        if draw(st.integers(0, 3), label="constant channel") == 3:
            c = draw(st.integers(0, channels - 1), label="channel")
            x[:, c] = x[0, c].reshape(-1)[0]  # σ² = 0: the unbiased estimate is 0 too
        batches.append(x)
    return {
        "batches": batches,
        "running_mean": draw(strategies.arrays(dtype, (channels,)), label="running_mean"),
        "running_var": draw(
            strategies.arrays(dtype, (channels,), RUNNING_VAR), label="running_var"
        ),
        "momentum": draw(MOMENTA, label="momentum"),
    }


def torch_running_stats(run: dict[str, Any]) -> list[tuple[Array, Array]]:
    """The statistics F.batch_norm leaves in (copies of) the buffers after each training call."""
    mean = torch.from_numpy(run["running_mean"].copy())
    var = torch.from_numpy(run["running_var"].copy())
    found = []
    for x in run["batches"]:
        F.batch_norm(torch.from_numpy(x.copy()), mean, var, training=True, momentum=run["momentum"])
        found.append((mean.numpy().copy(), var.numpy().copy()))
    return found


Update = Callable[[Array, Array, Array, float], tuple[Array, Array]]


def trajectory(update: Update, run: dict[str, Any]) -> list[tuple[Array, Array]]:
    mean, var = run["running_mean"], run["running_var"]
    found = []
    for x in run["batches"]:
        mean, var = update(x, mean, var, run["momentum"])
        found.append((mean, var))
    return found


def running_stats_length(run: dict[str, Any]) -> int:
    """The reduction length that bounds a running-statistics trajectory.

    One step: μ is off by at most 3n·u·M (``tolerances.normalization_length``,
    step 1), the unbiased variance by (n + 3)u relative (two passes, the
    error of μ entering to second order), and the update adds three
    roundings, (1 − m)·running + m·batch. Earlier errors are carried forward
    multiplied by 1 − m ≤ 1, so after k steps the error is at most k times a
    step's: k·(3n·M + n + 8), with M = max(1, max |x|).
    """
    x = run["batches"][0]
    n = x.size // x.shape[1]
    magnitude = max(1.0, max(float(np.max(np.abs(b))) for b in run["batches"]))
    return int(np.ceil(STEPS * (3 * n * magnitude + n + 8)))


def agree_with_torch(
    update: Update, run: dict[str, Any], expected: list[tuple[Array, Array]], name: str
) -> None:
    dtype = run["running_mean"].dtype
    for step, ((mean, var), (torch_mean, torch_var)) in enumerate(
        zip(trajectory(update, run), expected, strict=True)
    ):
        for quantity, actual, wanted in (("mean", mean, torch_mean), ("var", var, torch_var)):
            assert actual.dtype == dtype
            assert_close(
                actual,
                wanted,
                quantity=f"running_{quantity} after step {step + 1}",
                actual_name=name,
                expected_name="torch F.batch_norm(training=True)",
                formula="batch_norm_running_stats",
                dtype=dtype,
                reduction_length=running_stats_length(run),
            )


@given(running_stats_runs())
def test_batch_norm_running_stats_follow_torch(run: dict[str, Any]) -> None:
    """Three training steps of loops and vectorized follow the buffers torch updates in place.

    Rejects: the biased batch variance in the running variance, the momentum
    convention reversed (both in ``WRONG_UPDATES``), a running statistic
    modified in place instead of returned.
    """
    expected = torch_running_stats(run)
    saved = (run["running_mean"].copy(), run["running_var"].copy())
    for name, namespace in NAMESPACES:
        agree_with_torch(namespace.batch_norm_running_stats, run, expected, name)
    assert np.array_equal(saved[0], run["running_mean"])
    assert np.array_equal(saved[1], run["running_var"])
    corners = {
        "momentum 0" if run["momentum"] == 0 else "momentum 1" if run["momentum"] == 1 else ""
    }
    if run["running_mean"].dtype == np.float32:
        corners.add("float32")
    report.record_example(
        "batch_norm_running_stats",
        "trajectory = torch",
        frozenset(corners - {""}),
        frozenset({"float32", "momentum 0", "momentum 1"}),
    )


@pytest.mark.parametrize(
    ("changes", "error", "argument"),
    [
        ({"x": np.zeros(4)}, ValueError, "x"),
        ({"x": np.zeros((1, 2))}, ValueError, "x"),
        ({"x": np.zeros((1, 2, 1))}, ValueError, "x"),
        ({"running_mean": np.zeros(3)}, ValueError, "running_mean"),
        ({"running_var": None}, TypeError, "running_var"),
        ({"running_var": np.ones(2, np.float32)}, TypeError, "running_var"),
        ({"momentum": 1.5}, ValueError, "momentum"),
        ({"momentum": "0.1"}, TypeError, "momentum"),
    ],
)
def test_batch_norm_running_stats_rejects_bad_arguments(
    namespace: ModuleType, changes: dict[str, Any], error: type[Exception], argument: str
) -> None:
    """Both namespaces raise, naming the argument; rejects a silent broadcast or a deep crash."""
    args: dict[str, Any] = {
        "x": np.arange(12.0).reshape(3, 2, 2),
        "running_mean": np.zeros(2),
        "running_var": np.ones(2),
        "momentum": 0.1,
    }
    with pytest.raises(error, match=rf"(?<![\w.]){argument}(?!\w)"):
        namespace.batch_norm_running_stats(**{**args, **changes})


def running_var_biased(
    x: Array, running_mean: Array, running_var: Array, momentum: float
) -> tuple[Array, Array]:
    """The running variance fed the biased batch variance Σ(x − μ)²/n.

    PyTorch issues #3122, #19902 and #60528 ask why torch does not do this:
    it normalizes the batch with the biased variance but, following the
    batch-normalization paper's inference procedure, accumulates the
    unbiased one, n/(n − 1) times larger.

    Shrunk counterexample: three batches of shape (2, 2), momentum 0.1,
    initial statistics 0; the third batch is [[0, 0], [0, 1/16]]. Channel 1
    then has σ² = 1/1024 and the unbiased 1/512, so torch's running variance
    becomes 0.1/512 and this version's 0.1/1024.
    """
    rows = np.moveaxis(x.reshape(*x.shape[:2], -1), 1, 0).reshape(x.shape[1], -1)
    keep = 1 - momentum
    return (
        keep * running_mean + momentum * rows.mean(axis=1),
        keep * running_var + momentum * rows.var(axis=1),
    )


def momentum_reversed(
    x: Array, running_mean: Array, running_var: Array, momentum: float
) -> tuple[Array, Array]:
    """``running ← m · running + (1 − m) · batch``: the momentum weighs the old value.

    The convention of CS231n assignment 2's ``batchnorm_forward`` (Stanford,
    ``cs231n/layers.py``, momentum 0.9 there) and of Keras; torch's momentum
    weighs the new batch, ``(1 − m) · running + m · batch``. The two agree only
    at m = 1/2.

    Shrunk counterexample: batches of zeros of shape (2, 1), momentum 0,
    running_var = [1/16]: torch keeps the initial statistics (m = 0), this
    version replaces them by the batch's, so its running variance is 0.
    """
    new_mean, new_var = vectorized.batch_norm_running_stats(
        x, running_mean, running_var, 1 - momentum
    )
    return new_mean, new_var


WRONG_UPDATES = [running_var_biased, momentum_reversed]

SEARCH = settings(
    max_examples=300,
    phases=[Phase.generate, Phase.shrink] if os.environ.get("ERRATA_SHRINK") else [Phase.generate],
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _disagrees(update: Update, run: dict[str, Any]) -> bool:
    try:
        with report.paused():
            agree_with_torch(update, run, torch_running_stats(run), update.__name__)
    except AssertionError:
        return True
    return False


@pytest.mark.errata
@pytest.mark.parametrize("update", WRONG_UPDATES, ids=lambda f: f.__name__)
def test_batch_norm_running_stats_rejects_wrong_update(update: Update) -> None:
    """Each wrong update disagrees with torch on a case of the same strategy."""
    counterexample = find(
        running_stats_runs(), lambda run: _disagrees(update, run), settings=SEARCH
    )
    x = counterexample["batches"][0]
    print(
        f"{update.__name__}: x {x.dtype}{list(x.shape)}, momentum={counterexample['momentum']}, "
        f"running_mean={counterexample['running_mean'].tolist()}, "
        f"running_var={counterexample['running_var'].tolist()}, "
        f"batches={[b.tolist() for b in counterexample['batches']]}"
    )


# ------------------------------------------------------------------ golden: batch norm by hand


def test_batch_norm_golden_three_values(namespace: ModuleType) -> None:
    """Batch norm of one channel holding x = (1, 4, 10), worked by hand.

    Training mode, ε = 2 (so that σ² + ε is a perfect square), γ = 2, β = 1,
    upstream gradient dy = (1, −2, 4).

    Forward:
        μ  = (1 + 4 + 10)/3 = 5
        σ² = ((−4)² + (−1)² + 5²)/3 = 42/3 = 14        (biased: divided by n = 3)
        r  = 1/√(σ² + ε) = 1/√16 = 1/4
        x̂  = (x − μ) r = (−1, −1/4, 5/4)
        y  = γ x̂ + β = (−1, 1/2, 7/2)

    Backward, g = γ dy = (2, −4, 8):
        Σ g = 6,   Σ g x̂ = −2 + 1 + 10 = 9
        dx_j = (r/n) (n g_j − Σ g − x̂_j Σ g x̂)
             = (1/12) ((6, −12, 24) − 6 − (−9, −9/4, 45/4))
             = (1/12) (9, −63/4, 27/4)
             = (3/4, −21/16, 9/16) = (0.75, −1.3125, 0.5625)
        dγ = Σ dy x̂ = −1 + 1/2 + 5 = 4.5
        dβ = Σ dy = 3

    dx sums to 0 and Σ dx x̂ = 0 up to ε's share. Rejects the backward that
    treats μ and σ² as constants, γ r dy = (0.5, −1, 2), and normalization
    with the unbiased variance 21 (r = 1/√23).
    """
    x = np.array([[1.0], [4.0], [10.0]])
    args: dict[str, Any] = {
        "running_mean": None,
        "running_var": None,
        "weight": np.array([2.0]),
        "bias": np.array([1.0]),
        "training": True,
        "eps": 2.0,
    }
    dy = np.array([[1.0], [-2.0], [4.0]])
    y = namespace.batch_norm(x, **args)
    dx, dgamma, dbeta = namespace.batch_norm_backward(dy, x, **args)
    for quantity, actual, wanted in (
        ("y", y, [[-1.0], [0.5], [3.5]]),
        ("dx", dx, [[0.75], [-1.3125], [0.5625]]),
        ("dgamma", dgamma, [4.5]),
        ("dbeta", dbeta, [3.0]),
    ):
        assert_close(
            actual,
            np.array(wanted),
            quantity=quantity,
            actual_name=namespace.__name__,
            expected_name="the hand computation",
            formula="golden: batch_norm three values",
            dtype=np.dtype(np.float64),
            reduction_length=4,
        )
    report.record_example(
        "golden: batch_norm three values",
        "hand-worked numbers",
        frozenset({"three-term dx"}),
        frozenset(),
    )


# ------------------------------------------------------------------ dropout with torch's masks


@given(
    dtype=strategies.dtypes(),
    shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
    p=st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.8, 1.0]),
    seed=st.integers(0, 2**31 - 1),
    data=st.data(),
)
def test_dropout_matches_native_dropout_with_its_own_mask(
    dtype: np.dtype[Any], shape: tuple[int, ...], p: float, seed: int, data: st.DataObject
) -> None:
    """torch draws the mask (``torch.native_dropout``), ours applies it: same output and gradient.

    The spec's oracle applies a mask the strategy drew with torch's kernel;
    here the mask is torch's own random one, so the formula is checked against
    torch's dropout end to end. Rejects p read as the keep probability
    (x·mask/p) and the unscaled x·mask.
    """
    x = data.draw(strategies.arrays(dtype, shape), label="x")
    torch.manual_seed(seed)
    tensor = torch.from_numpy(x.copy()).requires_grad_(True)
    output, mask = torch.native_dropout(tensor, p, True)
    grad_output = strategies.upstream_gradient(shape, dtype, seed)
    (grad_input,) = torch.autograd.grad(output, tensor, torch.from_numpy(grad_output.copy()))
    for name, namespace in NAMESPACES:
        for quantity, actual, wanted in (
            ("output", namespace.dropout(x, mask.numpy(), p), output.detach().numpy()),
            (
                "grad_x",
                namespace.dropout_backward(grad_output, x, mask.numpy(), p),
                grad_input.numpy(),
            ),
        ):
            assert_close(
                actual,
                wanted,
                quantity=quantity,
                actual_name=name,
                expected_name="torch.native_dropout",
                formula="dropout",
                dtype=np.dtype(dtype),
                reduction_length=1,
            )
    corners = {"torch's mask"} | ({"float32"} if dtype == np.float32 else set())
    report.record_example(
        "dropout", "torch's own mask", frozenset(corners), frozenset({"torch's mask"})
    )


# ------------------------------------------------------------------ several blocks


@pytest.mark.parametrize("formula", ["layer_norm", "group_norm"])
@given(data=st.data())
def test_layer_norm_and_group_norm_in_blocks(formula: str, data: st.DataObject) -> None:
    """The vectorized versions give the same results processed a row or a few rows at a time.

    Their loop runs over blocks of BLOCK_BYTES, counted over every array a
    block touches (x and the result; dy and a scratch block too in the
    backward); the spec's small cases fit in one block. Eight rows' worth of
    x makes blocks of four rows forward and two backward. Rejects a block's
    scratch space sized or sliced wrongly (the last, shorter block), and
    parameter gradients accumulated per block but not across blocks. Both
    ``layer_norm`` and ``group_norm`` are in the test's name and its ids, so
    ``-k`` on either selects it.
    """
    spec = spec_named(formula)
    case = data.draw(evaluate.any_case(spec), label="case")
    x = case.args["x"]
    rows = x.shape[0] if formula == "group_norm" else x.size // max(1, _normalized_size(case))
    per_row = max(1, x.nbytes // max(1, rows))
    block = data.draw(st.sampled_from([1, 8 * per_row]), label="block bytes")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(normalization, "BLOCK_BYTES", block)
        evaluate.three_way(spec, case)


def _normalized_size(case: Any) -> int:
    shape = case.args["normalized_shape"]
    return int(shape) if isinstance(shape, int) else int(np.prod(shape))
