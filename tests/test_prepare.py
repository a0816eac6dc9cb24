"""prepare_model: the graph work in a child process, the codec opened from its answer alone."""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import shutil
import signal
import threading
import time
from multiprocessing.process import BaseProcess
from pathlib import Path

import numpy as np
import onnx
import pytest

from app.codec import graphopt, prepare, tuning
from app.codec.errors import InputError, ModelError
from app.codec.prepare import PrepareError, prepare_model, prepared_on_disk
from app.codec.streaming import StreamingCodec
from app.codec.tuning import TUNING_FILE, tuned_threads
from app.config import FRAME_SIZE
from conftest import chirp_noise, model_dir


def stream(codec: StreamingCodec, pcm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Encode then decode `pcm` two frames at a time; return (codes, audio)."""
    step = 2 * FRAME_SIZE
    codes = np.concatenate([codec.encode(pcm[i : i + step]) for i in range(0, pcm.size, step)], axis=1)
    audio = np.concatenate([codec.decode(codes[:, i : i + 2]) for i in range(0, codes.shape[1], 2)])
    return codes, audio


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The folders a child process was started for, in this test."""
    started: list[Path] = []
    real = prepare._run_child

    def counting(folder, *args):
        started.append(folder)
        return real(folder, *args)

    monkeypatch.setattr(prepare, "_run_child", counting)
    return started


def no_child(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args):
        raise AssertionError("a child process was started")

    monkeypatch.setattr(prepare, "_run_child", refuse)


class ParentLoad(BaseException):
    """Not an Exception: no `except Exception` on the way can turn it into a fallback."""


def no_onnx_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise ParentLoad("onnx.load in the parent process")

    for name in ("load", "load_model", "load_model_from_string"):
        monkeypatch.setattr(onnx, name, refuse)


@pytest.mark.parametrize("variant, k, rewrite", [
    ("tiny-16cb", 16, True), ("tiny-16cb", 5, True), ("tiny-8cb-fp16", 8, False), ("tiny-8cb-fp16", 3, True),
])
def test_prepared_codec_equals_the_unprepared_one_bit_for_bit(
    variant: str, k: int, rewrite: bool, children: list[Path], monkeypatch: pytest.MonkeyPatch,
    rng: np.random.Generator,
) -> None:
    if rewrite:  # the tiny layers are below the size threshold: rewrite them all, in the child too
        monkeypatch.setattr(graphopt, "MIN_WEIGHTS", 0)
    folder = model_dir(variant)
    prepared = prepare_model(folder, codebooks=k)
    assert children == [folder.resolve()]
    assert prepared.rewritten == (rewrite, rewrite)
    assert prepared.num_codebooks is not None
    assert (prepared.zero_row_decoder is not None) == (k < prepared.num_codebooks)
    assert pickle.loads(pickle.dumps(prepared)) == prepared
    fast = StreamingCodec(folder, codebooks=k, kv_window=4, prepared=prepared)
    plain = StreamingCodec(folder, codebooks=k, kv_window=4)  # reads the graphs itself, as before
    assert fast.rewritten == plain.rewritten == prepared.rewritten
    assert fast.contract == plain.contract and fast.codebook_choices == plain.codebook_choices
    pcm = chirp_noise(rng, 12)  # long enough to cut the KV caches back a few times
    for a, b in zip(stream(fast, pcm), stream(plain, pcm), strict=False):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_the_parent_parses_no_graph(children: list[Path], monkeypatch: pytest.MonkeyPatch, rng) -> None:
    monkeypatch.setattr(graphopt, "MIN_WEIGHTS", 0)
    folder = model_dir("tiny-16cb-fp16")
    prepared = prepare_model(folder)  # all codebooks: no zero-row decoder made yet
    assert prepared.zero_row_decoder is None and prepared.rewritten == (True, True)
    no_onnx_load(monkeypatch)
    with pytest.raises(ParentLoad):
        StreamingCodec(folder)  # the patch does catch today's in-process load
    codec = StreamingCodec(folder, prepared=prepared)
    codes = codec.encode(chirp_noise(rng, 2))
    codec.prepare_codebooks(6)  # the zero-row decoder is made in a second child
    assert len(children) == 2
    codec.set_codebooks(6)
    assert codec.decode(codes[:6]).shape == (2 * FRAME_SIZE,)
    codec.set_codebooks(16)  # back to the rewritten full decoder, opened again
    assert codec.decode(codes).shape == (2 * FRAME_SIZE,)
    assert codec.prepared is not None and codec.prepared.zero_row_decoder is not None


def test_a_prepared_model_is_answered_from_the_disk(
    children: list[Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(model_dir("tiny-8cb"), folder)
    assert prepared_on_disk(folder) is None
    with caplog.at_level(logging.INFO, logger="app"):
        first = prepare_model(folder, codebooks=4)
    # The child's log records reach the parent's logging.
    assert any("no layer to rewrite" in r.getMessage() and r.name == "app.codec.graphopt" for r in caplog.records)
    no_child(monkeypatch)
    assert prepare_model(folder, codebooks=4) == first == prepared_on_disk(folder)  # the zero-row copy exists
    no_onnx_load(monkeypatch)
    codec = StreamingCodec(folder, codebooks=4, prepared=first)
    codec.prepare_codebooks(2)
    assert codec.contract.weights == "fp32" and codec.contract.codebook_size == 64

    # A changed model file is prepared again (the stale answer is not reused).
    os.utime(folder / "decoder_model.onnx", ns=(1, 1))
    assert not first.is_current() and prepared_on_disk(folder) is None
    with pytest.raises(AssertionError, match="a child process was started"):
        StreamingCodec(folder, prepared=first)
    with pytest.raises(InputError, match="prepared is for"):
        StreamingCodec(model_dir("tiny-8cb"), prepared=first)


def corrupt(folder: Path, how: str) -> None:
    decoder = folder / "decoder_model.onnx"
    if how == "garbage decoder":
        decoder.write_bytes(b"not an onnx file at all")
    elif how == "truncated decoder":
        decoder.write_bytes(decoder.read_bytes()[: decoder.stat().st_size // 2])
    elif how == "garbage encoder":
        (folder / "encoder_model.onnx").write_bytes(b"\x08\x07garbage")
    elif how == "bad spec":
        (folder / "state_spec.txt").write_text("[encoder]\nconv enc_0 1\n", encoding="utf-8")
    elif how == "missing spec":
        (folder / "state_spec.txt").unlink()
    elif how == "swapped graphs":  # each file loads, but is the wrong model
        encoder = folder / "encoder_model.onnx"
        data = encoder.read_bytes()
        encoder.write_bytes(decoder.read_bytes())
        decoder.write_bytes(data)


@pytest.mark.parametrize("how", ["garbage decoder", "truncated decoder", "garbage encoder", "bad spec",
                                 "missing spec", "swapped graphs"])
def test_a_corrupt_model_gives_the_same_error_as_before(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(model_dir("tiny-8cb"), folder)
    corrupt(folder, how)
    with pytest.raises(ModelError) as prepared_error:
        StreamingCodec(folder, prepared=prepare_model(folder))
    monkeypatch.setenv("MIMI_LIVE_DATA_DIR", str(tmp_path / "other-data"))  # nothing the child made
    with pytest.raises(ModelError) as before:
        StreamingCodec(folder)
    assert type(prepared_error.value) is type(before.value)
    assert str(prepared_error.value) == str(before.value) and "\n" not in str(before.value)


def test_an_error_in_the_child_comes_back_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("MIMI_LIVE_DATA_DIR", str(blocker / "data"))  # nothing can be written there
    folder = model_dir("tiny-8cb")
    with pytest.raises(OSError) as before:
        StreamingCodec(folder, codebooks=4)  # the zero-row decoder cannot be saved
    with pytest.raises(OSError) as in_child:
        prepare_model(folder, codebooks=4)
    assert type(in_child.value) is type(before.value) and str(in_child.value) == str(before.value)


def test_unpicklable_errors_become_one_line_model_errors() -> None:
    class Odd(Exception):
        def __init__(self, a, b):
            super().__init__(f"{a}\n{b}")

    portable = prepare._portable(Odd("first", "second"))
    assert type(portable) is ModelError and str(portable) == "preparing the model failed: Odd: first second"
    error = PrepareError("x")
    assert prepare._portable(error) is error


def prepare_children() -> list[BaseProcess]:
    return [p for p in multiprocessing.active_children() if p.name == prepare._PROCESS_NAME]


def test_a_child_that_takes_too_long_is_stopped() -> None:
    started = time.monotonic()
    with pytest.raises(PrepareError, match=r"took more than 0\.05 s; stopped its helper process"):
        prepare_model(model_dir("tiny-8cb"), timeout_s=0.05)  # a child needs far longer just to start
    assert time.monotonic() - started < 10 and not prepare_children()
    with pytest.raises(InputError, match="timeout_s"):
        prepare_model(model_dir("tiny-8cb"), timeout_s=0)


def test_a_child_that_dies_gives_one_clear_line() -> None:
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            prepare_model(model_dir("tiny-16cb"), codebooks=3)
        except BaseException as exc:  # noqa: BLE001 - checked below
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 20
    while not prepare_children() and time.monotonic() < deadline:
        time.sleep(0.005)
    (child,) = prepare_children()
    assert child.pid is not None  # started
    os.kill(child.pid, signal.SIGKILL)
    thread.join(20)
    assert not thread.is_alive()
    (error,) = outcome
    assert isinstance(error, PrepareError) and isinstance(error, ModelError)
    assert "ended without an answer (killed by signal 9)" in str(error) and "\n" not in str(error)


@pytest.fixture
def eight_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIMI_LIVE_THREADS", raising=False)
    monkeypatch.setattr(tuning, "physical_cores", lambda: 8)


def test_tuned_threads_without_measuring(eight_cores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = model_dir("tiny-8cb")

    def measure(folder: Path, threads: int) -> float:
        raise AssertionError("measured")

    assert tuned_threads(folder, cache_dir=tmp_path, measure=measure, may_measure=False) == 2
    assert not (tmp_path / TUNING_FILE).exists()
    times = {1: 9.0, 2: 5.0, 4: 3.0, 8: 3.0}
    assert tuned_threads(folder, cache_dir=tmp_path, measure=lambda f, n: times[n]) == 4  # measured and stored
    stored = (tmp_path / TUNING_FILE).read_bytes()
    assert tuned_threads(folder, cache_dir=tmp_path, measure=measure, may_measure=False) == 4
    assert (tmp_path / TUNING_FILE).read_bytes() == stored
    with pytest.raises(InputError, match="again=True needs may_measure=True"):
        tuned_threads(folder, cache_dir=tmp_path, again=True, may_measure=False)
    monkeypatch.setattr(tuning, "physical_cores", lambda: 1)
    assert tuned_threads(folder, cache_dir=tmp_path / "none", measure=measure, may_measure=False) == 1
    monkeypatch.setenv("MIMI_LIVE_THREADS", "3")
    assert tuned_threads(folder, may_measure=False) == 3
