"""The main window: controls on the left, readouts and plots on the right (GUI thread).

Layout, wiring and the session only: the EngineBridge does the engine work, plots/ draws,
controls.py holds the widgets, model_chooser.py answers the model controls, audio_choice.py the
source and devices, readout_strip.py and status_line.py show the numbers, prefs.py keeps the settings.
Every failure ends up as a banner above the plots (and a line in the status bar and the log); the
window stays usable whatever happened.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QMainWindow,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.audio.engine import Engine, EngineConfig
from app.audio.metrics import FrameMetrics
from app.config import APP_NAME
from app.ui.audio_choice import AudioChoice
from app.ui.compat import guard_singleton_refcounts
from app.ui.controls import CLASSIC_KEYS, ControlsPanel
from app.ui.engine_bridge import EngineBridge
from app.ui.engine_events import show_event
from app.ui.latency_preset import LatencyPreset
from app.ui.listening import ListeningControl
from app.ui.model_chooser import ModelChooser
from app.ui.plots import PlotsPanel
from app.ui.prefs import Prefs
from app.ui.readout_strip import ReadoutStrip, real_time_factor
from app.ui.recording import RecordingControl
from app.ui.status_line import StatusLine
from app.ui.welcome import FIRST_DOWNLOAD, WelcomePage
from app.ui.widgets import Banner

log = logging.getLogger(__name__)

TEXT_REFRESH_MS = 250  # readouts and status bar: ~4 Hz, easy to read
INFO_BANNER_MS = 10_000  # a good-news banner ("the delay is back") goes by itself
RTF_CHUNKS = 12  # ~1 s of 80 ms chunks


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None, engine_factory: Callable[[], Engine] = Engine,
                 model_override: Path | None = None, device_lister: Callable | None = None,
                 interactive: bool = True):
        guard_singleton_refcounts()  # before any signal is emitted from Python
        super().__init__()
        self.prefs = Prefs(settings or QSettings())
        self.interactive = interactive  # False in tests: never open a modal dialog
        self.setWindowTitle(APP_NAME)
        self.bridge = EngineBridge(engine_factory, self)
        self.controls = ControlsPanel()
        self.plots = PlotsPanel(self.bridge.audio_tap)
        self.banner = Banner()
        self.audio = AudioChoice(self, self.controls, self.prefs, self.bridge, self.banner, device_lister,
                                 on_changed=self.update_enabled, interactive=interactive)
        self._last: FrameMetrics | None = None
        self._recent: deque[FrameMetrics] = deque(maxlen=RTF_CHUNKS)
        # A load or a start the window asked for and waits on: an error meanwhile is about it, and
        # its success resolves the problems of that topic shown before (a failed load or download).
        self._awaiting: str | None = None
        self._awaiting_failed = False
        self.models = ModelChooser(self)
        self.recording = RecordingControl(self)
        self.listening = ListeningControl(self)
        self.preset = LatencyPreset(self)
        self._build()
        self._connect()
        self._shortcuts()
        self._restore(model_override)
        self.text_timer = QTimer(self)
        self.text_timer.setInterval(TEXT_REFRESH_MS)
        self.text_timer.timeout.connect(self.refresh_text)
        self.text_timer.start()
        self.update_enabled()

    # -- layout ----------------------------------------------------------------------------------

    def _build(self) -> None:
        self.resize(1440, 900)
        self.setMinimumSize(1000, 680)
        central = QWidget()
        outer = QHBoxLayout(central)
        outer.setContentsMargins(10, 10, 10, 6)
        outer.setSpacing(10)

        scroll = QScrollArea()
        scroll.setWidget(self.controls)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.controls.minimumWidth() + 12)
        scroll.setMaximumWidth(self.controls.maximumWidth() + 12)
        outer.addWidget(scroll)

        right = QVBoxLayout()
        right.setSpacing(8)
        right.addWidget(self.banner)
        strip = QHBoxLayout()
        strip.setSpacing(8)
        self.strip = ReadoutStrip(strip)
        self.readouts, self.budget_bar = self.strip.readouts, self.strip.budget_bar
        self.input_meter, self.output_meter = self.strip.input_meter, self.strip.output_meter
        right.addLayout(strip)
        right.addWidget(self.budget_bar)

        welcome_page = WelcomePage()
        self.welcome, self.welcome_download = welcome_page.label, welcome_page.download_button
        self.welcome_download.clicked.connect(lambda: self.download_variant(FIRST_DOWNLOAD))
        self.pages = QStackedWidget()
        self.pages.addWidget(self.plots)
        self.pages.addWidget(welcome_page)
        right.addWidget(self.pages, 1)
        outer.addLayout(right, 1)
        self.setCentralWidget(central)

        self.status_line = StatusLine(self.statusBar())
        self.status = self.status_line.labels

        menu = self.menuBar().addMenu("&File")
        self.open_action = QAction("Open model folder…", self, shortcut=QKeySequence(QKeySequence.StandardKey.Open))
        self.open_action.triggered.connect(self.models.open_model_folder_dialog)
        menu.addAction(self.open_action)
        menu.addMenu(self.controls.int8_menu)
        quit_action = QAction("Quit", self, shortcut=QKeySequence(QKeySequence.StandardKey.Quit))
        quit_action.triggered.connect(self.close)
        menu.addAction(quit_action)

    def _connect(self) -> None:
        c = self.controls
        c.start_button.clicked.connect(self.toggle_running)
        c.chunk_combo.currentIndexChanged.connect(lambda: self.prefs.set_chunk_ms(c.chunk_combo.currentData()))
        b = self.bridge
        b.sigFrames.connect(self._on_frames)
        b.sigEvent.connect(lambda event: show_event(self, event))
        b.sigBusy.connect(self._on_busy)
        b.sigRunning.connect(self._on_running)
        b.sigTick.connect(self._on_tick)

    def _shortcuts(self) -> None:  # the monitor's and the replay's: listening.py
        for keys, slot in (("R", self.controls.record_button.toggle), ("F5", self.toggle_running),
                           ("Ctrl+Return", self.toggle_running)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.activated.connect(slot)

    # -- settings --------------------------------------------------------------------------------

    def _restore(self, model_override: Path | None) -> None:
        prefs, c = self.prefs, self.controls
        geometry = prefs.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        c.select_data(c.chunk_combo, prefs.chunk_ms())
        self.preset.restore()
        c.select_data(c.kv_combo, prefs.kv_window() or 0)  # 0 = none, as in the combo
        self.audio.restore_source()
        c.classic_check.blockSignals(True)
        c.classic_check.setChecked(prefs.classic_paths())
        c.classic_check.blockSignals(False)
        monitor = prefs.monitor()
        self.set_monitor("codec" if monitor in CLASSIC_KEYS and not prefs.classic_paths() else monitor)
        self.recording.show_folder()
        self.refresh_devices()
        if model_override is not None:
            self.add_model_folder(Path(model_override), load=False)
        self.models.populate(select=str(Path(model_override).resolve()) if model_override else
                             prefs.selected_model())
        self.models.load_selected()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.prefs.set_geometry(self.saveGeometry())
        self.text_timer.stop()
        self.bridge.shutdown()
        self.prefs.sync()
        super().closeEvent(event)

    # -- models, audio, recording (model_chooser.py, audio_choice.py, recording.py) ---------------

    def model_folders(self) -> list[str]:
        return self.models.list.folders()

    def add_model_folder(self, folder: Path, load: bool = True) -> bool:
        return self.models.add_model_folder(folder, load)

    def selected_model(self) -> Path | None:
        return self.models.list.selected()

    def download_variant(self, name: str) -> None:
        self.models.download_variant(name)

    @property
    def download_fn(self) -> Callable | None:
        """What downloads a variant (tests point it at a fake hub); None: app.models.download_variant."""
        return self.models.download_fn

    @download_fn.setter
    def download_fn(self, download: Callable | None) -> None:
        self.models.download_fn = download

    @property
    def _download(self):
        return self.models.download  # the DownloadDialog under way, if any

    def make_int8_copy(self, parts: str) -> bool:
        return self.models.make_int8_copy(parts)

    def refresh_devices(self) -> None:
        self.audio.refresh_devices()

    def set_input_file(self, path: Path) -> None:
        self.audio.set_input_file(path)

    def set_source(self, source: str) -> None:
        """'mic', 'file' (needs set_input_file first) or 'tone'."""
        self.audio.set_source(source)

    @property
    def _input_file(self) -> Path | None:
        return self.audio.input_file

    @_input_file.setter
    def _input_file(self, path: Path | None) -> None:
        self.audio.input_file = path

    def set_record_folder(self, folder: Path) -> None:
        self.recording.set_folder(folder)

    @property
    def _recording_paths(self) -> list[str] | None:
        return self.recording.paths

    # -- session ---------------------------------------------------------------------------------

    def current_config(self, record: bool | None = None) -> EngineConfig | None:
        c = self.controls
        model = self.bridge.codec_model or self.selected_model()
        if model is None:
            return None
        record = c.record_button.isChecked() if record is None else record
        input_device, output_device = self.audio.chosen_indices()
        codec = self.bridge.codec
        return EngineConfig(
            model=model,
            codebooks=c.codebooks_combo.currentData() or (codec.num_codebooks if codec else None),
            chunk_ms=int(c.chunk_combo.currentData()),
            kv_window=c.kv_window(),
            source=c.source_combo.currentData(),
            input_file=self.audio.input_file,
            input_device=input_device,
            output_device=output_device,
            monitor=self.monitor(),
            record_dir=self.recording.folder() if record else None,
            classic_paths=c.classic_check.isChecked(),
            replay_ready=True,  # the replay key is one press away
            device_latency_s=self.preset.device_latency_s(),
        )

    def toggle_running(self) -> None:
        if self.bridge.running:  # Stop works during a switch too: a late swap is dropped
            self.stop()
        elif not self.bridge.busy:
            self.start()

    def start(self) -> bool:
        config = self.current_config()
        if config is None:
            self.show_message("error", "no model: open a model folder first (see the instructions)", topic="model")
            return False
        if config.source == "file" and config.input_file is None:
            self.show_message("error", "choose an audio file first (Source: WAV file…)", topic="source")
            return False
        self.banner.hide()  # a new attempt: what failed before is no longer the news
        self._prepare_plots(config)
        if not self.bridge.start(config):
            return False
        self.await_result("start")
        return True

    def stop(self) -> None:
        self.bridge.stop()

    def _prepare_plots(self, config: EngineConfig) -> None:
        self._last = None
        self._recent.clear()
        self.plots.reset()
        self.plots.latency.set_budget(config.chunk_ms)
        self.plots.kv.set_window(config.kv_window)
        self.strip.reset_meters()

    def monitor(self) -> str:
        return self.listening.monitor()

    def set_monitor(self, mode: str) -> None:
        self.listening.set_monitor(mode)

    def toggle_ab(self) -> None:
        self.listening.toggle_ab()

    def toggle_replay(self) -> None:
        self.listening.toggle_replay()

    # -- bridge signals --------------------------------------------------------------------------

    def _on_frames(self, frames: list) -> None:
        for m in frames:
            self.plots.add(m)
            self._recent.append(m)
        self._last = frames[-1]

    def _on_tick(self) -> None:
        self.status_line.tick()
        if self.pages.currentIndex() == 0:
            self.plots.redraw()
        if self._last is not None and self.bridge.running:
            self.strip.set_levels(self._last)

    def await_result(self, topic: str) -> None:
        """The window now waits on a load or a start about `topic` (see show_message)."""
        self._awaiting, self._awaiting_failed = topic, False

    def _on_busy(self, busy: bool, text: str) -> None:
        if not busy and self._awaiting is not None:
            # A model now loaded and no error meanwhile: an earlier failed load, failed download
            # (e.g. no network) or "no model" is resolved.
            if not self._awaiting_failed and self.bridge.codec is not None:
                self.banner.clear(self._awaiting, "model")
            self._awaiting = None
        self.status_line.set_busy(busy, text)
        if not busy and self.bridge.codec is not None:
            self.models.on_codec(self.bridge.codec)  # a failed swap: show what is still running
        self.update_enabled()

    def _on_running(self, running: bool) -> None:
        if not running:
            self.strip.reset_meters()
        self.recording.show_button(running)
        self.update_enabled()
        self.refresh_text()

    def show_message(self, kind: str, text: str, topic: str | None = None, status: str | None = None,
                     status_tip: str = "") -> None:
        """A banner (info ones go by themselves) and a line in the status bar.

        `topic` names the problem a message is about, so that its resolution hides it (see
        Banner.clear); an error while the window waits on a model load is about "model".
        `status`: a short form for the status bar, whose room is one line next to the readouts
        (default: the first line of `text`), with `status_tip` as its tooltip.
        """
        log.log(logging.ERROR if kind == "error" else logging.INFO, "%s: %s", kind, text)
        if topic is None and kind == "error" and self._awaiting is not None:
            topic, self._awaiting_failed = self._awaiting, True
        self.banner.show_message(kind, text, topic)
        if kind == "info":  # good news needs no dismissing: it goes like the status bar line
            self.banner.hide_later(INFO_BANNER_MS)
        self.status_line.show(status or text.splitlines()[0][:160], status_tip, 8000)

    def update_enabled(self) -> None:
        has_model = self.selected_model() is not None or self.bridge.codec_model is not None
        self.controls.update_enabled(self.bridge.running, self.bridge.busy, has_model, self.models.int8_copy_blocker())

    def refresh_text(self) -> None:
        """Readouts and status bar, ~4 Hz."""
        codec, model, running = self.bridge.codec, self.bridge.codec_model, self.bridge.running
        bitrate = codec.bitrate_bps if codec is not None else None
        if self.monitor() in CLASSIC_KEYS:  # what is heard: that codec's bitrate, measured
            bitrate = self.bridge.classic_bps(self.monitor())
        recent = list(self._recent)
        streaming = bool(recent) and running
        rtf = real_time_factor(recent) if streaming else None
        hearing = "replay" if self.bridge.replaying else self.monitor()
        self.strip.refresh(bitrate, hearing, recent, running, self.controls.kv_window(), rtf,
                           self.listening.quality())
        self.listening.refresh()
        self.status_line.refresh(f"{self.models.list.name(model)} · {codec.num_codebooks} cb" if model and codec else
                                 "no model", bitrate, recent[-1] if streaming else None, rtf)
