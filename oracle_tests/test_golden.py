"""Golden tests: the worked examples of the published derivations, in both namespaces.

Where a document gives numbers, the references must reproduce them exactly (the
values are exact in binary, or within one rounding). Where it gives formulas
only, the inputs are chosen so that every term can be told apart. The documents
and the short names used below are listed in docs/derivations.md ("Sources").
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

from reference_impl.testing import report
from reference_impl.testing.comparison import assert_close


def _same(actual: Any, expected: Any, quantity: str, formula: str, namespace: ModuleType) -> None:
    """``actual`` equals the document's number within one float64 rounding or a few.

    ``formula`` reads ``"<source>: <example>"``; the report groups by source.
    """
    source, _, example = formula.partition(": ")
    label = f"golden: {source}"
    assert_close(
        actual,
        np.asarray(expected, dtype=np.float64),
        quantity=quantity,
        actual_name=namespace.__name__,
        expected_name="the published value",
        formula=label,
        dtype=np.dtype(np.float64),
        reduction_length=4,
        context=f" ({formula})",
    )
    report.record_example(
        label, "published numbers", frozenset({example or "worked example"}), frozenset()
    )


# ----------------------------------------------------------------- Benaicha (2023)

#: Benaicha (2023), "Backpropagation in Deep Neural Networks": two observations
#: (market share, earnings) = (20, 2) and (15, 2), weights (0.2, 0.5), target 6.
BENAICHA_X = np.array([[20.0, 2.0], [15.0, 2.0]])
BENAICHA_W = np.array([[0.2, 0.5]])
BENAICHA_TARGET = np.array([[6.0], [6.0]])


def test_benaicha_forward_and_losses(namespace: ModuleType) -> None:
    """z = 0.2·20 + 0.5·2 = 5 and 0.2·15 + 0.5·2 = 4; identity activation; losses 1 and 2."""
    z = namespace.linear(BENAICHA_X, BENAICHA_W)
    _same(z, [[5.0], [4.0]], "z", "Benaicha (2023): forward", namespace)
    # Benaicha's loss is the difference 6 − ŷ; both predictions are below the
    # target, so it equals the L1 loss |ŷ − 6|.
    losses = namespace.l1_loss(z, BENAICHA_TARGET, reduction="none")
    _same(losses, [[1.0], [2.0]], "per-observation loss", "Benaicha (2023): forward", namespace)
    mean = namespace.l1_loss(z, BENAICHA_TARGET, reduction="mean")
    _same(mean, 1.5, "average loss", "Benaicha (2023): forward", namespace)


@pytest.mark.parametrize("lr", [0.001, 0.01, 0.5])
def test_benaicha_gradient_step(namespace: ModuleType, lr: float) -> None:
    """Benaicha's update w ← w − α · (∂l1/∂w + ∂l2/∂w) / 2.

    With l = 6 − ŷ and ŷ = w1 x1 + w2 x2, ∂l/∂wi = −xi for each observation, so
    the mean gradient is (−(20 + 15)/2, −(2 + 2)/2) = (−17.5, −2), and the new
    weights are (0.2 + 17.5 α, 0.5 + 2 α). Benaicha leaves the learning rate
    symbolic (only "between 0 and 1"), so the step is checked for several α.

    "Between 0 and 1" is not enough for the loss to fall: each prediction moves
    by α (17.5 x1 + 2 x2) = 354 α and 266.5 α, so α = 0.001 lowers the mean loss
    (to 1.19) but α = 0.01 already overshoots the target (1.6025 > 1.5).
    """
    z = namespace.linear(BENAICHA_X, BENAICHA_W)
    one = np.ones(())
    dz = namespace.l1_loss_backward(one, z, BENAICHA_TARGET, reduction="mean")
    _same(dz, [[-0.5], [-0.5]], "∂L/∂z", "Benaicha (2023): gradient", namespace)
    _, dw, db = namespace.linear_backward(dz, BENAICHA_X, BENAICHA_W)
    assert db is None
    _same(dw, [[-17.5, -2.0]], "mean ∂L/∂w", "Benaicha (2023): gradient", namespace)
    new_w, buffer = namespace.sgd_step(BENAICHA_W, dw, lr)
    assert buffer is None
    _same(
        new_w,
        [[0.2 + 17.5 * lr, 0.5 + 2.0 * lr]],
        f"w after one step, α={lr}",
        "Benaicha (2023): step",
        namespace,
    )
    after = float(namespace.l1_loss(namespace.linear(BENAICHA_X, new_w), BENAICHA_TARGET))
    assert (after < 1.5) == (lr < 0.002), after


# -------------------------------------------------------------------- chanchishing
#
# chanchishing, "04 Forward and Back Propagation" (Introduction-to-Deep-Learning
# GitHub wiki): the single neuron and the two-layer network with ReLU, sigmoid, BCE.


def test_chanchishing_relu_derivative(namespace: ModuleType) -> None:
    """ReLU'(z) = 1 if z > 0, 0 if z ≤ 0 (the indicator 1[z > 0]), z = 0 included."""
    z = np.array([-3.0, -0.5, 0.0, 0.25, 7.0])
    upstream = np.array([2.0, 3.0, 5.0, 7.0, 11.0])
    _same(namespace.relu(z), [0.0, 0.0, 0.0, 0.25, 7.0], "relu", "chanchishing: ReLU", namespace)
    grad = namespace.relu_backward(upstream, z)
    _same(grad, [0.0, 0.0, 0.0, 7.0, 11.0], "upstream ⊙ 1[z > 0]", "chanchishing: ReLU", namespace)


