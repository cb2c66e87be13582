"""The machine's limit: the GEMM rate of each side's BLAS, and the kernels each side runs.

A conv2d or linear forward + backward is three matrix products of
``2·N·H_out·W_out·C_out·C_in/g·kh·kw`` flops each (``2·N·in·out`` for linear):
the forward, the weight gradient and the input gradient. Divided by the
single-thread GEMM rate of a library's BLAS, that is the time the problem
would take if all it did were those products at that rate: its GEMM-bound
time. The report prints each problem's time as a multiple of it, ours against
NumPy's BLAS, torch's against torch's.

The rates are measured here, on square ``GEMM_SIZE`` matrices, with the thread
counts the benchmark runs at. Which code a BLAS runs depends on the CPU and on
the environment (OpenBLAS picks a kernel set per CPU at load time unless
``OPENBLAS_CORETYPE`` forces one; MKL and oneDNN honour similar variables), so
the report names the libraries, the kernel set each side runs and any such
variable it finds. It never sets them.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

#: side of the square matrices whose product measures the GEMM rate
GEMM_SIZE = 1024
#: environment variables that choose a BLAS's or oneDNN's kernels, reported when set
KERNEL_VARIABLES = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_VERBOSE",
    "MKL_ENABLE_INSTRUCTIONS",
    "MKL_DEBUG_CPU_TYPE",
    "MKL_CBWR",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "ATEN_CPU_CAPABILITY",
)


def gemm_rates(
    dtypes: list[str], reps: int, clock: Callable[[], float] = time.perf_counter
) -> dict[str, dict[str, float]]:
    """GFLOP/s of one ``GEMM_SIZE``-square product, NumPy and torch, median of ``reps``."""
    rates: dict[str, dict[str, float]] = {}
    n = GEMM_SIZE
    flops = 2.0 * n**3
    rng = np.random.default_rng(0)
    for dtype in dtypes:
        a, b = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
        c = np.empty_like(a)
        ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c.copy())
        np.matmul(a, b, out=c)
        torch.mm(ta, tb, out=tc)
        ours: list[float] = []
        theirs: list[float] = []
        for _ in range(reps):
            start = clock()
            np.matmul(a, b, out=c)
            ours.append(clock() - start)
            start = clock()
            torch.mm(ta, tb, out=tc)
            theirs.append(clock() - start)
        rates[dtype] = {
            "numpy": flops / statistics.median(ours) / 1e9,
            "torch": flops / statistics.median(theirs) / 1e9,
        }
    return rates


def _numpy_blas() -> dict[str, Any]:
    info: dict[str, Any] = {}
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        info["library"] = f"{blas.get('name')} {blas.get('version')}"
        if blas.get("openblas configuration"):
            info["build"] = " ".join(str(blas["openblas configuration"]).split())
    except Exception as error:  # older NumPy: no dict mode
        info["library"] = f"unknown ({error})"
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        info["runtime"] = "unknown: install threadpoolctl to see the kernel set OpenBLAS chose"
        return info
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    info["runtime"] = (
        "; ".join(
            f"{p.get('internal_api')} {p.get('version')}, kernels {p.get('architecture', '?')}, "
            f"{p.get('num_threads')} thread(s), {p.get('threading_layer', '?')}"
            for p in pools
        )
        or "no BLAS thread pool found"
    )
    return info


def _torch_config() -> dict[str, Any]:
    lines = [line.strip(" -") for line in torch.__config__.show().splitlines()]
    info: dict[str, Any] = {"capability": torch.backends.cpu.get_cpu_capability()}
    for line in lines:
        if "Math Kernel Library" in line:
            info["blas"] = line
        elif "MKL-DNN" in line or "oneDNN" in line:
            info["onednn"] = line
        elif line.startswith("Build settings:"):
            for item in line.split(","):
                key, _, value = item.strip().partition("=")
                if key == "BLAS_INFO":
                    info.setdefault("blas_info", value)
    return info


def kernel_sets() -> dict[str, Any]:
    """The BLAS libraries, the kernel set each side runs, and kernel-choosing variables found."""
    return {
        "numpy": _numpy_blas(),
        "torch": _torch_config(),
        "environment": {v: os.environ[v] for v in KERNEL_VARIABLES if v in os.environ},
    }


def describe(kernels: dict[str, Any]) -> list[str]:
    """Lines for the report header."""
    numpy_info, torch_info = kernels["numpy"], kernels["torch"]
    lines = [f"NumPy BLAS: {numpy_info['library']}"]
    if "build" in numpy_info:
        lines[-1] += f" (built as: {numpy_info['build']})"
    lines.append(f"NumPy BLAS at run time: {numpy_info['runtime']}")
    torch_blas = torch_info.get("blas", torch_info.get("blas_info", "unknown"))
    lines.append(
        f"torch: BLAS {torch_blas}; {torch_info.get('onednn', 'no oneDNN')}; "
        f"CPU capability {torch_info['capability']}"
    )
    found = kernels["environment"]
    lines.append(
        "kernel-choosing variables: "
        + (", ".join(f"{k}={v}" for k, v in found.items()) if found else "none set")
        + " (reported, never overridden)"
    )
    return lines
