"""The window's classic-codec monitor paths: the box that runs them, keys 4-7, the measured bitrate
(the real MainWindow on the fake audio backend and the tiny model, as tests/test_gui.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import Qt  # noqa: E402

from app.ui.controls import CLASSIC_KEYS  # noqa: E402
from conftest import model_dir  # noqa: E402
from test_gui import WAIT_MS, FakeAudio, _delete_fake_timers, open_window, start_and_wait, stop  # noqa: E402, F401


def test_without_the_box_the_classic_keys_explain_and_keep_mimi(qtbot, settings) -> None:
    window = open_window(qtbot, settings, FakeAudio(), model=model_dir("tiny-8cb"))
    window.set_source("tone")
    start_and_wait(qtbot, window)
    window.activateWindow()
    qtbot.keyClick(window, "6")
    assert window.bridge.engine.monitor == "codec"
    assert "Codec2 / Opus in step" in window.banner.text
    assert not any(window.controls.monitor_buttons[key].isEnabled() for key in CLASSIC_KEYS)
    assert window.controls.classic_check.isEnabled()  # ticked while streaming, it applies at once
    stop(qtbot, window)


def test_with_the_box_every_classic_path_is_one_key_away_with_its_measured_bitrate(qtbot, settings) -> None:
    window = open_window(qtbot, settings, FakeAudio(), model=model_dir("tiny-8cb"))
    window.set_source("tone")
    window.controls.classic_check.setChecked(True)
    assert all(window.controls.monitor_buttons[key].isEnabled() for key in CLASSIC_KEYS)
    start_and_wait(qtbot, window)
    window.activateWindow()
    engine = window.bridge.engine
    assert engine.config is not None and engine.config.classic_paths
    for key, path in (("4", "codec2-1200"), ("5", "codec2-3200"), ("6", "opus-6k"), ("7", "opus-12k")):
        qtbot.keyClick(window, key)
        assert engine.monitor == path and window.controls.monitor_buttons[path].isChecked()
        qtbot.waitUntil(lambda p=path: window._last is not None and window._last.monitor == p, timeout=WAIT_MS)
    qtbot.keyClick(window, "4")
    qtbot.waitUntil(lambda: window.bridge.classic_bps("codec2-1200") is not None, timeout=WAIT_MS)
    window.refresh_text()
    assert window.readouts["monitor"].value.text() == "CODEC2-1200"
    assert window.readouts["bitrate"].value.text() == "1.2 kbps"  # measured from the bytes produced
    qtbot.keyClick(window, Qt.Key.Key_1)
    assert engine.monitor == "codec"
    stop(qtbot, window)
    assert window.prefs.classic_paths()  # remembered for the next session


def test_unticking_the_box_leaves_a_classic_path_for_mimi(qtbot, settings) -> None:
    window = open_window(qtbot, settings, FakeAudio(), model=model_dir("tiny-8cb"))
    window.controls.classic_check.setChecked(True)
    window.set_monitor("opus-6k")
    window.controls.classic_check.setChecked(False)
    assert window.monitor() == "codec" and not window.prefs.classic_paths()


def test_ticking_the_box_while_streaming_starts_the_classic_paths_and_unticking_stops_them(qtbot, settings) -> None:
    window = open_window(qtbot, settings, FakeAudio(), model=model_dir("tiny-8cb"))
    window.set_source("tone")
    start_and_wait(qtbot, window)
    window.activateWindow()
    engine = window.bridge.engine
    window.controls.classic_check.setChecked(True)
    assert all(window.controls.monitor_buttons[key].isEnabled() for key in CLASSIC_KEYS)
    qtbot.waitUntil(lambda: engine._session is not None and engine._session.bank is not None, timeout=WAIT_MS)
    qtbot.keyClick(window, "6")
    assert engine.monitor == "opus-6k"
    qtbot.waitUntil(lambda: window.bridge.classic_bps("opus-6k") is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: engine._session is not None and engine._session.bank_audible, timeout=WAIT_MS)
    window.controls.classic_check.setChecked(False)
    assert window.monitor() == "codec" and not window.prefs.classic_paths()
    qtbot.waitUntil(lambda: engine._session is not None and engine._session.bank is None, timeout=WAIT_MS)
    assert engine.monitor == "codec"
    assert not any(window.controls.monitor_buttons[key].isEnabled() for key in CLASSIC_KEYS)
    stop(qtbot, window)
