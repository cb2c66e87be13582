"""Batch normalization in training mode, printed from its loop code on symbols.

The loops (:func:`reference_impl.loops.batch_norm` and its backward) compute,
per channel, the statistics ``μ = Σ X / n``, ``σ² = Σ (X − μ)² / n`` and
``r = 1/√(σ² + ε)``, then ``Z_i = γ·(X_i − μ)·r + β``. Written out in the
inputs, every equation would repeat those sums; as a derivation does, the
printer names them: the loop's own expression trees for μ, σ², r and
``x̂_i = (X_i − μ)·r`` are replaced by the symbols, and listed first as
equations of their own. The gradient then reads as the derivation gives it,
``dX_i = r·(n·g_i − Σ_j g_j − x̂_i·Σ_j g_j·x̂_j)/n`` with ``g_i = dZ_i·γ``,
that is ``γ·r·(dZ_i − mean(dZ) − x̂_i·mean(dZ·x̂))``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy

from reference_impl import loops
from reference_impl.normalization import (
    _channel_sets,
    _set_moments_loop,
    _set_statistics_loop,
)
from reference_impl.symbolic._core import Equations, Names, ObjectArray, check_size, finished, run

#: the order of the factors in a printed product
ROLES = ("dZ", "r", "γ", "X", "x̂", "μ", "σ²", "ε", "β", "Z")


def _per_channel(name: str, value: object, channels: int) -> bool:
    """Whether ``weight``/``bias`` is present: True (the default), False/None, or shape (C,)."""
    if value is None or value is False:
        return False
    if value is True:
        return True
    shape = value if isinstance(value, tuple) else (value,)
    if shape != (channels,):
        raise ValueError(f"{name} must have shape ({channels},) (one per channel), got {value!r}")
    return True


def batch_norm_equations(**arguments: Any) -> Equations:
    """``batch_norm`` in training mode: ``x`` a shape (N, C[, L[, W]]); γ, β per channel."""
    from reference_impl.symbolic._formulas import _shape

    if "x" not in arguments:
        raise TypeError("batch_norm needs the shape of x, e.g. x=(2, 1)")
    x_shape = _shape("x", arguments.pop("x"))
    training = arguments.pop("training", True)
    if training is not True:
        raise ValueError(
            "training must be True: the symbolic batch_norm prints training mode (in eval mode "
            "the running statistics are constants and dx = γ·dZ/√(running_var + ε))"
        )
    for name in ("running_mean", "running_var"):
        if arguments.pop(name, None) is not None:
            raise TypeError(f"{name} plays no part in training mode; leave it out")
    eps = arguments.pop("eps", 1e-5)
    momentum = arguments.pop("momentum", 0.1)
    weight, bias = arguments.pop("weight", True), arguments.pop("bias", True)
    for name in arguments:
        raise TypeError(
            f"{name} is not an argument of batch_norm (its arguments: x, running_mean, "
            "running_var, weight, bias, training, momentum, eps)"
        )
    check_size("x", x_shape)
    # the numeric function validates every argument with its own messages
    channels = loops.batch_norm(np.zeros(x_shape), training=True, momentum=momentum, eps=eps).shape[
        1
    ]
    has_weight = _per_channel("weight", weight, channels)
    has_bias = _per_channel("bias", bias, channels)

    names = Names()
    role = {r: i for i, r in enumerate(ROLES)}
    x = names.array("X", x_shape, role["X"])
    gamma = names.array("γ", (channels,), role["γ"], latex=r"\gamma") if has_weight else None
    beta = names.array("β", (channels,), role["β"], latex=r"\beta") if has_bias else None
    mu = names.array("μ", (channels,), role["μ"], latex=r"\mu")
    var = names.array("σ²_", (channels,), role["σ²"], latex=r"\sigma^2")
    rstd = names.array("r", (channels,), role["r"], latex="r")
    xhat = names.array("x̂", x_shape, role["x̂"], latex=r"\hat{x}")
    z = names.array("Z", x_shape, role["Z"])
    dz = names.array("Z", x_shape, role["dZ"], gradient=True)
    epsilon = sympy.Symbol("ε")
    names.latex[epsilon] = r"\varepsilon"
    names.rank[epsilon] = (role["ε"],)

    hyper = {"training": True, "momentum": momentum, "eps": eps}
    raw_out = run(loops.batch_norm, x, weight=gamma, bias=beta, **hyper)
    raw_dx, raw_dgamma, raw_dbeta = run(
        loops.batch_norm_backward, dz, x, weight=gamma, bias=beta, **hyper
    )

    # the loop's own trees for μ, σ², r and x̂, each mapped to its symbol
    named: dict[sympy.Basic, sympy.Expr] = {}
    defined: dict[sympy.Symbol, sympy.Basic] = {}
    for c, (members, _) in enumerate(_channel_sets(x_shape)):
        mean_tree, var_tree = run(_set_moments_loop, x, members)
        _, rstd_tree = run(_set_statistics_loop, x, members, eps)
        defined[mu[c]] = mean_tree
        defined[var[c]] = var_tree.xreplace({mean_tree: mu[c]})
        defined[rstd[c]] = rstd_tree.xreplace({var_tree: var[c]})
        with sympy.evaluate(False):
            for i in members:
                xhat_tree = (x[i] - mean_tree) * rstd_tree
                defined[xhat[i]] = (x[i] - mu[c]) * rstd[c]
                named[xhat_tree] = xhat[i]
            # a loop that subtracts μ builds its negation (SymPy folds the sign in)
            named[-mean_tree] = -mu[c]
        named[rstd_tree] = rstd[c]
        named[mean_tree] = mu[c]
    eps_value = sympy.Float(eps)

    def equation(value: Any, named_here: bool = True) -> sympy.Expr:
        expr = sympy.sympify(value)
        if named_here:
            expr = expr.xreplace(named)
        return finished(expr.xreplace({eps_value: epsilon}))

    forward: dict[sympy.Symbol, sympy.Expr] = {}
    for c in range(channels):
        forward[mu[c]] = equation(defined[mu[c]], named_here=False)
        forward[var[c]] = equation(defined[var[c]])
        forward[rstd[c]] = equation(defined[rstd[c]])
    for i in np.ndindex(*x_shape):
        forward[xhat[i]] = equation(defined[xhat[i]])
    for i in np.ndindex(*x_shape):
        forward[z[i]] = equation(raw_out[i])

    gradients: dict[sympy.Symbol, sympy.Expr] = {}
    sections: list[tuple[str, tuple[sympy.Symbol, ...]]] = [
        ("Statistics (per channel)", (*mu.flat, *var.flat, *rstd.flat)),
        ("Forward", (*xhat.flat, *z.flat)),
    ]
    symbols: dict[str, ObjectArray] = {"x": x, "output": z, "grad_output": dz}
    for name, letter, raw, array, latex in (
        ("x", "X", raw_dx, x, None),
        ("weight", "γ", raw_dgamma, gamma, r"\gamma"),
        ("bias", "β", raw_dbeta, beta, r"\beta"),
    ):
        if raw is None or array is None:
            continue
        lhs = names.array(letter, array.shape, role[letter], latex=latex, gradient=True)
        for i in np.ndindex(*array.shape):
            gradients[lhs[i]] = equation(raw[i])
        sections.append((f"Gradient with respect to {name}", tuple(lhs.flat)))
        symbols[name] = array
        symbols[f"grad_{name}"] = lhs
    symbols.update({"mean": mu, "var": var, "rstd": rstd, "xhat": xhat})

    given = "×".join(map(str, x_shape))
    affine = " + β" if has_bias else ""
    scale = "γ·" if has_weight else ""
    n = int(np.prod(x_shape)) // channels
    return Equations(
        title=f"batch_norm(x: {given}, training=True, eps={eps!r})",
        forward=forward,
        gradients=gradients,
        sections=tuple(sections),
        names=names,
        legend=(
            f"Z = {scale}(X − μ)·r{affine} per channel, training mode: μ and the biased σ² "
            f"of each channel over its n = {n} values, r = 1/√(σ² + ε), x̂ = (X − μ)·r.",
            f"X{'…' if x.size > 1 else ''}: x (indices: sample, channel"
            f"{', position' * (len(x_shape) - 2)}); ε = eps = {eps!r}",
            "dZ: the upstream gradient ∂L/∂Z; dV stands for ∂L/∂V; indices are 1-based",
            "dX_i = γ·r·(dZ_i − mean(dZ) − x̂_i·mean(dZ·x̂)) over the channel's values",
        ),
        symbols=symbols,
    )
