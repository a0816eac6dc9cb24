"""The live engine on a deterministic fake audio backend (real codec, real rings, no sound card).

The test plays PortAudio's part with FakeIO.tick() and runs the worker's step() itself, so every
sample's path is reproducible.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from app.audio.engine import FADE_SAMPLES, Engine, EngineConfig, EngineError
from app.audio.fake_io import FakeIO
from app.audio.metrics import EngineEvent, FrameMetrics
from app.codec import StreamingCodec
from app.codec.kvwindow import DEFAULT_KV_SLACK
from app.config import FRAME_SIZE, SAMPLE_RATE_HZ
from conftest import model_dir

BLOCK = 480  # 20 ms device blocks


@pytest.fixture(autouse=True)
def _deterministic_preroll(monkeypatch: pytest.MonkeyPatch) -> None:
    """FakeIO's clock is the test's ticks (the engine times itself with it), and the warm-up
    reports a fixed 5 ms per call, so wall-clock compute time never changes what plays."""
    import app.audio.engine as engine_module
    import app.audio.live_changes as live_changes_module

    real_warm_up = engine_module.warm_up

    def fixed_warm_up(codec, chunk_samples, calls=engine_module.WARMUP_CALLS):
        real_warm_up(codec, chunk_samples, calls)
        return [0.005] * calls

    monkeypatch.setattr(engine_module, "warm_up", fixed_warm_up)  # at start
    monkeypatch.setattr(live_changes_module, "warm_up", fixed_warm_up)  # a live switch


def test_the_first_target_covers_twice_the_slowest_warm_up_call_and_an_input_block() -> None:
    from app.audio.engine_config import INITIAL_COVER_BLOCK_S, initial_cover_s

    assert initial_cover_s([0.020, 0.022, 0.021]) == pytest.approx(2 * 0.022 + INITIAL_COVER_BLOCK_S)


def make_engine(**io_options) -> tuple[Engine, list[FakeIO]]:
    made: list[FakeIO] = []

    def factory(config: EngineConfig) -> FakeIO:
        made.append(FakeIO(use_input=config.source == "mic", **io_options))
        return made[-1]

    return Engine(io_factory=factory), made


def drive(engine: Engine, io: FakeIO, signal: np.ndarray | None, ticks: int, block_out: int = BLOCK) -> np.ndarray:
    """Feeds `signal` (device-rate input) block by block, lets the worker catch up after each block."""
    played = []
    block_in = round(block_out * (io.input_rate or io.output_rate) / io.output_rate)
    for i in range(ticks):
        chunk = None if signal is None else signal[i * block_in : (i + 1) * block_in]
        played.append(io.tick(block_out, chunk))
        while engine.step():
            pass
    return np.concatenate(played)


def noise(seconds: float, rate: int = SAMPLE_RATE_HZ, seed: int = 0) -> np.ndarray:
    return (0.2 * np.random.default_rng(seed).standard_normal(int(seconds * rate))).astype(np.float32)


def eventually(check, timeout_s: float = 5.0) -> bool:
    """Polls `check` (the recorder writes on its own thread) until true or the timeout."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def events(engine: Engine) -> list[EngineEvent]:
    return [item for item in engine.queue.drain() if isinstance(item, EngineEvent)]


def offset_samples(engine: Engine) -> int:
    """Where the first processed chunk starts in the played audio: pre-roll + one chunk of silence."""
    preroll = round(engine.info["preroll_ms"] * SAMPLE_RATE_HZ / 1000)
    assert engine.config is not None
    return preroll + engine.config.chunk_samples


