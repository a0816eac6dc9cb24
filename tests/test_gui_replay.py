"""The window's instant replay (P and its button) and the live STOI card (the real MainWindow on the
fake audio backend and the tiny model, as tests/test_gui.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from app.ui.controls import REPLAY_TEXT, REPLAYING_TEXT  # noqa: E402
from conftest import model_dir  # noqa: E402
from test_gui import WAIT_MS, FakeAudio, _delete_fake_timers, open_window, start_and_wait, stop  # noqa: E402, F401


def test_the_stoi_card_scores_the_path_heard_against_the_input(qtbot, settings) -> None:
    window = open_window(qtbot, settings, FakeAudio(), model=model_dir("tiny-8cb"))
    window.set_source("tone")
    window.set_monitor("bypass")  # the input itself: intelligibility 1
    start_and_wait(qtbot, window)
    card = window.readouts["quality"].value
    qtbot.waitUntil(lambda: card.text() == "1.00", timeout=WAIT_MS)
    reading = window.bridge.quality()
    assert reading is not None and reading.path == "bypass" and reading.seconds >= 1.0
    window.set_monitor("residual")  # input minus output: another figure, for that path
    qtbot.waitUntil(lambda: (r := window.bridge.quality()) is not None and r.path == "residual", timeout=WAIT_MS)
    stop(qtbot, window)
    assert card.text() == "–"  # no figure without a stream


def test_p_replays_the_last_seconds_announced_and_a_second_press_ends_it(qtbot, settings) -> None:
    window = open_window(qtbot, settings, FakeAudio(), model=model_dir("tiny-8cb"))
    window.set_source("tone")
    start_and_wait(qtbot, window, frames=20)  # 1.6 s of tape: enough to replay
    window.activateWindow()
    qtbot.keyClick(window, "p")
    button = window.controls.replay_button
    assert button.text() == REPLAYING_TEXT and window.bridge.replaying
    qtbot.waitUntil(lambda: "Replay 1/5: Original" in window.banner.text, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "Replay 2/5: Mimi 8 codebooks" in window.banner.text, timeout=WAIT_MS)
    assert window.bridge.running  # the stream goes on under the replay
    qtbot.keyClick(window, "p")
    qtbot.waitUntil(lambda: "Replay done: live again" in window.banner.text, timeout=WAIT_MS)
    assert button.text() == REPLAY_TEXT and not window.bridge.replaying
    stop(qtbot, window)


def test_replay_before_anything_streamed_says_what_to_do(qtbot, settings) -> None:
    window = open_window(qtbot, settings, FakeAudio(), model=model_dir("tiny-8cb"))
    window.controls.replay_button.click()
    assert "nothing to replay yet: stream for a few seconds first" in window.banner.text
    assert window.controls.replay_button.text() == REPLAY_TEXT