def test_chanchishing_sigmoid_derivative(namespace: ModuleType) -> None:
    """σ'(z) = σ(z)(1 − σ(z)) = a(1 − a): at z = 0, 1/4; at z = ±ln 3, a = 3/4 or 1/4 and 3/16."""
    z = np.array([0.0, np.log(3.0), -np.log(3.0)])
    a = namespace.sigmoid(z)
    _same(a, [0.5, 0.75, 0.25], "a = σ(z)", "chanchishing: sigmoid", namespace)
    grad = namespace.sigmoid_backward(np.ones(3), z)
    _same(grad, [0.25, 0.1875, 0.1875], "a(1 − a)", "chanchishing: sigmoid", namespace)


def test_chanchishing_bce_derivative(namespace: ModuleType) -> None:
    """∂L/∂ŷ = −y/ŷ + (1 − y)/(1 − ŷ) = (ŷ − y) / (ŷ(1 − ŷ)), one example at a time."""
    y_hat = np.array([0.75, 0.25, 0.5, 0.75])
    y = np.array([1.0, 0.0, 1.0, 0.0])
    expected = -y / y_hat + (1 - y) / (1 - y_hat)
    _same(
        expected,
        [-4 / 3, 4 / 3, -2.0, 4.0],
        "−y/ŷ + (1 − y)/(1 − ŷ)",
        "chanchishing: BCE",
        namespace,
    )
    grad = namespace.binary_cross_entropy_backward(np.ones(4), y_hat, y, reduction="none")
    _same(grad, expected, "∂L/∂ŷ", "chanchishing: BCE", namespace)
    loss = namespace.binary_cross_entropy(y_hat, y, reduction="none")
    _same(loss, -np.log([0.75, 0.75, 0.5, 0.25]), "L", "chanchishing: BCE", namespace)


def test_chanchishing_cancellation_and_single_neuron(namespace: ModuleType) -> None:
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
    _same(delta, [[-0.25]], "δ = ŷ − y (chained)", "chanchishing: cancellation", namespace)
    logits = namespace.binary_cross_entropy_with_logits_backward(one, z, y, reduction="sum")
    _same(logits, [[-0.25]], "δ = ŷ − y (on logits)", "chanchishing: cancellation", namespace)
    _, dw, db = namespace.linear_backward(delta, x, w, b)
    _same(dw, [[-0.5]], "∂L/∂w = (a − y) x", "chanchishing: single neuron", namespace)
    _same(db, [-0.25], "∂L/∂b = a − y", "chanchishing: single neuron", namespace)


