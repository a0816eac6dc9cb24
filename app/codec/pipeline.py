"""Encoder and decoder on two threads: chunk n decodes while chunk n + 1 encodes.

For audio that is already there (a file, a benchmark), this raises throughput: with one
intra-op thread per session, the two directions use two cores side by side instead of
taking turns on both. It does not shorten any one chunk's trip (its decode still waits
for its encode), so the live engine, which gets one chunk per 80 ms, does not use it.

The codec's two directions share nothing (separate sessions and states), so one
thread may encode while another decodes; ONNX Runtime releases the GIL while it runs.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable

import numpy as np

from .streaming import StreamingCodec

__all__ = ["pipelined", "threads_per_direction"]

_DONE = object()


def threads_per_direction(threads: int) -> int:
    """Intra-op threads for each session when `threads` would run one direction at a time:
    the two directions run side by side, so each gets half."""
    return max(1, threads // 2)


def pipelined(
    codec: StreamingCodec, chunks: Iterable[np.ndarray], depth: int = 2
) -> Generator[tuple[np.ndarray, np.ndarray, float, float], None, None]:
    """Yields (codes, audio, encode_ms, decode_ms) for each chunk, in order.

    The encoder runs up to `depth` chunks ahead on its own thread. An error on either side
    is raised here; leaving the loop early stops the encoder thread.
    """
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def encode_all() -> None:
        try:
            for chunk in chunks:
                codes = codec.encode(chunk)
                if not put((codes, codec.last_encode_ms)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(exc)
            return
        put(_DONE)

    encoder = threading.Thread(target=encode_all, name="mimi-encoder", daemon=True)
    encoder.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            codes, encode_ms = item
            audio = codec.decode(codes)
            yield codes, audio, encode_ms, codec.last_decode_ms
    finally:
        stop.set()
        encoder.join()
