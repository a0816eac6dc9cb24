# PyInstaller runtime hook (runs in the frozen app before any app code, main thread).
# On Linux sounddevice finds PortAudio with ctypes.util.find_library("portaudio"), which asks the
# system (ldconfig) only: without this the bundled copy is ignored and the app needs libportaudio2
# installed. Point that one lookup at the bundle; every other lookup is unchanged.
import ctypes.util
import glob
import os
import sys


def _install():
    bundled = sorted(glob.glob(os.path.join(sys._MEIPASS, "libportaudio.so*")))
    if not bundled:
        return
    system_find_library = ctypes.util.find_library

    def find_library(name):
        return bundled[0] if name == "portaudio" else system_find_library(name)

    ctypes.util.find_library = find_library


_install()
del _install
