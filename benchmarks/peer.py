"""A NumPy peer: MyGrad's ``conv_nd`` and ``max_pool``, forward + backward on the same problems.

MyGrad (``pip install mygrad``, the ``bench`` extra) is an autograd library on
NumPy arrays, so it measures what a NumPy implementation of the same layers
costs elsewhere. Its layers are narrower than torch's: ``conv_nd`` has
symmetric padding, no groups and needs the windows to tile the padded input
exactly, ``max_pool`` has neither padding nor dilation. The benchmark adapts
each problem the way a MyGrad user would, without charging MyGrad for it:

* a problem MyGrad cannot express directly gets its input padded (zeros for
  conv2d, −∞ for max pooling) and cropped to the rows and columns the windows
  reach, once, outside the timed step; MyGrad then differentiates with
  respect to that padded input;
* grouped convolution runs one ``conv_nd`` per group on channel slices of the
  input tensor, joined with ``mygrad.concatenate`` (MyGrad's own operations,
  timed: that is the only way to express it);
* dilated max pooling has no MyGrad counterpart and is reported as such.

The bias is added with MyGrad's broadcasting addition, as torch's and ours
include it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.cases import Problem
from reference_impl.window import Window, padding_sides, window

PEER_FUNCTIONS = ("conv2d", "max_pool2d")


def available() -> bool:
    return importlib.util.find_spec("mygrad") is not None


def version() -> str:
    import mygrad

    return str(mygrad.__version__)


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return (int(value[0]), int(value[1]))
    return (int(value), int(value))


def _reached(x: np.ndarray[Any, Any], win: Window, fill: float) -> np.ndarray[Any, Any]:
    """``x`` padded by the window's sides and cut (or extended) to what its windows reach."""
    widths = [(0, 0), (0, 0)]
    for axis in (win.h, win.w):
        reach = (axis.out - 1) * axis.stride + axis.dilation * (axis.kernel - 1) + 1
        widths.append((axis.before, max(axis.after, reach - axis.size - axis.before)))
    padded = np.pad(x, widths, constant_values=fill)
    reach_h = (win.h.out - 1) * win.h.stride + win.h.dilation * (win.h.kernel - 1) + 1
    reach_w = (win.w.out - 1) * win.w.stride + win.w.dilation * (win.w.kernel - 1) + 1
    out: np.ndarray[Any, Any] = np.ascontiguousarray(padded[:, :, :reach_h, :reach_w])
    return out


def _fits(win: Window) -> bool:
    """Whether MyGrad's symmetric padding alone reproduces the problem's windows."""
    return all(
        axis.before == axis.after
        and (axis.size + 2 * axis.before - axis.dilation * (axis.kernel - 1) - 1) % axis.stride == 0
        for axis in (win.h, win.w)
    )


def _conv_step(problem: Problem) -> Callable[[], None]:
    import mygrad as mg
    from mygrad.nnet import conv_nd

    x, weight, bias = (problem.arrays[k] for k in ("x", "weight", "bias"))
    opts = problem.options
    stride, dilation = _pair(opts.get("stride", 1)), _pair(opts.get("dilation", 1))
    groups = int(opts.get("groups", 1))
    kernel = (weight.shape[2], weight.shape[3])
    sides = padding_sides(opts.get("padding", 0), kernel, dilation)
    win = window(x.shape[2:], kernel, stride, dilation, sides)
    if _fits(win):
        data, padding = x, (win.h.before, win.w.before)
    else:
        data, padding = _reached(x, win, 0.0), (0, 0)
    grad = problem.grad
    c_in_g, c_out_g = x.shape[1] // groups, weight.shape[0] // groups

    def step() -> None:
        xt = mg.Tensor(data, copy=False)
        wt, bt = mg.Tensor(weight, copy=False), mg.Tensor(bias, copy=False)
        if groups == 1:
            out = conv_nd(xt, wt, stride=stride, padding=padding, dilation=dilation)
        else:
            out = mg.concatenate(
                [
                    conv_nd(
                        xt[:, g * c_in_g : (g + 1) * c_in_g],
                        wt[g * c_out_g : (g + 1) * c_out_g],
                        stride=stride,
                        padding=padding,
                        dilation=dilation,
                    )
                    for g in range(groups)
                ],
                axis=1,
            )
        (out + bt.reshape(1, -1, 1, 1)).backward(grad)

    return step


def _max_pool_step(problem: Problem) -> Callable[[], None] | None:
    import mygrad as mg
    from mygrad.nnet import max_pool

    opts = problem.options
    if _pair(opts.get("dilation", 1)) != (1, 1):
        return None
    x = problem.arrays["x"]
    kernel = _pair(opts["kernel_size"])
    stride = _pair(opts.get("stride") or kernel)
    padding = _pair(opts.get("padding", 0))
    sides = (padding[0], padding[0], padding[1], padding[1])
    win = window(x.shape[2:], kernel, stride, (1, 1), sides, bool(opts.get("ceil_mode", False)))
    data = x if _fits(win) and sides == (0, 0, 0, 0) else _reached(x, win, -np.inf)
    grad = problem.grad

    def step() -> None:
        max_pool(mg.Tensor(data, copy=False), kernel, stride).backward(grad)

    return step


def step(problem: Problem) -> Callable[[], None] | None:
    """MyGrad's forward + backward of ``problem``, or ``None`` if it has no counterpart."""
    if problem.function == "conv2d":
        return _conv_step(problem)
    if problem.function == "max_pool2d":
        return _max_pool_step(problem)
    return None
