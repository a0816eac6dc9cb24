"""The self-test in-process, and the PyInstaller bundle built from build_app.spec (slow)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app import selftest
from app.cli import main

ROOT = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT_S = 600
SELFTEST_TIMEOUT_S = 120
CLASSIC_OK = "classic codecs ok (codec2-1200, codec2-3200, opus-6k, opus-12k)"


def test_self_test_passes_in_process(capsys):
    assert main(["--self-test"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("mimi-live self-test: ok"), out
    assert "8 codebooks, 25 frames of 80 ms" in out[0]
    assert out[0].endswith(f"; {CLASSIC_OK}, STOI 1.00"), out[0]


def test_self_test_reports_a_missing_model(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(selftest, "bundle_root", lambda: tmp_path)
    assert main(["--self-test"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mimi-live: self-test failed: codec: no self-test model"), err


def test_self_test_catches_frozen_codes(monkeypatch, capsys):
    from app.codec import StreamingCodec

    real_encode = StreamingCodec.encode
    monkeypatch.setattr(StreamingCodec, "encode", lambda self, pcm: real_encode(self, pcm) * 0)
    assert main(["--self-test"]) == 1
    assert "codes are the same in every frame" in capsys.readouterr().err


def test_self_test_catches_a_silent_classic_codec(monkeypatch, capsys):
    from app.classic.opus import OpusCodec

    real_step = OpusCodec._step
    monkeypatch.setattr(OpusCodec, "_step", lambda self, block: real_step(self, block) * 0)
    assert main(["--self-test"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("mimi-live: self-test failed: classic codecs: opus-6k: "
                             "decoded audio is (nearly) silent"), err


def test_self_test_names_a_classic_codec_that_cannot_be_imported(monkeypatch, capsys):
    # pycodec2 as a bundle that left it out would have it: importing it fails.
    monkeypatch.delitem(sys.modules, "app.classic.codec2", raising=False)
    monkeypatch.setitem(sys.modules, "pycodec2", None)
    assert main(["--self-test"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("mimi-live: self-test failed: classic codecs: codec2-1200: Codec2 1200 needs the "
                             "Python package pycodec2, which could not be imported"), err


@pytest.mark.slow
def test_bundle_builds_and_passes_its_self_test(tmp_path):
    if importlib.util.find_spec("PyInstaller") is None:
        pytest.skip("PyInstaller is not installed: pip install -e '.[dev]'")
    dist = tmp_path / "dist"
    start = time.monotonic()
    build = subprocess.run(
        [sys.executable, "-m", "PyInstaller", str(ROOT / "build_app.spec"), "--noconfirm",
         "--distpath", str(dist), "--workpath", str(tmp_path / "build")],
        cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
    )
    build_s = time.monotonic() - start
    assert build.returncode == 0, build.stderr[-4000:]

    exe = dist / "mimi-live" / "mimi-live"
    assert exe.is_file()
    # The bundle must not find the source tree's fixtures or packages.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "QT_QPA_PLATFORM")}
    start = time.monotonic()
    run = subprocess.run([str(exe), "--self-test"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=SELFTEST_TIMEOUT_S)
    selftest_s = time.monotonic() - start
    assert run.returncode == 0, run.stderr[-4000:]
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mimi-live self-test: ok"), run.stdout
    assert "(offscreen)" in lines[0] and "; int8 quantizer;" in lines[0]  # the spec's transformers files
    # pycodec2 (libcodec2), av (FFmpeg's libopus), pystoi and scipy.signal made it into the bundle.
    assert lines[0].endswith(f"; {CLASSIC_OK}, STOI 1.00"), lines[0]
    print(f"\nbundle: build {build_s:.0f} s, self-test {selftest_s:.1f} s: {lines[0]}")
