"""Mimi Live: Kyutai's Mimi neural audio codec, streamed live through ONNX Runtime."""

__version__ = "0.1.0"
