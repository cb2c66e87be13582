"""The measurements: interleaved timings, loop timings, conv2d memory, the report.

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
from typing import Any

import numpy as np
import torch

import reference_impl.loops
import reference_impl.vectorized
from benchmarks.cases import TARGETS, Problem, builders, functions
from benchmarks.cli import FAMILIES

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
    ours_ms: float
    torch_ms: float
    ratio: float
    ours_runs_ms: list[float]
    torch_runs_ms: list[float]


@dataclass
class Summary:
    family: str
    dtype: str
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


def _time_once(step: Callable[[], None], number: int = 1) -> float:
    """Seconds per call of ``step``, averaged over ``number`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(number):
        step()
    return (time.perf_counter() - start) / number


def _calls_per_rep(seconds: float) -> int:
    """Back-to-back calls that make one repetition last at least ``MIN_REP_SECONDS``."""
    return max(1, math.ceil(MIN_REP_SECONDS / max(seconds, 1e-9)))


def _interleaved(
    ours: Callable[[], None], theirs: Callable[[], None], reps: int
) -> tuple[list[float], list[float]]:
    """Warm both up, then alternate ours, torch, ours, torch... ``reps`` times each.

    A repetition of a fast problem runs it several times back to back, so that
    the scheduler's time slices (other processes, a busy machine) average out.
    """
    ours()
    theirs()
    n_ours = _calls_per_rep(_time_once(ours))
    n_theirs = _calls_per_rep(_time_once(theirs))
    ours_s: list[float] = []
    torch_s: list[float] = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(reps):
            ours_s.append(_time_once(ours, n_ours))
            torch_s.append(_time_once(theirs, n_theirs))
    finally:
        gc.enable()
    return ours_s, torch_s


def _time_problem(problem: Problem, reps: int) -> Row:
    ours, theirs = _interleaved(problem.ours(reference_impl.vectorized), problem.torch(), reps)
    ours_ms = 1e3 * statistics.median(ours)
    torch_ms = 1e3 * statistics.median(theirs)
    return Row(
        problem.family,
        problem.function,
        problem.label,
        problem.dtype,
        ours_ms,
        torch_ms,
        ours_ms / torch_ms,
        [1e3 * t for t in ours],
        [1e3 * t for t in theirs],
    )


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
        f"{'family':<13} {'function':<33} {'shape':<30} {'dtype':<8} "
        f"{'ours ms':>9} {'torch ms':>9} {'ratio':>6}"
    )
    print("-" * 114)


def _print_row(row: Row) -> None:
    print(
        f"{row.family:<13} {row.function:<33} {row.shape:<30} {row.dtype:<8} "
        f"{row.ours_ms:>9.2f} {row.torch_ms:>9.2f} {row.ratio:>6.2f}",
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


def run(args: argparse.Namespace, threads: int) -> int:
    torch.set_num_threads(threads)
    reps = QUICK_REPS if args.quick else args.reps
    families = args.family or list(FAMILIES)
    dtypes = args.dtype or list(DTYPES)
    machine = _machine(threads)
    print(
        f"ours = reference_impl.vectorized forward + backward; torch = forward + autograd.grad; "
        f"{threads} thread(s) (torch and BLAS), median of {reps} interleaved runs after warm-up"
    )
    if "optimizers" in families:
        print(
            "optimizers: ours = one step (new param and state), torch = optimizer.step() "
            "with torch.optim's defaults (the single-tensor CPU path, no foreach or fused)"
        )
    print(
        f"{machine['processor']}, {machine['cpu_count']} cores, Python {machine['python']}, "
        f"NumPy {machine['numpy']}, torch {machine['torch']}\n"
    )

    rows: list[Row] = []
    missing: list[str] = []
    loops: list[LoopTiming] = []
    memory: list[ConvMemory] = []
    _print_row_header()
    for family in families:
        if not _available(family):
            missing.append(family)
            print(f"{family:<13} not available (reference_impl.vectorized has no {family})")
            continue
        for dtype in dtypes:
            for build in builders(family, dtype):
                problem = build()
                row = _time_problem(problem, reps)
                rows.append(row)
                _print_row(row)
                if family == "conv2d":
                    memory.append(_conv_memory(problem))
                del problem

    summaries: list[Summary] = []
    for family in families:
        for dtype in dtypes:
            ratios = [r.ratio for r in rows if r.family == family and r.dtype == dtype]
            if ratios:
                g = _geomean(ratios)
                summaries.append(
                    Summary(family, dtype, g, TARGETS[family], g <= TARGETS[family], len(ratios))
                )
    print("\ngeometric mean of ours / torch per family and dtype")
    print(f"{'family':<13} {'dtype':<8} {'problems':>8} {'geomean':>8} {'target':>7}  result")
    print("-" * 56)
    for s in summaries:
        verdict = "PASS" if s.passed else "FAIL"
        print(
            f"{s.family:<13} {s.dtype:<8} {s.problems:>8} {s.geomean:>8.2f} "
            f"{'≤ ' + format(s.target, '.1f'):>7}  {verdict}"
        )
    for family in missing:
        print(
            f"{family:<13} {'':<8} {'':>8} {'-':>8} {'≤ ' + format(TARGETS[family], '.1f'):>7}  "
            "not available"
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
        print(f"{'family':<13} {'function':<33} {'shape':<30} {'dtype':<8} {'seconds':>10}")
        print("-" * 98)
        for family in families:
            if family in missing:
                continue
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
                        f"{t.family:<13} {t.function:<33} {t.shape:<30} {t.dtype:<8} "
                        f"{t.seconds:>10.2f}{note}",
                        flush=True,
                    )
                del problems

    if args.json is not None:
        document = {
            "machine": machine,
            "reps": reps,
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

    failed = any(not s.passed for s in summaries) or any(m.ratio > 2 for m in memory)
    return 1 if args.check and failed else 0
