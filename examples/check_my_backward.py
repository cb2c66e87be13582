"""Check a hand-derived backward against torch.autograd with ``reference_impl.testing``.

Run it from anywhere once the package is installed with its test extra
(``pip install "reference-impl[test]"``, or ``pip install -e ".[test]"`` in a
clone)::

    python examples/check_my_backward.py

Three candidates, as a student, a teacher or lecture notes might write them:

1. ``my_conv2d_backward``: a textbook conv2d backward written for stride 1,
   run with a larger stride. It forgets to dilate the upstream gradient, so
   it is wrong for stride > 1 only. The checker says so ("agrees on every case
   without stride > 1") and names the erratum it behaves like.
2. ``notes_conv2d_backward``: a right backward written for weights laid out
   (C_in, C_out, kh, kw), as some lecture notes write them; an adapter turns
   torch's (C_out, C_in, kh, kw) layout into it and back.
3. ``conv_backward_naive(dout, cache)``: the interface of a well-known course
   assignment, with a ``conv_param`` dict of an int stride and an int pad; an
   adapter builds the cache, and ``fixed`` draws the int stride and pad from
   Hypothesis strategies so that every case is one the function supports.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from reference_impl.testing import FormulaMismatch, check_formula

Array = np.ndarray[Any, Any]


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _pad(x: Array, ph: int, pw: int) -> Array:
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


# ----------------------------------------------------------------- 1. a stride slip


def my_conv2d_backward(
    grad_output: Array, x: Array, weight: Array, bias: Array | None, stride: Any, padding: Any
) -> tuple[Array, Array, Array | None]:
    """dX = full correlation of δ with the rotated kernel; dW = x̄ ⋆ δ: right for stride 1 only.

    The slip: δ is used as it is, without the stride − 1 zeros between its
    entries that a strided forward pass implies.
    """
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    kh, kw = weight.shape[-2:]
    x_bar = _pad(x, ph, pw)
    out_h, out_w = grad_output.shape[-2:]
    grad_weight = np.zeros_like(weight)
    grad_x_bar = np.zeros_like(x_bar)
    for i in range(kh):
        for j in range(kw):
            # the slip: rows i, i + 1, ... instead of i, i + sh, ...
            patch = x_bar[:, :, i : i + out_h, j : j + out_w]
            grad_weight[:, :, i, j] = np.einsum("nohw,nchw->oc", grad_output, patch)
            grad_x_bar[:, :, i : i + out_h * sh : sh, j : j + out_w * sw : sw] += np.einsum(
                "nohw,oc->nchw", grad_output, weight[:, :, i, j]
            )
    grad_x = grad_x_bar[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]]
    grad_bias = None if bias is None else grad_output.sum(axis=(0, 2, 3))
    return grad_x, grad_weight, grad_bias


# ------------------------------------------------------ 2. another weight layout


def notes_conv2d_backward(
    grad_output: Array, x: Array, w_io: Array, stride: int
) -> tuple[Array, Array]:
    """A right backward, weights as (C_in, C_out, kh, kw), no padding, no bias."""
    kh, kw = w_io.shape[-2:]
    out_h, out_w = grad_output.shape[-2:]
    grad_w = np.zeros_like(w_io)
    grad_x = np.zeros_like(x)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i, i + (out_h - 1) * stride + 1, stride)
            cols = slice(j, j + (out_w - 1) * stride + 1, stride)
            grad_w[:, :, i, j] = np.einsum("nchw,nohw->co", x[:, :, rows, cols], grad_output)
            grad_x[:, :, rows, cols] += np.einsum("nohw,co->nchw", grad_output, w_io[:, :, i, j])
    return grad_x, grad_w


def notes_adapter(grad_output: Array, x: Array, weight: Array, stride: Any) -> tuple[Array, Array]:
    """torch's layout in, torch's layout out: the notes' function in between."""
    grad_x, grad_w_io = notes_conv2d_backward(
        grad_output, x, weight.transpose(1, 0, 2, 3), _pair(stride)[0]
    )
    return grad_x, grad_w_io.transpose(1, 0, 2, 3)


# ------------------------------------------------ 3. a (dout, cache) interface


def conv_backward_naive(dout: Array, cache: tuple[Any, ...]) -> tuple[Array, Array, Array]:
    """The assignment interface: cache = (x, w, b, conv_param), conv_param = {stride, pad}."""
    x, w, _, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    x_bar = _pad(x, pad, pad)
    out_h, out_w = dout.shape[-2:]
    kh, kw = w.shape[-2:]
    dx_bar, dw = np.zeros_like(x_bar), np.zeros_like(w)
    for a in range(out_h):
        for c in range(out_w):
            window = x_bar[:, :, a * stride : a * stride + kh, c * stride : c * stride + kw]
            dw += np.einsum("nf,nchw->fchw", dout[:, :, a, c], window)
            dx_bar[:, :, a * stride : a * stride + kh, c * stride : c * stride + kw] += np.einsum(
                "nf,fchw->nchw", dout[:, :, a, c], w
            )
    dx = dx_bar[:, :, pad : pad + x.shape[2], pad : pad + x.shape[3]]
    return dx, dw, dout.sum(axis=(0, 2, 3))


def cache_adapter(
    grad_output: Array, x: Array, weight: Array, bias: Array, stride: int, padding: int
) -> tuple[Array, Array, Array]:
    return conv_backward_naive(grad_output, (x, weight, bias, {"stride": stride, "pad": padding}))


def main() -> None:
    print("1. a conv2d backward written for stride 1\n")
    try:
        check_formula("conv2d", backward=my_conv2d_backward, fixed={"padding": st.integers(0, 2)})
    except FormulaMismatch as mismatch:
        print(mismatch)

    print("\n2. weights as (C_in, C_out, kh, kw): an adapter\n")
    print(check_formula("conv2d", backward=notes_adapter, fixed={"stride": st.integers(1, 3)}))

    print("\n3. conv_backward_naive(dout, cache): an adapter and drawn int hyper-parameters\n")
    fixed = {"stride": st.integers(1, 3), "padding": st.integers(0, 2)}
    print(check_formula("conv2d", backward=cache_adapter, fixed=fixed, exclude=["no bias"]))


if __name__ == "__main__":
    main()
