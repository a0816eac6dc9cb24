"""Thread auto-tuning: measured once per model and machine, remembered, overridable."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from app.audio.engine import EngineConfig, load_codec
from app.cli import main
from app.codec import tuning
from app.codec.errors import InputError
from app.codec.tuning import TUNING_FILE, measure_threads, thread_candidates, tuned_threads, tuning_record
from conftest import model_dir


@pytest.fixture(autouse=True)
def eight_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIMI_LIVE_THREADS", raising=False)
    monkeypatch.setattr(tuning, "physical_cores", lambda: 8)


def fake_measure(times: dict[int, float]):
    calls = []

    def measure(folder: Path, threads: int) -> float:
        calls.append(threads)
        return times[threads]

    return measure, calls


def test_candidates() -> None:
    assert thread_candidates(1) == [1]
    assert thread_candidates(2) == [1, 2]
    assert thread_candidates(6) == [1, 2, 4, 6]
    assert thread_candidates(16) == [1, 2, 4, 8, 16]


def test_fewest_threads_within_five_percent_of_the_fastest(tmp_path: Path) -> None:
    measure, calls = fake_measure({1: 10.0, 2: 6.0, 4: 5.2, 8: 5.0})
    assert tuned_threads(model_dir("tiny-8cb"), cache_dir=tmp_path, measure=measure) == 4
    assert calls == [1, 2, 4, 8]
    record = tuning_record(model_dir("tiny-8cb"), cache_dir=tmp_path)
    assert record is not None
    assert record["threads"] == 4 and record["ms_per_frame"] == {"1": 10.0, "2": 6.0, "4": 5.2, "8": 5.0}


def test_remembered_per_model_until_asked_again(tmp_path: Path) -> None:
    measure, calls = fake_measure({1: 3.0, 2: 2.0, 4: 4.0, 8: 5.0})
    assert tuned_threads(model_dir("tiny-8cb"), cache_dir=tmp_path, measure=measure) == 2
    assert tuned_threads(model_dir("tiny-8cb"), cache_dir=tmp_path, measure=measure) == 2
    assert len(calls) == 4  # read back, not measured again
    tuned_threads(model_dir("tiny-16cb"), cache_dir=tmp_path, measure=measure)
    assert len(calls) == 8  # another model is measured on its own
    assert len(json.loads((tmp_path / TUNING_FILE).read_text())) == 2
    faster_alone = fake_measure({1: 1.0, 2: 2.0, 4: 4.0, 8: 5.0})[0]
    assert tuned_threads(model_dir("tiny-8cb"), cache_dir=tmp_path, again=True, measure=faster_alone) == 1
    assert (tuning_record(model_dir("tiny-16cb"), cache_dir=tmp_path) or {}).get("threads") == 2  # untouched


def test_a_changed_model_file_or_a_broken_record_is_measured_again(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    for f in model_dir("tiny-8cb").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    measure, calls = fake_measure({1: 1.0, 2: 2.0, 4: 4.0, 8: 5.0})
    tuned_threads(folder, cache_dir=tmp_path, measure=measure)
    stat = (folder / "decoder_model.onnx").stat()
    os.utime(folder / "decoder_model.onnx", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    tuned_threads(folder, cache_dir=tmp_path, measure=measure)
    assert len(calls) == 8
    (tmp_path / TUNING_FILE).write_text("{not json")
    assert tuned_threads(folder, cache_dir=tmp_path, measure=measure) == 1
    assert len(calls) == 12 and json.loads((tmp_path / TUNING_FILE).read_text())


def test_environment_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIMI_LIVE_THREADS", "3")
    assert tuned_threads(model_dir("tiny-8cb"), cache_dir=tmp_path, measure=lambda *a: pytest.fail("measured")) == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("MIMI_LIVE_THREADS", bad)
        with pytest.raises(InputError, match="MIMI_LIVE_THREADS"):
            tuned_threads(model_dir("tiny-8cb"), cache_dir=tmp_path)


def test_one_core_needs_no_measuring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tuning, "physical_cores", lambda: 1)
    assert tuned_threads(model_dir("tiny-8cb"), cache_dir=tmp_path, measure=lambda *a: pytest.fail("measured")) == 1


def test_real_measurement_and_the_engine_uses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert measure_threads(model_dir("tiny-8cb"), 1) > 0
    monkeypatch.setattr(tuning, "physical_cores", lambda: 2)
    codec = load_codec(EngineConfig(model=model_dir("tiny-8cb")))  # threads not given: tuned
    record = tuning_record(model_dir("tiny-8cb"))
    assert record is not None and set(record["ms_per_frame"]) == {"1", "2"}
    assert codec.threads == record["threads"]


def test_cli_tune_json(capsys: pytest.CaptureFixture) -> None:
    assert main(["tune", "--model", str(model_dir("tiny-8cb")), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["threads"] in (1, 2, 4, 8) and set(report["ms_per_frame"]) == {"1", "2", "4", "8"}
    assert report["overridden_by"] is None
