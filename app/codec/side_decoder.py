"""A second decoder stream over a codec's model, for codes decoded apart from the live stream.

The live codec's decoder belongs to the engine's worker; decoding stored codes again (the instant
replay's "Mimi at fewer codebooks") must neither touch its state nor share its intra-op thread
pool, or the live call would wait behind ours. So a side decoder opens its own onnxruntime session
on the same graph (one thread by default: the caller's own, whose priority it controls) and keeps
its own state, starting from silence.

Built and run on any thread but the worker; opening the session holds the GIL for a few ms at a
time, as any model load does.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .kvwindow import KVWindow
from .sessions import initial_state, open_session, reserve_cuts, session_options
from .streaming import StreamingCodec

__all__ = ["SideDecoder"]


class SideDecoder:
    """Decodes ``[k, frames]`` codes of `codec`'s model with `codebooks` codebooks, from a fresh state."""

    def __init__(self, codec: StreamingCodec, codebooks: int, threads: int = 1) -> None:
        self.codebooks = codec.check_codebooks(codebooks)
        c = codec.contract
        self._max_codebooks = codec.max_codebooks
        self._zero_row = c.codebook_size or 0  # the all-zero row the edit appended, for dropped codebooks
        path, remedy = codec.decoder_graph(self.codebooks)
        self._session = open_session(path, session_options(threads), remedy)
        shapes = {s.input_name: s.shape for s in c.spec.decoder}
        self._state = initial_state(c.decoder_inputs, c.decoder_outputs, c, shapes)
        self._window = KVWindow(codec.kv_window, codec.position_layouts[1], c.kv_head_dim,
                                model_name=path.name, slack=codec.kv_slack)
        reserve_cuts(self._window, self._state, c.kv_heads)

    def reset(self) -> None:
        """Back to silence: the next codes start a new stream."""
        self._state.reset()

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """float32 audio of ``frames * 1920`` samples for codes with at least `codebooks` rows (the
        rest are ignored, as a live switch to fewer codebooks ignores them)."""
        if codes.ndim != 2 or codes.shape[0] < self.codebooks or codes.shape[1] == 0:
            raise InputError(f"codes must have shape [>= {self.codebooks}, frames > 0], got {list(codes.shape)}")
        full = np.full((1, self._max_codebooks, codes.shape[1]), self._zero_row, dtype=np.int64)
        full[0, : self.codebooks] = codes[: self.codebooks]
        state = self._state
        state.fit(self._window)
        outputs = self._session.run(None, {"audio_codes": full, **state.values})
        state.update(outputs)
        return outputs[0][0, 0]
