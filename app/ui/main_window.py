"""The main window: controls on the left, readouts and plots on the right (GUI thread).

Wiring only: the EngineBridge does the engine work, plots.py draws, controls.py holds the widgets
(widgets.py the banner, readouts and meters; welcome.py the first-run page).
Every failure ends up as a banner above the plots (and a line in the status bar and the log); the
window stays usable whatever happened.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.audio.engine import Engine, EngineConfig
from app.audio.metrics import EngineEvent, FrameMetrics
from app.config import APP_NAME
from app.models import VARIANTS, find_cached, is_model_folder, local_int8_models
from app.ui import theme
from app.ui.budget_bar import LatencyBudgetBar
from app.ui.compat import guard_singleton_refcounts
from app.ui.controls import INT8_CHOICES, ControlsPanel, format_bps, int8_label, int8_source_name, int8_tooltip
from app.ui.engine_bridge import EngineBridge
from app.ui.plots import PlotsPanel
from app.ui.prefs import Prefs
from app.ui.welcome import FIRST_DOWNLOAD, WelcomePage
from app.ui.widgets import Banner, LevelMeter, Readout

log = logging.getLogger(__name__)

TEXT_REFRESH_MS = 250  # readouts and status bar: ~4 Hz, easy to read
INFO_BANNER_MS = 10_000  # a good-news banner ("the delay is back") goes by itself
RECENT_FOLDERS_MAX = 10
QUIET_STOP_REASONS = ("stopped", "restarting", "window closed")
# Status labels a status bar message may cover when it needs their room, first to go first: the
# bitrate and RTF are also on the readout cards above, the frame rate matters least.
STATUS_YIELDS = ("bitrate", "rtf", "fps", "dropped")

DOWNLOAD_PREFIX = "download:"  # combo data of a published variant that is not in the cache yet


def default_record_folder() -> Path:
    import platformdirs

    for getter in (platformdirs.user_music_dir, platformdirs.user_documents_dir):
        try:
            folder = Path(getter())
        except Exception:  # noqa: BLE001
            continue
        if folder.is_dir():
            return folder / APP_NAME
    return Path.home() / APP_NAME


class MainWindow(QMainWindow):
    _devices_listed = Signal(object, object)  # (devices, problem) from a background listing

    def __init__(self, settings: QSettings | None = None, engine_factory: Callable[[], Engine] = Engine,
                 model_override: Path | None = None, device_lister: Callable | None = None,
                 interactive: bool = True):
        guard_singleton_refcounts()  # before any signal is emitted from Python
        super().__init__()
        self.prefs = Prefs(settings or QSettings())
        self.interactive = interactive  # False in tests: never open a modal dialog
        if device_lister is None:
            from app.audio.devices import list_devices, list_devices_fresh
        # While streaming, PortAudio cannot be re-initialised: a child process lists what is new.
        self._list_devices = device_lister or list_devices
        self._list_devices_fresh = device_lister or list_devices_fresh
        self._devices_listed.connect(self._fill_devices)
        self.setWindowTitle(APP_NAME)
        self.bridge = EngineBridge(engine_factory, self)
        self.controls = ControlsPanel()
        self.plots = PlotsPanel(self.bridge.audio_tap)
        self.banner = Banner()
        self._input_file: Path | None = None
        self._last: FrameMetrics | None = None
        self._recent: deque[FrameMetrics] = deque(maxlen=12)  # ~1 s of 80 ms chunks for RTF
        self._tick_times: deque[float] = deque(maxlen=64)
        self._recording_paths: list[str] | None = None
        self._busy = False
        # A load or a start the window asked for and waits on: an error meanwhile is about it, and
        # its success resolves the problems of that topic shown before (a failed load or download).
        self._awaiting: str | None = None
        self._awaiting_failed = False
        self._status_tip = ""  # tooltip of the status bar's current message
        self._download = None  # the DownloadDialog under way, if any
        self.download_fn = None  # tests point this at a fake hub; None = app.models.download_variant
        self._int8: dict[str, object] = {}  # listed int8 copies: folder -> Int8Quality (read from disk)
        self._build()
        self._connect()
        self._shortcuts()
        self._restore(model_override)
        self.text_timer = QTimer(self)
        self.text_timer.setInterval(TEXT_REFRESH_MS)
        self.text_timer.timeout.connect(self._refresh_text)
        self.text_timer.start()
        self._update_enabled()

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
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.controls.minimumWidth() + 12)
        scroll.setMaximumWidth(self.controls.maximumWidth() + 12)
        outer.addWidget(scroll)

        right = QVBoxLayout()
        right.setSpacing(8)
        right.addWidget(self.banner)
        strip = QHBoxLayout()
        strip.setSpacing(8)
        self.readouts = {
            "bitrate": Readout("Bitrate", "Code bits sent per second: codebooks x 11 bits x 12.5 frames/s"),
            "rtf": Readout("RTF", "Compute time / audio time over the last second (below 1 keeps up)"),
            "latency": Readout("Latency", "End-to-end estimate: device latencies + buffering + compute"),
            "kv": Readout("KV cache", "Encoder KV cache length / window (tokens, 25 per second)"),
            "monitor": Readout("Hearing", "What the speaker plays: codec, bypass (input) or residual"),
        }
        for card in self.readouts.values():
            card.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
            strip.addWidget(card)
        meters = QVBoxLayout()
        meters.setSpacing(2)
        self.input_meter = LevelMeter("In", theme.INPUT)
        self.output_meter = LevelMeter("Out", theme.OUTPUT)
        meters.addWidget(self.input_meter)
        meters.addWidget(self.output_meter)
        meter_box = QFrame()
        meter_box.setObjectName("meters")
        meter_box.setStyleSheet(f"#meters {{ background: {theme.PANEL}; border-radius: 4px; }}")
        meter_box.setLayout(meters)
        meters.setContentsMargins(6, 4, 6, 4)
        meter_box.setMinimumWidth(260)
        strip.addWidget(meter_box, 2)
        right.addLayout(strip)
        self.budget_bar = LatencyBudgetBar()
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

        bar = self.statusBar()
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)  # indeterminate: a spinner
        self.busy_bar.setMaximumWidth(120)
        self.busy_bar.setMaximumHeight(14)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.hide()
        self.busy_label = QLabel()
        bar.addWidget(self.busy_bar)
        bar.addWidget(self.busy_label)
        self.status = {name: QLabel() for name in ("model", "bitrate", "rtf", "xruns", "dropped", "fps")}
        self.status["xruns"].setToolTip(
            "Dropouts you may hear: the speaker queue running dry (underruns) and the audio device "
            "reporting that its callbacks came late (device xruns); overruns: input the app had no room for")
        self.status["dropped"].setToolTip(
            "Audio skipped to win back delay after a disturbance: whole input frames dropped and "
            "crossfaded splices of the output")
        # Each label has its own tooltip, so the bar's (the current message's) shows only over the message.
        self.status["model"].setToolTip("The model streaming (or loaded) and the codebooks it decodes with")
        self.status["bitrate"].setToolTip("Code bits sent per second")
        self.status["rtf"].setToolTip("Compute time / audio time over the last second")
        self.status["fps"].setToolTip("How often the plots are redrawn")
        for label in self.status.values():
            label.setStyleSheet(f"color: {theme.MUTED}; padding: 0 6px;")
            bar.addPermanentWidget(label)
        bar.messageChanged.connect(self._fit_status_message)

        menu = self.menuBar().addMenu("&File")
        self.open_action = QAction("Open model folder…", self, shortcut=QKeySequence.Open)
        self.open_action.triggered.connect(self.open_model_folder_dialog)
        menu.addAction(self.open_action)
        menu.addMenu(self.controls.int8_menu)
        quit_action = QAction("Quit", self, shortcut=QKeySequence.Quit)
        quit_action.triggered.connect(self.close)
        menu.addAction(quit_action)

    def _connect(self) -> None:
        c = self.controls
        c.start_button.clicked.connect(self.toggle_running)
        c.model_combo.currentIndexChanged.connect(self._on_model_chosen)
        c.open_model_button.clicked.connect(self.open_model_folder_dialog)
        for parts, action in c.int8_actions.items():
            action.triggered.connect(lambda _=False, p=parts: self.make_int8_copy(p))
        c.codebooks_combo.currentIndexChanged.connect(self._on_codebooks_chosen)
        c.kv_combo.currentIndexChanged.connect(self._on_kv_chosen)
        c.source_combo.currentIndexChanged.connect(self._on_source_chosen)
        c.refresh_devices_button.clicked.connect(self.refresh_devices)
        c.input_combo.currentIndexChanged.connect(lambda: self._device_chosen("input"))
        c.output_combo.currentIndexChanged.connect(lambda: self._device_chosen("output"))
        c.chunk_combo.currentIndexChanged.connect(
            lambda: self.prefs.set_chunk_ms(c.chunk_combo.currentData()))
        for mode, button in c.monitor_buttons.items():
            button.clicked.connect(lambda _=False, m=mode: self.set_monitor(m))
        c.record_button.toggled.connect(self._on_record_toggled)
        c.record_folder_button.clicked.connect(self.choose_record_folder_dialog)
        b = self.bridge
        b.sigFrames.connect(self._on_frames)
        b.sigEvent.connect(self._on_event)
        b.sigBusy.connect(self._on_busy)
        b.sigRunning.connect(self._on_running)
        b.sigCodec.connect(self._on_codec)
        b.sigTick.connect(self._on_tick)
        b.sigInt8.connect(self._on_int8)

    def _shortcuts(self) -> None:
        for keys, slot in (("1", lambda: self.set_monitor("codec")), ("2", lambda: self.set_monitor("bypass")),
                           ("3", lambda: self.set_monitor("residual")), ("Space", self.toggle_ab),
                           ("R", self.controls.record_button.toggle), ("F5", self.toggle_running),
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
        c.select_data(c.kv_combo, prefs.kv_window() or 0)  # 0 = none, as in the combo
        c.select_data(c.source_combo, prefs.source())
        saved_file = prefs.input_file()
        if saved_file is not None and saved_file.is_file():
            self._input_file = saved_file
        if c.source_combo.currentData() == "file" and self._input_file is None:
            c.select_data(c.source_combo, "mic")
        self._show_file()
        self.set_monitor(prefs.monitor())
        self._show_record_folder()
        self.refresh_devices()
        if model_override is not None:
            self.add_model_folder(Path(model_override), load=False)
        self._populate_models(select=str(Path(model_override).resolve()) if model_override else
                              prefs.selected_model())
        self._load_selected()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.prefs.set_geometry(self.saveGeometry())
        self.text_timer.stop()
        self.bridge.shutdown()
        self.prefs.sync()
        super().closeEvent(event)

    def record_folder(self) -> Path:
        return self.prefs.record_folder() or default_record_folder()

    def set_record_folder(self, folder: Path) -> None:
        self.prefs.set_record_folder(folder)
        self._show_record_folder()

    def _show_record_folder(self) -> None:
        folder = self.record_folder()
        armed = self.controls.record_button.isChecked() and not self.bridge.running
        text = f"{'Will record' if armed else 'Recordings go'} to {folder}"
        if self._recording_paths:
            text = "Recording " + " and ".join(Path(p).name for p in self._recording_paths) + f" in {folder}"
        self.controls.set_note(self.controls.record_note, text)

    # -- models ----------------------------------------------------------------------------------

    def model_folders(self) -> list[str]:
        return self.prefs.model_folders()

    def add_model_folder(self, folder: Path, load: bool = True) -> bool:
        """Adds a user model folder (remembered), selects it and loads it; False if it is not one."""
        folder = Path(folder).expanduser().resolve()
        if not is_model_folder(folder):
            self.show_message("error", f"{folder} is not a Mimi model folder: it needs encoder_model.onnx, "
                                       "decoder_model.onnx and state_spec.txt", topic="model")
            return False
        folders = [f for f in self.model_folders() if f != str(folder)]
        self.prefs.set_model_folders([str(folder), *folders][:RECENT_FOLDERS_MAX])
        if load:
            self._populate_models(select=str(folder))
            self._load_selected()
        return True

    def forget_model_folder(self, folder: Path | str) -> None:
        self.prefs.set_model_folders([f for f in self.model_folders() if f != str(folder)])

    def _populate_models(self, select: str = "") -> None:
        combo = self.controls.model_combo
        combo.blockSignals(True)
        combo.clear()
        model = combo.model()
        for v in VARIANTS:
            path = find_cached(v)
            text = v.label + ("" if path else "  · download")
            combo.addItem(text, str(path) if path else DOWNLOAD_PREFIX + v.name)
            if path is None:
                model.item(combo.count() - 1).setToolTip(f"Not downloaded yet: choose it to download "
                                                         f"~{v.size_mb} MB from the Hugging Face hub")
        try:
            int8 = local_int8_models()
        except Exception:  # noqa: BLE001 - an unreadable data dir lists no int8 copies, never a crash
            log.exception("listing the int8 copies failed")
            int8 = []
        self._int8 = {str(folder): quality for folder, quality in int8}
        for folder in self.model_folders():
            if folder in self._int8:  # listed below, with its numbers
                continue
            combo.addItem(f"{Path(folder).name}  — {folder}", folder)
            combo.setItemData(combo.count() - 1, folder, Qt.ToolTipRole)
        # Local int8 copies: each labelled with its SNR against the float model and both speeds.
        for folder, quality in self._int8.items():
            combo.addItem(int8_label(quality), folder)
            combo.setItemData(combo.count() - 1, int8_tooltip(quality, folder), Qt.ToolTipRole)
        def usable(i: int) -> bool:
            return bool(combo.itemData(i)) and not str(combo.itemData(i)).startswith(DOWNLOAD_PREFIX)

        index = combo.findData(select) if select else -1
        if index < 0 or not usable(index):
            index = next((i for i in range(combo.count()) if usable(i)), -1)
        combo.setCurrentIndex(index)
        combo.blockSignals(False)
        has_model = any(usable(i) for i in range(combo.count()))
        self.pages.setCurrentIndex(0 if has_model else 1)

    def selected_model(self) -> Path | None:
        data = self.controls.model_combo.currentData()
        return Path(data) if data and not str(data).startswith(DOWNLOAD_PREFIX) else None

    def _wanted_codebooks(self, model: Path) -> int | None:
        wanted = self.controls.codebooks_combo.currentData() or self.prefs.codebooks()
        if wanted in (None, ""):
            return None
        available = self.bridge.model_codebooks(model)
        if available is None:
            return None
        return int(wanted) if int(wanted) <= available else None

    def _load_selected(self) -> None:
        model = self.selected_model()
        if model is None:
            return
        # A published variant from the cache loads only if every file matches the hub's checksums:
        # the bridge hashes them on its loader thread first; a failure comes back as an error event.
        self._load(model)

    def _load(self, model: Path, verify: bool = True) -> None:
        if self.bridge.load_model(model, codebooks=self._wanted_codebooks(model),
                                  kv_window=self.controls.kv_window(), verify=verify, name=self.model_name(model)):
            self._await("model")

    def model_name(self, model: Path | str | None) -> str:
        """What the window calls a model: its folder's name, or "<source> int8" for an int8 copy."""
        if model is None:
            return ""
        quality = self._int8.get(str(model))
        if quality is None:
            return Path(model).name
        return f"{int8_source_name(quality)} {quality.kind}"

    def int8_copy_blocker(self) -> str | None:
        """Why "Make int8 copy" is unavailable now, or None if it is available."""
        model = self.bridge.codec_model
        if model is None:
            return "Load a model first: the int8 copy is made from the loaded model"
        if str(model) in self._int8:
            return "The loaded model is already an int8 copy: load its float model to make another"
        if self.bridge.running:
            # The measurement runs both models flat out for ~20 s: on this kind of machine the live
            # audio would glitch, and the speeds it records for good would be skewed by the stream.
            return ("Stop streaming first: measuring the copy runs both models flat out for ~20 s, which "
                    "would glitch the audio and skew the speeds it records")
        if self.bridge.busy:
            return "Busy: wait for the current job to finish"
        return None

    def make_int8_copy(self, parts: str) -> bool:
        """Makes (once) the int8 copy of the loaded model, on the loader thread, and lists it.

        `parts`: "encoder+decoder" or "decoder". The copy is not loaded: the user picks it from the
        Variant list, where its SNR against the float model stands next to its speed.
        """
        blocker = self.int8_copy_blocker()
        if blocker is not None:
            self.show_message("warning", blocker)
            return False
        model = self.bridge.codec_model
        if not self.bridge.make_int8(model, parts, name=self.model_name(model)):
            return False
        self.banner.hide()
        return True

    def _on_int8(self, folder: Path, quality) -> None:
        known = str(folder) in self._int8
        self._populate_models(select=str(self.controls.model_combo.currentData() or ""))
        if self.controls.model_combo.findData(str(folder)) < 0:  # its source moved meanwhile
            self.show_message("warning", f"the int8 copy was made in {folder} but its source model is gone")
            return
        q = quality
        what = next(text for parts, text, _ in INT8_CHOICES if parts == q.parts).split(" (")[0].lower()
        self.show_message("info", (
            f"{'Already made' if known else 'Made'}: int8 copy of {int8_source_name(q)} ({what}). "
            f"Against the float model, on this machine: SNR {q.snr_end_to_end_db:.1f} dB end to end, "
            f"{q.snr_same_codes_db:.1f} dB on the same codes, {q.codes_agreement:.1%} identical codes; "
            f"{q.ms_per_frame:.1f} vs {q.original_ms_per_frame:.1f} ms/frame ({q.speedup:.2f}x). "
            f"Pick \"{int8_label(q)}\" in the Variant list to listen to it."))
        self._update_enabled()

    def download_variant(self, name: str) -> None:
        """Downloads a published variant with a progress dialog, then loads it."""
        from app.ui.download_dialog import DownloadDialog

        if self._download is not None:
            return
        self._download = DownloadDialog(name, self, **({"download": self.download_fn} if self.download_fn else {}))
        self._download.sigDone.connect(self._on_downloaded)
        self._download.start()

    def _on_downloaded(self, folder: Path | None, error: str) -> None:
        name = self._download.name
        self._download.deleteLater()
        self._download = None
        if folder is None:
            self.show_message("error", error, topic="model")  # e.g. no network: any model loaded resolves it
            self._sync_model_combo()
            return
        self.show_message("info", f"Downloaded {name} (sizes and sha256 match the hub) to {folder}")
        self._populate_models(select=str(folder))
        if self.controls.model_combo.findData(str(folder)) < 0:  # a cache the variant list does not read
            self.add_model_folder(Path(folder))
        else:
            self._load(Path(folder), verify=False)  # download_variant has just checked every file

    def _on_model_chosen(self) -> None:
        data = str(self.controls.model_combo.currentData() or "")
        if data.startswith(DOWNLOAD_PREFIX):
            self.download_variant(data[len(DOWNLOAD_PREFIX):])
            return
        model = self.selected_model()
        if model is None or self.bridge.busy:
            self._sync_model_combo()
            return
        if self.bridge.codec_model is not None and model == self.bridge.codec_model:
            return
        self.prefs.set_selected_model(model)
        self._load_selected()

    def _sync_model_combo(self) -> None:
        model = self.bridge.codec_model
        if model is not None:
            self.controls.select_data(self.controls.model_combo, str(model))

    def open_model_folder_dialog(self) -> None:
        if not self.interactive:
            return
        start = self.model_folders()[0] if self.model_folders() else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open a Mimi model folder", start)
        if folder:
            self.add_model_folder(Path(folder))

    def _on_codebooks_chosen(self) -> None:
        k = self.controls.codebooks_combo.currentData()
        if k is None:
            return
        self.prefs.set_codebooks(int(k))
        if self.bridge.codec is not None and k != self.bridge.codec.num_codebooks:
            if not self.bridge.set_codebooks(int(k)):
                self._on_codec(self.bridge.codec)  # busy: put the combo back

    def _on_kv_chosen(self) -> None:
        window = self.controls.kv_window()
        self.prefs.set_kv_window(window)
        self.plots.kv.set_window(window)
        self.bridge.set_kv_window(window)

    def _on_codec(self, codec) -> None:
        c = self.controls
        if codec is None:
            c.set_codebook_choices((), 0, None)
        else:
            size = codec.contract.codebook_size
            c.set_codebook_choices(tuple(codec.codebook_choices), codec.num_codebooks, size)
            self.plots.codebooks.set_model(codec.max_codebooks, size)
            notes = [n for n in (codec.codebook_note, codec.kv_warning) if n]
            quality = self._int8.get(str(self.bridge.codec_model))
            int8 = (f"{self.model_name(self.bridge.codec_model)}: SNR {quality.snr_end_to_end_db:.1f} dB vs float, "
                    f"{quality.ms_per_frame:.1f} vs {quality.original_ms_per_frame:.1f} ms/frame"
                    if quality is not None else None)
            text = "; ".join(n for n in (int8, *notes) if n)
            c.set_note(c.model_note, text or None, theme.DECODE if notes else None)
        self._sync_model_combo()
        self._refresh_text()
        self._update_enabled()

    # -- devices and source ----------------------------------------------------------------------

    def refresh_devices(self) -> None:
        """Lists the audio devices again; while streaming, in the background (a child process)."""
        if not self.bridge.running:
            self._fill_devices(*self._query_devices(self._list_devices))
            return
        self.controls.refresh_devices_button.setEnabled(False)

        def listing() -> None:
            found = self._query_devices(self._list_devices_fresh)
            try:
                self._devices_listed.emit(*found)  # queued to the GUI thread
            except RuntimeError:  # the window closed meanwhile
                pass

        threading.Thread(target=listing, name="list-devices", daemon=True).start()

    @staticmethod
    def _query_devices(lister: Callable) -> tuple[list, str | None]:
        from app.audio.devices import DeviceError

        try:
            return list(lister()), None
        except DeviceError as exc:
            return [], str(exc)
        except Exception as exc:  # noqa: BLE001 - a device list must never take the window down
            log.exception("listing devices failed")
            return [], f"cannot list audio devices ({exc})"

    def _fill_devices(self, devices: list, problem: str | None) -> None:
        c = self.controls
        for kind, combo in (("input", c.input_combo), ("output", c.output_combo)):
            saved = self.prefs.device(kind)
            combo.blockSignals(True)
            combo.clear()
            combo.addItem("System default", "")
            for d in devices:
                if d.channels(kind) > 0:
                    combo.addItem(f"{d.name} ({d.hostapi})", (d.index, f"{d.name}\t{d.hostapi}"))
                    combo.setItemData(combo.count() - 1, f"#{d.index} {d.name} — {d.hostapi}", Qt.ToolTipRole)
            index = next((i for i in range(1, combo.count()) if combo.itemData(i)[1] == saved), 0)
            combo.setCurrentIndex(index)
            combo.blockSignals(False)
        if problem:
            c.set_note(c.audio_note, f"Audio devices unavailable: {problem}", theme.DECODE)
        elif not devices:
            c.set_note(c.audio_note, "No audio devices found: the system default will be tried.", theme.DECODE)
        else:
            c.set_note(c.audio_note, None)
        self._update_enabled()

    def _device_chosen(self, kind: str) -> None:
        self._save_device(kind)
        if self.bridge.running:  # the engine moves the stream between two chunks
            c = self.controls
            self.bridge.set_devices(self._device_name(c.input_combo), self._device_name(c.output_combo))

    @staticmethod
    def _device_name(combo: QComboBox) -> str | None:
        """A device by its exact name: indices change when PortAudio is initialised again."""
        data = combo.currentData()
        return data[1].split("\t")[0] if data else None

    def _save_device(self, kind: str) -> None:
        combo = self.controls.input_combo if kind == "input" else self.controls.output_combo
        data = combo.currentData()
        self.prefs.set_device(kind, data[1] if data else "")

    def set_input_file(self, path: Path) -> None:
        self._input_file = Path(path)
        self.prefs.set_input_file(path)
        self.controls.select_data(self.controls.source_combo, "file")
        self.prefs.set_source("file")
        self.banner.clear("source")
        self._show_file()
        self._update_enabled()

    def set_source(self, source: str) -> None:
        """'mic', 'file' (needs set_input_file first) or 'tone'."""
        self.controls.select_data(self.controls.source_combo, source)
        self._on_source_chosen()

    def _on_source_chosen(self) -> None:
        source = self.controls.source_combo.currentData()
        if source == "file" and self._input_file is None:
            path = None
            if self.interactive:
                path, _ = QFileDialog.getOpenFileName(self, "Play an audio file in a loop", str(Path.home()),
                                                      "Audio (*.wav *.flac *.ogg *.mp3 *.aiff);;All files (*)")
            if not path:
                self.controls.select_data(self.controls.source_combo, self.prefs.source())
                self._show_file()
                return
            self._input_file = Path(path)
            self.prefs.set_input_file(path)
        self.prefs.set_source(source)
        self.banner.clear("source")
        self._show_file()
        self._update_enabled()

    def _show_file(self) -> None:
        c = self.controls
        is_file = c.source_combo.currentData() == "file" and self._input_file is not None
        c.set_note(c.file_label, f"{self._input_file.name} (looped)" if is_file else None)

    # -- session ---------------------------------------------------------------------------------

    def current_config(self, record: bool | None = None) -> EngineConfig | None:
        c = self.controls
        model = self.bridge.codec_model or self.selected_model()
        if model is None:
            return None
        record = c.record_button.isChecked() if record is None else record
        input_device = c.input_combo.currentData()
        output_device = c.output_combo.currentData()
        codec = self.bridge.codec
        return EngineConfig(
            model=model,
            codebooks=c.codebooks_combo.currentData() or (codec.num_codebooks if codec else None),
            chunk_ms=int(c.chunk_combo.currentData()),
            kv_window=c.kv_window(),
            source=c.source_combo.currentData(),
            input_file=self._input_file,
            input_device=input_device[0] if input_device else None,
            output_device=output_device[0] if output_device else None,
            monitor=self.monitor(),
            record_dir=self.record_folder() if record else None,
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
        self._await("start")
        return True

    def stop(self) -> None:
        self.bridge.stop()

    def _prepare_plots(self, config: EngineConfig) -> None:
        self._last = None
        self._recent.clear()
        self.plots.reset()
        self.plots.latency.set_budget(config.chunk_ms)
        self.plots.kv.set_window(config.kv_window)
        self.input_meter.reset()
        self.output_meter.reset()

    def monitor(self) -> str:
        return next((m for m, b in self.controls.monitor_buttons.items() if b.isChecked()), "codec")

    def set_monitor(self, mode: str) -> None:
        if mode not in self.controls.monitor_buttons:
            mode = "codec"
        self.controls.set_monitor(mode)
        self.bridge.set_monitor(mode)
        self.prefs.set_monitor(mode)
        self._refresh_text()

    def toggle_ab(self) -> None:
        self.set_monitor("bypass" if self.monitor() == "codec" else "codec")

    def _on_record_toggled(self, checked: bool) -> None:
        c = self.controls
        c.record_button.setText("■  Recording" if checked and self.bridge.running else "●  Record")
        if self.bridge.running:
            self.bridge.set_recording(self.record_folder() if checked else None)  # between two chunks
        self._show_record_folder()

    def choose_record_folder_dialog(self) -> None:
        if not self.interactive:
            return
        folder = QFileDialog.getExistingDirectory(self, "Folder for recordings", str(self.record_folder()))
        if folder:
            self.set_record_folder(Path(folder))

    # -- bridge signals --------------------------------------------------------------------------

    def _on_frames(self, frames: list) -> None:
        for m in frames:
            self.plots.add(m)
            self._recent.append(m)
        self._last = frames[-1]

    def _on_tick(self) -> None:
        self._tick_times.append(time.perf_counter())
        if self.pages.currentIndex() == 0:
            self.plots.redraw()
        if self._last is not None and self.bridge.running:
            self.input_meter.set_level(self._last.input_level_db)
            self.output_meter.set_level(self._last.output_level_db)

    def _on_event(self, event: EngineEvent) -> None:
        if event.kind == "error":
            self.show_message("error", event.message)
        elif event.kind == "warning":
            self.show_message("warning", event.message)
        elif event.kind == "info":  # e.g. the delay won back: it replaces the warning, then goes
            if not (self.banner.isVisible() and self.banner.kind == "error"):
                self.show_message("info", event.message)
        elif event.kind == "stopped":
            if event.message not in QUIET_STOP_REASONS:
                self.show_message("error", f"streaming stopped: {event.message}")
            recorded = self._recording_paths
            self._recording_paths = None
            if recorded and not (self.banner.isVisible() and self.banner.kind == "error"):
                self._show_recorded(recorded)
            elif recorded:
                self._show_status(f"Stopped; {self._recorded_short(recorded)}", str(Path(recorded[0]).parent))
            else:
                self._show_status(f"Stopped ({event.message})")
        elif event.kind == "started":
            self._recording_paths = self.bridge.recording_paths()
            self._show_status(event.message.capitalize(), ms=4000)
        elif event.kind == "recording":
            if self._recording_paths and not event.message:
                self._show_recorded(self._recording_paths)
            self._recording_paths = event.message.split("\n") if event.message else None
        else:
            self._show_status(event.message)
        self._show_record_folder()

    @staticmethod
    def _recorded_short(paths: list[str]) -> str:
        """The pair's names without their folder, e.g. "recorded mimi-<time>-input.wav and -codec.wav",
        so that the line fits the status bar next to its labels."""
        first, *rest = (Path(p).name for p in paths)
        stem = first.rsplit("-", 1)[0] + "-"  # mimi-<time>[-n]-: the part both names share
        return "recorded " + " and ".join([first, *(n[len(stem) - 1:] if n.startswith(stem) else n for n in rest)])

    def _show_recorded(self, paths: list[str]) -> None:
        folder = str(Path(paths[0]).parent)
        names = " and ".join(Path(p).name for p in paths)
        short = self._recorded_short(paths)
        self.show_message("info", f"Recorded {names} in {folder}", status=short[0].upper() + short[1:],
                          status_tip=f"In {folder}")

    def _show_status(self, text: str, tip: str = "", ms: int = 5000) -> None:
        self._status_tip = tip
        self.statusBar().showMessage(text, ms)

    def _fit_status_message(self, text: str | None = None) -> None:
        """Gives the status bar's message the room it needs: QStatusBar cuts it at the first label."""
        bar = self.statusBar()
        text = bar.currentMessage() if text is None else text
        bar.setToolTip(self._status_tip if text else "")
        hidden: set[str] = set()
        if text:
            widths = {name: label.sizeHint().width() for name, label in self.status.items()}
            free = bar.width() - sum(widths.values())
            need = bar.fontMetrics().horizontalAdvance(text) + 40  # + margins, spacing and the size grip
            for name in STATUS_YIELDS:
                if free >= need:
                    break
                hidden.add(name)
                free += widths[name]
        for name in STATUS_YIELDS:
            self.status[name].setVisible(name not in hidden)  # no-op when unchanged: no flicker

    def _await(self, topic: str) -> None:
        self._awaiting, self._awaiting_failed = topic, False

    def _on_busy(self, busy: bool, text: str) -> None:
        self._busy = busy
        if not busy and self._awaiting is not None:
            # A model now loaded and no error meanwhile: an earlier failed load, failed download
            # (e.g. no network) or "no model" is resolved.
            if not self._awaiting_failed and self.bridge.codec is not None:
                self.banner.clear(self._awaiting, "model")
            self._awaiting = None
        self.busy_bar.setVisible(busy)
        self.busy_label.setText(text if busy else "")
        if not busy and self.bridge.codec is not None:
            self._on_codec(self.bridge.codec)  # a failed swap: show what is still running
        self._update_enabled()

    def _on_running(self, running: bool) -> None:
        if not running:
            self.input_meter.reset()
            self.output_meter.reset()
        self.controls.record_button.setText(
            "■  Recording" if running and self.controls.record_button.isChecked() else "●  Record")
        self._update_enabled()
        self._refresh_text()

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
        self._status_tip = status_tip
        self.statusBar().showMessage(status or text.splitlines()[0][:160], 8000)

    def _update_enabled(self) -> None:
        c, running, busy = self.controls, self.bridge.running, self.bridge.busy
        has_model = self.selected_model() is not None or self.bridge.codec_model is not None
        c.start_button.setText("Stop" if running else "Start")
        c.start_button.setStyleSheet(
            f"QPushButton {{ background: {'#8a2b2b' if running else '#2b6a3f'}; color: white; border-radius: 4px; }}"
            "QPushButton:disabled { background: #3a3f47; color: #777; }")
        c.start_button.setEnabled(running or (not busy and has_model))
        for widget in (c.model_combo, c.open_model_button, c.codebooks_combo, c.kv_combo):
            widget.setEnabled(not busy)
        c.codebooks_combo.setEnabled(not busy and c.codebooks_combo.count() > 1)
        # These need a new session: change them while stopped. Devices move while streaming.
        for widget in (c.source_combo, c.chunk_combo):
            widget.setEnabled(not running and not busy)
            widget.setToolTip("Stop to change" if running else "")
        for widget in (c.output_combo, c.refresh_devices_button):
            widget.setEnabled(not busy)
        c.input_combo.setEnabled(not busy and c.source_combo.currentData() == "mic")
        c.record_button.setEnabled(not busy)
        blocker = self.int8_copy_blocker()
        c.int8_button.setEnabled(blocker is None)
        c.int8_menu.menuAction().setEnabled(blocker is None)
        c.int8_button.setToolTip(blocker or "Make a local int8 copy of the loaded model (ONNX Runtime dynamic "
                                            "quantization), measure it against the float model and list it "
                                            "in the Variant list with its SNR and speed")

    def _refresh_text(self) -> None:
        """Readouts and status bar, ~4 Hz."""
        r, s = self.readouts, self.status
        codec = self.bridge.codec
        bitrate = codec.bitrate_bps if codec is not None else None
        r["bitrate"].set(format_bps(bitrate) if bitrate else "–")
        r["monitor"].set(self.monitor().upper(), {"codec": theme.OUTPUT, "bypass": theme.INPUT,
                                                  "residual": theme.DECODE}[self.monitor()])
        model = self.bridge.codec_model
        s["model"].setText(f"{self.model_name(model)} · {codec.num_codebooks} cb" if model and codec else "no model")
        s["bitrate"].setText(format_bps(bitrate) if bitrate else "")
        recent = list(self._recent)
        if recent and self.bridge.running:
            rtf = sum(m.compute_ms for m in recent) / sum(m.frames * 80.0 for m in recent)
            last = recent[-1]
            r["rtf"].set(f"{rtf:.2f}", theme.BUDGET if rtf > 0.9 else theme.DECODE if rtf > 0.7 else None)
            r["latency"].set(f"{last.latency_ms:.0f} ms")
            window = self.controls.kv_window()
            r["kv"].set(f"{last.kv_encoder}" + (f" / {window}" if window else ""))
            s["rtf"].setText(f"RTF {rtf:.2f}")
            s["xruns"].setText(f"dropouts {last.dropouts} (underruns {last.underruns} · device xruns {last.xruns})"
                               + (f" · overruns {last.overruns}" if last.overruns else ""))
            s["dropped"].setText(f"skipped {last.skipped_ms / 1000:.1f} s")
            self.budget_bar.set_budget({stage: float(np.median([m.budget_ms[stage] for m in recent]))
                                        for stage in last.budget_ms})
        elif not self.bridge.running:
            for key in ("rtf", "latency", "kv"):
                r[key].set("–")
            if self.budget_bar.budget:
                self.budget_bar.set_budget({})
        ticks = list(self._tick_times)
        fps = (len(ticks) - 1) / (ticks[-1] - ticks[0]) if len(ticks) > 1 and ticks[-1] > ticks[0] else 0.0
        s["fps"].setText(f"UI {fps:.0f} fps")
        if self.statusBar().currentMessage():  # the labels' new widths may crowd it
            self._fit_status_message()
