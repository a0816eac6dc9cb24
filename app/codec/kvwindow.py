"""A bounded transformer KV cache for the published streaming graphs (numpy only).

The published encoder/decoder graphs concatenate past and new keys/values and
return the whole cache, so it grows by 2 tokens per 80 ms frame forever. The
graphs position new tokens at ``past_len`` with rotary embeddings (rotate-half
layout) and store keys already rotated. Rotary attention only depends on
relative positions, so a cache cut to its newest ``W`` entries stays exact if
the kept keys are rotated back by the number of dropped entries: the graph then
positions the new tokens right after the kept history, as before.

Whether a graph really works that way is checked at load time by
``probe_positions``; anything unexpected turns the window off (the cache grows,
as published) and says so in ``KVWindow.warning``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_KV_SLACK",
    "PositionLayout",
    "rotate_half",
    "probe_positions",
    "KVWindow",
]

# Tokens a cache may run past its window before it is cut back: one cut (and key rotation, ~2 ms
# for a full-size direction) every 8 frames instead of every frame.
DEFAULT_KV_SLACK = 16
ROPE_THETA = 10000.0


class PositionLayout(enum.Enum):
    """How a graph positions its new tokens, as found by ``probe_positions``."""

    DYNAMIC = "dynamic"  # new tokens at past_len: trim + rotate back is exact
    FROZEN = "frozen"  # positions do not depend on the cache: trim without rotation
    UNKNOWN = "unknown"  # anything else: do not trim


@lru_cache(maxsize=64)
def _cos_sin(shift: int, dim: int, theta: float, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin [dim/2] of a rotation by `shift` positions (computed in float64, read-only)."""
    angles = shift * _inv_freq(dim, theta)
    cos, sin = np.cos(angles).astype(dtype), np.sin(angles).astype(dtype)
    cos.flags.writeable = sin.flags.writeable = False
    return cos, sin


def _inv_freq(dim: int, theta: float) -> np.ndarray:
    return float(theta) ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)


def rotate_half(keys: np.ndarray, shift: int | np.ndarray, theta: float = ROPE_THETA,
                out: np.ndarray | None = None, scratch: np.ndarray | None = None) -> np.ndarray:
    """Rotate rotary-embedded keys ``[..., T, D]`` by `shift` positions (negative = back).

    Rotate-half layout: pair (i, i + D/2) turns by ``shift * theta**(-2i/D)``.
    `shift` is an int (same for every token; its cos/sin are cached) or an array
    broadcastable to ``[..., T]`` (one shift per token). Returns a new array of
    the keys' float dtype, or `out` filled (with `scratch` of half its last axis as working space)
    when given with the right shape and dtype.
    """
    keys = np.asarray(keys)
    if keys.ndim < 2:
        raise ValueError(f"keys must be [..., T, D], got shape {keys.shape}")
    dim = keys.shape[-1]
    if dim % 2:
        raise ValueError(f"rotary head dim must be even, got {dim}")
    dtype = keys.dtype if np.issubdtype(keys.dtype, np.floating) else np.dtype(np.float64)
    if isinstance(shift, (int, np.integer)) and not isinstance(shift, bool):
        if shift == 0:
            return np.array(keys, dtype=dtype)
        cos, sin = _cos_sin(int(shift), dim, float(theta), dtype)
    else:
        angles = np.asarray(shift, dtype=np.float64)[..., None] * _inv_freq(dim, theta)  # [..., T, D/2]
        cos, sin = np.cos(angles).astype(dtype), np.sin(angles).astype(dtype)
    # Element-wise on purpose: a [D, D] matmul is ~1.3x faster on one thread but multi-threaded
    # BLAS stalled for 0.5 s under CPU contention here; this path has no threads to stall.
    half = dim // 2
    x1, x2 = keys[..., :half], keys[..., half:]
    shape = np.broadcast_shapes(keys.shape[:-1] + (half,), cos.shape)[:-1] + (dim,)
    if out is None or out.shape != shape or out.dtype != dtype:
        out = np.empty(shape, dtype=dtype)
    first, second = out[..., :half], out[..., half:]
    if scratch is None or scratch.shape != first.shape or scratch.dtype != dtype:
        scratch = np.empty(first.shape, dtype=dtype)
    np.multiply(x1, cos, out=first)
    first -= np.multiply(x2, sin, out=scratch)
    np.multiply(x2, cos, out=second)
    second += np.multiply(x1, sin, out=scratch)
    return out


