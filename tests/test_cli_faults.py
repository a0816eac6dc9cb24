"""The command line under faults: termination signals, out-of-range numbers, input == output,
NaN/Inf input samples, a full disk (audio output and --metrics-out), no display for the window.

Where a real process matters (signals, file size limits, Qt aborting) the CLI runs as a subprocess,
`python -m app ...`, with its own MIMI_LIVE_DATA_DIR; a full disk is simulated with RLIMIT_FSIZE
(writes fail with EFBIG, SIGXFSZ ignored) or /dev/full (ENOSPC), both without mounting anything.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.audio.files import AudioFileError, read_audio_24k_mono
from app.cli import main
from app.config import SAMPLE_RATE_HZ
from conftest import model_dir

REPO = Path(__file__).resolve().parents[1]
PROG = "mimi-live"
# Signals that must end a command as Ctrl-C does (SIGHUP is POSIX only).
TERMINATING = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
DEV_FULL = Path("/dev/full")


@pytest.fixture
def tiny8() -> Path:
    return model_dir("tiny-8cb")


def app_env(tmp_path: Path, base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """A subprocess environment whose app writes land in tmp_path."""
    env = dict(os.environ if base is None else base)
    env.update(MIMI_LIVE_DATA_DIR=str(tmp_path / "data"), MIMI_LIVE_THREADS="1",
               MIMI_LIVE_LOG_DIR=str(tmp_path / "log"))
    env.update(extra)
    return env


def run_app(args: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=kwargs.pop("timeout", 120), **kwargs)


def start_app(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "app", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the app ended before {what}: {proc.communicate()}")
        if time.monotonic() > deadline:
            if proc is not None:
                proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def file_size_limit(limit_bytes: int):
    """preexec_fn: writes past limit_bytes fail with EFBIG (instead of SIGXFSZ killing the process)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def write_noise(path: Path, seconds: float, rate_hz: int = SAMPLE_RATE_HZ) -> Path:
    pcm = 0.1 * np.random.default_rng(0).standard_normal(int(seconds * rate_hz))
    sf.write(path, pcm.astype(np.float32), rate_hz, format="WAV", subtype="PCM_16")
    return path


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------
# 1. SIGTERM / SIGHUP behave like Ctrl-C


@pytest.mark.parametrize("signum", [signal.SIGINT, *TERMINATING], ids=lambda s: signal.Signals(s).name)
def test_roundtrip_ended_by_a_signal_leaves_no_part_file(tmp_path, tiny8, signum):
    # SIGINT is the reference (it already worked); SIGTERM and SIGHUP left OUT.wav.part behind.
    src = write_noise(tmp_path / "long.wav", 300)
    out = tmp_path / "out.wav"
    part = tmp_path / "out.wav.part"
    app = start_app(["roundtrip", str(src), str(out), "--model", str(tiny8)], app_env(tmp_path))
    wait_for(part.exists, 60, "the .part file", app)
    app.send_signal(signum)
    _, err = app.communicate(timeout=60)
    assert app.returncode == 130, err
    assert error_lines(err) == [f"{PROG}: interrupted"]
    assert not part.exists() and not out.exists()


@pytest.mark.pulse
@pytest.mark.parametrize("signum", TERMINATING, ids=lambda s: signal.Signals(s).name)
def test_run_ended_by_a_signal_prints_its_summary_and_keeps_every_metrics_line(pulse_server, tmp_path, tiny8, signum):
    metrics = tmp_path / "metrics.jsonl"

    def lines() -> int:
        return metrics.read_text().count("\n") if metrics.exists() else 0

    app = start_app(["run", "--model", str(tiny8), "--tone", "440", "--duration", "120", "--json",
                     "--metrics-out", str(metrics)], app_env(tmp_path, pulse_server.env))
    wait_for(lambda: lines() >= 10, 60, "10 metrics lines", app)
    app.send_signal(signum)
    out, err = app.communicate(timeout=60)
    assert app.returncode == 0, err  # as Ctrl-C: an interrupted run is a normal end
    summary = json.loads(out)
    assert summary["stop_reason"] == f"interrupted ({signal.Signals(signum).name})"
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert summary["metrics_dropped"] == 0
    assert len(rows) == summary["frames"] >= 10  # one line per 80 ms chunk, none lost on the way out
    assert "Traceback" not in err


