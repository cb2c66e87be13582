"""Reference forward and backward passes of neural-network layers, in NumPy.

Two namespaces with the same names and signatures:

* :mod:`reference_impl.loops` computes every output element with explicit
  Python loops, written as the index-level derivation reads;
* :mod:`reference_impl.vectorized` computes the same quantities with array
  operations, fast enough for real use.

Both follow ``torch.nn.functional``'s names, NCHW layouts and weight layouts.
Each forward ``name(...)`` has a ``name_backward(grad_output, ...)`` that
returns the gradient(s) with respect to its differentiable inputs.

:mod:`reference_impl.networks` builds composite networks on either namespace:
a ``Sequential`` of layers (``Linear``, ``Conv2d``, ``ReLU``, ``Sigmoid``,
``Tanh``, ``MaxPool2d``, ``AvgPool2d``, ``Flatten``, all built on one generic
``Functional`` layer), the losses, and SGD training, with torch's parameter
layouts and ``state_dict`` names. It is a package of its own, not part of the
two namespaces.

:mod:`reference_impl.testing` (torch and Hypothesis, from the ``test`` extra)
is the oracle the suite runs on, and a public checker for your own formulas:
``check_formula("conv2d", backward=my_conv2d_backward)``.
"""

from reference_impl import loops, networks, vectorized

__all__ = ["loops", "networks", "vectorized"]
__version__ = "0.1.0"
