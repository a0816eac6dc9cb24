"""What the window streams from and to: the source (microphone, file, tone) and the devices (GUI thread).

Devices are remembered and passed on by name: PortAudio's indices change each time it is
initialised again. While streaming PortAudio cannot be re-initialised in this process, so a
refresh lists the devices in a child process, on a background thread, and the list comes back
through a queued signal.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QWidget

from app.ui import theme
from app.ui.controls import ControlsPanel
from app.ui.engine_bridge import EngineBridge
from app.ui.prefs import Prefs
from app.ui.widgets import Banner

log = logging.getLogger(__name__)

DEVICE_KINDS = ("input", "output")


def device_name(combo: QComboBox) -> str | None:
    """The device chosen in `combo` by its exact name; None for the system default."""
    data = combo.currentData()
    return data[1].split("\t")[0] if data else None


def query_devices(lister: Callable) -> tuple[list, str | None]:
    """The devices `lister` finds and, if it failed, why (in one line); never raises."""
    from app.audio.devices import DeviceError

    try:
        return list(lister()), None
    except DeviceError as exc:
        return [], str(exc)
    except Exception as exc:  # noqa: BLE001 - a device list must never take the window down
        log.exception("listing devices failed")
        return [], f"cannot list audio devices ({exc})"


class AudioChoice(QObject):
    """Fills the device combos, remembers the source, file and devices chosen, and hands the
    devices to the running stream; `window` is the parent of the file dialog."""

    _devices_listed = Signal(object, object)  # (devices, problem) from a background listing

    def __init__(self, window: QWidget, controls: ControlsPanel, prefs: Prefs, bridge: EngineBridge, banner: Banner,
                 device_lister: Callable | None, on_changed: Callable[[], None], interactive: bool = True):
        super().__init__(window)
        if device_lister is None:
            from app.audio.devices import list_devices, list_devices_fresh
        self._list_devices = device_lister or list_devices
        self._list_devices_fresh = device_lister or list_devices_fresh
        self.window, self.controls, self.prefs, self.bridge, self.banner = window, controls, prefs, bridge, banner
        self.interactive = interactive  # False in tests: never open a modal dialog
        self.input_file: Path | None = None
        self._on_changed = on_changed  # the window updates which controls are enabled
        self._devices_listed.connect(self._fill_devices)
        controls.source_combo.currentIndexChanged.connect(self._on_source_chosen)
        controls.refresh_devices_button.clicked.connect(self.refresh_devices)
        controls.input_combo.currentIndexChanged.connect(lambda: self._device_chosen("input"))
        controls.output_combo.currentIndexChanged.connect(lambda: self._device_chosen("output"))

    # -- source ----------------------------------------------------------------------------------

    def restore_source(self) -> None:
        """The source and file saved last time; the microphone if that file has gone."""
        c = self.controls
        c.select_data(c.source_combo, self.prefs.source())
        saved_file = self.prefs.input_file()
        if saved_file is not None and saved_file.is_file():
            self.input_file = saved_file
        if c.source_combo.currentData() == "file" and self.input_file is None:
            c.select_data(c.source_combo, "mic")
        self._show_file()

    def set_input_file(self, path: Path) -> None:
        self.input_file = Path(path)
        self.prefs.set_input_file(path)
        self.controls.select_data(self.controls.source_combo, "file")
        self.prefs.set_source("file")
        self._source_set()

    def set_source(self, source: str) -> None:
        """'mic', 'file' (needs set_input_file first) or 'tone'."""
        self.controls.select_data(self.controls.source_combo, source)
        self._on_source_chosen()

    def _on_source_chosen(self) -> None:
        source = self.controls.source_combo.currentData()
        if source == "file" and self.input_file is None:
            path = None
            if self.interactive:
                path, _ = QFileDialog.getOpenFileName(self.window, "Play an audio file in a loop", str(Path.home()),
                                                      "Audio (*.wav *.flac *.ogg *.mp3 *.aiff);;All files (*)")
            if not path:
                self.controls.select_data(self.controls.source_combo, self.prefs.source())
                self._show_file()
                return
            self.input_file = Path(path)
            self.prefs.set_input_file(path)
        self.prefs.set_source(source)
        self._source_set()

    def _source_set(self) -> None:
        self.banner.clear("source")
        self._show_file()
        self._on_changed()

    def _show_file(self) -> None:
        c = self.controls
        path = self.input_file if c.source_combo.currentData() == "file" else None
        c.set_note(c.file_label, f"{path.name} (looped)" if path is not None else None)

    # -- devices ---------------------------------------------------------------------------------

    def _combo(self, kind: str) -> QComboBox:
        return self.controls.input_combo if kind == "input" else self.controls.output_combo

    def refresh_devices(self) -> None:
        """Lists the audio devices again; while streaming, in the background (a child process)."""
        if not self.bridge.running:
            self._fill_devices(*query_devices(self._list_devices))
            return
        self.controls.refresh_devices_button.setEnabled(False)

        def listing() -> None:
            found = query_devices(self._list_devices_fresh)
            with contextlib.suppress(RuntimeError):  # the window closed meanwhile
                self._devices_listed.emit(*found)  # queued to the GUI thread

        threading.Thread(target=listing, name="list-devices", daemon=True).start()

    def _fill_devices(self, devices: list, problem: str | None) -> None:
        c = self.controls
        for kind in DEVICE_KINDS:
            combo = self._combo(kind)
            saved = self.prefs.device(kind)
            combo.blockSignals(True)
            combo.clear()
            combo.addItem("System default", "")
            for d in devices:
                if d.channels(kind) > 0:
                    combo.addItem(f"{d.name} ({d.hostapi})", (d.index, f"{d.name}\t{d.hostapi}"))
                    combo.setItemData(combo.count() - 1, f"#{d.index} {d.name} — {d.hostapi}",
                                      Qt.ItemDataRole.ToolTipRole)
            index = next((i for i in range(1, combo.count()) if combo.itemData(i)[1] == saved), 0)
            combo.setCurrentIndex(index)
            combo.blockSignals(False)
        if problem:
            c.set_note(c.audio_note, f"Audio devices unavailable: {problem}", theme.DECODE)
        elif not devices:
            c.set_note(c.audio_note, "No audio devices found: the system default will be tried.", theme.DECODE)
        else:
            c.set_note(c.audio_note, None)
        self._on_changed()

    def _device_chosen(self, kind: str) -> None:
        data = self._combo(kind).currentData()
        self.prefs.set_device(kind, data[1] if data else "")
        if self.bridge.running:  # the engine moves the stream between two chunks
            self.bridge.set_devices(device_name(self.controls.input_combo), device_name(self.controls.output_combo))

    def chosen_indices(self) -> tuple[int | None, int | None]:
        """The (input, output) PortAudio indices chosen when the list was filled; None = default."""
        input_data, output_data = (self._combo(kind).currentData() for kind in DEVICE_KINDS)
        return (input_data[0] if input_data else None), (output_data[0] if output_data else None)