@pytest.mark.parametrize("chunk_ms", [80, 240])
def test_codec_mode_plays_exactly_the_codec_output(chunk_ms: int) -> None:
    engine, ios = make_engine()
    config = EngineConfig(model=model_dir("tiny-8cb"), chunk_ms=chunk_ms, kv_window=None)
    engine.start(config, threaded=False)
    signal = noise(3.0)
    played = drive(engine, ios[0], signal, ticks=len(signal) // BLOCK)
    start = offset_samples(engine)
    chunk = config.chunk_samples
    processed = (len(played) - start) // chunk * chunk
    reference = StreamingCodec(model_dir("tiny-8cb"), kv_window=None)
    expected = np.concatenate([reference.decode(reference.encode(signal[i : i + chunk]))
                               for i in range(0, processed, chunk)])
    got = played[start : start + processed]
    assert not np.any(played[:start]), "pre-roll must be silence"
    np.testing.assert_allclose(got[FADE_SAMPLES:], expected[FADE_SAMPLES:], atol=1e-5 * np.abs(expected).max())
    summary = engine.stop()
    assert summary["underruns"] == 0 and summary["dropped_frames"] == 0
    assert summary["frames"] == len(signal) // chunk * chunk // FRAME_SIZE  # every whole chunk that arrived


def test_bypass_is_the_input_delayed_by_the_codec_path_and_residual_is_the_difference() -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb"), monitor="bypass"), threaded=False)
    signal = noise(2.0)
    played = drive(engine, ios[0], signal, ticks=len(signal) // BLOCK)
    start = offset_samples(engine)
    n = len(played) - start
    np.testing.assert_array_equal(played[start + FADE_SAMPLES : start + n], signal[FADE_SAMPLES:n])

    engine.monitor = "residual"
    more = drive(engine, ios[0], noise(1.0, seed=1), ticks=50)
    metrics = [m for m in engine.queue.drain() if isinstance(m, FrameMetrics)]
    assert metrics[-1].monitor == "residual"
    assert np.abs(more).max() > 0
    engine.stop()


def test_monitor_switch_crossfades_instead_of_jumping() -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb"), monitor="bypass"), threaded=False)
    tone = (0.5 * np.sin(2 * np.pi * 300 * np.arange(SAMPLE_RATE_HZ * 2) / SAMPLE_RATE_HZ)).astype(np.float32)
    drive(engine, ios[0], tone[: SAMPLE_RATE_HZ], ticks=SAMPLE_RATE_HZ // BLOCK)
    engine.monitor = "codec"
    played = drive(engine, ios[0], tone[SAMPLE_RATE_HZ:], ticks=SAMPLE_RATE_HZ // BLOCK)
    # Bypass of a smooth tone: sample-to-sample steps stay small through the switch's ramp.
    switch = np.argmax(np.abs(np.diff(played)) > 0)  # first audible sample of the played block
    steps = np.abs(np.diff(played[switch : switch + FADE_SAMPLES // 2]))
    assert steps.max() < 0.2
    engine.stop()


def test_device_rates_are_converted_both_ways() -> None:
    engine, ios = make_engine(input_rate=48_000, output_rate=44_100)
    engine.start(EngineConfig(model=model_dir("tiny-8cb"), monitor="bypass"), threaded=False)
    t = np.arange(48_000 * 3) / 48_000
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    played = drive(engine, ios[0], tone, ticks=3 * 44_100 // 441, block_out=441)
    tail = played[-44_100:]
    peak_hz = np.argmax(np.abs(np.fft.rfft(tail * np.hanning(len(tail))))) * 44_100 / len(tail)
    assert abs(peak_hz - 1000) < 5
    assert engine.stop()["underruns"] == 0


def test_falling_behind_drops_whole_frames_instead_of_growing_latency() -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb")), threaded=False)
    io = ios[0]
    for block in np.split(noise(2.0), 100):  # 2 s arrive while the worker is stalled
        io.tick(BLOCK, block)
    engine.step()
    metrics = [m for m in engine.queue.drain() if isinstance(m, FrameMetrics)]
    assert metrics[-1].dropped_frames >= 20  # 25 frames arrived, at most ~2 chunks may wait
    assert metrics[-1].queue_ms <= 80
    engine.stop()


def test_an_all_zero_microphone_is_reported_after_two_seconds() -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb")), threaded=False)
    drive(engine, ios[0], None, ticks=50)  # 1 s
    assert not [e for e in events(engine) if e.kind == "warning"]
    drive(engine, ios[0], None, ticks=60)  # 2.2 s in all
    warnings = [e for e in events(engine) if e.kind == "warning"]
    assert len(warnings) == 1 and "only zeros" in warnings[0].message
    engine.stop()


def test_a_vanished_device_is_reopened_and_streaming_goes_on(tmp_path) -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb"), record_dir=tmp_path), threaded=False)
    drive(engine, ios[0], noise(0.5), ticks=25)
    before = engine.stats.frames
    ios[0].simulate_device_lost("input")
    assert engine.step() is False  # reopens the devices (a new FakeIO: "it is back")
    assert engine.running and len(ios) == 2 and ios[1].active
    drive(engine, ios[1], noise(1.0, seed=1), ticks=50)
    said = [(e.kind, e.message) for e in events(engine)]
    assert ("warning", f"{ios[0].error}: reconnecting to the audio devices…") in said
    assert any(kind == "info" and message.startswith("audio is back") for kind, message in said)
    summary = engine.stop()
    assert summary["frames"] > before + 10 and summary["reconnects"] == 1
    assert engine.info["recording"] is not None  # the recording went on through it


def test_a_stream_failing_every_call_is_reopened(tmp_path) -> None:
    """A server that died can leave PortAudio's stream calling back with an error flag on every
    call, forever, without finishing: that is a dead stream too, and it is reopened."""
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb"), source="tone"), threaded=False)
    drive(engine, ios[0], None, ticks=25)
    for _ in range(250):  # 5 s of failing calls: seen within two 2 s windows
        ios[0].tick(BLOCK, output_status=1)
        while engine.step():
            pass
        if len(ios) == 2:
            break
    assert engine.running and len(ios) == 2
    said = [e.message for e in events(engine) if e.kind == "warning"]
    assert any("failed every call" in message and "reconnecting" in message for message in said)
    drive(engine, ios[1], None, ticks=50)
    assert engine.stop()["reconnects"] == 1


def test_the_first_chunk_waits_for_an_output_stream_that_rushes_as_it_starts() -> None:
    """PulseAudio's ALSA plugin often starts an output stream in a rush: callbacks ~1 ms apart,
    each flagged, taking 5x real time (output_settle.py). A first chunk placed then would be eaten
    and the queue behind it run dry: counted dropouts in a session nothing disturbed."""
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb")), threaded=False)
    io, rush_in, rush_out = ios[0], 24, 120
    speech = noise(0.1)
    for i in range(100):  # 0.5 s of audio taken in 0.1 s; the input has a whole frame by tick 80
        io.tick(rush_out, speech[i * rush_in : (i + 1) * rush_in], output_status=1)
        while engine.step():
            pass
    assert not [m for m in engine.queue.drain() if isinstance(m, FrameMetrics)]  # it waited
    played = drive(engine, io, noise(1.0, seed=1), ticks=50)
    summary = engine.stop()
    assert summary["frames"] >= 10 and np.abs(played).max() > 0.05
    assert summary["underruns"] == 0 and summary["xruns"] == 0 and summary["dropped_frames"] == 0


def test_device_xruns_are_told_apart_by_device_and_survive_a_reconnect() -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb")), threaded=False)
    drive(engine, ios[0], noise(0.5), ticks=25)
    for input_status, output_status in ((1, 0), (1, 0), (0, 4)):  # two late microphone callbacks, one speaker's
        ios[0].tick(BLOCK, input_status=input_status, output_status=output_status)
    drive(engine, ios[0], noise(0.5, seed=1), ticks=25)
    ios[0].simulate_device_lost("output")
    engine.step()  # reopened: the closed streams' counts are carried
    drive(engine, ios[1], noise(0.5, seed=2), ticks=25)
    ios[1].tick(BLOCK, output_status=4)
    drive(engine, ios[1], noise(0.5, seed=3), ticks=25)
    summary = engine.stop()
    assert summary["reconnects"] == 1
    assert summary["xruns"] == 4 and summary["xruns_by_device"] == {"input": 2, "output": 2}


def test_devices_switch_while_streaming() -> None:
    made: list[tuple[object, FakeIO]] = []

    def factory(config: EngineConfig) -> FakeIO:
        made.append((config.output_device, FakeIO(use_input=True)))
        return made[-1][1]

    engine = Engine(io_factory=factory)
    engine.start(EngineConfig(model=model_dir("tiny-8cb")), threaded=False)
    drive(engine, made[0][1], noise(0.5), ticks=25)
    engine.set_devices(None, "USB headset")
    drive(engine, made[0][1], noise(0.1), ticks=1)  # the switch happens at the next step
    assert [device for device, _ in made] == [None, "USB headset"] and engine.running
    before = engine.stats.frames
    drive(engine, made[1][1], noise(1.0, seed=1), ticks=50)
    assert engine.config is not None
    assert engine.stats.frames > before + 5 and engine.config.output_device == "USB headset"
    engine.stop()


def test_a_device_that_never_comes_back_stops_the_engine_cleanly_and_it_can_start_again() -> None:
    from app.audio.devices import DeviceError

    made: list[FakeIO] = []
    gone: list[object] = []

    def factory(config: EngineConfig) -> FakeIO:
        if gone:
            raise DeviceError("no such device")
        made.append(FakeIO(use_input=True))
        return made[-1]

    engine = Engine(io_factory=factory)
    engine.reconnect_timeout_s = 0.3
    config = EngineConfig(model=model_dir("tiny-8cb"))
    engine.start(config, threaded=False)
    drive(engine, made[0], noise(0.5), ticks=25)
    gone.append(True)
    made[0].simulate_device_lost("input")
    assert engine.step() is False
    assert not engine.running
    kinds = [e.kind for e in events(engine)]
    assert kinds[-3:] == ["warning", "error", "stopped"]
    assert "device" in (engine.stop_reason or "")
    gone.clear()
    engine.start(config, threaded=False)  # a fresh start works
    drive(engine, made[1], noise(0.5), ticks=25)
    assert engine.stop()["frames"] > 0


def test_recording_writes_input_and_reconstruction_readable_while_running(tmp_path) -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb"), record_dir=tmp_path), threaded=False)
    signal = noise(1.0)
    drive(engine, ios[0], signal, ticks=50)
    frames = engine.stats.frames
    input_path, output_path = map(type(tmp_path), engine.info["recording"])
    # Still recording: the headers are up to date once the writer thread has the chunks.
    for path in (input_path, output_path):
        assert eventually(lambda path=path: sf.info(str(path)).frames == frames * FRAME_SIZE)
    recorded, rate = sf.read(str(input_path), dtype="float32")
    assert rate == SAMPLE_RATE_HZ
    np.testing.assert_allclose(recorded, signal[: len(recorded)], atol=1 / 32768)
    engine.stop()
    assert sf.info(str(output_path)).frames == frames * FRAME_SIZE


@pytest.mark.parametrize("source", ["tone", "file"])
def test_generated_sources_are_paced_by_the_speaker(tmp_path, source: str) -> None:
    path = tmp_path / "short.wav"
    sf.write(str(path), noise(0.05), SAMPLE_RATE_HZ)  # shorter than a chunk: loops
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb"), source=source, input_file=path, monitor="bypass"),
                 threaded=False)
    played = drive(engine, ios[0], None, ticks=250)  # 5 s
    start = offset_samples(engine)
    assert (np.abs(played[start:]).min() >= 0
            and np.count_nonzero(played[start + FADE_SAMPLES:]) > 0.99 * (len(played) - start - FADE_SAMPLES))
    summary = engine.stop()
    assert summary["underruns"] == 0
    assert 55 <= summary["frames"] <= 66  # 5 s is 62.5 frames: no runaway production


def test_kv_window_keeps_the_cache_bounded() -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb"), kv_window=125), threaded=False)
    drive(engine, ios[0], noise(8.0), ticks=400)
    metrics = [m for m in engine.queue.drain() if isinstance(m, FrameMetrics)]
    full = next(i for i, m in enumerate(metrics) if m.kv_encoder >= 125)
    late = metrics[full:]
    assert len(late) > 3 * DEFAULT_KV_SLACK // 2  # several cuts
    for lengths in ([m.kv_encoder for m in late], [m.kv_decoder for m in late]):
        assert min(lengths) == 125 and max(lengths) == 125 + DEFAULT_KV_SLACK  # cut back, never runs away
    engine.stop()


def test_metrics_queue_stays_bounded_when_nobody_drains_it() -> None:
    engine, ios = make_engine()
    engine.queue = type(engine.queue)(maxlen=16)
    engine.start(EngineConfig(model=model_dir("tiny-8cb")), threaded=False)
    drive(engine, ios[0], noise(4.0), ticks=200)
    assert len(engine.queue.drain()) == 16
    assert engine.queue.dropped > 0
    engine.stop()


def test_switching_codebooks_while_running_keeps_the_stream_state() -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-16cb"), kv_window=None), threaded=False)
    signal = noise(1.5)
    drive(engine, ios[0], signal[: 12 * FRAME_SIZE], ticks=48)
    codec = engine.codec
    engine.request_codebooks(4).join(timeout=30)
    drive(engine, ios[0], signal[12 * FRAME_SIZE :], ticks=len(signal[12 * FRAME_SIZE :]) // BLOCK)
    metrics = [m for m in engine.queue.drain() if isinstance(m, FrameMetrics)]
    assert metrics[0].codebooks == 16 and metrics[-1].codebooks == 4
    assert engine.codec is codec  # same codec, same state: no reload, no reset
    # The stream went on: the new frames equal one continuous reference stream switched at that frame.
    switched_at = next(m.chunk for m in metrics if m.codebooks == 4)
    reference = StreamingCodec(model_dir("tiny-16cb"), kv_window=None)
    for i in range(switched_at + 1):
        expected_codes = reference.encode(signal[i * FRAME_SIZE : (i + 1) * FRAME_SIZE])
        if i < switched_at:
            reference.decode(expected_codes)
    np.testing.assert_array_equal(metrics[switched_at].codes, expected_codes[:4])
    assert engine.stop()["underruns"] == 0


def test_switching_model_while_running_keeps_audio_flowing() -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb")), threaded=False)
    drive(engine, ios[0], noise(0.5), ticks=25)
    engine.request_codec(model=model_dir("tiny-16cb"), codebooks=12).join(timeout=30)
    played = drive(engine, ios[0], noise(1.0, seed=2), ticks=50)
    items = engine.queue.drain()
    metrics = [m for m in items if isinstance(m, FrameMetrics)]
    assert metrics[0].codebooks == 8 and metrics[-1].codebooks == 12
    assert any(isinstance(e, EngineEvent) and e.kind == "model" and "12 codebooks" in e.message for e in items)
    assert engine.stop()["underruns"] == 0
    assert np.abs(played).max() > 0


def test_a_switch_that_finishes_after_stop_is_not_applied_to_the_next_session() -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb")), threaded=False)
    loader = engine.request_codec(model=model_dir("tiny-16cb"))
    engine.stop()
    loader.join(timeout=30)
    engine.start(EngineConfig(model=model_dir("tiny-8cb")), threaded=False)
    drive(engine, ios[1], noise(0.5), ticks=25)
    assert engine.codec is not None
    assert engine.codec.max_codebooks == 8
    engine.stop()


def test_the_kv_cut_is_made_once_the_chunk_is_out_not_by_the_next_encode() -> None:
    # A cut costs ~5 ms a frame at full size, every 8th frame: on the audio's path it raised the
    # cover that every chunk waits behind.
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb"), kv_window=6), threaded=False)
    codec = engine.codec
    assert codec is not None
    found_due, encode = [], codec.encode

    def watched_encode(pcm: np.ndarray) -> np.ndarray:
        found_due.append(codec.kv_cut_due)
        return encode(pcm)

    codec.encode = watched_encode
    drive(engine, ios[0], noise(3.0), ticks=150)
    assert len(found_due) > 30 and not any(found_due)  # 60+ tokens through a 6 + 16 cache: cuts were due
    engine.stop()


def test_recording_and_kv_window_change_while_running(tmp_path) -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb"), kv_window=None), threaded=False)
    drive(engine, ios[0], noise(0.5), ticks=25)
    engine.set_recording(tmp_path)
    engine.set_kv_window(6)
    drive(engine, ios[0], noise(1.0), ticks=50)
    kinds = {e.kind: e.message for e in events(engine)}
    input_path, output_path = kinds["recording"].split("\n")
    assert eventually(lambda: sf.info(input_path).frames == sf.info(output_path).frames > 0)
    assert engine.codec is not None
    assert all(6 <= length <= 6 + DEFAULT_KV_SLACK for length in engine.codec.kv_length)  # was 2 s = 50 tokens
    engine.set_recording(None)
    drive(engine, ios[0], noise(0.2), ticks=10)
    assert [e.message for e in events(engine) if e.kind == "recording"] == [""]
    frames = sf.info(input_path).frames
    drive(engine, ios[0], noise(0.5), ticks=25)
    assert sf.info(input_path).frames == frames  # closed: nothing more written
    engine.stop()


def test_a_recording_that_fails_stops_alone_and_streaming_goes_on(tmp_path) -> None:
    import shutil

    folder = tmp_path / "takes"
    folder.mkdir()
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb"), record_dir=folder), threaded=False)
    drive(engine, ios[0], noise(0.5), ticks=25)
    shutil.rmtree(folder)  # the folder (a USB stick, say) is gone mid-session
    drive(engine, ios[0], noise(1.0, seed=2), ticks=50)
    items = engine.queue.drain()
    warnings = [e.message for e in items if isinstance(e, EngineEvent) and e.kind == "warning"]
    assert any("recording stopped" in w and "takes" in w for w in warnings), warnings
    assert engine.running and engine.info["recording"] is None
    before = engine.stats.frames
    drive(engine, ios[0], noise(0.5, seed=3), ticks=25)
    assert engine.stats.frames > before  # still streaming
    engine.stop()


def test_bad_settings_and_double_start_are_refused() -> None:
    engine, _ = make_engine()
    with pytest.raises(EngineError, match="chunk 100 ms"):
        engine.start(EngineConfig(model=model_dir("tiny-8cb"), chunk_ms=100), threaded=False)
    with pytest.raises(EngineError, match="needs an input file"):
        engine.start(EngineConfig(model=model_dir("tiny-8cb"), source="file"), threaded=False)
    engine.start(EngineConfig(model=model_dir("tiny-8cb")), threaded=False)
    with pytest.raises(EngineError, match="already running"):
        engine.start(EngineConfig(model=model_dir("tiny-8cb")), threaded=False)
    engine.stop()


def test_threaded_worker_runs_and_stops() -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb"), source="tone"))
    import time

    for _ in range(100):
        ios[0].tick(BLOCK)
        time.sleep(0.002)
    summary = engine.stop()
    assert summary["frames"] > 0 and summary["stop_reason"] == "stopped"
    assert not engine.running


def test_audio_tap_holds_the_newest_dry_and_wet_audio() -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb"), kv_window=None), threaded=False)
    signal = noise(6.0)  # longer than the tap: it must wrap, not grow
    drive(engine, ios[0], signal, ticks=len(signal) // BLOCK)
    dry, wet, written = engine.audio_tap.latest(4800)
    assert written == engine.stats.frames * FRAME_SIZE and len(dry) == len(wet) == 4800
    np.testing.assert_array_equal(dry, signal[written - 4800 : written])
    reference = StreamingCodec(model_dir("tiny-8cb"), kv_window=None)
    expected = np.concatenate([reference.decode(reference.encode(signal[i : i + FRAME_SIZE]))
                               for i in range(0, written, FRAME_SIZE)])
    np.testing.assert_allclose(wet, expected[-4800:], atol=1e-5 * np.abs(expected).max())
    engine.stop()


def test_a_stalled_speaker_does_not_add_latency_for_good() -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb")), threaded=False)
    io = ios[0]
    drive(engine, io, noise(1.0), ticks=50)
    before = [m for m in engine.queue.drain() if isinstance(m, FrameMetrics)][-1]
    for block in np.split(noise(0.3, seed=4), 15):  # the device stops pulling for 300 ms
        io.tick(0, block)
        while engine.step():
            pass
    drive(engine, io, noise(2.0, seed=5), ticks=100)
    metrics = [m for m in engine.queue.drain() if isinstance(m, FrameMetrics)]
    assert metrics[-1].skipped_ms == pytest.approx(300, abs=10)  # the 300 ms it queued up are won back...
    assert metrics[-1].dropped_frames == 0  # ...by splicing the output (nothing piled up at the input)...
    in_flight_ms = [m.queue_ms + m.output_buffer_ms for m in (before, metrics[-1])]  # (wall-clock compute aside)
    assert abs(in_flight_ms[1] - in_flight_ms[0]) < 5  # ...to where the delay was before
    engine.stop()


def test_an_underrun_raises_the_delay_and_it_comes_back_when_the_cause_is_gone() -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb")), threaded=False)
    io = ios[0]
    drive(engine, io, noise(1.0), ticks=50)
    before = [m for m in engine.queue.drain() if isinstance(m, FrameMetrics)][-1]
    for _ in range(20):  # the microphone delivers nothing for 200 ms: the speaker runs dry
        io.tick(BLOCK, np.zeros(0, np.float32))
        engine.step()
    drive(engine, io, noise(4.0, seed=6), ticks=200)
    items = engine.queue.drain()
    metrics = [m for m in items if isinstance(m, FrameMetrics)]
    said = [e for e in items if isinstance(e, EngineEvent)]
    assert metrics[-1].underruns > 0 and metrics[-1].stretched_ms > 0  # room made again...
    in_flight_ms = [m.queue_ms + m.output_buffer_ms for m in (before, metrics[-1])]
    assert abs(in_flight_ms[1] - in_flight_ms[0]) < 5  # ...back to the delay it had
    assert [e.kind for e in said] == ["warning", "info"], said  # "dropped out", then "delay back"
    assert "back to normal" in said[1].message
    engine.stop()


@pytest.mark.parametrize("extra", [+1, -1])
def test_clock_drift_between_microphone_and_speaker_is_absorbed(extra: int) -> None:
    """The microphone delivers 1 sample per 960 more (or less) than the speaker plays (~1040 ppm):
    over a minute that would be 62 ms of creep or of starvation; the drift correction keeps the
    audio in flight where it started, without underruns or dropped frames."""
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb")), threaded=False)
    io = ios[0]
    signal = noise(61.0)
    position = 0
    for tick in range(3000):  # 60 s of 20 ms speaker blocks
        size = BLOCK + (extra if tick % 2 == 0 else 0)
        io.tick(BLOCK, signal[position : position + size])
        position += size
        while engine.step():
            pass
    metrics = [m for m in engine.queue.drain() if isinstance(m, FrameMetrics)]
    summary = engine.stop()
    assert summary["underruns"] == 0 and summary["dropped_frames"] == 0
    assert summary["drift_correction_ppm"] == pytest.approx(-extra * 1e6 / 960, rel=0.25)
    early = np.median([m.latency_ms for m in metrics[25:100]])
    late = np.median([m.latency_ms for m in metrics[-100:]])
    assert abs(late - early) < 10  # latency holds still


def test_first_audio_is_reckoned_when_the_first_chunk_is_queued() -> None:
    engine, ios = make_engine()
    engine.start(EngineConfig(model=model_dir("tiny-8cb")), threaded=False)
    assert "first_audio_s" not in engine.info
    signal = noise(2.0)
    for tick in range(60):
        drive(engine, ios[0], signal[tick * BLOCK : (tick + 1) * BLOCK], ticks=1)
        if engine.stats.chunks:
            break
    timing = engine.info["first_audio_s"]
    # At least what is queued ahead of the first chunk (the pre-roll) plus the output latency.
    ahead = engine.info["preroll_ms"] / 1000 + ios[0].output_latency_s
    assert ahead <= timing["after_start"] < timing["after_launch"]
    assert engine.stop()["first_audio_s"] == timing


def test_process_age_counts_from_process_start() -> None:
    from app.audio.metrics import process_age_s

    before = process_age_s()
    time.sleep(0.2)
    after = process_age_s()
    assert before > 0 and 0.15 < after - before < 0.5
    script = "from app.audio.metrics import process_age_s; print(process_age_s())"
    started = time.monotonic()
    fresh = float(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
    # It cannot be older than the wait for it (10 ms clock steps); psutil's create_time said 0.7 s older here.
    assert 0 < fresh <= time.monotonic() - started + 0.02