def test_chanchishing_two_layer_network_by_hand(namespace: ModuleType) -> None:
    """The wiki's two-layer recursion on numbers small enough to follow by hand.

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
    label = "chanchishing: two layers"
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


# --------------------------------------------------------- unsigned post, Saraswat
#
# A 3×3 input X, a 2×2 kernel K, stride 1, no padding: Z = X ⋆ K is 2×2 and
#
#     Z_ij = Σ_mn X_(i+m−1)(j+n−1) K_mn + B          (i, j, m, n ∈ {1, 2})
#
# The unsigned post "Backward propagation in Convolutional Neural Networks (CNNs):
# Intuition, Math, and a Simple Example" and Saraswat's "Backward Pass of CNN"
# list the input and kernel gradients element by element, 1-based.
# An equation is a list of (upstream index, kernel or input index) pairs, each
# pair one term ``dZ_ab · K_mn`` (or ``dZ_ab · X_kl``).

Equation = list[tuple[str, str]]

#: the unsigned post, ∂L/∂x_ij with dy for the upstream gradient and f for the kernel
UNSIGNED_POST_GRAD_INPUT: dict[str, Equation] = {
    "11": [("11", "11")],  # dy11·f11
    "12": [("11", "12"), ("12", "11")],  # dy11·f12 + dy12·f11
    "13": [("12", "12")],  # dy12·f12
    "21": [("11", "21"), ("21", "11")],  # dy11·f21 + dy21·f11
    "22": [("11", "22"), ("12", "21"), ("21", "12"), ("22", "11")],
    "23": [("12", "22"), ("22", "12")],  # dy12·f22 + dy22·f12
    "31": [("21", "21")],  # dy21·f21
    "32": [("21", "22"), ("22", "21")],  # dy21·f22 + dy22·f21
    "33": [("22", "22")],  # dy22·f22
}

#: Saraswat, ∂L/∂X_ij with dZ and K, as printed; two equations are wrong (erratum 4)
SARASWAT_GRAD_INPUT_AS_PRINTED: dict[str, Equation] = {
    "11": [("11", "11")],
    "12": [("11", "12"), ("12", "11")],
    "13": [("12", "12")],
    "21": [("11", "21"), ("21", "11")],
    "22": [("11", "22"), ("12", "21"), ("21", "12"), ("22", "11")],
    "23": [("12", "22"), ("22", "11")],  # printed K11; K12 belongs there
    "31": [("21", "21")],
    "32": [("21", "22"), ("22", "21")],
    "33": [("21", "22")],  # printed dZ21; dZ22 belongs there
}

#: Saraswat's list with the two errors of docs/derivations.md, erratum 4, corrected
SARASWAT_GRAD_INPUT: dict[str, Equation] = {
    **SARASWAT_GRAD_INPUT_AS_PRINTED,
    "23": [("12", "22"), ("22", "12")],  # ∂L/∂X23 = dZ12·K22 + dZ22·K12
    "33": [("22", "22")],  # ∂L/∂X33 = dZ22·K22
}

#: Saraswat, ∂L/∂K_mn = Σ_ij dZ_ij · X_(i+m−1)(j+n−1)
SARASWAT_GRAD_KERNEL: dict[str, Equation] = {
    "11": [("11", "11"), ("12", "12"), ("21", "21"), ("22", "22")],
    "12": [("11", "12"), ("12", "13"), ("21", "22"), ("22", "23")],
    "21": [("11", "21"), ("12", "22"), ("21", "31"), ("22", "32")],
    "22": [("11", "22"), ("12", "23"), ("21", "32"), ("22", "33")],
}

#: Saraswat, the forward: Z_ij = Σ X·K + B
SARASWAT_FORWARD: dict[str, Equation] = {
    "11": [("11", "11"), ("12", "12"), ("21", "21"), ("22", "22")],
    "12": [("12", "11"), ("13", "12"), ("22", "21"), ("23", "22")],
    "21": [("21", "11"), ("22", "12"), ("31", "21"), ("32", "22")],
    "22": [("22", "11"), ("23", "12"), ("32", "21"), ("33", "22")],
}

_POSITIONS_2 = ["11", "12", "21", "22"]
_POSITIONS_3 = [f"{i}{j}" for i in (1, 2, 3) for j in (1, 2, 3)]


def _at(array: np.ndarray[Any, Any], index: str) -> float:
    return float(array[int(index[0]) - 1, int(index[1]) - 1])


def _evaluate(equation: Equation, left: np.ndarray[Any, Any], right: np.ndarray[Any, Any]) -> float:
    return sum(_at(left, a) * _at(right, b) for a, b in equation)


def _grid(positions: list[str], values: list[float], side: int) -> np.ndarray[Any, Any]:
    array = np.zeros((side, side))
    for position, value in zip(positions, values, strict=True):
        array[int(position[0]) - 1, int(position[1]) - 1] = value
    return array


# Identifiable terms for ∂L/∂X: K_mn = 10^k(mn) and dZ_ab = 10^(4·k(ab)), k = 0..3 in
# the order 11, 12, 21, 22. Each product dZ_ab·K_mn is a distinct power of ten
# (≤ 10^15, exact in float64), so the decimal digits of a gradient name its terms.
POWER_K = _grid(_POSITIONS_2, [10.0**k for k in range(4)], 2)
POWER_DZ = _grid(_POSITIONS_2, [10.0 ** (4 * k) for k in range(4)], 2)
# For ∂L/∂K: X holds distinct primes and dZ_ab = 1000^k(ab): each term lands in its
# own three-digit block, and the prime in the block names the input element.
PRIME_X = _grid(_POSITIONS_3, [2.0, 3.0, 5.0, 7.0, 11.0, 13.0, 17.0, 19.0, 23.0], 3)
BLOCK_DZ = _grid(_POSITIONS_2, [1000.0**k for k in range(4)], 2)


def _input_terms(value: float) -> str:
    """Decode a ∂L/∂X value built from POWER_DZ and POWER_K into its terms."""
    terms = []
    for exponent, digit in enumerate(reversed(str(round(value)))):
        if digit != "0":
            dz, k = _POSITIONS_2[exponent // 4], _POSITIONS_2[exponent % 4]
            terms.append(f"{digit}·dZ{dz}·K{k}")
    return " + ".join(terms) or "0"


def _as_conv(*arrays: np.ndarray[Any, Any]) -> list[np.ndarray[Any, Any]]:
    return [a.reshape(1, 1, *a.shape) for a in arrays]


@pytest.mark.parametrize(
    ("source", "equations"),
    [("unsigned post", UNSIGNED_POST_GRAD_INPUT), ("Saraswat", SARASWAT_GRAD_INPUT)],
)
def test_published_input_gradient_equations(
    namespace: ModuleType, source: str, equations: dict[str, Equation]
) -> None:
    """Each listed ∂L/∂X_ij = Σ dZ_ab · K_mn equals conv2d_backward's, term for term."""
    x, k, dz = _as_conv(PRIME_X, POWER_K, POWER_DZ)
    grad_x = namespace.conv2d_backward(dz, x, k)[0][0, 0]
    for position, equation in equations.items():
        expected = _evaluate(equation, POWER_DZ, POWER_K)
        actual = _at(grad_x, position)
        written = " + ".join(f"dZ{a}·K{b}" for a, b in equation)
        assert_close(
            actual,
            expected,
            quantity=f"∂L/∂X{position}",
            actual_name=namespace.__name__,
            expected_name=f"{source}'s equation",
            formula=f"golden: {source}",
            dtype=np.dtype(np.float64),
            reduction_length=4,
            context=(
                f"\n  {source}: ∂L/∂X{position} = {written}"
                f"\n  conv2d_backward's value has the terms {_input_terms(actual)}"
            ),
        )
    report.record_example(
        f"golden: {source}",
        "published numbers",
        frozenset({"3×3 input, 2×2 kernel: ∂L/∂X"}),
        frozenset(),
    )


