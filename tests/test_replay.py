"""The instant replay: the tape it reads, the side decoder, the player, and the engine playing a
replay in place of its monitor (the real engine and codec on the fake audio backend, as
tests/test_engine.py)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import fftconvolve

from app.audio.engine import Engine, EngineConfig
from app.audio.metrics import EngineEvent, FrameMetrics
from app.audio.replay import GAP_S, ReplayClip, ReplayError, ReplayPlayer, plan_replay, render_clips
from app.audio.tape import NO_CODE, AudioTap
from app.codec import StreamingCodec
from app.codec.side_decoder import SideDecoder
from app.config import FRAME_SIZE, REPLAY_S, SAMPLE_RATE_HZ
from conftest import model_dir
from test_engine import BLOCK, _deterministic_preroll, drive, make_engine  # noqa: F401 - the fixture

SPEECH = model_dir("tiny-8cb").parent / "speech-espeak.wav"
GAP = int(GAP_S * SAMPLE_RATE_HZ)


def speech(seconds: float) -> np.ndarray:
    pcm, rate = sf.read(SPEECH, dtype="float32")
    assert rate == SAMPLE_RATE_HZ
    return np.tile(pcm, int(seconds * rate / len(pcm)) + 1)[: int(seconds * rate)]


# -- the player ------------------------------------------------------------------------------------


def test_the_player_plays_each_clip_in_turn_with_a_gap_and_announces_it() -> None:
    clips = [ReplayClip(str(i), f"clip {i}", np.full(1000 * (i + 1), i + 1, np.float32)) for i in range(3)]
    announced: list[int] = []
    player = ReplayPlayer(clips, lambda index, clip: announced.append(index))
    played = np.concatenate([player.take(480) for _ in range(80)])
    assert player.done and announced == [0, 1, 2]
    expected = np.concatenate([np.concatenate([c.audio, np.zeros(GAP, np.float32)]) for c in clips])
    np.testing.assert_array_equal(played[: len(expected)], expected)
    assert not played[len(expected):].any()


def test_the_player_waits_in_silence_for_a_clip_still_being_made() -> None:
    late = ReplayClip("late", "late")
    player = ReplayPlayer([ReplayClip("a", "a", np.ones(480, np.float32)), late], lambda i, c: None)
    first = np.concatenate([player.take(480) for _ in range(1 + GAP // 480 + 3)])
    assert first[:480].all() and not first[480:].any() and not player.done
    late.audio = np.full(480, 2.0, np.float32)
    after = np.concatenate([player.take(480) for _ in range(2 + GAP // 480)])
    assert (after[:480] == 2.0).all() and player.done


def test_a_clip_that_cannot_be_made_is_skipped_and_said() -> None:
    broken = ReplayClip("opus-6k", "Opus 6 kbps", problem="av could not be imported")
    seen: list[str] = []
    player = ReplayPlayer([broken, ReplayClip("b", "b", np.ones(480, np.float32))],
                          lambda i, clip: seen.append(clip.problem or clip.label))
    assert player.take(480).all()  # straight on to the next clip, no gap for the skipped one
    assert seen == ["av could not be imported", "b"]


# -- the tape --------------------------------------------------------------------------------------


def test_the_tape_keeps_input_output_and_codes_in_step_however_long_it_runs() -> None:
    tap = AudioTap(seconds=1.0)
    codec = object()
    chunks = int(3 * SAMPLE_RATE_HZ / FRAME_SIZE)  # three times the tape: it wraps
    for i in range(chunks):
        dry = np.full(FRAME_SIZE, i, np.float32)
        codes = np.full((4 if i % 2 else 8, 1), i, np.int64)  # the codebook count changes
        tap.append(dry, -dry, 2 * dry, codes, "codec", codec)
    snap = tap.snapshot()
    frames = int(1.0 * SAMPLE_RATE_HZ) // FRAME_SIZE
    assert len(snap.dry) == frames * FRAME_SIZE and snap.codec is codec and snap.codebooks == 8
    first = chunks - frames
    np.testing.assert_array_equal(snap.dry[::FRAME_SIZE], np.arange(first, chunks))
    np.testing.assert_array_equal(snap.wet, -snap.dry)
    np.testing.assert_array_equal(snap.heard, 2 * snap.dry)
    np.testing.assert_array_equal(snap.codes[0], np.arange(first, chunks))
    rows_sent = (snap.codes[4:8] != NO_CODE).all(axis=0)
    np.testing.assert_array_equal(rows_sent, np.arange(first, chunks) % 2 == 0)


def test_the_tape_goes_back_no_further_than_the_codecs_first_frame() -> None:
    tap = AudioTap()
    old, new = object(), object()
    for _ in range(20):
        tap.append(np.ones(FRAME_SIZE, np.float32), np.ones(FRAME_SIZE, np.float32), codes=np.zeros((8, 1)), codec=old)
    for _ in range(15):
        tap.append(np.ones(FRAME_SIZE, np.float32), np.ones(FRAME_SIZE, np.float32), codes=np.zeros((8, 1)), codec=new)
    snap = tap.snapshot()
    assert snap.codec is new and len(snap.dry) == 15 * FRAME_SIZE  # older codes are another model's


def test_nothing_to_replay_is_one_clear_line() -> None:
    with pytest.raises(ReplayError, match="nothing to replay yet: stream for a few seconds first"):
        Engine().replay()


# -- the side decoder ------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [8, 4, 1])
def test_the_side_decoder_decodes_stored_codes_as_a_codec_switched_to_k_would(k: int) -> None:
    live = StreamingCodec(model_dir("tiny-8cb"))
    pcm = speech(1.6)
    codes = [live.encode(pcm[i : i + FRAME_SIZE]) for i in range(0, len(pcm), FRAME_SIZE)]
    reference = StreamingCodec(model_dir("tiny-8cb"), codebooks=k)
    expected = np.concatenate([reference.decode(c[:k]) for c in codes])
    side = SideDecoder(live, k)
    got = np.concatenate([side.decode(np.concatenate(codes[i : i + 5], axis=1)) for i in range(0, len(codes), 5)])
    np.testing.assert_allclose(got, expected, atol=1e-5)  # 5 frames a call: the same but for rounding


# -- the engine ------------------------------------------------------------------------------------


def best_match(played: np.ndarray, clip: np.ndarray) -> tuple[int, float]:
    """Where `clip` sits in `played`, and the normalised correlation there (1: the very samples)."""
    core = clip[len(clip) // 4 : 3 * len(clip) // 4].astype(np.float64)  # away from the edge fades
    played = played.astype(np.float64)
    scores = fftconvolve(played, core[::-1], mode="valid")
    energy = np.concatenate([[0.0], np.cumsum(played**2)])
    local = np.sqrt(energy[len(core):] - energy[: -len(core)]) * np.linalg.norm(core) + 1e-9
    normalised = scores / local
    at = int(np.argmax(normalised))
    return at - len(clip) // 4, float(normalised[at])


def test_a_replay_while_streaming_plays_every_path_in_turn_then_live_again() -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb"), kv_window=None), threaded=False)
    io = ios[0]
    drive(engine, io, speech(REPLAY_S + 2), ticks=int((REPLAY_S + 2) * SAMPLE_RATE_HZ) // BLOCK)
    target_before = [m for m in engine.queue.drain() if isinstance(m, FrameMetrics)][-1].target_ms
    labels = engine.replay()
    assert labels[0] == "Original" and labels[1].startswith("Mimi 8 codebooks")
    assert labels[2].startswith("Mimi 4 codebooks") and labels[3:] == ["Codec2 1200", "Opus 6 kbps"]
    clips = engine.replayer.clips
    assert [len(c.audio) for c in clips[:2] if c.audio is not None] == [int(REPLAY_S * SAMPLE_RATE_HZ)] * 2
    played, events = [], []
    for _ in range(int(6 * (REPLAY_S + 1) * SAMPLE_RATE_HZ / BLOCK)):
        played.append(drive(engine, io, None, ticks=1))
        events += [m for m in engine.queue.drain() if isinstance(m, EngineEvent) and m.kind == "replay"]
        if events and events[-1].message.startswith("Replay done"):
            break
        time.sleep(0.0005)  # the render thread runs at the lowest priority: let it
    messages = [e.message for e in events]
    assert messages == [f"Replay {i + 1}/5: {clip.label}" for i, clip in enumerate(clips)] + ["Replay done: live again"]
    assert clips[3].label == "Codec2 1200 (1.2 kbps)"  # measured from the bytes it produced
    out = np.concatenate(played)
    positions = []
    length = int(REPLAY_S * SAMPLE_RATE_HZ)
    for clip in clips:  # each path's version is played whole, in order, as made
        assert clip.audio is not None and len(clip.audio) == length
        at, score = best_match(out, clip.audio)
        assert score > 0.99, (clip.key, score)
        positions.append(at)
    assert positions == sorted(positions)
    assert np.diff(positions).min() >= length + GAP  # one after another, a gap between
    after = drive(engine, io, speech(2.0), ticks=int(2.0 * SAMPLE_RATE_HZ) // BLOCK)
    assert np.abs(after[-SAMPLE_RATE_HZ:]).max() > 0  # live monitoring is back
    metrics = [m for m in engine.queue.drain() if isinstance(m, FrameMetrics)]
    assert metrics[-1].target_ms == pytest.approx(target_before, abs=1.0)  # the delay in flight untouched
    assert engine.stop()["underruns"] == 0


def test_mimi_at_fewer_codebooks_in_a_replay_is_the_stored_codes_decoded_again() -> None:
    tap = AudioTap()
    live = StreamingCodec(model_dir("tiny-8cb"))
    pcm = speech(36 * FRAME_SIZE / SAMPLE_RATE_HZ)
    reference = StreamingCodec(model_dir("tiny-8cb"), codebooks=4)
    expected = []
    for i in range(0, len(pcm), FRAME_SIZE):
        codes = live.encode(pcm[i : i + FRAME_SIZE])
        tap.append(pcm[i : i + FRAME_SIZE], live.decode(codes), codes=codes, codec=live)
        expected.append(reference.decode(codes[:4]))
    snap = tap.snapshot()
    clips = plan_replay(snap, classic_keys=())
    render_clips(clips, snap, threading.Event())
    fewer = clips[2]
    assert fewer.key == "mimi-4" and fewer.audio is not None
    core = slice(200, -200)  # away from the 5 ms edge fades
    np.testing.assert_allclose(fewer.audio[core], np.clip(np.concatenate(expected), -1, 1)[core], atol=1e-5)
