"""PyInstaller hook for sounddevice: bundle PortAudio or fail the build (build time, not shipped).

Replaces the pyinstaller-hooks-contrib hook, which only warns when PortAudio is missing: a bundle
without it opens but cannot play or record. Wheels for Windows/macOS carry PortAudio in
`_sounddevice_data`; on Linux it is the system library (Debian: libportaudio2), found the way
sounddevice finds it. rthook-portaudio.py makes the frozen sounddevice load the bundled copy.
"""

import ctypes.util
import pathlib

from PyInstaller.depend.bindepend import resolve_library_path
from PyInstaller.utils.hooks import get_module_file_attribute

binaries = []
datas = []

_data_dir = pathlib.Path(get_module_file_attribute("sounddevice")).parent / "_sounddevice_data" / "portaudio-binaries"
if _data_dir.is_dir():
    _dest = "_sounddevice_data/portaudio-binaries"
    binaries += [(str(lib), _dest) for lib in _data_dir.glob("libportaudio*.*")]
else:
    _name = ctypes.util.find_library("portaudio")
    _path = _name and resolve_library_path(_name)
    if _path:
        binaries.append((_path, "."))

if not binaries:
    raise SystemExit("hook-sounddevice: PortAudio not found; install it (Debian/Ubuntu: apt install libportaudio2) "
                     "and build again")
