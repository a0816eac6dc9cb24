"""StreamingCodec on the tiny fixture models: streaming exactness, reset, k of K, fp16, input checks."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from app.codec.errors import InputError, ModelError
from app.codec.streaming import StreamingCodec
from app.config import FRAME_SIZE
from conftest import chirp_noise, model_dir, relative

FRAMES = 24  # 1.92 s: divisible by the 1- and 4-frame chunk sizes below


def signal(rng: np.random.Generator, frames: int = FRAMES) -> np.ndarray:
    return chirp_noise(rng, frames)


def stream(codec: StreamingCodec, pcm: np.ndarray, chunk_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Encode then decode ``pcm`` chunk by chunk; return (codes, audio)."""
    step = chunk_frames * FRAME_SIZE
    codes = np.concatenate([codec.encode(pcm[i : i + step]) for i in range(0, pcm.size, step)], axis=1)
    audio = [codec.decode(codes[:, i : i + chunk_frames]) for i in range(0, codes.shape[1], chunk_frames)]
    return codes, np.concatenate(audio)


@pytest.fixture(scope="module")
def codec8() -> StreamingCodec:
    return StreamingCodec(model_dir("tiny-8cb"))


def test_properties(codec8: StreamingCodec) -> None:
    assert (codec8.sample_rate, codec8.frame_size) == (24_000, 1920)
    assert codec8.max_codebooks == codec8.num_codebooks == 8
    assert codec8.codebook_choices == tuple(range(1, 9)) and codec8.codebook_note is None
    assert codec8.contract.codebook_size == 64
    assert codec8.bitrate_bps == pytest.approx(8 * 6 * 12.5)  # 600 bps with 64-entry codebooks
    codec16 = StreamingCodec(model_dir("tiny-16cb"), codebooks=3, threads=1)
    assert (codec16.max_codebooks, codec16.num_codebooks) == (16, 3)
    assert codec16.bitrate_bps == pytest.approx(3 * 6 * 12.5)


@pytest.mark.parametrize("variant", ["tiny-8cb", "tiny-16cb-fp16"])
def test_chunk_size_does_not_change_the_result(variant: str, rng: np.random.Generator) -> None:
    pcm = signal(rng)
    codes_80ms, audio_80ms = stream(StreamingCodec(model_dir(variant)), pcm, chunk_frames=1)
    codes_320ms, audio_320ms = stream(StreamingCodec(model_dir(variant)), pcm, chunk_frames=4)
    assert codes_80ms.shape == (16 if "16cb" in variant else 8, FRAMES) and codes_80ms.dtype == np.int64
    assert len(np.unique(codes_80ms)) > 20  # the signal really exercises the codebooks
    np.testing.assert_array_equal(codes_80ms, codes_320ms)
    assert audio_80ms.shape == (FRAMES * FRAME_SIZE,) and audio_80ms.dtype == np.float32
    assert np.abs(audio_320ms).max() > 1e-3
    assert relative(audio_80ms, audio_320ms) < 1e-4


def test_kv_cache_grows_two_entries_per_frame(rng: np.random.Generator) -> None:
    codec = StreamingCodec(model_dir("tiny-8cb"))
    assert codec.kv_length == (0, 0)
    codes = codec.encode(signal(rng, frames=3))
    assert codec.kv_length == (6, 0)
    codec.decode(codes)
    assert codec.kv_length == (6, 6)
    assert codec.last_encode_ms > 0 and codec.last_decode_ms > 0


def test_reset_equals_a_fresh_codec(rng: np.random.Generator) -> None:
    pcm = signal(rng, frames=8)
    fresh_codes, fresh_audio = stream(StreamingCodec(model_dir("tiny-8cb")), pcm, chunk_frames=2)
    codec = StreamingCodec(model_dir("tiny-8cb"))
    stream(codec, signal(rng, frames=8), chunk_frames=2)  # leave state behind
    codec.reset()
    assert codec.kv_length == (0, 0)
    codes, audio = stream(codec, pcm, chunk_frames=2)
    np.testing.assert_array_equal(codes, fresh_codes)
    np.testing.assert_array_equal(audio, fresh_audio)


