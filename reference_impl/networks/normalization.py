"""Normalization and dropout layers: ``BatchNorm1d``, ``BatchNorm2d``, ``LayerNorm``,
``GroupNorm`` and ``Dropout``, each a :class:`~reference_impl.networks.layers.Functional`
of its formula with torch's constructor, parameters, buffers and modes.

Training and eval mode (``Sequential.train()`` / ``.eval()``, or a layer's
``training`` attribute) change what two of them compute, exactly as torch's:

* ``BatchNorm*`` in training mode normalizes with the batch statistics and,
  with ``track_running_stats``, updates ``running_mean``, ``running_var``
  (``batch_norm_running_stats``, the unbiased variance) and
  ``num_batches_tracked`` on every forward pass; ``momentum=None`` makes the
  running statistics the cumulative average, momentum ``1/num_batches_tracked``.
  In eval mode it normalizes with the running statistics and changes nothing
  (without running statistics, it keeps using the batch's).
* ``Dropout`` in training mode draws a new keep-mask on every forward pass
  from the NumPy ``Generator`` it was given, ``rng.random(x.shape) >= p``
  (each element kept with probability 1 − p), and the backward uses the mask
  of the last forward (:attr:`Dropout.mask`). In eval mode it is the identity
  and draws nothing.

Both do it in :meth:`~reference_impl.networks.layers.Functional.pre_forward`,
before the formula runs, in the namespace of the pass.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from reference_impl._validation import FloatArray, check_bool, float_array, is_int
from reference_impl.networks.layers import Array, Functional, _count
from reference_impl.normalization import check_eps, check_fraction

Dtype = type | np.dtype[Any]


class _BatchNorm(Functional):
    """``torch.nn.BatchNorm*d``: ``batch_norm`` with torch's buffers and modes (module docstring).

    ``state_dict``: ``weight``, ``bias`` (``affine``; no bias with ``bias=False``,
    a keyword of torch 2.13), then ``running_mean``,
    ``running_var`` and ``num_batches_tracked`` (``track_running_stats``), as
    torch's. ``num_batches_tracked`` is an int64 0-d array that no formula
    takes: it is listed by :meth:`buffers`, counted by :meth:`pre_forward`.
    """

    weight: FloatArray | None
    bias: FloatArray | None
    running_mean: FloatArray
    running_var: FloatArray
    num_batches_tracked: NDArray[np.int64] | None
    #: the input ranks the module accepts, and how torch names them
    ranks: tuple[int, ...] = ()
    layouts = ""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        bias: bool = True,
        dtype: Dtype = np.float64,
    ) -> None:
        channels = _count("num_features", num_features)
        check_eps(eps)
        if momentum is not None:
            check_fraction("momentum", momentum)
        affine = check_bool("affine", affine)
        with_bias = check_bool("bias", bias)
        track = check_bool("track_running_stats", track_running_stats)
        params: dict[str, FloatArray | None] = {"weight": None, "bias": None}
        if affine:
            params["weight"] = np.ones(channels, dtype)
            params["bias"] = np.zeros(channels, dtype) if with_bias else None
        buffers = {}
        if track:
            buffers = {"running_mean": np.zeros(channels, dtype)}
            buffers["running_var"] = np.ones(channels, dtype)
        factor = 0.0 if momentum is None else momentum
        super().__init__(
            "batch_norm", params=params, buffers=buffers, training=True, momentum=factor, eps=eps
        )
        self.num_features, self.eps, self.momentum = channels, eps, momentum
        self.affine, self.track_running_stats = affine, track
        self.num_batches_tracked = np.zeros((), np.int64) if track else None
        options = {"eps": eps, "momentum": momentum, "affine": affine, "bias": with_bias}
        self.arguments = ((num_features,), {**options, "track_running_stats": track})

    def buffers(self) -> dict[str, Array]:
        found = super().buffers()
        if self.num_batches_tracked is not None:
            found["num_batches_tracked"] = self.num_batches_tracked
        return found

    def _check_rank(self, shape: tuple[int, ...]) -> None:
        if len(shape) not in self.ranks:
            raise ValueError(
                f"x of {type(self).__name__} must be {self.layouts}, got shape {shape}"
            )

    def pre_forward(self, x: Array, ns: ModuleType) -> None:
        """torch's ``_BatchNorm.forward``: count the batch and update the running statistics.

        Only in training mode with running statistics; the momentum of the
        update is ``momentum``, or ``1/num_batches_tracked`` for ``None``.
        The formula then normalizes with the batch statistics in training mode
        (or without running statistics), with the running ones in eval mode.
        """
        self._check_rank(float_array("x", x).shape)
        factor = 0.0 if self.momentum is None else self.momentum
        tracking = self.num_batches_tracked is not None
        if self.training and self.num_batches_tracked is not None:
            count = int(self.num_batches_tracked) + 1
            if self.momentum is None:
                factor = 1.0 / count
            self.running_mean, self.running_var = ns.batch_norm_running_stats(
                x, self.running_mean, self.running_var, factor
            )
            self.num_batches_tracked = np.array(count, dtype=np.int64)
        self.hyper.update(training=self.training or not tracking, momentum=factor)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        self._check_rank(tuple(input_shape))
        return tuple(input_shape)


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) or (N, C, L), as ``torch.nn.BatchNorm1d``."""

    ranks, layouts = (2, 3), "2-D (N, C) or 3-D (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalization of (N, C, H, W) per channel, as ``torch.nn.BatchNorm2d``."""

    ranks, layouts = (4,), "4-D (N, C, H, W)"


