"""The real MainWindow, offscreen, on the fake audio backend with the tiny fixture models.

A QTimer in the test plays PortAudio's part (FakeIO.tick every 20 ms) while the engine's own
worker thread runs, so the whole GUI path is exercised: loader thread, metrics queue, UI timer,
plots, banners, settings. Sources are the tone or a file (no microphone needed).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest
import shiboken6
import soundfile as sf

pytest.importorskip("pytestqt")
from PySide6.QtCore import Qt, QTimer  # noqa: E402

from app.audio.devices import AudioUnavailable, DeviceError, DeviceInfo  # noqa: E402
from app.audio.engine import Engine  # noqa: E402
from app.audio.metrics import FrameMetrics  # noqa: E402
from app.audio.streams import FakeIO  # noqa: E402
from app.codec.streaming import StreamingCodec  # noqa: E402
from app.config import SAMPLE_RATE_HZ  # noqa: E402
from app.ui import engine_bridge as engine_bridge_module  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402
from conftest import model_dir  # noqa: E402

BLOCK = 480  # 20 ms device blocks
WAIT_MS = 15_000


@pytest.fixture(autouse=True)
def _no_hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty default HF cache: the published variants count as "not downloaded" whatever this
    machine's cache holds, unless a test puts them there (hub_cache, put_in_cache)."""
    from huggingface_hub import constants

    path = tmp_path / "hf-default" / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(path))
    return path


@pytest.fixture
def hub_cache(_no_hub_cache) -> Path:
    """The (empty) HF cache the window reads its published variants from."""
    return _no_hub_cache


_FAKES: list[FakeAudio] = []


@pytest.fixture(autouse=True)
def _delete_fake_timers():
    # Delete each test's device timer here, on the GUI thread. Left to Python's cyclic GC, a QTimer
    # can be destroyed on whichever thread the GC happens to run (the model loader), leaving Qt's
    # timer list dangling: a segfault in a later test.
    yield
    while _FAKES:
        _FAKES.pop().close()


class FakeAudio:
    """Engine factory on FakeIO plus a timer that runs the fake device callbacks."""

    def __init__(self, fail_first: Exception | None = None):
        self.ios: list[FakeIO] = []
        self.fail_first = fail_first
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        _FAKES.append(self)

    def close(self) -> None:
        self.timer.stop()
        shiboken6.delete(self.timer)

    gone = False  # True: every device has vanished (opening any fails)

    def io_factory(self, config) -> FakeIO:
        if self.gone:
            raise DeviceError("no output device")
        if self.fail_first is not None:
            exc, self.fail_first = self.fail_first, None
            raise exc
        self.ios.append(FakeIO(use_input=config.source == "mic"))
        return self.ios[-1]

    def engine(self) -> Engine:
        return Engine(io_factory=self.io_factory)

    def tick(self) -> None:
        for io in self.ios[-1:]:
            try:
                if io.active:
                    io.tick(BLOCK)
            except RuntimeError:  # stopped between the check and the tick
                pass


def devices() -> list[DeviceInfo]:
    return [DeviceInfo(0, "Fake mic", "ALSA", 1, 0, 48000.0), DeviceInfo(1, "Fake speaker", "ALSA", 0, 2, 48000.0)]


