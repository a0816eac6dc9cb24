"""Encoder and decoder on two threads: same codes and audio as taking turns, errors surface, no leftovers."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf

from app.cli import main
from app.codec import StreamingCodec
from app.codec.errors import InputError
from app.codec.pipeline import pipelined
from app.config import FRAME_SIZE, SAMPLE_RATE_HZ
from conftest import chirp_noise, model_dir


def chunks_of(pcm: np.ndarray, frames: int) -> list[np.ndarray]:
    size = frames * FRAME_SIZE
    return [pcm[i : i + size] for i in range(0, pcm.size, size)]


@pytest.mark.parametrize("frames_per_chunk", [1, 2])
def test_pipelined_equals_taking_turns(frames_per_chunk: int, rng: np.random.Generator) -> None:
    pcm = chirp_noise(rng, 24)
    turns, pipe = StreamingCodec(model_dir("tiny-8cb")), StreamingCodec(model_dir("tiny-8cb"))
    expected = [(c, turns.decode(c)) for c in (turns.encode(x) for x in chunks_of(pcm, frames_per_chunk))]
    got = list(pipelined(pipe, chunks_of(pcm, frames_per_chunk)))
    assert len(got) == len(expected)
    for (codes, audio, enc_ms, dec_ms), (want_codes, want_audio) in zip(got, expected, strict=False):
        np.testing.assert_array_equal(codes, want_codes)
        np.testing.assert_array_equal(audio, want_audio)
        assert enc_ms > 0 and dec_ms > 0
    assert pipe.kv_length == turns.kv_length


def test_an_encoder_error_is_raised_to_the_consumer(rng: np.random.Generator) -> None:
    pcm = chirp_noise(rng, 4)
    bad = [pcm[:FRAME_SIZE], pcm[FRAME_SIZE : FRAME_SIZE + 100]]  # the second is not whole frames
    seen = []
    with pytest.raises(InputError, match="not a positive multiple of 1920"):
        for item in pipelined(StreamingCodec(model_dir("tiny-8cb")), bad):
            seen.append(item)
    assert len(seen) == 1
    assert not [t for t in threading.enumerate() if t.name == "mimi-encoder"]


def test_leaving_early_stops_the_encoder(rng: np.random.Generator) -> None:
    pcm = chirp_noise(rng, 40)
    stream = pipelined(StreamingCodec(model_dir("tiny-8cb")), chunks_of(pcm, 1))
    next(stream)
    stream.close()
    assert not [t for t in threading.enumerate() if t.name == "mimi-encoder"]


def test_roundtrip_pipelined_and_sequential_write_the_same_file(tmp_path, rng: np.random.Generator) -> None:
    wav = tmp_path / "in.wav"
    sf.write(wav, chirp_noise(rng, 30), SAMPLE_RATE_HZ, subtype="FLOAT")
    outs: list[object] = []
    for flags in ([], ["--sequential"]):
        out = tmp_path / f"out{len(outs)}.wav"
        assert main(["roundtrip", str(wav), str(out), "--model", str(model_dir("tiny-8cb")), "--float32", *flags]) == 0
        outs.append(sf.read(out, dtype="float32")[0])
    np.testing.assert_array_equal(outs[0], outs[1])
