"""SessionRecorder: write() never blocks or raises, the WAVs hold exactly what was written, names
never collide, and a failing disk stops the recording (one line in `error`), never the stream.

The full disk is real, not mocked: a subprocess lowers RLIMIT_FSIZE (SIGXFSZ ignored), so the
kernel refuses writes past the limit with EFBIG exactly as a full disk refuses them with ENOSPC.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.audio import recorder as recorder_module
from app.audio.recorder import RecordingError, SessionRecorder
from app.config import FRAME_SIZE, SAMPLE_RATE_HZ

REPO = Path(__file__).resolve().parent.parent
CHUNK = FRAME_SIZE  # 80 ms at 24 kHz
STAMP = "20250101-120000"


def chunks(n: int, seed: int = 0) -> np.ndarray:
    # Beyond +-1 on purpose: the recorder clips, as libsndfile did.
    return np.random.default_rng(seed).uniform(-1.1, 1.1, (n, CHUNK)).astype(np.float32)


def pcm16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(x, np.float64).ravel() * 32768), -32768, 32767).astype(np.int16)


def read_int16(path: Path) -> np.ndarray:
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype, info.format) == (SAMPLE_RATE_HZ, 1, "PCM_16", "WAV")
    data, _ = sf.read(str(path), dtype="int16")
    assert len(data) == info.frames  # the header's sizes match the file's data exactly
    assert path.stat().st_size == 44 + 2 * info.frames  # nothing after the data the header claims
    return data


@pytest.fixture
def same_second(monkeypatch):
    monkeypatch.setattr(recorder_module.time, "strftime", lambda *a: STAMP)


def test_every_chunk_written_is_in_both_files_exactly(tmp_path) -> None:
    # Faster than real time, so the queue holds them all: nothing may be dropped here.
    rec = SessionRecorder(tmp_path / "new" / "folder", queue_chunks=256)  # the folder is created
    dry, wet = chunks(200), chunks(200, seed=1)
    for d, w in zip(dry, wet, strict=False):
        rec.write(d, w)
    rec.close()
    assert rec.error is None and rec.dropped_chunks == 0 and rec.written_chunks == 200
    np.testing.assert_array_equal(read_int16(rec.input_path), pcm16(dry))
    np.testing.assert_array_equal(read_int16(rec.output_path), pcm16(wet))
    rec.write(dry[0], wet[0])  # after close: ignored, no error
    rec.close()
    assert read_int16(rec.input_path).size == 200 * CHUNK


def test_caller_buffers_are_copied(tmp_path) -> None:
    rec = SessionRecorder(tmp_path)
    buf = np.full(CHUNK, 0.5, np.float32)
    for _ in range(20):
        rec.write(buf, buf)
        buf[:] = -0.25  # the engine reuses its buffers: the queued chunk must not change
    rec.close()
    expected = np.concatenate([pcm16(np.full(CHUNK, 0.5))] + [pcm16(np.full(CHUNK, -0.25))] * 19)
    np.testing.assert_array_equal(read_int16(rec.input_path), expected)


def test_the_files_are_valid_while_recording(tmp_path) -> None:
    rec = SessionRecorder(tmp_path)
    dry = chunks(10)
    for d in dry:
        rec.write(d, d)
    assert rec.flush()
    np.testing.assert_array_equal(read_int16(rec.input_path), pcm16(dry))
    np.testing.assert_array_equal(read_int16(rec.output_path), pcm16(dry))
    rec.close()


def test_two_recorders_in_the_same_second_get_four_distinct_files(tmp_path, same_second) -> None:
    first, second = SessionRecorder(tmp_path), SessionRecorder(tmp_path)
    first.write(chunks(1)[0], chunks(1)[0])
    second.write(chunks(2)[1], chunks(2)[1])
    first.close()
    second.close()
    paths = {first.input_path, first.output_path, second.input_path, second.output_path}
    assert len(paths) == 4 and {p.name for p in tmp_path.iterdir()} == {p.name for p in paths}
    assert first.input_path.name == f"mimi-{STAMP}-input.wav"
    assert second.input_path.name == f"mimi-{STAMP}-2-input.wav"
    assert second.output_path.name == f"mimi-{STAMP}-2-codec.wav"
    np.testing.assert_array_equal(read_int16(first.input_path), pcm16(chunks(1)[0]))  # not overwritten
    np.testing.assert_array_equal(read_int16(second.input_path), pcm16(chunks(2)[1]))


def test_a_name_taken_by_anyone_is_never_overwritten(tmp_path, same_second) -> None:
    # Another program holds the codec name of the first pair: the recorder moves on, untouched.
    taken = tmp_path / f"mimi-{STAMP}-codec.wav"
    taken.write_bytes(b"not ours")
    rec = SessionRecorder(tmp_path)
    rec.close()
    assert taken.read_bytes() == b"not ours"
    assert rec.input_path.name == f"mimi-{STAMP}-2-input.wav"
    assert not (tmp_path / f"mimi-{STAMP}-input.wav").exists()  # the half-claimed name was given back


def test_recorders_in_several_processes_at_once_never_share_a_file(tmp_path) -> None:
    script = textwrap.dedent(f"""
        import sys, time
        time.strftime = lambda *a: {STAMP!r}
        from app.audio.recorder import SessionRecorder
        import numpy as np
        for i in range(5):
            r = SessionRecorder(sys.argv[1])
            r.write(np.full({CHUNK}, float(sys.argv[2]) / 10, np.float32), np.zeros({CHUNK}, np.float32))
            r.close()
            print(r.input_path, flush=True)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(k)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True) for k in range(4)]
    outputs = [p.communicate(timeout=60)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    inputs = [Path(line) for out in outputs for line in out]
    assert len(inputs) == len(set(inputs)) == 20
    assert len(list(tmp_path.glob("*.wav"))) == 40
    for k, out in enumerate(outputs):  # each file holds what its own process wrote
        for line in out:
            np.testing.assert_array_equal(read_int16(Path(line)), pcm16(np.full(CHUNK, k / 10)))


def test_unusable_folder_is_one_line_at_start(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(RecordingError, match=r"file/sub: cannot record there \(not a directory\); choose"):
        SessionRecorder(tmp_path / "file" / "sub")


def test_a_slow_disk_makes_write_drop_and_count_never_wait(tmp_path, monkeypatch) -> None:
    real_append = recorder_module._WavFile.append

    def slow_append(self, pcm):
        time.sleep(0.05)  # a disk far slower than real time (two files: 100 ms per 80 ms chunk)
        real_append(self, pcm)

    monkeypatch.setattr(recorder_module._WavFile, "append", slow_append)
    rec = SessionRecorder(tmp_path, queue_chunks=4)
    dry = chunks(60)
    times = []
    for d in dry:
        t0 = time.perf_counter()
        rec.write(d, d)
        times.append(time.perf_counter() - t0)
        time.sleep(0.002)
    # Each append takes 50 ms: a write() that waited for the disk would show it.
    assert max(times) < 0.025, f"write() waited {max(times) * 1000:.1f} ms"
    assert rec.dropped_chunks > 0
    rec.close()
    assert rec.error is None
    assert rec.written_chunks + rec.dropped_chunks == 60
    written = read_int16(rec.input_path).reshape(-1, CHUNK)
    assert len(written) == rec.written_chunks
    np.testing.assert_array_equal(read_int16(rec.output_path), read_int16(rec.input_path))  # same chunks dropped
    kept = {bytes(pcm16(d)) for d in dry}
    assert all(row.tobytes() in kept for row in written)


def test_close_returns_in_bounded_time_when_the_writer_is_stuck(tmp_path, monkeypatch) -> None:
    release = threading.Event()
    real_append = recorder_module._WavFile.append

    def stuck_append(self, pcm):
        release.wait(30)  # a disk that stopped answering (a dead network share)
        real_append(self, pcm)

    monkeypatch.setattr(recorder_module._WavFile, "append", stuck_append)
    rec = SessionRecorder(tmp_path, queue_chunks=8)
    for d in chunks(20):
        rec.write(d, d)
    t0 = time.monotonic()
    rec.close(timeout_s=0.5)
    assert time.monotonic() - t0 < 1.5
    assert rec.error is not None and "\n" not in rec.error
    assert rec.error.startswith(f"recording stopped: {rec.input_path}: the disk did not take")
    release.set()


def test_a_deleted_folder_stops_the_recording_with_one_line(tmp_path) -> None:
    folder = tmp_path / "rec"
    rec = SessionRecorder(folder)
    for d in chunks(3):
        rec.write(d, d)
    assert rec.flush()
    shutil.rmtree(folder)
    for d in chunks(5):
        rec.write(d, d)  # never raises
    assert rec.flush()
    assert rec.error == f"recording stopped: {rec.input_path}: the file was deleted"
    rec.write(chunks(1)[0], chunks(1)[0])
    rec.close()
    assert rec.written_chunks == 3


FULL_DISK_SCRIPT = """
import json, resource, signal, sys, time
import numpy as np
from app.audio.recorder import SessionRecorder
from app.config import FRAME_SIZE

folder, limit, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
rec = SessionRecorder(folder)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
rng = np.random.default_rng(0)
slowest, raised = 0.0, None
for i in range(n):
    x = rng.uniform(-1, 1, FRAME_SIZE).astype(np.float32)
    t0 = time.perf_counter()
    try:
        rec.write(x, -x)
    except BaseException as exc:
        raised = repr(exc)
    slowest = max(slowest, time.perf_counter() - t0)
    time.sleep(0.001)
rec.close()
print(json.dumps({"error": rec.error, "raised": raised, "slowest_s": slowest, "written": rec.written_chunks,
                  "input": str(rec.input_path), "output": str(rec.output_path)}))
"""


def test_a_full_disk_stops_the_recording_not_the_caller_and_keeps_valid_files(tmp_path) -> None:
    good = 10
    limit = 44 + good * CHUNK * 2 + 1000  # chunk 11 fits only in part: the kernel refuses the rest
    r = subprocess.run([sys.executable, "-c", FULL_DISK_SCRIPT, str(tmp_path), str(limit), "40"], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["raised"] is None and out["slowest_s"] < 0.05  # a queue put, not a disk write
    # EFBIG, refused just as ENOSPC would be; the reason in the app's words for a failed write
    assert out["error"] == (f"recording stopped: {out['input']}: file too large for the file system "
                            "or for this process's size limit (ulimit -f)")
    assert out["written"] == good
    x = np.random.default_rng(0).uniform(-1, 1, (good, CHUNK)).astype(np.float32)
    np.testing.assert_array_equal(read_int16(Path(out["input"])), pcm16(x))  # every chunk before the failure
    np.testing.assert_array_equal(read_int16(Path(out["output"])), pcm16(-x))  # cut back to match