@pytest.mark.parametrize("small, big", [("tiny-8cb", "tiny-16cb"), ("tiny-8cb-fp16", "tiny-16cb-fp16")])
def test_k_of_K_matches_the_k_codebook_model(small: str, big: str, rng: np.random.Generator) -> None:
    pcm = signal(rng, frames=12)
    codes16, _ = stream(StreamingCodec(model_dir(big)), pcm, chunk_frames=4)
    codes8 = StreamingCodec(model_dir(small)).encode(pcm)
    np.testing.assert_array_equal(codes16[:8], codes8)  # shared weights, residual quantization
    _, expected = stream(StreamingCodec(model_dir(small)), pcm, chunk_frames=4)
    reduced = StreamingCodec(model_dir(big), codebooks=8)
    assert reduced.encode(pcm).shape == (8, 12)
    reduced.reset()
    _, got = stream(reduced, pcm, chunk_frames=4)
    assert relative(got, expected) < 1e-5
    # And it really dropped something: all 16 codebooks decode differently.
    _, full = stream(StreamingCodec(model_dir(big)), pcm, chunk_frames=4)
    assert relative(full, expected) > 1e-2


def test_set_codebooks_mid_stream_keeps_state(rng: np.random.Generator) -> None:
    pcm = signal(rng, frames=8)
    reference = StreamingCodec(model_dir("tiny-16cb"), codebooks=4)
    codes = StreamingCodec(model_dir("tiny-16cb")).encode(pcm)
    expected = reference.decode(codes[:4])
    switching = StreamingCodec(model_dir("tiny-16cb"))
    switching.set_codebooks(4)
    first = switching.decode(codes[:4, :4])
    switching.set_codebooks(16)
    switching.set_codebooks(4)
    second = switching.decode(codes[:4, 4:])
    assert relative(np.concatenate([first, second]), expected) < 1e-5


@pytest.mark.parametrize("fp32, fp16", [("tiny-8cb", "tiny-8cb-fp16"), ("tiny-16cb", "tiny-16cb-fp16")])
def test_fp16_weights_match_fp32(fp32: str, fp16: str, rng: np.random.Generator) -> None:
    pcm = signal(rng)
    codes32, audio32 = stream(StreamingCodec(model_dir(fp32)), pcm, chunk_frames=4)
    half = StreamingCodec(model_dir(fp16))
    assert half.contract.weights == "fp16"
    assert (half.encode(pcm) == codes32).mean() > 0.98
    half.reset()
    audio16 = half.decode(codes32)
    # Rounding the weights to fp16 moves the output by ~1e-3 of its peak; measured as energy it stays below 1e-3.
    assert np.linalg.norm(audio16 - audio32) / np.linalg.norm(audio32) < 1e-3
    assert relative(audio16, audio32) < 3e-3


def test_fp16_model_computes_like_fp32_with_rounded_weights(tmp_path: Path, rng: np.random.Generator) -> None:
    """The only difference an fp16 variant may make is the rounding of its stored weights."""
    folder = tmp_path / "rounded"
    shutil.copytree(model_dir("tiny-8cb"), folder)
    half = onnx.load(str(model_dir("tiny-8cb-fp16") / "decoder_model.onnx"))
    stored_half = {t.name for t in half.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16}
    model = onnx.load(str(folder / "decoder_model.onnx"))
    rounded = 0
    for tensor in model.graph.initializer:
        if f"{tensor.name}_fp16" in stored_half:  # the exporter's naming for converted weights
            array = numpy_helper.to_array(tensor).astype(np.float16).astype(np.float32)
            tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))
            rounded += 1
    if rounded != len(stored_half):
        pytest.skip("fp16 fixture does not name its weights <fp32 name>_fp16; cannot pair them")
    onnx.save_model(model, folder / "decoder_model.onnx")
    codes = StreamingCodec(model_dir("tiny-8cb")).encode(signal(rng, frames=8))
    expected = StreamingCodec(folder).decode(codes)
    got = StreamingCodec(model_dir("tiny-8cb-fp16")).decode(codes)
    assert relative(got, expected) < 1e-5


def test_float64_audio_is_accepted(codec8: StreamingCodec, rng: np.random.Generator) -> None:
    pcm = signal(rng, frames=2)
    codec8.reset()
    as32 = codec8.encode(pcm)
    codec8.reset()
    np.testing.assert_array_equal(codec8.encode(pcm.astype(np.float64)), as32)
    codec8.reset()


def test_encode_keeps_first_k_rows(rng: np.random.Generator) -> None:
    pcm = signal(rng, frames=3)
    full = StreamingCodec(model_dir("tiny-16cb")).encode(pcm)
    part = StreamingCodec(model_dir("tiny-16cb"), codebooks=5).encode(pcm)
    np.testing.assert_array_equal(part, full[:5])


