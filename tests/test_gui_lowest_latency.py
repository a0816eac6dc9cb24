"""The window's "Lowest latency" box: the decoder-only int8 copy made and switched to, 80 ms chunks,
10 ms devices at Start, and all of it undone by unticking (the real MainWindow on the fake audio
backend and the tiny model, as tests/test_gui.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from app.config import DEFAULT_DEVICE_LATENCY_MS, FRAME_MS, LOWEST_LATENCY_DEVICE_MS  # noqa: E402
from conftest import model_dir  # noqa: E402
from test_gui import WAIT_MS, FakeAudio, _delete_fake_timers, open_window, start_and_wait, stop  # noqa: E402, F401


def _started_config(qtbot, window):
    start_and_wait(qtbot, window)
    config = window.bridge.engine.config
    assert config is not None
    stop(qtbot, window)
    return config


def test_the_box_switches_to_the_decoder_only_copy_and_back(qtbot, settings) -> None:
    tiny = model_dir("tiny-8cb").resolve()
    window = open_window(qtbot, settings, FakeAudio(), model=tiny)
    c = window.controls
    window.set_source("tone")
    c.chunk_combo.setCurrentIndex(c.chunk_combo.findData(160))  # the user's own chunk, given back on untick
    c.lowest_latency_check.setChecked(True)
    assert window.bridge.busy  # making the copy: none existed
    qtbot.waitUntil(lambda: window.bridge.codec_model not in (None, tiny) and not window.bridge.busy,
                    timeout=WAIT_MS)
    copy = window.bridge.codec_model
    quality = window.models.list.int8_quality(copy)
    assert quality is not None and quality.parts == "decoder" and Path(quality.source) == tiny
    assert c.chunk_combo.currentData() == FRAME_MS and not c.chunk_combo.isEnabled()
    assert window.controls.model_note.text().startswith("tiny-8cb int8")
    config = _started_config(qtbot, window)
    assert config.model == copy and config.chunk_ms == FRAME_MS
    assert config.device_latency_s == LOWEST_LATENCY_DEVICE_MS / 1000
    # While streaming the box stays as it is (devices and chunk need a new session).
    start_and_wait(qtbot, window)
    assert not c.lowest_latency_check.isEnabled()
    stop(qtbot, window)
    window.close()

    # Saved: a new window comes back with the box ticked and the copy loaded.
    again = open_window(qtbot, settings, FakeAudio())
    qtbot.waitUntil(lambda: again.bridge.codec_model == copy and not again.bridge.busy, timeout=WAIT_MS)
    c = again.controls
    assert c.lowest_latency_check.isChecked() and c.chunk_combo.currentData() == FRAME_MS
    c.lowest_latency_check.setChecked(False)
    qtbot.waitUntil(lambda: again.bridge.codec_model == tiny and not again.bridge.busy, timeout=WAIT_MS)
    assert c.chunk_combo.currentData() == 160 and c.chunk_combo.isEnabled()
    again.set_source("tone")
    config = _started_config(qtbot, again)
    assert config.model == tiny and config.chunk_ms == 160
    assert config.device_latency_s == DEFAULT_DEVICE_LATENCY_MS / 1000
    # Ticked again: the copy made before is reused, no new job.
    c.lowest_latency_check.setChecked(True)
    qtbot.waitUntil(lambda: again.bridge.codec_model == copy and not again.bridge.busy, timeout=WAIT_MS)
    assert again.banner.kind != "error"
