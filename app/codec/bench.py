"""`mimi-live bench`: the model card's naive loop and the app's codec settings, on the same input, in one run.

Frames are processed back to back (not paced by a clock), so minutes of session take less time
than they would live. Each side reports per-frame encode/decode/total times (p50/p95/p99), the
real-time factor, the KV length at the end, process memory (before, 12 s in, at the end), and the
CPU seconds it burnt per frame (what is left of the machine for the GUI and the audio callbacks).
A third run pipelines the app's codec (encoder a frame ahead on its own thread, half the threads
each): the throughput files get; a live chunk's own latency is the sequential one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort
import psutil

from app.codec.contract import model_files
from app.codec.int8_copy import make_int8
from app.codec.measure import Codec, bench_input, stream
from app.codec.pipeline import pipelined, threads_per_direction
from app.codec.spec import parse_state_spec
from app.codec.streaming import StreamingCodec
from app.codec.tuning import tuned_threads
from app.config import DEFAULT_KV_WINDOW, FRAME_MS, FRAME_RATE_HZ, FRAME_SIZE
from app.units import percentiles

FRAMES_PER_MINUTE = int(60 * FRAME_RATE_HZ)
# Memory growth is counted from here: 12 s in, the app's KV caches have reached their window.
SETTLED_FRAME = 150


class NaiveLoop:
    """The model card's loop: default session options, numpy feeds, the cache grows without bound."""

    def __init__(self, folder: Path):
        encoder_path, decoder_path, spec_path = model_files(Path(folder))
        spec = parse_state_spec(spec_path)
        self.encoder = ort.InferenceSession(str(encoder_path), providers=["CPUExecutionProvider"])
        self.decoder = ort.InferenceSession(str(decoder_path), providers=["CPUExecutionProvider"])
        self.enc_state = self._initial(self.encoder, spec.encoder)
        self.dec_state = self._initial(self.decoder, spec.decoder)
        self.last_encode_ms = self.last_decode_ms = 0.0

    @staticmethod
    def _initial(session: ort.InferenceSession, convs) -> dict[str, np.ndarray]:
        state = {c.input_name: np.zeros((1, c.channels, c.temporal), np.float32) for c in convs}
        for meta in session.get_inputs():
            if meta.name.startswith("past_key") or meta.name.startswith("past_value"):
                heads, dim = meta.shape[1], meta.shape[3]
                state[meta.name] = np.zeros((1, heads, 0, dim), np.float32)
        return state

    @staticmethod
    def _step(session: ort.InferenceSession, first: str, value: np.ndarray, state: dict) -> np.ndarray:
        outputs = session.run(None, {first: value, **state})
        names = [o.name for o in session.get_outputs()]
        for name, array in zip(names[1:], outputs[1:], strict=False):
            state["past_" + name[len("present_"):]] = array
        return outputs[0]

    def encode(self, pcm: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        codes = self._step(self.encoder, "input_values", pcm[None, None], self.enc_state)
        self.last_encode_ms = (time.perf_counter() - started) * 1000
        return codes[0]

    def decode(self, codes: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        audio = self._step(self.decoder, "audio_codes", codes[None], self.dec_state)
        self.last_decode_ms = (time.perf_counter() - started) * 1000
        return audio[0, 0]

    @property
    def kv_length(self) -> tuple[int, int]:
        return self.enc_state["past_key_0"].shape[2], self.dec_state["past_key_0"].shape[2]


def _quantiles(values: np.ndarray) -> dict[str, float]:
    return percentiles(values, (50, 95, 99), digits=2)


class BenchCodec(Codec, Protocol):
    """A codec whose KV length can be read: StreamingCodec, or the naive loop."""

    @property
    def kv_length(self) -> tuple[int, int]: ...


def run_side(make: Callable[[], BenchCodec], pcm: np.ndarray) -> dict:
    """Streams `pcm` frame by frame through what `make()` builds; returns its statistics."""
    process = psutil.Process()
    rss_start = process.memory_info().rss
    codec = make()
    frames = len(pcm) // FRAME_SIZE
    encode_ms, decode_ms = np.zeros(frames), np.zeros(frames)
    settled = min(SETTLED_FRAME, frames - 1)
    rss_settled = 0
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    for i, step in enumerate(stream(codec, pcm[: frames * FRAME_SIZE], FRAME_SIZE)):
        encode_ms[i], decode_ms[i] = step.encode_ms, step.decode_ms
        if i == settled:
            rss_settled = process.memory_info().rss
    cpu_s, wall_s = time.process_time() - cpu_start, time.perf_counter() - wall_start
    total = encode_ms + decode_ms
    minutes = [total[m * FRAMES_PER_MINUTE : (m + 1) * FRAMES_PER_MINUTE]
               for m in range(-(-frames // FRAMES_PER_MINUTE))]
    return {
        "frames": frames,
        "encode_ms": _quantiles(encode_ms),
        "decode_ms": _quantiles(decode_ms),
        "total_ms": _quantiles(total),
        "total_ms_p50_by_minute": [round(float(np.median(m)), 2) for m in minutes if len(m)],
        "rtf": round(float(total.mean()) / FRAME_MS, 3),
        "kv_length_end": list(codec.kv_length),
        "rss_mb": {"start": round(rss_start / 1e6, 1), "after_warmup": round(rss_settled / 1e6, 1),
                   "end": round(process.memory_info().rss / 1e6, 1)},
        "cpu_s_per_frame": round(cpu_s / frames, 4),
        "wall_s": round(wall_s, 1),
        "wall_ms_per_frame": round(wall_s * 1000 / frames, 2),
    }


def run_pipelined(make: Callable[[], StreamingCodec], pcm: np.ndarray) -> dict:
    """Throughput with the encoder a frame ahead on its own thread (files, not live: see pipeline)."""
    codec = make()
    frames = len(pcm) // FRAME_SIZE
    chunks = (pcm[i * FRAME_SIZE : (i + 1) * FRAME_SIZE] for i in range(frames))
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    times = np.array([(enc, dec) for _, _, enc, dec in pipelined(codec, chunks)])
    cpu_s, wall_s = time.process_time() - cpu_start, time.perf_counter() - wall_start
    return {
        "frames": frames,
        "threads_per_direction": codec.threads,
        "encode_ms": _quantiles(times[:, 0]),
        "decode_ms": _quantiles(times[:, 1]),
        "wall_ms_per_frame": round(wall_s * 1000 / frames, 2),
        "rtf": round(wall_s * 1000 / frames / FRAME_MS, 3),
        "cpu_s_per_frame": round(cpu_s / frames, 4),
    }


def run_bench(
    folder: Path, frames: int, threads: int | None = None, kv_window: int | None = DEFAULT_KV_WINDOW,
    int8: str | None = None, naive: bool = True,
) -> dict:
    """Naive loop first, then the app's settings (and its int8 copy if asked), on the same input.

    `int8` is None, "encoder+decoder" or "decoder": the local int8 copy (made once, see quantize).
    `naive` False leaves the naive loop out (long sessions: its growing cache makes it crawl).
    """
    pcm = bench_input(frames)
    tuned = threads is None
    threads = threads or tuned_threads(folder)
    settings: dict[str, object] = {"threads": threads, "threads_tuned": tuned, "kv_window": kv_window,
                                   "spinning": False}

    def app_codec(model: Path, threads: int = threads) -> StreamingCodec:
        codec = StreamingCodec(model, threads=threads, kv_window=kv_window)
        if model == folder:  # the settings are the float model's (an int8 copy has nothing left to rewrite)
            settings.update(kv_slack=codec.kv_slack, graph_rewrite=list(codec.rewritten))
        return codec

    baseline = run_side(lambda: NaiveLoop(folder), pcm) if naive else None
    app = run_side(lambda: app_codec(folder), pcm)
    piped = run_pipelined(lambda: app_codec(folder, threads_per_direction(threads)), pcm)
    first, last = slice(0, FRAMES_PER_MINUTE), slice(max(0, frames - FRAMES_PER_MINUTE), frames)
    result = {
        "model": str(folder),
        "frames": frames,
        "audio_s": frames * FRAME_MS / 1000,
        "app_settings": settings,
        "naive": baseline,
        "app": app,
        "app_pipelined": piped,
        "app_last_vs_first_minute": round(app["total_ms_p50_by_minute"][-1] / app["total_ms_p50_by_minute"][0], 3),
        "app_rss_growth_mb": round(app["rss_mb"]["end"] - app["rss_mb"]["after_warmup"], 1),
        "note": f"first minute = frames {first.start}..{first.stop - 1}, last = {last.start}..{last.stop - 1}",
    }
    if baseline is not None:
        result["speedup_p50"] = round(baseline["total_ms"]["p50"] / app["total_ms"]["p50"], 2)
        result["speedup_first_minute"] = _ratio(baseline, app, 0)
        result["speedup_last_minute"] = _ratio(baseline, app, -1)
    if int8 is not None:
        int8_folder, quality = make_int8(folder, parts=int8)
        side = run_side(lambda: app_codec(int8_folder), pcm)
        result["app_int8"] = {**side, "folder": str(int8_folder), "parts": quality.parts,
                              "snr_same_codes_db": quality.snr_same_codes_db,
                              "snr_end_to_end_db": quality.snr_end_to_end_db,
                              "codes_agreement": quality.codes_agreement}
        if baseline is not None:
            result["int8_speedup_p50"] = round(baseline["total_ms"]["p50"] / side["total_ms"]["p50"], 2)
            result["int8_speedup_first_minute"] = _ratio(baseline, side, 0)
            result["int8_speedup_last_minute"] = _ratio(baseline, side, -1)
    return result


def _ratio(naive: dict, app: dict, index: int) -> float:
    return round(naive["total_ms_p50_by_minute"][index] / app["total_ms_p50_by_minute"][index], 2)
