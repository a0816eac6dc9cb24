"""Stand-in exporter: ONNX pairs in the published streaming contract from transformers' MimiModel.

Needs the `export` extra (torch, transformers, onnx); nothing at run time imports this package.
"""

from app.codec.export.build import ExportError, export_pair

__all__ = ["ExportError", "export_pair"]
