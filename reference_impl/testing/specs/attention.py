"""Specs of attention: scaled_dot_product_attention and multi_head_attention.

Every case is valid by construction. Lengths are drawn as ``(L, S)`` pairs
from the pairs the steer allows (a single query, a single key, ``L ≠ S``,
causal with ``L < S`` or ``L > S``, self-attention's ``L = S``), never
filtered. Masks are drawn with their polarity in mind: a fully masked row is
planted when the corner is wanted and, when it is excluded, one position of
every fully blocked row is opened again. Extreme scores are planted as one
large query entry and one large key entry, so that a score reaches 10⁴ after
scaling. All values are on the dyadic grid; the projection weights of
``multi_head_attention`` are sixteenths in [−1/4, 1/4], so that the projected
queries and keys, their products and the scores stay exact in float32 (see
``tolerances.attention_errors``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import assume, strategies as st

from reference_impl.testing import oracles, tolerances
from reference_impl.testing.registry import Case, ErrorInput, FormulaSpec, Steer
from reference_impl.testing.strategies import (
    GRID,
    GRID_STEP,
    UPSTREAM_MAX,
    arrays,
    grad_seeds,
)

Array = np.ndarray[Any, Any]

#: the size of a score the "extreme scores" corner reaches, after scaling
EXTREME_SCORE = 1e4
#: explicit scales: powers of two and one that is not
SCALES = (0.125, 0.25, 0.5, 1.0, 2.0, 0.3)
#: sixteenths in [−1/4, 1/4]: projection weights and biases of multi_head_attention
SMALL = st.integers(-GRID_STEP // 4, GRID_STEP // 4).map(lambda k: k / GRID_STEP)
#: float mask values: the grid, and −∞ (a blocked position) one time in four
FLOAT_MASK = st.integers(0, 3).flatmap(lambda k: st.just(-math.inf) if k == 3 else GRID)
#: boolean mask entries, True one time in four (blocked, for multi_head_attention);
#: both shrink towards a position that may be attended
RARELY = st.integers(0, 3).map(lambda k: k == 3)
#: boolean mask entries, True three times in four (may attend, for scaled_dot_product_attention)
MOSTLY = st.integers(0, 3).map(lambda k: k != 3)

LENGTH_CORNERS = ("single query", "single key", "L ≠ S")
SDPA_CORNERS = frozenset(
    {
        *LENGTH_CORNERS,
        "no batch axes",
        "broadcast batch",
        "Ev ≠ E",
        "causal",
        "causal L < S",
        "causal L > S",
        "boolean mask",
        "float mask",
        "broadcast mask",
        "fully masked row",
        "explicit scale",
        "extreme scores",
        "self-attention",
    }
)
MHA_CORNERS = frozenset(
    {
        *LENGTH_CORNERS,
        "unbatched",
        "batch_first",
        "batch of one",
        "one head",
        "head_dim 1",
        "boolean mask",
        "float mask",
        "3-D attn_mask",
        "key padding",
        "fully masked row",
        "no in_proj_bias",
        "no out_proj_bias",
        "self-attention",
    }
)


def _lengths(draw: st.DrawFn, steer: Steer, same: bool, relation: str | None) -> tuple[int, int]:
    """``(L, S)`` in 1..4, from the pairs the corners allow, drawn without filtering.

    A single query (``L = 1``) or key (``S = 1``) happens only when its corner
    is flagged; ``same`` (self-attention) forces ``L = S``; ``relation`` is
    ``"<"``, ``">"``, ``"≠"`` or ``"="`` when a corner needs one.
    """
    single_query = steer.flag(draw, "single query", 5)
    single_key = not same and steer.flag(draw, "single key", 5)
    if relation is None:
        if "L ≠ S" in steer.require:
            relation = "≠"
        elif "L ≠ S" in steer.exclude:
            relation = "="

    def allowed(l: int, s: int) -> bool:
        return {None: True, "<": l < s, ">": l > s, "≠": l != s, "=": l == s}[relation]

    pairs = [
        (l, s)
        for l in range(1, 5)
        for s in range(1, 5)
        if (l == 1) == single_query
        and (same or (s == 1) == single_key)
        and (not same or l == s)
        and allowed(l, s)
    ]
    assume(pairs)  # only contradictory requirements leave none
    pair: tuple[int, int] = draw(st.sampled_from(pairs), label="(L, S)")
    return pair


def _length_corners(length: int, positions: int) -> set[str]:
    corners = set()
    if length == 1:
        corners.add("single query")
    if positions == 1:
        corners.add("single key")
    if length != positions:
        corners.add("L ≠ S")
    return corners


# ------------------------------------------------------------------------------ SDPA


def _sdpa_bias(args: Any) -> Array | None:
    """The additive bias of a case: 0 / −∞ from a boolean mask (True = may attend), the
    float mask itself, or the causal triangle."""
    query, key, mask = args["query"], args["key"], args["attn_mask"]
    if args["is_causal"]:
        length, positions = query.shape[-2], key.shape[-2]
        return np.where(np.triu(np.ones((length, positions), bool), 1), -np.inf, 0.0)
    if mask is None:
        return None
    if mask.dtype == np.bool_:
        return np.where(mask, 0.0, -np.inf)
    return np.asarray(mask, dtype=np.float64)


def _sdpa_scale(args: Any) -> float:
    if args["scale"] is not None:
        return float(args["scale"])
    return 1.0 / math.sqrt(args["query"].shape[-1])


def _batch_shapes(
    draw: st.DrawFn, steer: Steer, same: bool
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """The broadcast batch shape and the batch shapes of query, key and value."""
    broadcast = not same and steer.flag(draw, "broadcast batch", 4)
    if broadcast or not steer.flag(draw, "no batch axes", 5):
        axes = draw(st.integers(1, 2), label="batch axes")
    else:
        axes = 0
    full = tuple(draw(st.integers(1, 2), label="batch size") for _ in range(axes))
    shapes = [full, full, full]
    if broadcast:
        which = draw(st.integers(0, 2), label="broadcast argument")
        drop = draw(st.integers(0, axes), label="leading axes dropped")
        shape = [1 if draw(st.booleans(), label="size 1") else n for n in full[drop:]]
        if tuple(shape) == full:
            shape = list(full[1:])
        shapes[which] = tuple(shape)
    return full, shapes[0], shapes[1], shapes[2]


def _sdpa_mask(
    draw: st.DrawFn, steer: Steer, dtype: np.dtype[Any], scores: tuple[int, ...]
) -> Array | None:
    """A boolean (True = may attend) or float mask that broadcasts to ``scores``."""
    if "attn_mask" in steer.fixed:
        held: Array | None = steer.fixed["attn_mask"]
        return held
    boolean = steer.flag(draw, "boolean mask", 3)
    floating = not boolean and steer.flag(draw, "float mask", 3)
    if not boolean and not floating:
        if "fully masked row" not in steer.require:
            return None
        boolean = steer.allows("boolean mask")  # a fully masked row needs a mask
    shape = scores
    if steer.flag(draw, "broadcast mask", 3):
        drop = draw(st.integers(0, len(scores) - 2), label="mask axes dropped")
        sizes = [1 if draw(st.booleans(), label="mask size 1") else n for n in scores[drop:]]
        if tuple(sizes) == scores:  # nothing dropped or set to 1 yet
            longer = [i for i, n in enumerate(scores) if n > 1]
            if longer:
                sizes[longer[-1]] = 1
            elif len(scores) > 2:
                sizes = sizes[1:]
        shape = tuple(sizes)
    if boolean:
        mask: Array = draw(arrays(np.dtype(bool), shape, MOSTLY), label="attn_mask")
    else:
        mask = draw(arrays(dtype, shape, FLOAT_MASK), label="attn_mask")
    blocked = ~mask if boolean else np.isneginf(mask)
    if "fully masked row" in steer.require:
        row = tuple(draw(st.integers(0, n - 1), label="masked row") for n in shape[:-1])
        mask[row] = False if boolean else -np.inf
    elif not steer.allows("fully masked row"):
        dead = np.asarray(blocked.all(axis=-1))
        for row in np.ndindex(*dead.shape):
            if dead[row]:
                first = (*row, 0)
                mask[first] = True if boolean else 0.0
    return mask


def _extreme(
    draw: st.DrawFn, query: Array, key: Array, scale: float, same: bool
) -> tuple[Array, Array]:
    """Query and key with one entry each large enough for a score of ``EXTREME_SCORE``."""
    size = GRID_STEP * math.ceil(math.sqrt(1.25 * EXTREME_SCORE / scale) / GRID_STEP)
    sign = 1.0 if same else draw(st.sampled_from([1.0, -1.0]), label="extreme sign")
    query = query.copy()
    query[..., 0, 0] = sign * size
    if same:
        return query, query
    key = key.copy()
    key[..., 0, 0] = size
    return query, key


@st.composite
def sdpa_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer) -> Case:
    same = steer.flag(draw, "self-attention", 6)
    if "is_causal" in steer.fixed:
        causal = bool(steer.fixed["is_causal"])
    elif "attn_mask" in steer.fixed and steer.fixed["attn_mask"] is not None:
        causal = False
    else:
        causal = steer.flag(draw, "causal", 4) or bool(
            {"causal L < S", "causal L > S"} & steer.require
        )
        # a causal mask never blocks a whole row: the corner needs attn_mask
        causal = causal and "fully masked row" not in steer.require
    relation = None
    if "causal L < S" in steer.require:
        relation = "<"
    elif "causal L > S" in steer.require:
        relation = ">"
    length, positions = _lengths(draw, steer, same, relation)
    embed = draw(st.integers(1, 4), label="E")
    width = embed if same else draw(st.integers(1, 4), label="Ev")
    if "Ev ≠ E" in steer.require and width == embed and not same:
        width = embed % 4 + 1
    elif not steer.allows("Ev ≠ E"):
        width = embed
    full, q_batch, k_batch, v_batch = _batch_shapes(draw, steer, same)
    query = draw(arrays(dtype, (*q_batch, length, embed)), label="query")
    if same:
        key = value = query
    else:
        key = draw(arrays(dtype, (*k_batch, positions, embed)), label="key")
        value = draw(arrays(dtype, (*v_batch, positions, width)), label="value")
    if "scale" in steer.fixed:
        scale = steer.fixed["scale"]
    elif steer.flag(draw, "explicit scale", 3):
        scale = draw(st.sampled_from(SCALES), label="scale")
    else:
        scale = None
    mask = None if causal else _sdpa_mask(draw, steer, dtype, (*full, length, positions))
    args = {
        "query": query,
        "key": key,
        "value": value,
        "attn_mask": mask,
        "is_causal": causal,
        "scale": scale,
    }
    if steer.flag(draw, "extreme scores", 5):
        query, key = _extreme(draw, query, key, _sdpa_scale(args), same)
        args["query"], args["key"] = query, key
        if same:
            args["value"] = query
        if mask is not None and mask.size:  # the planted score at (0, 0) is attended
            corner = (..., 0, 0) if mask.ndim > 1 else (..., 0)
            mask[corner] = True if mask.dtype == np.bool_ else 0.0
    return Case(args, draw(grad_seeds()), steer.settle(_sdpa_corners(args)))


def _sdpa_corners(args: Any) -> set[str]:
    query, key, value, mask = args["query"], args["key"], args["value"], args["attn_mask"]
    length, positions = query.shape[-2], key.shape[-2]
    corners = _length_corners(length, positions)
    batches = {query.shape[:-2], key.shape[:-2], value.shape[:-2]}
    full = np.broadcast_shapes(*batches)
    if not full:
        corners.add("no batch axes")
    if len(batches) > 1:
        corners.add("broadcast batch")
    if value.shape[-1] != query.shape[-1]:
        corners.add("Ev ≠ E")
    if args["is_causal"]:
        corners.add("causal")
        if length < positions:
            corners.add("causal L < S")
        if length > positions:
            corners.add("causal L > S")
    if mask is not None:
        corners.add("boolean mask" if mask.dtype == np.bool_ else "float mask")
        if mask.shape != (*full, length, positions):
            corners.add("broadcast mask")
    if args["scale"] is not None:
        corners.add("explicit scale")
    if query is key and key is value:
        corners.add("self-attention")
    scale = _sdpa_scale(args)
    scores = scale * np.matmul(query.astype(np.float64), np.swapaxes(key, -1, -2))
    bias = _sdpa_bias(args)
    if bias is not None:
        scores = scores + bias
        if positions and np.isneginf(scores).all(axis=-1).any():
            corners.add("fully masked row")
    live = np.isfinite(scores)
    if live.any() and np.abs(scores[live]).max() >= EXTREME_SCORE:
        corners.add("extreme scores")
    return corners


def _sdpa_length(args: Any) -> int:
    return tolerances.attention_length(
        args["query"], args["key"], args["value"], _sdpa_bias(args), _sdpa_scale(args),
        UPSTREAM_MAX,
    )  # fmt: skip


def _sdpa_base() -> dict[str, Any]:
    return {
        "query": np.zeros((2, 3, 4)),
        "key": np.zeros((2, 5, 4)),
        "value": np.zeros((2, 5, 2)),
        "attn_mask": None,
        "is_causal": False,
        "scale": None,
    }


SDPA_ERRORS = [
    ErrorInput("query list", {"query": [[0.0]]}, TypeError, "query", "numpy"),
    ErrorInput("query int", {"query": np.zeros((2, 3, 4), np.int64)}, TypeError, "query"),
    ErrorInput("query 1-D", {"query": np.zeros(4)}, ValueError, "query", "2 dimensions"),
    ErrorInput("key 1-D", {"key": np.zeros(4)}, ValueError, "key", "2 dimensions"),
    ErrorInput("key embedding size", {"key": np.zeros((2, 5, 3))}, ValueError, "key", "E"),
    ErrorInput("value positions", {"value": np.zeros((2, 4, 2))}, ValueError, "value", "S"),
    ErrorInput(
        "batch axes do not broadcast",
        {"key": np.zeros((3, 5, 4)), "value": np.zeros((3, 5, 2))},
        ValueError,
        "key",
        "broadcast",
    ),
    ErrorInput(
        "mask shape",
        {"attn_mask": np.ones((3, 4), bool)},
        ValueError,
        "attn_mask",
        "broadcast",
    ),
    ErrorInput(
        "mask widens the batch",
        {"attn_mask": np.ones((4, 2, 3, 5), bool)},
        ValueError,
        "attn_mask",
    ),
    ErrorInput(
        "mask with is_causal",
        {"attn_mask": np.ones((3, 5), bool), "is_causal": True},
        ValueError,
        "attn_mask",
        "is_causal",
    ),
    ErrorInput("mask int", {"attn_mask": np.ones((3, 5), np.int64)}, TypeError, "attn_mask"),
    ErrorInput(
        "mask of another float dtype",
        {"attn_mask": np.zeros((3, 5), np.float32)},
        TypeError,
        "attn_mask",
    ),
    ErrorInput("mask list", {"attn_mask": [[True]]}, TypeError, "attn_mask"),
    ErrorInput("mask 1-D", {"attn_mask": np.ones(5, bool)}, ValueError, "attn_mask"),
    ErrorInput("is_causal int", {"is_causal": 1}, TypeError, "is_causal"),
    ErrorInput("scale zero", {"scale": 0.0}, ValueError, "scale", "positive"),
    ErrorInput("scale negative", {"scale": -0.5}, ValueError, "scale", "positive"),
    ErrorInput("scale infinite", {"scale": math.inf}, ValueError, "scale"),
    ErrorInput("scale string", {"scale": "1"}, TypeError, "scale"),
]


# ---------------------------------------------------------------- multi-head attention


def _mha_blocked(mask: Array | None) -> Array | None:
    """A multi_head_attention mask as an additive bias: True blocks (−∞), a float adds."""
    if mask is None:
        return None
    if mask.dtype == np.bool_:
        return np.where(mask, -np.inf, 0.0)
    return np.asarray(mask, dtype=np.float64)


def _mha_view(args: Any) -> tuple[Array, Array, Array, Array | None]:
    """Batch-first ``(N, T, E)`` inputs and the heads' bias, broadcastable to (N, H, L, S)."""
    query, key, value = args["query"], args["key"], args["value"]
    heads = args["num_heads"]
    if query.ndim == 2:
        query, key, value = query[None], key[None], value[None]
    elif not args["batch_first"]:
        query, key, value = (np.swapaxes(x, 0, 1) for x in (query, key, value))
    n, length, _ = query.shape
    positions = key.shape[1]
    bias = None
    attn = _mha_blocked(args["attn_mask"])
    if attn is not None:
        bias = attn.reshape(n, heads, length, positions) if attn.ndim == 3 else attn
    padding = _mha_blocked(args["key_padding_mask"])
    if padding is not None:
        padding = padding.reshape(n, 1, 1, positions)
        bias = padding if bias is None else bias + padding
    return query, key, value, bias


