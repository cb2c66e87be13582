"""Wrong optimizer steps that the trajectory tests must reject.

The errata catalog (:mod:`reference_impl.testing.errata`) holds wrong forward
and backward passes, checked through ``check_formula``; an optimizer step is
neither, so its wrong versions live here and ``oracle_tests/test_optim.py``
searches, with ``hypothesis.find`` over the trajectory strategy of each
optimizer, for a run on which each one leaves torch's trajectory by more than
the derived drift bound. README's "Optimizer errata" table lists them (a
test keeps the two in step).

Most are one switch away from :func:`adam_like_step` or
:func:`rmsprop_like_step`, whole-array steps that are right with the default
switches (checked against torch in ``test_optim.py``): each erratum then
differs from a right step by exactly the mistake it is named after.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]
State = dict[str, Any]


@dataclass(frozen=True)
class StepErratum:
    """A wrong step of the optimizer ``formula``, called like the reference step."""

    name: str
    formula: str
    source: str
    mistake: str
    step: Callable[..., tuple[Array, State]]

    def __str__(self) -> str:
        return self.name


def adam_like_step(
    param: Array,
    grad: Array,
    state: State | None = None,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
    *,
    decoupled: bool = False,
    eps_inside_root: bool = False,
    count_before_increment: bool = False,
    max_of_corrected: bool = False,
    decay_times_lr: bool = True,
) -> tuple[Array, State]:
    """Adam (``decoupled=False``) or AdamW, textbook form, with one switch per known mistake.

    With the default switches this is torch's step (no argument checks).

    * ``eps_inside_root``: ``denom = √(v̂ + ε)`` instead of ``√v̂ + ε``.
    * ``count_before_increment``: the bias corrections use the step count
      before it is incremented, ``1 − βᵗ⁻¹``.
    * ``max_of_corrected``: AMSGrad keeps the maximum of the bias-corrected
      ``v̂ = v/(1 − β₂ᵗ)`` and divides by its root, not corrected again.
    * ``decay_times_lr=False``: AdamW's decay ``θ(1 − λ)`` instead of ``θ(1 − αλ)``.
    """
    dtype = param.dtype.type
    beta1, beta2 = betas
    if state is None:
        state = {"step": 0, "exp_avg": np.zeros_like(param), "exp_avg_sq": np.zeros_like(param)}
        if amsgrad:
            state["max_exp_avg_sq"] = np.zeros_like(param)
    t = int(state["step"]) + 1
    count = t - 1 if count_before_increment else t
    with np.errstate(all="ignore"):
        g = -grad if maximize else grad.copy()
        theta = param.copy()
        if weight_decay != 0:
            if decoupled:
                theta = theta * dtype(1 - (lr if decay_times_lr else 1.0) * weight_decay)
            else:
                g = g + dtype(weight_decay) * theta
        m = dtype(beta1) * state["exp_avg"] + dtype(1 - beta1) * g
        v = dtype(beta2) * state["exp_avg_sq"] + dtype(1 - beta2) * g * g
        correction1 = np.float64(1) - np.float64(beta1) ** count
        correction2 = np.float64(1) - np.float64(beta2) ** count
        new: State = {"step": t, "exp_avg": m, "exp_avg_sq": v}
        second = v / dtype(correction2)
        if amsgrad:
            if max_of_corrected:
                second = new["max_exp_avg_sq"] = np.maximum(state["max_exp_avg_sq"], second)
            else:
                new["max_exp_avg_sq"] = np.maximum(state["max_exp_avg_sq"], v)
                second = new["max_exp_avg_sq"] / dtype(correction2)
        denom = np.sqrt(second + dtype(eps)) if eps_inside_root else np.sqrt(second) + dtype(eps)
        new_param = theta - dtype(lr / correction1) * m / denom
    return _arrays(new_param, new)


def _arrays(new_param: Any, new: State) -> tuple[Array, State]:
    return np.asarray(new_param), {k: v if k == "step" else np.asarray(v) for k, v in new.items()}


def rmsprop_like_step(
    param: Array,
    grad: Array,
    state: State | None = None,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
    *,
    eps_inside_root: bool = False,
) -> tuple[Array, State]:
    """RMSprop, textbook form; ``eps_inside_root``: ``avg = √(v + ε)`` instead of ``√v + ε``."""
    dtype = param.dtype.type
    if state is None:
        state = {"step": 0, "square_avg": np.zeros_like(param)}
        if momentum > 0:
            state["momentum_buffer"] = np.zeros_like(param)
        if centered:
            state["grad_avg"] = np.zeros_like(param)
    with np.errstate(all="ignore"):
        g = -grad if maximize else grad.copy()
        if weight_decay != 0:
            g = g + dtype(weight_decay) * param
        v = dtype(alpha) * state["square_avg"] + dtype(1 - alpha) * g * g
        new: State = {"step": int(state["step"]) + 1, "square_avg": v}
        second = v
        if centered:
            mean = dtype(alpha) * state["grad_avg"] + dtype(1 - alpha) * g
            second = v - mean * mean
        avg = np.sqrt(second + dtype(eps)) if eps_inside_root else np.sqrt(second) + dtype(eps)
        direction = g / avg
        if momentum > 0:
            direction = new["momentum_buffer"] = (
                dtype(momentum) * state["momentum_buffer"] + direction
            )
        if centered:
            new["grad_avg"] = mean
        new_param = param - dtype(lr) * direction
    return _arrays(new_param, new)


def adam_eps_inside_root(param: Array, grad: Array, *args: Any, **kwargs: Any) -> Any:
    """Adam with ``ε`` inside the square root: ``m̂ / √(v̂ + ε)``.

    Flux.jl pull request #224 (commit "moved epsilon into sqrt", April 2018)
    wrote its Adam denominator as ``√(v̂ + ε)``; pull request #448 (November
    2018) questions it against Kingma and Ba's Algorithm 1, which has
    ``√v̂ + ε`` as torch does. ``√ε`` is far larger than ``ε`` (``10⁻⁴`` for the
    default ``10⁻⁸``), so every step with a small ``v̂`` is shortened.
    Counterexample (shrunk): float64, ``θ = 0`` (0-d), default
    hyper-parameters, seven zero gradients then ``0.0625``: after step 8 torch
    has ``θ = −4.957540e-4``, the wrong step ``−4.957492e-4`` (``√(v̂ + ε)``
    exceeds ``√v̂ + ε`` by ``ε/(2√v̂) − ε``, about ``3e-8``, on ``√v̂ ≈ 0.1``).
    """
    return adam_like_step(param, grad, *args, eps_inside_root=True, **kwargs)


def adam_bias_correction_before_increment(
    param: Array, grad: Array, *args: Any, **kwargs: Any
) -> Any:
    """Adam whose bias corrections use the step count before it is incremented.

    ``1 − β₁ᵗ⁻¹`` and ``1 − β₂ᵗ⁻¹``: on the first step both are ``1 − β⁰ = 0``,
    so the step is ``0/0`` or ``∞`` (NumPy's ``nan`` and ``inf``), and later
    steps are over-corrected.
    Counterexample (shrunk): the first step, whatever the data: ``θ = 0``
    and a zero gradient give ``θ₁ = nan`` (``0 · (0/0)``) where torch keeps 0.
    """
    return adam_like_step(param, grad, *args, count_before_increment=True, **kwargs)


def adam_amsgrad_max_of_corrected(param: Array, grad: Array, *args: Any, **kwargs: Any) -> Any:
    """AMSGrad taking the maximum over the bias-corrected second moment ``v̂``.

    torch's documentation of ``Adam`` wrote ``v̂_max = max(v̂_max, v̂)`` while
    the code keeps ``max(v_max, v)`` of the raw ``v`` and divides it by the
    current ``1 − β₂ᵗ`` afterwards (PyTorch issue #142323). The two differ as
    soon as ``v`` falls: the raw maximum is corrected by a factor that shrinks
    with ``t``, the corrected maximum is frozen at its largest ``v̂``.
    Counterexample (shrunk): float64, ``θ = 0`` (0-d), amsgrad, six zero
    gradients, ``0.0625``, then 0: after step 8 torch has ``θ = −9.525557e-4``,
    the wrong step ``−9.238433e-4`` (``v`` fell at step 8; torch divides the
    raw maximum by ``1 − β₂⁸``, the wrong step keeps step 7's ``v̂``).
    """
    return adam_like_step(param, grad, *args, max_of_corrected=True, **kwargs)


def adamw_decay_without_lr(param: Array, grad: Array, *args: Any, **kwargs: Any) -> Any:
    """AdamW decaying by ``θ(1 − λ)``, the decay not multiplied by the learning rate.

    Loshchilov and Hutter's Algorithm 2 multiplies ``λθ`` by the schedule
    multiplier only; PyTorch issue #38853 asks torch to drop ``α`` from its
    ``θ(1 − αλ)`` accordingly, and torch keeps ``α``. A reference written from
    the paper with a constant schedule decays ``1/α`` times too fast.
    Counterexample (shrunk): float64, ``θ = 0`` (0-d), ``λ = 0.01``,
    ``α = 10⁻³``, six zero gradients, ``0.0625``, then 0: step 7 moves ``θ`` to
    ``−5.06e-4``, and step 8 decays it by ``1 − λ`` instead of ``1 − αλ``:
    ``−9.477152e-4`` against torch's ``−9.527739e-4``.
    """
    return adam_like_step(param, grad, *args, decoupled=True, decay_times_lr=False, **kwargs)


def adamw_with_l2_decay(param: Array, grad: Array, *args: Any, **kwargs: Any) -> Any:
    """AdamW whose ``weight_decay`` is added to the gradient (L2), as Adam's is.

    The decay then passes through ``m̂/√v̂`` and shrinks weights with large
    gradients less: the coupling AdamW exists to remove.
    Counterexample (shrunk): as for ``adamw-decay-without-lr``: after step
    8, ``−9.527388e-4`` against torch's ``−9.527739e-4``: the decay ``λθ``,
    divided by ``√v̂`` with the gradient, shrinks ``θ`` less.
    """
    return adam_like_step(param, grad, *args, decoupled=False, **kwargs)


def adam_with_decoupled_decay(param: Array, grad: Array, *args: Any, **kwargs: Any) -> Any:
    """Adam whose ``weight_decay`` shrinks the weight directly (AdamW's decay).

    torch's ``Adam`` adds ``λθ`` to the gradient before the moving averages.
    Counterexample (shrunk): float64, ``θ = 0`` (0-d), ``λ = 1/64``, six
    zero gradients, ``0.0625``, then 0: after step 8, ``−9.527711e-4`` against
    torch's ``−9.527162e-4``.
    """
    return adam_like_step(param, grad, *args, decoupled=True, **kwargs)


def rmsprop_eps_inside_root(param: Array, grad: Array, *args: Any, **kwargs: Any) -> Any:
    """RMSprop dividing by ``√(v + ε)`` instead of ``√v + ε``.

    Keras issue #4356 ("RMSProp looks wrong", November 2016) asks for ``ε``
    inside the root, and Flux.jl pull request #224 (commit "moved epsilon into
    sqrt", April 2018) moved it there; torch keeps it outside.
    Counterexample (shrunk): float64, ``θ = 0`` (0-d), default
    hyper-parameters (``α = 0.01``, ``a = 0.99``, ``ε = 10⁻⁸``), seven zero
    gradients then ``0.0625``: torch's step is ``−0.0999998``, the wrong one
    ``−0.0999872`` (``v = 3.9e-5``, so ``√(v + ε) − √v ≈ 8e-7``, not ``10⁻⁸``).
    """
    return rmsprop_like_step(param, grad, *args, eps_inside_root=True, **kwargs)


STEP_ERRATA = [
    StepErratum(
        name="adam-eps-inside-root",
        formula="adam_step",
        source="Flux.jl pull request #224, questioned in #448",
        mistake="denominator √(v̂ + ε) instead of √v̂ + ε",
        step=adam_eps_inside_root,
    ),
    StepErratum(
        name="adam-bias-correction-before-increment",
        formula="adam_step",
        source="classic slip",
        mistake="bias corrections 1 − βᵗ⁻¹ with the step count before it is incremented",
        step=adam_bias_correction_before_increment,
    ),
    StepErratum(
        name="amsgrad-max-of-corrected",
        formula="adam_step",
        source="PyTorch issue #142323",
        mistake="AMSGrad keeps max(v̂_max, v̂) of the bias-corrected v instead of max(v_max, v)",
        step=adam_amsgrad_max_of_corrected,
    ),
    StepErratum(
        name="adamw-decay-without-lr",
        formula="adamw_step",
        source="PyTorch issue #38853",
        mistake="decoupled decay θ(1 − λ) instead of torch's θ(1 − αλ)",
        step=adamw_decay_without_lr,
    ),
    StepErratum(
        name="adamw-l2-decay",
        formula="adamw_step",
        source="classic slip",
        mistake="AdamW's weight decay added to the gradient (L2) instead of decoupled",
        step=adamw_with_l2_decay,
    ),
    StepErratum(
        name="adam-decoupled-decay",
        formula="adam_step",
        source="classic slip",
        mistake="Adam's weight decay applied to the weight (decoupled) instead of the gradient",
        step=adam_with_decoupled_decay,
    ),
    StepErratum(
        name="rmsprop-eps-inside-root",
        formula="rmsprop_step",
        source="Keras issue #4356; Flux.jl pull request #224",
        mistake="denominator √(v + ε) instead of √v + ε",
        step=rmsprop_eps_inside_root,
    ),
]
