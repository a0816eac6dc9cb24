"""The pieces a streaming direction is made of (any thread that owns them): the onnxruntime
session, opened with the options every live session uses, and the past_* state fed back
between calls. StreamingCodec (streaming.py) holds one per direction; a side decoder
(side_decoder.py) holds its own over the same model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from app.errors import one_line

from ..config import data_dir
from .contract import ModelContract
from .errors import ModelContractError
from .kvwindow import KVWindow

__all__ = ["StreamState", "initial_state", "load_remedy", "open_session", "reserve_cuts", "session_options"]


@dataclass
class StreamState:
    """The past_* tensors of one direction; present outputs replace them after each call."""

    initial: dict[str, np.ndarray]
    # Position in the session outputs -> past input it feeds next call.
    feedback: tuple[tuple[int, str], ...]
    # Position in the session outputs where present_key_0 starts (KV outputs run to the end).
    kv_start: int = 0
    values: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for array in self.initial.values():
            array.flags.writeable = False  # shared by every reset; never mutated
        self.kv_names = tuple(name for _, name in self.feedback[self.kv_start - 1 :])
        self.reset()

    def reset(self) -> None:
        self.values = dict(self.initial)

    def update(self, outputs: list[np.ndarray]) -> None:
        """Keeps a call's present_* outputs as the next call's past. A cut they make due is left to
        `fit`: the next call makes it first, or the caller earlier, when it has time to spare."""
        # Outputs are fresh arrays owned by us: keep them as they are, no copy.
        for index, name in self.feedback:
            self.values[name] = outputs[index]

    def fit(self, window: KVWindow) -> None:
        """Cuts the stored past now if it is longer than the window allows (window + slack)."""
        if self.cut_due(window):
            kv = window.trim([self.values[name] for name in self.kv_names])
            self.values.update(zip(self.kv_names, kv, strict=False))

    def cut_due(self, window: KVWindow) -> bool:
        limit = window.limit
        return limit is not None and self._stored_tokens() > limit

    def kv_tokens(self, window: KVWindow) -> int:
        """The cache length the next call attends to (after the cut `fit` makes first, if one is due)."""
        return int(window.effective or 0) if self.cut_due(window) else self._stored_tokens()

    def _stored_tokens(self) -> int:
        return int(self.values[self.kv_names[0]].shape[2]) if self.kv_names else 0

    def conv_feeds(self) -> dict[str, np.ndarray]:
        kv = set(self.kv_names)
        return {name: value for name, value in self.initial.items() if name not in kv}


def reserve_cuts(window: KVWindow, state: StreamState, heads: int) -> None:
    """Makes `window` ready to cut `state`'s caches (KVWindow.reserve), before any stream runs."""
    if state.kv_names:
        window.reserve(len(state.kv_names), heads, state.initial[state.kv_names[0]].dtype)


def session_options(threads: int | None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    # One op at a time: the graphs are a chain, and parallel branches only add jitter.
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    # Idle intra-op threads would otherwise spin for a while after each op, taking CPU from the
    # audio server, the callbacks and the GUI on small machines.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def load_remedy(path: Path) -> str:
    """What to do about a graph that will not load: the model is the user's; a copy the app
    derived in its data folder is the app's (deleting it makes it again)."""
    try:
        Path(path).resolve().relative_to(data_dir().resolve())
    except ValueError:
        return "re-download the model folder"
    return f"delete {Path(path).parent} (the app makes it again from the model)"


def open_session(path: Path, options: ort.SessionOptions, remedy: str) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelContractError(f"{path.name}: onnxruntime cannot load it ({one_line(exc)}); {remedy}") from exc


def initial_state(
    input_names: tuple[str, ...], output_names: tuple[str, ...], contract: ModelContract, shapes: dict[str, tuple]
) -> StreamState:
    kv_shape = (1, contract.kv_heads, 0, contract.kv_head_dim)
    initial = {
        name: np.zeros(shapes.get(name, kv_shape), dtype=np.float32) for name in input_names[1:]
    }
    feedback = tuple(
        (index, "past_" + name[len("present_"):]) for index, name in enumerate(output_names) if index > 0
    )
    # The contract puts the KV outputs last, starting with present_key_0 (load_contract checked it).
    kv_start = output_names.index("present_key_0")
    return StreamState(initial=initial, feedback=feedback, kv_start=kv_start)
