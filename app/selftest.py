"""`mimi-live --self-test`: proves an install or a PyInstaller bundle works, headless (main thread).

No audio device, display or network is needed. It streams 2 s of a 440 Hz tone through the tiny
bundled model (a source checkout uses tests/fixtures/tiny-8cb) in 80 ms chunks, encode then
decode, as the live engine does (the model prepared in a child process, as the app loads models),
and checks the output; then it runs 1 s of a noisy tone once through each classic codec
path (Codec2 via pycodec2, Opus via PyAV's libopus), scores one STOI (pystoi, with scipy), and
loads the other native pieces the app needs (PortAudio via sounddevice, libsndfile, soxr, Qt's
offscreen platform and image plugins, pyqtgraph, the Hugging Face hub client), because a bundle
that misses one of them only fails when that feature is first used.
Prints one summary line; `main` returns 0, or 1 after one `mimi-live: self-test failed: ...` line.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.classic.base import run_file
from app.classic.paths import CLASSIC_PATHS, open_codec
from app.codec.measure import stream
from app.config import APP_ID, DATA_DIR_ENV, FRAME_SIZE, SAMPLE_RATE_HZ, asset_path, bundle_root
from app.errors import AppError, one_line

# build_app.spec copies tests/fixtures/tiny-8cb here; keep the two names in step.
BUNDLED_MODEL = Path("models") / "selftest-tiny-8cb"
CHECKOUT_MODEL = Path("tests") / "fixtures" / "tiny-8cb"
TONE_HZ = 440.0
TONE_S = 2.0
CHUNK_FRAMES = 1  # 80 ms per call, the live engine's default
PREPARE_TIMEOUT_S = 60.0
CLASSIC_S = 1.0
NOISE_RMS = 0.1  # added to the classic paths' tone: Opus's VBR spends far over its target on a pure tone
# Opus is VBR: over 1 s of that noisy tone it lands 8-14% under its target. Codec2's rate is fixed.
OPUS_BPS_TOLERANCE = 0.25
# Codec2 gives back ~40% of a noisy tone's RMS; silence or a broken decoder, next to nothing.
MIN_RMS_RATIO = 0.1
MIN_SELF_STOI = 0.99  # a signal against itself scores 1


class SelfTestError(AppError):
    """One check failed; the message says which and why."""


def selftest_model_dir() -> Path:
    root = bundle_root()
    for relative in (BUNDLED_MODEL, CHECKOUT_MODEL):
        if (root / relative).is_dir():
            return root / relative
    raise SelfTestError(f"no self-test model: neither {root / BUNDLED_MODEL} nor {root / CHECKOUT_MODEL} exists "
                        "(the self-test runs from a bundle or a source checkout)")


def _prepared_codec(model: Path):
    """The codec loaded as the app loads it: its graph work done in a child process (which, in a
    bundle, is this executable again), into a throwaway data folder so the child always runs."""
    from app.codec import StreamingCodec, prepare_model

    saved = os.environ.get(DATA_DIR_ENV)
    with tempfile.TemporaryDirectory(prefix=f"{APP_ID}-selftest-") as data:
        os.environ[DATA_DIR_ENV] = data
        try:
            return StreamingCodec(model, prepared=prepare_model(model, timeout_s=PREPARE_TIMEOUT_S))
        finally:
            if saved is None:
                os.environ.pop(DATA_DIR_ENV, None)
            else:
                os.environ[DATA_DIR_ENV] = saved


def _tone(seconds: float, amplitude: float = 0.5, noise_rms: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
    tone = amplitude * np.sin(2 * np.pi * TONE_HZ * t)
    if noise_rms:
        tone += noise_rms * np.random.default_rng(0).standard_normal(len(t))  # seeded: the same every run
    return tone.astype(np.float32)


def _codec_roundtrip(model: Path) -> dict:
    codec = _prepared_codec(model)
    samples = int(TONE_S * SAMPLE_RATE_HZ)
    tone = _tone(TONE_S)
    chunk = CHUNK_FRAMES * FRAME_SIZE
    start = time.perf_counter()
    steps = list(stream(codec, tone, chunk))
    elapsed_s = time.perf_counter() - start
    codes, audio = [step.codes for step in steps], [step.audio for step in steps]
    codes_all, out = np.concatenate(codes, axis=1), np.concatenate(audio)
    if out.shape != (samples,):
        raise SelfTestError(f"decoded {out.shape[0]} samples from {samples}")
    if not np.isfinite(out).all():
        raise SelfTestError("decoded audio contains NaN or infinite samples")
    if codes_all.shape != (codec.num_codebooks, samples // FRAME_SIZE):
        raise SelfTestError(f"codes have shape {list(codes_all.shape)}, expected "
                            f"[{codec.num_codebooks}, {samples // FRAME_SIZE}]")
    # A graph stuck on one output (e.g. states not fed back) gives the same codes every frame.
    if (codes_all == codes_all[:, :1]).all():
        raise SelfTestError("the codes are the same in every frame")
    return {"codebooks": codec.num_codebooks, "frames": codes_all.shape[1], "rtf": elapsed_s / TONE_S}


def _rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


def _classic_roundtrip(key: str, pcm: np.ndarray) -> None:
    codec = open_codec(key)  # imports the path's backend: pycodec2 or av
    out = run_file(codec, pcm)
    if out.shape != pcm.shape:
        raise SelfTestError(f"gave {out.shape[0]} samples back from {pcm.shape[0]}")
    if not np.isfinite(out).all():
        raise SelfTestError("decoded audio contains NaN or infinite samples")
    if _rms(out) < MIN_RMS_RATIO * _rms(pcm):
        raise SelfTestError(f"decoded audio is (nearly) silent: RMS {_rms(out):.2g} from {_rms(pcm):.2g}")
    target = CLASSIC_PATHS[key].target_bps
    tolerance = OPUS_BPS_TOLERANCE if CLASSIC_PATHS[key].family == "opus" else 0.0
    if abs(codec.measured_bps - target) > tolerance * target + 1e-6:
        raise SelfTestError(f"coded at {codec.measured_bps:.0f} bit/s, expected {target}"
                            + (f" within {tolerance:.0%}" if tolerance else ""))


def _classic_codecs() -> list[str]:
    pcm = _tone(CLASSIC_S, amplitude=0.4, noise_rms=NOISE_RMS)
    for key in CLASSIC_PATHS:
        try:
            _classic_roundtrip(key, pcm)
        except Exception as exc:  # the failure names the path that broke
            raise _failure(key, exc) from exc
    return list(CLASSIC_PATHS)


def _stoi() -> float:
    # `mimi-live compare` and the window score every path with pystoi, which runs on scipy.signal.
    from app.quality.scores import intelligibility

    tone = _tone(CLASSIC_S)
    scores = intelligibility(tone, tone, SAMPLE_RATE_HZ)
    if scores is None or not scores["stoi"] >= MIN_SELF_STOI:
        raise SelfTestError(f"a tone against itself scored {scores}, expected STOI 1")
    return scores["stoi"]


def _native_libraries() -> str:
    import io

    import sounddevice
    import soundfile
    import soxr

    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(FRAME_SIZE, dtype=np.float32), SAMPLE_RATE_HZ, format="WAV")
    buffer.seek(0)
    if soundfile.read(buffer)[0].shape != (FRAME_SIZE,):
        raise SelfTestError("libsndfile did not read back the WAV it wrote")
    if soxr.resample(np.zeros(4800, dtype=np.float32), 48_000, SAMPLE_RATE_HZ).shape != (2400,):
        raise SelfTestError("soxr resampled to the wrong length")
    portaudio = sounddevice.get_portaudio_version()[1].split(",")[0]
    return f"{portaudio}, libsndfile {soundfile.__libsndfile_version__}, soxr {soxr.__version__}"


def _qt() -> str:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph  # noqa: F401 - the plots need it; importing proves the bundle has it
    import PySide6
    from PySide6.QtGui import QIcon, QImage
    from PySide6.QtWidgets import QApplication

    _app = QApplication.instance() or QApplication([APP_ID])  # held until the checks are done
    for name in ("icon.png", "icon.svg"):  # the svg needs the imageformats/qsvg plugin
        if QImage(str(asset_path(name))).isNull():
            raise SelfTestError(f"Qt cannot load {asset_path(name)}")
    if QIcon(str(asset_path("icon.png"))).isNull():
        raise SelfTestError("Qt cannot make the window icon")
    return f"PySide6 {PySide6.__version__} ({QApplication.platformName()})"


def _hub_client() -> str:
    # Import only (no network): proves the bundle kept what model downloads need.
    import huggingface_hub
    from huggingface_hub import HfApi, hf_hub_download, try_to_load_from_cache  # noqa: F401 - import only

    return f"huggingface_hub {huggingface_hub.__version__}"


def _int8_quantizer() -> str:
    # Import only: ONNX Runtime's quantizer loads sibling modules by top-level name (see build_app.spec).
    from onnxruntime.quantization import quantize_dynamic  # noqa: F401 - import only

    return "int8 quantizer"


def _failure(name: str, exc: Exception) -> SelfTestError:
    """`exc` as one line under `name`; a foreign one (an import or native library failure: the bundle
    misses something) keeps its type, the app's own errors already say what to do."""
    if isinstance(exc, AppError):
        return SelfTestError(f"{name}: {one_line(exc)}")
    return SelfTestError(f"{name}: {type(exc).__name__}: {one_line(exc)}")


