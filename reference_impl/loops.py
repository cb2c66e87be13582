"""Explicit-loop references: every output element computed as the derivation writes it.

Slow by design. Use them to read the math, to check a derivation by hand on a
small example, and as the second opinion beside :mod:`reference_impl.vectorized`,
which exposes exactly the same names and signatures.
"""

from reference_impl.activations import (
    log_softmax_backward_loop as log_softmax_backward,
)
from reference_impl.activations import (
    log_softmax_loop as log_softmax,
)
from reference_impl.conv import (
    conv2d_backward_loop as conv2d_backward,
)
from reference_impl.conv import (
    conv2d_loop as conv2d,
)