class LayerNorm(Functional):
    """``layer_norm`` over the trailing ``normalized_shape`` dims, as ``torch.nn.LayerNorm``.

    ``weight`` (ones) and ``bias`` (zeros) of shape ``normalized_shape`` with
    ``elementwise_affine``; ``bias=False`` keeps the weight only.
    """

    weight: FloatArray | None
    bias: FloatArray | None

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...] | list[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        *,
        dtype: Dtype = np.float64,
    ) -> None:
        if is_int(normalized_shape):
            shape: tuple[int, ...] = (_count("normalized_shape", normalized_shape),)
        elif isinstance(normalized_shape, (tuple, list)) and normalized_shape:
            shape = tuple(_count("normalized_shape", n) for n in normalized_shape)
        else:
            raise TypeError(
                f"normalized_shape must be an int or a non-empty tuple of ints, "
                f"got {normalized_shape!r}"
            )
        check_eps(eps)
        affine = check_bool("elementwise_affine", elementwise_affine)
        with_bias = check_bool("bias", bias)
        weight = np.ones(shape, dtype) if affine else None
        bias_ = np.zeros(shape, dtype) if affine and with_bias else None
        params = {"weight": weight, "bias": bias_}
        super().__init__("layer_norm", params=params, normalized_shape=shape, eps=eps)
        self.normalized_shape, self.eps = shape, eps
        self.arguments = (
            (normalized_shape,),
            {"eps": eps, "elementwise_affine": affine, "bias": with_bias},
        )


class GroupNorm(Functional):
    """``group_norm`` of ``num_groups`` groups of channels, as ``torch.nn.GroupNorm``.

    ``weight`` (ones) and ``bias`` (zeros) per channel with ``affine``; ``bias=False``
    keeps the weight only.
    """

    weight: FloatArray | None
    bias: FloatArray | None

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        *,
        bias: bool = True,
        dtype: Dtype = np.float64,
    ) -> None:
        groups = _count("num_groups", num_groups)
        channels = _count("num_channels", num_channels)
        if channels % groups:
            raise ValueError(f"num_channels={channels} must be divisible by num_groups={groups}")
        check_eps(eps)
        affine = check_bool("affine", affine)
        with_bias = check_bool("bias", bias)
        params: dict[str, FloatArray | None] = {"weight": None, "bias": None}
        if affine:
            params["weight"] = np.ones(channels, dtype)
            params["bias"] = np.zeros(channels, dtype) if with_bias else None
        super().__init__("group_norm", params=params, num_groups=groups, eps=eps)
        self.num_groups, self.num_channels, self.eps = groups, channels, eps
        options = {"eps": eps, "affine": affine, "bias": with_bias}
        self.arguments = ((num_groups, num_channels), options)


class Dropout(Functional):
    """``dropout`` with a mask drawn from a NumPy ``Generator``, as ``torch.nn.Dropout(p)``.

    ``p`` is the probability of dropping an element; the kept ones are scaled
    by 1/(1 − p). Training: each forward draws ``mask = rng.random(x.shape)
    >= p`` (True where kept), kept in :attr:`mask` for the backward and for
    whoever wants to replay it (the tests feed it to torch). Eval: the
    identity, no draw, :attr:`mask` is ``None``. ``rng`` defaults to a fresh
    ``np.random.default_rng()``; pass a seeded one to repeat a run.
    """

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | None = None) -> None:
        p = check_fraction("p", p)
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        self.p = p
        self.rng = np.random.default_rng() if rng is None else rng
        self.mask: NDArray[np.bool_] | None = None
        super().__init__("dropout", mask=None, p=p, training=True)
        self.arguments = ((), {"p": p})

    def pre_forward(self, x: Array, ns: ModuleType) -> None:
        """Draw this pass's keep-mask in training mode; none in eval mode."""
        shape = float_array("x", x).shape
        self.mask = self.rng.random(shape) >= self.p if self.training else None
        self.hyper.update(mask=self.mask, training=self.training)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape)