@pytest.mark.parametrize("signum", TERMINATING, ids=lambda s: signal.Signals(s).name)
def test_window_closed_by_a_signal_saves_its_settings_and_exits_as_ctrl_c(tmp_path, signum):
    env = app_env(tmp_path, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"))  # QSettings
    ini = tmp_path / "config" / "mimi-live" / "mimi-live.ini"
    app = start_app(["gui"], env)
    wait_for(ini.exists, 90, "the window's settings file (the event loop is running)", app)
    time.sleep(0.5)
    app.send_signal(signum)
    _, err = app.communicate(timeout=60)
    assert app.returncode == 130, err
    assert error_lines(err) == [f"{PROG}: interrupted"]
    assert "geometry" in ini.read_text()  # closeEvent ran: settings saved, engine shut down


# ---------------------------------------------------------------------------------------------
# 2. Every number is bounded (argparse: exit code 2, one `error: argument ...` line)


BAD_ARGUMENTS = [
    ("run", "--duration", "-1"), ("run", "--duration", "nan"), ("run", "--duration", "0"),
    ("run", "--duration", "inf"), ("run", "--duration", "1e9"),
    ("run", "--tone", "0"), ("run", "--tone", "-440"), ("run", "--tone", "nan"), ("run", "--tone", "12000"),
    ("run", "--tone", "1e6"),
    ("run", "--chunk-ms", "640"), ("run", "--chunk-ms", "8000000"),
    ("run", "--device-latency-ms", "100000"), ("run", "--device-latency-ms", "0"),
    ("run", "--threads", "100000"), ("run", "--kv-window", "1"), ("run", "--kv-window", "10000000000"),
    ("roundtrip", "--chunk-ms", "8000000"), ("roundtrip", "--chunk-ms", "10080"),
    ("roundtrip", "--threads", "0"), ("roundtrip", "--threads", "100000"),
    ("bench", "--frames", "10000000"), ("bench", "--threads", "100000"), ("bench", "--kv-window", "0"),
    ("export", "--seed", "-1"), ("export", "--seed", str(2**32)),
]


def _argv(command: str, tmp_path: Path, option: str, value: str) -> list[str]:
    model = str(tmp_path)
    if command == "roundtrip":
        return ["roundtrip", str(tmp_path / "in.wav"), str(tmp_path / "out.wav"), "--model", model, option, value]
    if command == "export":
        return ["export", str(tmp_path / "export"), "--random-weights", option, value]
    return [command, "--model", model, option, value]


@pytest.fixture
def no_handlers(monkeypatch):
    """Every command's handler replaced: what parses is recorded, nothing runs (no device, no hang)."""
    ran: list[str] = []
    for name in ("run.cmd_run", "roundtrip.cmd_roundtrip", "bench.cmd_bench", "export.cmd_export"):
        def handler(args, name: str = name) -> int:
            ran.append(name)
            return 0

        monkeypatch.setattr(f"app.cli.{name}", handler)
    monkeypatch.setattr("app.models.resolve_model", lambda model: model)
    return ran


@pytest.mark.parametrize(("command", "option", "value"), BAD_ARGUMENTS, ids=[" ".join(a) for a in BAD_ARGUMENTS])
def test_out_of_range_numbers_are_argparse_errors(tmp_path, capsys, no_handlers, command, option, value):
    with pytest.raises(SystemExit) as info:
        main(_argv(command, tmp_path, option, value))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"{PROG} {command}: error: argument {option}: "), err
    assert "Traceback" not in "\n".join(err)
    assert no_handlers == []


GOOD_ARGUMENTS = [
    ("run", "--duration", "604800"), ("run", "--duration", "0.5"), ("run", "--tone", "11999.5"),
    ("run", "--chunk-ms", "560"), ("run", "--device-latency-ms", "500"), ("run", "--device-latency-ms", "1"),
    ("run", "--kv-window", "none"), ("run", "--kv-window", "2"), ("roundtrip", "--chunk-ms", "10000"),
    ("bench", "--frames", "15000"), ("export", "--seed", str(2**32 - 1)),
]


@pytest.mark.parametrize(("command", "option", "value"), GOOD_ARGUMENTS, ids=[" ".join(a) for a in GOOD_ARGUMENTS])
def test_numbers_in_range_still_parse(tmp_path, no_handlers, command, option, value):
    assert main(_argv(command, tmp_path, option, value)) == 0
    assert len(no_handlers) == 1


