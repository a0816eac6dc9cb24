"""`python -m app`: same entry point as the `mimi-live` console script (main thread)."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
