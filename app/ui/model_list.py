"""The Variant list's entries: published variants, the user's model folders, local int8 copies (GUI thread).

Published variants not in the cache yet stay listed with a download marker; choosing one starts
the download instead of a load. Folders the user opened are remembered (most recent first) in
the preferences; int8 copies are read from the data folder each time the list is rebuilt.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox

from app.models import VARIANTS, find_cached, is_model_folder, local_int8_models
from app.ui.controls import INT8_CHOICES, int8_label, int8_source_name, int8_tooltip
from app.ui.prefs import Prefs

if TYPE_CHECKING:
    from app.codec.quantize import Int8Quality

log = logging.getLogger(__name__)

RECENT_FOLDERS_MAX = 10
DOWNLOAD_PREFIX = "download:"  # combo data of a published variant that is not in the cache yet


def not_a_model_folder(folder: Path) -> str | None:
    """Why `folder` cannot be listed, or None if it is a model folder."""
    if is_model_folder(folder):
        return None
    return (f"{folder} is not a Mimi model folder: it needs encoder_model.onnx, "
            "decoder_model.onnx and state_spec.txt")


def int8_made_message(quality, known: bool) -> str:
    """The banner after an int8 copy was made (or found made): its numbers and where to pick it."""
    q = quality
    what = next(text for parts, text, _ in INT8_CHOICES if parts == q.parts).split(" (")[0].lower()
    return (f"{'Already made' if known else 'Made'}: int8 copy of {int8_source_name(q)} ({what}). "
            f"Against the float model, on this machine: SNR {q.snr_end_to_end_db:.1f} dB end to end, "
            f"{q.snr_same_codes_db:.1f} dB on the same codes, {q.codes_agreement:.1%} identical codes; "
            f"{q.ms_per_frame:.1f} vs {q.original_ms_per_frame:.1f} ms/frame ({q.speedup:.2f}x). "
            f"Pick \"{int8_label(q)}\" in the Variant list to listen to it.")


class ModelList:
    """Fills the model combo and answers what its entries are."""

    def __init__(self, combo: QComboBox, prefs: Prefs):
        self.combo = combo
        self.prefs = prefs
        self._int8: dict[str, Int8Quality] = {}  # listed int8 copies: folder -> Int8Quality (read from disk)

    # -- remembered folders ----------------------------------------------------------------------

    def folders(self) -> list[str]:
        return self.prefs.model_folders()

    def remember_folder(self, folder: Path) -> None:
        """Puts `folder` first in the remembered folders (the oldest beyond the limit go)."""
        others = [f for f in self.folders() if f != str(folder)]
        self.prefs.set_model_folders([str(folder), *others][:RECENT_FOLDERS_MAX])

    def forget_folder(self, folder: Path | str) -> None:
        self.prefs.set_model_folders([f for f in self.folders() if f != str(folder)])

    # -- the entries -----------------------------------------------------------------------------

    def populate(self, select: str = "") -> bool:
        """Lists every entry again and selects `select` (else the first loadable one), without
        emitting the combo's signals; True if any entry can be loaded."""
        combo = self.combo
        combo.blockSignals(True)
        combo.clear()
        items = combo.model()
        assert isinstance(items, QStandardItemModel)  # a QComboBox's own model
        for v in VARIANTS:
            path = find_cached(v)
            text = v.label + ("" if path else "  · download")
            combo.addItem(text, str(path) if path else DOWNLOAD_PREFIX + v.name)
            if path is None:
                items.item(combo.count() - 1).setToolTip(f"Not downloaded yet: choose it to download "
                                                         f"~{v.size_mb} MB from the Hugging Face hub")
        try:
            int8 = local_int8_models()
        except Exception:  # noqa: BLE001 - an unreadable data dir lists no int8 copies, never a crash
            log.exception("listing the int8 copies failed")
            int8 = []
        self._int8 = {str(folder): quality for folder, quality in int8}
        for folder in self.folders():
            if folder in self._int8:  # listed below, with its numbers
                continue
            combo.addItem(f"{Path(folder).name}  — {folder}", folder)
            combo.setItemData(combo.count() - 1, folder, Qt.ItemDataRole.ToolTipRole)
        # Local int8 copies: each labelled with its SNR against the float model and both speeds.
        for folder, quality in self._int8.items():
            combo.addItem(int8_label(quality), folder)
            combo.setItemData(combo.count() - 1, int8_tooltip(quality, folder), Qt.ItemDataRole.ToolTipRole)
        index = combo.findData(select) if select else -1
        if index < 0 or not self._loadable(index):
            index = next((i for i in range(combo.count()) if self._loadable(i)), -1)
        combo.setCurrentIndex(index)
        combo.blockSignals(False)
        return any(self._loadable(i) for i in range(combo.count()))

    def _loadable(self, index: int) -> bool:
        data = self.combo.itemData(index)
        return bool(data) and not str(data).startswith(DOWNLOAD_PREFIX)

    def selected(self) -> Path | None:
        """The model folder chosen, or None (nothing listed, or a variant still to download)."""
        data = self.combo.currentData()
        return Path(data) if data and not str(data).startswith(DOWNLOAD_PREFIX) else None

    def selected_download(self) -> str | None:
        """The published variant chosen for download, or None if the entry chosen is on disk."""
        data = str(self.combo.currentData() or "")
        return data[len(DOWNLOAD_PREFIX):] if data.startswith(DOWNLOAD_PREFIX) else None

    def current_data(self) -> str:
        return str(self.combo.currentData() or "")

    def lists(self, folder: Path | str) -> bool:
        return self.combo.findData(str(folder)) >= 0

    def show(self, model: Path | str) -> None:
        """Selects `model`'s entry without a load (the combo follows what the bridge runs)."""
        index = self.combo.findData(str(model))
        if index >= 0:
            self.combo.blockSignals(True)
            self.combo.setCurrentIndex(index)
            self.combo.blockSignals(False)

    # -- int8 copies -----------------------------------------------------------------------------

    def int8_quality(self, model: Path | str | None):
        """The measured quality of an int8 copy listed, or None (not an int8 copy)."""
        return None if model is None else self._int8.get(str(model))

    def int8_copy_of(self, model: Path | str, parts: str) -> Path | None:
        """The listed int8 copy of `model` with these `parts` in int8, or None."""
        source = str(Path(model).resolve())
        return next((Path(folder) for folder, q in self._int8.items()
                     if q.source == source and q.parts == parts), None)

    def name(self, model: Path | str | None) -> str:
        """What the window calls a model: its folder's name, or "<source> int8" for an int8 copy."""
        if model is None:
            return ""
        quality = self.int8_quality(model)
        if quality is None:
            return Path(model).name
        return f"{int8_source_name(quality)} {quality.kind}"

    def int8_note(self, model: Path | str | None) -> str | None:
        """The model note's line for a loaded int8 copy: its SNR and speed; None for other models."""
        quality = self.int8_quality(model)
        if quality is None:
            return None
        return (f"{self.name(model)}: SNR {quality.snr_end_to_end_db:.1f} dB vs float, "
                f"{quality.ms_per_frame:.1f} vs {quality.original_ms_per_frame:.1f} ms/frame")
