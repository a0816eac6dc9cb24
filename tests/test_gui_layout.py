"""The window at the sizes people run it: nothing cut off, no stale banners, short status lines.

The real MainWindow, offscreen, on the fake audio backend (see test_gui.py), in the app's own
font size (app.ui.theme) so that text wraps as it does on screen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pytestqt")
from PySide6.QtGui import QFont  # noqa: E402
from PySide6.QtWidgets import QApplication, QScrollArea, QWidget  # noqa: E402

from app.audio.devices import DeviceError  # noqa: E402
from app.config import SAMPLE_RATE_HZ  # noqa: E402
from app.ui import main_window as main_window_module  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402
from conftest import model_dir  # noqa: E402
from test_gui import (  # noqa: E402, F401 - fixtures: pytest finds them by name in this module
    WAIT_MS,
    FakeAudio,
    _delete_fake_timers,
    _no_hub_cache,
    open_window,
    start_and_wait,
    stop,
)

SIZES = {"1440x900": (1440, 900), "1600x1000": (1600, 1000), "minimum": None}


@pytest.fixture(autouse=True)
def _app_font(qapp):
    """The font apply_dark_theme gives the app (9.5 pt at least), restored afterwards."""
    saved = QFont(qapp.font())
    font = QFont(saved)
    if font.pointSizeF() < 9.5:
        font.setPointSizeF(9.5)
    qapp.setFont(font)
    yield
    qapp.setFont(saved)


def resize(qtbot, window: MainWindow, size: tuple[int, int] | None) -> None:
    """Resizes to `size` (None: the window's minimum size) and lets the layouts settle."""
    target = window.minimumSize().toTuple() if size is None else size
    window.resize(*target)
    qtbot.waitUntil(lambda: window.size().toTuple() == target, timeout=2000)
    for _ in range(3):  # a few passes: scroll bars and heightForWidth settle one after the other
        QApplication.processEvents()
        qtbot.wait(20)


def reachable(widget: QWidget, page: QWidget) -> bool:
    """Whether all of `widget` can be seen in `page`: inside it, or inside a scroll area's
    content that the scroll bar can bring into view."""
    area = widget.parentWidget()
    while area is not None and area is not page.parentWidget() and not isinstance(area, QScrollArea):
        area = area.parentWidget()
    if isinstance(area, QScrollArea):
        content = area.widget()
        assert content is not None  # the window's scroll areas all have their content
        bottom = widget.mapTo(content, widget.rect().bottomRight())
        return (bottom.y() < content.height() and bottom.x() < content.width()
                and content.height() <= area.viewport().height() + area.verticalScrollBar().maximum()
                and content.width() <= area.viewport().width() + area.horizontalScrollBar().maximum())
    bottom = widget.mapTo(page, widget.rect().bottomRight())
    return bottom.y() < page.height() and bottom.x() < page.width()


# -- 1. the first-run page ----------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_the_welcome_page_shows_all_of_its_instructions(qtbot, settings, size) -> None:
    window = open_window(qtbot, settings, FakeAudio())
    resize(qtbot, window, size)
    assert window.pages.currentIndex() == 1
    label = window.welcome
    assert "then open" in label.text() and "mimi-live export" in label.text()
    # The label is as tall as its text needs at the width it has: nothing cut off at the bottom...
    assert label.height() >= label.heightForWidth(label.width()), (label.size(), label.heightForWidth(label.width()))
    # ...and the whole of it, and the Download button under it, can be seen.
    page = window.pages.currentWidget()
    assert page is not None
    assert reachable(label, page)
    assert reachable(window.welcome_download, page)
    assert window.welcome_download.mapTo(page, window.welcome_download.rect().topLeft()).y() \
        >= label.mapTo(page, label.rect().bottomLeft()).y()


# -- 2. banners that go --------------------------------------------------------------------------


def wait_loaded(qtbot, window: MainWindow, folder: Path) -> None:
    qtbot.waitUntil(lambda: window.bridge.codec_model == folder.resolve() and not window.bridge.busy,
                    timeout=WAIT_MS)


def test_an_offline_banner_goes_when_a_model_is_then_loaded(qtbot, settings) -> None:
    window = open_window(qtbot, settings, FakeAudio())
    assert window.start() is False and "no model" in window.banner.text

    def offline(name, progress, cancel):
        raise ConnectionError("cannot reach the Hugging Face hub at https://huggingface.co (no network)")

    window.download_fn = offline
    window.download_variant("streaming-8cb")
    qtbot.waitUntil(lambda: window._download is None, timeout=10_000)
    assert window.banner.kind == "error" and "no network" in window.banner.text
    assert window.add_model_folder(model_dir("tiny-8cb"))
    wait_loaded(qtbot, window, model_dir("tiny-8cb"))
    assert not window.banner.isVisible() and window.banner.text == ""


def test_a_failed_load_banner_stays_until_a_model_loads(qtbot, settings, tmp_path) -> None:
    window = open_window(qtbot, settings, FakeAudio(), model=model_dir("tiny-8cb"))
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("encoder_model.onnx", "decoder_model.onnx", "state_spec.txt"):
        (broken / name).write_bytes(b"not a model")
    assert window.add_model_folder(broken)
    qtbot.waitUntil(lambda: window.banner.kind == "error" and "broken" in window.banner.text
                    and not window.bridge.busy, timeout=WAIT_MS)
    qtbot.wait(300)  # the fall back to the model still loaded is no success: the message stays
    assert window.banner.kind == "error" and "broken" in window.banner.text
    assert window.add_model_folder(model_dir("tiny-16cb"))
    wait_loaded(qtbot, window, model_dir("tiny-16cb"))
    assert window.banner.text == ""


def test_a_device_error_is_not_cleared_by_loading_a_model(qtbot, settings) -> None:
    audio = FakeAudio(fail_first=DeviceError("cannot open output device 'Fake' at 24000 Hz; is it busy?"))
    window = open_window(qtbot, settings, audio, model=model_dir("tiny-8cb"))
    window.set_source("tone")
    assert window.start()
    qtbot.waitUntil(lambda: not window.bridge.busy and window.banner.kind == "error", timeout=WAIT_MS)
    assert window.add_model_folder(model_dir("tiny-16cb"))
    wait_loaded(qtbot, window, model_dir("tiny-16cb"))
    assert "cannot open output device" in window.banner.text  # the device is still the problem
    start_and_wait(qtbot, window)  # a start that works is what resolves it
    assert window.banner.text == ""
    stop(qtbot, window)


def test_a_choose_a_file_banner_goes_when_a_file_is_chosen(qtbot, settings, tmp_path) -> None:
    clip = tmp_path / "clip.wav"
    sf.write(str(clip), np.zeros(SAMPLE_RATE_HZ // 4, np.float32), SAMPLE_RATE_HZ)
    window = open_window(qtbot, settings, FakeAudio(), model=model_dir("tiny-8cb"))
    window.controls.select_data(window.controls.source_combo, "file")  # chosen, but no file yet
    window._input_file = None
    assert window.start() is False and "choose an audio file" in window.banner.text
    window.set_input_file(clip)
    assert window.banner.text == ""


def record_session(qtbot, window: MainWindow, folder: Path) -> None:
    window.set_source("tone")
    window.set_record_folder(folder)
    start_and_wait(qtbot, window)
    window.controls.record_button.setChecked(True)
    qtbot.waitUntil(lambda: bool(window._recording_paths), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.plots.codebooks.frames_seen >= 5, timeout=WAIT_MS)


def test_the_recorded_banner_goes_by_itself(qtbot, settings, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(main_window_module, "INFO_BANNER_MS", 400)
    window = open_window(qtbot, settings, FakeAudio(), model=model_dir("tiny-8cb"))
    record_session(qtbot, window, tmp_path / "recordings")
    stop(qtbot, window)
    assert window.banner.kind == "info" and "Recorded" in window.banner.text
    qtbot.waitUntil(lambda: not window.banner.isVisible(), timeout=3000)


def test_an_info_banner_replaced_then_shown_again_keeps_its_full_time(qtbot, settings, monkeypatch) -> None:
    monkeypatch.setattr(main_window_module, "INFO_BANNER_MS", 400)
    window = open_window(qtbot, settings, FakeAudio())
    window.show_message("info", "the delay is back to normal")
    qtbot.wait(250)
    window.show_message("info", "the delay is back to normal")  # the same text again: a new 400 ms
    qtbot.wait(250)
    assert window.banner.isVisible()
    qtbot.waitUntil(lambda: not window.banner.isVisible(), timeout=2000)
    window.show_message("error", "something broke")
    qtbot.wait(600)
    assert window.banner.isVisible() and window.banner.kind == "error"  # problems stay


# -- 3. the status bar's recording line ---------------------------------------------------------


def status_room(window: MainWindow) -> int:
    """Width the status bar gives its message: up to the first permanent label (QStatusBar's
    own rule: 6 px in from the left, 2 px before the label)."""
    return min(label.x() for label in window.status.values() if label.isVisible()) - 2 - 6


def assert_recorded_line(qtbot, window: MainWindow, folder: Path) -> None:
    qtbot.wait(50)  # the status bar lays its labels out again
    bar = window.statusBar()
    message = bar.currentMessage()
    assert message.startswith("Recorded mimi-") and "-input.wav" in message and "codec.wav" in message, message
    assert str(folder) not in message
    assert bar.fontMetrics().horizontalAdvance(message) <= status_room(window), (message, status_room(window))
    assert str(folder) in bar.toolTip()


def test_the_status_bar_names_recordings_in_full_at_the_minimum_size(qtbot, settings, tmp_path) -> None:
    folder = tmp_path / "a folder with a long name for the recordings of this session" / "Mimi Live"
    window = open_window(qtbot, settings, FakeAudio(), model=model_dir("tiny-8cb"))
    resize(qtbot, window, None)
    record_session(qtbot, window, folder)
    qtbot.wait(2 * main_window_module.TEXT_REFRESH_MS)  # the status labels at their running width
    window.controls.record_button.setChecked(False)  # while running: the recording ends alone
    qtbot.waitUntil(lambda: window.statusBar().currentMessage().startswith("Recorded"), timeout=WAIT_MS)
    assert_recorded_line(qtbot, window, folder)
    assert str(folder) in window.banner.text  # the banner has room for the folder
    window.controls.record_button.setChecked(True)
    qtbot.waitUntil(lambda: bool(window._recording_paths), timeout=WAIT_MS)
    stop(qtbot, window)  # and when Stop ends it
    assert_recorded_line(qtbot, window, folder)
    window.show_message("warning", "something else")
    assert window.statusBar().toolTip() == ""  # the tooltip went with its line
    assert all(label.isVisible() for label in window.status.values())  # a short line needs no room


# -- 4. the codebook axis -----------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_every_one_of_16_codebooks_is_numbered_legibly(qtbot, settings, size) -> None:
    window = open_window(qtbot, settings, FakeAudio(), model=model_dir("tiny-16cb"))
    resize(qtbot, window, size)
    activity = window.plots.codebooks
    axis = activity.heat.getAxis("left")
    assert [label for _, label in axis._tickLevels[0]] == [str(k) for k in range(1, 17)]
    row_px = activity.heat.getViewBox().height() / 16
    assert row_px >= activity.row_px_needed(), row_px  # one number per row, none overlapping
    # Made room for without pushing the plots below out of the window.
    for plot in (window.plots.spectrogram, window.plots.latency, window.plots.kv):
        assert plot.geometry().bottom() < window.plots.height() and plot.height() >= plot.minimumHeight()
