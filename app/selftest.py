"""`mimi-live --self-test`: proves an install or a PyInstaller bundle works, headless (main thread).

No audio device, display or network is needed. It streams 2 s of a 440 Hz tone through the tiny
bundled model (a source checkout uses tests/fixtures/tiny-8cb) in 80 ms chunks, encode then
decode, as the live engine does (the model prepared in a child process, as the app loads models),
and checks the output; then it loads the other native pieces the
app needs (PortAudio via sounddevice, libsndfile, soxr, Qt's offscreen platform and image plugins,
pyqtgraph, the Hugging Face hub client), because a bundle that misses one of them only fails when
that feature is first used.
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


def _codec_roundtrip(model: Path) -> dict:
    codec = _prepared_codec(model)
    samples = int(TONE_S * SAMPLE_RATE_HZ)
    t = np.arange(samples) / SAMPLE_RATE_HZ
    tone = (0.5 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
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


def run() -> str:
    """Runs every check; returns the summary line or raises SelfTestError."""
    start = time.perf_counter()
    checks = (("codec", lambda: _codec_roundtrip(selftest_model_dir())), ("audio libraries", _native_libraries),
              ("Qt", _qt), ("model downloads", _hub_client), ("int8 copies", _int8_quantizer))
    results: dict[str, Any] = {}  # the codec's summary (a dict), the others' lines
    for name, check in checks:
        try:
            results[name] = check()
        except SelfTestError as exc:
            raise SelfTestError(f"{name}: {exc}") from exc
        except Exception as exc:  # an import or native library failure: the bundle misses something
            raise SelfTestError(f"{name}: {type(exc).__name__}: {one_line(exc)}") from exc
    codec = results["codec"]
    import onnxruntime

    return (f"{APP_ID} self-test: ok in {time.perf_counter() - start:.1f} s: "
            f"{TONE_S:g} s {TONE_HZ:g} Hz tone through {codec['codebooks']} codebooks, {codec['frames']} "
            f"frames of 80 ms, RTF {codec['rtf']:.2f}; onnxruntime {onnxruntime.__version__}; "
            f"{results['audio libraries']}; {results['Qt']}; {results['model downloads']}; "
            f"{results['int8 copies']}")


def main() -> int:
    try:
        line = run()
    except SelfTestError as exc:
        print(f"{APP_ID}: self-test failed: {exc}", file=sys.stderr)
        return 1
    print(line)
    return 0
