"""Mimi codec layer: model contract checks and streaming encode/decode over ONNX.

Knows nothing of audio devices or the UI. Names are imported lazily, so that
``import app.codec.spec`` (the exporter does) does not pull in onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CodecError": "errors",
    "ModelContractError": "errors",
    "InputError": "errors",
    "ConvStateSpec": "spec",
    "StateSpec": "spec",
    "parse_state_spec": "spec",
    "format_state_spec": "spec",
    "ModelContract": "contract",
    "load_contract": "contract",
    "model_files": "contract",
    "DecoderInspection": "contract",
    "inspect_decoder": "contract",
    "PreparedModel": "prepare",
    "PrepareError": "prepare",
    "prepare_model": "prepare",
    "CodebookEditUnsupported": "codebooks",
    "decoder_with_zero_rows": "codebooks",
    "StreamingCodec": "streaming",
    "PositionLayout": "kvwindow",
    "KVWindow": "kvwindow",
    "rotate_half": "kvwindow",
    "probe_positions": "kvwindow",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
