"""The classic monitor paths live: the engine on FakeIO with the tiny model and the real Codec2 and
Opus codecs, each path heard in step with Mimi's (same delay to the sample)."""

from __future__ import annotations

import numpy as np
import pytest

import app.audio.classic_paths as classic_paths_module
from app.audio.classic_paths import CLASSIC_MARGIN_S
from app.audio.engine import FADE_SAMPLES, MONITORS, EngineConfig
from app.audio.metrics import EngineEvent, FrameMetrics
from app.classic import MissingPackageError, open_codec, run_file
from app.config import CLASSIC_PATH_KEYS, SAMPLE_RATE_HZ
from conftest import model_dir
from test_engine import _deterministic_preroll, drive, make_engine, noise, offset_samples  # noqa: F401

BLOCK = 480


def classic_config(monitor: str = "codec") -> EngineConfig:
    return EngineConfig(model=model_dir("tiny-8cb"), kv_window=None, monitor=monitor, classic_paths=True)


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise shaped in bursts, so a codec's output has energy to line up (and silences between)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE_HZ)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * np.arange(n) / SAMPLE_RATE_HZ)
    return (0.3 * envelope * rng.standard_normal(n)).astype(np.float32)


def envelope_lag(a: np.ndarray, b: np.ndarray, frame: int = 240, most: int = 8) -> int:
    """The lag (in 10 ms frames) at which the log-energy envelopes of a and b match best."""
    def env(x: np.ndarray) -> np.ndarray:
        e = np.log10(1e-8 + (x[: len(x) // frame * frame].reshape(-1, frame) ** 2).mean(axis=1))
        return e - e.mean()
    ea, eb = env(a), env(b)
    lags = range(-most, most + 1)
    scores = [float(np.dot(ea[most + lag : len(ea) - most + lag], eb[most : len(eb) - most])) for lag in lags]
    return lags[int(np.argmax(scores))]


@pytest.mark.parametrize("key", CLASSIC_PATH_KEYS)
def test_a_classic_path_plays_its_codec_output_with_the_bypass_delay(key: str) -> None:
    engine, ios = make_engine()
    engine.start(classic_config(key), threaded=False)
    signal = speechlike(3.0)
    played = drive(engine, ios[0], signal, ticks=len(signal) // BLOCK)
    start = offset_samples(engine)  # where bypass would put input sample 0 (test_engine's offset)
    n = (len(played) - start) // 1920 * 1920
    assert n >= 2 * SAMPLE_RATE_HZ
    expected = run_file(open_codec(key), signal)[:n]  # the codec's output aligned with its input
    got = played[start : start + n]
    assert not np.any(played[:start])
    assert np.abs(expected).max() > 0.05
    assert engine._session is not None and engine._session.bank is not None
    live = engine._session.bank.codecs[key]
    # The live codec was fed exactly the input, in order: its bit stream is the reference's.
    reference = open_codec(key)
    fed = engine._session.bank.fed[key]
    for i in range(0, fed, 1920):
        reference.process(signal[i : min(i + 1920, fed)])
    assert (live.payload_crc, live.samples_encoded) == (reference.payload_crc, reference.samples_encoded)
    if key.startswith("opus"):  # the waveform itself, to the sample
        np.testing.assert_allclose(got[FADE_SAMPLES:], expected[FADE_SAMPLES:], atol=1e-6)
    else:  # Codec2's unvoiced phases come from a process-wide random generator: the energy lines up
        assert envelope_lag(got, expected) == 0
        assert envelope_lag(got, signal[:n]) == 0
    summary = engine.stop()
    assert summary["underruns"] == 0 and summary["dropped_frames"] == 0
    assert engine.info["classic_short_samples"] == 0


def test_opus_cross_correlates_with_the_bypass_path_at_lag_zero() -> None:
    engine, ios = make_engine()
    engine.start(classic_config("bypass"), threaded=False)
    signal = speechlike(4.0, seed=2)
    half = len(signal) // 2 // BLOCK * BLOCK
    first = drive(engine, ios[0], signal[:half], ticks=half // BLOCK)
    engine.monitor = "opus-12k"
    second = drive(engine, ios[0], signal[half:], ticks=(len(signal) - half) // BLOCK)
    played = np.concatenate([first, second])
    start = offset_samples(engine)
    bypass = played[start + FADE_SAMPLES : start + half]
    np.testing.assert_array_equal(bypass, signal[FADE_SAMPLES:half])  # bypass: the input, `start` late
    # The Opus part against the input at the same offset: the best lag is 0 (within 1 sample).
    seg = slice(half + 4800, half + 4800 + 24000)
    opus = played[start + seg.start : start + seg.stop]
    lags = range(-40, 41)
    scores = [float(np.dot(opus, signal[seg.start + lag : seg.stop + lag])) for lag in lags]
    assert abs(lags[int(np.argmax(scores))]) <= 1
    engine.stop()


def test_switching_among_all_seven_paths_keeps_the_stream_in_step_without_underruns() -> None:
    engine, ios = make_engine()
    engine.start(classic_config(), threaded=False)
    signal = speechlike(12.0, seed=1)
    piece = 25 * BLOCK  # half a second per path
    played, pos = [], 0
    for mode in (*MONITORS, *MONITORS, "opus-6k"):
        engine.monitor = mode
        played.append(drive(engine, ios[0], signal[pos : pos + piece], ticks=piece // BLOCK))
        pos += piece
    tail = 2 * piece
    engine.monitor = "opus-12k"  # the last stretch, after all the switches: still aligned
    played.append(drive(engine, ios[0], signal[pos : pos + tail], ticks=tail // BLOCK))
    pos += tail
    out = np.concatenate(played)
    metrics = [m for m in engine.queue.drain() if isinstance(m, FrameMetrics)]
    assert {m.monitor for m in metrics} == set(MONITORS)
    assert len({round(m.target_ms, 3) for m in metrics}) == 1, "the target must not depend on the path heard"
    start = offset_samples(engine)
    expected = run_file(open_codec("opus-12k"), signal[:pos])
    check = slice(pos - tail + 1920, len(out) - start)
    assert check.stop - check.start > SAMPLE_RATE_HZ // 2
    np.testing.assert_allclose(out[start + check.start : start + check.stop], expected[check], atol=1e-6)
    summary = engine.stop()
    assert summary["underruns"] == 0 and summary["dropped_frames"] == 0 and summary["xruns"] == 0
    assert engine.info["classic_short_samples"] == 0


def test_the_bank_adds_the_longest_look_ahead_to_every_paths_target() -> None:
    targets = {}
    for classic in (False, True):
        engine, ios = make_engine()
        engine.start(EngineConfig(model=model_dir("tiny-8cb"), kv_window=None, classic_paths=classic), threaded=False)
        drive(engine, ios[0], noise(1.0), ticks=50)
        targets[classic] = engine.info["preroll_ms"]
        engine.stop()
    longest = max(open_codec(key).delay_samples for key in CLASSIC_PATH_KEYS)
    extra_ms = (longest / SAMPLE_RATE_HZ + CLASSIC_MARGIN_S) * 1000
    assert targets[True] - targets[False] == pytest.approx(extra_ms, abs=0.05)


def test_a_classic_monitor_needs_the_classic_paths_on() -> None:
    from app.audio.engine import EngineError

    with pytest.raises(EngineError, match="classic paths"):
        EngineConfig(model=model_dir("tiny-8cb"), monitor="opus-6k").validate()
    classic_config("opus-6k").validate()


def test_the_measured_bitrates_are_published() -> None:
    engine, ios = make_engine()
    engine.start(classic_config("codec"), threaded=False)
    drive(engine, ios[0], speechlike(4.0), ticks=4 * SAMPLE_RATE_HZ // BLOCK)
    bps = engine.info["classic_bps"]
    assert bps["codec2-1200"] == 1200 and bps["codec2-3200"] == 3200
    assert 3000 < bps["opus-6k"] < 9000 and 8000 < bps["opus-12k"] < 16000
    assert engine.info["classic_delay_samples"] == {"codec2-1200": 1916, "codec2-3200": 1436,
                                                    "opus-6k": 635, "opus-12k": 635}
    engine.stop()


def test_a_generated_source_plays_a_classic_path_in_step_too() -> None:
    from app.audio.sources import ToneSource

    engine, ios = make_engine()
    config = classic_config("opus-12k")
    config.source = "tone"
    engine.start(config, threaded=False)
    played = drive(engine, ios[0], None, ticks=100)
    start = offset_samples(engine)
    n = (len(played) - start) // 1920 * 1920
    tone = np.zeros(n + 4000, np.float32)
    ToneSource(config.tone_hz).read(tone)
    expected = run_file(open_codec("opus-12k"), tone)[:n]
    np.testing.assert_allclose(played[start + FADE_SAMPLES : start + n], expected[FADE_SAMPLES:], atol=1e-6)
    engine.stop()


def test_without_the_codec_packages_the_bank_is_off_and_the_app_works_as_before(monkeypatch) -> None:
    def missing(key: str):
        raise MissingPackageError(f"{key} needs pycodec2")

    monkeypatch.setattr(classic_paths_module, "open_codec", missing)
    engine, ios = make_engine()
    engine.start(classic_config("codec2-1200"), threaded=False)
    signal = noise(1.5)
    played = drive(engine, ios[0], signal, ticks=len(signal) // BLOCK)
    warnings = [e for e in engine.queue.drain() if isinstance(e, EngineEvent) and e.kind == "warning"]
    assert len(warnings) == 1 and "classic monitor paths are off" in warnings[0].message
    assert engine.info["classic_bps"] is None
    assert np.abs(played[offset_samples(engine):]).max() > 0  # Mimi's path plays instead
    summary = engine.stop()
    assert summary["underruns"] == 0


def best_lag(played: np.ndarray, reference: np.ndarray, at: int, n: int, lags: range) -> int:
    """The delay (samples) at which played[at : at + n] matches the reference best."""
    scores = [float(np.dot(played[at : at + n], reference[at - lag : at - lag + n])) for lag in lags]
    return lags[int(np.argmax(scores))]


def test_the_classic_paths_turned_on_while_streaming_play_in_step_and_off_again() -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb"), kv_window=None, monitor="bypass"), threaded=False)
    signal = speechlike(10.0, seed=3)
    rate, pos, played = SAMPLE_RATE_HZ, 0, []

    def play(seconds: float) -> None:
        nonlocal pos
        n = int(seconds * rate) // BLOCK * BLOCK
        played.append(drive(engine, ios[0], signal[pos : pos + n], ticks=n // BLOCK))
        pos += n

    def targets() -> set[float]:
        return {round(m.target_ms, 1) for m in engine.queue.drain() if isinstance(m, FrameMetrics)}

    play(2.0)
    before = targets()
    out = np.concatenate(played)
    bypass_delay = best_lag(out, signal, len(out) - rate, rate // 2, range(0, rate // 2))
    loader = engine.set_classic_paths(True)
    assert loader is not None
    loader.join(10)
    play(2.0)  # the bank goes in, the delay grows by its look-ahead
    assert engine._session is not None and engine._session.bank is not None
    bank_start = engine._session.bank.start
    extra_ms = engine._session.bank.cover_extra_s * 1000
    grown = targets()
    assert max(grown) - max(before) == pytest.approx(extra_ms, abs=0.2)
    engine.monitor = "opus-12k"
    play(3.0)
    out = np.concatenate(played)
    expected = np.zeros(len(signal), np.float32)
    opus = run_file(open_codec("opus-12k"), signal[bank_start:pos])
    expected[bank_start : bank_start + len(opus)] = opus  # the path's output, aligned with its input
    at, n = len(out) - rate, rate // 2
    lag = best_lag(out, expected, at, n, range(bypass_delay, bypass_delay + rate // 5))
    got, want = out[at : at + n], expected[at - lag : at - lag + n]
    assert np.corrcoef(got, want)[0, 1] > 0.999, "the Opus path's own output is heard"
    # The delay grew by the look-ahead (within the timing's band: a few ms).
    assert abs((lag - bypass_delay) * 1000 / rate - extra_ms) < 8
    assert engine.set_classic_paths(False) is None
    play(2.5)
    assert engine.monitor == "codec" and engine._session.bank is None
    assert min(targets()) == pytest.approx(max(before), abs=0.2)
    engine.monitor = "bypass"
    play(0.5)
    out = np.concatenate(played)
    after = best_lag(out, signal, len(out) - rate // 4, rate // 8, range(0, rate // 2))
    assert abs(after - bypass_delay) < 8 * rate // 1000, "the delay fell back"
    summary = engine.stop()
    assert summary["underruns"] == 0 and summary["dropped_frames"] == 0
    assert engine.info["classic_short_samples"] == 0


def test_a_classic_path_asked_for_as_it_is_turned_on_waits_for_the_delay_to_grow() -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb"), kv_window=None), threaded=False)
    drive(engine, ios[0], speechlike(2.0, seed=4), ticks=2 * SAMPLE_RATE_HZ // BLOCK)
    loader = engine.set_classic_paths(True)
    assert loader is not None
    loader.join(10)
    engine.monitor = "codec2-1200"  # the longest look-ahead, asked for before the delay has grown
    signal = speechlike(3.0, seed=5)
    drive(engine, ios[0], signal[: 4 * 1920], ticks=4 * 1920 // BLOCK)
    session = engine._session
    assert session is not None and session.bank is not None
    # Reading a chunk 80 ms later now would take that from the speaker queue: Mimi's path plays on.
    assert not session.bank_audible
    assert session.timing.in_flight < session.timing.target - session.bank.max_delay // 2
    drive(engine, ios[0], signal[4 * 1920 :], ticks=(len(signal) - 4 * 1920) // BLOCK)
    assert session.bank_audible  # grown: heard, in step
    assert session.timing.in_flight >= session.timing.target - session.timing.tolerance
    summary = engine.stop()
    assert summary["underruns"] == 0
    assert engine.info["classic_short_samples"] == 0


def test_the_classic_paths_turned_off_while_they_open_stay_off() -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb"), kv_window=None), threaded=False)
    drive(engine, ios[0], noise(0.5), ticks=25)
    loader = engine.set_classic_paths(True)
    assert engine.set_classic_paths(False) is None  # before the bank has opened and gone in
    assert loader is not None
    loader.join(10)
    drive(engine, ios[0], noise(1.0), ticks=50)
    assert engine._session is not None and engine._session.bank is None
    assert engine.set_classic_paths(True) is not None
    engine.stop()
