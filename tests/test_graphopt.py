"""The strided-conv rewrite: same outputs as the published graphs, cached once, refused when wrong."""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from app.codec import StreamingCodec, graphopt
from app.codec.graphopt import optimized_model_path, rewrite_strided_convs
from app.config import FRAME_SIZE
from conftest import chirp_noise as signal
from conftest import model_dir, relative

FILES = ("encoder_model.onnx", "decoder_model.onnx")


def op_counts(path: Path) -> collections.Counter:
    return collections.Counter(n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node)


@pytest.mark.parametrize("variant", ["tiny-8cb", "tiny-8cb-fp16"])
def test_rewrite_replaces_every_strided_layer(variant: str, tmp_path: Path) -> None:
    for name in FILES:
        model = onnx.load(str(model_dir(variant) / name))
        before = collections.Counter(n.op_type for n in model.graph.node)
        count = rewrite_strided_convs(model, min_weights=0)
        onnx.checker.check_model(model)
        after = collections.Counter(n.op_type for n in model.graph.node)
        assert count > 0
        # SEANet's resampling layers and its stride-1 convs (the decoder's depthwise upsampler is kept).
        assert before["Conv"] + before["ConvTranspose"] - count == after["Conv"] + after["ConvTranspose"]
        assert after["MatMul"] == before["MatMul"] + count
        size = sum(t.ByteSize() for t in model.graph.initializer)
        original = sum(t.ByteSize() for t in onnx.load(str(model_dir(variant) / name)).graph.initializer)
        assert abs(size - original) < 0.01 * original + 1000 * count  # old weights gone, none doubled


def test_nothing_below_the_size_threshold_is_rewritten() -> None:
    model = onnx.load(str(model_dir("tiny-8cb") / "decoder_model.onnx"))
    assert rewrite_strided_convs(model) == 0  # the tiny models' layers are far below MIN_WEIGHTS


@pytest.fixture
def rewrite_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graphopt, "MIN_WEIGHTS", 0)


@pytest.mark.parametrize("variant", ["tiny-8cb", "tiny-16cb-fp16"])
@pytest.mark.parametrize("frames_per_call", [1, 3])
def test_rewritten_codec_equals_the_original(
    variant: str, frames_per_call: int, rewrite_everything, rng: np.random.Generator
) -> None:
    folder = model_dir(variant)
    fast, plain = StreamingCodec(folder, kv_window=None), StreamingCodec(folder, kv_window=None, optimize=False)
    assert fast._decoder_path != plain._decoder_path  # really the rewritten graphs
    pcm, step = signal(rng, 12), frames_per_call * FRAME_SIZE
    codes = [c.encode(pcm[i : i + step]) for i in range(0, pcm.size, step) for c in (fast, plain)]
    for mine, theirs in zip(codes[::2], codes[1::2], strict=False):
        np.testing.assert_array_equal(mine, theirs)
    all_codes = np.concatenate(codes[1::2], axis=1)
    for k in sorted({fast.max_codebooks, 2}):  # the zero-row edit works on the rewritten decoder too
        fast.reset(), plain.reset()
        fast.set_codebooks(k), plain.set_codebooks(k)
        audio = [np.concatenate([c.decode(all_codes[:k, i : i + frames_per_call])
                                 for i in range(0, 12, frames_per_call)])
                 for c in (fast, plain)]
        assert relative(audio[0], audio[1]) < 1e-5


def test_back_to_all_codebooks_runs_the_rewritten_decoder(rewrite_everything) -> None:
    codec = StreamingCodec(model_dir("tiny-8cb"), codebooks=2)  # the full decoder is dropped until needed
    codec.set_codebooks(8)
    rewritten = codec._decoder_path
    assert rewritten != (model_dir("tiny-8cb") / "decoder_model.onnx").resolve()
    assert Path(codec._decoder._model_path) == rewritten