def _mha_length(args: Any) -> int:
    query, key, value, bias = _mha_view(args)
    return tolerances.multi_head_attention_length(
        query, key, value, args["num_heads"], args["in_proj_weight"], args["in_proj_bias"],
        args["out_proj_weight"], args["out_proj_bias"], bias, UPSTREAM_MAX,
    )  # fmt: skip


def _held(steer: Steer, name: str, default: Any) -> Any:
    return steer.fixed.get(name, default)


def _mha_masks(
    draw: st.DrawFn,
    steer: Steer,
    dtype: np.dtype[Any],
    sizes: tuple[int, int, int, int, bool],
) -> tuple[Array | None, Array | None]:
    """``(attn_mask, key_padding_mask)``, True = blocked, with fully blocked rows as asked."""
    n, heads, length, positions, batched = sizes
    boolean = steer.flag(draw, "boolean mask", 3)
    floating = not boolean and steer.flag(draw, "float mask", 3)
    attn = None
    if "attn_mask" in steer.fixed:
        attn = steer.fixed["attn_mask"]
    elif boolean or floating:
        if steer.flag(draw, "3-D attn_mask", 3):
            shape: tuple[int, ...] = (n * heads if batched else heads, length, positions)
        else:
            shape = (length, positions)
        elements = RARELY if boolean else FLOAT_MASK
        attn = draw(arrays(np.dtype(bool) if boolean else dtype, shape, elements), "attn_mask")
    padding = None
    if "key_padding_mask" in steer.fixed:
        padding = steer.fixed["key_padding_mask"]
    elif steer.flag(draw, "key padding", 3):
        if boolean or not steer.allows("float mask"):
            padding_bool = True
        elif floating or not steer.allows("boolean mask"):
            padding_bool = False
        else:
            padding_bool = draw(st.booleans(), label="boolean key_padding_mask")
        shape = (n, positions) if batched else (positions,)
        elements = RARELY if padding_bool else FLOAT_MASK
        kind = np.dtype(bool) if padding_bool else dtype
        padding = draw(arrays(kind, shape, elements), label="key_padding_mask")
    if "fully masked row" in steer.require:
        if attn is None and "attn_mask" not in steer.fixed:
            if steer.allows("boolean mask"):
                attn = np.zeros((length, positions), bool)
            else:
                attn = np.zeros((length, positions), dtype)
        row = draw(st.integers(0, length - 1), label="masked row")
        if attn is not None:
            attn[..., row, :] = True if attn.dtype == np.bool_ else -np.inf
        elif padding is not None:
            padding[...] = True if padding.dtype == np.bool_ else -np.inf
    elif not steer.allows("fully masked row"):
        _open_dead_rows(attn, padding, n, heads, length, positions)
    return attn, padding


