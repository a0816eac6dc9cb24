"""Files the app derives into its data folder are checked before use and made again when damaged.

Each kind (rewritten encoder and decoder, zero-row decoder, int8 copy) is truncated, zeroed (same
size, mtime set back) or swapped with another derived file, then the codec is loaded the three
ways the app loads it: the loader must work without a word to the user, give exactly what a fresh
build gives, and leave the file as a fresh build makes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.audio.engine_config import EngineConfig, load_codec
from app.codec import graphopt, quantize
from app.codec import int8_copy as int8_module
from app.codec.derived import MADE_FROM_FILE, Record, is_intact, read_record
from app.codec.errors import DerivedFileError, ModelError
from app.codec.int8_copy import make_int8
from app.codec.prepare import prepare_model, prepared_on_disk
from app.codec.quantize import QUALITY_FILE, int8_models
from app.codec.streaming import StreamingCodec
from app.config import FRAME_SIZE
from conftest import chirp_noise, model_dir

FRAMES = 30  # int8 quality measured on 2.4 s: enough for the tiny models
K = 3  # fewer codebooks than the model's 8: the zero-row decoder runs


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data folder, and every tiny layer rewritten (they are below the size threshold)."""
    folder = tmp_path / "data"
    monkeypatch.setenv("MIMI_LIVE_DATA_DIR", str(folder))
    monkeypatch.setattr(graphopt, "MIN_WEIGHTS", 0)  # handed to prepare's child too
    return folder


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def only(pattern: str, root: Path) -> Path:
    (found,) = root.glob(pattern)
    return found


def record(folder: Path) -> Record:
    """The folder's record, which the test knows is there and readable."""
    found = read_record(folder)
    assert found is not None, folder
    return found


def damage(path: Path, how: str, other: Path) -> None:
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "zeroed":  # same size and mtime: only the inode's change time gives it away
        before = path.stat()
        path.write_bytes(bytes(before.st_size))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    elif how == "swapped":  # the two files trade places (renames keep each one's mtime)
        parked = path.with_name(path.name + ".parked")
        os.replace(path, parked)
        os.replace(other, path)
        os.replace(parked, other)
    else:
        raise AssertionError(how)


def load(how: str, folder: Path, codebooks: int | None) -> StreamingCodec:
    if how == "codec":  # reads the graphs in this process (the command line, tuning, bench)
        return StreamingCodec(folder, codebooks=codebooks)
    if how == "prepared":  # the graph work in prepare's child process
        return StreamingCodec(folder, codebooks=codebooks, prepared=prepare_model(folder, codebooks))
    return load_codec(EngineConfig(model=folder, codebooks=codebooks))  # what the engine and window do


def stream(codec: StreamingCodec) -> tuple[np.ndarray, np.ndarray]:
    pcm = chirp_noise(np.random.default_rng(7), 6)
    step = 2 * FRAME_SIZE
    codes = np.concatenate([codec.encode(pcm[i : i + step]) for i in range(0, pcm.size, step)], axis=1)
    audio = np.concatenate([codec.decode(codes[:, i : i + 2]) for i in range(0, codes.shape[1], 2)])
    return codes, audio