def open_window(qtbot, settings, audio: FakeAudio, model: Path | None = None, lister=devices) -> MainWindow:
    window = MainWindow(settings=settings, engine_factory=audio.engine, model_override=model,
                        device_lister=lister, interactive=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    if model is not None:
        qtbot.waitUntil(lambda: window.bridge.codec is not None and not window.bridge.busy, timeout=WAIT_MS)
    return window


def last_metrics(window: MainWindow) -> FrameMetrics:
    """The window's latest frame metrics: called once frames have arrived."""
    last = window._last
    assert last is not None, "no frame metrics yet"
    return last


def loaded_codec(window: MainWindow) -> StreamingCodec:
    """The window's codec: called once one is loaded."""
    codec = window.bridge.codec
    assert codec is not None, "no codec loaded"
    return codec


def start_and_wait(qtbot, window: MainWindow, frames: int = 3) -> None:
    assert window.start()
    qtbot.waitUntil(lambda: window.bridge.running and not window.bridge.busy, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.plots.codebooks.frames_seen >= frames, timeout=WAIT_MS)


def stop(qtbot, window: MainWindow) -> None:
    window.stop()
    qtbot.waitUntil(lambda: not window.bridge.running, timeout=WAIT_MS)
    assert window.controls.start_button.text() == "Start"


# -- first run and model folders ----------------------------------------------------------------


def test_first_run_without_a_model_explains_what_to_do(qtbot, settings) -> None:
    window = open_window(qtbot, settings, FakeAudio())
    assert window.pages.currentIndex() == 1  # the welcome page instead of empty plots
    text = window.welcome.text()
    assert "Open model folder" in text and "mimi-live export" in text and 'pip install -e ".[export]"' in text
    assert not window.controls.start_button.isEnabled()
    assert window.start() is False
    assert "no model" in window.banner.text
    # The published variants are listed, marked for download, and none is loaded by itself.
    combo = window.controls.model_combo
    assert combo.count() == 4 and "download" in combo.itemText(0)
    assert window.selected_model() is None


def test_first_run_download_fetches_checks_and_loads_the_model(qtbot, settings, tmp_path) -> None:
    """The welcome page's Download button against a fake hub on 127.0.0.1: progress, then the model loads."""
    from app.models.download import download_variant
    from fakehub import FakeHub

    window = open_window(qtbot, settings, FakeAudio())
    reports = []
    with FakeHub() as hub:
        def download(name, progress, cancel):
            def spy(p):
                reports.append(p)
                progress(p)

            return download_variant(name, cache_dir=tmp_path / "hf", endpoint=hub.endpoint, progress=spy, cancel=cancel)

        window.download_fn = download
        window.welcome_download.click()
        qtbot.waitUntil(lambda: window._download is None, timeout=30_000)
    assert reports and reports[-1].done_bytes == reports[-1].total_bytes > 0
    assert "Downloaded streaming-8cb-fp16" in window.banner.text
    qtbot.waitUntil(lambda: window.bridge.codec is not None, timeout=30_000)
    assert loaded_codec(window).max_codebooks == 8
    assert window.pages.currentIndex() == 0


def test_a_failed_download_is_a_message_and_leaves_the_window_usable(qtbot, settings) -> None:
    window = open_window(qtbot, settings, FakeAudio())

    def refused(name, progress, cancel):
        raise ConnectionError("cannot reach the Hugging Face hub at http://127.0.0.1:9 (connection refused)")

    window.download_fn = refused
    window.download_variant("streaming-8cb")
    qtbot.waitUntil(lambda: window._download is None, timeout=10_000)
    assert "connection refused" in window.banner.text
    assert window.add_model_folder(model_dir("tiny-8cb"))  # still usable


def test_open_model_folder_adds_it_remembers_it_and_shows_the_plots(qtbot, settings) -> None:
    window = open_window(qtbot, settings, FakeAudio())
    assert window.add_model_folder(model_dir("tiny-16cb"))
    qtbot.waitUntil(lambda: window.bridge.codec is not None and not window.bridge.busy, timeout=WAIT_MS)
    assert window.pages.currentIndex() == 0
    combo = window.controls.codebooks_combo
    assert combo.count() == 16 and combo.currentData() == 16
    assert "codebooks ·" in combo.itemText(7) and "bps" in combo.itemText(7)
    assert str(model_dir("tiny-16cb").resolve()) in window.model_folders()
    assert window.controls.start_button.isEnabled()


def test_bad_model_folders_show_a_message_and_the_app_stays_usable(qtbot, settings, tmp_path) -> None:
    audio = FakeAudio()
    window = open_window(qtbot, settings, audio, model=model_dir("tiny-8cb"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert window.add_model_folder(empty) is False
    assert "not a Mimi model folder" in window.banner.text
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("encoder_model.onnx", "decoder_model.onnx", "state_spec.txt"):
        (broken / name).write_bytes(b"not a model")
    assert window.add_model_folder(broken)
    qtbot.waitUntil(lambda: window.banner.kind == "error" and "broken" in window.banner.text and not window.bridge.busy,
                    timeout=WAIT_MS)
    # Still on the model that works, and it still starts.
    assert window.bridge.codec_model == model_dir("tiny-8cb").resolve()
    assert window.selected_model() == model_dir("tiny-8cb").resolve()
    start_and_wait(qtbot, window)
    stop(qtbot, window)


# -- published variants from the HF cache: checked against the hub, off the GUI thread -----------


def put_in_cache(cache: Path, *names: str) -> dict[str, Path]:
    """Downloads published variants (the tiny fixtures, from a fake hub) into the default HF cache."""
    from app.models.download import download_variant
    from fakehub import FakeHub

    model_dir("tiny-8cb")  # skips if the fixture models are missing
    with FakeHub() as hub:
        return {name: download_variant(name, cache_dir=cache, endpoint=hub.endpoint) for name in names}


def tamper(folder: Path, name: str = "encoder_model.onnx") -> None:
    path = folder / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))  # through the snapshot symlink: the blob itself


def record_hashing(monkeypatch) -> list[threading.Thread]:
    """The thread of every file hashed by the integrity check, in order."""
    from app.models import catalogue

    threads = []
    real = catalogue.file_problem

    def spy(path, expected):
        threads.append(threading.current_thread())
        return real(path, expected)

    monkeypatch.setattr(catalogue, "file_problem", spy)
    return threads


def record_codec_loads(monkeypatch) -> list[Path]:
    """Every model folder a codec is built from (preview load, start or live swap)."""
    import app.audio.engine
    import app.audio.live_changes
    import app.codec

    built = []
    real_codec, real_load = app.codec.StreamingCodec, app.audio.engine.load_codec

    def codec(model, *args, **kwargs):
        built.append(Path(model))
        return real_codec(model, *args, **kwargs)

    def load(config):
        built.append(Path(config.model))
        return real_load(config)

    monkeypatch.setattr(app.codec, "StreamingCodec", codec)
    monkeypatch.setattr(engine_bridge_module, "load_codec", load)
    monkeypatch.setattr(app.audio.engine, "load_codec", load)  # the engine's start
    monkeypatch.setattr(app.audio.live_changes, "load_codec", load)  # the engine's live swap
    return built


def pick(window: MainWindow, folder: Path) -> None:
    combo = window.controls.model_combo
    index = combo.findData(str(folder))
    assert index >= 0 and "download" not in combo.itemText(index)
    combo.setCurrentIndex(index)


def corrupt_text(name: str, folder: Path) -> str:
    from app.models import verify_cached
    from app.models.catalogue import corrupt_message

    return corrupt_message(name, verify_cached(name, folder))


def test_an_intact_cached_variant_is_hashed_on_the_loader_thread_and_loads(qtbot, settings, hub_cache,
                                                                            monkeypatch) -> None:
    folders = put_in_cache(hub_cache, "streaming-8cb", "streaming-16cb")
    threads = record_hashing(monkeypatch)
    window = open_window(qtbot, settings, FakeAudio())  # selects and loads the first cached variant
    qtbot.waitUntil(lambda: window.bridge.codec is not None and not window.bridge.busy, timeout=WAIT_MS)
    assert window.bridge.codec_model == folders["streaming-8cb"] and loaded_codec(window).max_codebooks == 8
    assert len(threads) == 3  # every file checked...
    pick(window, folders["streaming-16cb"])
    qtbot.waitUntil(lambda: window.bridge.codec_model == folders["streaming-16cb"] and not window.bridge.busy,
                    timeout=WAIT_MS)
    assert loaded_codec(window).max_codebooks == 16
    assert len(threads) == 6 and threading.main_thread() not in threads  # ...never on the GUI thread
    assert window.banner.kind != "error"


def test_a_tampered_cached_variant_picked_while_stopped_is_a_message_and_loads_nothing(
        qtbot, settings, hub_cache, monkeypatch) -> None:
    folders = put_in_cache(hub_cache, "streaming-8cb", "streaming-16cb")
    v8, v16 = folders["streaming-8cb"], folders["streaming-16cb"]
    tamper(v16)
    expected = corrupt_text("streaming-16cb", v16)  # what the CLI says too
    threads = record_hashing(monkeypatch)
    built = record_codec_loads(monkeypatch)
    window = open_window(qtbot, settings, FakeAudio())
    qtbot.waitUntil(lambda: window.bridge.codec_model == v8 and not window.bridge.busy, timeout=WAIT_MS)
    pick(window, v16)
    qtbot.waitUntil(lambda: window.banner.kind == "error" and not window.bridge.busy, timeout=WAIT_MS)
    assert window.banner.text == expected
    assert "encoder_model.onnx" in window.banner.text and "`mimi-live download streaming-16cb`" in window.banner.text
    assert v16 not in built and threads and threading.main_thread() not in threads
    # Still on the model that works, the window usable: it starts.
    assert window.bridge.codec_model == v8 and window.selected_model() == v8
    assert window.controls.model_combo.isEnabled() and window.controls.start_button.isEnabled()
    window.set_source("tone")
    start_and_wait(qtbot, window)
    stop(qtbot, window)


def test_a_tampered_cached_variant_with_nothing_loaded_neither_loads_nor_starts(qtbot, settings, hub_cache,
                                                                               monkeypatch) -> None:
    folder = put_in_cache(hub_cache, "streaming-8cb")["streaming-8cb"]
    tamper(folder, "decoder_model.onnx")
    built = record_codec_loads(monkeypatch)
    window = open_window(qtbot, settings, FakeAudio())  # selects it and tries to load it
    qtbot.waitUntil(lambda: window.banner.kind == "error" and not window.bridge.busy, timeout=WAIT_MS)
    assert window.banner.text == corrupt_text("streaming-8cb", folder)
    assert window.bridge.codec is None and window.bridge.codec_model is None
    window.set_source("tone")
    assert window.start()  # Start on the selected (damaged) variant: refused the same way
    qtbot.waitUntil(lambda: not window.bridge.busy, timeout=WAIT_MS)
    assert not window.bridge.running and window.bridge.codec is None
    assert window.banner.kind == "error" and window.banner.text == corrupt_text("streaming-8cb", folder)
    assert built == []
    assert window.controls.start_button.isEnabled() and window.controls.start_button.text() == "Start"


def test_a_tampered_cached_variant_picked_while_running_is_refused_and_the_old_model_plays_on(
        qtbot, settings, hub_cache, monkeypatch) -> None:
    folders = put_in_cache(hub_cache, "streaming-8cb", "streaming-16cb", "streaming-8cb-fp16")
    v8, v16, fp16 = folders["streaming-8cb"], folders["streaming-16cb"], folders["streaming-8cb-fp16"]
    tamper(v16)
    expected = corrupt_text("streaming-16cb", v16)
    window = open_window(qtbot, settings, FakeAudio())
    qtbot.waitUntil(lambda: window.bridge.codec_model == v8 and not window.bridge.busy, timeout=WAIT_MS)
    window.set_source("tone")
    start_and_wait(qtbot, window)
    threads = record_hashing(monkeypatch)
    built = record_codec_loads(monkeypatch)
    engine_codec = window.bridge.engine.codec
    pick(window, v16)
    qtbot.waitUntil(lambda: window.banner.kind == "error" and not window.bridge.busy, timeout=WAIT_MS)
    assert window.banner.text == expected
    assert window.bridge.running and window.bridge.engine.codec is engine_codec
    assert window.bridge.codec_model == v8 and window.selected_model() == v8
    seen = window.plots.codebooks.frames_seen
    qtbot.waitUntil(lambda: window.plots.codebooks.frames_seen > seen + 2, timeout=WAIT_MS)  # still playing
    assert v16 not in built and threads and threading.main_thread() not in threads
    # An intact variant is then swapped in live, its check off the GUI thread too.
    del threads[:]
    window.banner.hide()
    pick(window, fp16)
    qtbot.waitUntil(lambda: window.bridge.codec_model == fp16 and not window.bridge.busy, timeout=WAIT_MS)
    assert window.bridge.running and window.bridge.engine.codec is not engine_codec
    assert len(threads) == 3 and threading.main_thread() not in threads
    seen = window.plots.codebooks.frames_seen
    qtbot.waitUntil(lambda: window.plots.codebooks.frames_seen > seen + 2, timeout=WAIT_MS)
    assert window.banner.text == ""  # no new message
    stop(qtbot, window)


# -- local int8 copies: made from the window, listed with their SNR against the float model --------


def int8_entries(window: MainWindow) -> dict[str, tuple[str, str]]:
    """The Variant list's int8 copies: folder -> (text, tooltip)."""
    combo = window.controls.model_combo
    return {combo.itemData(i): (combo.itemText(i), combo.itemData(i, Qt.ItemDataRole.ToolTipRole))
            for i in range(combo.count()) if " · int8" in combo.itemText(i)}


def record_int8_threads(monkeypatch) -> list[threading.Thread]:
    """The thread each int8 quality measurement runs on."""
    from app.codec import int8_copy

    threads = []
    real = int8_copy.measure_quality

    def spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(int8_copy, "measure_quality", spy)
    return threads


def test_an_int8_copy_made_from_the_window_is_listed_with_its_snr_and_not_switched_to(qtbot, settings,
                                                                                      monkeypatch) -> None:
    tiny = model_dir("tiny-8cb").resolve()
    window = open_window(qtbot, settings, FakeAudio(), model=tiny)
    c = window.controls
    assert int8_entries(window) == {} and c.int8_button.isEnabled()
    threads = record_int8_threads(monkeypatch)
    busy_texts = []
    window.bridge.sigBusy.connect(lambda busy, text: busy_texts.append(text))
    c.int8_actions["encoder+decoder"].trigger()
    assert window.bridge.busy and not c.int8_button.isEnabled() and not c.model_combo.isEnabled()
    qtbot.waitUntil(lambda: not window.bridge.busy and window.banner.kind == "info", timeout=WAIT_MS)
    assert threads and threading.main_thread() not in threads  # made on the loader thread
    assert any("Making the int8 copy of tiny-8cb" in t for t in busy_texts)
    assert any("measuring quality and speed" in t for t in busy_texts)  # make_int8's progress, shown live
    (folder, (text, tooltip)), = int8_entries(window).items()
    from app.models import local_int8_models

    (made, quality), = local_int8_models()
    assert folder == str(made) and quality.source == str(tiny) and quality.parts == "encoder+decoder"
    assert text == f"tiny-8cb · int8 · SNR {quality.snr_end_to_end_db:.1f} dB vs float · " \
                   f"{quality.ms_per_frame:.0f} vs {quality.original_ms_per_frame:.0f} ms/frame"
    for number in (f"{quality.snr_end_to_end_db:.1f} dB", f"{quality.snr_same_codes_db:.1f} dB",
                   f"{quality.codes_agreement:.1%}", f"{quality.speedup:.2f}x"):
        assert number in tooltip and number in window.banner.text
    assert "same codes" in tooltip and "identical codes" in tooltip
    assert f"SNR {quality.snr_end_to_end_db:.1f} dB end to end" in window.banner.text
    # Not switched to: the float model is still loaded and selected.
    assert window.bridge.codec_model == tiny and window.selected_model() == tiny
    assert c.model_combo.isEnabled() and c.int8_button.isEnabled()
    # Picked by the user, it loads like any folder (on the loader thread), named after its source.
    pick(window, made)
    qtbot.waitUntil(lambda: window.bridge.codec_model == made and not window.bridge.busy, timeout=WAIT_MS)
    assert loaded_codec(window).max_codebooks == 8 and window.banner.kind == "info"
    assert any(t == "Loading tiny-8cb int8…" for t in busy_texts)
    qtbot.waitUntil(lambda: window.status["model"].text() == "tiny-8cb int8 · 8 cb", timeout=WAIT_MS)
    note = window.controls.model_note.text()
    assert note.startswith(f"tiny-8cb int8: SNR {quality.snr_end_to_end_db:.1f} dB vs float")
    assert not c.int8_button.isEnabled() and "already an int8 copy" in c.int8_button.toolTip()
    window.set_source("tone")
    start_and_wait(qtbot, window)
    stop(qtbot, window)
    window.close()
    # Listed from disk in a new window, and still the selected model.
    again = open_window(qtbot, settings, FakeAudio())
    qtbot.waitUntil(lambda: again.bridge.codec_model == made and not again.bridge.busy, timeout=WAIT_MS)
    assert int8_entries(again) == {folder: (text, tooltip)}
    assert again.controls.model_combo.currentText() == text


def test_int8_copies_wait_for_a_stop_and_switch_in_live(qtbot, settings, monkeypatch) -> None:
    tiny = model_dir("tiny-8cb").resolve()
    window = open_window(qtbot, settings, FakeAudio(), model=tiny)
    c = window.controls
    window.set_source("tone")
    start_and_wait(qtbot, window)
    # While streaming the measurement would glitch the audio and skew its speeds: not offered.
    assert not c.int8_button.isEnabled() and not c.int8_menu.menuAction().isEnabled()
    assert "Stop streaming first" in c.int8_button.toolTip()
    assert window.make_int8_copy("decoder") is False and window.banner.kind == "warning"
    stop(qtbot, window)
    assert c.int8_button.isEnabled()
    c.int8_actions["decoder"].trigger()
    qtbot.waitUntil(lambda: not window.bridge.busy and window.banner.kind == "info", timeout=WAIT_MS)
    (folder, (text, tooltip)), = int8_entries(window).items()
    assert text.startswith("tiny-8cb · int8 decoder · SNR ") and "dB vs float" in text
    assert "codes are exactly the float model's" in tooltip and "identical codes: 100.0%" in tooltip
    assert "(decoder only)" in window.banner.text
    assert window.bridge.codec_model == tiny
    # Picked while streaming: swapped in live like any model folder, audio keeps flowing.
    start_and_wait(qtbot, window)
    engine_codec = window.bridge.engine.codec
    pick(window, Path(folder))
    qtbot.waitUntil(lambda: window.bridge.codec_model == Path(folder) and not window.bridge.busy, timeout=WAIT_MS)
    assert window.bridge.running and window.bridge.engine.codec is not engine_codec
    seen = window.plots.codebooks.frames_seen
    qtbot.waitUntil(lambda: window.plots.codebooks.frames_seen > seen + 2, timeout=WAIT_MS)
    stop(qtbot, window)
    assert window.banner.kind != "error"


def test_a_failed_int8_copy_is_an_error_banner_and_lists_nothing(qtbot, settings, monkeypatch) -> None:
    from app.codec import int8_copy
    from app.config import data_dir

    def broken(*args, **kwargs):
        raise RuntimeError("measurement exploded")

    monkeypatch.setattr(int8_copy, "measure_quality", broken)
    tiny = model_dir("tiny-8cb").resolve()
    window = open_window(qtbot, settings, FakeAudio(), model=tiny)
    combo = window.controls.model_combo
    before = [combo.itemText(i) for i in range(combo.count())]
    window.controls.int8_actions["encoder+decoder"].trigger()
    qtbot.waitUntil(lambda: not window.bridge.busy and window.banner.kind == "error", timeout=WAIT_MS)
    assert "cannot make an int8 copy of" in window.banner.text and "measurement exploded" in window.banner.text
    assert [combo.itemText(i) for i in range(combo.count())] == before and int8_entries(window) == {}
    assert not any((data_dir() / "int8").glob("*"))  # no half-made copy left behind
    # Still on the float model, the window usable.
    assert window.bridge.codec_model == tiny and window.selected_model() == tiny
    assert window.controls.int8_button.isEnabled() and window.controls.start_button.isEnabled()
    window.set_source("tone")
    start_and_wait(qtbot, window)
    stop(qtbot, window)


# -- streaming ----------------------------------------------------------------------------------


def test_start_fills_the_plots_and_the_readouts_then_stops(qtbot, settings) -> None:
    window = open_window(qtbot, settings, FakeAudio(), model=model_dir("tiny-8cb"))
    window.set_source("tone")
    start_and_wait(qtbot, window, frames=5)
    assert window.controls.start_button.text() == "Stop"
    assert not window.controls.chunk_combo.isEnabled()  # needs new streams: only while stopped
    plots = window.plots
    qtbot.waitUntil(lambda: plots.latency.points >= 5 and plots.spectrogram.columns_drawn > 0, timeout=WAIT_MS)
    image = plots.codebooks.image.image
    assert image is not None and image.shape == (8, 125) and image.any()
    assert plots.latency.total.getData()[0].size >= 5
    assert plots.kv.encoder.getData()[1].max() > 0
    assert np.all(plots.codebooks.entropy_bits >= 0)
    qtbot.waitUntil(lambda: window.readouts["rtf"].value.text() not in ("–", ""), timeout=WAIT_MS)
    assert "bps" in window.readouts["bitrate"].value.text()
    assert "fps" in window.status["fps"].text()
    assert window.input_meter.level_db > -120
    stop(qtbot, window)
    assert window.banner.kind != "error"


def test_codebooks_and_variant_switch_while_running(qtbot, settings) -> None:
    window = open_window(qtbot, settings, FakeAudio(), model=model_dir("tiny-16cb"))
    window.set_source("tone")
    start_and_wait(qtbot, window)
    assert last_metrics(window).codebooks == 16
    combo = window.controls.codebooks_combo
    combo.setCurrentIndex(combo.findData(4))
    qtbot.waitUntil(lambda: last_metrics(window).codebooks == 4 and not window.bridge.busy, timeout=WAIT_MS)
    assert window.bridge.running
    assert "4 codebooks" in window.controls.codebooks_combo.currentText()
    # Another model folder while running: swapped in, audio keeps going, k=4 is kept.
    assert window.add_model_folder(model_dir("tiny-8cb"))
    qtbot.waitUntil(lambda: window.bridge.codec_model == model_dir("tiny-8cb").resolve() and not window.bridge.busy,
                    timeout=WAIT_MS)
    seen = window.plots.codebooks.frames_seen
    qtbot.waitUntil(lambda: window.plots.codebooks.frames_seen > seen + 2, timeout=WAIT_MS)
    assert window.bridge.running
    assert last_metrics(window).codebooks == 4
    assert loaded_codec(window).max_codebooks == 8 and window.plots.codebooks.rows == 8
    assert window.controls.codebooks_combo.count() == 8
    stop(qtbot, window)


def test_monitor_shortcuts_switch_the_engine_instantly(qtbot, settings) -> None:
    window = open_window(qtbot, settings, FakeAudio(), model=model_dir("tiny-8cb"))
    window.set_source("tone")
    start_and_wait(qtbot, window)
    window.activateWindow()
    engine = window.bridge.engine
    for key, expected in (("2", "bypass"), ("3", "residual"), ("1", "codec")):
        qtbot.keyClick(window, key)
        assert engine.monitor == expected
        assert window.controls.monitor_buttons[expected].isChecked()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert engine.monitor == "bypass"
    qtbot.waitUntil(lambda: last_metrics(window).monitor == "bypass", timeout=WAIT_MS)
    assert window.readouts["monitor"].value.text() == "BYPASS"
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert engine.monitor == "codec"
    stop(qtbot, window)


def test_record_toggle_writes_input_and_codec_wavs(qtbot, settings, tmp_path) -> None:
    folder = tmp_path / "recordings"
    clip = tmp_path / "clip.wav"
    sf.write(str(clip), (0.2 * np.random.default_rng(0).standard_normal(SAMPLE_RATE_HZ // 2)).astype(np.float32),
             SAMPLE_RATE_HZ)
    window = open_window(qtbot, settings, FakeAudio(), model=model_dir("tiny-8cb"))
    window.set_input_file(clip)
    window.set_record_folder(folder)
    start_and_wait(qtbot, window)
    window.controls.record_button.setChecked(True)  # while running: restarts the session, recording
    qtbot.waitUntil(lambda: window.bridge.running and not window.bridge.busy
                    and bool((window.bridge.engine.info or {}).get("recording")), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.plots.codebooks.frames_seen >= 5, timeout=WAIT_MS)
    assert window.controls.record_button.text().endswith("Recording")
    stop(qtbot, window)
    wavs = sorted(folder.glob("*.wav"))
    assert [p.name[-10:] for p in wavs] == ["-codec.wav", "-input.wav"]
    for path in wavs:
        info = sf.info(str(path))
        assert info.samplerate == SAMPLE_RATE_HZ and info.frames > 0
    assert window.banner.kind == "info" and "Recorded" in window.banner.text


# -- failures -----------------------------------------------------------------------------------


def test_a_device_that_fails_to_open_is_a_message_and_start_works_again(qtbot, settings) -> None:
    audio = FakeAudio(fail_first=DeviceError("cannot open output device 'Fake' at 24000 Hz; is it busy?"))
    window = open_window(qtbot, settings, audio, model=model_dir("tiny-8cb"))
    window.set_source("tone")
    assert window.start()
    qtbot.waitUntil(lambda: not window.bridge.busy, timeout=WAIT_MS)
    assert not window.bridge.running
    assert window.banner.kind == "error" and "cannot open output device" in window.banner.text
    assert window.controls.start_button.isEnabled() and window.controls.start_button.text() == "Start"
    start_and_wait(qtbot, window)
    stop(qtbot, window)


def test_a_device_lost_while_running_is_a_message_and_start_works_again(qtbot, settings) -> None:
    audio = FakeAudio()
    window = open_window(qtbot, settings, audio, model=model_dir("tiny-8cb"))
    window.set_source("tone")
    window.bridge.engine.reconnect_timeout_s = 0.3
    start_and_wait(qtbot, window)
    audio.gone = True  # and it stays gone
    audio.ios[-1].simulate_device_lost("output")
    qtbot.waitUntil(lambda: not window.bridge.running and window.banner.kind == "error", timeout=WAIT_MS)
    assert "unplugged" in window.banner.text
    assert window.controls.start_button.text() == "Start"
    audio.gone = False
    start_and_wait(qtbot, window)
    stop(qtbot, window)


def test_a_device_lost_while_running_is_reopened_and_the_window_says_so(qtbot, settings) -> None:
    audio = FakeAudio()
    window = open_window(qtbot, settings, audio, model=model_dir("tiny-8cb"))
    window.set_source("tone")
    start_and_wait(qtbot, window)
    audio.ios[-1].simulate_device_lost("output")
    qtbot.waitUntil(lambda: window.banner.isVisible() and window.banner.kind == "info"
                    and "audio is back" in window.banner.text, timeout=WAIT_MS)
    seen = window.plots.codebooks.frames_seen
    qtbot.waitUntil(lambda: window.plots.codebooks.frames_seen > seen + 2, timeout=WAIT_MS)
    assert window.bridge.running and len(audio.ios) == 2
    stop(qtbot, window)


def test_missing_portaudio_is_a_note_not_a_crash(qtbot, settings) -> None:
    def no_portaudio():
        raise AudioUnavailable("PortAudio is not available: install it, e.g. `sudo apt install libportaudio2`")

    window = open_window(qtbot, settings, FakeAudio(), lister=no_portaudio)
    note = window.controls.audio_note
    assert not note.isHidden() and "libportaudio2" in note.text()
    assert window.controls.input_combo.count() == 1  # "System default" only


def test_devices_are_listed_and_remembered_by_name(qtbot, settings) -> None:
    window = open_window(qtbot, settings, FakeAudio())
    c = window.controls
    assert [c.input_combo.itemText(i) for i in range(c.input_combo.count())] == ["System default", "Fake mic (ALSA)"]
    c.output_combo.setCurrentIndex(1)
    assert settings.value("audio/output_device") == "Fake speaker\tALSA"
    window.close()
    again = open_window(qtbot, settings, FakeAudio())
    assert again.controls.output_combo.currentText() == "Fake speaker (ALSA)"


def test_settings_persist_between_windows(qtbot, settings) -> None:
    window = open_window(qtbot, settings, FakeAudio(), model=model_dir("tiny-16cb"))
    c = window.controls
    c.chunk_combo.setCurrentIndex(c.chunk_combo.findData(240))
    c.kv_combo.setCurrentIndex(c.kv_combo.findData(0))  # 0 = no window
    c.codebooks_combo.setCurrentIndex(c.codebooks_combo.findData(6))
    qtbot.waitUntil(lambda: not window.bridge.busy and loaded_codec(window).num_codebooks == 6, timeout=WAIT_MS)
    window.set_monitor("residual")
    window.close()
    again = open_window(qtbot, settings, FakeAudio())
    qtbot.waitUntil(lambda: again.bridge.codec is not None and not again.bridge.busy, timeout=WAIT_MS)
    c = again.controls
    assert c.chunk_combo.currentData() == 240 and c.kv_window() is None
    assert again.selected_model() == model_dir("tiny-16cb").resolve()
    assert c.codebooks_combo.currentData() == 6
    assert again.monitor() == "residual" and again.bridge.engine.monitor == "residual"


# -- pieces -------------------------------------------------------------------------------------


def test_python_side_signal_emits_cannot_exhaust_true(qtbot, settings) -> None:
    # PySide6 6.12.0 loses a reference to True per emit(); pyqtgraph emits on every redraw.
    import sys

    from PySide6.QtCore import QObject, Signal

    open_window(qtbot, settings, FakeAudio())  # applies app.ui.compat's guard

    class Emitter(QObject):
        sig = Signal()

    emitter = Emitter()
    for _ in range(20_000):
        emitter.sig.emit()
    assert sys.getrefcount(True) > 10_000


def test_find_cached_reads_the_hub_cache_without_network(tmp_path) -> None:
    from app.models import HUB_REPO, MODEL_FILES, find_cached

    repo = tmp_path / f"models--{HUB_REPO.replace('/', '--')}"
    snapshot = repo / "snapshots" / ("a" * 40) / "streaming-8cb"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    for name in MODEL_FILES[:2]:
        (snapshot / name).write_bytes(b"x")
    assert find_cached("streaming-8cb", cache_dir=tmp_path) is None  # state_spec.txt missing
    (snapshot / MODEL_FILES[2]).write_text("# num_codebooks=8\n")
    assert find_cached("streaming-8cb", cache_dir=tmp_path) == snapshot
    assert find_cached("streaming-16cb", cache_dir=tmp_path) is None


def test_cli_starts_the_gui_with_no_command_and_with_gui(monkeypatch, tmp_path) -> None:
    import app.ui.app as ui_app
    from app.cli import main

    calls: list[Path | None] = []

    def run_gui(model: Path | None = None) -> int:
        calls.append(model)
        return 0

    monkeypatch.setattr(ui_app, "run_gui", run_gui)
    assert main([]) == 0
    assert main(["gui", "--model", str(tmp_path)]) == 0
    assert calls == [None, tmp_path]


def test_log_file_and_excepthook_never_stack_dialogs(tmp_path, monkeypatch) -> None:
    from app.logs import setup_logging
    from app.ui.app import ExceptHook

    root = logging.getLogger()
    before = list(root.handlers)
    try:
        path = setup_logging(tmp_path / "logs")
        hook = ExceptHook(path)
        hook._showing = True  # a dialog is already up: the next exception is only logged
        try:
            raise ValueError("boom")
        except ValueError as exc:
            hook(type(exc), exc, exc.__traceback__)
        for handler in root.handlers:
            handler.flush()
        assert "ValueError: boom" in path.read_text()
    finally:
        for handler in [h for h in root.handlers if h not in before]:
            root.removeHandler(handler)
            handler.close()


def test_a_codebook_switch_shows_when_the_engine_runs_it(qtbot, settings, monkeypatch) -> None:
    """The loader thread ends before the worker applies the switch: the controls follow the worker."""
    window = open_window(qtbot, settings, FakeAudio(), model=model_dir("tiny-16cb"))
    window.set_source("tone")
    start_and_wait(qtbot, window)
    engine = window.bridge.engine
    held = []
    monkeypatch.setattr(engine, "_schedule", lambda session, action: held.append((session, action)))
    combo = window.controls.codebooks_combo
    combo.setCurrentIndex(combo.findData(4))
    qtbot.waitUntil(lambda: bool(held) and not window.bridge.busy, timeout=WAIT_MS)
    assert "16 codebooks" in combo.currentText()  # prepared, not running yet: the window says so
    engine._actions.extend(held)  # now the worker applies it between two chunks
    qtbot.waitUntil(lambda: last_metrics(window).codebooks == 4, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "4 codebooks" in combo.currentText(), timeout=WAIT_MS)
    stop(qtbot, window)
