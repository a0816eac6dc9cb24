"""The window's saved preferences: every QSettings key in one place, typed (GUI thread).

The key strings are the ones earlier versions wrote, so a user's saved settings still load.
An INI file gives every value back as text, so each getter converts what it reads.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from app.config import APP_NAME, CHUNK_CHOICES_MS, DEFAULT_KV_WINDOW

WINDOW_GEOMETRY = "window/geometry"
CHUNK_MS = "audio/chunk_ms"
SOURCE = "audio/source"
INPUT_FILE = "audio/file"
DEVICE = "audio/{kind}_device"  # kind: "input" or "output"
KV_WINDOW = "model/kv_window"
CODEBOOKS = "model/codebooks"
SELECTED_MODEL = "model/selected"
MODEL_FOLDERS = "model/folders"
MONITOR = "session/monitor"
CLASSIC_PATHS = "session/classic_paths"
LOWEST_LATENCY = "audio/lowest_latency"
RECORD_FOLDER = "record/folder"

NO_KV_WINDOW = "none"  # what KV_WINDOW holds when the cache grows without a window


def default_record_folder() -> Path:
    """Where recordings go until a folder is chosen: "Mimi Live" in the music (else documents) folder."""
    import platformdirs

    for getter in (platformdirs.user_music_dir, platformdirs.user_documents_dir):
        try:
            folder = Path(getter())
        except Exception:  # noqa: BLE001 - a platform without that folder: try the next one
            continue
        if folder.is_dir():
            return folder / APP_NAME
    return Path.home() / APP_NAME


def _as_int(value: object) -> int:
    """A number saved this session is still an int; one read from the INI file is text."""
    return value if isinstance(value, int) else int(str(value))


class Prefs:
    """Typed getters and setters over a QSettings (tests hand in one on a temporary file)."""

    def __init__(self, settings: QSettings):
        self.settings = settings

    def sync(self) -> None:
        self.settings.sync()

    # -- window ----------------------------------------------------------------------------------

    def geometry(self) -> QByteArray | None:
        return self.settings.value(WINDOW_GEOMETRY)

    def set_geometry(self, geometry: QByteArray) -> None:
        self.settings.setValue(WINDOW_GEOMETRY, geometry)

    # -- audio -----------------------------------------------------------------------------------

    def chunk_ms(self) -> int:
        return _as_int(self.settings.value(CHUNK_MS, CHUNK_CHOICES_MS[0]))

    def set_chunk_ms(self, ms: int) -> None:
        self.settings.setValue(CHUNK_MS, ms)

    def source(self) -> str:
        return str(self.settings.value(SOURCE, "mic"))

    def set_source(self, source: str) -> None:
        self.settings.setValue(SOURCE, source)

    def input_file(self) -> Path | None:
        """The audio file last played, if one was chosen (it may have gone since)."""
        value = self.settings.value(INPUT_FILE, "")
        return Path(str(value)) if value else None

    def set_input_file(self, path: Path | str) -> None:
        self.settings.setValue(INPUT_FILE, str(path))

    def device(self, kind: str) -> str:
        """The device last chosen for `kind` ("input"/"output") as "name<TAB>host API"; "" = default."""
        return str(self.settings.value(DEVICE.format(kind=kind), "") or "")

    def set_device(self, kind: str, device: str) -> None:
        self.settings.setValue(DEVICE.format(kind=kind), device)

    # -- model -----------------------------------------------------------------------------------

    def kv_window(self) -> int | None:
        """The KV window in tokens; None when the cache grows without one."""
        value = self.settings.value(KV_WINDOW, DEFAULT_KV_WINDOW)
        return None if value in (None, "", NO_KV_WINDOW) else _as_int(value)

    def set_kv_window(self, window: int | None) -> None:
        self.settings.setValue(KV_WINDOW, NO_KV_WINDOW if window is None else int(window))

    def codebooks(self) -> int | None:
        value = self.settings.value(CODEBOOKS, None)
        return None if value in (None, "") else _as_int(value)

    def set_codebooks(self, codebooks: int) -> None:
        self.settings.setValue(CODEBOOKS, int(codebooks))

    def selected_model(self) -> str:
        return str(self.settings.value(SELECTED_MODEL, "") or "")

    def set_selected_model(self, model: Path | str) -> None:
        self.settings.setValue(SELECTED_MODEL, str(model))

    def model_folders(self) -> list[str]:
        value = self.settings.value(MODEL_FOLDERS, [])
        if isinstance(value, str):  # an INI list of one reads back as a plain string
            return [value]
        return [str(v) for v in value] if isinstance(value, (list, tuple)) else []

    def set_model_folders(self, folders: list[str]) -> None:
        self.settings.setValue(MODEL_FOLDERS, folders)

    # -- session ---------------------------------------------------------------------------------

    def monitor(self) -> str:
        return str(self.settings.value(MONITOR, "codec"))

    def set_monitor(self, mode: str) -> None:
        self.settings.setValue(MONITOR, mode)

    def classic_paths(self) -> bool:
        """Whether sessions run Codec2 and Opus beside Mimi (INI files hold booleans as text)."""
        return str(self.settings.value(CLASSIC_PATHS, "false")).lower() == "true"

    def set_classic_paths(self, on: bool) -> None:
        self.settings.setValue(CLASSIC_PATHS, "true" if on else "false")

    def lowest_latency(self) -> bool:
        return str(self.settings.value(LOWEST_LATENCY, "false")).lower() == "true"

    def set_lowest_latency(self, on: bool) -> None:
        self.settings.setValue(LOWEST_LATENCY, "true" if on else "false")

    def record_folder(self) -> Path:
        """The folder chosen for recordings, else the default one."""
        value = self.settings.value(RECORD_FOLDER, "")
        return Path(str(value)) if value else default_record_folder()

    def set_record_folder(self, folder: Path) -> None:
        self.settings.setValue(RECORD_FOLDER, str(folder))
