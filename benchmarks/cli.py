"""Command line of ``python -m benchmarks``.

This module must not import NumPy or torch: OpenBLAS, MKL and OpenMP read
their thread counts from the environment once, when the library loads, so the
variables are set here first. If NumPy is already loaded (``main`` called from
a process that imported it), or several thread counts are asked for, each
measurement runs in a fresh interpreter with the environment set.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FAMILIES = (
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "linear",
    "activations",
    "losses",
    "recurrent",
    "normalization",
    "conv_transpose2d",
    "optimizers",
    "attention",
)

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Time the vectorized forward + backward of every formula family against torch's "
            "forward + autograd backward, interleaved in one process, and compare the "
            "geometric-mean ratio (ours / torch) of each family and dtype with its target."
        ),
    )
    parser.add_argument(
        "--family",
        choices=FAMILIES,
        action="append",
        help="run only this family (repeatable; default: all)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[1],
        metavar="N",
        help="torch and BLAS threads (default 1); several values run one measurement each",
    )
    parser.add_argument(
        "--quick", action="store_true", help="3 timed repetitions instead of --reps"
    )
    parser.add_argument(
        "--reps", type=int, default=9, help="timed repetitions per side, at least 7 (default 9)"
    )
    parser.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        action="append",
        help="run only this dtype (repeatable; default: both)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every figure to PATH")
    parser.add_argument(
        "--no-loops", action="store_true", help="skip timing the loop implementations"
    )
    parser.add_argument(
        "--loop-budget",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help=(
            "a loop run expected to take longer is timed on the first examples of the "
            "batch only and scaled to the full batch (marked 'est.'; default 5)"
        ),
    )
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        help=(
            "time with the process's CPU time or the wall clock (default: cpu at one thread, "
            "where the machine's other work then adds nothing; wall with several threads, "
            "whose CPU times add up)"
        ),
    )
    parser.add_argument(
        "--random",
        type=int,
        default=0,
        metavar="N",
        help=(
            "also time N problems drawn at random (shapes, kernels, strides, dilation, groups; "
            "see benchmarks/random_problems.py), each in every selected dtype"
        ),
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the --random problems (default 0)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help=(
            "exit with status 1 if a family misses its target on the fixed or the random "
            "problems, conv2d its memory bound, or ours is not faster than MyGrad"
        ),
    )
    args = parser.parse_args(argv)
    if min(args.threads) < 1:
        parser.error("--threads must be at least 1")
    if args.random < 0:
        parser.error("--random must be at least 0")
    if args.clock == "cpu" and max(args.threads) > 1:
        parser.error("--clock cpu needs --threads 1 (CPU times of several threads add up)")
    if not args.quick and args.reps < 7:
        parser.error("--reps must be at least 7 (use --quick for a fast look)")
    return args


def _child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for variable in THREAD_VARIABLES:
        env[variable] = str(threads)
    return env


def _forward_args(args: argparse.Namespace, threads: int, json_path: Path | None) -> list[str]:
    argv = ["--threads", str(threads), "--reps", str(args.reps), "--loop-budget"]
    argv.append(str(args.loop_budget))
    argv += ["--random", str(args.random), "--seed", str(args.seed)]
    if args.clock:
        argv += ["--clock", args.clock]
    for family in args.family or []:
        argv += ["--family", family]
    for dtype in args.dtype or []:
        argv += ["--dtype", dtype]
    for flag in ("quick", "no_loops", "check"):
        if getattr(args, flag):
            argv.append("--" + flag.replace("_", "-"))
    if json_path is not None:
        argv += ["--json", str(json_path)]
    return argv


def _run_child(args: argparse.Namespace, threads: int, json_path: Path | None) -> int:
    command = [sys.executable, "-m", "benchmarks", *_forward_args(args, threads, json_path)]
    root = Path(__file__).resolve().parent.parent
    env = _child_env(threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    return subprocess.run(command, env=env, check=False).returncode


def _compare_thread_counts(args: argparse.Namespace) -> int:
    """One fresh interpreter per thread count, then the geometric means side by side."""
    status = 0
    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for threads in args.threads:
            print(f"\n=== {threads} thread(s) ===", flush=True)
            path = Path(tmp) / f"threads-{threads}.json"
            status = max(status, _run_child(args, threads, path))
            if path.exists():
                results[threads] = json.loads(path.read_text())
    print("\n=== geometric mean ours/torch by thread count ===")
    counts = sorted(results)
    header = f"{'family':<12} {'dtype':<8} {'list':<7} " + " ".join(
        f"{f'{t} thr':>8}" for t in counts
    )
    print(header)
    print("-" * len(header))
    keys: list[tuple[str, str, str]] = []
    for threads in counts:
        for row in results[threads]["summary"]:
            key = (row["family"], row["dtype"], row["source"])
            if key not in keys:
                keys.append(key)
    for family, dtype, source in keys:
        cells = []
        for threads in counts:
            match = [
                r
                for r in results[threads]["summary"]
                if (r["family"], r["dtype"], r["source"]) == (family, dtype, source)
            ]
            cells.append(f"{match[0]['geomean']:>8.2f}" if match else f"{'-':>8}")
        print(f"{family:<12} {dtype:<8} {source:<7} " + " ".join(cells))
    if args.json is not None:
        merged = {"by_threads": {str(t): results[t] for t in counts}}
        args.json.write_text(json.dumps(merged, indent=2))
        print(f"\nwrote {args.json}")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if len(args.threads) > 1:
        return _compare_thread_counts(args)
    threads = args.threads[0]
    wanted = _child_env(threads)
    configured = all(os.environ.get(v) == wanted[v] for v in THREAD_VARIABLES)
    if "numpy" in sys.modules and not configured:
        # Too late to set the BLAS threads in this process: measure in a fresh one.
        return _run_child(args, threads, args.json)
    os.environ.update({v: wanted[v] for v in THREAD_VARIABLES})

    from benchmarks import run

    return run.run(args, threads)
