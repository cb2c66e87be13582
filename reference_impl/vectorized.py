"""Vectorized references: array operations and BLAS products.

Same names and signatures as :mod:`reference_impl.loops`.
"""

from reference_impl.conv import (
    conv2d_backward_vectorized as conv2d_backward,
)
from reference_impl.conv import (
    conv2d_vectorized as conv2d,
)
