"""Golden tests: the seeds' worked examples, number for number, in both namespaces.

Where a seed gives numbers, the references must reproduce them exactly (the
values are exact in binary, or within one rounding). Where it gives formulas
only, the inputs are chosen so that every term can be told apart.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

from oracle_tests import report
from oracle_tests.comparison import assert_close


def _same(actual: Any, expected: Any, quantity: str, formula: str, namespace: ModuleType) -> None:
    """``actual`` equals the seed's number within one float64 rounding or a few."""
    label = f"golden: {formula.split(' ', 2)[0]} {formula.split(' ', 2)[1]}"
    assert_close(
        actual,
        np.asarray(expected, dtype=np.float64),
        quantity=quantity,
        actual_name=namespace.__name__,
        expected_name="the seed's value",
        formula=label,
        dtype=np.dtype(np.float64),
        reduction_length=4,
        context=f" ({formula})",
    )
    example = formula.split(" ", 2)[2] if formula.count(" ") >= 2 else "worked example"
    report.record_example(label, "seed's numbers", frozenset({example}), frozenset())


# ------------------------------------------------------------------------ seed 000

#: seed 000, "Backpropagation in Deep Neural Networks": two observations
#: (market share, earnings) = (20, 2) and (15, 2), weights (0.2, 0.5), target 6.
SEED_000_X = np.array([[20.0, 2.0], [15.0, 2.0]])
SEED_000_W = np.array([[0.2, 0.5]])
SEED_000_TARGET = np.array([[6.0], [6.0]])


def test_seed_000_forward_and_losses(namespace: ModuleType) -> None:
    """z = 0.2·20 + 0.5·2 = 5 and 0.2·15 + 0.5·2 = 4; identity activation; losses 1 and 2."""
    z = namespace.linear(SEED_000_X, SEED_000_W)
    _same(z, [[5.0], [4.0]], "z", "seed 000 forward", namespace)
    # The seed's loss is the difference 6 − ŷ; both predictions are below the
    # target, so it equals the L1 loss |ŷ − 6|.
    losses = namespace.l1_loss(z, SEED_000_TARGET, reduction="none")
    _same(losses, [[1.0], [2.0]], "per-observation loss", "seed 000 forward", namespace)
    mean = namespace.l1_loss(z, SEED_000_TARGET, reduction="mean")
    _same(mean, 1.5, "average loss", "seed 000 forward", namespace)


@pytest.mark.parametrize("lr", [0.001, 0.01, 0.5])
def test_seed_000_gradient_step(namespace: ModuleType, lr: float) -> None:
    """The update w ← w − α · (∂l1/∂w + ∂l2/∂w) / 2 of seed 000.

    With l = 6 − ŷ and ŷ = w1 x1 + w2 x2, ∂l/∂wi = −xi for each observation, so
    the mean gradient is (−(20 + 15)/2, −(2 + 2)/2) = (−17.5, −2), and the new
    weights are (0.2 + 17.5 α, 0.5 + 2 α). Seed 000 leaves the learning rate
    symbolic (only "between 0 and 1"), so the step is checked for several α.

    "Between 0 and 1" is not enough for the loss to fall: each prediction moves
    by α (17.5 x1 + 2 x2) = 354 α and 266.5 α, so α = 0.001 lowers the mean loss
    (to 1.19) but α = 0.01 already overshoots the target (1.6025 > 1.5).
    """
    z = namespace.linear(SEED_000_X, SEED_000_W)
    one = np.ones(())
    dz = namespace.l1_loss_backward(one, z, SEED_000_TARGET, reduction="mean")
    _same(dz, [[-0.5], [-0.5]], "∂L/∂z", "seed 000 gradient", namespace)
    _, dw, db = namespace.linear_backward(dz, SEED_000_X, SEED_000_W)
    assert db is None
    _same(dw, [[-17.5, -2.0]], "mean ∂L/∂w", "seed 000 gradient", namespace)
    new_w, buffer = namespace.sgd_step(SEED_000_W, dw, lr)
    assert buffer is None
    _same(
        new_w,
        [[0.2 + 17.5 * lr, 0.5 + 2.0 * lr]],
        f"w after one step, α={lr}",
        "seed 000 step",
        namespace,
    )
    after = float(namespace.l1_loss(namespace.linear(SEED_000_X, new_w), SEED_000_TARGET))
    assert (after < 1.5) == (lr < 0.002), after


# ------------------------------------------------------------------------ seed 003


def test_seed_003_relu_derivative(namespace: ModuleType) -> None:
    """ReLU'(z) = 1 if z > 0, 0 if z ≤ 0 (the indicator 1[z > 0]), z = 0 included."""
    z = np.array([-3.0, -0.5, 0.0, 0.25, 7.0])
    upstream = np.array([2.0, 3.0, 5.0, 7.0, 11.0])
    _same(namespace.relu(z), [0.0, 0.0, 0.0, 0.25, 7.0], "relu", "seed 003 ReLU", namespace)
    grad = namespace.relu_backward(upstream, z)
    _same(grad, [0.0, 0.0, 0.0, 7.0, 11.0], "upstream ⊙ 1[z > 0]", "seed 003 ReLU", namespace)


def test_seed_003_sigmoid_derivative(namespace: ModuleType) -> None:
    """σ'(z) = σ(z)(1 − σ(z)) = a(1 − a): at z = 0, 1/4; at z = ±ln 3, a = 3/4 or 1/4 and 3/16."""
    z = np.array([0.0, np.log(3.0), -np.log(3.0)])
    a = namespace.sigmoid(z)
    _same(a, [0.5, 0.75, 0.25], "a = σ(z)", "seed 003 sigmoid", namespace)
    grad = namespace.sigmoid_backward(np.ones(3), z)
    _same(grad, [0.25, 0.1875, 0.1875], "a(1 − a)", "seed 003 sigmoid", namespace)


