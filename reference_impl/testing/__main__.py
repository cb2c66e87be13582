"""``python -m reference_impl.testing FORMULA --backward module:function ...``

Prints the verdict of :func:`reference_impl.testing.check_formula`; exits 0
when the candidate agrees with torch, 1 when it does not, 2 on a usage error
(unknown formula, unimportable function, bad ``--fixed``).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from typing import Any

from reference_impl.testing.checker import FormulaMismatch, check_formula


class UsageError(Exception):
    """A command-line argument that cannot be used."""


def load(target: str) -> Callable[..., Any]:
    """``package.module:function`` (or ``path/to/file.py:function``) → the function."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise UsageError(f"{target!r}: write the candidate as module:function")
    try:
        if module_name.endswith(".py"):
            spec = importlib.util.spec_from_file_location("candidate_module", module_name)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {module_name}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except Exception as error:
        raise UsageError(f"cannot import {module_name!r}: {error}") from error
    function = module
    for part in attribute.split("."):
        if not hasattr(function, part):
            raise UsageError(f"{module_name!r} has no attribute {attribute!r}")
        function = getattr(function, part)
    if not callable(function):
        raise UsageError(f"{target!r} is not callable")
    return function


def parse_fixed(items: Sequence[str]) -> dict[str, Any]:
    """``name=value`` pairs, each value a Python literal (``1``, ``(2, 1)``, ``None``) or a word."""
    fixed: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--fixed {item!r}: write name=value")
        try:
            fixed[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            fixed[name] = text  # a bare word: a string such as same or float32
    return fixed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reference_impl.testing",
        description="Check your own forward or backward of a formula against torch.autograd.",
    )
    parser.add_argument("formula", help="a public formula name, e.g. conv2d or max_pool2d")
    parser.add_argument("--forward", metavar="MODULE:FUNCTION", help="candidate forward")
    parser.add_argument("--backward", metavar="MODULE:FUNCTION", help="candidate backward")
    parser.add_argument(
        "--fixed", nargs="*", default=[], metavar="NAME=VALUE", help="arguments held fixed"
    )
    parser.add_argument("--require", nargs="*", default=[], metavar="CORNER")
    parser.add_argument("--exclude", nargs="*", default=[], metavar="CORNER")
    parser.add_argument("--max-examples", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        if not args.forward and not args.backward:
            raise UsageError("give --forward and/or --backward")
        forward = load(args.forward) if args.forward else None
        backward = load(args.backward) if args.backward else None
        fixed = parse_fixed(args.fixed)
        result = check_formula(
            args.formula,
            forward=forward,
            backward=backward,
            fixed=fixed,
            require=args.require,
            exclude=args.exclude,
            max_examples=args.max_examples,
        )
    except FormulaMismatch as mismatch:
        print(mismatch)
        return 1
    except (UsageError, ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
