"""The measurements: interleaved timings, the machine's GEMM limit, the NumPy peer, the report.

Imported by :mod:`benchmarks.cli` only after the BLAS thread variables are set.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np
import torch

import reference_impl.loops
import reference_impl.vectorized
from benchmarks import peer
from benchmarks.cases import TARGETS, Problem, builders, functions
from benchmarks.cli import FAMILIES
from benchmarks.limits import GEMM_SIZE, describe, gemm_rates, kernel_sets
from benchmarks.random_problems import random_problems

DTYPES = ("float32", "float64")
QUICK_REPS = 3
#: a repetition of a problem faster than this repeats it back to back (seconds)
MIN_REP_SECONDS = 0.02


@dataclass
class Row:
    family: str
    function: str
    shape: str
    dtype: str
    source: str  # "fixed" or "random"
    ours_ms: float
    torch_ms: float
    ratio: float
    ours_runs_ms: list[float]
    torch_runs_ms: list[float]
    #: time over the GEMM-bound time (conv2d and linear): ours at NumPy's rate, torch at torch's
    ours_gemm: float | None = None
    torch_gemm: float | None = None
    #: MyGrad's forward + backward (conv2d, max_pool2d), and ours / MyGrad
    peer_ms: float | None = None
    peer_ratio: float | None = None
    peer_runs_ms: list[float] | None = None
    peer_error: str | None = None
    #: linear: the three bare products (forward, both gradients), NumPy's time over
    #: torch's (the BLAS libraries alone), and ours over NumPy's bare products
    blas_ratio: float | None = None
    over_blas: float | None = None

    @property
    def problem(self) -> str:
        """The problem as printed: the function name first where a family has several."""
        return self.shape if self.function == self.family else f"{self.function} {self.shape}"


@dataclass
class Summary:
    family: str
    dtype: str
    source: str
    geomean: float
    target: float
    passed: bool
    problems: int


@dataclass
class LoopTiming:
    family: str
    function: str
    shape: str
    dtype: str
    seconds: float
    examples_run: int
    batch: int

    @property
    def estimated(self) -> bool:
        return self.examples_run < self.batch


@dataclass
class ConvMemory:
    shape: str
    dtype: str
    forward_peak_bytes: int
    backward_peak_bytes: int
    im2col_bytes: int

    @property
    def peak_bytes(self) -> int:
        return max(self.forward_peak_bytes, self.backward_peak_bytes)

    @property
    def ratio(self) -> float:
        return self.peak_bytes / self.im2col_bytes


def _available(family: str) -> bool:
    names = functions(family)
    needs_backward = family != "optimizers"  # a step has no backward pass
    return all(
        hasattr(reference_impl.vectorized, n)
        and (not needs_backward or hasattr(reference_impl.vectorized, n + "_backward"))
        for n in names
    )


#: the clock of the timings: "cpu" (this process's CPU time) or "wall"; set by ``run``
CLOCK: dict[str, Any] = {"name": "wall", "read": time.perf_counter}


def _time_once(step: Callable[[], None], number: int = 1) -> float:
    """Seconds per call of ``step`` on ``CLOCK``, averaged over ``number`` back-to-back calls."""
    read: Callable[[], float] = CLOCK["read"]
    start = read()
    for _ in range(number):
        step()
    return (read() - start) / number


def _calls_per_rep(seconds: float) -> int:
    """Back-to-back calls that make one repetition last at least ``MIN_REP_SECONDS``."""
    return max(1, math.ceil(MIN_REP_SECONDS / max(seconds, 1e-9)))


def _interleaved(steps: list[Callable[[], None]], reps: int) -> list[list[float]]:
    """Warm every step up, then alternate them (ours, torch, peer, ours...) ``reps`` times each.

    A repetition of a fast problem runs it several times back to back, so that
    the scheduler's time slices (other processes, a busy machine) average out.
    """
    for step in steps:
        step()
    numbers = [_calls_per_rep(_time_once(step)) for step in steps]
    runs: list[list[float]] = [[] for _ in steps]
    gc.collect()
    gc.disable()
    try:
        for _ in range(reps):
            for step, number, times in zip(steps, numbers, runs, strict=True):
                times.append(_time_once(step, number))
    finally:
        gc.enable()
    return runs


def _time_problem(
    problem: Problem, reps: int, source: str, rates: dict[str, dict[str, float]], with_peer: bool
) -> Row:
    steps = [problem.ours(reference_impl.vectorized), problem.torch()]
    peer_step = peer.step(problem) if with_peer else None
    peer_error = None
    if peer_step is not None:
        try:
            peer_step()
        except Exception as error:  # MyGrad rejects a few valid geometries
            peer_step, peer_error = None, f"{type(error).__name__}: {str(error).splitlines()[0]}"
        else:
            steps.append(peer_step)
    runs = _interleaved(steps, reps)
    ours_ms, torch_ms = (1e3 * statistics.median(r) for r in runs[:2])
    row = Row(
        problem.family,
        problem.function,
        problem.label,
        problem.dtype,
        source,
        ours_ms,
        torch_ms,
        ours_ms / torch_ms,
        [1e3 * t for t in runs[0]],
        [1e3 * t for t in runs[1]],
    )
    flops = problem.extra.get("gemm_flops")
    if flops:
        rate = rates[problem.dtype]
        row.ours_gemm = ours_ms / (1e3 * flops / (rate["numpy"] * 1e9))
        row.torch_gemm = torch_ms / (1e3 * flops / (rate["torch"] * 1e9))
    if problem.family == "linear":
        numpy_bare, torch_bare = _bare_products(problem, reps)
        row.blas_ratio = numpy_bare / torch_bare
        row.over_blas = ours_ms / numpy_bare
    row.peer_error = peer_error
    if peer_step is not None:
        row.peer_runs_ms = [1e3 * t for t in runs[2]]
        row.peer_ms = statistics.median(row.peer_runs_ms)
        row.peer_ratio = ours_ms / row.peer_ms
    return row


def _bare_products(problem: Problem, reps: int) -> tuple[float, float]:
    """Milliseconds of linear's three products alone, ``x Wᵀ``, ``δ W``, ``δᵀ x``: NumPy, torch.

    No bias, no validation, no autograd: what each side's BLAS takes for the
    problem's matrix products, so the report can split ours / torch into our
    overhead (ours / NumPy's products) and the libraries' gap (NumPy's / torch's).
    """
    x, weight, grad = problem.arrays["x"], problem.arrays["weight"], problem.grad
    assert isinstance(grad, np.ndarray), "linear has one output"
    tx, tw, tg = (torch.from_numpy(a) for a in (x, weight, grad))

    def numpy_products() -> None:
        np.matmul(x, weight.T), np.matmul(grad, weight), np.matmul(grad.T, x)

    def torch_products() -> None:
        torch.mm(tx, tw.T), torch.mm(tg, tw), torch.mm(tg.T, tx)

    runs = _interleaved([numpy_products, torch_products], reps)
    numpy_ms, torch_ms = (1e3 * statistics.median(r) for r in runs)
    return numpy_ms, torch_ms


def _time_loop(problem: Problem, budget: float) -> LoopTiming:
    """One loop forward + backward; over budget, a batch prefix scaled to the full batch."""
    batch = problem.batch
    examples = 1
    seconds = _time_once(problem.head(1).ours(reference_impl.loops))
    if batch > 1:
        # The loops are linear in the batch: size the run from the one-example time.
        fits = batch if seconds * batch <= budget else int(budget / max(seconds, 1e-9))
        if fits > 1:
            examples = min(batch, fits)
            seconds = _time_once(problem.head(examples).ours(reference_impl.loops))
    return LoopTiming(
        problem.family,
        problem.function,
        problem.label,
        problem.dtype,
        seconds * batch / examples,
        examples,
        batch,
    )


def _conv_memory(problem: Problem) -> ConvMemory:
    """Peak traced allocation of the vectorized forward, then of the backward.

    Each call is measured from its own start and includes the arrays it
    returns; the forward's output is released before the backward runs (the
    backward takes ``x``, not the output).
    """
    namespace: Any = reference_impl.vectorized  # conv2d may be missing on this branch
    args = list(problem.arrays.values())
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = namespace.conv2d(*args, **problem.options)
        forward_peak = tracemalloc.get_traced_memory()[1] - base
        del out
        gc.collect()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        grads = namespace.conv2d_backward(problem.grad, *args, **problem.options)
        backward_peak = tracemalloc.get_traced_memory()[1] - base
        del grads
    finally:
        tracemalloc.stop()
    return ConvMemory(
        problem.label,
        problem.dtype,
        forward_peak,
        backward_peak,
        int(problem.extra["im2col_bytes"]),
    )


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _print_row_header() -> None:
    print(
        f"{'family':<16} {'problem':<46} {'dtype':<8} {'ours ms':>9} {'torch ms':>9} "
        f"{'ratio':>6} {'ours÷G':>7} {'torch÷G':>7} {'MyGrad ms':>10} {'÷MyGrad':>7}"
    )
    print("-" * 135)


def _cell(value: float | None, width: int, digits: int = 2) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def _print_row(row: Row) -> None:
    print(
        f"{row.family:<16} {row.problem:<46} {row.dtype:<8} {row.ours_ms:>9.2f} "
        f"{row.torch_ms:>9.2f} {row.ratio:>6.2f} {_cell(row.ours_gemm, 7)} "
        f"{_cell(row.torch_gemm, 7)} {_cell(row.peer_ms, 10)} {_cell(row.peer_ratio, 7)}",
        flush=True,
    )


def _machine(threads: int) -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "threads": threads,
        "torch_threads": torch.get_num_threads(),
        "blas_env": {
            v: os.environ.get(v)
            for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        },
    }


def _problems(
    args: argparse.Namespace, families: list[str], dtypes: list[str]
) -> list[tuple[str, Callable[[], Problem]]]:
    """``(source, builder)`` of every problem to time: the fixed list, then the random one."""
    listed: list[tuple[str, Callable[[], Problem]]] = []
    for family in families:
        for dtype in dtypes:
            listed.extend(("fixed", build) for build in builders(family, dtype))
    for drawn in random_problems(args.random, args.seed):
        if drawn.family in families:
            for dtype in dtypes:
                listed.append(("random", partial(drawn.build, dtype)))
    return listed


def _summaries(rows: list[Row], families: list[str], dtypes: list[str]) -> list[Summary]:
    summaries: list[Summary] = []
    for source in ("fixed", "random"):
        for family in families:
            for dtype in dtypes:
                ratios = [
                    r.ratio
                    for r in rows
                    if r.family == family and r.dtype == dtype and r.source == source
                ]
                if ratios:
                    g = _geomean(ratios)
                    target = TARGETS[family]
                    summaries.append(
                        Summary(family, dtype, source, g, target, g <= target, len(ratios))
                    )
    return summaries


def _print_blas_split(rows: list[Row]) -> None:
    """linear's ratio as (ours / NumPy's bare products) × (NumPy's bare products / torch's)."""
    split = [r for r in rows if r.blas_ratio is not None and r.over_blas is not None]
    if not split:
        return
    print(
        "\nlinear: ours / torch = (ours / NumPy's three bare products) "
        "× (NumPy's bare products / torch's, the BLAS libraries alone)"
    )
    print(f"{'problem':<30} {'dtype':<8} {'list':<7} {'ratio':>6} {'ours÷bare':>9} {'BLAS':>6}")
    print("-" * 71)
    for r in split:
        print(
            f"{r.problem:<30} {r.dtype:<8} {r.source:<7} {r.ratio:>6.2f} "
            f"{r.over_blas:>9.2f} {r.blas_ratio:>6.2f}"
        )
    for source in ("fixed", "random"):
        for dtype in DTYPES:
            chosen = [r for r in split if r.source == source and r.dtype == dtype]
            if chosen:
                print(
                    f"{'geometric mean':<30} {dtype:<8} {source:<7} "
                    f"{_geomean([r.ratio for r in chosen]):>6.2f} "
                    f"{_geomean([r.over_blas or 1.0 for r in chosen]):>9.2f} "
                    f"{_geomean([r.blas_ratio or 1.0 for r in chosen]):>6.2f}"
                )


def _print_limits(rates: dict[str, dict[str, float]], kernels: dict[str, Any]) -> None:
    print(
        f"GEMM rate, {GEMM_SIZE}x{GEMM_SIZE}x{GEMM_SIZE}, same threads (GFLOP/s): "
        + "; ".join(
            f"{dtype} NumPy {r['numpy']:.0f}, torch {r['torch']:.0f}" for dtype, r in rates.items()
        )
    )
    for line in describe(kernels):
        print(line)


def run(args: argparse.Namespace, threads: int) -> int:
    torch.set_num_threads(threads)
    reps = QUICK_REPS if args.quick else args.reps
    clock = args.clock or ("cpu" if threads == 1 else "wall")
    CLOCK.update(name=clock, read=time.process_time if clock == "cpu" else time.perf_counter)
    families = args.family or list(FAMILIES)
    dtypes = args.dtype or list(DTYPES)
    machine = _machine(threads)
    with_peer = peer.available()
    print(
        f"ours = reference_impl.vectorized forward + backward; torch = forward + autograd.grad; "
        f"{threads} thread(s) (torch and BLAS), median of {reps} interleaved runs after warm-up, "
        + (
            "process CPU time (what a shared machine's other work does not add)"
            if clock == "cpu"
            else "wall-clock time"
        )
    )
    if "optimizers" in families:
        print(
            "optimizers: ours = one step (new param and state), torch = optimizer.step() "
            "with torch.optim's defaults (the single-tensor CPU path, no foreach or fused)"
        )
    print(
        f"{machine['processor']}, {machine['cpu_count']} cores, Python {machine['python']}, "
        f"NumPy {machine['numpy']}, torch {machine['torch']}"
    )
    rates = gemm_rates(dtypes, max(reps, 7), CLOCK["read"])
    kernels = kernel_sets()
    _print_limits(rates, kernels)
    if with_peer:
        print(
            f"peer: MyGrad {peer.version()} (conv_nd, max_pool), forward + backward on the same "
            "problems; ÷MyGrad = ours / MyGrad, which must stay below 1"
        )
    else:
        print(
            "peer: MyGrad is not installed (pip install 'reference-impl[bench]'), "
            "so there is no NumPy peer in this run"
        )
    if args.random:
        print(f"random problems: {args.random} drawn with seed {args.seed}")
    print(
        "÷G = time over the GEMM-bound time (3 products at the GEMM rate above: NumPy's for "
        "ours, torch's for torch)\n"
    )

    rows: list[Row] = []
    missing = [family for family in families if not _available(family)]
    loops: list[LoopTiming] = []
    memory: list[ConvMemory] = []
    _print_row_header()
    for family in missing:
        print(f"{family:<16} not available (reference_impl.vectorized has no {family})")
    present = [family for family in families if family not in missing]
    for source, build in _problems(args, present, dtypes):
        problem = build()
        row = _time_problem(problem, reps, source, rates, with_peer)
        rows.append(row)
        _print_row(row)
        if problem.family == "conv2d" and source == "fixed":
            memory.append(_conv_memory(problem))
        del problem

    summaries = _summaries(rows, present, dtypes)
    print("\ngeometric mean of ours / torch per family, dtype and problem list")
    print(
        f"{'family':<16} {'dtype':<8} {'list':<7} {'problems':>8} {'geomean':>8} {'target':>7}  "
        "result"
    )
    print("-" * 67)
    for s in summaries:
        verdict = "PASS" if s.passed else "FAIL"
        print(
            f"{s.family:<16} {s.dtype:<8} {s.source:<7} {s.problems:>8} {s.geomean:>8.2f} "
            f"{'≤ ' + format(s.target, '.1f'):>7}  {verdict}"
        )
    for family in missing:
        print(
            f"{family:<16} {'':<8} {'':<7} {'':>8} {'-':>8} "
            f"{'≤ ' + format(TARGETS[family], '.1f'):>7}  not available"
        )

    _print_blas_split(rows)

    peer_rows = [r for r in rows if r.peer_ratio is not None]
    slower = [r for r in peer_rows if r.peer_ratio is not None and r.peer_ratio >= 1]
    for r in rows:
        if r.peer_error:
            print(f"\nMyGrad cannot run {r.problem} {r.dtype}: {r.peer_error}", end="")
    if slower:
        listed = ", ".join(f"{r.problem} {r.dtype} {r.peer_ratio:.2f}" for r in slower)
        print(f"\nours / MyGrad: NOT faster on {len(slower)} of {len(peer_rows)}: {listed}")
    elif peer_rows:
        worst = max(r.peer_ratio or 0.0 for r in peer_rows)
        print(
            f"\nours / MyGrad: faster on all {len(peer_rows)} conv2d and max_pool2d problems "
            f"(at most {worst:.2f})"
        )

    if memory:
        print(
            "\nconv2d vectorized, peak traced memory of one call (tracemalloc) vs one im2col buffer"
        )
        print(
            f"{'shape':<30} {'dtype':<8} {'forward MB':>10} {'backward MB':>11} "
            f"{'im2col MB':>9} {'peak/im2col':>11}  (≤ 2)"
        )
        print("-" * 92)
        for m in memory:
            print(
                f"{m.shape:<30} {m.dtype:<8} {m.forward_peak_bytes / 2**20:>10.2f} "
                f"{m.backward_peak_bytes / 2**20:>11.2f} {m.im2col_bytes / 2**20:>9.2f} "
                f"{m.ratio:>11.2f}  {'PASS' if m.ratio <= 2 else 'FAIL'}"
            )

    if not args.no_loops:
        print(
            "\nreference_impl.loops, one forward + backward on the smallest problem of each family"
        )
        print(f"{'family':<16} {'function':<33} {'shape':<30} {'dtype':<8} {'seconds':>10}")
        print("-" * 101)
        for family in present:
            for dtype in dtypes[:1]:
                problems = [build() for build in builders(family, dtype)]
                smallest = min(p.cost for p in problems)
                for problem in problems:
                    if problem.cost != smallest:
                        continue
                    t = _time_loop(problem, args.loop_budget)
                    loops.append(t)
                    note = (
                        f"  est. from {t.examples_run} of {t.batch} examples" if t.estimated else ""
                    )
                    print(
                        f"{t.family:<16} {t.function:<33} {t.shape:<30} {t.dtype:<8} "
                        f"{t.seconds:>10.2f}{note}",
                        flush=True,
                    )
                del problems

    if args.json is not None:
        document = {
            "machine": machine,
            "reps": reps,
            "clock": clock,
            "gemm_rates_gflops": rates,
            "gemm_size": GEMM_SIZE,
            "kernels": kernels,
            "peer": peer.version() if with_peer else None,
            "random": {"count": args.random, "seed": args.seed},
            "rows": [asdict(r) for r in rows],
            "summary": [asdict(s) for s in summaries],
            "not_available": missing,
            "conv2d_memory": [
                {**asdict(m), "peak_bytes": m.peak_bytes, "ratio": m.ratio} for m in memory
            ],
            "loops": [{**asdict(t), "estimated": t.estimated} for t in loops],
        }
        args.json.write_text(json.dumps(document, indent=2))
        print(f"\nwrote {args.json}")

    failed = (
        any(not s.passed for s in summaries) or any(m.ratio > 2 for m in memory) or bool(slower)
    )
    return 1 if args.check and failed else 0
