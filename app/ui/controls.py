"""The control column: model, codebooks, latency, devices, source, session (GUI thread).

Widgets and their labels only; MainWindow connects them to the engine bridge and settings.
"""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QFont
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.config import CHUNK_CHOICES_MS, FRAME_RATE_HZ, KV_WINDOW_CHOICES
from app.ui import theme

DEFAULT_CODEBOOK_BITS = 11  # log2(2048), Mimi's codebook size
MONITOR_LABELS = (("codec", "Codec", "1"), ("bypass", "Bypass", "2"), ("residual", "Residual", "3"))
# The classic codecs, heard in step with Mimi when the session runs them (app/audio/classic_paths.py).
CLASSIC_LABELS = (("codec2-1200", "Codec2 1.2k", "4"), ("codec2-3200", "Codec2 3.2k", "5"),
                  ("opus-6k", "Opus 6k", "6"), ("opus-12k", "Opus 12k", "7"))
CLASSIC_KEYS = frozenset(key for key, _, _ in CLASSIC_LABELS)
REPLAY_TEXT, REPLAYING_TEXT = "⟲  Replay last 10 s", "■  Stop replay"
CLASSIC_TIP = ("Run Codec2 1200/3200 and Opus 6/12 kbps beside Mimi on the same input, every path delayed to "
               "the slowest (about 85 ms more delay), so that switching among them is instant and in sync. "
               "While streaming the delay grows (or falls back) over about a second.")
LOWEST_LATENCY_TIP = (
    "10 ms device blocks instead of 20, 80 ms chunks, and the loaded model's int8 copy with only the decoder "
    "in int8 (the codes stay the float model's; made once, ~30 s at full size). Measured through PulseAudio "
    "on a 2-core VM, full size: ~145-170 ms end to end against ~175-195 ms at the defaults; a busy machine "
    "may click with 10 ms blocks. Unticking goes back to the float model. Stop to change.")
SOURCE_LABELS = (("mic", "Microphone"), ("file", "WAV file…"), ("tone", "Test tone (440 Hz)"))


def format_bps(bps: float) -> str:
    return f"{bps:.0f} bps" if bps < 1000 else f"{bps / 1000:.3g} kbps"


def codebook_label(k: int, codebook_size: int | None) -> str:
    bits = math.log2(codebook_size) if codebook_size else DEFAULT_CODEBOOK_BITS
    return f"{k} codebook{'s' if k != 1 else ''} · {format_bps(k * bits * FRAME_RATE_HZ)}"


def chunk_label(ms: int) -> str:
    note = " · lowest latency" if ms == CHUNK_CHOICES_MS[0] else " · fewest calls" if ms == CHUNK_CHOICES_MS[-1] else ""
    return f"{ms} ms{note}"


def kv_label(window: int | None) -> str:
    if window is None:
        return "none (cache grows)"
    note = ", as trained" if window == 250 else ""
    return f"{window} tokens ({window / 25:g} s{note})"


INT8_CHOICES = (  # app.models.INT8_PARTS, the menu's wording and what each choice means
    ("encoder+decoder", "Encoder + decoder (fastest)",
     "Both models in int8: the most speed; the encoder may pick a few codes differently from the float model"),
    ("decoder", "Decoder only (codes unchanged)",
     "Only the decoder in int8: the codes stay exactly the float model's; less speed-up"),
)
INT8_BUTTON_TIP = ("Make a local int8 copy of the loaded model (ONNX Runtime dynamic quantization), measure it "
                   "against the float model and list it in the Variant list with its SNR and speed")
INT8_MEASURE_NOTE = ("quantizes, then plays ~20 s of test signal through both models to measure the SNR and "
                     "speeds on this machine (about 30 s at full size); nothing is switched")


def int8_source_name(quality) -> str:
    """The name of the model an int8 copy was made from (its folder's name)."""
    return Path(quality.source).name


