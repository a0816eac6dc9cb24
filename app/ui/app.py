"""GUI entry point and process hygiene (main thread).

`run_gui` sets up the app's log file (app.logs), routes Qt's own messages
into it, installs an excepthook that logs every uncaught exception and shows at most one dialog at
a time (re-entry guarded: an exception raised while the dialog is up is only logged), applies the
dark theme and opens the window. When frozen (PyInstaller), stdout/stderr go to the log too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from pathlib import Path

from app.config import APP_AUTHOR, APP_ID, APP_NAME, asset_path
from app.logs import setup_logging

log = logging.getLogger("app.ui")

SETTINGS_ORG = APP_AUTHOR  # QSettings organisation and application names
SETTINGS_APP = APP_ID


def install_qt_message_handler() -> None:
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    levels = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO,
              QtMsgType.QtWarningMsg: logging.WARNING, QtMsgType.QtCriticalMsg: logging.ERROR,
              QtMsgType.QtFatalMsg: logging.CRITICAL}
    qt_log = logging.getLogger("qt")

    def handler(kind, context, message):  # noqa: ANN001 - Qt's signature
        qt_log.log(levels.get(kind, logging.WARNING), "%s", message)

    qInstallMessageHandler(handler)


class ExceptHook:
    """Logs uncaught exceptions and shows one dialog at a time; never raises itself."""

    def __init__(self, log_path: Path | None):
        self.log_path = log_path
        self._showing = False

    def __call__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        log.error("uncaught exception:\n%s", text)
        if self._showing:
            return  # an exception while the dialog is up: logged, not stacked
        self._showing = True
        try:
            from PySide6.QtWidgets import QApplication, QMessageBox

            if QApplication.instance() is None:
                sys.__excepthook__(exc_type, exc, tb)
                return
            box = QMessageBox(QMessageBox.Icon.Critical, APP_NAME,
                              f"Something went wrong: {exc_type.__name__}: {exc}\n\n"
                              "The app keeps running; if something looks wrong, stop and start again.")
            box.setDetailedText(text)
            if self.log_path:
                box.setInformativeText(f"Details are in {self.log_path}")
            box.exec()
        except Exception:  # noqa: BLE001 - the hook must not raise
            log.exception("could not show the error dialog")
        finally:
            self._showing = False


def make_settings():
    """The app's QSettings (INI file in the user config location; tests point QSettings.setPath elsewhere)."""
    from PySide6.QtCore import QSettings

    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, SETTINGS_ORG, SETTINGS_APP)


# Qt platform plugins that draw on a display server; the others (offscreen, minimal, vnc, eglfs,
# linuxfb, ...) need none.
DISPLAY_PLATFORMS = ("xcb", "wayland")


def missing_display() -> str | None:
    """Why the window cannot open here, in one line, or None.

    Without it Qt aborts the process (exit 134) with a message about the xcb plugin that does not
    say the real problem: no X11 or Wayland display on Linux and the other X11 systems.
    """
    if sys.platform in ("win32", "darwin"):
        return None
    platform = os.environ.get("QT_QPA_PLATFORM", "").strip().lower()
    # "wayland;xcb" is a list of fallbacks; any other plugin draws without a display server.
    if platform and not any(p.split(":")[0].startswith(DISPLAY_PLATFORMS) for p in platform.split(";")):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and (Path(runtime) / "wayland-0").exists():  # Qt's default Wayland socket
        return None
    return (f"no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset): run {APP_ID} in a "
            f"desktop session, or headless with `xvfb-run -a {APP_ID}`")


def run_gui(model: Path | None = None, engine_factory=None) -> int:  # noqa: ANN001 - a test's factory
    """Opens the window and runs the Qt event loop; returns the exit code (1, said in one line, with no display).

    `model` is a folder to add to the window's list, as `mimi-live gui --model` parsed and resolved it.
    """
    problem = missing_display()  # before QApplication, which would abort the process
    if problem:
        print(f"{APP_ID}: error: {problem}", file=sys.stderr)
        return 1
    try:
        log_path = setup_logging()
    except OSError as exc:  # a read-only home must not stop the app
        print(f"{APP_ID}: cannot write the log file ({exc}); logging to stderr", file=sys.stderr)
        logging.basicConfig(level=logging.INFO)
        log_path = None
    log.info("starting %s GUI (log: %s)", APP_NAME, log_path)
    sys.excepthook = ExceptHook(log_path)
    from app.audio.native_log import NativeMessages

    # ALSA's and PortAudio's stderr lines go into the log file (counted), not the terminal.
    with NativeMessages() if log_path is not None else contextlib.nullcontext():
        return _open_window(model, engine_factory)


def _open_window(model: Path | None, engine_factory) -> int:  # noqa: ANN001 - a test's factory
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from app.ui.theme import apply_dark_theme

    QApplication.setOrganizationName(SETTINGS_ORG)
    QApplication.setApplicationName(SETTINGS_APP)
    QApplication.setApplicationDisplayName(APP_NAME)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APP_ID])
    assert isinstance(app, QApplication)  # the GUI's (a test's qapp is one too)
    install_qt_message_handler()
    from app.ui.compat import guard_singleton_refcounts

    guard_singleton_refcounts()
    apply_dark_theme(app)
    icon = asset_path("icon.png")
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))

    from app.ui.main_window import MainWindow

    kwargs = {"engine_factory": engine_factory} if engine_factory else {}
    window = MainWindow(settings=make_settings(), model_override=model, **kwargs)
    window.show()
    return int(app.exec())
