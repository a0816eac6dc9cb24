"""app.audio.files: reading any libsndfile format as 24 kHz mono, atomic WAV writing."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from app.audio.files import (
    AtomicWavWriter,
    AudioFileError,
    pad_to_frames,
    read_audio_24k_mono,
    write_wav_atomic,
)
from app.config import FRAME_SIZE, SAMPLE_RATE_HZ

TONE_HZ = 440.0


def tone(rate_hz: int, seconds: float, channels: int = 1, freq_hz: float = TONE_HZ) -> np.ndarray:
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    mono = 0.5 * np.sin(2 * np.pi * freq_hz * t)
    return np.repeat(mono[:, None], channels, axis=1).astype(np.float32)


def peak_hz(pcm: np.ndarray, rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(pcm.size)))
    return float(np.fft.rfftfreq(pcm.size, 1 / rate_hz)[np.argmax(spectrum)])


@pytest.mark.parametrize(
    ("name", "rate_hz", "channels", "fmt", "subtype"),
    [
        ("stereo48k.wav", 48_000, 2, "WAV", "PCM_16"),
        ("u8.wav", 22_050, 1, "WAV", "PCM_U8"),
        ("mono16k.wav", 16_000, 1, "WAV", "PCM_16"),
        ("float24k.wav", SAMPLE_RATE_HZ, 1, "WAV", "FLOAT"),
        ("stereo44k.flac", 44_100, 2, "FLAC", "PCM_24"),
        ("quad8k.flac", 8_000, 4, "FLAC", "PCM_16"),
    ],
)
def test_read_converts_to_24k_mono(tmp_path, name, rate_hz, channels, fmt, subtype):
    seconds = 1.5
    path = tmp_path / name
    sf.write(path, tone(rate_hz, seconds, channels), rate_hz, format=fmt, subtype=subtype)

    pcm = read_audio_24k_mono(path)

    assert pcm.dtype == np.float32
    assert pcm.ndim == 1
    assert abs(pcm.size - round(seconds * SAMPLE_RATE_HZ)) <= 1
    assert peak_hz(pcm, SAMPLE_RATE_HZ) == pytest.approx(TONE_HZ, abs=2.0)
    # Averaging identical channels keeps the level (no sum, no clipping).
    assert np.max(np.abs(pcm)) == pytest.approx(0.5, abs=0.03)


def test_read_averages_channels(tmp_path):
    path = tmp_path / "opposite.wav"
    left = tone(SAMPLE_RATE_HZ, 0.5)
    sf.write(path, np.hstack([left, -left]), SAMPLE_RATE_HZ, subtype="FLOAT")
    assert np.max(np.abs(read_audio_24k_mono(path))) < 1e-6


def test_read_accepts_str_path(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(SAMPLE_RATE_HZ, 0.1), SAMPLE_RATE_HZ)
    assert read_audio_24k_mono(str(path)).size == int(0.1 * SAMPLE_RATE_HZ)


def _one_line_error(path) -> str:
    with pytest.raises(AudioFileError) as info:
        read_audio_24k_mono(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    return message


def test_missing_file(tmp_path):
    assert "no such file" in _one_line_error(tmp_path / "nope.wav")


def test_directory(tmp_path):
    assert "folder" in _one_line_error(tmp_path)


def test_text_file(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 20)
    assert "not an audio file libsndfile can read" in _one_line_error(path)


def test_empty_file(tmp_path):
    path = tmp_path / "zero-bytes.wav"
    path.write_bytes(b"")
    assert "not an audio file libsndfile can read" in _one_line_error(path)


def test_empty_audio(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0, 2), np.float32), 16_000)
    assert "contains no audio samples" in _one_line_error(path)


def test_pad_to_frames():
    pcm = np.ones(FRAME_SIZE + 5, np.float32)
    padded, n = pad_to_frames(pcm, FRAME_SIZE)
    assert n == FRAME_SIZE + 5
    assert padded.size == 2 * FRAME_SIZE
    assert np.all(padded[:n] == 1) and np.all(padded[n:] == 0)

    exact = np.ones(2 * FRAME_SIZE, np.float32)
    same, n = pad_to_frames(exact, FRAME_SIZE)
    assert same is exact and n == 2 * FRAME_SIZE

    empty, n = pad_to_frames(np.zeros(0, np.float32), FRAME_SIZE)
    assert n == 0 and empty.size == FRAME_SIZE


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_write_wav_atomic(tmp_path, subtype):
    out = tmp_path / "out.wav"
    pcm = tone(SAMPLE_RATE_HZ, 0.25)[:, 0]
    write_wav_atomic(out, pcm, subtype=subtype)

    data, rate_hz = sf.read(out, dtype="float32")
    info = sf.info(out)
    assert rate_hz == SAMPLE_RATE_HZ and info.channels == 1 and info.subtype == subtype
    np.testing.assert_allclose(data, pcm, atol=1e-4)
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]


def test_pcm16_clips_instead_of_wrapping(tmp_path):
    out = tmp_path / "loud.wav"
    write_wav_atomic(out, np.array([2.0, -2.0, 0.5], np.float32))
    data, _ = sf.read(out, dtype="float32")
    np.testing.assert_allclose(data, [1.0, -1.0, 0.5], atol=1e-4)


def test_writer_leaves_nothing_on_error(tmp_path):
    out = tmp_path / "out.wav"
    with pytest.raises(ZeroDivisionError), AtomicWavWriter(out) as writer:
        writer.write(np.zeros(FRAME_SIZE, np.float32))
        assert writer.part_path.exists() and not out.exists()
        raise ZeroDivisionError  # any failure halfway through
    assert list(tmp_path.iterdir()) == []


def test_writer_keeps_old_output_on_error(tmp_path):
    out = tmp_path / "out.wav"
    write_wav_atomic(out, np.full(100, 0.25, np.float32))
    with pytest.raises(KeyboardInterrupt), AtomicWavWriter(out) as writer:
        writer.write(np.zeros(FRAME_SIZE, np.float32))
        raise KeyboardInterrupt
    assert sf.info(out).frames == 100
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]


def test_writer_missing_folder_is_oserror_naming_target(tmp_path):
    out = tmp_path / "no" / "such" / "out.wav"
    with pytest.raises(OSError) as info:
        write_wav_atomic(out, np.zeros(10, np.float32))
    assert info.value.filename == str(out)
    assert not out.parent.exists()


def test_writer_refuses_folder_target(tmp_path):
    with pytest.raises(IsADirectoryError):
        write_wav_atomic(tmp_path, np.zeros(10, np.float32))
    assert list(tmp_path.iterdir()) == []