def assert_same(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> None:
    for x, y in zip(a, b, strict=False):
        assert x.dtype == y.dtype and np.array_equal(x, y)


def rebuilt(caplog: pytest.LogCaptureFixture, what: str) -> bool:
    return any(what in r.getMessage() and "damaged" in r.getMessage() for r in caplog.records)



@pytest.mark.parametrize("which, how, loader", [
    ("encoder", "truncated", "codec"), ("decoder", "truncated", "prepared"), ("encoder", "truncated", "engine"),
    ("decoder", "zeroed", "codec"), ("encoder", "zeroed", "prepared"), ("decoder", "zeroed", "engine"),
    ("encoder", "swapped", "codec"), ("decoder", "swapped", "prepared"), ("encoder", "swapped", "engine"),
])
def test_a_damaged_rewritten_graph_is_made_again(
    which: str, how: str, loader: str, data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = model_dir("tiny-8cb")
    fresh = load(loader, folder, None)
    assert fresh.rewritten == (True, True)
    expected = stream(fresh)
    copies = {name: only(f"optimized/*/{name}_model.onnx", data) for name in ("encoder", "decoder")}
    made = {name: sha(path) for name, path in copies.items()}
    target, other = copies[which], copies["decoder" if which == "encoder" else "encoder"]
    damage(target, how, other)
    if loader == "prepared":
        assert prepared_on_disk(folder) is None  # the parent's stat check sends the work to the child
    with caplog.at_level(logging.INFO, logger="app"):
        codec = load(loader, folder, None)
    assert codec.rewritten == (True, True)
    assert_same(stream(codec), expected)
    assert {name: sha(path) for name, path in copies.items()} == made  # as a fresh build makes them
    assert rebuilt(caplog, str(target))
    assert is_intact(target) and is_intact(other)
    if loader == "prepared":
        assert prepared_on_disk(folder) == codec.prepared  # answered from the disk again


@pytest.mark.parametrize("how, loader", [
    ("truncated", "codec"), ("zeroed", "codec"), ("swapped", "codec"),
    ("zeroed", "prepared"), ("swapped", "prepared"), ("truncated", "engine"),
])
def test_a_damaged_zero_row_decoder_is_made_again(
    how: str, loader: str, data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = model_dir("tiny-8cb")
    expected = stream(load(loader, folder, K))
    zero_rows = only("decoders/*/decoder_model.onnx", data)
    rewritten = only("optimized/*/decoder_model.onnx", data)  # what it was made from
    made = sha(zero_rows), sha(rewritten)
    damage(zero_rows, how, rewritten)
    with caplog.at_level(logging.INFO, logger="app"):
        codec = load(loader, folder, K)
        assert_same(stream(codec), expected)
        codec.set_codebooks(8)  # and back: the full decoder too
        codec.set_codebooks(K)
    # The zero-row decoder is keyed by its source's mtime: a swap that made the rewritten decoder
    # again gives it a new folder; the file is the same as a fresh build either way.
    assert sha(only("decoders/*/decoder_model.onnx", data)) == made[0] and sha(rewritten) == made[1]
    assert rebuilt(caplog, "decoder_model.onnx")


@pytest.fixture
def int8_copy(data: Path) -> tuple[Path, Path]:
    """(model folder, its int8 copy made fresh) in the test's data folder."""
    folder = model_dir("tiny-8cb")
    copy, _ = make_int8(folder, frames=FRAMES)
    return folder, copy


def no_measuring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(int8_module, "measure_quality", lambda *a, **k: pytest.fail("measured again"))


@pytest.mark.parametrize("how, loader", [
    ("truncated", "codec"), ("zeroed", "prepared"), ("swapped", "engine"), ("truncated", "engine"),
])
def test_a_damaged_int8_copy_is_made_again(
    how: str, loader: str, int8_copy: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder, copy = int8_copy
    expected = stream(load(loader, copy, K))
    made = {p.name: sha(p) for p in copy.iterdir() if p.name != MADE_FROM_FILE}
    damage(copy / "decoder_model.onnx", how, copy / "encoder_model.onnx")
    assert int8_models() == []  # not offered while damaged
    no_measuring(monkeypatch)  # the files made again are the measured ones: the numbers stand
    with caplog.at_level(logging.INFO, logger="app"):
        codec = load(loader, copy, K)
    assert_same(stream(codec), expected)
    assert {p.name: sha(p) for p in copy.iterdir() if p.name != MADE_FROM_FILE} == made
    assert rebuilt(caplog, str(copy))
    assert [f for f, _ in int8_models()] == [copy]


@pytest.mark.parametrize("how", ["truncated", "zeroed", "swapped"])
def test_quantize_makes_a_damaged_copy_again_and_never_calls_it_good(
    how: str, int8_copy: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, copy = int8_copy
    expected = stream(StreamingCodec(copy))
    quality = quantize.read_quality(copy)
    made = sha(copy / "encoder_model.onnx")
    damage(copy / "encoder_model.onnx", how, copy / "decoder_model.onnx")
    said: list[str] = []
    no_measuring(monkeypatch)
    again, again_quality = make_int8(folder, frames=FRAMES, status=said.append)
    assert again == copy and again_quality == quality
    assert any("damaged" in line for line in said)
    assert sha(copy / "encoder_model.onnx") == made
    assert_same(stream(StreamingCodec(copy)), expected)


def test_a_copy_whose_quality_record_is_damaged_is_measured_again(int8_copy: tuple[Path, Path]) -> None:
    folder, copy = int8_copy
    record = json.loads((copy / QUALITY_FILE).read_text())
    (copy / QUALITY_FILE).write_text(json.dumps({**record, "snr_end_to_end_db": 99.0}))  # valid, but not measured
    assert int8_models() == []
    _, quality = make_int8(folder, frames=FRAMES)
    assert quality.snr_end_to_end_db != 99.0  # measured again: the forged number is gone
    assert abs(quality.snr_end_to_end_db - record["snr_end_to_end_db"]) < 1.0


def test_a_swapped_decoder_inspection_is_not_believed(data: Path) -> None:
    fp32, fp16 = model_dir("tiny-8cb"), model_dir("tiny-8cb-fp16")
    prepare_model(fp32), prepare_model(fp16)
    mine = str(fp32.resolve() / "decoder_model.onnx")  # (tiny-8cb is a prefix of tiny-8cb-fp16)
    ours = [p for p in data.glob("inspected/*/decoder.json") if mine in record(p.parent).sources]
    theirs = [p for p in data.glob("inspected/*/decoder.json") if p not in ours]
    damage(ours[0], "swapped", theirs[0])
    codec = StreamingCodec(fp32, prepared=prepare_model(fp32))
    assert codec.contract.weights == "fp32"
    assert StreamingCodec(fp16, prepared=prepare_model(fp16)).contract.weights == "fp16"


def test_a_touched_file_is_hashed_once_not_made_again(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = model_dir("tiny-8cb")
    StreamingCodec(folder, codebooks=K)
    zero_rows = only("decoders/*/decoder_model.onnx", data)
    inode = zero_rows.stat().st_ino
    os.utime(zero_rows, ns=(1, 1))  # a backup restored, a `touch`: the same bytes
    assert not is_intact(zero_rows)  # the quick check alone cannot tell: prepare would ask its child
    StreamingCodec(folder, codebooks=K)
    assert zero_rows.stat().st_ino == inode and is_intact(zero_rows)  # hashed, found whole, re-stamped
    assert record(zero_rows.parent).files[zero_rows.name]["mtime_ns"] == 1


def failing_save(*args, **kwargs) -> None:
    raise OSError(28, "No space left on device")


def test_a_zero_row_decoder_that_cannot_be_made_again_says_which_folder_to_delete(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = model_dir("tiny-8cb")
    StreamingCodec(folder, codebooks=K)
    zero_rows = only("decoders/*/decoder_model.onnx", data)
    damage(zero_rows, "truncated", zero_rows)
    from app.codec import codebooks

    monkeypatch.setattr(codebooks, "save_atomically", failing_save)
    with pytest.raises(DerivedFileError) as error:
        StreamingCodec(folder, codebooks=K)
    message = str(error.value)
    assert "\n" not in message and str(zero_rows) in message and f"delete the folder {zero_rows.parent}" in message
    assert "re-download" not in message and "No space left" in message


def test_a_rewrite_that_cannot_be_made_again_runs_the_original(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = model_dir("tiny-8cb")
    expected = stream(StreamingCodec(folder, optimize=False))
    StreamingCodec(folder)
    damage(only("optimized/*/decoder_model.onnx", data), "zeroed", folder)
    monkeypatch.setattr(graphopt, "save_atomically", failing_save)
    codec = StreamingCodec(folder)
    assert codec.rewritten == (True, False)
    codes, audio = stream(codec)
    assert np.array_equal(codes, expected[0]) and np.abs(audio - expected[1]).max() < 1e-5


def test_an_int8_copy_whose_model_is_gone_says_which_folder_to_delete(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(model_dir("tiny-8cb"), folder)
    copy, _ = make_int8(folder, frames=FRAMES)
    shutil.rmtree(folder)
    damage(copy / "encoder_model.onnx", "truncated", copy)
    for loader in ("codec", "prepared"):
        with pytest.raises(ModelError) as error:
            load(loader, copy, None)
        message = str(error.value)
        assert type(error.value) is DerivedFileError, message  # the same error from prepare's child
        assert "\n" not in message and f"delete the folder {copy}" in message and "re-download" not in message
