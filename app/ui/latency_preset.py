"""The "Lowest latency" box: 10 ms device blocks, 80 ms chunks and the loaded model's decoder-only
int8 copy (GUI thread). The same preset as `mimi-live run --lowest-latency`.

Ticking it switches to that copy, making it first when there is none (the model chooser's int8
job: ~30 s at full size, streaming stopped); unticking switches back to the float model the copy
was made from and gives the chunk choice back. The device latency follows the box at Start. The
box changes only while stopped, as the chunk does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from app.config import DEFAULT_DEVICE_LATENCY_MS, FRAME_MS, LOWEST_LATENCY_DEVICE_MS, LOWEST_LATENCY_INT8_PARTS

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow


class LatencyPreset:
    """The box's behaviour; `window` is the MainWindow it belongs to."""

    def __init__(self, window: MainWindow):
        self.window = window
        self.controls, self.prefs, self.models = window.controls, window.prefs, window.models
        self._making_for: Path | None = None  # the float model whose copy is being made for the box
        self.controls.lowest_latency_check.toggled.connect(self._on_toggled)
        window.bridge.sigInt8.connect(self._on_int8)  # after the chooser's slot: the list has the copy

    @property
    def on(self) -> bool:
        return self.controls.lowest_latency_check.isChecked()

    def device_latency_s(self) -> float:
        return (LOWEST_LATENCY_DEVICE_MS if self.on else DEFAULT_DEVICE_LATENCY_MS) / 1000

    def restore(self) -> None:
        """The box as last saved (the model list restores the model itself). While it is ticked the
        chunk combo shows 80 ms (and is disabled), so the session's chunk is read from the combo."""
        box = self.controls.lowest_latency_check
        box.blockSignals(True)
        box.setChecked(self.prefs.lowest_latency())
        box.blockSignals(False)
        if self.on:
            self.controls.select_data(self.controls.chunk_combo, FRAME_MS)

    def _on_toggled(self, on: bool) -> None:
        self.prefs.set_lowest_latency(on)
        chunk = FRAME_MS if on else self.prefs.chunk_ms()  # the user's own choice comes back on untick
        self.controls.select_data(self.controls.chunk_combo, chunk)
        if on:
            self._use_copy()
        else:
            self._making_for = None
            self._back_to_float()
        self.window.update_enabled()

    def _use_copy(self) -> None:
        model = self.window.bridge.codec_model
        if model is None or self.models.list.int8_quality(model) is not None:
            return  # nothing loaded yet, or an int8 copy already: the user's pick stays
        copy = self.models.list.int8_copy_of(model, LOWEST_LATENCY_INT8_PARTS)
        if copy is not None:
            self.models.choose(copy)
        elif self.models.make_int8_copy(LOWEST_LATENCY_INT8_PARTS):
            self._making_for = Path(model).resolve()

    def _on_int8(self, folder: Path, quality) -> None:
        wanted, self._making_for = self._making_for, None
        if wanted is not None and self.on and Path(quality.source) == wanted and self.models.list.lists(folder):
            self.models.choose(Path(folder))

    def _back_to_float(self) -> None:
        model = self.window.bridge.codec_model
        quality = self.models.list.int8_quality(model)
        if quality is None or quality.parts != LOWEST_LATENCY_INT8_PARTS:
            return
        source = Path(quality.source)
        if self.models.list.lists(source):
            self.models.choose(source)
        else:  # a folder the list no longer remembers: added again
            self.models.add_model_folder(source)
