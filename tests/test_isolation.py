"""The test session writes nothing into the real home (conftest.py's pytest_configure).

Snapshots the folders the app and its libraries would write under the real home (computed
from Path.home(), not from the redirected variables), does what the suite does — loads a model
in-process and in subprocesses with the session's environment (which is what the audio servers'
apps get), sets up the log file, writes QSettings — and checks that the writes landed in the
session's temporary home while the real folders did not change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import SESSION_DIRS, model_dir, session_home

REPO = Path(__file__).resolve().parents[1]
HOME = Path.home()
# Where each would land without the session's redirection (platformdirs / Qt / libraries on Linux).
# Not onnxruntime's ~/.cache/Microsoft/DeveloperTools: every onnxruntime user on the machine
# touches it, so it is checked the other way round (the session's copy must appear).
REAL_FOLDERS = [
    HOME / ".local/share/mimi-live",  # data dir: threads.json, optimized/, decoders/, manifests
    HOME / ".local/state/mimi-live",  # platformdirs.user_log_dir
    HOME / ".config/mimi-live",  # QSettings (IniFormat, UserScope)
    HOME / ".cache/huggingface",  # the HF hub cache
    HOME / ".local/state/wireplumber",  # wireplumber's stream state (the PipeWire server)
]


def snapshot(folder: Path) -> dict[str, tuple[int, int]] | None:
    """Every entry under `folder` with its size and mtime; None if the folder does not exist."""
    if not folder.exists():
        return None
    entries = {".": (0, folder.stat().st_mtime_ns)}
    for path in folder.rglob("*"):
        try:
            stat = path.lstat()
        except OSError:
            continue
        entries[str(path.relative_to(folder))] = (stat.st_size, stat.st_mtime_ns)
    return entries


def session_env() -> dict[str, str]:
    """The session's environment as a session fixture sees it (no per-test data dir), and with
    thread tuning on, so the app writes threads.json too."""
    env = {**os.environ, "MIMI_LIVE_DATA_DIR": str(session_home() / SESSION_DIRS["MIMI_LIVE_DATA_DIR"])}
    env.pop("MIMI_LIVE_THREADS", None)
    return env


def run_app(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "app", *args], cwd=REPO, env=session_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def test_the_session_points_every_user_folder_at_a_temporary_home() -> None:
    import platformdirs

    from app.config import data_dir

    home = session_home()
    assert not home.is_relative_to(HOME) or home.is_relative_to(Path(os.environ.get("TMPDIR", "/tmp")))
    for name, sub in SESSION_DIRS.items():
        if name != "MIMI_LIVE_DATA_DIR":  # the per-test fixture overrides that one
            assert os.environ[name] == str(home / sub)
    assert data_dir() != HOME / ".local/share/mimi-live"
    assert Path(platformdirs.user_log_dir("mimi-live", appauthor=False)).is_relative_to(home)
    assert Path(platformdirs.user_config_dir("mimi-live")).is_relative_to(home)
    result = subprocess.run(
        [sys.executable, "-c", "import huggingface_hub.constants as c; print(c.HF_HUB_CACHE)"],
        env=session_env(), capture_output=True, text=True, timeout=60)
    assert Path(result.stdout.strip()).is_relative_to(home), result.stderr


def test_suite_like_work_leaves_the_real_home_untouched(tmp_path: Path) -> None:
    before = {folder: snapshot(folder) for folder in REAL_FOLDERS}
    folder = model_dir("tiny-8cb")

    # In-process, as most tests do (the per-test data dir).
    from app.codec import StreamingCodec
    from app.config import FRAME_SIZE

    StreamingCodec(folder).decode(StreamingCodec(folder).encode(np.zeros(FRAME_SIZE, np.float32)))
    # Subprocesses with the session's environment, as the live tests' apps run.
    info = json.loads(run_app("info", "--model", str(folder), "--json").stdout)
    assert info
    run_app("models", "--json")
    script = (
        "from PySide6.QtCore import QSettings\n"
        "from app.logs import setup_logging\nfrom app.ui.app import make_settings\n"
        "print(setup_logging())\n"
        "s = make_settings(); s.setValue('isolation/check', 1); s.sync(); print(s.fileName())\n"
    )
    written = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=session_env(),
                             capture_output=True, text=True, timeout=120)
    assert written.returncode == 0, written.stderr
    log_file, settings_file = (Path(line) for line in written.stdout.split())

    home = session_home()
    assert log_file.is_relative_to(home) and log_file.is_file()
    assert settings_file.is_relative_to(home) and settings_file.is_file()
    assert (home / SESSION_DIRS["MIMI_LIVE_DATA_DIR"] / "threads.json").is_file()
    after = {folder: snapshot(folder) for folder in REAL_FOLDERS}
    changed = [str(folder) for folder in REAL_FOLDERS if before[folder] != after[folder]]
    assert changed == [], f"the tests wrote into the real home: {changed}"
