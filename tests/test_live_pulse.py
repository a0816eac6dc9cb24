"""The live engine through a real audio server: PortAudio -> null sinks -> PortAudio.

Every test runs twice, on PulseAudio and on PipeWire (the `audio_server` fixture; PortAudio
reaches PipeWire through ALSA's `pulse` device and pipewire-pulse). `mimi-live run` runs in a
subprocess (the server picks its source and sink from the environment before PortAudio starts).
The test plays into the `mic` sink and listens on `speaker.monitor`.

Latency: chirps are played into a combine sink that feeds `mic` and `speaker` at once, so one
recording of `speaker.monitor` holds each chirp twice: straight away (the reference) and after
the app's whole path (device buffers, chunking, codec, pre-roll). The gap is the end-to-end
latency, measured on the same clock. It is measured in bypass, whose delay equals the codec
path's by design; random-weight stand-ins turn speech into noise, so the codec path is checked for
continuity instead (no underruns, output present).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.codec.kvwindow import DEFAULT_KV_SLACK
from app.config import SAMPLE_RATE_HZ
from conftest import model_dir

pytestmark = [pytest.mark.pulse, pytest.mark.flaky(reruns=1, reruns_delay=2)]

RATE = SAMPLE_RATE_HZ
CHIRP_S = 0.05
CHIRP_SPACING_S = 1.0
REPO = Path(__file__).resolve().parents[1]


def chirp() -> np.ndarray:
    t = np.arange(int(CHIRP_S * RATE)) / RATE
    sweep = 500 * t + (4000 - 500) / (2 * CHIRP_S) * t * t
    return (0.5 * np.sin(2 * np.pi * sweep) * np.hanning(len(t))).astype(np.float32)


def find_chirps(recording: np.ndarray, template: np.ndarray, min_gap_s: float = 0.03) -> list[int]:
    """Sample positions where the template correlates strongly, strongest first within each gap."""
    score = np.abs(np.correlate(recording, template, mode="valid"))
    threshold = 0.3 * score.max()
    gap = int(min_gap_s * RATE)
    peaks, i = [], 0
    while i < len(score):
        if score[i] > threshold:
            j = i + int(np.argmax(score[i : i + gap]))
            peaks.append(j)
            i = j + gap
        else:
            i += 1
    return peaks


def chirp_pairs(peaks: list[int], shortest_s: float = 0.08, longest_s: float = 0.5) -> list[tuple[int, int]]:
    """(reference, the app's copy) for each chirp: a peak followed by another within the delays a
    path can have. A peak without its partner (a reference a slave missed) is skipped."""
    pairs, i = [], 0
    while i + 1 < len(peaks):
        gap = (peaks[i + 1] - peaks[i]) / RATE
        if shortest_s <= gap <= longest_s:
            pairs.append((peaks[i], peaks[i + 1]))
            i += 2
        else:
            i += 1
    return pairs


def run_app(server, model: Path, seconds: float, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "app", "run", "--model", str(model), "--duration", str(seconds), "--json", *extra]
    return subprocess.Popen(command, env=server.env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(app: subprocess.Popen, timeout: float) -> dict:
    out, err = app.communicate(timeout=timeout)
    assert app.returncode == 0, err
    return json.loads(out)


def dropout_moments(metrics: Path) -> str:
    """Where a run's underruns happened, chunk by chunk: what a failure message needs to be read."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    moments, seen = [], 0
    for row in rows:
        if row["underruns"] != seen:
            moments.append(f"{row['session_s']:.2f}s: +{row['underruns'] - seen} "
                           f"(queue {row['output_buffer_ms']:.0f} ms, target {row['target_ms']:.0f} ms, "
                           f"input wait {row['queue_ms']:.0f} ms)")
            seen = row["underruns"]
    return f"underruns at {moments[:12]} of {len(rows)} chunks"


def server_name(server) -> str:
    return f"PipeWire {server.version}" if hasattr(server, "version") else "PulseAudio"


def test_bypass_end_to_end_latency_through_the_audio_server(audio_server, tmp_path) -> None:
    template = chirp()
    # The first chirp 2 s in: a combine sink starts its slaves one by one, and the microphone's
    # copy of a chirp 1 s in was seen missing (while the speaker's was there).
    signal = np.zeros(int(7 * RATE), np.float32)
    starts = [int((2 + k * CHIRP_SPACING_S) * RATE) for k in range(5)]
    for start in starts:
        signal[start : start + len(template)] = template
    wav = tmp_path / "chirps.wav"
    sf.write(str(wav), signal, RATE)
    loaded = audio_server.pactl("load-module", "module-combine-sink", "sink_name=both", "slaves=mic,speaker")
    assert loaded.returncode == 0, loaded.stderr

    metrics = tmp_path / "metrics.jsonl"
    app = run_app(audio_server, model_dir("tiny-8cb"), 10, "--bypass", "--metrics-out", str(metrics))
    time.sleep(2.0)  # the app is streaming
    recorder = audio_server.start_recording_speaker()
    time.sleep(0.3)
    player = subprocess.Popen(["paplay", "--device=both", str(wav)], env=audio_server.env)
    player.wait(timeout=20)
    summary = finish(app, timeout=30)
    recording = recorder.stop()

    peaks = find_chirps(recording, template)
    # Each chirp comes back twice: the reference, then the app's copy. A combine sink starts its
    # slaves one by one, so the first chirp's reference can be missing (seen on PipeWire): a lone
    # peak is no pair. Four of the five chirps must pair.
    pairs = chirp_pairs(peaks)
    assert len(pairs) >= len(starts) - 1, f"found {len(peaks)} chirps at {[p / RATE for p in peaks]}"
    latencies_ms = [(b - a) * 1000 / RATE for a, b in pairs]
    measured = float(np.median(latencies_ms))
    print(f"\n[{server_name(audio_server)}] end-to-end latency (bypass, 80 ms chunks): "
          f"measured {latencies_ms} ms, p50 {measured:.1f} ms; "
          f"engine estimate p50 {summary['latency_ms']['p50']} ms; pre-roll {summary['preroll_ms']:.1f} ms")
    assert 80 < measured < 400
    # No drift once the timing has seen the machine: the first chirp (~2 s into the session) may
    # land before the first scheduling spike raised the cover once (seen in a CI dry run: 176 ms,
    # then 192-194 ms); after that the delay must stay put.
    settled = latencies_ms[1:]
    assert max(settled) - min(settled) < 15, "latency must not drift within a session"
    assert min(latencies_ms) > max(settled) - 40, "the first chirp is at most one adjustment away"
    # The number on screen is honest: the engine's own estimate is within 25 ms of the measurement.
    assert abs(summary["latency_ms"]["p50"] - measured) < 25
    assert summary["callback_errors"] == 0
    assert summary["underruns"] == 0, dropout_moments(metrics)


def test_sixty_seconds_of_codec_mode_without_underruns(audio_server, tmp_path) -> None:
    rng = np.random.default_rng(0)
    seconds = 60
    envelope = 1 + np.sin(np.arange(seconds * RATE) / RATE * 2 * np.pi * 3)
    speech_like = (0.1 * rng.standard_normal(seconds * RATE) * envelope).astype(np.float32)
    wav = tmp_path / "noise.wav"
    sf.write(str(wav), speech_like, RATE)
    metrics_path = tmp_path / "metrics.jsonl"
    app = run_app(audio_server, model_dir("tiny-8cb"), seconds + 2, "--metrics-out", str(metrics_path))
    time.sleep(1.0)
    player = audio_server.play_into_mic(wav)
    recorder = audio_server.start_recording_speaker()
    summary = finish(app, timeout=seconds + 60)
    played = recorder.stop()
    player.kill()

    # Continuity: a shared VM still stalls a process for tens of ms now and then, which a light
    # model's small target does not cover; a handful of dropouts in a minute is that, not a
    # broken path (which shows as hundreds, or as creeping latency below).
    assert summary["underruns"] <= 10, summary
    assert summary["callback_errors"] == 0
    # Device stalls may cost a dropped frame now and then; latency must not creep.
    assert summary["latency_ms"]["p95"] < summary["latency_ms"]["p50"] + 100, summary
    assert summary["frames"] >= (seconds + 2) * 12.5 * 0.95, summary  # which stage lost the time
    rows = [json.loads(line) for line in metrics_path.read_text().splitlines()]
    assert len(rows) >= 0.95 * (seconds + 2) * 12.5
    late = rows[len(rows) // 2 :]  # 30 s in: the 250-token window (10 s) is full
    for side in ("kv_encoder", "kv_decoder"):  # the window holds: cut back to 250 every 16 tokens
        assert min(r[side] for r in late) == 250 and max(r[side] for r in late) == 250 + DEFAULT_KV_SLACK
    assert max(r["input_level_db"] for r in rows) > -40  # the microphone path carried the noise
    assert np.sqrt(np.mean(played[RATE:] ** 2)) > 1e-3  # and the speaker played something


def test_switching_among_all_seven_paths_through_the_audio_server_causes_no_underrun(audio_server) -> None:
    """The real engine with the classic paths on (tests/live_driver.py), every monitor path heard
    in turn for a second, through a real audio server: no dropout, and every path's bitrate is
    measured from what its encoder produced."""
    from app.audio.engine_config import MONITORS

    command = [sys.executable, str(REPO / "tests" / "live_driver.py"), str(model_dir("tiny-8cb")),
               "--seconds", str(len(MONITORS) + 4), "--cycle-monitors", "1.0"]
    result = subprocess.run(command, env=audio_server.env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.stderr.count("switch at") == len(MONITORS) + 1
    print(f"\n[{server_name(audio_server)}] all paths: underruns {summary['underruns']}, xruns {summary['xruns']}, "
          f"bitrates {summary['classic_bps']}, latency p50 {summary['latency_ms']['p50']} ms")
    assert summary["underruns"] == 0 and summary["callback_errors"] == 0
    assert summary["classic_bps"]["codec2-1200"] == pytest.approx(1200, abs=1)
    assert summary["classic_bps"]["codec2-3200"] == pytest.approx(3200, abs=1)
    assert summary["classic_short_samples"] == 0
