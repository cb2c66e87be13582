r"""Optimizer steps, one at a time, as ``torch.optim`` takes them.

Each function takes the parameter ``θ``, its gradient ``g`` and the
optimizer's state, and returns the new parameter and the new state; nothing is
updated in place. SGD's state is its momentum buffer; the adaptive optimizers'
states are dicts with torch's keys (those of ``optimizer.state[p]``), so one
maps onto the other: ``step`` is a Python ``int`` here and a 0-d float32 tensor
in torch (``int(state["step"])`` and ``torch.tensor(float(step))`` convert),
the arrays are ``numpy.ndarray`` here and tensors there.

SGD (``torch.optim.SGD``)
=========================
With learning rate ``α``, momentum ``μ``, dampening ``τ`` and weight decay ``λ``
(the gradient ``g`` is already the mean over the batch when the loss uses
``reduction="mean"``, as in Benaicha (2023) and Saraswat)::

    d = g + λ w
    if μ ≠ 0:
        b = d                         on the first step (no buffer yet)
        b = μ b + (1 − τ) d           afterwards
        d = d + μ b   if nesterov     else   d = b
    w ← w − α d

Plain SGD (μ = λ = 0) is their update ``w ← w − α · mean gradient``.

Adam and AdamW (``torch.optim.Adam``, ``torch.optim.AdamW``)
============================================================
Kingma and Ba, "Adam: A Method for Stochastic Optimization" (ICLR 2015),
Algorithm 1, keeps exponential moving averages of the gradient and of its
square, and divides the first by the root of the second. Both averages start
at zero, so after ``t`` steps they carry the total weight ``1 − β^t`` instead of
1; dividing by it (the bias correction) makes them unbiased. Element by element,
with ``t`` the step count *after* it is incremented::

    t ← t + 1
    g ← −g                                   if maximize
    g ← g + λ θ                              Adam: L2 decay, part of the gradient
    θ ← θ (1 − α λ)                          AdamW: decoupled decay, on the weight
    m ← β₁ m + (1 − β₁) g
    v ← β₂ v + (1 − β₂) g²
    v_max ← max(v_max, v)                    if amsgrad (on the raw v)
    denom = √(v or v_max) / √(1 − β₂ᵗ) + ε   (ε outside the root)
    θ ← θ − α / (1 − β₁ᵗ) · m / denom

The update is ``α m̂ / (√v̂ + ε)`` with ``m̂ = m / (1 − β₁ᵗ)`` and
``v̂ = v / (1 − β₂ᵗ)``, written as torch writes it: ``ε`` is added after the
bias correction of ``√v`` and is not corrected itself. Loshchilov and Hutter,
"Decoupled Weight Decay Regularization" (ICLR 2019), Algorithm 2, show that
the L2 term ``λθ`` of Adam is divided by ``√v̂`` with the rest of the gradient,
so weights with large gradients decay less; AdamW takes the decay out of the
gradient and shrinks the weight directly. torch multiplies that decay by the
learning rate (``1 − αλ``; the paper's schedule multiplier is torch's ``α``).
AMSGrad (Reddi, Kale and Kumar, "On the Convergence of Adam and Beyond",
ICLR 2018) divides by the running maximum of ``v``; torch takes the maximum
of the raw ``v`` and bias-corrects it afterwards with the current step's
``1 − β₂ᵗ``.

State: ``step``, ``exp_avg`` (``m``), ``exp_avg_sq`` (``v``) and, with
``amsgrad``, ``max_exp_avg_sq`` (``v_max``): torch's names.

RMSprop (``torch.optim.RMSprop``)
=================================
Hinton's lecture 6e of "Neural Networks for Machine Learning" (2012) divides
the gradient by the root of a moving average of its square; torch adds
momentum and an optional centering, which its documentation attributes to
Graves, "Generating Sequences With Recurrent Neural Networks" (2013): subtract
the square of the moving average of the gradient, so that the denominator
estimates a standard deviation rather than a root mean square.
With smoothing constant ``a`` (``alpha``), no bias correction::

    g ← −g                                   if maximize
    g ← g + λ θ                              L2 decay
    v ← a v + (1 − a) g²
    ḡ ← a ḡ + (1 − a) g                      if centered
    avg = √(v − ḡ²) + ε   if centered   else   √v + ε
    b ← μ b + g / avg,   θ ← θ − α b         if μ > 0 (b starts at 0)
    θ ← θ − α g / avg                        otherwise

State: ``step``, ``square_avg`` (``v``), ``momentum_buffer`` (``b``, when
``momentum > 0``) and ``grad_avg`` (``ḡ``, when ``centered``).

Floating point
==============
The vectorized versions follow torch's order of operations (the moving average
of ``g`` as torch's ``lerp``, the bias correction of ``√v`` as a division by
``√(1 − β₂ᵗ)``, the scalar factors computed in double and applied in the
array's dtype); the loop versions compute each element in double and round
once per stored value. Both stay within the running error bound derived in
``reference_impl/testing/tolerances.py`` (:func:`~reference_impl.testing.tolerances.adam_drift`).
A zero denominator (``eps = 0`` with ``v = 0``) gives ``nan`` or ``±inf`` as in
torch, without a warning.

References:

* Mohamed Benaicha, "Forward Pass and Backpropagation in Deep Learning: DNNs and
  CNNs" (5 Dec 2023).
* Ayush Saraswat, "Backward Pass of CNN".
* Diederik P. Kingma and Jimmy Ba, "Adam: A Method for Stochastic Optimization",
  ICLR 2015 (arXiv:1412.6980), Algorithm 1.
* Ilya Loshchilov and Frank Hutter, "Decoupled Weight Decay Regularization",
  ICLR 2019 (arXiv:1711.05101), Algorithm 2.
* Sashank J. Reddi, Satyen Kale and Sanjiv Kumar, "On the Convergence of Adam and
  Beyond", ICLR 2018, Algorithm 2 (AMSGrad).
* Geoffrey Hinton, Nitish Srivastava and Kevin Swersky, "Neural Networks for
  Machine Learning", lecture 6e (2012), RMSprop.
* Alex Graves, "Generating Sequences With Recurrent Neural Networks" (2013,
  arXiv:1308.0850): centered RMSprop with momentum.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from reference_impl._validation import (
    FloatArray,
    check_bool,
    check_shape,
    float_array,
    is_int,
    same_dtype,
    scalar,
)

#: an adaptive optimizer's state: ``step`` (an int) and arrays under torch's keys
State = dict[str, Any]


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


# --------------------------------------------------------------------------- #
# Adaptive optimizers: shared checks
# --------------------------------------------------------------------------- #


def _step_count(value: object) -> int:
    """``state["step"]``: a non-negative whole number (torch's ``.item()`` is a float)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    if not is_int(value):
        raise TypeError(f"state['step'] must be a whole number of steps, got {value!r}")
    count: int = int(value)  # type: ignore[call-overload]
    if count < 0:
        raise ValueError(f"state['step'] must be at least 0, got {count}")
    return count


def _state(
    state: object, keys: tuple[str, ...], param: FloatArray, optimizer: str
) -> tuple[int, dict[str, FloatArray]]:
    """Validate an incoming state: exactly ``keys`` (plus ``step``), arrays like ``param``.

    ``None`` is the state before the first step: step 0 and zeros, as torch
    initialises it. A state with other keys comes from another optimizer, or
    from this one with other options (``amsgrad``, ``momentum``, ``centered``).
    """
    if state is None:
        return 0, {key: np.zeros_like(param) for key in keys}
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a dict (or None), got {type(state).__name__}")
    expected = {"step", *keys}
    if set(state) != expected:
        raise ValueError(
            f"state has keys {sorted(map(str, state))}, but {optimizer} with these options "
            f"keeps {sorted(expected)}: a state from another optimizer or other options"
        )
    arrays = {}
    for key in keys:
        array = float_array(f"state['{key}']", state[key])
        if array.dtype != param.dtype:
            raise TypeError(
                f"state['{key}'] has dtype {array.dtype}, but param has dtype {param.dtype}"
            )
        check_shape(f"state['{key}']", array, param.shape)
        arrays[key] = array
    return _step_count(state["step"]), arrays


def _betas(value: object) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"betas must be a pair of real numbers, got {value!r}")
    pair = (scalar("betas[0]", value[0]), scalar("betas[1]", value[1]))
    for index, beta in enumerate(pair):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"betas[{index}] must lie in [0, 1), got {beta!r}")
    return pair