BAD_AUDIO: dict[str, tuple[Any, str]] = {  # Any: the cases are what encode() must refuse
    "short": (np.zeros(FRAME_SIZE - 1, np.float32), "not a positive multiple of 1920"),
    "not_a_multiple": (np.zeros(FRAME_SIZE * 2 + 5, np.float32), "length 3845"),
    "empty": (np.zeros(0, np.float32), "length 0"),
    "two_dim": (np.zeros((1, FRAME_SIZE), np.float32), "must be 1-D"),
    "stereo": (np.zeros((FRAME_SIZE, 2), np.float32), "must be 1-D"),
    "int16": (np.zeros(FRAME_SIZE, np.int16), "float32 or float64"),
    "float16": (np.zeros(FRAME_SIZE, np.float16), "float32 or float64"),
    "nan": (np.full(FRAME_SIZE, np.nan, np.float32), "NaN"),
    "list": ([0.0] * FRAME_SIZE, "numpy array"),
}


@pytest.mark.parametrize("case", sorted(BAD_AUDIO))
def test_bad_audio_is_rejected_before_onnxruntime(codec8: StreamingCodec, case: str) -> None:
    pcm, expected = BAD_AUDIO[case]
    codec8.reset()
    with pytest.raises(InputError, match=expected):
        codec8.encode(pcm)
    assert codec8.kv_length == (0, 0)  # the state did not move


BAD_CODES: dict[str, tuple[np.ndarray, str]] = {
    "too_large": (np.full((8, 2), 64, np.int64), r"in \[0, 64\), got values from 64 to 64"),
    "negative": (np.full((8, 2), -1, np.int64), "from -1"),
    "too_few_rows": (np.zeros((7, 2), np.int64), r"shape \[8, frames\]"),
    "too_many_rows": (np.zeros((16, 2), np.int64), r"got \[16, 2\]"),
    "one_dim": (np.zeros(8, np.int64), r"shape \[8, frames\]"),
    "no_frames": (np.zeros((8, 0), np.int64), "frames > 0"),
    "float": (np.zeros((8, 2), np.float32), "must be integers"),
}


@pytest.mark.parametrize("case", sorted(BAD_CODES))
def test_bad_codes_are_rejected_before_onnxruntime(codec8: StreamingCodec, case: str) -> None:
    codes, expected = BAD_CODES[case]
    codec8.reset()
    with pytest.raises(InputError, match=expected):
        codec8.decode(codes)
    assert codec8.kv_length == (0, 0)


def test_int32_codes_are_accepted(codec8: StreamingCodec) -> None:
    codes = np.arange(16, dtype=np.int32).reshape(8, 2)
    codec8.reset()
    a = codec8.decode(codes)
    codec8.reset()
    np.testing.assert_array_equal(codec8.decode(codes.astype(np.int64)), a)
    codec8.reset()


def test_bad_constructor_arguments() -> None:
    folder = model_dir("tiny-8cb")
    for k in (0, 9, -1):
        with pytest.raises(InputError, match=f"{k} codebooks is not available for this model: choose 1..8"):
            StreamingCodec(folder, codebooks=k)
    with pytest.raises(InputError, match="threads"):
        StreamingCodec(folder, threads=0)
    assert isinstance(InputError("x"), ValueError)


def test_unloadable_model_is_a_one_line_model_error(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(model_dir("tiny-8cb"), folder)
    (folder / "encoder_model.onnx").write_bytes(b"not an onnx file\n" * 10)
    with pytest.raises(ModelError) as info:
        StreamingCodec(folder)
    message = str(info.value)
    assert message.startswith("encoder_model.onnx: onnxruntime cannot load it (") and "\n" not in message


def test_back_to_all_codebooks_reloads_the_original_decoder(rng: np.random.Generator) -> None:
    codes = StreamingCodec(model_dir("tiny-16cb")).encode(signal(rng, frames=4))
    expected = StreamingCodec(model_dir("tiny-16cb")).decode(codes)
    codec = StreamingCodec(model_dir("tiny-16cb"), codebooks=2)
    codec.set_codebooks(16)
    assert codec.num_codebooks == 16 and codec.bitrate_bps == pytest.approx(1200.0)
    np.testing.assert_array_equal(codec.decode(codes), expected)