def test_run_chunk_bound_is_the_engines():
    from app.audio.engine_config import CHUNK_CHOICES_MS
    from app.cli.args import RUN_CHUNK_MS_MAX, chunk_ms

    parse = chunk_ms(RUN_CHUNK_MS_MAX)
    assert max(CHUNK_CHOICES_MS) == RUN_CHUNK_MS_MAX
    assert [parse(str(ms)) for ms in CHUNK_CHOICES_MS] == list(CHUNK_CHOICES_MS)


# ---------------------------------------------------------------------------------------------
# 3. Input == output is refused


@pytest.mark.parametrize("spelling", ["same", "dotdot", "symlink", "hardlink", "part"])
def test_roundtrip_onto_its_own_input_is_refused(tmp_path, capsys, tiny8, spelling):
    folder = tmp_path / "audio"
    folder.mkdir()
    src = write_noise(folder / ("in.wav.part" if spelling == "part" else "in.wav"), 0.5)
    before = src.read_bytes()
    if spelling == "same":
        out = src
    elif spelling == "dotdot":
        out = folder / ".." / "audio" / "." / src.name
    elif spelling == "symlink":
        out = folder / "link.wav"
        out.symlink_to(src)
    elif spelling == "hardlink":
        out = folder / "hard.wav"
        os.link(src, out)
    else:  # out.part would be the input
        out = folder / "in.wav"
    names = sorted(p.name for p in folder.iterdir())
    assert main(["roundtrip", str(src), str(out), "--model", str(tiny8)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{PROG}: error: {out}: "), err
    assert "input" in err[0]
    assert src.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == names  # nothing written, no .part


# ---------------------------------------------------------------------------------------------
# 4. NaN / Inf input samples: one line with the file and the first bad position


def _bad_wav(path: Path, rate_hz: int, channels: int, index: int, value: float, channel: int = 0) -> Path:
    pcm = np.zeros((rate_hz * 2, channels), np.float32)
    pcm[index, channel] = value
    pcm[index + 100, 0] = np.nan  # a later one is not the one reported
    sf.write(path, pcm, rate_hz, subtype="FLOAT")
    return path


def test_nan_input_names_the_file_and_the_first_bad_sample(tmp_path, capsys, tiny8):
    src = _bad_wav(tmp_path / "nan.wav", SAMPLE_RATE_HZ, 1, 30_000, np.nan)
    assert main(["roundtrip", str(src), str(tmp_path / "out.wav"), "--model", str(tiny8)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"{PROG}: error: {src}: ")
    assert "sample 30000" in err[0] and "1.250 s" in err[0] and "NaN" in err[0]
    assert not (tmp_path / "out.wav").exists() and not (tmp_path / "out.wav.part").exists()


def test_infinite_input_sample_position_is_in_the_files_own_rate(tmp_path):
    src = _bad_wav(tmp_path / "inf.wav", 48_000, 2, 72_000, -np.inf, channel=1)
    with pytest.raises(AudioFileError) as info:
        read_audio_24k_mono(src)
    message = str(info.value)
    assert message.startswith(f"{src}: ")
    assert "sample 72000" in message and "1.500 s" in message and "channel 2" in message
    assert "infinite" in message


def test_run_input_file_with_nan_is_refused_before_streaming(tmp_path, capsys, tiny8):
    src = _bad_wav(tmp_path / "nan.wav", SAMPLE_RATE_HZ, 1, 12_000, np.nan)
    assert main(["run", "--model", str(tiny8), "--input-file", str(src), "--duration", "1"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith(f"{PROG}: error: ")]
    assert len(err) == 1 and str(src) in err[0] and "sample 12000" in err[0] and "0.500 s" in err[0], err


# ---------------------------------------------------------------------------------------------
# 5. roundtrip onto a full disk


@pytest.mark.parametrize("limit_bytes", [0, 30_000, 1_000_000])
def test_roundtrip_over_the_file_size_limit_is_one_line(tmp_path, tiny8, limit_bytes):
    src = write_noise(tmp_path / "in.wav", 60)  # 2.9 MB of 16-bit output
    out = tmp_path / "out.wav"
    env = app_env(tmp_path)
    # The disk fills after the model's derived copies are in the data dir (they have their own message).
    assert run_app(["info", "--model", str(tiny8)], env).returncode == 0
    run = run_app(["roundtrip", str(src), str(out), "--model", str(tiny8)], env,
                  preexec_fn=file_size_limit(limit_bytes))
    assert run.returncode == 1, run.stderr
    assert error_lines(run.stderr) == [
        f"{PROG}: error: {out}: cannot write audio: file too large for the file system or for this "
        "process's size limit (ulimit -f)"
    ]
    assert not out.exists() and not (tmp_path / "out.wav.part").exists()


@pytest.mark.skipif(not DEV_FULL.exists(), reason="no /dev/full here")
def test_roundtrip_onto_a_full_device_says_no_space_left(tmp_path, tiny8):
    src = write_noise(tmp_path / "in.wav", 5)
    out = tmp_path / "out.wav"
    (tmp_path / "out.wav.part").symlink_to(DEV_FULL)  # the .part file is where the writes go: ENOSPC
    run = run_app(["roundtrip", str(src), str(out), "--model", str(tiny8)], app_env(tmp_path))
    assert run.returncode == 1, run.stderr
    assert error_lines(run.stderr) == [f"{PROG}: error: {out}: cannot write audio: no space left on device"]
    assert not out.exists() and not os.path.lexists(tmp_path / "out.wav.part")


# ---------------------------------------------------------------------------------------------
# 6. --metrics-out on a full disk fails alone


@pytest.mark.pulse
def test_metrics_over_the_file_size_limit_fail_alone(pulse_server, tmp_path, tiny8):
    metrics = tmp_path / "metrics.jsonl"
    limit = 5000  # ~8 lines of the tiny model's metrics, well within the 4 s run
    env = app_env(tmp_path, pulse_server.env)
    assert run_app(["info", "--model", str(tiny8)], env).returncode == 0  # derived copies made first
    run = run_app(["run", "--model", str(tiny8), "--tone", "440", "--duration", "4", "--json",
                   "--metrics-out", str(metrics)], env, preexec_fn=file_size_limit(limit))
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["stop_reason"] == "duration reached"
    assert summary["frames"] * 0.08 > 3.0  # streaming went on to its end
    failures = [line for line in run.stderr.splitlines() if "metrics" in line]
    assert failures == [f"{PROG}: error: {metrics}: cannot write metrics: file too large for the file system or "
                        "for this process's size limit (ulimit -f); streaming goes on without them"]
    text = metrics.read_text()
    assert text.endswith("\n") and len(text) <= limit
    rows = [json.loads(line) for line in text.splitlines()]  # valid JSON lines up to the failure
    assert 0 < len(rows) < summary["frames"]
    assert "Traceback" not in run.stderr


@pytest.mark.skipif(not DEV_FULL.exists(), reason="no /dev/full here")
def test_metrics_file_on_a_full_device_reports_once_and_goes_on(capsys):
    from app.cli.metrics_file import MetricsFile

    metrics = MetricsFile(DEV_FULL)
    for i in range(3):
        metrics.write({"frame": i})
    metrics.close()
    assert metrics.failed
    assert capsys.readouterr().err.splitlines() == [
        f"{PROG}: error: {DEV_FULL}: cannot write metrics: no space left on device; streaming goes on without them"
    ]


# ---------------------------------------------------------------------------------------------
# 7. The window with no display


@pytest.mark.parametrize("argv", [[], ["gui"]], ids=["no command", "gui"])
def test_window_without_a_display_says_so_in_one_line(tmp_path, argv):
    env = app_env(tmp_path, XDG_RUNTIME_DIR=str(tmp_path))  # no wayland-0 socket there
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(name, None)
    run = run_app(argv, env, timeout=60)
    assert run.returncode == 1, run.stderr
    lines = error_lines(run.stderr)
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"{PROG}: error: no display")
    assert "DISPLAY" in lines[0] and "xvfb-run -a mimi-live" in lines[0]


@pytest.mark.parametrize(("env", "missing"), [
    ({}, True),
    ({"QT_QPA_PLATFORM": "xcb"}, True),
    ({"QT_QPA_PLATFORM": "wayland;xcb"}, True),
    ({"QT_QPA_PLATFORM": "offscreen"}, False),
    ({"QT_QPA_PLATFORM": "vnc"}, False),
    ({"DISPLAY": ":0"}, False),
    ({"WAYLAND_DISPLAY": "wayland-1"}, False),
])
def test_missing_display_rule(monkeypatch, tmp_path, env, missing):
    from app.ui.app import missing_display

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "platform", "linux")
    assert (missing_display() is not None) == missing
