"""Constants shared by every area of the app (any thread; import-only, no side effects).

The audio numbers are fixed by the Mimi model and the published streaming ONNX contract
(checked at load by app/codec/contract.py): 24 kHz mono float32, one code frame per 1920 samples.
"""

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

APP_NAME = "Mimi Live"
APP_ID = "mimi-live"  # console script, platformdirs folder name, log file prefix
APP_AUTHOR = "mimi-live"

SAMPLE_RATE_HZ = 24_000
FRAME_SIZE = 1920  # samples per code frame (80 ms)
FRAME_RATE_HZ = SAMPLE_RATE_HZ / FRAME_SIZE  # 12.5 code frames per second
FRAME_MS = 1000 * FRAME_SIZE // SAMPLE_RATE_HZ  # 80: one frame's audio, so the compute budget per frame
FRAME_S = FRAME_SIZE / SAMPLE_RATE_HZ  # 0.08

assert FRAME_RATE_HZ == 12.5 and FRAME_MS == 1000 * FRAME_S

# The transformers' KV caches are kept to this many tokens: Mimi's trained attention context,
# 10 s at its transformers' 25 Hz. None in the choices: let the cache grow (as published).
DEFAULT_KV_WINDOW = 250
KV_WINDOW_CHOICES: tuple[int | None, ...] = (None, 125, DEFAULT_KV_WINDOW, 500)

# The classic codecs Mimi is compared with (app/classic/paths.py names each), as monitor paths and
# command-line choices. Here so that parsers need not import the codecs' module (numpy) for them.
CLASSIC_PATH_KEYS = ("codec2-1200", "codec2-3200", "opus-6k", "opus-12k")

# The instant replay plays back this much of the latest input, and the classic paths it plays.
REPLAY_S = 10.0
REPLAY_CLASSIC_KEYS = ("codec2-1200", "opus-6k")

# The live engine's chunk per encode/decode call: whole frames, 80 .. 560 ms.
CHUNK_CHOICES_MS = tuple(range(FRAME_MS, 7 * FRAME_MS + 1, FRAME_MS))

# Where the published models are (a Hugging Face hub repository), and the three files of each.
HUB_REPO = "BMekiker/mimi-onnx-streaming"
ENCODER_FILE = "encoder_model.onnx"
DECODER_FILE = "decoder_model.onnx"
SPEC_FILE = "state_spec.txt"
MODEL_FILES = (ENCODER_FILE, DECODER_FILE, SPEC_FILE)

# What a local int8 copy may quantize (app.codec.quantize), the first the default. Here rather
# than there so the catalogue and the CLI's parser need not import onnx for them.
INT8_PARTS = ("encoder+decoder", "decoder")

# PortAudio's suggested latency. Through PulseAudio on a 2-core VM (20-25 s runs, full-size and
# tiny models): 10 ms gave 20-78 device xruns in every run (each one heard as a click), 20 ms
# none in 7 of 10 runs; the true delay measured by chirps did not change beyond the runs' spread
# (the speaker queue covers the compute's tail either way).
DEFAULT_DEVICE_LATENCY_MS = 20

# The lowest-latency preset (`run --lowest-latency`, the window's "Lowest latency" box): 10 ms
# device blocks and the model's int8 copy with only the decoder quantized (the codes stay exactly
# the float model's). On the 2-core EPYC VM of a later session (chirps, bypass, full size, 30-35 s
# runs) 10 ms devices gave 0-37 xruns per run (most under 10) and cut the true delay by ~20 ms; on
# the Xeon VM above they clicked in every run, which is why the preset is offered and not the default.
LOWEST_LATENCY_DEVICE_MS = 10
LOWEST_LATENCY_INT8_PARTS = INT8_PARTS[1]

DATA_DIR_ENV = "MIMI_LIVE_DATA_DIR"  # overrides the data folder (tests, portable installs)


def data_dir() -> Path:
    """The app's own data folder: edited decoders, model manifests (not the Hugging Face cache)."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override)
    import platformdirs  # only when asked: importing config stays free of side effects and cheap

    return Path(platformdirs.user_data_dir(APP_ID, APP_AUTHOR))


def write_atomically(target: Path, write: Callable[[Path], object]) -> None:
    """Has `write` fill a temporary file beside `target`, then renames it into place: a reader
    (or the next start, after a crash) sees the old file or the whole new one, never half of it.
    The folder is created if needed; on any failure the temporary file is removed and the error
    raised."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(name))
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def bundle_root() -> Path:
    """Where assets/ (and, in a bundle, models/) live: the PyInstaller bundle (sys._MEIPASS) or the checkout."""
    return Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parents[1]))


def asset_path(name: str) -> Path:
    """A file in assets/, from a source checkout or a PyInstaller bundle; no Qt needed."""
    return bundle_root() / "assets" / name
