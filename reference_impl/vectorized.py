"""Vectorized references: the same names and signatures as :mod:`reference_impl.loops`,
computed with whole-array NumPy operations.
"""

from reference_impl.pooling import (
    avg_pool2d_backward_vectorized as avg_pool2d_backward,
)
from reference_impl.pooling import (
    avg_pool2d_vectorized as avg_pool2d,
)
from reference_impl.pooling import (
    max_pool2d_backward_vectorized as max_pool2d_backward,
)
from reference_impl.pooling import (
    max_pool2d_vectorized as max_pool2d,
)
