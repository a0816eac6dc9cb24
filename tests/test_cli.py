"""The `mimi-live` command line, run in-process through app.cli.main on the tiny fixture models.

The fixtures (tests/fixtures/tiny-8cb, tiny-16cb) are contract-identical kilobyte-size models made
by `python -m tests.make_fixtures`; no torch is needed here.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.audio.files import read_audio_24k_mono
from app.cli import main
from app.cli.export import EXPORT_EXTRA_HINT
from app.config import FRAME_SIZE, SAMPLE_RATE_HZ

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
JSON_KEYS = {"frames", "chunk_ms", "codebooks", "bitrate_bps", "encode_ms", "decode_ms",
             "kv_length", "duration_s", "rtf"}


def fixture_model(name: str) -> Path:
    folder = FIXTURES / name
    if not (folder / "state_spec.txt").is_file():
        reason = f"fixture model {folder} missing: run python -m tests.make_fixtures"
        if os.environ.get("CI"):
            pytest.fail(reason)  # committed fixtures must be there in CI
        pytest.skip(reason)
    return folder


@pytest.fixture
def tiny8() -> Path:
    return fixture_model("tiny-8cb")


@pytest.fixture
def tiny16() -> Path:
    return fixture_model("tiny-16cb")


def write_tone(path: Path, rate_hz: int, seconds: float, channels: int = 1) -> Path:
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    mono = 0.3 * np.sin(2 * np.pi * 330 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    sf.write(path, np.repeat(mono[:, None], channels, axis=1).astype(np.float32), rate_hz)
    return path


def run_json(capsys, argv: list[str]) -> dict:
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr().out
    return json.loads(out)


def assert_output_matches(out: Path, expected_samples: int) -> None:
    info = sf.info(out)
    assert info.samplerate == SAMPLE_RATE_HZ
    assert info.channels == 1
    assert info.frames == expected_samples
    assert not out.with_name(out.name + ".part").exists()


# --------------------------------------------------------------------------------------------
# roundtrip


def test_roundtrip_json(tmp_path, capsys, tiny8):
    src = write_tone(tmp_path / "in.wav", SAMPLE_RATE_HZ, 0.5)  # 12000 samples: 6.25 frames
    out = tmp_path / "out.wav"

    report = run_json(capsys, ["roundtrip", str(src), str(out), "--model", str(tiny8)])

    assert report.keys() >= JSON_KEYS
    assert report["frames"] == math.ceil(12000 / FRAME_SIZE) == 7
    assert report["chunk_ms"] == 80
    assert report["codebooks"] == 8
    assert report["bitrate_bps"] > 0
    for key in ("encode_ms", "decode_ms"):
        assert set(report[key]) == {"p50", "p95"}
        assert 0 <= report[key]["p50"] <= report[key]["p95"]
    assert set(report["kv_length"]) == {"encoder", "decoder"}
    assert report["kv_length"]["encoder"] > 0 and report["kv_length"]["decoder"] > 0
    assert report["duration_s"] == pytest.approx(0.5)
    assert report["rtf"] > 0
    assert_output_matches(out, 12000)
    audio, _ = sf.read(out, dtype="float32")
    assert np.all(np.isfinite(audio))


def test_roundtrip_44k_stereo_keeps_duration(tmp_path, capsys, tiny8):
    src = write_tone(tmp_path / "in44.wav", 44_100, 0.7, channels=2)
    out = tmp_path / "out.wav"
    expected = read_audio_24k_mono(src).size

    report = run_json(capsys, ["roundtrip", str(src), str(out), "--model", str(tiny8)])

    assert report["frames"] == math.ceil(expected / FRAME_SIZE)
    assert_output_matches(out, expected)


def test_roundtrip_larger_chunks(tmp_path, capsys, tiny8):
    src = write_tone(tmp_path / "in.wav", SAMPLE_RATE_HZ, 0.5)
    out = tmp_path / "out.wav"

    report = run_json(capsys, ["roundtrip", str(src), str(out), "--model", str(tiny8),
                               "--chunk-ms", "240", "--threads", "1"])

    assert report["chunk_ms"] == 240
    assert report["frames"] == 7
    assert report["frames_streamed"] == 9  # three whole chunks of 3 frames
    # Both transformers run at 25 Hz: two KV entries per 80 ms frame streamed.
    assert report["kv_length"] == {"encoder": 18, "decoder": 18}
    assert_output_matches(out, 12000)


def test_roundtrip_fewer_codebooks(tmp_path, capsys, tiny16):
    src = write_tone(tmp_path / "in.wav", 16_000, 0.4)
    out = tmp_path / "out.wav"

    report = run_json(capsys, ["roundtrip", str(src), str(out), "--model", str(tiny16),
                               "--codebooks", "4"])
    full = run_json(capsys, ["roundtrip", str(src), str(tmp_path / "full.wav"),
                             "--model", str(tiny16)])

    assert report["codebooks"] == 4 and full["codebooks"] == 16
    assert report["bitrate_bps"] == pytest.approx(full["bitrate_bps"] / 4)
    assert_output_matches(out, read_audio_24k_mono(src).size)


def test_roundtrip_human_summary(tmp_path, capsys, tiny8):
    src = write_tone(tmp_path / "in.flac", 48_000, 0.3)
    out = tmp_path / "out.wav"

    assert main(["roundtrip", str(src), str(out), "--model", str(tiny8), "--float32"]) == 0

    text = capsys.readouterr().out
    assert "real-time factor" in text and "codebooks" in text
    assert sf.info(out).subtype == "FLOAT"


def test_roundtrip_replaces_existing_output(tmp_path, capsys, tiny8):
    src = write_tone(tmp_path / "in.wav", SAMPLE_RATE_HZ, 0.2)
    out = tmp_path / "out.wav"
    out.write_text("old")
    assert main(["roundtrip", str(src), str(out), "--model", str(tiny8)]) == 0
    assert_output_matches(out, int(0.2 * SAMPLE_RATE_HZ))


# --------------------------------------------------------------------------------------------
# info


def _info_json(capsys, model: Path) -> dict:
    return run_json(capsys, ["info", "--model", str(model)])


def test_info_human(capsys, tiny8):
    bitrate_bps = _info_json(capsys, tiny8)["bitrate_bps"]
    assert main(["info", "--model", str(tiny8)]) == 0
    text = capsys.readouterr().out
    assert "K=8" in text
    assert f"{bitrate_bps:g} bps" in text


def test_info_json(capsys, tiny8, tiny16):
    s8 = _info_json(capsys, tiny8)
    s16 = _info_json(capsys, tiny16)
    assert s8["codebooks"] == 8 and s16["codebooks"] == 16
    bits = math.log2(s8["codebook_size"])
    assert s8["bitrate_bps"] == pytest.approx(8 * bits * 12.5)
    assert s16["bitrate_bps"] == pytest.approx(2 * s8["bitrate_bps"])
    assert s8["weights"] in ("fp32", "fp16")
    assert s8["encoder_mb"] > 0 and s8["decoder_mb"] > 0
    assert s8["kv_layers"] > 0 and s8["kv_heads"] > 0 and s8["kv_head_dim"] > 0
    assert s8["conv_states"] == {"encoder": 11, "decoder": 11}
    assert 4 in s16["codebook_choices"]
    assert s16["fewer_codebooks"] is True


# --------------------------------------------------------------------------------------------
# user errors: one line on stderr, non-zero exit, no output file


def _broken_model(tmp_path: Path, source: Path) -> Path:
    broken = tmp_path / "broken-model"
    shutil.copytree(source, broken)
    (broken / "decoder_model.onnx").unlink()
    return broken


@pytest.mark.parametrize(
    "case",
    ["missing input", "non-audio input", "empty audio", "empty model folder",
     "model missing a file", "no such model folder", "too many codebooks", "output folder missing"],
)
def test_user_errors_are_one_line(tmp_path, capsys, tiny8, case):
    src = write_tone(tmp_path / "in.wav", SAMPLE_RATE_HZ, 0.2)
    out = tmp_path / "out.wav"
    model = tiny8
    extra: list[str] = []
    if case == "missing input":
        src = tmp_path / "nope.wav"
    elif case == "non-audio input":
        src = tmp_path / "notes.txt"
        src.write_text("not audio\n" * 50)
    elif case == "empty audio":
        src = tmp_path / "empty.wav"
        sf.write(src, np.zeros((0, 1), np.float32), SAMPLE_RATE_HZ)
    elif case == "empty model folder":
        model = tmp_path / "empty-model"
        model.mkdir()
    elif case == "model missing a file":
        model = _broken_model(tmp_path, tiny8)
    elif case == "no such model folder":
        model = tmp_path / "no-such-model"
    elif case == "too many codebooks":
        extra = ["--codebooks", "99"]
    elif case == "output folder missing":
        out = tmp_path / "missing-folder" / "out.wav"

    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["roundtrip", str(src), str(out), "--model", str(model), *extra])

    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 1
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("mimi-live: error: ")
    assert "Traceback" not in captured.err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no .part left behind


def test_info_bad_model_is_one_line(tmp_path, capsys):
    assert main(["info", "--model", str(tmp_path)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mimi-live: error: ")


@pytest.mark.parametrize("chunk_ms", ["100", "0", "-80", "abc"])
def test_bad_chunk_ms_is_argparse_error(tmp_path, capsys, chunk_ms):
    src = write_tone(tmp_path / "in.wav", SAMPLE_RATE_HZ, 0.2)
    out = tmp_path / "out.wav"
    with pytest.raises(SystemExit) as info:
        main(["roundtrip", str(src), str(out), "--model", str(tmp_path), "--chunk-ms", chunk_ms])
    assert info.value.code == 2
    assert "--chunk-ms" in capsys.readouterr().err
    assert not out.exists()


def test_debug_reraises(tmp_path):
    from app.audio.files import AudioFileError

    with pytest.raises(AudioFileError):
        main(["--debug", "roundtrip", str(tmp_path / "nope.wav"), str(tmp_path / "o.wav"),
              "--model", str(tmp_path)])
    with pytest.raises(AudioFileError):
        main(["roundtrip", str(tmp_path / "nope.wav"), str(tmp_path / "o.wav"),
              "--model", str(tmp_path), "--debug"])


# --------------------------------------------------------------------------------------------
# export, no subcommand, console script


def test_export_needs_a_weight_source(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["export", str(tmp_path / "out")])
    assert info.value.code == 2
    assert "--random-weights" in capsys.readouterr().err


def test_export_without_torch_says_which_extra(tmp_path, capsys, monkeypatch):
    # Make torch and transformers unimportable, and drop any already-imported exporter.
    for name in ("torch", "transformers"):
        monkeypatch.setitem(sys.modules, name, None)
    for name in [m for m in sys.modules if m == "app.codec.export" or m.startswith("app.codec.export.")]:
        monkeypatch.delitem(sys.modules, name)
    code = main(["export", str(tmp_path / "out"), "--random-weights", "--tiny"])
    assert code == 2
    assert EXPORT_EXTRA_HINT in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_python_m_app_help():
    result = subprocess.run([sys.executable, "-m", "app", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "roundtrip" in result.stdout


def test_console_script_version():
    script = shutil.which("mimi-live")
    if script is None:
        pytest.skip("mimi-live console script not installed (pip install -e .)")
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "mimi-live" in result.stdout


def test_bench_runs_and_its_json_is_well_formed(capsys):
    """CI checks the benchmark runs; speed targets are measured with full-size models, not here."""
    assert main(["bench", "--model", str(FIXTURES / "tiny-8cb"), "--frames", "30", "--int8", "decoder", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for side in ("naive", "app", "app_int8"):
        r = result[side]
        assert r["frames"] == 30 and set(r["total_ms"]) == {"p50", "p95", "p99"}
        assert r["cpu_s_per_frame"] > 0 and r["rss_mb"]["end"] > 0
    assert result["naive"]["kv_length_end"] == [60, 60]  # the naive cache grows 2 per frame
    assert result["app"]["kv_length_end"] == [60, 60]  # below the 250 window
    assert result["speedup_p50"] > 0 and result["int8_speedup_p50"] > 0
    settings = result["app_settings"]
    assert settings["threads"] == 1 and settings["threads_tuned"] is True  # MIMI_LIVE_THREADS
    assert result["app_int8"]["parts"] == "decoder" and result["app_int8"]["codes_agreement"] == 1.0
    piped = result["app_pipelined"]
    assert piped["frames"] == 30 and piped["wall_ms_per_frame"] > 0 and piped["threads_per_direction"] == 1


def test_quantize_json_then_the_copy_runs(tmp_path, capsys, tiny8):
    report = run_json(capsys, ["quantize", "--model", str(tiny8), "--decoder-only", "--json"])
    assert report["parts"] == "decoder" and report["codes_agreement"] == 1.0 and report["speedup"] > 0
    assert report["snr_end_to_end_db"] == report["snr_same_codes_db"] > 20
    wav = write_tone(tmp_path / "in.wav", 24000, 0.5)
    assert main(["roundtrip", str(wav), str(tmp_path / "out.wav"), "--model", report["folder"]]) == 0


def test_bench_without_the_naive_loop_reports_flatness_and_memory(capsys):
    assert main(["bench", "--model", str(FIXTURES / "tiny-8cb"), "--frames", "160", "--no-naive", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["naive"] is None and "speedup_p50" not in result
    rss = result["app"]["rss_mb"]
    assert (rss["start"] <= rss["after_warmup"]
            and result["app_rss_growth_mb"] == round(rss["end"] - rss["after_warmup"], 1))
    assert result["app_last_vs_first_minute"] == 1.0  # 160 frames: one minute only
    assert result["app"]["kv_length_end"][0] <= 250 + result["app_settings"]["kv_slack"]