def _param_and_grad(param: object, grad: object) -> tuple[FloatArray, FloatArray]:
    param = float_array("param", param)
    grad = float_array("grad", grad)
    same_dtype(param=param, grad=grad)
    check_shape("grad", grad, param.shape)
    return param, grad


@dataclass(frozen=True)
class _Adam:
    """Validated arguments of one Adam or AdamW step."""

    param: FloatArray
    grad: FloatArray
    step: int
    exp_avg: FloatArray
    exp_avg_sq: FloatArray
    max_exp_avg_sq: FloatArray | None
    lr: float
    beta1: float
    beta2: float
    eps: float
    weight_decay: float
    amsgrad: bool
    maximize: bool
    decoupled: bool

    @property
    def keys(self) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if self.amsgrad else _ADAM_KEYS

    def corrections(self) -> tuple[float, float, float]:
        """``(t, α / (1 − β₁ᵗ), √(1 − β₂ᵗ))``, in double, as torch computes them."""
        t = self.step + 1
        step_size = self.lr / (1 - self.beta1**t)
        return t, step_size, (1 - self.beta2**t) ** 0.5


_ADAM_KEYS = ("exp_avg", "exp_avg_sq")


def _check_adam(
    optimizer: str,
    param: object,
    grad: object,
    state: object,
    lr: object,
    betas: object,
    eps: object,
    weight_decay: object,
    amsgrad: object,
    maximize: object,
    decoupled: bool,
) -> _Adam:
    param, grad = _param_and_grad(param, grad)
    lr_value = scalar("lr", lr, minimum=0.0)
    beta1, beta2 = _betas(betas)
    eps_value = scalar("eps", eps, minimum=0.0)
    decay = scalar("weight_decay", weight_decay, minimum=0.0)
    use_max = check_bool("amsgrad", amsgrad)
    keys = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if use_max else _ADAM_KEYS
    step, arrays = _state(state, keys, param, optimizer)
    return _Adam(
        param,
        grad,
        step,
        arrays["exp_avg"],
        arrays["exp_avg_sq"],
        arrays.get("max_exp_avg_sq"),
        lr_value,
        beta1,
        beta2,
        eps_value,
        decay,
        use_max,
        check_bool("maximize", maximize),
        decoupled,
    )


