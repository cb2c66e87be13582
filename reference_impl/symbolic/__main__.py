"""The command: ``python -m reference_impl.symbolic conv2d --x 3x3 --weight 2x2 [--latex]``."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any

from reference_impl.symbolic._core import MAX_ELEMENTS
from reference_impl.symbolic._formulas import FORMS, equations
from reference_impl.symbolic._mlp import MAX_UNITS, mlp

USAGE = f"""\
usage: python -m reference_impl.symbolic FORMULA --ARGUMENT VALUE ... [--latex | --markdown]
       python -m reference_impl.symbolic mlp [--inputs N] [--hidden N] [--latex | --markdown]

Prints the forward and gradient equations, element by element, that the loop
implementation (reference_impl.loops) evaluates, by running it on symbols.

FORMULA: {", ".join(FORMS)};
  mlp: the δ recursion of a two-layer perceptron.
batch_norm prints training mode: --x 2x1 (N x C, or N x C x L ...); weight γ and bias β
  per channel are given by default (--weight none, --bias none to leave one out); the
  statistics μ, σ², r = 1/√(σ² + ε) and x̂ are named and listed first.
lstm_cell prints one step for one example: --x 1 --hx 1 (I and H); both biases unless
  --bias false; the pre-activations a, the gates i, f, g, o and c' are named.
Arrays are given by their shape: --x 3x3 --weight 2x2 (for conv2d, 2-D shapes for both
  mean N = C_in = C_out = 1; for the pools, a 2-D x means N = C = 1); --bias alone is
  a bias of the right shape. At most {MAX_ELEMENTS} elements per array, and
  {MAX_UNITS} units per mlp layer: the list is for reading.
Hyper-parameters as for the numeric function: --stride 2, --padding 1 or 1,0 or
  1,0,1,0 or same, --dilation 2, --kernel-size 2, --ceil-mode, --axis 0, ...
max_pool2d (and, optionally, relu) compare values: --x-values "1 2 3; 4 5 6; 7 8 9"
  (x's numbers in row-major order) or --seed N (single digits drawn at random).
Output: plain text (default), --latex (amsmath align blocks), --markdown (tables).

example: python -m reference_impl.symbolic conv2d --x 3x3 --weight 2x2
"""

_INT = re.compile(r"[+-]?\d+")


class _Help(Exception):
    """The command line asks for the usage text."""


def _shape(text: str) -> tuple[int, ...]:
    parts = re.split(r"[x×,]", text.strip())
    if not all(_INT.fullmatch(p.strip()) for p in parts):
        raise ValueError(f"a shape such as 3x3 was expected, got {text!r}")
    return tuple(int(p) for p in parts)


def _value(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    if _INT.fullmatch(lowered):
        return int(lowered)
    parts = [p.strip() for p in re.split(r"[,x×]", lowered)]
    if len(parts) > 1 and all(_INT.fullmatch(p) for p in parts):
        return tuple(int(p) for p in parts)
    return text


def _numbers(text: str) -> list[float]:
    parts = [p for p in re.split(r"[\s,;]+", text.strip()) if p]
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"x_values must be numbers, got {text!r}") from None


def parse(argv: Sequence[str]) -> tuple[str, dict[str, Any], str]:
    """``(formula, arguments, output format)`` from the command line."""
    if not argv or argv[0] in ("-h", "--help"):
        raise _Help
    formula, rest = argv[0], list(argv[1:])
    arrays = FORMS[formula].arrays if formula in FORMS else {}
    arguments: dict[str, Any] = {}
    style = "text"
    while rest:
        token = rest.pop(0)
        if not token.startswith("--"):
            raise ValueError(f"expected an option such as --x, got {token!r}")
        name = token[2:].replace("-", "_")
        if name in ("latex", "markdown", "text"):
            style = name
            continue
        if name in ("h", "help"):
            raise _Help
        has_value = bool(rest) and not (rest[0].startswith("--") and not _INT.fullmatch(rest[0]))
        text = rest.pop(0) if has_value else None
        if text is None:
            arguments[name] = True  # a flag: --bias, --ceil-mode
        elif name in arrays and text.strip().lower() not in ("none", "true", "false"):
            arguments[name] = _shape(text)
        elif name == "x_values":
            arguments[name] = _numbers(text)
        else:
            arguments[name] = _value(text)
    return formula, arguments, style


def main(argv: Sequence[str] | None = None) -> int:
    """Print the equations; 2 with a message on standard error for a bad command line."""
    try:
        formula, arguments, style = parse(sys.argv[1:] if argv is None else argv)
    except _Help:
        sys.stdout.write(USAGE)
        return 0
    except (TypeError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        result = mlp(**arguments) if formula == "mlp" else equations(formula, **arguments)
    except (TypeError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(getattr(result, style)())
    return 0


if __name__ == "__main__":
    sys.exit(main())
