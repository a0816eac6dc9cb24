"""Callbacks, FakeIO, device lookup, and one real PulseAudio round trip (marked `pulse`)."""

from __future__ import annotations

import importlib.abc
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.audio.devices import AudioUnavailable, DeviceError, Kind, list_devices, resolve_device
from app.audio.fake_io import FakeIO
from app.audio.ring import RingBuffer
from app.audio.streams import (
    INPUT_LOST_MESSAGE,
    IOCounters,
    run_input_callback,
    run_output_callback,
)
from app.config import SAMPLE_RATE_HZ

REPO = Path(__file__).resolve().parents[1]
RATE = SAMPLE_RATE_HZ


def tone(freq_hz: float, seconds: float, rate: int = RATE, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def peak_frequency(signal: np.ndarray, rate: int) -> float:
    windowed = signal * np.hanning(signal.shape[0])
    spectrum = np.abs(np.fft.rfft(windowed))
    return float(np.argmax(spectrum) * rate / signal.shape[0])


# -- FakeIO and the shared callbacks ----------------------------------------------------------------


def test_input_blocks_land_in_ring_intact() -> None:
    io = FakeIO()
    io.start()
    signal = tone(440, 0.5)
    position = 0
    for size in [7, 240, 1, 480, 1024, 333] * 10:  # PortAudio's blocks vary when blocksize=0
        block = signal[position:position + size]
        if block.size == 0:
            break
        io.tick(size, block)
        position += block.size
    got = np.empty(position, dtype=np.float32)
    assert io.input_ring is not None
    assert io.input_ring.read(got) == position
    np.testing.assert_array_equal(got, signal[:position])
    assert io.counters.input_frames == position
    assert io.counters.input_overruns == 0 and io.counters.callback_errors == 0


def test_input_takes_channel_zero_of_a_stereo_device() -> None:
    io = FakeIO(input_channels=2)
    io.start()
    stereo = np.stack([tone(440, 0.01), np.ones(240, dtype=np.float32)], axis=1)
    io.tick(240, stereo)
    got = np.empty(240, dtype=np.float32)
    assert io.input_ring is not None
    io.input_ring.read(got)
    np.testing.assert_array_equal(got, stereo[:, 0])


def test_output_plays_ring_then_zero_fills_and_counts_underruns() -> None:
    io = FakeIO()
    io.start()
    signal = tone(1000, 0.1)  # 2400 samples
    io.output_ring.write(signal)
    played = np.concatenate([io.tick(1000), io.tick(1000), io.tick(1000)])
    np.testing.assert_array_equal(played[:2400], signal)
    assert np.all(played[2400:] == 0.0)  # zeros, not the NaN garbage FakeIO puts in outdata
    assert io.counters.output_underruns == 1
    assert io.counters.underrun_samples == 600
    assert io.counters.output_frames == 3000
    played = io.tick(500)  # empty ring: a whole block of silence
    assert np.all(played == 0.0)
    assert io.counters.output_underruns == 2 and io.counters.underrun_samples == 1100


def test_output_preroll_then_tone_is_continuous() -> None:
    io = FakeIO()
    io.output_ring.write_silence(480)
    io.output_ring.write(tone(1000, 0.05))
    io.start()
    played = np.concatenate([io.tick(256) for _ in range(6)])  # 1536 of the 1680 queued
    assert np.all(played[:480] == 0.0)
    np.testing.assert_array_equal(played[480:], tone(1000, 0.05)[:1056])
    assert io.counters.output_underruns == 0
    played = io.tick(256)
    np.testing.assert_array_equal(played[:144], tone(1000, 0.05)[1056:])
    assert io.counters.output_underruns == 1 and io.counters.underrun_samples == 112


def test_output_duplicates_mono_onto_stereo_device() -> None:
    ring, counters = RingBuffer(1024), IOCounters()
    ring.write(tone(300, 0.01))
    outdata = np.full((300, 2), np.nan, dtype=np.float32)
    run_output_callback(ring, counters, outdata, 0)
    np.testing.assert_array_equal(outdata[:, 0], outdata[:, 1])
    np.testing.assert_array_equal(outdata[:240, 0], tone(300, 0.01))
    assert np.all(outdata[240:] == 0.0)


def test_input_overruns_count_dropped_samples() -> None:
    io = FakeIO(ring_seconds=0.01)  # 240 samples -> capacity 256
    io.start()
    io.tick(200, np.ones(200, dtype=np.float32))
    io.tick(200, np.ones(200, dtype=np.float32))
    assert io.input_ring is not None
    assert io.input_ring.readable() == 256
    assert io.counters.input_overruns == 144
    assert io.counters.input_frames == 400


def test_status_flags_count_as_xruns() -> None:
    io = FakeIO()
    io.start()
    io.tick(100, input_status=1)
    io.tick(100, output_status=4)
    io.tick(100)
    assert io.counters.input_xruns == 1 and io.counters.output_xruns == 1


def test_callback_errors_are_counted_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    io = FakeIO()
    io.start()
    io.output_ring.write(np.ones(1000, dtype=np.float32))

    def boom(*_: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(io.input_ring, "write", boom)
    monkeypatch.setattr(io.output_ring, "read", boom)
    played = io.tick(256, np.ones(256, dtype=np.float32))
    assert np.all(played == 0.0)  # zero-filled, not NaN garbage or stale data
    assert io.counters.callback_errors == 2
    # A malformed buffer (1-D instead of [frames, channels]) is caught the same way.
    run_input_callback(RingBuffer(16), io.counters, np.ones(4, dtype=np.float32), 0)
    assert io.counters.callback_errors == 3


def test_callbacks_do_not_allocate_arrays() -> None:
    import tracemalloc

    in_ring, out_ring, counters = RingBuffer(1 << 16), RingBuffer(1 << 16), IOCounters()
    indata = np.ones((1024, 1), dtype=np.float32)
    outdata = np.empty((1024, 2), dtype=np.float32)
    for _ in range(3):
        run_input_callback(in_ring, counters, indata, 0)
        run_output_callback(out_ring, counters, outdata, 0)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(40):
            out_ring.write_silence(700)  # half the blocks underrun: the zero-fill path too
            run_input_callback(in_ring, counters, indata, 0)
            run_output_callback(out_ring, counters, outdata, 0)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename") if s.size_diff > 0)
    assert grown < indata.nbytes
    assert counters.callback_errors == 0


def test_fake_rates_latencies_and_ring_sizes() -> None:
    io = FakeIO(input_rate=48_000, output_rate=44_100, input_latency_s=0.03,
                output_latency_s=0.05, ring_seconds=2.0)
    assert (io.input_rate, io.output_rate) == (48_000, 44_100)
    assert (io.input_latency_s, io.output_latency_s) == (0.03, 0.05)
    assert io.input_ring is not None
    assert io.input_ring.capacity >= 96_000 and io.output_ring.capacity >= 88_200
    io.start()
    io.tick(441)  # 10 ms of output; silence input of the same duration at 48 kHz
    assert io.counters.input_frames == 480
    assert "48000 Hz" in io.describe()


def test_fake_without_input() -> None:
    io = FakeIO(use_input=False)
    assert io.input_ring is None and io.input_rate is None
    io.start()
    io.tick(100, np.ones(100, dtype=np.float32))
    assert io.counters.input_frames == 0 and io.counters.output_underruns == 1


def test_lifecycle_and_unexpected_stop() -> None:
    io = FakeIO()
    with pytest.raises(RuntimeError):
        io.tick(10)
    io.start()
    assert io.active and io.error is None
    io.stop()
    assert not io.active and io.error is None  # a stop we asked for is not an error
    io.start()
    io.simulate_device_lost("input")
    assert not io.active and io.error == INPUT_LOST_MESSAGE
    io.start()  # restarting clears the error
    assert io.error is None
    io.close()
    with pytest.raises(DeviceError):
        io.start()


# -- device lookup (pure logic over a fake device list) --------------------------------------------

FAKE_DEVICES = [
    {"name": "HDA Intel PCH: ALC3246 Analog (hw:0,0)", "hostapi": 0, "max_input_channels": 2,
     "max_output_channels": 2, "default_samplerate": 48000.0},
    {"name": "USB Mic (hw:1,0)", "hostapi": 0, "max_input_channels": 1,
     "max_output_channels": 0, "default_samplerate": 44100.0},
    {"name": "HDMI 0 (hw:0,3)", "hostapi": 0, "max_input_channels": 0,
     "max_output_channels": 8, "default_samplerate": 48000.0},
    {"name": "pulse", "hostapi": 0, "max_input_channels": 32, "max_output_channels": 32,
     "default_samplerate": 44100.0},
    {"name": "pulse monitor", "hostapi": 0, "max_input_channels": 2, "max_output_channels": 0,
     "default_samplerate": 44100.0},
]


@pytest.fixture
def fake_device_list(monkeypatch: pytest.MonkeyPatch) -> None:
    sd = pytest.importorskip("sounddevice")
    listed = [dict(d, index=i) for i, d in enumerate(FAKE_DEVICES)]
    monkeypatch.setattr(sd, "query_devices", lambda *a, **k: listed)
    monkeypatch.setattr(sd, "query_hostapis", lambda *a, **k: ({"name": "ALSA"},))


@pytest.mark.usefixtures("fake_device_list")
class TestResolveDevice:
    def test_list_devices(self) -> None:
        found = list_devices()
        assert [d.index for d in found] == [0, 1, 2, 3, 4]
        assert found[1].name == "USB Mic (hw:1,0)" and found[1].hostapi == "ALSA"
        assert found[2].max_output_channels == 8 and found[2].default_samplerate == 48000.0

    @pytest.mark.parametrize("spec", [None, "", "default", " Default "])
    def test_default(self, spec: str | None) -> None:
        assert resolve_device(spec, "input") is None

    def test_index_and_digit_string(self) -> None:
        assert resolve_device(1, "input") == 1
        assert resolve_device("2", "output") == 2

    def test_substring_case_insensitive(self) -> None:
        assert resolve_device("usb mic", "input") == 1
        assert resolve_device("hdmi", "output") == 2

    def test_exact_name_beats_substring(self) -> None:
        assert resolve_device("PULSE", "input") == 3  # also a substring of "pulse monitor"

    def test_unknown_name(self) -> None:
        with pytest.raises(DeviceError) as info:
            resolve_device("foo", "input")
        assert str(info.value) == "no input device matches 'foo'; run `mimi-live devices` to list them"

    def test_ambiguous_name_lists_candidates(self) -> None:
        with pytest.raises(DeviceError, match=r"'hw' matches 2 input devices .*0 'HDA.*1 'USB Mic"):
            resolve_device("hw", "input")

    def test_wrong_kind(self) -> None:
        with pytest.raises(DeviceError, match="only devices without output channels"):
            resolve_device("usb mic", "output")
        with pytest.raises(DeviceError, match="device 2 'HDMI 0 .*' has no input channels"):
            resolve_device(2, "input")

    def test_bad_index(self) -> None:
        with pytest.raises(DeviceError, match="no audio device has index 9 .*mimi-live devices"):
            resolve_device(9, "output")

    def test_messages_are_one_line(self) -> None:
        cases: list[tuple[str | int, Kind]] = [("foo", "input"), ("hw", "input"), (9, "output"), (2, "input")]
        for spec, kind in cases:
            with pytest.raises(DeviceError) as info:
                resolve_device(spec, kind)
            assert "\n" not in str(info.value)


class _RefuseSounddevice(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return None


def test_missing_portaudio_is_audio_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_RefuseSounddevice(), *sys.meta_path])
    with pytest.raises(AudioUnavailable) as info:
        list_devices()
    message = str(info.value)
    assert message.startswith("PortAudio is not available (PortAudio library not found)")
    assert "sudo apt install libportaudio2" in message
    assert isinstance(info.value, DeviceError)


def test_app_audio_imports_without_sounddevice() -> None:
    code = ("import sys; sys.modules['sounddevice'] = None; "
            "import app.audio.devices, app.audio.streams, app.audio.ring; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr


# -- AudioIO opening logic over a fake sounddevice --------------------------------------------------


class _FakeStream:
    opened: list[dict] = []

    def __init__(self, **kwargs: object) -> None:
        _FakeStream.opened.append(kwargs)
        self.latency = 0.0123
        self.active = False

    def start(self) -> None:
        self.active = True

    def stop(self) -> None:
        self.active = False

    def close(self) -> None:
        self.active = False


@pytest.fixture
def fake_sounddevice(monkeypatch: pytest.MonkeyPatch):
    sd = pytest.importorskip("sounddevice")
    _FakeStream.opened = []
    refused: set[int] = set()

    def query_devices(device=None, kind=None):
        return dict(FAKE_DEVICES[0], index=0)

    def check(device=None, channels=None, dtype=None, samplerate=None, **_):
        if samplerate in refused:
            raise sd.PortAudioError("Invalid sample rate [PaErrorCode -9997]")

    monkeypatch.setattr(sd, "query_devices", query_devices)
    monkeypatch.setattr(sd, "check_input_settings", check)
    monkeypatch.setattr(sd, "check_output_settings", check)
    monkeypatch.setattr(sd, "InputStream", _FakeStream)
    monkeypatch.setattr(sd, "OutputStream", _FakeStream)
    return refused


def test_audio_io_opens_at_preferred_rate(fake_sounddevice: set[int]) -> None:
    from app.audio.streams import AudioIO

    io = AudioIO(0, 0)
    assert (io.input_rate, io.output_rate) == (24_000, 24_000)
    assert io.input_latency_s == io.output_latency_s == 0.0123
    assert io.input_ring is not None
    assert io.input_ring.capacity >= 96_000
    assert [s["samplerate"] for s in _FakeStream.opened] == [24_000, 24_000]
    assert all(s["channels"] == 1 and s["dtype"] == "float32" for s in _FakeStream.opened)
    io.start()
    assert io.active
    io.stop()
    assert not io.active and io.error is None
    io._input_finished()  # PortAudio calls it after a stop we asked for: not an error
    assert io.error is None
    io.start()
    io._input_finished()  # ... but on its own while running, it is
    assert io.error == INPUT_LOST_MESSAGE
    io.close()


def test_audio_io_falls_back_to_device_rate(fake_sounddevice: set[int]) -> None:
    from app.audio.streams import AudioIO

    fake_sounddevice.add(RATE)
    io = AudioIO(0, 0)
    assert (io.input_rate, io.output_rate) == (48_000, 48_000)
    assert io.output_ring.capacity >= 4 * 48_000


def test_audio_io_reports_unopenable_device(fake_sounddevice: set[int]) -> None:
    from app.audio.streams import AudioIO

    fake_sounddevice.update({RATE, 48_000})
    with pytest.raises(DeviceError) as info:
        AudioIO(0, 0)
    message = str(info.value)
    assert message.startswith("cannot open input device 'HDA Intel PCH")
    assert "24000 Hz or 48000 Hz" in message and "Invalid sample rate" in message
    assert "\n" not in message


# -- real PulseAudio ---------------------------------------------------------------------------------

APP_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from app.audio.devices import DeviceError, list_devices, resolve_device
    from app.audio.streams import AudioIO
    from app.config import SAMPLE_RATE_HZ

    out_path, seconds = sys.argv[1], float(sys.argv[2])
    report = {"devices": [d.name for d in list_devices()]}
    try:
        resolve_device("no-such-device", "input")
    except DeviceError as exc:
        report["unknown_device_error"] = str(exc)
    device = resolve_device("pulse", "input")
    io = AudioIO(device, resolve_device("pulse", "output"), preferred_rate=SAMPLE_RATE_HZ)
    rate = io.output_rate
    t = np.arange(rate) / rate
    io.output_ring.write_silence(rate // 10)  # 100 ms pre-roll
    io.output_ring.write((0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32))
    captured = np.zeros(int((seconds + 1) * io.input_rate), dtype=np.float32)
    n = 0
    io.start()
    print("started", flush=True)
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        n += io.input_ring.read(captured[n:])
        if io.output_ring.readable() < rate // 10:  # keep playing silence after the tone
            io.output_ring.write_silence(rate // 10)
        time.sleep(0.01)
    io.stop()
    n += io.input_ring.read(captured[n:])
    io.close()
    np.save(out_path, captured[:n])
    report.update(input_rate=io.input_rate, output_rate=io.output_rate,
                  input_latency_s=io.input_latency_s, output_latency_s=io.output_latency_s,
                  error=io.error, counters=io.counters.snapshot())
    print(json.dumps(report), flush=True)
""")


def loudest_window(signal: np.ndarray, rate: int, seconds: float = 0.25) -> np.ndarray:
    size = int(seconds * rate)
    if signal.shape[0] <= size:
        return signal
    energy = np.convolve(signal.astype(np.float64) ** 2, np.ones(size), mode="valid")
    start = int(np.argmax(energy))
    return signal[start:start + size]


@pytest.mark.pulse
def test_audio_io_through_pulseaudio(pulse_server, tmp_path: Path) -> None:
    mic_wav = tmp_path / "mic.wav"
    sf.write(mic_wav, tone(660, 1.0, amplitude=0.5), RATE, subtype="FLOAT")
    script = tmp_path / "app_io.py"
    script.write_text(APP_SCRIPT)
    captured_path = tmp_path / "captured.npy"

    recorder = pulse_server.start_recording_speaker()
    t0 = time.monotonic()
    app = subprocess.Popen([sys.executable, str(script), str(captured_path), "2.0"], cwd=REPO,
                           env={**pulse_server.env, "PYTHONPATH": str(REPO)},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert app.stdout is not None and app.stderr is not None  # both PIPE
        first = app.stdout.readline().strip()
        assert first == "started", app.stderr.read()
        player = pulse_server.play_into_mic(mic_wav)
        stdout, stderr = app.communicate(timeout=30)
        player.wait(timeout=10)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
    played = recorder.stop()
    elapsed_s = time.monotonic() - t0
    assert app.returncode == 0, stderr
    report = json.loads(stdout.strip().splitlines()[-1])
    print(json.dumps({**report, "elapsed_s": round(elapsed_s, 2)}))  # shown with -s

    assert "pulse" in report["devices"]
    assert report["unknown_device_error"] == (
        "no input device matches 'no-such-device'; run `mimi-live devices` to list them")
    assert report["input_rate"] == report["output_rate"] == RATE
    assert report["error"] is None
    counters = report["counters"]
    assert counters["callback_errors"] == 0
    assert counters["input_frames"] > RATE and counters["output_frames"] > RATE

    # Mic -> app: the 660 Hz tone paplay played into `mic` is in what the app recorded.
    captured = np.load(captured_path)
    window = loudest_window(captured, report["input_rate"])
    assert abs(peak_frequency(window, report["input_rate"]) - 660) < 10
    rms = float(np.sqrt(np.mean(window.astype(np.float64) ** 2)))
    assert 0.5 / np.sqrt(2) * 0.5 < rms < 0.5 / np.sqrt(2) * 1.5, rms

    # App -> speaker: the 1 kHz tone the app played is on speaker.monitor.
    window = loudest_window(played, RATE)
    assert abs(peak_frequency(window, RATE) - 1000) < 10
    rms = float(np.sqrt(np.mean(window.astype(np.float64) ** 2)))
    assert 0.5 / np.sqrt(2) * 0.5 < rms < 0.5 / np.sqrt(2) * 1.5, rms