def _quotient(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` with IEEE semantics: ``±inf`` or ``nan`` for a zero divisor."""
    if denominator != 0:
        return numerator / denominator
    return (
        math.nan if numerator == 0 or math.isnan(numerator) else math.copysign(math.inf, numerator)
    )


def _sqrt(value: float) -> float:
    """``√value``, ``nan`` for a negative value (rounding can make ``v − ḡ²`` negative)."""
    return math.sqrt(value) if value >= 0 else math.nan


# --------------------------------------------------------------------------- #
# Adam and AdamW
# --------------------------------------------------------------------------- #


def _adam_loop(a: _Adam) -> tuple[FloatArray, State]:
    """One step, element by element, each in double, rounded once per stored value."""
    t, step_size, root_correction2 = a.corrections()
    new_param = np.empty_like(a.param)
    new = {key: np.empty_like(a.param) for key in a.keys}
    for idx in np.ndindex(a.param.shape):
        theta = float(a.param[idx])
        g = float(a.grad[idx])
        if a.maximize:
            g = -g
        if a.weight_decay != 0:
            if a.decoupled:
                theta *= 1 - a.lr * a.weight_decay
            else:
                g += a.weight_decay * theta
        new["exp_avg"][idx] = a.beta1 * float(a.exp_avg[idx]) + (1 - a.beta1) * g
        new["exp_avg_sq"][idx] = a.beta2 * float(a.exp_avg_sq[idx]) + (1 - a.beta2) * g * g
        m = float(new["exp_avg"][idx])
        v = float(new["exp_avg_sq"][idx])
        if a.max_exp_avg_sq is not None:
            v = max(float(a.max_exp_avg_sq[idx]), v)
            new["max_exp_avg_sq"][idx] = v
        denom = math.sqrt(v) / root_correction2 + a.eps
        new_param[idx] = theta - step_size * _quotient(m, denom)
    return new_param, {"step": t, **new}


def _adam_vectorized(a: _Adam) -> tuple[FloatArray, State]:
    """One step on whole arrays, in torch's order of operations (``_single_tensor_adam``).

    Every result is written into a fresh array (``out=``), one scratch array
    is reused for ``g²`` and the denominator: no other temporaries, and 0-d
    parameters stay arrays.
    """
    t, step_size, root_correction2 = a.corrections()
    dtype = a.param.dtype.type

    def fresh() -> FloatArray:
        return np.empty_like(a.param)

    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        g = np.negative(a.grad, out=fresh()) if a.maximize else a.grad
        if a.weight_decay != 0 and not a.decoupled:
            decay = np.multiply(a.param, dtype(a.weight_decay), out=fresh())
            g = np.add(g, decay, out=decay)
        exp_avg = _lerp(a.exp_avg, g, 1 - a.beta1)
        scratch = np.multiply(g, g, out=fresh())
        scratch *= dtype(1 - a.beta2)
        exp_avg_sq = np.multiply(a.exp_avg_sq, dtype(a.beta2), out=fresh())
        exp_avg_sq += scratch
        new: State = {"step": t, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
        second = exp_avg_sq
        if a.max_exp_avg_sq is not None:
            second = new["max_exp_avg_sq"] = np.maximum(a.max_exp_avg_sq, exp_avg_sq, out=fresh())
        denom = np.sqrt(second, out=scratch)
        denom /= dtype(root_correction2)
        denom += dtype(a.eps)
        new_param = np.multiply(exp_avg, dtype(-step_size), out=fresh())
        new_param /= denom
        if a.weight_decay != 0 and a.decoupled:
            new_param += np.multiply(a.param, dtype(1 - a.lr * a.weight_decay), out=denom)
        else:
            new_param += a.param
    return new_param, new


def _arrays(new_param: Any, new: State) -> tuple[FloatArray, State]:
    """Results as arrays: NumPy turns 0-d intermediates into scalars, put them back."""
    return np.asarray(new_param), {k: v if k == "step" else np.asarray(v) for k, v in new.items()}


def _lerp(start: FloatArray, end: FloatArray, weight: float) -> FloatArray:
    """``start + w (end − start)``, evaluated as torch's ``lerp`` (from the nearer end)."""
    w = start.dtype.type(weight)
    out = np.subtract(end, start, out=np.empty_like(start))
    if abs(w) < 0.5:
        out *= w
        out += start
        return out
    out *= start.dtype.type(1) - w
    return np.subtract(end, out, out=out)


def adam_step_loop(
    param: FloatArray,
    grad: FloatArray,
    state: State | None = None,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
) -> tuple[FloatArray, State]:
    """One Adam step, element by element. Returns ``(new_param, new_state)``.

    For each element, with ``t`` the incremented step count::

        g ← ±g + λθ;  m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;  v_max ← max(v_max, v)
        θ ← θ − α/(1 − β₁ᵗ) · m / (√(v or v_max)/√(1 − β₂ᵗ) + ε)

    ``state`` is ``None`` before the first step, then the ``new_state`` of the
    previous one: ``{"step", "exp_avg", "exp_avg_sq"}`` (and ``"max_exp_avg_sq"``
    with ``amsgrad``), torch's keys; ``step`` is an int (torch: a 0-d tensor).
    ``weight_decay`` is L2 decay, added to the gradient (see ``adamw_step``).
    """
    args = _check_adam(
        "adam_step", param, grad, state, lr, betas, eps, weight_decay, amsgrad, maximize, False
    )
    return _adam_loop(args)


def adam_step_vectorized(
    param: FloatArray,
    grad: FloatArray,
    state: State | None = None,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
) -> tuple[FloatArray, State]:
    """One Adam step on whole arrays. Returns ``(new_param, new_state)``.

    The moving average of ``g`` is evaluated as torch's ``lerp``,
    ``m + (1 − β₁)(g − m)``; the rest in the order of the module docstring.
    """
    args = _check_adam(
        "adam_step", param, grad, state, lr, betas, eps, weight_decay, amsgrad, maximize, False
    )
    return _adam_vectorized(args)


def adamw_step_loop(
    param: FloatArray,
    grad: FloatArray,
    state: State | None = None,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    maximize: bool = False,
) -> tuple[FloatArray, State]:
    """One AdamW step, element by element. Returns ``(new_param, new_state)``.

    Adam with decoupled weight decay: ``θ ← θ(1 − αλ)`` before the Adam update,
    and no ``λθ`` in the gradient. The state is Adam's.
    """
    args = _check_adam(
        "adamw_step", param, grad, state, lr, betas, eps, weight_decay, amsgrad, maximize, True
    )
    return _adam_loop(args)


def adamw_step_vectorized(
    param: FloatArray,
    grad: FloatArray,
    state: State | None = None,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    maximize: bool = False,
) -> tuple[FloatArray, State]:
    """One AdamW step on whole arrays. Returns ``(new_param, new_state)``.

    ``θ(1 − αλ)`` is a multiplication by a factor computed in double and
    rounded to the dtype, as in torch (so a factor ``αλ`` below the dtype's
    resolution leaves the weight unchanged there too).
    """
    args = _check_adam(
        "adamw_step", param, grad, state, lr, betas, eps, weight_decay, amsgrad, maximize, True
    )
    return _adam_vectorized(args)


# --------------------------------------------------------------------------- #
# RMSprop
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _RMSprop:
    """Validated arguments of one RMSprop step."""

    param: FloatArray
    grad: FloatArray
    step: int
    arrays: dict[str, FloatArray]
    lr: float
    alpha: float
    eps: float
    weight_decay: float
    momentum: float
    centered: bool
    maximize: bool


def _check_rmsprop(
    param: object,
    grad: object,
    state: object,
    lr: object,
    alpha: object,
    eps: object,
    weight_decay: object,
    momentum: object,
    centered: object,
    maximize: object,
) -> _RMSprop:
    param, grad = _param_and_grad(param, grad)
    lr_value = scalar("lr", lr, minimum=0.0)
    alpha_value = scalar("alpha", alpha, minimum=0.0)
    if alpha_value > 1:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}")
    eps_value = scalar("eps", eps, minimum=0.0)
    decay = scalar("weight_decay", weight_decay, minimum=0.0)
    momentum_value = scalar("momentum", momentum, minimum=0.0)
    is_centered = check_bool("centered", centered)
    keys = ["square_avg"]
    if momentum_value > 0:
        keys.append("momentum_buffer")
    if is_centered:
        keys.append("grad_avg")
    step, arrays = _state(state, tuple(keys), param, "rmsprop_step")
    return _RMSprop(
        param,
        grad,
        step,
        arrays,
        lr_value,
        alpha_value,
        eps_value,
        decay,
        momentum_value,
        is_centered,
        check_bool("maximize", maximize),
    )


def rmsprop_step_loop(
    param: FloatArray,
    grad: FloatArray,
    state: State | None = None,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
) -> tuple[FloatArray, State]:
    """One RMSprop step, element by element. Returns ``(new_param, new_state)``.

    For each element::

        g ← ±g + λθ;  v ← a v + (1 − a) g²;  ḡ ← a ḡ + (1 − a) g (centered)
        avg = √(v − ḡ²) + ε (centered) or √v + ε
        b ← μ b + g / avg,  θ ← θ − α b   (μ > 0),   else θ ← θ − α g / avg

    ``state``: ``None`` before the first step, then ``{"step", "square_avg"}``
    plus ``"momentum_buffer"`` when ``momentum > 0`` and ``"grad_avg"`` when
    ``centered``, torch's keys. ``alpha`` must lie in [0, 1] (torch only checks
    that it is not negative).
    """
    a = _check_rmsprop(
        param, grad, state, lr, alpha, eps, weight_decay, momentum, centered, maximize
    )
    new_param = np.empty_like(a.param)
    new = {key: np.empty_like(a.param) for key in a.arrays}
    for idx in np.ndindex(a.param.shape):
        theta = float(a.param[idx])
        g = float(a.grad[idx])
        if a.maximize:
            g = -g
        if a.weight_decay != 0:
            g += a.weight_decay * theta
        new["square_avg"][idx] = (
            a.alpha * float(a.arrays["square_avg"][idx]) + (1 - a.alpha) * g * g
        )
        v = float(new["square_avg"][idx])
        if a.centered:
            new["grad_avg"][idx] = a.alpha * float(a.arrays["grad_avg"][idx]) + (1 - a.alpha) * g
            mean = float(new["grad_avg"][idx])
            avg = _sqrt(v - mean * mean) + a.eps
        else:
            avg = math.sqrt(v) + a.eps
        direction = _quotient(g, avg)
        if a.momentum > 0:
            new["momentum_buffer"][idx] = (
                a.momentum * float(a.arrays["momentum_buffer"][idx]) + direction
            )
            direction = float(new["momentum_buffer"][idx])
        new_param[idx] = theta - a.lr * direction
    return new_param, {"step": a.step + 1, **new}


def rmsprop_step_vectorized(
    param: FloatArray,
    grad: FloatArray,
    state: State | None = None,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
) -> tuple[FloatArray, State]:
    """One RMSprop step on whole arrays, in torch's order (``_single_tensor_rmsprop``).

    Returns ``(new_param, new_state)``; see :func:`rmsprop_step_loop`.
    """
    a = _check_rmsprop(
        param, grad, state, lr, alpha, eps, weight_decay, momentum, centered, maximize
    )
    dtype = a.param.dtype.type
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        g = np.negative(a.grad) if a.maximize else a.grad
        if a.weight_decay != 0:
            g = g + dtype(a.weight_decay) * a.param
        square_avg = a.arrays["square_avg"] * dtype(a.alpha)
        square_avg += dtype(1 - a.alpha) * g * g
        new: State = {"step": a.step + 1, "square_avg": square_avg}
        if a.centered:
            grad_avg = _lerp(a.arrays["grad_avg"], g, 1 - a.alpha)
            avg = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = np.sqrt(square_avg)
        avg += dtype(a.eps)
        if a.momentum > 0:
            buffer = a.arrays["momentum_buffer"] * dtype(a.momentum) + g / avg
            new["momentum_buffer"] = buffer
            new_param = a.param + dtype(-a.lr) * buffer
        else:
            update = dtype(-a.lr) * g
            update /= avg
            new_param = a.param + update
    if a.centered:
        new["grad_avg"] = grad_avg
    return _arrays(new_param, new)
