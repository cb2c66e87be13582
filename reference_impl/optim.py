r"""Stochastic gradient descent, step for step as ``torch.optim.SGD``.

With parameter ``w``, gradient ``g`` (already the mean over the batch when the
loss uses ``reduction="mean"``, as in Benaicha (2023) and Saraswat), learning
rate ``α``, momentum ``μ``, dampening ``τ`` and weight decay ``λ``::

    d = g + λ w
    if μ ≠ 0:
        b = d                         on the first step (no buffer yet)
        b = μ b + (1 − τ) d           afterwards
        d = d + μ b   if nesterov     else   d = b
    w ← w − α d

Plain SGD (μ = λ = 0) is their update ``w ← w − α · mean gradient``.

References:

* Mohamed Benaicha, "Forward Pass and Backpropagation in Deep Learning: DNNs and
  CNNs" (5 Dec 2023).
* Ayush Saraswat, "Backward Pass of CNN".
"""

from __future__ import annotations

import numpy as np

from reference_impl._validation import (
    FloatArray,
    check_bool,
    check_shape,
    float_array,
    same_dtype,
    scalar,
)


def _check_sgd(
    param: object,
    grad: object,
    lr: object,
    momentum: object,
    dampening: object,
    weight_decay: object,
    nesterov: object,
    momentum_buffer: object,
) -> tuple[FloatArray, FloatArray, float, float, float, float, FloatArray | None]:
    param = float_array("param", param)
    grad = float_array("grad", grad)
    buffer = None if momentum_buffer is None else float_array("momentum_buffer", momentum_buffer)
    same_dtype(param=param, grad=grad, momentum_buffer=buffer)
    check_shape("grad", grad, param.shape)
    if buffer is not None:
        check_shape("momentum_buffer", buffer, param.shape)
    lr_value = scalar("lr", lr, minimum=0.0)
    momentum_value = scalar("momentum", momentum, minimum=0.0)
    dampening_value = scalar("dampening", dampening)
    decay_value = scalar("weight_decay", weight_decay, minimum=0.0)
    if check_bool("nesterov", nesterov) and (momentum_value <= 0 or dampening_value != 0):
        raise ValueError("nesterov momentum requires momentum > 0 and dampening == 0")
    return param, grad, lr_value, momentum_value, dampening_value, decay_value, buffer


def sgd_step_loop(
    param: FloatArray,
    grad: FloatArray,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    momentum_buffer: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray | None]:
    """One SGD step, element by element. Returns ``(new_param, new_momentum_buffer)``.

    The buffer is ``None`` when ``momentum == 0``; otherwise pass it back in on
    the next step. Nothing is updated in place.
    """
    param, grad, lr, momentum, dampening, weight_decay, buffer = _check_sgd(
        param, grad, lr, momentum, dampening, weight_decay, nesterov, momentum_buffer
    )
    new_param = np.empty_like(param)
    new_buffer = None if momentum == 0 else np.empty_like(param)
    for idx in np.ndindex(param.shape):
        w = float(param[idx])
        d = float(grad[idx]) + weight_decay * w
        if new_buffer is not None:
            if buffer is None:
                b = d
            else:
                b = momentum * float(buffer[idx]) + (1.0 - dampening) * d
            new_buffer[idx] = b
            d = d + momentum * b if nesterov else b
        new_param[idx] = w - lr * d
    return new_param, new_buffer


def sgd_step_vectorized(
    param: FloatArray,
    grad: FloatArray,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    momentum_buffer: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray | None]:
    """One SGD step on whole arrays. Returns ``(new_param, new_momentum_buffer)``."""
    param, grad, lr, momentum, dampening, weight_decay, buffer = _check_sgd(
        param, grad, lr, momentum, dampening, weight_decay, nesterov, momentum_buffer
    )
    dtype = param.dtype.type
    # Every intermediate is a fresh array (``out=``), so 0-d parameters stay arrays.
    step = np.array(grad, copy=True)
    if weight_decay:
        step += dtype(weight_decay) * param
    new_buffer = None
    if momentum != 0:
        if buffer is None:
            new_buffer = step.copy()
        else:
            new_buffer = np.multiply(buffer, dtype(momentum), out=np.empty_like(buffer))
            new_buffer += dtype(1.0 - dampening) * step
        if nesterov:
            step += dtype(momentum) * new_buffer
        else:
            step[...] = new_buffer
    step *= dtype(lr)
    new_param = np.subtract(param, step, out=step)
    return new_param, new_buffer
