"""Devices change while the window streams: another output or input is chosen, or the list is
refreshed to see a device plugged in since (real MainWindow, offscreen, fake devices)."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from app.audio.devices import DeviceInfo  # noqa: E402
from app.audio.engine import EngineConfig  # noqa: E402
from conftest import model_dir  # noqa: E402
from test_gui import WAIT_MS, FakeAudio, devices, open_window, start_and_wait, stop  # noqa: E402, F401

HEADSET = DeviceInfo(2, "USB headset", "ALSA", 1, 2, 48000.0)


class RecordingAudio(FakeAudio):
    """FakeAudio that remembers the configuration each stream was opened with."""

    def __init__(self) -> None:
        super().__init__()
        self.configs: list[EngineConfig] = []

    def io_factory(self, config):
        self.configs.append(config)
        return super().io_factory(config)


def test_choosing_another_output_while_streaming_moves_the_stream(qtbot, settings) -> None:
    audio = RecordingAudio()
    window = open_window(qtbot, settings, audio, model=model_dir("tiny-8cb"))
    window.set_source("tone")
    start_and_wait(qtbot, window)
    c = window.controls
    assert c.output_combo.isEnabled() and c.refresh_devices_button.isEnabled()
    assert not c.source_combo.isEnabled()  # a new source needs a new session
    c.output_combo.setCurrentIndex(c.output_combo.findText("Fake speaker (ALSA)"))
    qtbot.waitUntil(lambda: len(audio.ios) == 2, timeout=WAIT_MS)
    # By name: PortAudio's indices change when it is initialised again for the new streams.
    assert audio.configs[-1].output_device == "Fake speaker"
    seen = window.plots.codebooks.frames_seen
    qtbot.waitUntil(lambda: window.plots.codebooks.frames_seen > seen + 2, timeout=WAIT_MS)
    assert window.bridge.running
    assert settings.value("audio/output_device") == "Fake speaker\tALSA"
    stop(qtbot, window)


def test_refresh_while_streaming_lists_a_new_device_and_keeps_playing(qtbot, settings) -> None:
    plugged: list[DeviceInfo] = []

    def lister() -> list[DeviceInfo]:
        return devices() + plugged

    audio = RecordingAudio()
    window = open_window(qtbot, settings, audio, model=model_dir("tiny-8cb"), lister=lister)
    window.set_source("mic")
    start_and_wait(qtbot, window)
    c = window.controls
    plugged.append(HEADSET)
    c.refresh_devices_button.click()
    qtbot.waitUntil(lambda: c.input_combo.findText("USB headset (ALSA)") > 0, timeout=WAIT_MS)
    assert c.output_combo.findText("USB headset (ALSA)") > 0
    assert len(audio.ios) == 1 and window.bridge.running  # listing did not touch the stream
    c.input_combo.setCurrentIndex(c.input_combo.findText("USB headset (ALSA)"))
    qtbot.waitUntil(lambda: len(audio.ios) == 2, timeout=WAIT_MS)
    assert audio.configs[-1].input_device == "USB headset"
    stop(qtbot, window)
