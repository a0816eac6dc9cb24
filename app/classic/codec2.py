"""Codec2 (pycodec2) at 1200 or 3200 bps: 24 kHz -> 8 kHz -> encode/decode -> 24 kHz, streaming.

pycodec2's encode()/decode() take exactly one frame per call: longer input is silently mangled
(encode codes the first frame only; decode returns uninitialised samples after it), so frames
are fed one by one. They also read the array's memory as is, so each frame is a contiguous copy.

Delay, in 24 kHz samples (see `StreamingCodec` for the framing): one frame of input buffering,
plus each resampler's look-ahead, plus Codec2's own delay:

* the resamplers run soxr one-shot over a window that reaches half soxr's filter length past
  the samples it hands out (`WindowedResampler`): the same samples as resampling the whole
  signal at once (to 1e-7), held back only that half length. soxr.ResampleStream holds samples
  back in bursts of its internal blocks instead: 40 ms each way at LQ, 75 ms at MQ;
* Codec2 renders each 10 ms analysis frame centred half a pitch window (160 samples at
  8 kHz) after the newest sample it analysed: the analysis window is centred at m_pitch/2 of a
  320-sample buffer (sine.c, dft_speech), the synthesis window of the same frame is centred one
  past the frame's last output sample (sine.c, make_synthesis_window). The same for 1200 and
  3200 (both 10 ms sub-frames, a 40 ms pitch window). Codec2 synthesises phases, so no waveform
  correlation can pin it; the energy centroids of tone bursts move by 160.7 (3200) and 162
  (1200) samples at 8 kHz, std 7-14 over 60 bursts.

Codec2 draws unvoiced phases from one random generator shared by every instance in the process
(a static in the C library, never reset): the bit stream is reproducible, the decoded noise of
unvoiced frames is not.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pycodec2
import soxr

from app.config import SAMPLE_RATE_HZ

from .base import StreamingCodec

__all__ = ["CODEC2_RATE_HZ", "Codec2Codec", "WindowedResampler", "filter_half_length"]

CODEC2_RATE_HZ = 8000
RATIO = SAMPLE_RATE_HZ // CODEC2_RATE_HZ  # 3
# Codec2's own delay at 8 kHz: m_pitch / 2 (M_PITCH_S 40 ms / 2), see the module docstring.
CODEC2_DELAY_8K = 160
# soxr MQ: flat to 3.5 kHz (-2.8 dB at 3.8), its half length 10 ms each way. LQ is -13 dB at
# 3.5 kHz (it cuts Codec2's top band: STOI 0.01-0.02 lower) for 2.5 ms each way.
RESAMPLE_QUALITY = "MQ"
# Filter taps below this fraction of the peak are left out of the window (-120 dB).
_SUPPORT_FLOOR = 1e-6


@functools.cache
def filter_half_length(in_rate: int, out_rate: int, quality: str) -> int:
    """Input samples soxr's filter reaches either side of an output sample (from its impulse response)."""
    n = 8 * max(in_rate, out_rate) // min(in_rate, out_rate) * 100
    impulse = np.zeros(n, np.float32)
    impulse[n // 2] = 1.0
    response = np.abs(soxr.resample(impulse, in_rate, out_rate, quality=quality))
    reach = np.nonzero(response > _SUPPORT_FLOOR * response.max())[0]
    centre = n // 2 * out_rate / in_rate
    out_reach = max(centre - reach[0], reach[-1] - centre)
    return int(np.ceil(out_reach * in_rate / out_rate)) + 1


class WindowedResampler:
    """soxr over a sliding window: blocks of a fixed size in, `lookahead` input samples late out.

    Each block is resampled together with the 2 * lookahead input samples before it, and the
    output of the middle is kept: every kept sample has soxr's whole filter inside the window, so
    it equals what resampling the whole signal at once gives. The first outputs are of the
    (silent) time before the stream began: the output is `lookahead` input samples late.
    """

    def __init__(self, in_rate: int, out_rate: int, block: int, quality: str):
        step = in_rate // math.gcd(in_rate, out_rate)  # input samples per whole number of outputs
        half = filter_half_length(in_rate, out_rate, quality)
        self.lookahead = -(-half // step) * step
        if block % step:
            raise ValueError(f"a {in_rate} -> {out_rate} Hz block must be a multiple of {step}, not {block}")
        self.in_rate, self.out_rate, self.block, self.quality = in_rate, out_rate, block, quality
        self._window = np.zeros(2 * self.lookahead + block, np.float32)
        self._skip = self.lookahead * out_rate // in_rate
        self._count = block * out_rate // in_rate

    def process(self, block: np.ndarray) -> np.ndarray:
        window = self._window
        window[: -self.block] = window[self.block :]
        window[-self.block :] = block
        out = soxr.resample(window, self.in_rate, self.out_rate, quality=self.quality)
        return out[self._skip : self._skip + self._count]


def _to_int16(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(audio * 32767.0), -32768, 32767).astype(np.int16)


class Codec2Codec(StreamingCodec):
    """One Codec2 mode (1200 or 3200 bps); separate encoder and decoder states, as over a link."""

    def __init__(self, bps: int, key: str = "", resample_quality: str = RESAMPLE_QUALITY):
        self.bps = bps
        self.key = key or f"codec2-{bps}"
        self.resample_quality = resample_quality
        probe = pycodec2.Codec2(bps)
        self.frame_8k = int(probe.samples_per_frame())  # 320 at 1200, 160 at 3200
        self.frame_bytes = int(probe.bytes_per_frame())  # 6 at 1200, 8 at 3200
        self.block = self.frame_8k * RATIO  # one frame at 24 kHz: each block is one Codec2 frame
        self._open()
        self.codec_delay = self._down.lookahead + RATIO * (self._up.lookahead + CODEC2_DELAY_8K)
        super().__init__()

    def _open(self) -> None:
        self._encoder = pycodec2.Codec2(self.bps)
        self._decoder = pycodec2.Codec2(self.bps)
        self._down = WindowedResampler(SAMPLE_RATE_HZ, CODEC2_RATE_HZ, self.block, self.resample_quality)
        self._up = WindowedResampler(CODEC2_RATE_HZ, SAMPLE_RATE_HZ, self.frame_8k, self.resample_quality)

    def _step(self, block: np.ndarray) -> np.ndarray:
        frame = _to_int16(self._down.process(block))  # a fresh, contiguous array, as pycodec2 needs
        bits = self._encoder.encode(frame)
        self._note_payload(bits)
        self.samples_encoded += self.block
        decoded = self._decoder.decode(bits)[: self.frame_8k]
        return self._up.process(decoded.astype(np.float32) / 32768.0)
