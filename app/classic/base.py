"""The streaming interface every classic path implements, and the framing that makes its delay exact.

A classic codec works in frames of its own (Codec2 40 or 20 ms at 8 kHz, Opus 20 ms), behind
resamplers and an encoder look-ahead that hold samples back, while the app feeds chunks of any
length and wants as many samples back. `StreamingCodec` reconciles the two:

* input is cut into fixed blocks of `block` samples (one codec frame at 24 kHz) and only whole
  blocks enter the codec, so everything downstream sees the same feed whatever the chunking;
* the output goes through a FIFO primed with `preroll` zeros, the most the pipeline ever lags
  behind the input, found once by running the real pipeline on silence (the lag depends on
  counts only, never on sample values), so a read never runs dry;
* the pipeline's own output is time-aligned with its input up to `codec_delay` (what the codec
  itself adds; what resamplers and Opus's look-ahead hold back is compensated inside it).

So `delay_samples = preroll + codec_delay`, constant from the first call, and the output does
not depend on how the input was chunked. Not thread-safe: call it from one thread.
"""

from __future__ import annotations

import zlib

import numpy as np

from app.config import FRAME_SIZE, SAMPLE_RATE_HZ

__all__ = ["StreamingCodec", "run_file"]

# Silence fed when measuring the pre-roll: the paths' lag is steady after their first frame or
# two; 2 s also covers a lag that comes and goes in a pattern (soxr's streams hold back in bursts).
PREROLL_PROBE_S = 2.0


class _Fifo:
    """A float32 queue over one buffer: grows only to the largest backlog it has held."""

    def __init__(self, capacity: int):
        self._buf = np.zeros(max(capacity, 1), np.float32)
        self._start = self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    def clear(self) -> None:
        self._start = self._end = 0

    def push(self, samples: np.ndarray) -> None:
        n = len(samples)
        if self._end + n > len(self._buf):
            held = len(self)
            if held + n > len(self._buf):
                grown = np.zeros(max(2 * len(self._buf), held + n), np.float32)
                grown[:held] = self._buf[self._start : self._end]
                self._buf = grown
            else:
                self._buf[:held] = self._buf[self._start : self._end]
            self._start, self._end = 0, held
        self._buf[self._end : self._end + n] = samples
        self._end += n

    def pop(self, n: int) -> np.ndarray:
        """The oldest `n` samples (a view, valid until the next push)."""
        out = self._buf[self._start : self._start + n]
        self._start += n
        if self._start == self._end:
            self._start = self._end = 0
        return out


class StreamingCodec:
    """Encode then decode, live: float32 mono 24 kHz in, as many samples out, `delay_samples` late.

    Subclasses set `block` and `codec_delay` and implement `_open()` (make fresh codec state) and
    `_step(block)` (one block in, whatever aligned output the pipeline released; each payload
    goes to `_note_payload`, the encoder's input is added to `samples_encoded`).
    """

    key: str = ""
    block: int = FRAME_SIZE  # 24 kHz samples the codec takes per step
    codec_delay: int = 0  # 24 kHz samples the codec itself puts between input and output

    def __init__(self) -> None:
        self.bytes_produced = self.samples_in = self.samples_encoded = self.payload_crc = 0
        self._open()
        self.preroll = self._measure_preroll()
        self.delay_samples = self.preroll + self.codec_delay
        self._input = _Fifo(self.block)
        self._output = _Fifo(self.preroll + 2 * FRAME_SIZE)
        self.reset()

    # -- what a path implements

    def _open(self) -> None:
        raise NotImplementedError

    def _step(self, block: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- the interface

    def reset(self) -> None:
        """Back to the state after construction: fresh codec, primed output, counters at zero."""
        self._open()
        self._input.clear()
        self._output.clear()
        self._output.push(np.zeros(self.preroll, np.float32))
        self.bytes_produced = 0  # payload bytes the encoder produced
        self.samples_in = 0  # samples passed to process()
        self.samples_encoded = 0  # of those, the ones the encoder has taken in (24 kHz samples)
        self.payload_crc = 0  # CRC-32 of every payload byte so far: the bit stream, in one number

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """`chunk` (any length) in; as many samples out, `delay_samples` behind (zeros at first)."""
        pcm = np.asarray(chunk, dtype=np.float32).reshape(-1)
        self.samples_in += len(pcm)
        offset = 0
        while offset < len(pcm):
            room = self.block - len(self._input)
            piece = pcm[offset : offset + room]
            offset += len(piece)
            self._input.push(piece)
            if len(self._input) == self.block:
                self._output.push(self._step(self._input.pop(self.block)))
        if len(self._output) < len(pcm):  # the pre-roll covers the worst lag: a broken invariant
            raise RuntimeError(f"{self.key}: output ran dry ({len(self._output)} < {len(pcm)}); pre-roll too short")
        return self._output.pop(len(pcm)).copy()

    def _note_payload(self, payload: bytes) -> None:
        self.bytes_produced += len(payload)
        self.payload_crc = zlib.crc32(payload, self.payload_crc)

    @property
    def measured_bps(self) -> float:
        """Payload bits per second of audio the encoder has taken in (0 before its first frame)."""
        if not self.samples_encoded:
            return 0.0
        return self.bytes_produced * 8 * SAMPLE_RATE_HZ / self.samples_encoded

    # -- the pre-roll

    def _measure_preroll(self) -> int:
        """The most input samples that can be waiting for output, over any chunking.

        Fed up to one sample short of the next block, the pipeline has released f(m) samples
        after m blocks while (m + 1) * block - 1 went in; the pre-roll is the worst of that.
        """
        blocks = int(PREROLL_PROBE_S * SAMPLE_RATE_HZ) // self.block
        silence = np.zeros(self.block, np.float32)
        released = worst = 0
        for m in range(blocks):
            worst = max(worst, (m + 1) * self.block - 1 - released)
            released += len(self._step(silence))
        return worst


def run_file(codec: StreamingCodec, audio: np.ndarray) -> np.ndarray:
    """A whole clip through `codec` (reset first), time-aligned with it and as long.

    Fed in 80 ms chunks as the app does, followed by `delay_samples` of silence to flush what
    the codec still holds; the first `delay_samples` of output (the lag) are cut off.
    """
    pcm = np.asarray(audio, dtype=np.float32).reshape(-1)
    codec.reset()
    delay = codec.delay_samples
    padded = np.concatenate([pcm, np.zeros(delay, np.float32)])
    out = [codec.process(padded[i : i + FRAME_SIZE]) for i in range(0, len(padded), FRAME_SIZE)]
    return np.concatenate(out)[delay : delay + len(pcm)] if out else np.zeros(0, np.float32)
