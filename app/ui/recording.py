"""Recording the session: the Record button, the recordings folder and the files being written (GUI thread)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog

from app.ui.status_line import recorded_short

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow

RECORD_TEXT, RECORDING_TEXT = "●  Record", "■  Recording"


class RecordingControl:
    """Arms and toggles recording, says where the files go, and reports them once written."""

    def __init__(self, window: MainWindow):
        self.window = window
        self.controls, self.prefs, self.bridge = window.controls, window.prefs, window.bridge
        self.paths: list[str] | None = None  # the WAV files the running session writes, if any
        self.controls.record_button.toggled.connect(self._on_toggled)
        self.controls.record_folder_button.clicked.connect(self.choose_folder_dialog)

    def folder(self) -> Path:
        return self.prefs.record_folder()

    def set_folder(self, folder: Path) -> None:
        self.prefs.set_record_folder(folder)
        self.show_folder()

    def choose_folder_dialog(self) -> None:
        if not self.window.interactive:
            return
        folder = QFileDialog.getExistingDirectory(self.window, "Folder for recordings", str(self.folder()))
        if folder:
            self.set_folder(Path(folder))

    def show_folder(self) -> None:
        folder = self.folder()
        armed = self.controls.record_button.isChecked() and not self.bridge.running
        text = f"{'Will record' if armed else 'Recordings go'} to {folder}"
        if self.paths:
            text = "Recording " + " and ".join(Path(p).name for p in self.paths) + f" in {folder}"
        self.controls.set_note(self.controls.record_note, text)

    def show_button(self, running: bool) -> None:
        button = self.controls.record_button
        button.setText(RECORDING_TEXT if running and button.isChecked() else RECORD_TEXT)

    def _on_toggled(self, checked: bool) -> None:
        self.show_button(self.bridge.running)
        if self.bridge.running:
            self.bridge.set_recording(self.folder() if checked else None)  # between two chunks
        self.show_folder()

    def on_files(self, message: str) -> None:
        """The engine's "recording" event: the files now written ("" when recording ended)."""
        if self.paths and not message:
            self.show_recorded(self.paths)
        self.paths = message.split("\n") if message else None

    def show_recorded(self, paths: list[str]) -> None:
        folder = str(Path(paths[0]).parent)
        names = " and ".join(Path(p).name for p in paths)
        short = recorded_short(paths)
        self.window.show_message("info", f"Recorded {names} in {folder}", status=short[0].upper() + short[1:],
                                 status_tip=f"In {folder}")
