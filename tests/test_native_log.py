"""The audio C libraries' stderr lines go to the log, counted; everything else still reaches stderr.

Each case runs in a child process, because the redirection is of the process's file descriptor 2
(what ALSA's and PortAudio's fprintf(stderr, ...) write to): `os.write(2, ...)` is that same path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import model_dir

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, logging, os, sys
from app.audio import native_log
from app.audio.native_log import NativeMessages
logging.basicConfig(filename=sys.argv[1], level=logging.INFO, format="%(message)s")
messages = NativeMessages()
messages.start()
print("before", file=sys.stderr, flush=True)
for i in range(native_log.VERBATIM_LINES + 5):
    os.write(2, f"ALSA lib pcm.c:8570:(snd_pcm_recover) underrun occurred #{i}\n".encode())
os.write(2, b"Expression 'ret' failed in 'src/hostapi/alsa/pa_linux_alsa.c', line: 1736\n")
os.write(2, b"a line of the app's own\n")
print("python's own", file=sys.stderr, flush=True)
os.write(2, b"an unfinished line")
messages.stop()
print("after", file=sys.stderr, flush=True)
print(json.dumps({"count": messages.count, "xruns": messages.underruns}))
"""


def _run_child(tmp_path: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    log_file = tmp_path / "app.log"
    done = subprocess.run([sys.executable, "-c", CHILD, str(log_file)], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done, log_file.read_text().splitlines()


def test_library_lines_are_logged_and_counted_not_shown(tmp_path) -> None:
    done, log_lines = _run_child(tmp_path)
    assert "ALSA lib" not in done.stderr and "pa_linux_alsa" not in done.stderr
    assert json.loads(done.stdout) == {"count": 26, "xruns": 25}
    verbatim = [line for line in log_lines if line.startswith("audio library: ALSA lib")]
    assert len(verbatim) == 20 and verbatim[0].endswith("underrun occurred #0")
    # The rest is summed up when the redirection ends, so the log does not grow line by line for hours.
    assert log_lines[-1] == "audio library: 6 more lines (26 in all, 25 of them xruns)"


def test_every_other_line_reaches_stderr_in_order(tmp_path) -> None:
    done, _ = _run_child(tmp_path)
    lines = done.stderr.splitlines()
    assert sorted(lines) == sorted(["before", "a line of the app's own", "python's own", "an unfinished line", "after"])
    # Python's lines keep their order; so do the lines written to the descriptor (what C writes).
    expected = ["before", "python's own", "after"]
    assert [line for line in lines if line in expected] == expected
    assert lines.index("a line of the app's own") < lines.index("an unfinished line")


def test_a_python_line_never_lands_inside_a_library_line(tmp_path) -> None:
    """ALSA writes "ALSA lib ", the message and the newline separately: a Python line printed in
    between must still reach the terminal (it has its own descriptor)."""
    child = (
        "import os, sys\n"
        "from app.audio.native_log import NativeMessages\n"
        "with NativeMessages():\n"
        "    os.write(2, b'ALSA lib pcm.c:8570:(snd_pcm_recover) ')\n"
        "    print('mimi-live: warning: reconnecting', file=sys.stderr, flush=True)\n"
        "    os.write(2, b'underrun occurred\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", child], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "mimi-live: warning: reconnecting\n"


@pytest.mark.pulse
@pytest.mark.slow
@pytest.mark.flaky(reruns=1, reruns_delay=2)
def test_alsa_lines_of_a_live_run_go_to_its_log_not_the_terminal(pulse_server, tmp_path) -> None:
    """A frozen process always finds its ALSA stream run dry when it wakes: ALSA prints
    `underrun occurred` on stderr. The run's terminal shows none of it; its log and summary do."""
    env = dict(pulse_server.env, MIMI_LIVE_LOG_DIR=str(tmp_path / "log"))
    app = subprocess.Popen([sys.executable, "-m", "app", "run", "--model", str(model_dir("tiny-8cb")), "--tone", "440",
                            "--duration", "7", "--json"], env=env, cwd=REPO, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3.0)
        for _ in range(3):
            os.kill(app.pid, signal.SIGSTOP)
            time.sleep(0.4)
            os.kill(app.pid, signal.SIGCONT)
            time.sleep(0.5)
        out, err = app.communicate(timeout=60)
    finally:
        if app.poll() is None:
            app.kill()
    assert app.returncode == 0, err
    lines = json.loads(out)["audio_library_lines"]
    log_text = (tmp_path / "log" / "mimi-live.log").read_text()
    print(f"\nlibrary lines: {lines}; stderr: {err.strip()[-400:]}")
    assert lines["total"] > 0 and "audio library: ALSA lib" in log_text
    assert "ALSA lib" not in err and "pa_linux_alsa" not in err
