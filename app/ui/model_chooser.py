"""Choosing the model: the Variant list, folders, downloads, int8 copies, codebooks, KV window (GUI thread).

`ModelChooser` answers the model controls and the bridge's codec and int8 signals. The window
it serves shows the messages, waits on the loads and enables the controls: the chooser calls
back into it for those (`show_message`, `await_result`, `update_enabled`, `refresh_text`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog

from app.ui import theme
from app.ui.model_list import ModelList, int8_made_message, not_a_model_folder

if TYPE_CHECKING:
    from app.ui.download_dialog import DownloadDialog
    from app.ui.main_window import MainWindow

PLOTS_PAGE, WELCOME_PAGE = 0, 1


class ModelChooser:
    """The model side of the window; `window` is the MainWindow it belongs to."""

    def __init__(self, window: MainWindow):
        self.window = window
        self.bridge, self.controls, self.prefs = window.bridge, window.controls, window.prefs
        self.list = ModelList(self.controls.model_combo, self.prefs)
        self.download: DownloadDialog | None = None  # the download under way, if any
        self.download_fn: Callable | None = None  # tests point this at a fake hub; None: the hub
        c, b = self.controls, self.bridge
        c.model_combo.currentIndexChanged.connect(self._on_model_chosen)
        c.open_model_button.clicked.connect(self.open_model_folder_dialog)
        for parts, action in c.int8_actions.items():
            action.triggered.connect(lambda _=False, p=parts: self.make_int8_copy(p))
        c.codebooks_combo.currentIndexChanged.connect(self._on_codebooks_chosen)
        c.kv_combo.currentIndexChanged.connect(self._on_kv_chosen)
        b.sigCodec.connect(self.on_codec)
        b.sigInt8.connect(self._on_int8)

    # -- the list --------------------------------------------------------------------------------

    def populate(self, select: str = "") -> None:
        """Lists the models again; the welcome page instead of the plots while none can be loaded."""
        has_model = self.list.populate(select)
        self.window.pages.setCurrentIndex(PLOTS_PAGE if has_model else WELCOME_PAGE)

    def add_model_folder(self, folder: Path, load: bool = True) -> bool:
        """Adds a user model folder (remembered), selects it and loads it; False if it is not one."""
        folder = Path(folder).expanduser().resolve()
        problem = not_a_model_folder(folder)
        if problem is not None:
            self.window.show_message("error", problem, topic="model")
            return False
        self.list.remember_folder(folder)
        if load:
            self.populate(select=str(folder))
            self.load_selected()
        return True

    def open_model_folder_dialog(self) -> None:
        if not self.window.interactive:
            return
        folders = self.list.folders()
        start = folders[0] if folders else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self.window, "Open a Mimi model folder", start)
        if folder:
            self.add_model_folder(Path(folder))

    def _on_model_chosen(self) -> None:
        variant = self.list.selected_download()
        if variant is not None:
            self.download_variant(variant)
            return
        model = self.list.selected()
        if model is None or self.bridge.busy:
            self._show_loaded()
            return
        if self.bridge.codec_model is not None and model == self.bridge.codec_model:
            return
        self.prefs.set_selected_model(model)
        self.load_selected()

    def choose(self, model: Path) -> None:
        """Selects a listed model and loads it, as a pick in the Variant list does."""
        self.list.show(model)
        self._on_model_chosen()

    def _show_loaded(self) -> None:
        """The list follows what the bridge has loaded (a load refused or failed moves it back)."""
        model = self.bridge.codec_model
        if model is not None:
            self.list.show(model)

    # -- loading ---------------------------------------------------------------------------------

    def _wanted_codebooks(self, model: Path) -> int | None:
        wanted = self.controls.codebooks_combo.currentData() or self.prefs.codebooks()
        if wanted in (None, ""):
            return None
        available = self.bridge.model_codebooks(model)
        if available is None:  # the load will report a broken folder properly
            return None
        return int(wanted) if int(wanted) <= available else None

    def load_selected(self) -> None:
        model = self.list.selected()
        if model is None:
            return
        # A published variant from the cache loads only if every file matches the hub's checksums:
        # the bridge hashes them on its loader thread first; a failure comes back as an error event.
        self._load(model)

    def _load(self, model: Path, verify: bool = True) -> None:
        if self.bridge.load_model(model, codebooks=self._wanted_codebooks(model),
                                  kv_window=self.controls.kv_window(), verify=verify, name=self.list.name(model)):
            self.window.await_result("model")

    def _on_codebooks_chosen(self) -> None:
        k = self.controls.codebooks_combo.currentData()
        if k is None:
            return
        self.prefs.set_codebooks(int(k))
        codec = self.bridge.codec
        if codec is not None and k != codec.num_codebooks and not self.bridge.set_codebooks(int(k)):
            self.on_codec(codec)  # busy: put the combo back

    def _on_kv_chosen(self) -> None:
        window = self.controls.kv_window()
        self.prefs.set_kv_window(window)
        self.window.plots.kv.set_window(window)
        self.bridge.set_kv_window(window)

    def on_codec(self, codec) -> None:
        """A codec loaded, swapped in, or still there after a failure: the controls show it."""
        c = self.controls
        if codec is None:
            c.set_codebook_choices((), 0, None)
        else:
            size = codec.contract.codebook_size
            c.set_codebook_choices(tuple(codec.codebook_choices), codec.num_codebooks, size)
            self.window.plots.codebooks.set_model(codec.max_codebooks, size)
            notes = [n for n in (codec.codebook_note, codec.kv_warning) if n]
            text = "; ".join(n for n in (self.list.int8_note(self.bridge.codec_model), *notes) if n)
            c.set_note(c.model_note, text or None, theme.DECODE if notes else None)
        self._show_loaded()
        self.window.refresh_text()
        self.window.update_enabled()

    # -- downloads -------------------------------------------------------------------------------

    def download_variant(self, name: str) -> None:
        """Downloads a published variant with a progress dialog, then loads it."""
        from app.ui.download_dialog import DownloadDialog

        if self.download is not None:
            return
        self.download = DownloadDialog(name, self.window,
                                       **({"download": self.download_fn} if self.download_fn else {}))
        self.download.sigDone.connect(self._on_downloaded)
        self.download.start()

    def _on_downloaded(self, folder: Path | None, error: str) -> None:
        assert self.download is not None  # only its own dialog reports here
        name = self.download.name
        self.download.deleteLater()
        self.download = None
        if folder is None:
            self.window.show_message("error", error, topic="model")  # e.g. no network: any model loaded resolves it
            self._show_loaded()
            return
        self.window.show_message("info", f"Downloaded {name} (sizes and sha256 match the hub) to {folder}")
        self.populate(select=str(folder))
        if not self.list.lists(folder):  # a cache the variant list does not read
            self.add_model_folder(Path(folder))
        else:
            self._load(Path(folder), verify=False)  # download_variant has just checked every file

    # -- int8 copies -----------------------------------------------------------------------------

    def int8_copy_blocker(self) -> str | None:
        """Why "Make int8 copy" is unavailable now, or None if it is available."""
        model = self.bridge.codec_model
        if model is None:
            return "Load a model first: the int8 copy is made from the loaded model"
        if self.list.int8_quality(model) is not None:
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
            self.window.show_message("warning", blocker)
            return False
        model = self.bridge.codec_model
        assert model is not None  # the blocker has said so when none is loaded
        if not self.bridge.make_int8(model, parts, name=self.list.name(model)):
            return False
        self.window.banner.hide()
        return True

    def _on_int8(self, folder: Path, quality) -> None:
        known = self.list.int8_quality(folder) is not None
        self.populate(select=self.list.current_data())
        if not self.list.lists(folder):  # its source moved meanwhile
            self.window.show_message("warning", f"the int8 copy was made in {folder} but its source model is gone")
            return
        self.window.show_message("info", int8_made_message(quality, known))
        self.window.update_enabled()
