"""Speed of :mod:`reference_impl.vectorized` against torch, forward plus backward.

Run ``python -m benchmarks --help``. The command-line layer
(:mod:`benchmarks.cli`) imports neither NumPy nor torch, so that it can fix the
BLAS thread count in the environment before either library loads; the
measurements live in :mod:`benchmarks.run`, the problem shapes in
:mod:`benchmarks.cases`.
"""