def int8_label(quality) -> str:
    """The Variant list entry of an int8 copy: its source and its number, e.g.
    "streaming-8cb · int8 · SNR 10.6 dB vs float · 20 vs 27 ms/frame"."""
    return f"{int8_source_name(quality)} · {quality.label()}"


def int8_tooltip(quality, folder: Path | str) -> str:
    """Every number of an int8 copy's quality record, and what they mean."""
    decoder_only = quality.parts == "decoder"
    what = ("decoder only in int8: the encoder stays float, so the codes are exactly the float model's"
            if decoder_only else "encoder and decoder in int8")
    return "\n".join((
        f"int8 copy of {quality.source}",
        f"{what}; measured on this machine against the float model on {quality.frames / FRAME_RATE_HZ:.0f} s "
        "of test signal:",
        f"  SNR end to end (same input): {quality.snr_end_to_end_db:.1f} dB",
        f"  SNR on the same codes (decoder alone): {quality.snr_same_codes_db:.1f} dB",
        f"  identical codes: {quality.codes_agreement:.1%}",
        f"  {quality.ms_per_frame:.1f} ms/frame vs {quality.original_ms_per_frame:.1f} float "
        f"({quality.speedup:.2f}x), encode + decode, p50",
        f"folder: {folder}",
    ))


def _combo(min_width: int = 0) -> QComboBox:
    combo = QComboBox()
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(12)
    combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    if min_width:
        combo.setMinimumWidth(min_width)
    return combo


def _form() -> QFormLayout:
    form = QFormLayout()
    form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    form.setHorizontalSpacing(8)
    form.setVerticalSpacing(6)
    return form


def _note() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setStyleSheet(f"color: {theme.MUTED}; font-size: 8.5pt;")
    label.setVisible(False)
    return label


