"""The first-run page shown instead of the plots while there is no model (GUI thread)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.ui import theme

FIRST_DOWNLOAD = "streaming-8cb-fp16"  # smallest published variant, identical output to fp32
TEXT_MAX_WIDTH = 760  # px: lines longer than this are hard to read
WELCOME_HTML = f"""
<h2 style="color:{theme.TEXT}">No Mimi model yet</h2>
<p>Mimi Live runs Kyutai's Mimi codec from a <b>model folder</b> holding
<code>encoder_model.onnx</code>, <code>decoder_model.onnx</code> and <code>state_spec.txt</code>
(the streaming ONNX export published as <code>BMekiker/mimi-onnx-streaming</code>).</p>
<p><b>Have one?</b> Click <b>Open model folder…</b> (Ctrl+O) on the left and pick it.
Published variants already in your Hugging Face cache show up in the Variant list by themselves.</p>
<p><b>Have a network?</b> Click <b>Download</b> below (the fp16 variant with 8 codebooks,
~222 MB), or pick any variant marked "download" in the Variant list.</p>
<p><b>No network?</b> Make a stand-in with the same architecture and cost (random weights: it
sounds like noise, but every plot works):</p>
<pre style="color:{theme.ACCENT}">pip install -e ".[export]"
mimi-live export stand-ins/streaming-8cb --random-weights --codebooks 8</pre>
<p>then open <code>stand-ins/streaming-8cb</code>.</p>
"""


class WelcomePage(QScrollArea):
    """The instructions and the Download button, scrolled when the window is too small for them.

    The text sits in a horizontal box between two stretches rather than in an aligned layout
    item: an aligned word-wrapped label is given the height it needs at the layout's full width,
    not at its own (narrower) width, which cut off the end of the page. The box asks the label's
    heightForWidth at the width it really gets, and the scroll area follows that height.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.label = QLabel(WELCOME_HTML)
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.label.setContentsMargins(30, 20, 30, 10)
        self.label.setMaximumWidth(TEXT_MAX_WIDTH)
        self.download_button = QPushButton(f"Download {FIRST_DOWNLOAD} (~222 MB)")
        content = QWidget()
        column = QVBoxLayout(content)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.label, 100)  # takes all the width up to its maximum
        row.addStretch(1)
        column.addLayout(row)
        column.addWidget(self.download_button, 0, Qt.AlignmentFlag.AlignHCenter)
        column.addStretch(1)
        self.setWidget(content)