def _open_dead_rows(
    attn: Array | None, padding: Array | None, n: int, heads: int, length: int, positions: int
) -> None:
    """Unblock position 0 of every fully blocked row, in both masks (in place)."""
    if positions == 0:
        return
    blocked = np.zeros((n, heads, length, positions), bool)
    if attn is not None:
        a = attn if attn.dtype == np.bool_ else np.isneginf(attn)
        blocked |= a.reshape(n, heads, length, positions) if a.ndim == 3 else a
    if padding is not None:
        p = padding if padding.dtype == np.bool_ else np.isneginf(padding)
        blocked |= p.reshape(n, 1, 1, positions)
    for b, h, l in zip(*np.nonzero(blocked.all(axis=-1)), strict=True):
        if attn is not None:
            index = (b * heads + h, l, 0) if attn.ndim == 3 else (l, 0)
            attn[index] = False if attn.dtype == np.bool_ else 0.0
        if padding is not None:
            padding[(b, 0) if padding.ndim == 2 else (0,)] = (
                False if padding.dtype == np.bool_ else 0.0
            )


@st.composite
def mha_cases(draw: st.DrawFn, dtype: np.dtype[Any], steer: Steer) -> Case:
    same = steer.flag(draw, "self-attention", 6)
    batched = not steer.flag(draw, "unbatched", 5)
    if "batch_first" in steer.fixed:
        batch_first = bool(steer.fixed["batch_first"])
    else:
        batch_first = batched and steer.flag(draw, "batch_first", 2)
    n = 2 if batched and not steer.flag(draw, "batch of one", 4) else 1
    if "num_heads" in steer.fixed:
        heads = int(steer.fixed["num_heads"])
    else:
        heads = 1 if steer.flag(draw, "one head", 3) else 2
    embed = heads * (1 if steer.flag(draw, "head_dim 1", 3) else 2)
    length, positions = _lengths(draw, steer, same, None)

    def layout(t: int) -> tuple[int, ...]:
        if not batched:
            return (t, embed)
        return (n, t, embed) if batch_first else (t, n, embed)

    query = draw(arrays(dtype, layout(length)), label="query")
    if same:
        key = value = query
    else:
        key = draw(arrays(dtype, layout(positions)), label="key")
        value = draw(arrays(dtype, layout(positions)), label="value")
    in_weight = draw(arrays(dtype, (3 * embed, embed), SMALL), label="in_proj_weight")
    in_bias = None
    if not steer.flag(draw, "no in_proj_bias", 4):
        in_bias = draw(arrays(dtype, (3 * embed,), SMALL), label="in_proj_bias")
    in_bias = _held(steer, "in_proj_bias", in_bias)
    out_weight = draw(arrays(dtype, (embed, embed), SMALL), label="out_proj_weight")
    out_bias = None
    if not steer.flag(draw, "no out_proj_bias", 4):
        out_bias = draw(arrays(dtype, (embed,), SMALL), label="out_proj_bias")
    out_bias = _held(steer, "out_proj_bias", out_bias)
    attn, padding = _mha_masks(draw, steer, dtype, (n, heads, length, positions, batched))
    args = {
        "query": query,
        "key": key,
        "value": value,
        "num_heads": heads,
        "in_proj_weight": in_weight,
        "in_proj_bias": in_bias,
        "out_proj_weight": out_weight,
        "out_proj_bias": out_bias,
        "attn_mask": attn,
        "key_padding_mask": padding,
        "batch_first": batch_first,
    }
    return Case(args, draw(grad_seeds()), steer.settle(_mha_corners(args)))


