"""The window tells the truth about timing: dropouts, the delay won back, the latency budget, and
a Stop that works while a switch is loading (real MainWindow, offscreen, fake devices)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from app.ui import engine_bridge as engine_bridge_module  # noqa: E402
from conftest import model_dir  # noqa: E402
from test_gui import BLOCK, WAIT_MS, FakeAudio, last_metrics, open_window, start_and_wait  # noqa: E402, F401


class StarvingAudio(FakeAudio):
    """FakeAudio whose microphone can go quiet for a number of ticks (it delivers nothing)."""

    starving = 0

    def tick(self) -> None:
        for io in self.ios[-1:]:
            try:
                if io.active:
                    empty = self.starving > 0
                    self.starving = max(0, self.starving - 1)
                    io.tick(BLOCK, np.zeros(0, np.float32) if empty else None)
            except RuntimeError:
                pass


def test_a_dropout_is_announced_and_so_is_the_delay_won_back(qtbot, settings) -> None:
    audio = StarvingAudio()
    window = open_window(qtbot, settings, audio, model=model_dir("tiny-8cb"))
    window.set_source("mic")
    start_and_wait(qtbot, window)
    qtbot.waitUntil(lambda: bool(window.budget_bar.budget), timeout=WAIT_MS)
    audio.starving = 15  # 300 ms without input: the speaker runs dry
    qtbot.waitUntil(lambda: window.banner.isVisible() and window.banner.kind == "warning"
                    and "dropped out" in window.banner.text, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.banner.isVisible() and window.banner.kind == "info"
                    and "back to normal" in window.banner.text, timeout=WAIT_MS)
    last = last_metrics(window)
    assert last.underruns > 0 and last.dropouts >= last.underruns
    assert f"dropouts {last.dropouts}" in window.status["xruns"].text()
    assert "device xruns" in window.status["xruns"].text()
    assert f"microphone {last.input_xruns}, speaker {last.xruns - last.input_xruns}" in window.status["xruns"].toolTip()
    # The bar draws the stages of the latency readout.
    assert set(window.budget_bar.budget) == set(last.budget_ms)
    assert window.budget_bar.total_ms == pytest.approx(last.latency_ms, abs=25)
    window.stop()


def test_stop_works_while_a_model_switch_is_loading(qtbot, settings, monkeypatch) -> None:
    audio = FakeAudio()
    window = open_window(qtbot, settings, audio, model=model_dir("tiny-8cb"))
    window.set_source("tone")
    start_and_wait(qtbot, window)
    release = threading.Event()
    real_load = engine_bridge_module.load_codec
    import app.audio.live_changes as live_changes_module

    def slow_load(config):
        release.wait(10)
        return real_load(config)

    monkeypatch.setattr(live_changes_module, "load_codec", slow_load)  # the live swap
    assert window.add_model_folder(model_dir("tiny-16cb"))
    qtbot.waitUntil(lambda: window.bridge.busy, timeout=WAIT_MS)
    assert window.controls.start_button.isEnabled() and window.controls.start_button.text() == "Stop"
    window.controls.start_button.click()
    qtbot.waitUntil(lambda: not window.bridge.running, timeout=WAIT_MS)
    release.set()  # the load ends after the session did: nothing is swapped into the next one
    qtbot.waitUntil(lambda: not window.bridge.busy, timeout=WAIT_MS)
    time.sleep(0.2)
    assert not window.bridge.running
    assert window.controls.start_button.text() == "Start"