class ControlsPanel(QWidget):
    """Left column of the window."""

    def __init__(self):
        super().__init__()
        self.setMinimumWidth(300)
        self.setMaximumWidth(380)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(10)

        # Session: the big button first, it is what people look for.
        session = QGroupBox("Session")
        box = QVBoxLayout(session)
        self.start_button = QPushButton("Start")
        self.start_button.setMinimumHeight(38)
        font = QFont(self.start_button.font())
        font.setPointSizeF(font.pointSizeF() + 2)
        font.setBold(True)
        self.start_button.setFont(font)
        self.start_button.setToolTip("Start or stop streaming (F5)")
        box.addWidget(self.start_button)
        monitor_row = QHBoxLayout()
        monitor_row.setSpacing(0)
        self.monitor_group = QButtonGroup(self)
        self.monitor_group.setExclusive(True)
        self.monitor_buttons: dict[str, QPushButton] = {}
        for mode, text, key in MONITOR_LABELS:
            button = QPushButton(f"{text}  {key}")
            button.setCheckable(True)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space must reach the window's A/B shortcut
            button.setToolTip({"codec": "Hear Mimi's reconstruction (1)",
                               "bypass": "Hear the input, delayed like the codec path (2); Space toggles with codec",
                               "residual": "Hear what the codec loses: input minus reconstruction (3)"}[mode])
            self.monitor_group.addButton(button)
            self.monitor_buttons[mode] = button
            monitor_row.addWidget(button)
        self.monitor_buttons["codec"].setChecked(True)
        box.addWidget(QLabel("Monitor (Space: codec ⇄ bypass)"))
        box.addLayout(monitor_row)
        self.classic_check = QCheckBox("Codec2 / Opus in step (+85 ms)")
        self.classic_check.setToolTip(CLASSIC_TIP)
        self.classic_check.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        box.addWidget(self.classic_check)
        classic_row = QHBoxLayout()
        classic_row.setSpacing(0)
        for mode, text, key in CLASSIC_LABELS:
            button = QPushButton(f"{text}  {key}")
            button.setCheckable(True)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setToolTip(f"Hear {text} in step with Mimi ({key}); needs the box above ticked at Start")
            self.monitor_group.addButton(button)
            self.monitor_buttons[mode] = button
            classic_row.addWidget(button)
        box.addLayout(classic_row)
        self.replay_button = QPushButton(REPLAY_TEXT)
        self.replay_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.replay_button.setToolTip(
            "Play the last 10 s of input as the original, through Mimi at this and at half the codebooks, "
            "then Codec2 1200 and Opus 6 kbps, each announced; live monitoring pauses meanwhile (P)")
        box.addWidget(self.replay_button)
        record_row = QHBoxLayout()
        self.record_button = QPushButton("●  Record")
        self.record_button.setCheckable(True)
        self.record_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.record_button.setToolTip("Record input and codec output as two WAV files (R)")
        self.record_folder_button = QToolButton()
        self.record_folder_button.setText("…")
        self.record_folder_button.setToolTip("Choose the recordings folder")
        record_row.addWidget(self.record_button, 1)
        record_row.addWidget(self.record_folder_button)
        box.addLayout(record_row)
        self.record_note = _note()
        box.addWidget(self.record_note)
        column.addWidget(session)

        # Model.
        model = QGroupBox("Model")
        form = _form()
        model.setLayout(form)
        self.model_combo = _combo()
        self.model_combo.setToolTip("Published variants (when downloaded), model folders you added, and int8 "
                                    "copies made here (each with its SNR against the float model and its speed)")
        form.addRow("Variant", self.model_combo)
        self.open_model_button = QPushButton("Open model folder…")
        self.open_model_button.setToolTip("Add a folder with encoder_model.onnx, decoder_model.onnx, "
                                          "state_spec.txt (Ctrl+O)")
        form.addRow("", self.open_model_button)
        self.int8_button = QPushButton("Make int8 copy…")
        self.int8_menu = QMenu("Make int8 copy of the loaded model", self)
        self.int8_menu.setToolTipsVisible(True)
        self.int8_actions: dict[str, QAction] = {}
        for parts, text, tip in INT8_CHOICES:
            action = self.int8_menu.addAction(text)
            action.setToolTip(f"{tip}. Makes the copy once: {INT8_MEASURE_NOTE}")
            self.int8_actions[parts] = action
        self.int8_button.setMenu(self.int8_menu)
        form.addRow("", self.int8_button)
        self.codebooks_combo = _combo()
        self.codebooks_combo.setToolTip("Codebooks sent per 80 ms frame: each adds 11 bits (137.5 bps)")
        form.addRow("Codebooks", self.codebooks_combo)
        self.kv_combo = _combo()
        for window in KV_WINDOW_CHOICES:
            self.kv_combo.addItem(kv_label(window), window or 0)  # 0 = none: never None as item data (compat.py)
        self.kv_combo.setToolTip("How much history the transformers attend to; 'none' lets the cost grow")
        form.addRow("KV window", self.kv_combo)
        self.model_note = _note()
        form.addRow(self.model_note)
        column.addWidget(model)

        # Audio.
        audio = QGroupBox("Audio")
        form = _form()
        audio.setLayout(form)
        self.source_combo = _combo()
        for key, text in SOURCE_LABELS:
            self.source_combo.addItem(text, key)
        form.addRow("Source", self.source_combo)
        self.file_label = _note()
        form.addRow("", self.file_label)
        self.input_combo = _combo()
        form.addRow("Input", self.input_combo)
        self.output_combo = _combo()
        form.addRow("Output", self.output_combo)
        self.refresh_devices_button = QPushButton("Refresh devices")
        form.addRow("", self.refresh_devices_button)
        self.chunk_combo = _combo()
        for ms in CHUNK_CHOICES_MS:
            self.chunk_combo.addItem(chunk_label(ms), ms)
        self.chunk_combo.setToolTip("Audio per encode/decode call: every extra 80 ms adds 80 ms of latency")
        form.addRow("Chunk (latency)", self.chunk_combo)
        self.lowest_latency_check = QCheckBox("Lowest latency · 10 ms · int8")
        self.lowest_latency_check.setToolTip(LOWEST_LATENCY_TIP)
        self.lowest_latency_check.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        form.addRow("", self.lowest_latency_check)
        self.audio_note = _note()
        form.addRow(self.audio_note)
        column.addWidget(audio)

        self.shortcuts = QLabel(
            "<b>Keys</b>&nbsp; F5 start/stop · 1 2 3 monitor · 4-7 Codec2/Opus · Space codec⇄bypass"
            " · P replay · R record · Ctrl+O open")
        self.shortcuts.setWordWrap(True)
        self.shortcuts.setStyleSheet(f"color: {theme.MUTED}; font-size: 8.5pt;")
        column.addWidget(self.shortcuts)
        column.addStretch(1)

    # -- helpers ---------------------------------------------------------------------------------

    def update_enabled(self, running: bool, busy: bool, has_model: bool, int8_blocker: str | None) -> None:
        """What can be used now; `int8_blocker`: why no int8 copy can be made now (None: it can)."""
        self.start_button.setText("Stop" if running else "Start")
        self.start_button.setStyleSheet(
            f"QPushButton {{ background: {'#8a2b2b' if running else '#2b6a3f'}; color: white; border-radius: 4px; }}"
            "QPushButton:disabled { background: #3a3f47; color: #777; }")
        self.start_button.setEnabled(running or (not busy and has_model))
        for widget in (self.model_combo, self.open_model_button, self.codebooks_combo, self.kv_combo):
            widget.setEnabled(not busy)
        self.codebooks_combo.setEnabled(not busy and self.codebooks_combo.count() > 1)
        # These need a new session: change them while stopped. Devices move while streaming.
        for widget in (self.source_combo, self.chunk_combo):
            widget.setEnabled(not running and not busy)
            widget.setToolTip("Stop to change" if running else "")
        self.lowest_latency_check.setEnabled(not running and not busy)
        if self.lowest_latency_check.isChecked():  # the preset streams 80 ms chunks
            self.chunk_combo.setEnabled(False)
            self.chunk_combo.setToolTip("Lowest latency streams 80 ms chunks: untick it to choose")
        for widget in (self.output_combo, self.refresh_devices_button):
            widget.setEnabled(not busy)
        self.input_combo.setEnabled(not busy and self.source_combo.currentData() == "mic")
        self.record_button.setEnabled(not busy)
        self.classic_check.setEnabled(not busy)  # on or off while streaming too
        for mode, _, _ in CLASSIC_LABELS:
            self.monitor_buttons[mode].setEnabled(self.classic_check.isChecked())
        self.int8_button.setEnabled(int8_blocker is None)
        self.int8_menu.menuAction().setEnabled(int8_blocker is None)
        self.int8_button.setToolTip(int8_blocker or INT8_BUTTON_TIP)

    def set_codebook_choices(self, choices: tuple[int, ...], current: int, codebook_size: int | None) -> None:
        combo = self.codebooks_combo
        combo.blockSignals(True)
        combo.clear()
        for k in choices:
            combo.addItem(codebook_label(k, codebook_size), k)
        index = combo.findData(current)
        combo.setCurrentIndex(index if index >= 0 else combo.count() - 1)
        combo.blockSignals(False)

    def select_data(self, combo: QComboBox, value) -> bool:
        index = combo.findData(value)
        if index < 0:
            return False
        combo.blockSignals(True)
        combo.setCurrentIndex(index)
        combo.blockSignals(False)
        return True

    def set_monitor(self, mode: str) -> None:
        button = self.monitor_buttons.get(mode)
        if button is not None and not button.isChecked():
            button.setChecked(True)

    def kv_window(self) -> int | None:
        return self.kv_combo.currentData() or None

    def set_note(self, label: QLabel, text: str | None, colour: str | None = None) -> None:
        label.setText(text or "")
        label.setStyleSheet(f"color: {colour or theme.MUTED}; font-size: 8.5pt;")
        label.setVisible(bool(text))
