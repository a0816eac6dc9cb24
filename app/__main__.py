"""`python -m app`: same entry point as the `mimi-live` console script (main thread)."""

import multiprocessing
import sys

from app.cli import main

if __name__ == "__main__":
    # The codec prepares models in spawned child processes (app.codec.prepare); in a PyInstaller
    # bundle this executable is also that child, and this call runs the child's work instead of main().
    multiprocessing.freeze_support()
    sys.exit(main())