def test_saraswat_printed_input_gradient_has_two_wrong_terms(namespace: ModuleType) -> None:
    """Erratum 4: as printed, Saraswat's ∂L/∂X23 and ∂L/∂X33 name the wrong terms."""
    x, k, dz = _as_conv(PRIME_X, POWER_K, POWER_DZ)
    grad_x = namespace.conv2d_backward(dz, x, k)[0][0, 0]
    wrong = {
        position
        for position, equation in SARASWAT_GRAD_INPUT_AS_PRINTED.items()
        if _evaluate(equation, POWER_DZ, POWER_K) != _at(grad_x, position)
    }
    assert wrong == {"23", "33"}
    assert _input_terms(_at(grad_x, "23")) == "1·dZ12·K22 + 1·dZ22·K12"
    assert _input_terms(_at(grad_x, "33")) == "1·dZ22·K22"


def test_saraswat_kernel_gradient_and_forward_equations(namespace: ModuleType) -> None:
    """Saraswat's four ∂L/∂K_mn, its four Z_ij and ∂L/∂B = Σ dZ, with identifiable terms."""
    bias = np.array([0.5])
    x, k, dz = _as_conv(PRIME_X, POWER_K, BLOCK_DZ)
    z = namespace.conv2d(x, k, bias)[0, 0]
    _, grad_k, grad_b = namespace.conv2d_backward(dz, x, k, bias)
    for position, equation in SARASWAT_FORWARD.items():
        expected = _evaluate(equation, PRIME_X, POWER_K) + 0.5
        _same(_at(z, position), expected, f"Z{position}", "Saraswat: forward", namespace)
    for position, equation in SARASWAT_GRAD_KERNEL.items():
        expected = _evaluate(equation, BLOCK_DZ, PRIME_X)
        _same(
            _at(grad_k[0, 0], position), expected, f"∂L/∂K{position}", "Saraswat: ∂L/∂K", namespace
        )
    _same(grad_b, [BLOCK_DZ.sum()], "∂L/∂B = Σ dZ", "Saraswat: ∂L/∂B", namespace)
    # ∂L/∂K11 = dZ11·X11 + dZ12·X12 + dZ21·X21 + dZ22·X22, one prime per block:
    assert _at(grad_k[0, 0], "11") == 11_007_003_002  # X22 = 11, X21 = 7, X12 = 3, X11 = 2