def _mha_corners(args: Any) -> set[str]:
    query, key, value, heads = args["query"], args["key"], args["value"], args["num_heads"]
    _, _, _, bias = _mha_view(args)
    batched = query.ndim == 3
    axis = 1 if batched and args["batch_first"] else 0
    length, positions = query.shape[axis], key.shape[axis]
    corners = _length_corners(length, positions)
    if not batched:
        corners.add("unbatched")
    elif args["batch_first"]:
        corners.add("batch_first")
    if batched and query.shape[1 - axis] == 1:
        corners.add("batch of one")
    if heads == 1:
        corners.add("one head")
    if query.shape[-1] == heads:
        corners.add("head_dim 1")
    for name in ("attn_mask", "key_padding_mask"):
        mask = args[name]
        if mask is not None:
            corners.add("boolean mask" if mask.dtype == np.bool_ else "float mask")
    if args["attn_mask"] is not None and args["attn_mask"].ndim == 3:
        corners.add("3-D attn_mask")
    if args["key_padding_mask"] is not None:
        corners.add("key padding")
    if bias is not None and positions and np.isneginf(bias).all(axis=-1).any():
        corners.add("fully masked row")
    if args["in_proj_bias"] is None:
        corners.add("no in_proj_bias")
    if args["out_proj_bias"] is None:
        corners.add("no out_proj_bias")
    if query is key and key is value:
        corners.add("self-attention")
    return corners


