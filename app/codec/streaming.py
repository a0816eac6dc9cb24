"""StreamingCodec: Mimi encode/decode over the published streaming ONNX models.

Each direction keeps its conv states and KV cache between calls, so a stream
can be fed in chunks of any whole number of 80 ms frames and gives the same
result as feeding it at once. Not thread-safe: call it from one worker thread.

The transformer KV caches are kept to the newest ``kv_window`` tokens (default
250, Mimi's trained context; cut back once they run ``kv_slack`` past it) so
cost stays flat over hours; the graphs' position layout is probed at load and
the window turns itself off (with ``kv_warning``) if the layout is not the one
the re-basing relies on. See ``kvwindow``.

Built on a loader thread. Without ``prepared`` that thread parses the model graphs
itself (first-use rewrites, the decoder inspection), holding the GIL for long
stretches; with a ``PreparedModel`` from ``prepare.prepare_model`` it only opens
onnxruntime sessions and runs the KV probe, and ``prepare_codebooks`` hands any
graph work to prepare's child process too.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..config import DEFAULT_KV_WINDOW, FRAME_RATE_HZ, FRAME_SIZE, SAMPLE_RATE_HZ
from .codebooks import decoder_with_zero_rows
from .contract import ModelContract, inspect_decoder, load_contract, model_files
from .errors import InputError, ModelContractError
from .graphopt import optimized_model_path
from .kvwindow import DEFAULT_KV_SLACK, KVWindow, PositionLayout, probe_positions
from .prepare import PreparedModel, prepare_model
from .quantize import repair_int8_copy
from .sessions import initial_state, load_remedy, open_session, reserve_cuts, session_options

__all__ = ["StreamingCodec"]

_PROBE_SEED = 20240


def _check_window(window: object) -> int | None:
    if window is None:
        return None
    if not isinstance(window, (int, np.integer)) or isinstance(window, bool) or window < 1:
        raise InputError(f"kv_window must be a positive number of tokens or None (grow), got {window!r}")
    return int(window)


class StreamingCodec:
    """Streaming Mimi codec: float32 24 kHz mono <-> int64 codes ``[k, frames]``."""

    sample_rate = SAMPLE_RATE_HZ
    frame_size = FRAME_SIZE

    def __init__(
        self, folder: Path | str, codebooks: int | None = None, threads: int | None = None,
        kv_window: int | None = DEFAULT_KV_WINDOW, kv_slack: int = DEFAULT_KV_SLACK, optimize: bool = True,
        prepared: PreparedModel | None = None,
    ) -> None:
        kv_window = _check_window(kv_window)
        if not isinstance(kv_slack, int) or isinstance(kv_slack, bool) or kv_slack < 0:
            raise InputError(f"kv_slack must be a non-negative number of tokens, got {kv_slack!r}")
        self._kv_slack = kv_slack
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise InputError(f"threads must be a positive integer or None, got {threads!r}")
        folder = Path(folder)
        sources = model_files(folder)[:2]
        self._optimize = optimize
        self._prepared = prepared = self._check_prepared(prepared, folder, codebooks)
        if prepared is not None:  # graphs chosen (and made) in prepare's child process
            encoder_path, decoder_path = prepared.encoder_path, prepared.decoder_path
        else:
            encoder_path, decoder_path = sources
            if optimize:  # the same graphs with the big strided convs as MatMuls (see graphopt)
                repair_int8_copy(folder)  # an int8 copy is derived: checked (made again if damaged) first
                encoder_path, decoder_path = optimized_model_path(encoder_path), optimized_model_path(decoder_path)
        # Which of (encoder, decoder) run the rewritten graph.
        self.rewritten: tuple[bool, bool] = (
            encoder_path.resolve() != sources[0].resolve(), decoder_path.resolve() != sources[1].resolve()
        )
        self._decoder_path = decoder_path  # what runs: the rewritten copy when there is one
        self.threads: int | None = threads  # intra-op threads per session (None: onnxruntime's default)
        self._options = session_options(threads)
        self._encoder = open_session(encoder_path, self._options, load_remedy(encoder_path))
        full_decoder = open_session(decoder_path, self._options, load_remedy(decoder_path))
        inspect = prepared.inspection if prepared is not None else inspect_decoder
        self.contract: ModelContract = load_contract(folder, self._encoder, full_decoder, inspect)

        c = self.contract
        self.max_codebooks: int = c.num_codebooks
        if c.zero_row_problem is None and c.codebook_size is not None:
            self.codebook_choices: tuple[int, ...] = tuple(range(1, c.num_codebooks + 1))
            self.codebook_note: str | None = None
        else:
            self.codebook_choices = (c.num_codebooks,)
            self.codebook_note = f"only {c.num_codebooks} codebooks available: {c.zero_row_problem}"
        # Decoder sessions keyed by "uses the zero-row edit", loaded on first use.
        self._decoders: dict[bool, ort.InferenceSession] = {False: full_decoder}

        enc_shapes = {s.input_name: s.shape for s in c.spec.encoder}
        dec_shapes = {s.input_name: s.shape for s in c.spec.decoder}
        self._enc_state = initial_state(c.encoder_inputs, c.encoder_outputs, c, enc_shapes)
        self._dec_state = initial_state(c.decoder_inputs, c.decoder_outputs, c, dec_shapes)
        self._kv_window = kv_window
        self._enc_window, self._dec_window = self._probe_windows(full_decoder, kv_window)
        reserve_cuts(self._enc_window, self._enc_state, c.kv_heads)
        reserve_cuts(self._dec_window, self._dec_state, c.kv_heads)
        self.last_encode_ms = 0.0
        self.last_decode_ms = 0.0
        self.num_codebooks: int = c.num_codebooks
        self._decoder = full_decoder
        self.set_codebooks(c.num_codebooks if codebooks is None else codebooks)
        if self.num_codebooks < self.max_codebooks:
            # Only needed again if k goes back to K; a full-size decoder is ~100-200 MB.
            del self._decoders[False]

    def _check_prepared(
        self, prepared: PreparedModel | None, folder: Path, codebooks: int | None
    ) -> PreparedModel | None:
        if prepared is None:
            return None
        if not isinstance(prepared, PreparedModel):
            raise InputError(f"prepared must be a PreparedModel from prepare_model, got {type(prepared).__name__}")
        if prepared.folder != folder.resolve() or prepared.optimize != self._optimize:
            raise InputError(
                f"prepared is for {prepared.folder} (optimize={prepared.optimize}), "
                f"not {folder.resolve()} (optimize={self._optimize}); prepare this model"
            )
        if not prepared.is_current():  # its files changed since: prepare again (in the child)
            prepared = prepare_model(folder, codebooks, optimize=self._optimize)
        return prepared

    @property
    def prepared(self) -> PreparedModel | None:
        """What the codec was built from when given a PreparedModel (None: it read the graphs itself)."""
        return self._prepared

    def _zero_row_path(self, codebooks: int) -> Path:
        """The zero-row decoder of the graph that runs: made here, or in prepare's child if prepared."""
        prepared = self._prepared
        if prepared is None:
            return decoder_with_zero_rows(self._decoder_path)
        if prepared.zero_row_decoder is None or not prepared.zero_row_decoder.is_file():
            prepared = prepare_model(prepared.folder, codebooks, optimize=prepared.optimize)
            if prepared.decoder_path != self._decoder_path or prepared.zero_row_decoder is None:
                raise ModelContractError(
                    f"{self._decoder_path.name}: the model changed on disk since it was loaded; load it again"
                )
            self._prepared = prepared
        return prepared.zero_row_decoder

    def _probe_windows(self, decoder: ort.InferenceSession, window: int | None) -> tuple[KVWindow, KVWindow]:
        """One frame through each graph, empty vs short random cache; the codec's state is not touched."""
        c = self.contract
        rng = np.random.default_rng(_PROBE_SEED)
        pcm = (0.1 * rng.standard_normal((1, 1, FRAME_SIZE))).astype(np.float32)
        codes = rng.integers(0, c.codebook_size or 1, size=(1, c.num_codebooks, 1), dtype=np.int64)
        windows = []
        for session, first, value, state, path in (
            (self._encoder, "input_values", pcm, self._enc_state, c.encoder_path),
            (decoder, "audio_codes", codes, self._dec_state, c.decoder_path),
        ):
            layout = probe_positions(
                session, first, value, state.conv_feeds(), list(state.kv_names), c.kv_heads, c.kv_head_dim
            )
            windows.append(KVWindow(window, layout, c.kv_head_dim, model_name=path.name, slack=self._kv_slack))
        return windows[0], windows[1]

    # -- configuration -------------------------------------------------

    def set_kv_window(self, window: int | None) -> None:
        """Change the KV window (tokens, None = grow); applies from the next encode/decode call.

        Shrinking trims the stored caches at the start of the next call; growing
        lets them grow back up to the new size. The stream carries on.
        """
        window = _check_window(window)
        self._enc_window.window = self._dec_window.window = window
        self._kv_window = window

    @property
    def kv_window(self) -> int | None:
        """The requested KV window in tokens (None = grow); see kv_warning for whether it applies."""
        return self._kv_window

    @property
    def kv_slack(self) -> int:
        """Tokens a cache may run past the window before it is cut back to it."""
        return self._kv_slack

    @property
    def position_layouts(self) -> tuple[PositionLayout, PositionLayout]:
        """(encoder, decoder) rotary position layouts found by the load-time probe."""
        return self._enc_window.layout, self._dec_window.layout

    @property
    def kv_warning(self) -> str | None:
        """Why the requested KV window is not applied (per model file), or None."""
        warnings = [w for w in (self._enc_window.warning, self._dec_window.warning) if w]
        return "; ".join(warnings) if warnings else None

    def set_codebooks(self, codebooks: int) -> None:
        """Switch the active codebook count k; the stream state carries on.

        k < K runs the zero-row decoder (built and cached on first use). The
        decoder state stays valid because both decoders share their state I/O.
        Call prepare_codebooks(k) first from another thread to make this instant.
        """
        self._decoder = self.prepare_codebooks(codebooks)
        self.num_codebooks = int(codebooks)

    def prepare_codebooks(self, codebooks: int) -> ort.InferenceSession:
        """Loads the decoder session k needs (slow the first time); does not switch to it.

        Safe to call from a loader thread while another thread streams: it only adds a session.
        """
        edited = self.check_codebooks(codebooks) < self.max_codebooks
        if edited not in self._decoders:
            path, remedy = self.decoder_graph(codebooks)
            self._decoders[edited] = open_session(path, self._options, remedy)
        return self._decoders[edited]

    def check_codebooks(self, codebooks: object) -> int:
        """`codebooks` as an int if this model can decode with that many; InputError saying the choices if not."""
        if not isinstance(codebooks, (int, np.integer)) or isinstance(codebooks, bool):
            raise InputError(f"codebooks must be an integer, got {codebooks!r}")
        if codebooks not in self.codebook_choices:
            first, last = self.codebook_choices[0], self.codebook_choices[-1]
            choices = str(last) if first == last else f"{first}..{last}"
            extra = f" ({self.codebook_note})" if self.codebook_note else ""
            raise InputError(f"{codebooks} codebooks is not available for this model: choose {choices}{extra}")
        return int(codebooks)

    def decoder_graph(self, codebooks: int) -> tuple[Path, str]:
        """The decoder graph `codebooks` runs on (the zero-row edit below the maximum: made on first
        use, slow) and what to do if it will not load."""
        if self.check_codebooks(codebooks) < self.max_codebooks:
            path = self._zero_row_path(int(codebooks))
            return path, f"delete {path.parent} to rebuild it"
        return self._decoder_path, load_remedy(self._decoder_path)  # the graph loaded at start

    def warm_codebooks(self, codebooks: int) -> None:
        """Runs the decoder k needs once on a copy of the live decoder state and drops the result,
        so its first real call is not a cold one (allocations: a 300 ms stall was seen here).

        Loader thread: the stream's state is only read, never changed.
        """
        session = self.prepare_codebooks(codebooks)
        codes = np.zeros((1, self.max_codebooks, 1), dtype=np.int64)
        codes[0, codebooks:] = self.contract.codebook_size or 0  # dropped codebooks: the zero row
        session.run(None, {"audio_codes": codes, **dict(self._dec_state.values)})

    @property
    def bitrate_bps(self) -> float | None:
        """Code bitrate at the active codebook count (None if the codebook size is unknown)."""
        return self.bitrate_at(self.num_codebooks)

    def bitrate_at(self, codebooks: int) -> float | None:
        """Code bitrate with `codebooks` codebooks (None if the codebook size is unknown)."""
        size = self.contract.codebook_size
        if size is None:
            return None
        return codebooks * math.log2(size) * FRAME_RATE_HZ

    def half_codebooks(self, codebooks: int | None = None) -> int | None:
        """Half of `codebooks` (default: the active count), at least 1, if this model can decode
        with it and it is fewer: the instant replay's comparison."""
        codebooks = self.num_codebooks if codebooks is None else codebooks
        fewer = max(1, codebooks // 2)
        return fewer if fewer < codebooks and fewer in self.codebook_choices else None

    @property
    def kv_length(self) -> tuple[int, int]:
        """(encoder, decoder) KV cache length in tokens the next call attends to (at most window + slack)."""
        return self._enc_state.kv_tokens(self._enc_window), self._dec_state.kv_tokens(self._dec_window)

    @property
    def kv_cut_due(self) -> bool:
        """Whether the last call left a KV cut to make (see cut_kv_caches)."""
        return self._enc_state.cut_due(self._enc_window) or self._dec_state.cut_due(self._dec_window)

    def cut_kv_caches(self) -> None:
        """Makes now the KV cuts the last calls made due (one every slack/2 frames, ~2-5 ms per
        direction at full size), which the next encode/decode would otherwise make first: the live
        worker calls this once a chunk is in the speaker queue, so the cut takes place in the wait
        for the next frame, not on the audio's path. The outputs do not change either way."""
        self._enc_state.fit(self._enc_window)
        self._dec_state.fit(self._dec_window)

    def reset(self) -> None:
        """Start a new stream: zero conv states and empty KV caches in both directions."""
        self._enc_state.reset()
        self._dec_state.reset()

    # -- streaming -----------------------------------------------------

    def encode(self, pcm: np.ndarray) -> np.ndarray:
        """Encode 1-D float audio (a positive multiple of 1920 samples) to codes ``[k, frames]`` int64."""
        start = time.perf_counter()
        if not isinstance(pcm, np.ndarray):
            raise InputError(f"audio must be a numpy array, got {type(pcm).__name__}")
        if pcm.ndim != 1:
            raise InputError(f"audio must be 1-D mono samples, got shape {pcm.shape}")
        if pcm.dtype not in (np.float32, np.float64):
            raise InputError(f"audio must be float32 or float64 samples, got {pcm.dtype}")
        if pcm.size == 0 or pcm.size % FRAME_SIZE:
            raise InputError(
                f"audio length {pcm.size} is not a positive multiple of {FRAME_SIZE} samples (80 ms at 24 kHz); "
                "buffer whole frames before encoding"
            )
        if not np.isfinite(pcm).all():
            raise InputError("audio contains NaN or infinite samples")
        samples = np.ascontiguousarray(pcm, dtype=np.float32).reshape(1, 1, -1)
        state = self._enc_state
        state.fit(self._enc_window)
        outputs = self._encoder.run(None, {"input_values": samples, **state.values})
        state.update(outputs)
        self.last_encode_ms = (time.perf_counter() - start) * 1000.0
        return outputs[0][0, : self.num_codebooks]

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Decode integer codes ``[k, frames]`` to float32 audio of ``frames * 1920`` samples."""
        start = time.perf_counter()
        k, size = self.num_codebooks, self.contract.codebook_size
        if not isinstance(codes, np.ndarray):
            raise InputError(f"codes must be a numpy array, got {type(codes).__name__}")
        if codes.ndim != 2 or codes.shape[0] != k or codes.shape[1] == 0:
            raise InputError(f"codes must have shape [{k}, frames] with frames > 0, got {list(codes.shape)}")
        if not np.issubdtype(codes.dtype, np.integer):
            raise InputError(f"codes must be integers, got {codes.dtype}")
        low, high = int(codes.min()), int(codes.max())
        if low < 0 or (size is not None and high >= size):
            bound = f"[0, {size})" if size is not None else "non-negative"
            raise InputError(f"codes must be in {bound}, got values from {low} to {high}")
        if k == self.max_codebooks:
            full = np.ascontiguousarray(codes, dtype=np.int64)[None]
        else:
            # Dropped codebooks read the all-zero row the edit appended at index codebook_size.
            full = np.full((1, self.max_codebooks, codes.shape[1]), size, dtype=np.int64)
            full[0, :k] = codes
        state = self._dec_state
        state.fit(self._dec_window)
        outputs = self._decoder.run(None, {"audio_codes": full, **state.values})
        state.update(outputs)
        self.last_decode_ms = (time.perf_counter() - start) * 1000.0
        return outputs[0][0, 0]
