"""Bounded KV cache: rotary re-basing, the position-layout probe, and the windowed codec end to end."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import helper, numpy_helper

from app.codec.errors import InputError
from app.codec.kvwindow import KVWindow, PositionLayout, probe_positions, rotate_half
from app.codec.streaming import StreamingCodec
from app.config import DEFAULT_KV_WINDOW, FRAME_SIZE
from conftest import chirp_noise as signal
from conftest import model_dir, relative

# -- rotate_half ---------------------------------------------------------------------------------


def complex_rotation(keys: np.ndarray, positions: int | np.ndarray, theta: float = 10000.0) -> np.ndarray:
    """Independent formulation: pair (i, i + D/2) as the complex number x_i + j x_{i+D/2}."""
    half = keys.shape[-1] // 2
    z = keys[..., :half] + 1j * keys[..., half:]
    freq = theta ** (-2.0 * np.arange(half) / keys.shape[-1])
    z = z * np.exp(1j * np.asarray(positions, dtype=np.float64)[..., None] * freq)
    return np.concatenate([z.real, z.imag], axis=-1)


key_arrays = st.integers(1, 3).flatmap(
    lambda half: hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 2), st.integers(1, 4), st.just(2 * half)),
        elements=st.floats(-10, 10, allow_nan=False, allow_infinity=False),
    )
)


@settings(max_examples=60, deadline=None)
@given(keys=key_arrays, a=st.integers(-500, 500), b=st.integers(-500, 500))
def test_rotate_half_composes_and_inverts(keys: np.ndarray, a: int, b: int) -> None:
    atol = 1e-9 * (1.0 + float(np.abs(keys).max()))
    np.testing.assert_allclose(rotate_half(rotate_half(keys, a), b), rotate_half(keys, a + b), atol=atol)
    np.testing.assert_allclose(rotate_half(rotate_half(keys, a), -a), keys, atol=atol)
    np.testing.assert_allclose(rotate_half(keys, a), complex_rotation(keys, a), atol=atol)


def test_rotate_half_layout_and_per_token_shifts(rng: np.random.Generator) -> None:
    keys = rng.standard_normal((2, 3, 5, 8)).astype(np.float32)
    # Rotate-half, not interleaved: pair (0, 4) turns by the shift itself (frequency 1).
    one = np.zeros((1, 8))
    one[0, 0] = 1.0
    np.testing.assert_allclose(rotate_half(one, 1)[0, [0, 4]], [math.cos(1), math.sin(1)], atol=1e-12)
    assert rotate_half(one, 1)[0, 1] == 0.0
    positions = np.arange(5) * 3 - 4
    per_token = rotate_half(keys, positions)
    assert per_token.dtype == np.float32 and per_token.shape == keys.shape
    for t, p in enumerate(positions):
        np.testing.assert_allclose(per_token[..., t, :], rotate_half(keys[..., t : t + 1, :], int(p))[..., 0, :],
                                   atol=1e-6)
    np.testing.assert_allclose(per_token, complex_rotation(keys.astype(np.float64), positions), atol=1e-5)
    np.testing.assert_array_equal(rotate_half(keys, 0), keys)
    with pytest.raises(ValueError, match="even"):
        rotate_half(np.zeros((2, 3)), 1)


# -- KVWindow against an independent absolute-position windowed attention --------------------


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """q [H,Tq,D], k/v [H,Tk,D], visible [Tq,Tk] bool."""
    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    scores = np.where(visible, scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    return (weights / weights.sum(axis=-1, keepdims=True)) @ v


def run_windowed_stream(
    layout: PositionLayout, steps: int = 40, window: int = 6, tokens: int = 2, slack: int = 0
) -> float:
    """Worst gap between the graph-style trimmed cache and the absolute-position reference."""
    rng = np.random.default_rng(7)
    heads, dim = 2, 8
    kv = KVWindow(window, layout, dim, slack=slack)
    oldest = 0  # reference: absolute index of the oldest token the cache still holds
    past_k = np.zeros((1, heads, 0, dim), np.float32)
    past_v = np.zeros((1, heads, 0, dim), np.float32)
    raw_k, raw_v = [], []  # reference: everything, un-rotated, in absolute order
    worst = 0.0
    for step in range(steps):
        q = rng.standard_normal((heads, tokens, dim)).astype(np.float32)
        k = rng.standard_normal((heads, tokens, dim)).astype(np.float32)
        v = rng.standard_normal((heads, tokens, dim)).astype(np.float32)

        # What the published graph does: positions start at the stored cache length, causal mask.
        past_len = past_k.shape[2]
        local = past_len + np.arange(tokens)
        keys = np.concatenate([past_k, rotate_half(k, local)[None]], axis=2)
        values = np.concatenate([past_v, v[None]], axis=2)
        visible = np.arange(past_len + tokens)[None, :] <= local[:, None]
        got = attention(rotate_half(q, local), keys[0], values[0], visible)
        past_k, past_v = kv.trim([keys, values])

        # Reference: absolute positions, whole history, a mask from the oldest kept token on.
        start = step * tokens
        absolute = start + np.arange(tokens)
        visible_from = oldest
        if start + tokens - oldest > window + slack:
            oldest = start + tokens - window
        assert past_k.shape[2] == start + tokens - oldest
        raw_k.append(k.astype(np.float64))
        raw_v.append(v.astype(np.float64))
        all_k, all_v = np.concatenate(raw_k, axis=1), np.concatenate(raw_v, axis=1)
        index = np.arange(all_k.shape[1])
        visible = (index[None, :] <= absolute[:, None]) & (index[None, :] >= visible_from)
        expected = attention(
            rotate_half(q.astype(np.float64), absolute), rotate_half(all_k, index), all_v, visible
        )
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


@pytest.mark.parametrize("slack", [0, 4, 5])
def test_rebased_window_equals_absolute_position_sliding_window(slack: int) -> None:
    assert run_windowed_stream(PositionLayout.DYNAMIC, slack=slack) < 1e-5  # the window slides many times
    # The check has teeth: cutting without the rotation is wrong as soon as the window slides.
    assert run_windowed_stream(PositionLayout.FROZEN) > 1e-2


def test_trim_keeps_newest_rotates_only_keys(rng: np.random.Generator) -> None:
    kv = [rng.standard_normal((1, 2, 9, 8)).astype(np.float32) for _ in range(4)]
    out = KVWindow(5, PositionLayout.DYNAMIC, 8).trim(kv)
    for index, (before, after) in enumerate(zip(kv, out, strict=False)):
        assert after.shape == (1, 2, 5, 8) and after.flags.c_contiguous
        if index % 2:
            np.testing.assert_array_equal(after, before[:, :, 4:])
        else:
            np.testing.assert_allclose(after, rotate_half(before[:, :, 4:], -4), atol=1e-6)
            assert np.abs(after - before[:, :, 4:]).max() > 1e-2
    frozen = KVWindow(5, PositionLayout.FROZEN, 8).trim(kv)
    for before, after in zip(kv, frozen, strict=False):
        np.testing.assert_array_equal(after, before[:, :, 4:])
    assert KVWindow(9, PositionLayout.DYNAMIC, 8).trim(kv) is kv  # short enough: untouched
    assert KVWindow(5, PositionLayout.DYNAMIC, 8, slack=4).trim(kv) is kv  # within the slack: untouched
    assert KVWindow(5, PositionLayout.DYNAMIC, 8, slack=3).trim(kv)[0].shape[2] == 5  # past it: cut to 5
    growing = KVWindow(None, PositionLayout.DYNAMIC, 8)
    unknown = KVWindow(5, PositionLayout.UNKNOWN, 8, model_name="decoder_model.onnx")
    assert growing.trim(kv) is kv and unknown.trim(kv) is kv
    assert growing.effective is None and growing.warning is None
    assert unknown.effective is None and "unknown position layout in decoder_model.onnx" in (unknown.warning or "")
    assert KVWindow(5, PositionLayout.FROZEN, 8).effective == 5


def test_a_reserved_window_cuts_into_memory_made_ahead(rng: np.random.Generator) -> None:
    """The first cut of a live stream (~10 s in) must not allocate: first touching fresh pages
    made it ~40 ms per direction in a VM, heard as a dropout. Cuts write into arrays reserved
    before the stream, the same ones every time, with the same numbers as a fresh cut."""
    import tracemalloc

    heads, dim, window, count = 8, 64, 250, 16
    made_ahead = KVWindow(window, PositionLayout.DYNAMIC, dim, slack=16)
    made_ahead.reserve(count, heads)
    fresh = KVWindow(window, PositionLayout.DYNAMIC, dim, slack=16)
    kv = [rng.standard_normal((1, heads, window + 18, dim)).astype(np.float32) for _ in range(count)]
    tracemalloc.start()
    try:
        first = made_ahead.trim(kv)
        allocated = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    cut_bytes = sum(a.nbytes for a in first)
    assert allocated < cut_bytes / 50, f"{allocated} bytes allocated by a cut of {cut_bytes}"
    for mine, theirs in zip(first, fresh.trim(kv), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    again = made_ahead.trim([a[:, :, ::-1].copy() for a in kv])  # the next cut: the same arrays again
    assert all(a is b for a, b in zip(first, again, strict=True))
    # Without the reservation the same cut allocates all of it: the check has teeth.
    tracemalloc.start()
    try:
        KVWindow(window, PositionLayout.DYNAMIC, dim, slack=16).trim(kv)
        assert tracemalloc.get_traced_memory()[1] >= cut_bytes
    finally:
        tracemalloc.stop()
    with pytest.raises(ValueError):
        KVWindow(0, PositionLayout.DYNAMIC, 8)


# -- the probe on real (and edited) graphs -------------------------------------------------------


def _edit_positions(path: Path, how: str) -> None:
    """Make the rotary position offset (Cast(Gather(Shape(past_key_0), 2)) to float) 0 or 2x past_len."""
    model = onnx.load(str(path))
    graph = model.graph
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    casts = [
        cast
        for shape in consumers["past_key_0"] if shape.op_type == "Shape"
        for gather in consumers[shape.output[0]] if gather.op_type == "Gather"
        for cast in consumers[gather.output[0]]
        if cast.op_type == "Cast" and helper.get_attribute_value(cast.attribute[0]) == onnx.TensorProto.FLOAT
    ]
    assert len(casts) == 1, "cannot find the float position offset in the graph"
    offset = casts[0].output[0]
    edited = f"{offset}_edited"
    if how == "zero":
        graph.initializer.append(numpy_helper.from_array(np.array(0.0, np.float32), edited))
    else:
        graph.initializer.append(numpy_helper.from_array(np.array(2.0, np.float32), "two_for_edit"))
        graph.node.append(helper.make_node("Mul", [offset, "two_for_edit"], [edited]))
    for node in consumers[offset]:
        node.input[:] = [edited if name == offset else name for name in node.input]
    onnx.save_model(model, str(path))


@pytest.fixture
def edited_model(tmp_path: Path):
    def make(how: str, files: tuple[str, ...] = ("encoder_model.onnx", "decoder_model.onnx")) -> Path:
        folder = tmp_path / f"tiny-8cb-{how}"
        shutil.copytree(model_dir("tiny-8cb"), folder)
        for name in files:
            _edit_positions(folder / name, how)
        return folder

    return make


def _probe(folder: Path, file: str, first: np.ndarray) -> PositionLayout:
    session = ort.InferenceSession(str(folder / file), providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    conv = {i.name: np.zeros(i.shape, np.float32) for i in inputs if i.name.startswith("past_conv_")}
    kv = [i.name for i in inputs if i.name.startswith(("past_key_", "past_value_"))]
    heads, dim = inputs[-1].shape[1], inputs[-1].shape[3]
    return probe_positions(session, inputs[0].name, first, conv, kv, heads, dim)


PROBE_INPUTS: dict[str, np.ndarray] = {
    "encoder_model.onnx": (0.1 * np.random.default_rng(3).standard_normal((1, 1, 2 * FRAME_SIZE))).astype(np.float32),
    "decoder_model.onnx": np.random.default_rng(3).integers(0, 64, (1, 8, 2)),
}


@pytest.mark.parametrize("file", sorted(PROBE_INPUTS))
def test_probe_outcomes(file: str, edited_model) -> None:
    assert _probe(model_dir("tiny-8cb"), file, PROBE_INPUTS[file]) is PositionLayout.DYNAMIC
    assert _probe(edited_model("zero", (file,)), file, PROBE_INPUTS[file]) is PositionLayout.FROZEN
    assert _probe(edited_model("double", (file,)), file, PROBE_INPUTS[file]) is PositionLayout.UNKNOWN


def test_codec_reports_layouts(edited_model, rng: np.random.Generator) -> None:
    assert StreamingCodec(model_dir("tiny-8cb")).position_layouts == (PositionLayout.DYNAMIC,) * 2
    frozen = StreamingCodec(edited_model("zero"), kv_window=6, kv_slack=0)
    assert frozen.position_layouts == (PositionLayout.FROZEN,) * 2 and frozen.kv_warning is None
    frozen.decode(frozen.encode(signal(rng, 5)))
    assert frozen.kv_length == (6, 6)  # FROZEN still trims (without rotation)


def test_unknown_layout_falls_back_to_growing_with_a_warning(edited_model, rng: np.random.Generator) -> None:
    codec = StreamingCodec(edited_model("double", ("decoder_model.onnx",)), kv_window=6, kv_slack=0)
    assert codec.position_layouts == (PositionLayout.DYNAMIC, PositionLayout.UNKNOWN)
    assert codec.kv_warning == (
        "KV window disabled: the probe found an unknown position layout in decoder_model.onnx; "
        "the cache grows (cost rises over time)"
    )
    assert codec.kv_window == 6
    codec.decode(codec.encode(signal(rng, 5)))
    assert codec.kv_length == (6, 10)  # encoder windowed, decoder grows
    codec.set_kv_window(None)
    assert codec.kv_warning is None  # nothing requested, nothing disabled


# -- the codec end to end ------------------------------------------------------------------------


def test_window_plateaus_and_none_grows(rng: np.random.Generator) -> None:
    windowed = StreamingCodec(model_dir("tiny-8cb"), kv_window=6, kv_slack=0)
    slack = StreamingCodec(model_dir("tiny-8cb"), kv_window=6, kv_slack=4)
    growing = StreamingCodec(model_dir("tiny-8cb"), kv_window=None)
    assert (windowed.kv_window, growing.kv_window) == (6, None)
    pcm = signal(rng, 12)
    sawtooth = [2, 4, 6, 8, 10, 6, 8, 10, 6, 8, 10, 6]  # runs 4 past the window, then cut back to it
    for frame in range(12):
        chunk = pcm[frame * FRAME_SIZE : (frame + 1) * FRAME_SIZE]
        audio = windowed.decode(windowed.encode(chunk))
        assert np.isfinite(audio).all()
        assert windowed.kv_length == (min(6, 2 * frame + 2),) * 2
        slack.decode(slack.encode(chunk))
        assert slack.kv_length == (sawtooth[frame],) * 2
        growing.decode(growing.encode(chunk))
        assert growing.kv_length == (2 * frame + 2,) * 2
    windowed.decode(windowed.encode(pcm[: 4 * FRAME_SIZE]))  # 8 new tokens in one call
    assert windowed.kv_length == (6, 6)
    windowed.reset()
    assert windowed.kv_length == (0, 0) and windowed.kv_window == 6


@pytest.mark.parametrize("window", [DEFAULT_KV_WINDOW, 48])
def test_stream_shorter_than_the_window_is_unchanged(window: int, rng: np.random.Generator) -> None:
    pcm = signal(rng, 24)  # 48 tokens
    outputs = []
    for kv_window in (window, None):
        codec = StreamingCodec(model_dir("tiny-8cb"), kv_window=kv_window)
        codes = np.concatenate([codec.encode(pcm[i : i + 2 * FRAME_SIZE]) for i in range(0, pcm.size, 2 * FRAME_SIZE)],
                               axis=1)
        audio = np.concatenate([codec.decode(codes[:, i : i + 2]) for i in range(0, 24, 2)])
        outputs.append((codes, audio))
    np.testing.assert_array_equal(outputs[0][0], outputs[1][0])
    np.testing.assert_array_equal(outputs[0][1], outputs[1][1])


def test_window_changes_long_streams(rng: np.random.Generator) -> None:
    codes = rng.integers(0, 64, (8, 30))
    got = [StreamingCodec(model_dir("tiny-8cb"), kv_window=w).decode(codes) for w in (None, 6)]
    # One 30-frame call: the window cuts only after it, so the output is the same...
    np.testing.assert_array_equal(got[0], got[1])
    a, b = (StreamingCodec(model_dir("tiny-8cb"), kv_window=w, kv_slack=0) for w in (None, 6))
    late_a = [a.decode(codes[:, i : i + 1]) for i in range(30)][-1]
    late_b = [b.decode(codes[:, i : i + 1]) for i in range(30)][-1]
    assert relative(late_b, late_a) > 1e-4  # ...but frame by frame, late frames see less history


def test_probe_leaves_the_state_alone(rng: np.random.Generator) -> None:
    folder = model_dir("tiny-8cb")
    pcm = signal(rng, 2)
    session = ort.InferenceSession(str(folder / "encoder_model.onnx"), providers=["CPUExecutionProvider"])
    feeds = {  # zero conv states, empty caches
        i.name: np.zeros((1, 2, 0, 16) if i.name.startswith("past_key") or i.name.startswith("past_value")
                         else [1, *i.shape[1:]], np.float32)
        for i in session.get_inputs()[1:]
    }
    expected = session.run(["audio_codes"], {"input_values": pcm.reshape(1, 1, -1), **feeds})[0][0]
    codec = StreamingCodec(folder)
    assert codec.kv_length == (0, 0)
    np.testing.assert_array_equal(codec.encode(pcm), expected)


def test_a_cut_a_call_made_due_waits_for_cut_kv_caches_and_the_audio_is_the_same(rng: np.random.Generator) -> None:
    # The live worker cuts once a chunk is out (cut_kv_caches); anyone else's next call cuts first.
    pcm = signal(rng, 20)
    early, late = (StreamingCodec(model_dir("tiny-8cb"), kv_window=6, kv_slack=4) for _ in range(2))
    due = []
    for frame in pcm.reshape(-1, FRAME_SIZE):
        heard = early.decode(early.encode(frame))
        due.append(early.kv_cut_due)
        early.cut_kv_caches()
        assert not early.kv_cut_due
        np.testing.assert_array_equal(late.decode(late.encode(frame)), heard)
        assert early.kv_length == late.kv_length and max(early.kv_length) <= 10
    # 2 tokens a frame past the 6 + 4 allowed: after frame 5 (12 tokens), then every 3 frames.
    assert [i for i, d in enumerate(due) if d] == [5, 8, 11, 14, 17]


def test_set_kv_window_mid_stream(rng: np.random.Generator) -> None:
    codec = StreamingCodec(model_dir("tiny-8cb"), kv_window=None, kv_slack=0)
    pcm = signal(rng, 12)
    codes = codec.encode(pcm[: 10 * FRAME_SIZE])
    codec.decode(codes)
    assert codec.kv_length == (20, 20)
    codec.set_kv_window(6)
    assert codec.kv_window == 6 and codec.kv_length == (6, 6)  # what the next call attends to: it cuts first
    codec.decode(codec.encode(pcm[10 * FRAME_SIZE :]))
    assert codec.kv_length == (6, 6)
    codec.set_kv_window(10)
    codec.decode(codec.encode(pcm[: 3 * FRAME_SIZE]))
    assert codec.kv_length == (10, 10)
    bad: Any  # not what the signatures take: refused at run time
    for bad in (0, -1, True, 2.5, "250"):
        with pytest.raises(InputError, match="kv_window"):
            codec.set_kv_window(bad)
        with pytest.raises(InputError, match="kv_window"):
            StreamingCodec(model_dir("tiny-8cb"), kv_window=bad)
    for bad in (-1, True, 2.5):
        with pytest.raises(InputError, match="kv_slack"):
            StreamingCodec(model_dir("tiny-8cb"), kv_slack=bad)


# -- exactness against the exporter's torch step with a sliding-window mask --------------------


def _assert_cache_is_rebased_reference(codec_kv: list[np.ndarray], reference: list, window: int) -> None:
    """The codec's stored cache = the reference's newest `window` entries, keys rotated back by the dropped count."""
    for index, (got, full) in enumerate(zip(codec_kv, reference, strict=False)):
        full = full.numpy()
        dropped = full.shape[2] - window
        expected = rotate_half(full[:, :, dropped:], -dropped) if index % 2 == 0 else full[:, :, dropped:]
        assert got.shape == expected.shape
        assert relative(got, expected) < 1e-5, f"KV tensor #{index}"


def test_windowed_codec_equals_torch_sliding_window_reference(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from app.codec.export.build import build_model
    from app.codec.export.streaming_torch import StreamingDecoder, StreamingEncoder, initial_state

    window, frames = 10, 40
    model = build_model(None, seed=0, tiny=True)
    codes = StreamingCodec(model_dir("tiny-8cb"), kv_window=None).encode(signal(rng, frames))

    def torch_stream(wrapper, inputs):
        state, outputs = initial_state(wrapper), []
        with torch.no_grad():
            for chunk in inputs:
                result = wrapper(torch.from_numpy(chunk), *state)
                state = list(result[1:])
                outputs.append(result[0].numpy())
        return outputs, state[len(wrapper.slots) :]

    decoder = StreamingDecoder(model, 8).eval()
    frame_codes = [np.ascontiguousarray(codes[None, :, i : i + 1]) for i in range(frames)]
    plain, _ = torch_stream(decoder, frame_codes)
    plain = np.concatenate([o[0, 0] for o in plain])
    decoder.transformer.reference_window = window
    windowed, reference_kv = torch_stream(decoder, frame_codes)
    windowed = np.concatenate([o[0, 0] for o in windowed])

    def codec_decode(kv_window):
        codec = StreamingCodec(model_dir("tiny-8cb"), kv_window=kv_window, kv_slack=0)  # an exact sliding window
        return codec, np.concatenate([codec.decode(c[0]) for c in frame_codes])

    # The builder reproduces the fixture's weights (else the comparison below means nothing)...
    assert relative(codec_decode(None)[1], plain) < 1e-5
    # ...the window really changes the audio over 40 frames (80 tokens vs 10): measured 2.5e-4
    # (the tiny model's attention is weak: its layer scales are 0.01)...
    assert relative(windowed, plain) > 1e-4
    # ...and the trimmed, re-based cache gives the sliding-window attention (measured 9e-7).
    codec, audio = codec_decode(window)
    assert relative(audio, windowed) < 1e-5
    # The audio barely feels a missing rotation here, the cache itself does: compare it entry by entry
    # (once cut: the last call made a cut due, which the live worker makes as soon as the chunk is out).
    codec.cut_kv_caches()
    _assert_cache_is_rebased_reference([codec._dec_state.values[n] for n in codec._dec_state.kv_names], reference_kv,
                                       window)

    # The encoder too: same codes and same cache as its windowed torch step.
    encoder = StreamingEncoder(model, 8).eval()
    encoder.transformer.reference_window = window
    pcm = signal(np.random.default_rng(5), frames)
    chunks = [pcm[i * FRAME_SIZE : (i + 1) * FRAME_SIZE].reshape(1, 1, -1) for i in range(frames)]
    expected, reference_kv = torch_stream(encoder, chunks)
    codec = StreamingCodec(model_dir("tiny-8cb"), kv_window=window, kv_slack=0)
    got = np.concatenate([codec.encode(c[0, 0]) for c in chunks], axis=1)
    assert (got == np.concatenate(expected, axis=2)[0]).mean() > 0.99
    codec.cut_kv_caches()
    _assert_cache_is_rebased_reference([codec._enc_state.values[n] for n in codec._enc_state.kv_names], reference_kv,
                                       window)