def _mha_base() -> dict[str, Any]:
    return {
        "query": np.zeros((3, 2, 4)),
        "key": np.zeros((5, 2, 4)),
        "value": np.zeros((5, 2, 4)),
        "num_heads": 2,
        "in_proj_weight": np.zeros((12, 4)),
        "in_proj_bias": np.zeros(12),
        "out_proj_weight": np.zeros((4, 4)),
        "out_proj_bias": np.zeros(4),
        "attn_mask": None,
        "key_padding_mask": None,
        "batch_first": False,
    }


MHA_ERRORS = [
    ErrorInput("query list", {"query": [[0.0]]}, TypeError, "query", "numpy"),
    ErrorInput("query 4-D", {"query": np.zeros((3, 2, 1, 4))}, ValueError, "query"),
    ErrorInput("key 2-D", {"key": np.zeros((5, 4))}, ValueError, "key"),
    ErrorInput(
        "key embedding size",
        {"key": np.zeros((5, 2, 3)), "value": np.zeros((5, 2, 3))},
        ValueError,
        "key",
        "embedding",
    ),
    ErrorInput("value shape", {"value": np.zeros((4, 2, 4))}, ValueError, "value"),
    ErrorInput(
        "batch sizes differ",
        {"key": np.zeros((5, 3, 4)), "value": np.zeros((5, 3, 4))},
        ValueError,
        "key",
        "batch",
    ),
    ErrorInput("E not divisible", {"num_heads": 3}, ValueError, "num_heads", "divisible"),
    ErrorInput("num_heads zero", {"num_heads": 0}, ValueError, "num_heads"),
    ErrorInput("num_heads float", {"num_heads": 2.0}, TypeError, "num_heads"),
    ErrorInput(
        "in_proj_weight shape", {"in_proj_weight": np.zeros((4, 4))}, ValueError, "in_proj_weight"
    ),
    ErrorInput("in_proj_bias shape", {"in_proj_bias": np.zeros(4)}, ValueError, "in_proj_bias"),
    ErrorInput(
        "out_proj_weight shape",
        {"out_proj_weight": np.zeros((4, 3))},
        ValueError,
        "out_proj_weight",
    ),
    ErrorInput("out_proj_bias shape", {"out_proj_bias": np.zeros(12)}, ValueError, "out_proj_bias"),
    ErrorInput("attn_mask shape", {"attn_mask": np.ones((3, 4), bool)}, ValueError, "attn_mask"),
    ErrorInput(
        "attn_mask 3-D not N·num_heads",
        {"attn_mask": np.ones((2, 3, 5), bool)},
        ValueError,
        "attn_mask",
    ),
    ErrorInput("attn_mask int", {"attn_mask": np.ones((3, 5), np.int64)}, TypeError, "attn_mask"),
    ErrorInput(
        "key_padding_mask shape",
        {"key_padding_mask": np.ones((5, 2), bool)},
        ValueError,
        "key_padding_mask",
    ),
    ErrorInput(
        "key_padding_mask float32",
        {"key_padding_mask": np.zeros((2, 5), np.float32)},
        TypeError,
        "key_padding_mask",
    ),
    ErrorInput("batch_first int", {"batch_first": 1}, TypeError, "batch_first"),
]


SPECS = [
    FormulaSpec(
        name="scaled_dot_product_attention",
        cases=sdpa_cases,
        grad_wrt=("query", "key", "value"),
        reduction_length=_sdpa_length,
        corners=SDPA_CORNERS,
        error_base=_sdpa_base,
        error_inputs=SDPA_ERRORS,
    ),
    FormulaSpec(
        name="multi_head_attention",
        cases=mha_cases,
        grad_wrt=(
            "query",
            "key",
            "value",
            "in_proj_weight",
            "in_proj_bias",
            "out_proj_weight",
            "out_proj_bias",
        ),
        oracle=oracles.multi_head_attention,
        reduction_length=_mha_length,
        corners=MHA_CORNERS,
        error_base=_mha_base,
        error_inputs=MHA_ERRORS,
    ),
]
