"""Problems drawn at random from a seeded generator (``python -m benchmarks --random N``).

The fixed problem list of :mod:`benchmarks.cases` is the one the code was
measured and tuned on; these are not. Problem ``k`` of a run belongs to family
``FAMILY_CYCLE[k % len(FAMILY_CYCLE)]`` (conv2d gets half of them), and its
shape is drawn from ``numpy.random.default_rng(seed)``, problem after problem,
so a seed names the same list on every machine, whatever ``--family`` and
``--dtype`` select.

Each problem first draws its size, as the work of one forward pass,
log-uniformly between a floor (below which a problem only measures per-call
overhead) and a ceiling (so that a run stays within a few minutes):
:data:`MACS` multiply-adds for conv2d and linear, :data:`ELEMENTS` input
elements for pooling and the element-wise families. The other parameters are
drawn on their own (on logarithmic scales for counts), and the spatial size
(the batch for linear, the rows for element-wise) is then set so that the
problem does that much work, within its range:

* conv2d: batch 1–64, input channels 3–256 and output channels 4–256,
  kernels 1–7 (one in five rectangular), stride 1–3, dilation 1–3, padding up
  to half the dilated kernel, groups 1 (60 %), 2, 4 or 8 with 1–64 channels
  per group (25 %) or depthwise with a channel multiplier of 1 or 2 (15 %);
  height and width 2–128 (the width differs from the height one time in three);
* max_pool2d and avg_pool2d: batch 1–64, channels 1–256, kernels 2–5, stride
  1, 2 or the kernel, padding up to half the kernel, dilation 1–2 (max pooling
  only), ``ceil_mode`` one time in five; height and width up to 128;
* linear: 16–2048 input and output features, batch 1–4096;
* activations and losses: one function of the family on a 2-d array of 2–4096
  columns.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from benchmarks.cases import (
    ACTIVATIONS,
    LOSSES,
    Problem,
    activation_problem,
    conv_problem,
    linear_problem,
    loss_problem,
    pool_problem,
)
from reference_impl.window import output_size

FAMILY_CYCLE = (
    "conv2d",
    "max_pool2d",
    "conv2d",
    "avg_pool2d",
    "conv2d",
    "linear",
    "conv2d",
    "activations",
    "conv2d",
    "losses",
)
#: range of the multiply-adds of one forward pass (conv2d, linear)
MACS = (10**6, 15 * 10**7)
#: range of the input elements (pooling, activations, losses)
ELEMENTS = (2**15, 2**21)
#: largest height or width of a conv2d or pooling input
MAX_SIZE = 128


@dataclass(frozen=True)
class RandomProblem:
    """Problem ``index`` of a seeded list: its family and a builder taking the dtype."""

    index: int
    family: str
    build: Callable[[str], Problem]


def _log_int(rng: np.random.Generator, low: int, high: int) -> int:
    """An integer in ``[low, high]``, uniform on a logarithmic scale."""
    return min(high, max(low, round(2 ** rng.uniform(math.log2(low), math.log2(high)))))


def _choice(rng: np.random.Generator, options: tuple[int, ...]) -> int:
    return options[int(rng.integers(len(options)))]


def _fit(low: int, high: int, grows: Callable[[int], int], budget: float) -> int:
    """The largest ``v`` in ``[low, high]`` with ``grows(v) ≤ budget`` (``low`` if none)."""
    value = low
    while value < high and grows(value + 1) <= budget:
        value += 1
    return value


def _conv(rng: np.random.Generator, index: int) -> RandomProblem:
    budget = 2 ** rng.uniform(math.log2(MACS[0]), math.log2(MACS[1]))
    n = _log_int(rng, 1, 64)
    kind = rng.uniform()
    if kind < 0.6:
        groups = 1
        c_in, c_out = _log_int(rng, 3, 256), _log_int(rng, 4, 256)
    elif kind < 0.85:
        groups = _choice(rng, (2, 4, 8))
        c_in = groups * _log_int(rng, 1, 64)
        c_out = groups * _log_int(rng, 1, 64)
    else:
        c_in = _log_int(rng, 4, 256)
        groups, c_out = c_in, c_in * _choice(rng, (1, 2))
    kh = _choice(rng, (1, 2, 3, 3, 3, 5, 7))
    kw = kh if rng.uniform() < 0.8 else _choice(rng, (1, 3, 5))
    s = _choice(rng, (1, 1, 1, 2, 2, 3))
    d = _choice(rng, (1, 1, 1, 1, 1, 1, 2, 2, 3))
    ph = int(rng.integers(d * (kh - 1) // 2 + 1))
    pw = int(rng.integers(d * (kw - 1) // 2 + 1))
    aspect = 2 ** rng.uniform(-1, 1) if rng.uniform() < 1 / 3 else 1.0
    # the smallest input that still has one output: the dilated kernel minus the padding
    low_h, low_w = max(2, d * (kh - 1) + 1 - 2 * ph), max(2, d * (kw - 1) + 1 - 2 * pw)

    def width(h: int) -> int:
        return min(MAX_SIZE, max(low_w, round(h * aspect)))

    def macs(h: int) -> int:
        h_out = output_size(h, kh, s, ph, ph, d)
        w_out = output_size(width(h), kw, s, pw, pw, d)
        return n * h_out * w_out * c_out * (c_in // groups) * kh * kw

    while n > 1 and macs(low_h) > budget:
        n //= 2
    h = _fit(low_h, MAX_SIZE, macs, budget)
    w = width(h)
    return RandomProblem(
        index,
        "conv2d",
        lambda dtype: conv_problem(
            n,
            c_in,
            (h, w),
            c_out,
            (kh, kw),
            (s, s),
            (ph, pw),
            (d, d),
            groups,
            dtype,
            prefix=f"#{index} ",
        ),
    )


def _pool(family: str) -> Callable[[np.random.Generator, int], RandomProblem]:
    def draw(rng: np.random.Generator, index: int) -> RandomProblem:
        budget = 2 ** rng.uniform(math.log2(ELEMENTS[0]), math.log2(ELEMENTS[1]))
        n, c = _log_int(rng, 1, 64), _log_int(rng, 1, 256)
        k = _choice(rng, (2, 3, 3, 5))
        stride = _choice(rng, (1, 2, k))
        padding = int(rng.integers(k // 2 + 1))
        dilation = _choice(rng, (1, 1, 1, 2)) if family == "max_pool2d" else 1
        ceil_mode = bool(rng.uniform() < 0.2)
        aspect = 2 ** rng.uniform(-1, 1) if rng.uniform() < 1 / 3 else 1.0
        low = max(2, dilation * (k - 1) + 1)

        def width(h: int) -> int:
            return min(MAX_SIZE, max(low, round(h * aspect)))

        while n * c * low * width(low) > budget and n * c > 1:
            n, c = (n // 2, c) if n > 1 else (n, c // 2)
        h = _fit(low, MAX_SIZE, lambda v: n * c * v * width(v), budget)
        w = width(h)
        return RandomProblem(
            index,
            family,
            lambda dtype: pool_problem(
                family,
                n,
                c,
                (h, w),
                k,
                stride,
                padding,
                dtype,
                dilation,
                ceil_mode,
                prefix=f"#{index} ",
            ),
        )

    return draw


def _linear(rng: np.random.Generator, index: int) -> RandomProblem:
    budget = 2 ** rng.uniform(math.log2(MACS[0]), math.log2(MACS[1]))
    fan_in, fan_out = _log_int(rng, 16, 2048), _log_int(rng, 16, 2048)
    n = min(4096, max(1, round(budget / (fan_in * fan_out))))
    return RandomProblem(
        index, "linear", lambda dtype: linear_problem(n, fan_in, fan_out, dtype, f"#{index} ")
    )


def _elementwise(family: str) -> Callable[[np.random.Generator, int], RandomProblem]:
    names = ACTIVATIONS if family == "activations" else LOSSES
    build = activation_problem if family == "activations" else loss_problem

    def draw(rng: np.random.Generator, index: int) -> RandomProblem:
        budget = 2 ** rng.uniform(math.log2(ELEMENTS[0]), math.log2(ELEMENTS[1]))
        function = names[int(rng.integers(len(names)))]
        cols = _log_int(rng, 2, 4096)
        rows = max(1, round(budget / cols))
        return RandomProblem(
            index, family, lambda dtype: build(function, dtype, (rows, cols), f"#{index} ")
        )

    return draw


_DRAW: dict[str, Callable[[np.random.Generator, int], RandomProblem]] = {
    "conv2d": _conv,
    "max_pool2d": _pool("max_pool2d"),
    "avg_pool2d": _pool("avg_pool2d"),
    "linear": _linear,
    "activations": _elementwise("activations"),
    "losses": _elementwise("losses"),
}


def random_problems(count: int, seed: int) -> list[RandomProblem]:
    """The first ``count`` problems of the list named by ``seed``."""
    rng = np.random.default_rng(seed)
    return [_DRAW[FAMILY_CYCLE[index % len(FAMILY_CYCLE)]](rng, index) for index in range(count)]