def test_rewrite_is_made_once_and_reused(tmp_path: Path, rewrite_everything) -> None:
    source = model_dir("tiny-8cb") / "decoder_model.onnx"
    first = optimized_model_path(source, cache_dir=tmp_path)
    assert first != source.resolve() and first.parent.parent == tmp_path
    assert op_counts(first)["ConvTranspose"] == 1  # the depthwise one stays
    stamp = first.stat().st_mtime_ns
    assert optimized_model_path(source, cache_dir=tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert not list(tmp_path.rglob("*.tmp"))


def test_nothing_to_rewrite_is_remembered(tmp_path: Path) -> None:
    source = model_dir("tiny-8cb") / "encoder_model.onnx"
    assert optimized_model_path(source, cache_dir=tmp_path) == source.resolve()
    notes = list(tmp_path.rglob("*.unchanged"))
    assert len(notes) == 1 and notes[0].read_text().strip() == "no layer to rewrite"


def test_a_rewrite_that_changes_the_outputs_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rewrite_everything
) -> None:
    real = graphopt._conv_transpose_nodes

    def wrong(b, x, w, bias, y):  # the kernel taps reversed: plausible-looking, wrong
        real(b, x, np.ascontiguousarray(w[:, :, ::-1]), bias, y)

    monkeypatch.setattr(graphopt, "_conv_transpose_nodes", wrong)
    source = model_dir("tiny-8cb") / "decoder_model.onnx"
    assert optimized_model_path(source, cache_dir=tmp_path) == source.resolve()
    (note,) = tmp_path.rglob("*.unchanged")
    assert note.read_text().startswith("audio_values differs by")
    assert not list(tmp_path.rglob("*.onnx"))


def test_an_unwritable_cache_falls_back_to_the_original(tmp_path: Path, rewrite_everything) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    source = model_dir("tiny-8cb") / "encoder_model.onnx"
    assert optimized_model_path(source, cache_dir=blocker) == source.resolve()


@pytest.mark.parametrize("kernel, stride", [(8, 4), (3, 1), (7, 1)])
def test_every_input_length_matches_the_conv(kernel: int, stride: int) -> None:
    """The rewrite gives the conv's output for any length (a partial last block dropped, as the conv does)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((6, 4, kernel)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[kernel], strides=[stride])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, "L"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.arange(6, dtype=np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    original = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert rewrite_strided_convs(model, min_weights=0) == 1
    rewritten = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for length in range(kernel, kernel + 13):
        x = np.random.default_rng(length).standard_normal((1, 4, length)).astype(np.float32)
        expected, got = original.run(None, {"x": x})[0], rewritten.run(None, {"x": x})[0]
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_source_folder_is_never_touched(tmp_path: Path, rewrite_everything) -> None:
    folder = tmp_path / "model"
    shutil.copytree(model_dir("tiny-8cb"), folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    StreamingCodec(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_replaced_and_orphaned_rewrites_are_removed(tmp_path: Path, rewrite_everything) -> None:
    import os

    folder = tmp_path / "model"
    shutil.copytree(model_dir("tiny-8cb"), folder)
    cache = tmp_path / "cache"
    first = optimized_model_path(folder / "decoder_model.onnx", cache_dir=cache)
    other = optimized_model_path(folder / "encoder_model.onnx", cache_dir=cache)
    stamp = (folder / "decoder_model.onnx").stat().st_mtime_ns
    os.utime(folder / "decoder_model.onnx", ns=(stamp + 10**9, stamp + 10**9))  # the model was updated
    second = optimized_model_path(folder / "decoder_model.onnx", cache_dir=cache)
    assert second != first and second.is_file() and not first.parent.exists()
    assert other.is_file()  # another source's rewrite stays
    gone = tmp_path / "gone"
    shutil.copytree(model_dir("tiny-16cb"), gone)
    orphan = optimized_model_path(gone / "decoder_model.onnx", cache_dir=cache)
    shutil.rmtree(gone)  # a model folder the user deleted
    optimized_model_path(model_dir("tiny-8cb-fp16") / "decoder_model.onnx", cache_dir=cache)
    assert not orphan.parent.exists() and other.is_file() and second.is_file()
