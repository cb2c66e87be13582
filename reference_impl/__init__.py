"""Reference forward and backward passes of neural-network layers, in NumPy.

Two namespaces with the same names and signatures:

* :mod:`reference_impl.loops` computes every output element with explicit
  Python loops, written as the index-level derivation reads;
* :mod:`reference_impl.vectorized` computes the same quantities with array
  operations, fast enough for real use.

Both follow ``torch.nn.functional``'s names, NCHW layouts and weight layouts.
Each forward ``name(...)`` has a ``name_backward(grad_output, ...)`` that
returns the gradient(s) with respect to its differentiable inputs.
"""

from reference_impl import loops, vectorized

__all__ = ["loops", "vectorized"]
__version__ = "0.1.0"