def test_seed_003_bce_derivative(namespace: ModuleType) -> None:
    """∂L/∂ŷ = −y/ŷ + (1 − y)/(1 − ŷ) = (ŷ − y) / (ŷ(1 − ŷ)), one example at a time."""
    y_hat = np.array([0.75, 0.25, 0.5, 0.75])
    y = np.array([1.0, 0.0, 1.0, 0.0])
    expected = -y / y_hat + (1 - y) / (1 - y_hat)
    _same(expected, [-4 / 3, 4 / 3, -2.0, 4.0], "−y/ŷ + (1 − y)/(1 − ŷ)", "seed 003 BCE", namespace)
    grad = namespace.binary_cross_entropy_backward(np.ones(4), y_hat, y, reduction="none")
    _same(grad, expected, "∂L/∂ŷ", "seed 003 BCE", namespace)
    loss = namespace.binary_cross_entropy(y_hat, y, reduction="none")
    _same(loss, -np.log([0.75, 0.75, 0.5, 0.25]), "L", "seed 003 BCE", namespace)


def test_seed_003_cancellation_and_single_neuron(namespace: ModuleType) -> None:
    """δ = ∂L/∂ŷ · σ'(z) = ŷ − y, and for one neuron ∂L/∂w = (a − y) x.

    z = w x + b with x = 2, w = ln 3 / 2, b = 0 gives a = σ(ln 3) = 3/4; with
    y = 1, δ = −1/4 and ∂L/∂w = −1/2, ∂L/∂b = −1/4.
    """
    x = np.array([[2.0]])
    w = np.array([[np.log(3.0) / 2]])
    b = np.zeros(1)
    y = np.array([[1.0]])
    z = namespace.linear(x, w, b)
    a = namespace.sigmoid(z)
    one = np.ones(())
    dl_da = namespace.binary_cross_entropy_backward(one, a, y, reduction="sum")
    delta = namespace.sigmoid_backward(dl_da, z)
    _same(delta, [[-0.25]], "δ = ŷ − y (chained)", "seed 003 cancellation", namespace)
    logits = namespace.binary_cross_entropy_with_logits_backward(one, z, y, reduction="sum")
    _same(logits, [[-0.25]], "δ = ŷ − y (on logits)", "seed 003 cancellation", namespace)
    _, dw, db = namespace.linear_backward(delta, x, w, b)
    _same(dw, [[-0.5]], "∂L/∂w = (a − y) x", "seed 003 single neuron", namespace)
    _same(db, [-0.25], "∂L/∂b = a − y", "seed 003 single neuron", namespace)


def test_seed_003_two_layer_network_by_hand(namespace: ModuleType) -> None:
    """Seed 003's two-layer recursion on numbers small enough to follow by hand.

    x = (1, 2); W1 = [[1, 0], [0, −1], [1, 1]], b1 = 0 → z1 = (1, −2, 3), a1 = (1, 0, 3).
    W2 = [[2, 5, −1]], b2 = 1 + ln 3 → z2 = 2 − 3 + 1 + ln 3 = ln 3, ŷ = 3/4.
    y = 0 → δ2 = ŷ − y = 3/4; ∂L/∂W2 = δ2 a1ᵀ = (3/4, 0, 9/4); ∂L/∂b2 = 3/4.
    W2ᵀδ2 = (3/2, 15/4, −3/4); ⊙ 1[z1 > 0] = (1, 0, 1) → δ1 = (3/2, 0, −3/4):
    the dead unit (z1 = −2) blocks the largest component.
    ∂L/∂W1 = δ1 xᵀ = [[3/2, 3], [0, 0], [−3/4, −3/2]]; ∂L/∂b1 = δ1.
    """
    x = np.array([[1.0, 2.0]])
    w1 = np.array([[1.0, 0.0], [0.0, -1.0], [1.0, 1.0]])
    b1 = np.zeros(3)
    w2 = np.array([[2.0, 5.0, -1.0]])
    b2 = np.array([1.0 + np.log(3.0)])
    y = np.array([[0.0]])
    label = "seed 003 two layers"
    z1 = namespace.linear(x, w1, b1)
    _same(z1, [[1.0, -2.0, 3.0]], "z1", label, namespace)
    a1 = namespace.relu(z1)
    z2 = namespace.linear(a1, w2, b2)
    y_hat = namespace.sigmoid(z2)
    _same(y_hat, [[0.75]], "ŷ", label, namespace)
    one = np.ones(())
    delta2 = namespace.sigmoid_backward(namespace.binary_cross_entropy_backward(one, y_hat, y), z2)
    _same(delta2, [[0.75]], "δ2 = ŷ − y", label, namespace)
    da1, dw2, db2 = namespace.linear_backward(delta2, a1, w2, b2)
    _same(da1, [[1.5, 3.75, -0.75]], "W2ᵀδ2", label, namespace)
    _same(dw2, [[0.75, 0.0, 2.25]], "∂L/∂W2 = δ2 a1ᵀ", label, namespace)
    _same(db2, [0.75], "∂L/∂b2 = δ2", label, namespace)
    delta1 = namespace.relu_backward(da1, z1)
    _same(delta1, [[1.5, 0.0, -0.75]], "δ1 = W2ᵀδ2 ⊙ 1[z1 > 0]", label, namespace)
    _, dw1, db1 = namespace.linear_backward(delta1, x, w1, b1)
    _same(dw1, [[1.5, 3.0], [0.0, 0.0], [-0.75, -1.5]], "∂L/∂W1 = δ1 xᵀ", label, namespace)
    _same(db1, [1.5, 0.0, -0.75], "∂L/∂b1 = δ1", label, namespace)