def run() -> str:
    """Runs every check; returns the summary line or raises SelfTestError."""
    start = time.perf_counter()
    checks = (("codec", lambda: _codec_roundtrip(selftest_model_dir())), ("classic codecs", _classic_codecs),
              ("STOI", _stoi), ("audio libraries", _native_libraries), ("Qt", _qt),
              ("model downloads", _hub_client), ("int8 copies", _int8_quantizer))
    results: dict[str, Any] = {}  # the codec's summary (a dict), the classic keys (a list), the others' lines
    for name, check in checks:
        try:
            results[name] = check()
        except Exception as exc:
            raise _failure(name, exc) from exc
    codec = results["codec"]
    import onnxruntime

    return (f"{APP_ID} self-test: ok in {time.perf_counter() - start:.1f} s: "
            f"{TONE_S:g} s {TONE_HZ:g} Hz tone through {codec['codebooks']} codebooks, {codec['frames']} "
            f"frames of 80 ms, RTF {codec['rtf']:.2f}; onnxruntime {onnxruntime.__version__}; "
            f"{results['audio libraries']}; {results['Qt']}; {results['model downloads']}; "
            f"{results['int8 copies']}; classic codecs ok ({', '.join(results['classic codecs'])}), "
            f"STOI {results['STOI']:.2f}")


def main() -> int:
    try:
        line = run()
    except SelfTestError as exc:
        print(f"{APP_ID}: self-test failed: {exc}", file=sys.stderr)
        return 1
    print(line)
    return 0