def _relative_gap(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(float(np.abs(b).max(initial=0.0)), float(np.abs(a).max(initial=0.0)), 1e-30)
    return float(np.abs(a - b).max(initial=0.0)) / scale


def probe_positions(
    session: Any,
    first_input_name: str,
    first_input_value: np.ndarray,
    conv_state_feeds: Mapping[str, np.ndarray],
    kv_names: Sequence[str],
    heads: int,
    head_dim: int,
    probe_len: int = 7,
    tol: float = 1e-3,
    theta: float = ROPE_THETA,
    seed: int = 0,
) -> PositionLayout:
    """Find how `session` positions new tokens: DYNAMIC, FROZEN or UNKNOWN.

    Runs the graph twice from the same conv states and input: with an empty
    cache and with a random cache of `probe_len` entries (`kv_names` are the
    past_key_i/past_value_i inputs in contract order). Layer-0 keys of the new
    tokens do not depend on the cache contents, so the new entries of
    present_key_0 must equal the empty-cache ones rotated by probe_len (DYNAMIC)
    or unrotated (FROZEN), within `tol` relative to their max abs. It also
    requires the graph to return the past unchanged in front of the new entries
    and layer-0 new values not to move; anything else is UNKNOWN. The session's
    own state is not touched: nothing here is stored.
    """
    if probe_len < 1:
        raise ValueError(f"probe_len must be positive, got {probe_len}")
    rng = np.random.default_rng(seed)
    empty = {name: np.zeros((1, heads, 0, head_dim), np.float32) for name in kv_names}
    past = {name: rng.standard_normal((1, heads, probe_len, head_dim)).astype(np.float32) for name in kv_names}
    base = {first_input_name: first_input_value, **conv_state_feeds}
    present_names = ["present_" + name[len("past_"):] for name in kv_names]
    try:
        first = dict(zip(present_names, session.run(present_names, {**base, **empty}), strict=False))
        second = dict(zip(present_names, session.run(present_names, {**base, **past}), strict=False))
    except Exception:  # noqa: BLE001 - onnxruntime raises its own types; a graph that fails the probe is not trusted
        return PositionLayout.UNKNOWN
    key0, value0 = present_names[0], present_names[1] if len(present_names) > 1 else None
    new_keys = first[key0]
    steps = new_keys.shape[2] if new_keys.ndim == 4 else 0
    if steps == 0:
        return PositionLayout.UNKNOWN
    for past_name, present_name in zip(kv_names, present_names, strict=False):
        got = second[present_name]
        if got.ndim != 4 or got.shape[2] != probe_len + first[present_name].shape[2]:
            return PositionLayout.UNKNOWN  # not "past + new"
        if _relative_gap(got[:, :, :probe_len], past[past_name]) > tol:
            return PositionLayout.UNKNOWN  # the graph rewrites its past: trimming is not safe
    if value0 is not None and _relative_gap(second[value0][:, :, probe_len:], first[value0]) > tol:
        return PositionLayout.UNKNOWN
    shifted_keys = second[key0][:, :, probe_len:]
    if float(np.abs(shifted_keys).max()) == 0.0:
        return PositionLayout.UNKNOWN  # nothing to compare
    rotated = rotate_half(new_keys, probe_len, theta)
    dynamic = _relative_gap(rotated, shifted_keys) <= tol
    frozen = _relative_gap(new_keys, shifted_keys) <= tol
    if dynamic and not frozen:
        return PositionLayout.DYNAMIC
    if frozen and not dynamic:
        return PositionLayout.FROZEN
    return PositionLayout.UNKNOWN  # neither, or keys too degenerate to tell


class KVWindow:
    """Keeps a streaming KV cache to its newest `window` tokens (None = let it grow).

    The cache may run `slack` tokens past the window before it is cut back to `window`, so the
    cut and its key rotation happen once every slack/2 frames rather than on every call.
    """

    def __init__(
        self, window: int | None, layout: PositionLayout, head_dim: int, theta: float = ROPE_THETA,
        model_name: str = "the model", slack: int = 0,
    ) -> None:
        if window is not None and (not isinstance(window, (int, np.integer)) or isinstance(window, bool) or window < 1):
            raise ValueError(f"KV window must be a positive number of tokens or None, got {window!r}")
        if not isinstance(layout, PositionLayout):
            raise TypeError(f"layout must be a PositionLayout, got {layout!r}")
        if not isinstance(slack, (int, np.integer)) or isinstance(slack, bool) or slack < 0:
            raise ValueError(f"KV slack must be a non-negative number of tokens, got {slack!r}")
        self.window = None if window is None else int(window)
        self.slack = int(slack)
        self.layout = layout
        self.head_dim = int(head_dim)
        self.theta = float(theta)
        self.model_name = model_name
        # What a cut writes into, kept from cut to cut (see `reserve`): index -> array, and the
        # rotation's working space.
        self._kept: dict[int, np.ndarray] = {}
        self._scratch: np.ndarray | None = None

    @property
    def effective(self) -> int | None:
        """The window really applied, or None when the cache grows."""
        if self.window is None or self.layout is PositionLayout.UNKNOWN:
            return None
        return self.window

    @property
    def limit(self) -> int | None:
        """The longest cache kept before a cut (window + slack), or None when the cache grows."""
        window = self.effective
        return None if window is None else window + self.slack

    @property
    def warning(self) -> str | None:
        """Why a requested window is not applied, or None."""
        if self.window is not None and self.layout is PositionLayout.UNKNOWN:
            return (
                f"KV window disabled: the probe found an unknown position layout in {self.model_name}; "
                "the cache grows (cost rises over time)"
            )
        return None

    def trim(self, kv: list[np.ndarray]) -> list[np.ndarray]:
        """Newest `window` entries of present_key_i/present_value_i ``[B, H, L, D]`` (keys at even indices).

        Only cuts once the cache is longer than window + slack.

        DYNAMIC: kept keys are rotated back by the number of dropped entries, so
        the next call, which positions its tokens at the cache length, sees the
        same relative positions as with the whole cache. FROZEN: cut only.
        Unchanged when growing or already short enough. A cut writes into arrays this window
        keeps and writes again at its next cut: they are the next call's past, nothing longer.
        """
        window, limit = self.effective, self.limit
        if window is None or limit is None or not kv:
            return kv
        length = kv[0].shape[2]
        if length <= limit:
            return kv
        dropped = length - window
        rotate = self.layout is PositionLayout.DYNAMIC
        out = []
        for index, array in enumerate(kv):
            kept = array[:, :, dropped:]
            target = self._target(index, kept)
            if rotate and index % 2 == 0:
                half = kept.shape[:-1] + (kept.shape[-1] // 2,)
                if self._scratch is None or self._scratch.shape != half or self._scratch.dtype != kept.dtype:
                    self._scratch = _touched(half, kept.dtype)
                out.append(rotate_half(kept, -dropped, self.theta, out=target, scratch=self._scratch))
            else:
                np.copyto(target, kept)
                out.append(target)
        return out

    def reserve(self, count: int, heads: int, dtype: np.dtype | type = np.float32) -> None:
        """Allocates, and writes to, what cutting `count` caches of ``[1, heads, L, head_dim]``
        will write into, so that the first cut (~10 s into a stream at the default window) finds
        its memory ready: in a VM, first touching ~8 MB of fresh pages made that one cut ~40 ms
        per direction instead of ~3 (seen live, where it was heard as a dropout). No-op when the
        cache grows."""
        window = self.effective
        if window is None:
            return
        shape = (1, int(heads), window, self.head_dim)
        for index in range(count):
            self._kept[index] = _touched(shape, dtype)
        self._scratch = _touched(shape[:-1] + (self.head_dim // 2,), dtype)

    def _target(self, index: int, kept: np.ndarray) -> np.ndarray:
        """The array cut `index` is written into: the one kept since the last cut (a past the
        caller has replaced by now), or a new one when the shape changed."""
        target = self._kept.get(index)
        if target is None or target.shape != kept.shape or target.dtype != kept.dtype \
                or np.may_share_memory(target, kept):
            target = self._kept[index] = np.empty(kept.shape, kept.dtype)
        return target


def _touched(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    array = np.empty(shape, dtype)
    array.fill(0)  # np.zeros would leave the pages untouched until the first real write
    return array
