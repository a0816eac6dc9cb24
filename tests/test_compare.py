"""`mimi-live compare` and the quality figures, on the espeak-ng speech fixture, with real codecs
(Mimi on the tiny fixture model, Codec2 through pycodec2, Opus through PyAV's libopus)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.audio.files import read_audio_24k_mono
from app.cli import main
from app.compare.report import measured_lag_ms
from app.config import SAMPLE_RATE_HZ
from app.quality import intelligibility, visqol_speech
from conftest import model_dir

SPEECH = Path(__file__).parent / "fixtures" / "speech-espeak.wav"


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return read_audio_24k_mono(SPEECH)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("compare")
    assert main(["compare", str(SPEECH), "--out", str(out), "--model", str(model_dir("tiny-8cb")),
                 "--codebooks", "2,8"]) == 0
    return out, json.loads((out / "report.json").read_text())


def test_compare_writes_every_path_aligned_and_as_long_as_the_input(report, speech) -> None:
    out, content = report
    keys = [p["key"] for p in content["paths"]]
    assert keys == ["original", "mimi-2", "mimi-8", "codec2-1200", "codec2-3200", "opus-6k", "opus-12k"]
    for path in content["paths"]:
        audio, rate = sf.read(str(out / path["file"]), dtype="float32")
        assert rate == SAMPLE_RATE_HZ and len(audio) == len(speech), path["key"]
        # Opus keeps the waveform: aligned to the sample. Codec2 invents its phases, so a waveform
        # correlation says nothing about it (tests/test_classic.py checks its delay with tone bursts).
        if path["family"] == "opus":
            assert abs(path["lag_ms"]) <= 1.0 and path["correlation"] > 0.5, path
    assert (out / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    assert all(f'src="{p["file"]}"' in page for p in content["paths"])  # a player per path


def test_the_report_gives_measured_bitrates_and_says_the_model_is_a_stand_in(report) -> None:
    _, content = report
    paths = {p["key"]: p for p in content["paths"]}
    assert paths["codec2-1200"]["bitrate_bps"] == pytest.approx(1200, abs=5)
    assert paths["codec2-3200"]["bitrate_bps"] == pytest.approx(3200, abs=5)
    assert paths["opus-6k"]["bitrate_bps"] == pytest.approx(6000, rel=0.10)
    assert paths["opus-12k"]["bitrate_bps"] == pytest.approx(12000, rel=0.10)
    assert paths["mimi-8"]["bitrate_bps"] == pytest.approx(4 * paths["mimi-2"]["bitrate_bps"])
    assert content["stand_in"] is True and any("stand-in" in note for note in content["notes"])


def test_quality_ranks_the_classic_codecs_as_their_bitrates_do(report) -> None:
    _, content = report
    stoi = {p["key"]: p["stoi"] for p in content["paths"]}
    assert stoi["original"] == pytest.approx(1.0)
    # Opus at 6 kbps keeps speech intelligible; Codec2 at 1200 bps much less so (measured on this
    # clip: see the README's compare section for the values).
    assert stoi["opus-6k"] > 0.75
    assert stoi["codec2-1200"] < stoi["codec2-3200"] < stoi["opus-12k"]
    assert stoi["codec2-1200"] < stoi["opus-6k"]


def test_the_identity_scores_top_marks(speech) -> None:
    scores = intelligibility(speech, speech, SAMPLE_RATE_HZ)
    assert scores is not None and scores["stoi"] == pytest.approx(1.0) and scores["estoi"] == pytest.approx(1.0)
    clip = speech[: 3 * SAMPLE_RATE_HZ]
    same = visqol_speech(clip, clip, SAMPLE_RATE_HZ)
    if same is None:
        pytest.skip("the quality extra (ViSQOL) is not installed")
    noisy = clip + 0.01 * np.random.default_rng(0).standard_normal(len(clip)).astype(np.float32)
    # The lattice mapping (ViSQOL v3's speech default) tops out near 4.55 here, not at 5.
    worse = visqol_speech(clip, noisy, SAMPLE_RATE_HZ)
    assert worse is not None and same > 4.4 and same > worse + 1


def test_a_lag_is_measured_to_the_sample(speech) -> None:
    delayed = np.concatenate([np.zeros(48, np.float32), speech[:-48]])
    lag_ms, correlation = measured_lag_ms(speech, delayed)
    assert lag_ms == pytest.approx(2.0) and correlation > 0.99


@pytest.mark.parametrize("argv, message", [
    (["--codebooks", "3,x"], "comma-separated"),
    (["--classic", "mp3"], "choose from"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["compare", str(SPEECH), "--out", str(tmp_path), "--model", str(model_dir("tiny-8cb")), *argv])
    assert stopped.value.code == 2 and message in capsys.readouterr().err


def test_a_codebook_count_the_model_lacks_is_one_line(tmp_path, capsys) -> None:
    assert main(["compare", str(SPEECH), "--out", str(tmp_path / "o"), "--model", str(model_dir("tiny-8cb")),
                 "--codebooks", "9"]) == 1
    err = capsys.readouterr().err
    assert "--codebooks 9" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_play_on_a_missing_device_is_refused_before_any_work(tmp_path, capsys) -> None:
    assert main(["compare", str(SPEECH), "--out", str(tmp_path / "o"), "--model", str(model_dir("tiny-8cb")),
                 "--play", "--device", "no such device"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "device" in err
    assert not (tmp_path / "o").exists()
